# The `callback` argument of minimize(): a function called after every step
# with list(step, epoch, loss, par, grad_norm, learning_rate, epoch_end)
# (epoch_end: TRUE at the last step of an epoch); FALSE stops the run
# (convergence code 2).
#
# Owns: calling it and reading its answer.
# Must never: be called less than once per step.

function_callback <- function(f) {
  structure(list(f = f), class = c("rmsprop_callback_function", "rmsprop_callback"))
}

#' @exportS3Method on_train_batch_end rmsprop_callback_function
on_train_batch_end.rmsprop_callback_function <- function(cb, run, info) {
  # .subset2(): `$` on the classed instance would look for S3 methods first,
  # which costs more than the rest of this method, at every step.
  reply <- .subset2(cb, "f")(info)
  if (is.logical(reply) && length(reply) == 1L && !is.na(reply) && !reply) {
    run_request_stop(run, "stopped", sprintf("stopped by the callback after step %d",
                                             info$step))
  }
  1L
}
