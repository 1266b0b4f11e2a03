# The history callback: records the epoch-level logs that are not per-step
# columns (val_loss, the metrics and their val_ twins) at the last step of
# each epoch, for the history data frame of the result.
#
# Owns: those per-epoch records (its state, saved in checkpoints) and
# turning them into columns of the history.
# Must never: record the per-step columns (loss, learning_rate, grad_norm:
# the loop writes those in place, see run-loop.R).

history_step_columns <- c("loss", "learning_rate", "grad_norm")

history_callback <- function(spec) {
  structure(list(columns = setdiff(spec_log_names(spec), history_step_columns)),
            class = c("rmsprop_callback_history", "rmsprop_callback"))
}

#' @exportS3Method callback_initial_state rmsprop_callback_history
callback_initial_state.rmsprop_callback_history <- function(cb, spec) {
  list(step = integer(0),
       values = stats::setNames(rep(list(numeric(0)), length(cb$columns)), cb$columns))
}

#' @exportS3Method callback_check_state rmsprop_callback_history
callback_check_state.rmsprop_callback_history <- function(cb, state, spec) {
  is.list(state) && is.integer(state$step) && is.list(state$values) &&
    identical(names(state$values), cb$columns) &&
    all(vapply(state$values, function(v) is.double(v) && length(v) == length(state$step),
               logical(1))) &&
    (!length(state$step) || (min(state$step) >= 1L && max(state$step) <= spec$max_steps))
}

#' @exportS3Method on_epoch_end rmsprop_callback_history
on_epoch_end.rmsprop_callback_history <- function(cb, run, epoch, logs) {
  st <- cb$state
  st$step <- c(st$step, run_current_step(run))
  for (n in cb$columns) {
    v <- logs[[n]]
    st$values[[n]] <- c(st$values[[n]], if (is.null(v)) NA_real_ else v)
  }
  cb$state <- st
  logs
}

# The recorded columns for a history of `n` steps (NA on rows that did not
# end an epoch).
history_columns <- function(cb, n) {
  st <- cb$state
  keep <- st$step <= n
  lapply(st$values, function(v) {
    col <- rep(NA_real_, n)
    col[st$step[keep]] <- v[keep]
    col
  })
}
