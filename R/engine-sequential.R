# The "sequential" engine: the shards of a batch one after the other in this
# R process, through the same worker code as every other backend (worker.R),
# so that with the same number of shards it gives their numbers bit for bit.
#
# Owns: the methods of class rmsprop_engine_sequential.
# Must never: serialize the run (nothing leaves this process) or keep
# anything after engine_close().

engine_sequential_new <- function(backend, shards) {
  new_engine("sequential", shards)
}

#' @export
#' @noRd
engine_describe.rmsprop_engine_sequential <- function(engine) "sequential (this R process)"

#' @export
#' @noRd
engine_workers.rmsprop_engine_sequential <- function(engine) 1L

# The run's state built here, as a worker builds it from the payload.
#' @export
#' @noRd
engine_open.rmsprop_engine_sequential <- function(engine, job) {
  state <- get("worker_state", envir = job$wenv)(
    list(fn = job$fn, source = job$source, dots = job$dots, data = job$data), job$lib)
  new_session(engine, state = state, step = get("worker_step", envir = job$wenv))
}

#' @export
#' @noRd
engine_run_tasks.rmsprop_engine_sequential_session <- function(session, tasks, par, order) {
  msg <- list(par = par, tasks = tasks)
  if (!is.null(order) && !identical(session$state$cache$order_id, order$id)) {
    msg$order <- order$rows
    msg$order_id <- order$id
  }
  session$step(session$state, msg)
}

#' @export
#' @noRd
engine_close.rmsprop_engine_sequential_session <- function(session) {
  session$state <- NULL
  invisible()
}

#' @export
#' @noRd
engine_map.rmsprop_engine_sequential <- function(engine, jobs, fun, shared) {
  lapply(jobs, fun_with_args(fun, shared))
}
