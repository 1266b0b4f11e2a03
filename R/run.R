# A training run from its spec: setting it up (the optimizer's clone, the
# callbacks' instances in their order, the bound loss and gradient or the
# engine), running it, and finishing it into an "rmsprop_fit".
#
# Owns: the order of the callbacks (evaluation, history, the user's, tol,
# the `callback` function, progress, then the backup, which must see every
# other callback's state), what the loop needs to know once, the parameters
# a run returns (chosen by the run's state, never by a message), the final
# value and the result object.
# Must never: step the caller's optimizer (the run steps a clone), or lose a
# run that was interrupted (the backup writes it first).

run_new <- function(spec, started = proc.time()[["elapsed"]]) {
  run <- new.env(parent = emptyenv())
  run$spec <- spec
  run$started <- started
  run_state_init(run, spec)
  run$opt <- if (is.null(spec$optimizer)) optimizer_rmsprop(learning_rate = 0.01) else
    spec$optimizer$clone()
  user <- spec$callbacks
  is_backup <- vapply(user, inherits, TRUE, "rmsprop_callback_backup_and_restore")
  names(user) <- sprintf("callbacks[[%d]]", seq_along(user))
  run$fingerprint <- if (any(is_backup)) spec_fingerprint(spec, run$opt)
  # In the order they act; the names are the keys of their states in
  # checkpoints (the class for the driver's own, the position for the user's).
  evaluated <- length(spec$metrics) > 0L || spec$has_val
  cbs <- c(if (evaluated) list(evaluation = evaluation_callback(spec),
                               history = history_callback(spec)),
           user[!is_backup],
           if (spec$tol > 0) list(tolerance = tolerance_callback(spec)),
           if (!is.null(spec$callback)) list(`function` = function_callback(spec$callback)),
           if (spec$progress) list(progress = progress_callback(spec)),
           user[is_backup])
  run$callbacks <- unname(Map(callback_instance, cbs, names(cbs),
                              MoreArgs = list(spec = spec)))
  run_bind(run, spec)
  run$resumed_from <- NA_integer_
  run$resumed_epoch <- NA_integer_
  run$result_par <- NULL
  run$restored_epoch <- NA_integer_
  run$best <- NULL
  run
}

# The loss and gradient of a step: bound in this process, or an engine's.
run_bind <- function(run, spec) {
  use_engine <- !is.null(spec$engine) && (spec$has_data || spec$source$split_coordinates)
  if (use_engine) {
    run$evaluate <- engine_evaluator(spec$engine, spec$fn, spec$source, spec$dots, spec$data)
    return(invisible(run))
  }
  b <- source_bind(spec$source, spec$fn, spec$dots, spec$has_data)
  run$loss <- if (spec$has_data) b$loss else b$loss1
  run$gradient <- if (spec$has_data) b$gradient else b$gradient1
  invisible(run)
}

# What the loop needs to know once (after a resume restored the optimizer).
run_prepare <- function(run) {
  spec <- run$spec
  insts <- run$callbacks
  # An instance uses a hook when its class has a method for it, unless it
  # lists the hook in `unused_hooks` (nothing to do in this run).
  has <- function(hook) {
    vapply(insts, function(i) !is.null(callback_method(i, hook)) && !hook %in% i$unused_hooks,
           TRUE)
  }
  steps <- has("on_train_batch_end")
  run$step_insts <- insts[steps]
  run$step_hooks <- lapply(run$step_insts, callback_method, hook = "on_train_batch_end")
  run$epoch_begin_hooks <- any(has("on_epoch_begin"))
  ends <- has("on_epoch_end")
  run$epoch_insts <- insts[ends]
  run$epoch_hooks <- lapply(run$epoch_insts, callback_method, hook = "on_epoch_end")
  run$epoch_work <- any(ends)
  # A step hook whose callback says `wants_recent` gets the last 50 losses.
  run$hook_wants_recent <- vapply(run$step_insts, function(i) isTRUE(i$wants_recent), TRUE)
  run$want_recent <- any(run$hook_wants_recent)
  # A numeric learning rate is the same for every step until a callback
  # changes it at the end of an epoch: the loop writes it into the history
  # in bulk; for a schedule or a function the optimizer reports the rate
  # each step used (it is never evaluated again).
  run$lr_fixed <- !is.null(fit_config_learning_rate(run$opt))
  run$lr_now <- if (run$lr_fixed) fit_learning_rate(run$opt) else NA_real_
  run$extras <- length(run$step_hooks) > 0L || run$epoch_work || !run$lr_fixed ||
    spec$has_data
  run$stop_code <- NULL
  invisible(run)
}

# Early stopping's best epoch, for the result.
run_note_best <- function(run, best) {
  run$best <- best
  invisible()
}

# A callback hands the run the parameters to return (early stopping's best
# weights). FALSE when the run's state decides them instead (a non-finite
# loss returns the last parameters whose loss was finite).
run_set_result_par <- function(run, par, epoch) {
  if (isTRUE(run$return_prev)) return(FALSE)
  run$result_par <- par
  run$restored_epoch <- as.integer(epoch)
  TRUE
}

# The sentence for a run that reached its limit.
run_limit_message <- function(run) {
  spec <- run$spec
  step <- run$step
  if (!spec$has_data) return(sprintf("step limit reached (%d steps)", step))
  if (run$epochs_done == spec$epochs) {
    return(sprintf("epoch limit reached (%d epochs, %d steps)", run$epochs_done, step))
  }
  sprintf("step limit reached (%d steps, %s epoch %d)", step,
          if (run$batch >= spec$n_batches) "after" else "during", run$epoch)
}

# An interrupt (Ctrl-C) between or inside steps: the backup writes the run
# when its state is whole, the progress line gets its last draw.
run_interrupted <- function(run) {
  callbacks_call(run, "on_interrupt")   # saves the state as it was: resumable
  run$code <- run_codes[["interrupted"]]
  run$msg <- sprintf("interrupted after step %d: returning the parameters reached so far",
                     run$step)
  for (inst in run$callbacks) {
    if (inherits(inst, "rmsprop_callback_progress")) run_progress_done(inst, run)
  }
  invisible()
}

# What the run returns: the parameters chosen by its state, the final value,
# the history.
run_finish <- function(run) {
  if (is.null(run$msg)) run$msg <- run_limit_message(run)
  interrupted <- run$code == run_codes[["interrupted"]]
  if (!interrupted) {
    run$finished <- TRUE
    callbacks_call(run, "on_train_end")
  }
  par_step <- run$step
  final_par <- if (isTRUE(run$return_prev)) {
    par_step <- run$step - 1L
    run$prev_par
  } else if (!is.null(run$result_par)) {
    run$result_par
  } else {
    run$opt$finalize_variable_values(run$par)
  }
  value <- run_final_value(run, final_par)
  if (run$code == run_codes[["interrupted"]]) run_interrupt_exit(run)
  if (run$code == run_codes[["nonfinite"]]) {
    rmsprop_warn("nonfinite", paste0("minimize() ", run$msg, "."))
  }
  run_result(run, final_par, value, par_step)
}

# fn at the returned parameters (on all rows); an interrupt here still
# returns the run.
run_final_value <- function(run, par) {
  spec <- run$spec
  tryCatch({
    loss <- if (!is.null(run$evaluate)) {
      res <- run$evaluate(par, if (spec$has_data) seq_len(spec$n_obs), need_grad = FALSE)
      res$loss
    } else if (spec$has_data) run$loss(par, spec$data) else run$loss(par)
    run$n_fn <- run$n_fn + 1
    fit_check_loss(loss)
  }, interrupt = function(cond) {
    if (run$code != run_codes[["interrupted"]]) run_interrupted(run)
    NA_real_
  })
}

# After an interrupt: in an interactive session (or with
# options(rmsprop.on_interrupt = "return")) a message, and the partial result
# is returned; in a script an error, so the script ends with a non-zero
# status after the checkpoint (if any) was written.
run_interrupt_exit <- function(run) {
  how <- getOption("rmsprop.on_interrupt", if (interactive()) "return" else "error")
  saved <- isTRUE(run$saved_on_interrupt)
  if (!identical(how, "error")) {
    message("minimize(): ", run$msg, ".")
    return(invisible())
  }
  backup <- Filter(function(i) inherits(i, "rmsprop_callback_backup_and_restore"),
                   run$callbacks)
  where <- if (length(backup)) {
    dir <- encodeString(backup[[1]]$backup_dir, quote = "\"")
    if (saved) {
      sprintf("; the checkpoint in %s holds that step: run the same call again to resume", dir)
    } else if (file.exists(fit_checkpoint_path(backup[[1]]))) {
      # (an interrupt inside a step's bookkeeping keeps the last save)
      sprintf("; the checkpoint in %s holds the last save: run the same call again to resume",
              dir)
    } else {
      sprintf("; no checkpoint had been written to %s yet", dir)
    }
  } else ""
  rmsprop_abort("interrupted", sprintf("minimize() was interrupted after step %d%s.", run$step,
                                       where), step = run$step)
}

run_result <- function(run, final_par, value, par_step) {
  spec <- run$spec
  step <- run$step
  keep <- seq_len(step)
  history <- list(step = keep)
  if (spec$has_data) history$epoch <- run$h_epoch[keep]
  history$loss <- run$h_loss[keep]
  history$learning_rate <- run$h_lr[keep]
  history$grad_norm <- run$h_gnorm[keep]
  for (inst in run$callbacks) {
    if (inherits(inst, "rmsprop_callback_history")) history <- c(history, history_columns(inst, step))
  }
  # what data.frame() makes of these columns, without its checks
  history <- structure(history, class = "data.frame", row.names = c(NA_integer_, -step))
  epoch_of <- function(s) {
    if (s < 1L) return(NA_integer_)
    if (spec$has_data) run$h_epoch[s] else as.integer(s)
  }
  restored <- !is.null(run$result_par)
  structure(list(
    par = final_par,
    value = value,
    counts = c(`function` = run$n_fn, gradient = run$n_gr),
    convergence = run$code,
    message = run$msg,
    history = history,
    optimizer = run$opt,
    steps = step,
    epochs = as.integer(run$epochs_done),
    elapsed = run$elapsed + proc.time()[["elapsed"]] - run$started,
    resumed_from = run$resumed_from,
    resumed_epoch = run$resumed_epoch,
    best_epoch = run$restored_epoch,
    restored = restored,
    best = run$best,
    par_step = if (restored) NA_integer_ else as.integer(par_step),
    par_epoch = if (restored) run$restored_epoch else epoch_of(par_step),
    metrics = names(spec$metrics),
    gradient = spec$source$kind
  ), class = "rmsprop_fit")
}
