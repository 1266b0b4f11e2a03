# callback_reduce_lr_on_plateau(): keras3's ReduceLROnPlateau for minimize().
#
# Owns: the constructor, keras' plateau rule and its cooldown.
# Must never: change the optimizer other than by assigning `$learning_rate`
# (so it needs a numeric rate: refused for a schedule before the run).

#' Reduce the learning rate when a monitored loss has stopped improving
#'
#' The keras3 callback, for [minimize()]: when the monitored quantity has not
#' improved by more than `min_delta` for `patience` epochs, the optimizer's
#' learning rate is multiplied by `factor` (but not below `min_lr`), then the
#' callback waits `cooldown` epochs before it watches again. The optimizer
#' needs a numeric learning rate (not a schedule); the rate each step used is
#' in the `learning_rate` column of the history.
#'
#' @inheritParams callback_early_stopping
#' @param factor The factor, in (0, 1), by which the learning rate is reduced.
#' @param patience Epochs without improvement after which the rate is reduced.
#' @param min_delta Threshold for measuring a new best value.
#' @param cooldown Epochs to wait after a reduction before counting again.
#' @param min_lr Lower bound on the learning rate.
#' @return A callback object for the `callbacks` argument of [minimize()].
#' @seealso [callback_early_stopping()]
#' @export
#' @examples
#' fit <- minimize(c(5, -3), function(p) sum(abs(p)), function(p) sign(p),
#'                 steps = 300, progress = FALSE,
#'                 optimizer = optimizer_rmsprop(learning_rate = 0.5),
#'                 callbacks = list(callback_reduce_lr_on_plateau("loss", factor = 0.5,
#'                                                                patience = 5, min_lr = 1e-3)))
#' unique(fit$history$learning_rate)
callback_reduce_lr_on_plateau <- function(monitor = "val_loss", factor = 0.1, patience = 10,
                                          verbose = 0, mode = "auto", min_delta = 1e-4,
                                          cooldown = 0, min_lr = 0) {
  check_monitor(monitor)
  check_number(factor, "factor", lower = 0, upper = 1, lower_open = TRUE, upper_open = TRUE)
  check_number(patience, "patience", lower = 0, upper = .Machine$integer.max,
               whole = TRUE)
  check_number(verbose, "verbose", lower = 0, upper = .Machine$integer.max,
               whole = TRUE)
  check_mode(mode)
  check_number(min_delta, "min_delta")
  check_number(cooldown, "cooldown", lower = 0, upper = .Machine$integer.max,
               whole = TRUE)
  check_number(min_lr, "min_lr", lower = 0)
  structure(list(
    monitor = monitor, factor = as.double(factor), patience = as.integer(patience),
    verbose = as.integer(verbose), mode = mode, min_delta = abs(as.double(min_delta)),
    cooldown = as.integer(cooldown), min_lr = as.double(min_lr)
  ), class = c("rmsprop_callback_reduce_lr_on_plateau", "rmsprop_callback"))
}


#' @exportS3Method callback_check_spec rmsprop_callback_reduce_lr_on_plateau
callback_check_spec.rmsprop_callback_reduce_lr_on_plateau <- function(cb, spec) {
  if (!is.null(spec$optimizer) && is.null(fit_config_learning_rate(spec$optimizer))) {
    rmsprop_abort("argument", paste(
      "callback_reduce_lr_on_plateau() needs an optimizer with a numeric learning rate;",
      "this one has a schedule or a function. Use a number, or drop the callback."),
      argument = "callbacks")
  }
  invisible(TRUE)
}

#' @exportS3Method callback_initial_state rmsprop_callback_reduce_lr_on_plateau
callback_initial_state.rmsprop_callback_reduce_lr_on_plateau <- function(cb, spec) {
  list(best = if (monitor_maximizes(cb)) -Inf else Inf, wait = 0L, cooldown_counter = 0L)
}

#' @exportS3Method callback_check_state rmsprop_callback_reduce_lr_on_plateau
callback_check_state.rmsprop_callback_reduce_lr_on_plateau <- function(cb, state, spec) {
  is.list(state) && is.double(state$best) && length(state$best) == 1L &&
    !is.na(state$best) && is_count(state$wait) && is_count(state$cooldown_counter)
}

#' @exportS3Method on_epoch_end rmsprop_callback_reduce_lr_on_plateau
on_epoch_end.rmsprop_callback_reduce_lr_on_plateau <- function(cb, run, epoch, logs) {
  st <- cb$state
  current <- logs[[cb$monitor]]
  if (is.null(current) || is.na(current)) return(logs)
  if (st$cooldown_counter > 0L) {
    st$cooldown_counter <- st$cooldown_counter - 1L
    st$wait <- 0L
  }
  better <- if (monitor_maximizes(cb)) current > st$best + cb$min_delta
            else current < st$best - cb$min_delta
  if (better) {
    st$best <- current
    st$wait <- 0L
  } else if (!(st$cooldown_counter > 0L)) {
    st$wait <- st$wait + 1L
    opt <- run_current_optimizer(run)
    if (st$wait >= cb$patience) {
      old_lr <- opt$learning_rate
      if (old_lr > cb$min_lr) {
        new_lr <- max(old_lr * cb$factor, cb$min_lr)
        opt$learning_rate <- new_lr
        if (cb$verbose > 0L) {
          message(sprintf("Epoch %d: ReduceLROnPlateau reducing learning rate to %s.",
                          epoch, format(new_lr, digits = 6)))
        }
        st$cooldown_counter <- cb$cooldown
        st$wait <- 0L
      }
    }
  }
  cb$state <- st
  logs
}
