# Callbacks of minimize(), with keras3's names and arguments:
# callback_early_stopping(), callback_reduce_lr_on_plateau() and
# callback_backup_and_restore() (its file format lives in checkpoint.R).
#
# Owns: the constructors (which only check and store their arguments), the
# per-run state of each callback (plain data, so that a checkpoint can hold
# it) and what each one does at the end of an epoch.
# Must never: keep state inside the callback object (the same object may be
# passed to several runs), or change the optimizer other than by assigning
# `$learning_rate`.

#' Stop training when a monitored loss has stopped improving
#'
#' The keras3 callback, for [minimize()]: at the end of every epoch (without
#' `data`, after every step), the monitored quantity is compared with the best
#' value so far; after `patience` epochs without an improvement of more than
#' `min_delta`, the run stops (convergence code `2`).
#'
#' @param monitor `"val_loss"` (the loss on `validation_data`, the default) or
#'   `"loss"` (the mean training loss of the epoch).
#' @param min_delta A number: a change smaller than `abs(min_delta)` does not
#'   count as an improvement.
#' @param patience Epochs without improvement after which the run stops.
#' @param verbose `0` (silent) or `1` (a message when the callback stops the
#'   run or restores the weights).
#' @param mode `"auto"` (for a loss: `"min"`), `"min"` or `"max"`.
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
  fit_check_monitor(monitor)
  check_number(min_delta, "min_delta")
  check_number(patience, "patience", lower = 0, whole = TRUE)
  check_number(verbose, "verbose", lower = 0, whole = TRUE)
  fit_check_mode(mode)
  check_number(baseline, "baseline", null_ok = TRUE)
  check_flag(restore_best_weights, "restore_best_weights")
  check_number(start_from_epoch, "start_from_epoch", lower = 0, whole = TRUE)
  structure(list(
    monitor = monitor, min_delta = abs(as.double(min_delta)), patience = as.integer(patience),
    verbose = as.integer(verbose), mode = mode,
    baseline = if (is.null(baseline)) NULL else as.double(baseline),
    restore_best_weights = restore_best_weights, start_from_epoch = as.integer(start_from_epoch)
  ), class = c("rmsprop_callback_early_stopping", "rmsprop_callback"))
}

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
  fit_check_monitor(monitor)
  check_number(factor, "factor", lower = 0, upper = 1, lower_open = TRUE, upper_open = TRUE)
  check_number(patience, "patience", lower = 0, whole = TRUE)
  check_number(verbose, "verbose", lower = 0, whole = TRUE)
  fit_check_mode(mode)
  check_number(min_delta, "min_delta")
  check_number(cooldown, "cooldown", lower = 0, whole = TRUE)
  check_number(min_lr, "min_lr", lower = 0)
  structure(list(
    monitor = monitor, factor = as.double(factor), patience = as.integer(patience),
    verbose = as.integer(verbose), mode = mode, min_delta = abs(as.double(min_delta)),
    cooldown = as.integer(cooldown), min_lr = as.double(min_lr)
  ), class = c("rmsprop_callback_reduce_lr_on_plateau", "rmsprop_callback"))
}

#' Back up a run, and resume it after a crash
#'
#' The keras3 callback, for [minimize()]: the run writes its complete state
#' to a file in `backup_dir` at the end of every epoch (or every `save_freq`
#' steps). If the R process dies, running the *same* `minimize()` call again
#' resumes from that file and ends with results identical, bit for bit, to a
#' run that was never interrupted.
#'
#' The checkpoint holds the parameters, the optimizer (with its slots and
#' counters), the history, the random number generator's state, the position
#' in the epoch (with the epoch's row order), the call counts and the state of
#' the other callbacks. It is written to a temporary file in `backup_dir` and
#' then renamed, so a crash while writing never leaves a broken checkpoint.
#' A checkpoint written by another problem (another parameter structure,
#' starting point, optimizer configuration or state, data size or columns,
#' first or last data row, batch size, number of epochs or steps, `shuffle`,
#' `tol`, validation or callbacks) is refused with an error of class
#' `rmsprop_error_checkpoint`, never used silently; delete the file to start
#' afresh. (Only the first and last rows of `data` are compared: a data set
#' changed elsewhere, with the same size, is not detected.) A run stopped with
#' Ctrl-C keeps its checkpoint.
#'
#' @param backup_dir An existing directory for the checkpoint file
#'   (`rmsprop-checkpoint.rds`). Use one directory per run.
#' @param save_freq `"epoch"` (at the end of every epoch; without `data` every
#'   step is an epoch) or a whole number: every that many steps.
#' @param delete_checkpoint `TRUE` removes the checkpoint when the run
#'   finishes; `FALSE` keeps it (running the call again then returns the
#'   finished result at once).
#' @return A callback object for the `callbacks` argument of [minimize()].
#' @seealso [callback_early_stopping()], [minimize()]
#' @export
#' @examples
#' dir <- tempfile("run1-")
#' dir.create(dir)
#' fit <- minimize(c(3, -2), function(p) sum((p - 1)^2), function(p) 2 * (p - 1),
#'                 steps = 500, progress = FALSE,
#'                 callbacks = list(callback_backup_and_restore(dir, save_freq = 100)))
#' # Had the R process died, the same call would have resumed from the last
#' # save. The run finished, so its checkpoint is gone:
#' file.exists(file.path(dir, "rmsprop-checkpoint.rds"))
callback_backup_and_restore <- function(backup_dir, save_freq = "epoch",
                                        delete_checkpoint = TRUE) {
  check_string(backup_dir, "backup_dir")
  if (!(identical(save_freq, "epoch") ||
        (is_single_number(save_freq) && save_freq >= 1 && save_freq == round(save_freq) &&
         save_freq <= .Machine$integer.max))) {
    rmsprop_abort("argument", sprintf(
      "`save_freq` must be \"epoch\" or a whole number >= 1, not %s.",
      describe_value(save_freq)), argument = "save_freq", value = save_freq)
  }
  check_flag(delete_checkpoint, "delete_checkpoint")
  structure(list(
    backup_dir = backup_dir,
    save_freq = if (is.numeric(save_freq)) as.integer(save_freq) else save_freq,
    delete_checkpoint = delete_checkpoint
  ), class = c("rmsprop_callback_backup_and_restore", "rmsprop_callback"))
}

#' @export
format.rmsprop_callback <- function(x, ...) {
  kind <- sub("^rmsprop_callback_", "", class(x)[1])
  vals <- vapply(x, function(v) if (is.null(v)) "NULL" else paste(format(v), collapse = ","),
                 character(1))
  sprintf("<callback_%s> %s", kind, paste(paste0(names(vals), " = ", vals), collapse = ", "))
}

#' @export
print.rmsprop_callback <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}

fit_check_monitor <- function(monitor) {
  if (!(is.character(monitor) && length(monitor) == 1L && !is.na(monitor) &&
        monitor %in% c("val_loss", "loss"))) {
    rmsprop_abort("argument", sprintf(
      "`monitor` must be \"val_loss\" or \"loss\" (the quantities minimize() records), not %s.",
      describe_value(monitor)), argument = "monitor", value = monitor)
  }
  invisible(monitor)
}

fit_check_mode <- function(mode) {
  if (!(is.character(mode) && length(mode) == 1L && !is.na(mode) &&
        mode %in% c("auto", "min", "max"))) {
    rmsprop_abort("argument", sprintf("`mode` must be \"auto\", \"min\" or \"max\", not %s.",
                                      describe_value(mode)), argument = "mode", value = mode)
  }
  invisible(mode)
}

# `callbacks` of minimize(): NULL, one callback, or a list of them; at most
# one backup. Returns a plain list.
fit_check_callbacks <- function(callbacks) {
  if (is.null(callbacks)) return(list())
  if (inherits(callbacks, "rmsprop_callback")) callbacks <- list(callbacks)
  ok <- is.list(callbacks) && !is.object(callbacks) &&
    all(vapply(callbacks, inherits, logical(1), "rmsprop_callback"))
  if (!ok) {
    bad <- if (is.list(callbacks) && !is.object(callbacks)) {
      i <- which(!vapply(callbacks, inherits, logical(1), "rmsprop_callback"))[1]
      sprintf("element %d is %s", i, describe_value(callbacks[[i]]))
    } else {
      sprintf("got %s", describe_value(callbacks))
    }
    rmsprop_abort("argument", sprintf(paste(
      "`callbacks` must be a list of callbacks made by callback_early_stopping(),",
      "callback_reduce_lr_on_plateau() or callback_backup_and_restore() (use `callback`",
      "for a function); %s."), bad), argument = "callbacks")
  }
  if (sum(vapply(callbacks, inherits, logical(1), "rmsprop_callback_backup_and_restore")) > 1L) {
    rmsprop_abort("argument", "`callbacks` may hold at most one callback_backup_and_restore().",
                  argument = "callbacks")
  }
  unname(callbacks)
}

fit_minimizing <- function(cb) cb$mode != "max"

# Per-run state of a callback (plain data: it goes into checkpoints).
fit_callback_init <- function(cb) {
  if (inherits(cb, "rmsprop_callback_early_stopping")) {
    return(list(wait = 0L, stopped_epoch = 0L, best = NA_real_, best_epoch = 0L,
                best_par = NULL))
  }
  if (inherits(cb, "rmsprop_callback_reduce_lr_on_plateau")) {
    return(list(best = if (fit_minimizing(cb)) Inf else -Inf, wait = 0L, cooldown_counter = 0L))
  }
  list()
}

# keras' EarlyStopping._is_improvement(): any value beats "none yet"; NaN never
# improves.
fit_es_improves <- function(cb, current, reference) {
  if (is.na(reference)) return(TRUE)
  if (fit_minimizing(cb)) isTRUE(current + cb$min_delta < reference)
  else isTRUE(current - cb$min_delta > reference)
}

# One callback at the end of epoch `epoch` (1-based; keras counts from 0).
# `logs` holds loss and val_loss. Returns list(state, stop, message).
fit_callback_epoch_end <- function(cb, state, epoch, logs, par, opt) {
  if (inherits(cb, "rmsprop_callback_early_stopping")) {
    current <- logs[[cb$monitor]]
    if (epoch - 1L < cb$start_from_epoch) return(list(state = state, stop = FALSE))
    if (cb$restore_best_weights && is.null(state$best_par)) {
      state$best_par <- par
      state$best_epoch <- epoch
    }
    state$wait <- state$wait + 1L
    if (fit_es_improves(cb, current, state$best)) {
      state$best <- current
      state$best_epoch <- epoch
      if (cb$restore_best_weights) state$best_par <- par
      if (is.null(cb$baseline) || fit_es_improves(cb, current, cb$baseline)) state$wait <- 0L
      return(list(state = state, stop = FALSE))
    }
    if (state$wait >= cb$patience && epoch > 1L) {
      state$stopped_epoch <- epoch
      msg <- sprintf("early stopping after epoch %d: %s did not improve for %d epoch%s (best %s at epoch %d)",
                     epoch, cb$monitor, state$wait, if (state$wait == 1L) "" else "s",
                     format(state$best, digits = 6), state$best_epoch)
      if (cb$verbose > 0L) message(sprintf("Epoch %d: early stopping", epoch))
      return(list(state = state, stop = TRUE, message = msg))
    }
    return(list(state = state, stop = FALSE))
  }
  if (inherits(cb, "rmsprop_callback_reduce_lr_on_plateau")) {
    current <- logs[[cb$monitor]]
    if (is.na(current)) return(list(state = state, stop = FALSE))
    if (state$cooldown_counter > 0L) {
      state$cooldown_counter <- state$cooldown_counter - 1L
      state$wait <- 0L
    }
    better <- if (fit_minimizing(cb)) current < state$best - cb$min_delta
              else current > state$best + cb$min_delta
    if (better) {
      state$best <- current
      state$wait <- 0L
    } else if (!(state$cooldown_counter > 0L)) {
      state$wait <- state$wait + 1L
      if (state$wait >= cb$patience) {
        old_lr <- opt$learning_rate
        if (old_lr > cb$min_lr) {
          new_lr <- max(old_lr * cb$factor, cb$min_lr)
          opt$learning_rate <- new_lr
          if (cb$verbose > 0L) {
            message(sprintf("Epoch %d: ReduceLROnPlateau reducing learning rate to %s.",
                            epoch, format(new_lr, digits = 6)))
          }
          state$cooldown_counter <- cb$cooldown
          state$wait <- 0L
        }
      }
    }
    return(list(state = state, stop = FALSE))
  }
  list(state = state, stop = FALSE)
}

# The numeric learning rate of an optimizer's configuration (NULL for a
# schedule or a function); for optimizer_loss_scale() the inner one's.
fit_config_learning_rate <- function(opt) {
  cfg <- tryCatch(opt$get_config(), error = function(e) NULL)
  if (is.environment(cfg$inner_optimizer)) return(fit_config_learning_rate(cfg$inner_optimizer))
  lr <- cfg$learning_rate
  if (is.numeric(lr) && length(lr) == 1L) lr else NULL
}
