# The progress line of minimize() as a callback: drawn after steps when its
# countdown runs out, with the last epoch's validation loss and metrics; the
# drawing itself is in progress.R.
#
# Owns: what the line shows and when it is told.
# Must never: cost a step more than the loop's countdown (it asks to be
# called again only after fit_progress_tick()'s number of steps).

progress_callback <- function(spec) {
  # The epoch's logs show only when there is more than the loss to show.
  shows_logs <- spec$has_val || length(spec$metrics) > 0L
  structure(list(max_steps = spec$max_steps, epochs = spec$epochs, has_data = spec$has_data,
                 wants_recent = TRUE,   # the last 50 losses, for the smoothed loss
                 unused_hooks = if (!shows_logs) "on_epoch_end"),
            class = c("rmsprop_callback_progress", "rmsprop_callback"))
}

#' @exportS3Method on_train_begin rmsprop_callback_progress
on_train_begin.rmsprop_callback_progress <- function(cb, run) {
  cb$bar <- fit_progress_new(cb$max_steps, cb$epochs, cb$has_data)
  cb$shown <- numeric(0)
  invisible()
}

#' @exportS3Method on_train_batch_end rmsprop_callback_progress
on_train_batch_end.rmsprop_callback_progress <- function(cb, run, info) {
  fit_progress_tick(cb$bar, info$step, info$epoch, info$recent, cb$shown, info$learning_rate)
}

#' @exportS3Method on_epoch_end rmsprop_callback_progress
on_epoch_end.rmsprop_callback_progress <- function(cb, run, epoch, logs) {
  shown <- unlist(logs[setdiff(names(logs), history_step_columns)])
  cb$shown <- if (is.null(shown)) numeric(0) else shown
  logs
}

#' @exportS3Method on_train_end rmsprop_callback_progress
on_train_end.rmsprop_callback_progress <- function(cb, run) {
  run_progress_done(cb, run)
}

# The last line (also after an interrupt).
run_progress_done <- function(cb, run) {
  step <- run_current_step(run)
  if (step < 1L || is.null(cb$bar)) return(invisible())
  h <- run_get(run, "h_loss")
  fit_progress_done(cb$bar, step, max(run_get(run, "epoch"), 1L),
                    h[max(1L, step - 49L):step], cb$shown, run_get(run, "h_lr")[step])
}
