# `tol` of minimize() as a callback: the run has converged when, at the end
# of an epoch (without data: of a step), the mean gradient norm, or the
# change of the mean loss since the previous epoch, falls below tol.
#
# Owns: that rule and its messages (convergence code 0).
# Must never: stop a run that another callback already stopped.

tolerance_callback <- function(spec) {
  structure(list(tol = spec$tol, has_data = spec$has_data),
            class = c("rmsprop_callback_tolerance", "rmsprop_callback"))
}

#' @exportS3Method callback_initial_state rmsprop_callback_tolerance
callback_initial_state.rmsprop_callback_tolerance <- function(cb, spec) {
  list(prev = NA_real_)
}

#' @exportS3Method callback_check_state rmsprop_callback_tolerance
callback_check_state.rmsprop_callback_tolerance <- function(cb, state, spec) {
  is.list(state) && is.double(state$prev) && length(state$prev) == 1L
}

#' @exportS3Method on_epoch_end rmsprop_callback_tolerance
on_epoch_end.rmsprop_callback_tolerance <- function(cb, run, epoch, logs) {
  prev <- cb$state$prev
  cb$state$prev <- logs$loss
  small_change <- !is.na(prev) && abs(logs$loss - prev) < cb$tol
  msg <- if (logs$grad_norm < cb$tol) {
    if (cb$has_data) sprintf("converged: the mean gradient norm of epoch %d fell below tol", epoch)
    else sprintf("converged: the gradient norm fell below tol after step %d", epoch)
  } else if (small_change) {
    if (cb$has_data) sprintf("converged: the mean loss changed by less than tol in epoch %d", epoch)
    else sprintf("converged: the change of the loss fell below tol at step %d", epoch)
  }
  if (!is.null(msg)) run_request_stop(run, "converged", msg)
  logs
}
