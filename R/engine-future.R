# The "future" engine: one future per task under the current future::plan()
# (multisession, cluster over SSH, future.batchtools, ...). A future holds
# no state between calls, so each carries the run's functions (serialized
# once per run) and its shard's rows.
#
# Owns: the methods of class rmsprop_engine_future.
# Must never: change the user's plan, or let future look for globals itself
# (the run's payload already carries them: engine-globals.R).

engine_future_new <- function(backend, shards) {
  check_installed("future", "`engine = \"future\"`")
  new_engine("future", shards)
}

#' @export
#' @noRd
engine_describe.rmsprop_engine_future <- function(engine) "future (the current future::plan())"

#' @export
#' @noRd
engine_workers.rmsprop_engine_future <- function(engine) {
  n <- future::nbrOfWorkers()
  if (!is.finite(n)) 2L else as.integer(max(1, n))
}

#' @export
#' @noRd
engine_open.rmsprop_engine_future <- function(engine, job) {
  new_session(engine, payload = job$payload(), lib = job$lib, data = job$data,
              fun = get("worker_future_task", envir = job$wenv))
}

# Each task gets its rows of the data (a future keeps nothing between calls).
#' @export
#' @noRd
engine_run_tasks.rmsprop_engine_future_session <- function(session, tasks, par, order) {
  tasks <- lapply(tasks, function(t) {
    if (!identical(t$type, "shard")) return(t)
    rows <- task_rows(t, order)
    list(type = "shard", need_grad = t$need_grad,
         batch = session$data[rows, , drop = FALSE])
  })
  future_values(tasks, session$fun,
                list(payload = session$payload, lib = session$lib, par = par))
}

#' @export
#' @noRd
engine_close.rmsprop_engine_future_session <- function(session) {
  session$payload <- NULL
  invisible()
}

#' @export
#' @noRd
engine_map.rmsprop_engine_future <- function(engine, jobs, fun, shared) {
  future_values(jobs, fun, shared)
}

# fun(task, <shared>) for each task as a future, all started before any is
# collected; a future's error comes back as a failed result.
future_values <- function(tasks, fun, shared) {
  f <- fun_with_args(fun, shared)
  futures <- lapply(tasks, function(t) {
    future::future(quote(f(t)), substitute = FALSE, lazy = FALSE, seed = NULL,
                   globals = list(f = f, t = t), packages = character(0))
  })
  lapply(futures, function(x) tryCatch(
    future::value(x),
    error = function(e) list(ok = FALSE, message = conditionMessage(e))))
}
