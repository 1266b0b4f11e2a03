# The "mirai" engine: the daemons the user set with mirai::daemons() (local
# processes, remote machines over SSH or TLS, HPC schedulers), through
# mirai's own calls. The run's functions and data go to every daemon once
# with mirai::everywhere(), and so does each epoch's row order: with a
# dispatcher (mirai's default) everywhere() is a synchronization point, so
# every later task finds them on whichever daemon runs it. Each task is one
# mirai: the parameters and where its shard lies.
#
# Owns: the methods of class rmsprop_engine_mirai. (Each call is given to
# mirai as a quoted expression, evaluated on the daemon with its `.args`.)
# Must never: set or change the user's daemons, or leave the run's state on
# them after engine_close().

# mirai 2.5.0 is the first whose everywhere() calls may follow each other
# with a dispatcher (each epoch's order is one).
engine_mirai_new <- function(backend, shards) {
  check_installed("mirai", "`engine = \"mirai\"`")
  if (utils::packageVersion("mirai") < "2.5.0") {
    rmsprop_abort("dependency", sprintf(paste(
      "`engine = \"mirai\"` needs mirai 2.5.0 or later, and %s is installed:",
      "install.packages(\"mirai\")."), utils::packageVersion("mirai")), package = "mirai")
  }
  new_engine("mirai", shards)
}

#' @export
#' @noRd
engine_describe.rmsprop_engine_mirai <- function(engine) {
  "mirai (the daemons of mirai::daemons())"
}

mirai_check_daemons <- function() {
  if (!isTRUE(mirai::daemons_set())) {
    rmsprop_abort("argument", paste(
      "`engine = \"mirai\"` runs on the daemons set with mirai::daemons(), and none are set:",
      "call mirai::daemons(2) (or daemons on other machines) first."), argument = "engine")
  }
}

#' @export
#' @noRd
engine_workers.rmsprop_engine_mirai <- function(engine) {
  mirai_check_daemons()
  n <- mirai::status()$connections
  if (!is.numeric(n) || length(n) != 1L || n < 1) 1L else as.integer(n)
}

# Waits for the result of everywhere() (or a list of mirai) and returns the
# first error's message, or NULL.
mirai_first_error <- function(ms) {
  for (m in ms) {
    v <- m[]
    if (mirai::is_error_value(v)) return(mirai_error_message(v))
  }
  NULL
}

# The message of a mirai's error value (an error on the daemon, or a code
# such as a lost connection).
mirai_error_message <- function(v) {
  msg <- attr(v, "message")
  if (is.character(msg) && length(msg) == 1L) msg else paste(as.character(v), collapse = " ")
}

#' @export
#' @noRd
engine_open.rmsprop_engine_mirai <- function(engine, job) {
  mirai_check_daemons()
  s <- new_session(engine, key = job$key, order_id = NA_integer_,
                   step_call = base_call(get("worker_keyed_step", envir = job$wenv)),
                   order_call = base_call(get("worker_keyed_order", envir = job$wenv)),
                   clean_call = base_call(get("worker_cleanup", envir = job$wenv)))
  expr <- quote(setup(key, payload, lib))
  err <- tryCatch(mirai_first_error(mirai::everywhere(
    expr,
    .args = list(setup = get("worker_setup", envir = job$wenv), key = job$key,
                 payload = job$payload(), lib = job$lib))),
    error = function(e) conditionMessage(e))
  if (!is.null(err)) {
    engine_close(s)
    rmsprop_abort("worker", sprintf(
      "sending the functions and data to the mirai daemons failed: %s", err))
  }
  s
}

#' @export
#' @noRd
engine_run_tasks.rmsprop_engine_mirai_session <- function(session, tasks, par, order) {
  needs_order <- any(vapply(tasks, function(t) !is.null(t$pos), logical(1)))
  if (needs_order && !identical(session$order_id, order$id)) {
    expr <- quote(set_order(key, id, rows))
    mirai::everywhere(expr,
                      .args = list(set_order = session$order_call, key = session$key,
                                   id = order$id, rows = order$rows))
    session$order_id <- order$id
  }
  expr <- quote(step(msg, key))
  ms <- lapply(tasks, function(t) {
    mirai::mirai(expr, .args = list(step = session$step_call, key = session$key,
                                              msg = list(par = par, tasks = list(t))))
  })
  lapply(ms, function(m) {
    v <- m[]
    if (mirai::is_error_value(v)) {
      return(list(ok = FALSE, message = paste("the mirai daemon failed:",
                                              mirai_error_message(v))))
    }
    v[[1L]]
  })
}

#' @export
#' @noRd
engine_close.rmsprop_engine_mirai_session <- function(session) {
  expr <- quote(clean(key))
  try(mirai_first_error(mirai::everywhere(expr, .args = list(
    clean = session$clean_call, key = session$key))), silent = TRUE)
  invisible()
}

#' @export
#' @noRd
engine_map.rmsprop_engine_mirai <- function(engine, jobs, fun, shared) {
  mirai_check_daemons()
  f <- fun_with_args(fun, shared)
  expr <- quote(f(j))
  ms <- lapply(jobs, function(j) mirai::mirai(expr, .args = list(f = f, j = j)))
  lapply(ms, function(m) {
    v <- m[]
    if (mirai::is_error_value(v)) list(ok = FALSE, message = mirai_error_message(v)) else v
  })
}
