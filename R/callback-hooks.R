# The hooks of a training run: the points where callbacks act, with
# do-nothing defaults, and the per-run instances of callbacks.
#
# Owns: the generics (keras' names: on_train_begin, on_epoch_begin,
# on_train_batch_end, on_epoch_end, on_train_end; plus the state a checkpoint
# saves and the checks a spec runs), making a run's instances, calling a hook
# on every instance that has it, and stop requests.
# Must never: change the user's callback objects (the same object may be
# passed to several runs: each run gets fresh instances), or decide anything
# by the text of a message.
#
# A callback object (what callback_*() returns) is a classed list of its
# arguments (and may list in `unused_hooks` the hooks it has methods for but
# needs in no run made from it: they are never called). Its instance in a run is an environment with the same fields
# and class, plus `state` (plain data, saved in checkpoints). A new callback
# is a new file with its constructor and the methods of the hooks it uses.

# Called once before the first step (after a resume has restored the run).
on_train_begin <- function(cb, run) UseMethod("on_train_begin")
# Called when an epoch begins.
on_epoch_begin <- function(cb, run, epoch) UseMethod("on_epoch_begin")
# Called after a step, with `info` (step, epoch, loss, par, grad_norm,
# learning_rate); returns how many steps to wait before the next call (1:
# after every step). Only callbacks with a method are called at all.
on_train_batch_end <- function(cb, run, info) UseMethod("on_train_batch_end")
# Called at the end of an epoch with the epoch's logs (an open named list:
# loss, the metrics, val_loss, ...); returns the logs, with anything it adds.
on_epoch_end <- function(cb, run, epoch, logs) UseMethod("on_epoch_end")
# Called once when the run ends (not after an interrupt).
on_train_end <- function(cb, run) UseMethod("on_train_end")

# Called when the run is interrupted (Ctrl-C), between two steps.
on_interrupt <- function(cb, run) UseMethod("on_interrupt")

#' @exportS3Method on_train_begin default
on_train_begin.default <- function(cb, run) invisible()
#' @exportS3Method on_interrupt default
on_interrupt.default <- function(cb, run) invisible()
#' @exportS3Method on_epoch_begin default
on_epoch_begin.default <- function(cb, run, epoch) invisible()
#' @exportS3Method on_train_batch_end default
on_train_batch_end.default <- function(cb, run, info) Inf
#' @exportS3Method on_epoch_end default
on_epoch_end.default <- function(cb, run, epoch, logs) logs
#' @exportS3Method on_train_end default
on_train_end.default <- function(cb, run) invisible()

# The per-run state a callback starts with (plain data).
callback_initial_state <- function(cb, spec) UseMethod("callback_initial_state")
#' @exportS3Method callback_initial_state default
callback_initial_state.default <- function(cb, spec) list()
# TRUE when `state` (read from a checkpoint) is one this callback can use.
callback_check_state <- function(cb, state, spec) UseMethod("callback_check_state")
#' @exportS3Method callback_check_state default
callback_check_state.default <- function(cb, state, spec) is.list(state)
# Refuses, with a classed error, a callback that cannot work with the run's
# spec (before anything runs).
callback_check_spec <- function(cb, spec) UseMethod("callback_check_spec")
#' @exportS3Method callback_check_spec default
callback_check_spec.default <- function(cb, spec) invisible(TRUE)
# What of the callback changes a run's numbers (for the fingerprint).
callback_fingerprint <- function(cb) UseMethod("callback_fingerprint")
#' @exportS3Method callback_fingerprint default
callback_fingerprint.default <- function(cb) {
  x <- unclass(as.list(cb))
  x$state <- NULL
  lapply(x, function(v) if (is.function(v)) function_fingerprint(v) else v)
}

callback_label <- function(cb) sprintf("%s()", sub("^rmsprop_", "", class(cb)[1]))

# A run's instance of a callback; `key` names its state in checkpoints.
callback_instance <- function(cb, spec, key) {
  inst <- list2env(unclass(cb), parent = emptyenv())
  inst$key <- key
  inst$state <- callback_initial_state(cb, spec)
  class(inst) <- class(cb)
  inst
}

# The method of `hook` for an instance, or NULL when it only has the default.
callback_method <- function(inst, hook) {
  for (cl in class(inst)) {
    m <- utils::getS3method(hook, cl, optional = TRUE)
    if (!is.null(m)) return(m)
  }
  NULL
}

# Calls `hook` on every instance that has a method for it, in order.
callbacks_call <- function(run, hook, ...) {
  for (inst in run$callbacks) {
    m <- callback_method(inst, hook)
    if (!is.null(m)) m(inst, run, ...)
  }
  invisible()
}

# The end of an epoch: every instance that uses the hook (run_prepare())
# sees, and may add to, the logs, in order.
callbacks_epoch_end <- function(run, epoch, logs) {
  insts <- run$epoch_insts
  hooks <- run$epoch_hooks
  for (i in seq_along(insts)) logs <- hooks[[i]](insts[[i]], run, epoch, logs)
  run$logs <- logs
  invisible(logs)
}

# The step hooks (instances with an on_train_batch_end method) are called by
# the loop itself (run-loop.R), each with its own countdown: a function call
# per step for their bookkeeping cost as much as the rest of a small step's.

# The instances' states, as a checkpoint saves them, by the instances' keys
# (the user's `callback` function and the progress line are not part of a
# run's problem, so a rerun may add or drop them: stateless instances are
# not saved).
callbacks_state <- function(run) {
  states <- lapply(run$callbacks, function(inst) inst$state)
  names(states) <- vapply(run$callbacks, function(inst) inst$key, "")
  states[lengths(states) > 0L]
}

# Puts the states of a checkpoint back, each checked by its callback first:
# every instance with a state must find its own, and every saved state its
# instance.
callbacks_restore <- function(run, states, path) {
  insts <- run$callbacks
  keys <- vapply(insts, function(inst) inst$key, "")
  ok <- is.list(states) && !is.null(names(states)) && all(names(states) %in% keys)
  for (i in seq_along(insts)) {
    if (!ok) break
    saved <- states[[keys[i]]]
    ok <- if (is.null(saved)) !length(insts[[i]]$state) else
      isTRUE(callback_check_state(insts[[i]], saved, run$spec))
  }
  if (!ok) {
    rmsprop_abort("checkpoint", sprintf(paste(
      "the checkpoint %s is damaged: its field `cb_state` does not fit the callbacks of",
      "this run. It is not used; delete it to start afresh."),
      encodeString(path, quote = "\"")), argument = "backup_dir", path = path,
      field = "cb_state")
  }
  for (i in seq_along(insts)) {
    if (!is.null(states[[keys[i]]])) insts[[i]]$state <- states[[keys[i]]]
  }
  invisible()
}

# A callback asks the run to stop after this step or epoch. The first request
# wins; `code` is a name of run_codes.
run_request_stop <- function(run, code, message) {
  if (is.null(run$stop_code)) {
    run$stop_code <- run_codes[[code]]
    run$stop_msg <- message
  }
  invisible()
}
