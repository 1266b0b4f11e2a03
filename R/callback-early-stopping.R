# callback_early_stopping(): keras3's EarlyStopping for minimize().
#
# Owns: the constructor (which only checks and stores its arguments), keras'
# improvement rule, and, with restore_best_weights, handing the run the best
# epoch's parameters when it ends.
# Must never: keep state in the callback object (its run instance has it),
# or change the optimizer.

#' Stop training when a monitored loss has stopped improving
#'
#' The keras3 callback, for [minimize()]: at the end of every epoch (without
#' `data`, after every step), the monitored quantity is compared with the best
#' value so far; after `patience` epochs without an improvement of more than
#' `min_delta`, the run stops (convergence code `2`).
#'
#' @param monitor The quantity to watch: `"val_loss"` (the loss on
#'   `validation_data`, the default), `"loss"` (the mean training loss of the
#'   epoch), or a metric of `minimize(metrics = )` by its name (`"accuracy"`)
#'   or, on the validation rows, with the prefix `val_` (`"val_accuracy"`).
#'   [minimize()] refuses a name the run does not record.
#' @param min_delta A number: a change smaller than `abs(min_delta)` does not
#'   count as an improvement.
#' @param patience Epochs without improvement after which the run stops.
#' @param verbose `0` (silent) or `1` (a message when the callback stops the
#'   run or restores the weights).
#' @param mode `"min"`, `"max"`, or `"auto"`: as in keras3, a name that
#'   contains `"acc"` is maximised, anything else minimised.
#' @param baseline `NULL`, or a value the monitored quantity must beat: the
#'   patience counter restarts only on an improvement that also beats it.
#' @param restore_best_weights `TRUE` returns the parameters of the best
#'   epoch (as they were at its end) instead of the last ones.
#' @param start_from_epoch Epochs to wait before watching for improvement.
#' @return A callback object for the `callbacks` argument of [minimize()].
#' @seealso [callback_reduce_lr_on_plateau()], [callback_backup_and_restore()]
#' @export
#' @examples
#' x <- cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")])))
#' d <- data.frame(y = mtcars$mpg, x = I(x))
#' fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
#' set.seed(1)
#' train <- sample(32, 24)
#' fit <- minimize(c(0, 0, 0), fn, data = d[train, ], validation_data = d[-train, ],
#'                 batch_size = 8, epochs = 200, progress = FALSE,
#'                 optimizer = optimizer_rmsprop(0.05),
#'                 callbacks = list(callback_early_stopping(patience = 5)))
#' fit$message
callback_early_stopping <- function(monitor = "val_loss", min_delta = 0, patience = 0,
                                    verbose = 0, mode = "auto", baseline = NULL,
                                    restore_best_weights = FALSE, start_from_epoch = 0) {
  check_monitor(monitor)
  check_number(min_delta, "min_delta")
  check_number(patience, "patience", lower = 0, upper = .Machine$integer.max,
               whole = TRUE)
  check_number(verbose, "verbose", lower = 0, upper = .Machine$integer.max,
               whole = TRUE)
  check_mode(mode)
  check_number(baseline, "baseline", null_ok = TRUE)
  check_flag(restore_best_weights, "restore_best_weights")
  check_number(start_from_epoch, "start_from_epoch", lower = 0, upper = .Machine$integer.max,
               whole = TRUE)
  structure(list(
    monitor = monitor, min_delta = abs(as.double(min_delta)), patience = as.integer(patience),
    verbose = as.integer(verbose), mode = mode,
    baseline = if (is.null(baseline)) NULL else as.double(baseline),
    restore_best_weights = restore_best_weights, start_from_epoch = as.integer(start_from_epoch)
  ), class = c("rmsprop_callback_early_stopping", "rmsprop_callback"))
}


#' @exportS3Method callback_initial_state rmsprop_callback_early_stopping
callback_initial_state.rmsprop_callback_early_stopping <- function(cb, spec) {
  list(wait = 0L, stopped_epoch = 0L, best = NA_real_, best_epoch = 0L, best_par = NULL)
}

#' @exportS3Method callback_check_state rmsprop_callback_early_stopping
callback_check_state.rmsprop_callback_early_stopping <- function(cb, state, spec) {
  is.list(state) && is_count(state$wait) && is_count(state$best_epoch) &&
    is.double(state$best) && length(state$best) == 1L && is_par_like(state$best_par, spec)
}

# keras' EarlyStopping._is_improvement(): any value beats "none yet"; NaN
# never improves.
es_improves <- function(cb, current, reference) {
  if (is.na(reference)) return(TRUE)
  if (monitor_maximizes(cb)) isTRUE(current - cb$min_delta > reference)
  else isTRUE(current + cb$min_delta < reference)
}

#' @exportS3Method on_epoch_end rmsprop_callback_early_stopping
on_epoch_end.rmsprop_callback_early_stopping <- function(cb, run, epoch, logs) {
  st <- cb$state
  current <- logs[[cb$monitor]]
  if (epoch - 1L < cb$start_from_epoch) return(logs)
  if (cb$restore_best_weights && is.null(st$best_par)) {
    st$best_par <- run_current_par(run)
    st$best_epoch <- epoch
  }
  st$wait <- st$wait + 1L
  if (es_improves(cb, current, st$best)) {
    st$best <- current
    st$best_epoch <- epoch
    if (cb$restore_best_weights) st$best_par <- run_current_par(run)
    if (is.null(cb$baseline) || es_improves(cb, current, cb$baseline)) st$wait <- 0L
  } else if (st$wait >= cb$patience && epoch > 1L) {
    st$stopped_epoch <- epoch
    if (cb$verbose > 0L) message(sprintf("Epoch %d: early stopping", epoch))
    run_request_stop(run, "stopped", sprintf(
      "early stopping after epoch %d: %s did not improve for %d epoch%s (best %s at epoch %d)",
      epoch, cb$monitor, st$wait, if (st$wait == 1L) "" else "s",
      format(st$best, digits = 6), st$best_epoch))
  }
  cb$state <- st
  logs
}

# The run's result takes the best epoch's parameters (not after an
# interrupt, nor when a non-finite loss decides them).
#' @exportS3Method on_train_end rmsprop_callback_early_stopping
on_train_end.rmsprop_callback_early_stopping <- function(cb, run) {
  st <- cb$state
  run_note_best(run, list(monitor = cb$monitor, mode = if (monitor_maximizes(cb)) "max" else "min",
                          epoch = if (st$best_epoch > 0L) st$best_epoch else NA_integer_,
                          value = st$best))
  if (!cb$restore_best_weights || is.null(st$best_par)) return(invisible())
  if (run_set_result_par(run, st$best_par, st$best_epoch) && cb$verbose > 0L) {
    message(sprintf("Restoring model weights from the end of the best epoch: %d.",
                    st$best_epoch))
  }
  invisible()
}
