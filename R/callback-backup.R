# callback_backup_and_restore(): keras3's BackupAndRestore for minimize().
#
# Owns: the constructor, when a run saves (every epoch or every `save_freq`
# steps, after every other callback has acted, and when interrupted), resuming
# a run from its checkpoint (with the resume message), and removing or
# keeping the checkpoint at the end. The file format is in checkpoint.R.
# Must never: save in the middle of a step (the loop calls it only between
# steps), or resume from a checkpoint of another problem.

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
#' A checkpoint written by another problem (another `fn`, `gr` or metrics,
#' compared by their code; another parameter structure, starting point,
#' optimizer configuration or state, data size or columns, first or last data
#' row, batch size, number of epochs or steps, `shuffle`, `tol`, validation or
#' callbacks) is refused with an error of class
#' `rmsprop_error_checkpoint`, never used silently; delete the file to start
#' afresh. (Only the first and last rows of `data` are compared: a data set
#' changed elsewhere, with the same size, is not detected.) Every field of a
#' checkpoint is checked before it is used: an edited or damaged file is an
#' error of the same class naming the field.
#'
#' A run that resumes says so: a message (of class `rmsprop_message_resume`)
#' names the directory, the step and the epoch, and the result records it
#' (`fit$resumed_from`; `print(fit)` shows "resumed at step N").
#'
#' Ctrl-C (an interrupt) writes the checkpoint at the last completed step
#' first. In an interactive session the partial result is then returned; in a
#' script (Rscript, a batch job) the interrupt ends the script with an error
#' (class `rmsprop_error_interrupted`, so a non-zero exit status) after the
#' checkpoint is written, so a pipeline never takes an interrupted run for a
#' finished one: run the script again to resume.
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


#' @exportS3Method callback_check_spec rmsprop_callback_backup_and_restore
callback_check_spec.rmsprop_callback_backup_and_restore <- function(cb, spec) {
  fit_checkpoint_check_dir(cb)
}

#' @exportS3Method callback_fingerprint rmsprop_callback_backup_and_restore
callback_fingerprint.rmsprop_callback_backup_and_restore <- function(cb) {
  list(save_freq = cb$save_freq)
}

# Resumes the run from the checkpoint, when there is one (this callback runs
# after every other one, so their states are restored over their starting
# ones).
#' @exportS3Method on_train_begin rmsprop_callback_backup_and_restore
on_train_begin.rmsprop_callback_backup_and_restore <- function(cb, run) {
  ck <- fit_checkpoint_load(cb, run$fingerprint)
  if (is.null(ck)) return(invisible())
  path <- fit_checkpoint_path(cb)
  s <- run_state_check(ck$state, run$spec, path)
  callbacks_restore(run, s$cb_state, path)
  run_state_set(run, s)
  run$resumed_from <- s$step
  run$resumed_epoch <- s$epochs_done
  msg <- sprintf("minimize(): resuming from the checkpoint in %s at step %d (epoch %d).",
                 encodeString(cb$backup_dir, quote = "\""), s$step, s$epochs_done)
  message(structure(class = c("rmsprop_message_resume", "message", "condition"),
                    list(message = paste0(msg, "\n"), call = NULL, step = s$step,
                         epoch = s$epochs_done, path = path)))
  invisible()
}

#' @exportS3Method on_train_batch_end rmsprop_callback_backup_and_restore
on_train_batch_end.rmsprop_callback_backup_and_restore <- function(cb, run, info) {
  if (!is.numeric(cb$save_freq)) return(Inf)
  # at the end of an epoch the save waits for the epoch's callbacks
  if (info$step %% cb$save_freq == 0L && !info$epoch_end) backup_save(cb, run)
  cb$save_freq - info$step %% cb$save_freq
}

#' @exportS3Method on_epoch_end rmsprop_callback_backup_and_restore
on_epoch_end.rmsprop_callback_backup_and_restore <- function(cb, run, epoch, logs) {
  step <- run_current_step(run)
  if (identical(cb$save_freq, "epoch") || step %% cb$save_freq == 0L) backup_save(cb, run)
  logs
}

# The run ended (not interrupted): a kept checkpoint holds the finished run.
#' @exportS3Method on_train_end rmsprop_callback_backup_and_restore
on_train_end.rmsprop_callback_backup_and_restore <- function(cb, run) {
  if (cb$delete_checkpoint) fit_checkpoint_remove(cb) else backup_save(cb, run)
  invisible()
}

# An interrupt between two steps: the run's state is whole, so it is saved
# (an interrupt inside a step's bookkeeping keeps the last checkpoint).
#' @exportS3Method on_interrupt rmsprop_callback_backup_and_restore
on_interrupt.rmsprop_callback_backup_and_restore <- function(cb, run) {
  if (!isTRUE(run$consistent)) return(invisible())
  backup_save(cb, run)
  run$saved_on_interrupt <- TRUE
  invisible()
}

backup_save <- function(cb, run) {
  path <- fit_checkpoint_save(cb, run$fingerprint, run_state_get(run))
  signalCondition(structure(class = c("rmsprop_checkpoint_saved", "condition"),
                            list(message = "checkpoint saved", call = NULL, path = path,
                                 step = run_current_step(run))))
  invisible(path)
}
