# Reading a "rmsprop_fit" for its methods (fit-print.R, fit-summary.R,
# fit-plot.R) and for plot() of sweeps: the history per epoch (epoch means of
# the loss, the last value of each per-epoch column), which columns are
# metrics, the best epoch, where the returned parameters come from and where
# a resumed run started.
#
# Fits of every release are read: the fields minimize() added later
# (par_epoch, par_step, restored, best, resumed_epoch, metrics) are derived
# from the older ones when absent.
# Must never: change the fit, or draw or print anything.

`%||%` <- function(a, b) if (is.null(a)) b else a

# A field of a fit by its exact name: `$` would take `best_epoch` for a
# missing `best`.
fit_field <- function(x, name) x[[name, exact = TRUE]]

# The columns every history may have that are not metrics.
fit_fixed_columns <- c("step", "epoch", "loss", "learning_rate", "grad_norm", "val_loss",
                       "batch_size")

# The metric names of a history: every numeric column that is not a fixed one
# names a metric, and `val_<name>` pairs with `<name>` (a `val_<name>` column
# alone still names the metric `<name>`). Those in `declared` (the fit's
# `metrics`) come first, in that order; the rest in column order.
fit_metric_names <- function(h, declared = NULL) {
  cols <- names(h)[vapply(h, is.numeric, logical(1))]
  extra <- setdiff(cols, fit_fixed_columns)
  twin <- startsWith(extra, "val_") & !extra %in% declared
  extra[twin] <- substring(extra[twin], 5L)
  found <- unique(extra)
  c(intersect(declared, found), setdiff(found, declared))
}

# keras3's rule for mode = "auto": names containing "acc" are maximised.
fit_metric_mode <- function(name, best = NULL) {
  if (!is.null(best) && identical(best$monitor, name) && !is.null(best$mode) &&
      !is.na(best$mode)) return(best$mode)
  if (grepl("acc", sub("^val_", "", name), fixed = TRUE)) "max" else "min"
}

# One row per epoch of a history: the epoch, its first and last step, the
# number of steps, the mean loss of its steps (weighted by a `batch_size`
# column when the history has one) and, for `val_loss` and every metric
# column, the last value recorded in it (NA if none). NULL for a history
# without an `epoch` column or rows.
fit_epoch_table <- function(h) {
  if (!"epoch" %in% names(h) || nrow(h) == 0L) return(NULL)
  fit_epoch_rows(h, h$epoch)
}

# fit_epoch_table() of any history with rows: without an `epoch` column
# every step is an epoch (minimize() without data: each step sees all of it).
fit_epochs <- function(h) {
  if (nrow(h) == 0L) return(NULL)
  fit_epoch_rows(h, if ("epoch" %in% names(h)) h$epoch else h$step)
}

fit_epoch_rows <- function(h, epoch) {
  runs <- rle(epoch)
  last <- cumsum(runs$lengths)
  first <- last - runs$lengths + 1L
  group <- rep.int(seq_along(last), runs$lengths)
  w <- if ("batch_size" %in% names(h)) as.double(h$batch_size) else rep(1, nrow(h))
  mean_loss <- if (all(runs$lengths == 1L)) as.double(h$loss) else
    drop(rowsum(h$loss * w, group, reorder = FALSE)) / drop(rowsum(w, group, reorder = FALSE))
  out <- data.frame(epoch = runs$values, first_step = h$step[first], last_step = h$step[last],
                    steps = runs$lengths, loss = unname(mean_loss))
  per_epoch <- c("val_loss", setdiff(names(h)[vapply(h, is.numeric, logical(1))],
                                     fit_fixed_columns))
  for (col in per_epoch) {
    v <- if (col %in% names(h)) h[[col]] else NULL
    last_value <- rep(NA_real_, length(last))
    if (!is.null(v)) {
      ok <- !is.na(v)
      # assigned in row order: the last value of each epoch stays
      last_value[group[ok]] <- v[ok]
    }
    out[[col]] <- last_value
  }
  out
}

# TRUE when the history has epochs of more than one step (mini-batches).
fit_is_batched <- function(epochs) !is.null(epochs) && any(epochs$steps > 1L)

# The best epoch: NULL, or list(monitor, mode, epoch, value, restored, from)
# where `from` is "callback" (early stopping recorded it) or "history" (the
# smallest validation loss, for a run without early stopping). An old fit
# knows only `best_epoch` (monitor and value NA).
fit_best <- function(x, epochs) {
  best_epoch <- fit_field(x, "best_epoch")
  restored_epoch <- if (length(best_epoch) == 1L && !is.na(best_epoch)) as.integer(best_epoch)
  restored <- isTRUE(fit_field(x, "restored")) || !is.null(restored_epoch)
  b <- fit_field(x, "best")
  if (!is.null(b)) {
    return(list(monitor = b$monitor %||% NA_character_, mode = b$mode %||% NA_character_,
                epoch = as.integer(b$epoch), value = b$value %||% NA_real_,
                restored = restored, from = "callback"))
  }
  if (!is.null(restored_epoch)) {
    return(list(monitor = NA_character_, mode = NA_character_, epoch = restored_epoch,
                value = NA_real_, restored = TRUE, from = "callback"))
  }
  if (is.null(epochs) || all(is.na(epochs$val_loss))) return(NULL)
  i <- which.min(epochs$val_loss)
  list(monitor = "val_loss", mode = "min", epoch = as.integer(epochs$epoch[i]),
       value = epochs$val_loss[i], restored = FALSE, from = "history")
}

# Where the returned parameters come from: list(kind, step, epoch, complete)
# with kind "restored" (early stopping restored the best epoch's), "before"
# (the parameters before step `step + 1`: the loss after it was not finite)
# or "last" (reached by the last step); `complete` is TRUE when `step` ends
# its epoch. Old fits have no `par_step`: a run stopped on a non-finite loss
# is then known only by its message (the one thing such a fit records).
fit_par_origin <- function(x, epochs) {
  steps <- as.integer(x$steps)
  best <- fit_best(x, epochs)
  restored <- !is.null(best) && best$restored
  epoch <- fit_field(x, "par_epoch") %||% NA_integer_
  step <- fit_field(x, "par_step") %||% NA_integer_
  if (restored) {
    if (is.na(epoch)) epoch <- best$epoch
    if (is.na(step) && !is.null(epochs) && epoch %in% epochs$epoch) {
      step <- epochs$last_step[match(epoch, epochs$epoch)]
    }
    return(list(kind = "restored", step = as.integer(step), epoch = as.integer(epoch),
                complete = TRUE))
  }
  if (is.na(step)) {
    step <- if (identical(as.integer(x$convergence), 4L) && is.character(x$message) &&
                startsWith(x$message, "stopped: the loss")) steps - 1L else steps
  }
  kind <- if (step < steps) "before" else "last"
  # the epoch of the step reached (step k is taken in epoch h$epoch[k]); it
  # is complete when the step ends it and the run counted it as done
  at <- if (!is.null(epochs) && step >= 1L) findInterval(step, epochs$first_step) else 0L
  complete <- at >= 1L && epochs$last_step[at] == step &&
    isTRUE(as.integer(x$epochs %||% epochs$epoch[at]) >= epochs$epoch[at])
  if (is.na(epoch) && at >= 1L) epoch <- epochs$epoch[at]
  list(kind = kind, step = as.integer(step), epoch = as.integer(epoch),
       complete = isTRUE(complete))
}

# Where a resumed run started: NULL, or list(step, epoch) (epoch NA when the
# fit does not record it).
fit_resumed <- function(x) {
  step <- fit_field(x, "resumed_from")
  if (is.null(step) || length(step) != 1L || is.na(step)) return(NULL)
  epoch <- fit_field(x, "resumed_epoch") %||% NA_integer_
  list(step = as.integer(step), epoch = as.integer(epoch))
}
