# The training loop of minimize() and its run state.
#
# Owns: the run state (what a checkpoint holds), the loop over steps and
# epochs, and what happens at the end of an epoch.
# Must never: copy the history per step (the loop keeps the history vectors
# in local variables, changed in place), look at the clock or build lists in
# a step when nothing asks for it, or leave the state half-updated where a
# checkpoint could see it.
#
# Why a separate function with a small frame: R finds a variable by walking
# the frame from the most recently defined binding, so a loop in the frame of
# minimize() (dozens of variables) pays for every lookup. fit_loop() defines
# its locals coldest first, so the ones read every step are found first.

# The state that changes during a run, saved in checkpoints (besides the
# history vectors h_*).
fit_state_names <- c("par", "opt", "step", "epoch", "batch", "epochs_done", "epoch_first",
                     "order", "n_fn", "n_gr", "n_direct", "code", "msg", "finished",
                     "prev_par", "prev_mean", "last_val", "cb_state")

# The names fit_loop() keeps as locals and puts back into the context.
fit_loop_state <- c("h_epoch", "h_lr", "h_val", "order", "epoch_first", "epochs_done", "epoch",
                    "batch", "lr_from", "tick", "code", "msg", "lr_now", "n_fn", "n_gr", "opt",
                    "prev_par", "h_gnorm", "h_loss", "n_direct", "step", "par")

fit_state_init <- function(ctx, par, opt, cbs) {
  max_steps <- ctx$max_steps
  ctx$par <- par
  ctx$opt <- opt
  ctx$step <- 0L               # steps taken
  ctx$epoch <- 0L              # the current epoch
  ctx$batch <- ctx$n_batches   # batches done in the epoch (n_batches: start a new one;
                               # without data it stays 1 and every step is an epoch)
  ctx$epochs_done <- 0L
  ctx$epoch_first <- 1L        # first step of the current epoch
  ctx$order <- NULL            # the epoch's row order
  ctx$n_fn <- 0
  ctx$n_gr <- 0
  ctx$n_direct <- 0            # evaluations made directly (one fn and one gr call each)
  ctx$code <- 1L
  ctx$msg <- NULL
  ctx$finished <- FALSE
  ctx$prev_par <- NULL         # the parameters before the last step
  ctx$prev_mean <- NA_real_    # for tol: the mean loss of the previous epoch
  ctx$last_val <- NA_real_
  ctx$cb_state <- lapply(cbs, fit_callback_init)
  ctx$elapsed_before <- 0
  # The history starts small and doubles as steps are taken (fit_loop()):
  # sized for the step limit up front, `steps = .Machine$integer.max` would
  # ask for tens of GB before the first step.
  n <- min(max_steps, 1024L)
  ctx$h_loss <- rep(NA_real_, n)
  ctx$h_lr <- rep(NA_real_, n)
  ctx$h_gnorm <- rep(NA_real_, n)
  ctx$h_epoch <- if (ctx$has_data) rep(NA_integer_, n) else NULL
  ctx$h_val <- if (ctx$has_val) rep(NA_real_, n) else NULL
  invisible(ctx)
}

fit_state_restore <- function(ctx, s) {
  for (n in fit_state_names) assign(n, s[[n]], envir = ctx)
  keep <- seq_len(s$step)
  ctx$h_loss[keep] <- s$h_loss
  ctx$h_lr[keep] <- s$h_lr
  ctx$h_gnorm[keep] <- s$h_gnorm
  if (ctx$has_data) ctx$h_epoch[keep] <- s$h_epoch
  if (ctx$has_val) ctx$h_val[keep] <- s$h_val
  ctx$elapsed_before <- s$elapsed
  fit_rng_set(s$rng)
  invisible(ctx)
}

# Writes the checkpoint of the run in `ctx` (the loop exports its locals and
# records the learning rates first).
fit_save_state <- function(ctx) {
  s <- mget(fit_state_names, envir = ctx)
  step <- ctx$step
  if (!ctx$has_data) s$epochs_done <- step
  keep <- seq_len(step)
  s$h_loss <- ctx$h_loss[keep]
  s$h_lr <- ctx$h_lr[keep]
  s$h_gnorm <- ctx$h_gnorm[keep]
  if (ctx$has_data) s$h_epoch <- ctx$h_epoch[keep]
  if (ctx$has_val) s$h_val <- ctx$h_val[keep]
  s$elapsed <- ctx$elapsed_before + proc.time()[["elapsed"]] - ctx$started
  s$rng <- fit_rng_get()
  fit_checkpoint_save(ctx$backup, ctx$fingerprint, s)
}

fit_loop_export <- function(from, ctx) {
  for (n in fit_loop_state) assign(n, get(n, envir = from, inherits = FALSE), envir = ctx)
  invisible()
}

# The end of an epoch: validation loss, callbacks, tol and progress. Gets
# numbers, not the history (a vector passed to a function could be shared
# and then copied by the loop's next write). Returns list(val, code, msg).
fit_end_of_epoch <- function(ctx, par, opt, step, epoch, mean_loss, mean_gnorm, prev_loss,
                             code, msg) {
  val <- if (ctx$has_val) ctx$val_loss_of(par) else NA_real_
  ctx$last_val <- val
  logs <- list(loss = mean_loss, val_loss = val)
  cbs <- ctx$cbs
  for (i in seq_along(cbs)) {
    out <- fit_callback_epoch_end(cbs[[i]], ctx$cb_state[[i]], epoch, logs, par, opt)
    ctx$cb_state[[i]] <- out$state
    if (out$stop && code == 1L) {
      code <- 2L
      msg <- out$message
    }
  }
  tol <- ctx$tol
  if (tol > 0 && code == 1L) {
    if (!ctx$has_data) {
      if (mean_gnorm < tol) {
        code <- 0L
        msg <- sprintf("converged: the gradient norm fell below tol after step %d", step)
      } else if (step > 1L && abs(mean_loss - prev_loss) < tol) {
        code <- 0L
        msg <- sprintf("converged: the change of the loss fell below tol at step %d", step)
      }
    } else if (mean_gnorm < tol) {
      code <- 0L
      msg <- sprintf("converged: the mean gradient norm of epoch %d fell below tol", epoch)
    } else if (!is.na(ctx$prev_mean) && abs(mean_loss - ctx$prev_mean) < tol) {
      code <- 0L
      msg <- sprintf("converged: the mean loss changed by less than tol in epoch %d", epoch)
    }
    ctx$prev_mean <- mean_loss
  }
  list(val = val, code = code, msg = msg)
}

# A checkpoint from inside the loop; the context then lets go of the history
# vectors again, so that the loop keeps changing them in place.
fit_loop_save <- function(here, ctx) {
  fit_loop_export(here, ctx)
  fit_save_state(ctx)
  ctx$h_loss <- ctx$h_gnorm <- ctx$h_lr <- ctx$h_epoch <- ctx$h_val <- NULL
  invisible()
}

fit_loop <- function(ctx) {
  # Cold locals first ...
  here <- environment()
  cbs_any <- length(ctx$cbs) > 0L
  prog <- ctx$prog
  epoch_work <- ctx$epoch_work
  save_every <- ctx$save_every
  save_epochs <- ctx$save_epochs
  whole <- ctx$whole
  evaluate <- ctx$evaluate
  has_val <- ctx$has_val
  h_lr <- ctx$h_lr
  h_val <- ctx$h_val
  epoch_first <- ctx$epoch_first
  epochs_done <- ctx$epochs_done
  lr_from <- ctx$lr_from
  tick <- ctx$tick
  code <- ctx$code
  msg <- ctx$msg
  lr_now <- ctx$lr_now
  n_fn <- ctx$n_fn
  n_gr <- ctx$n_gr
  res <- out <- info <- reply <- NULL
  # ... then those of mini-batches and callbacks ...
  shuffle <- ctx$shuffle
  n_obs <- ctx$n_obs
  batch_size <- ctx$batch_size
  n_batches <- ctx$n_batches
  data <- ctx$data
  h_epoch <- ctx$h_epoch
  order <- ctx$order
  first <- last <- 0L
  rows <- NULL
  lr_fixed <- ctx$lr_fixed
  callback <- ctx$callback
  epoch <- ctx$epoch
  batch <- ctx$batch
  # ... then the ones every step reads.
  max_steps <- ctx$max_steps
  has_data <- ctx$has_data
  extras <- ctx$extras
  direct <- ctx$direct
  fn <- ctx$fn
  gr <- ctx$gr
  opt <- ctx$opt
  prev_par <- ctx$prev_par
  h_gnorm <- ctx$h_gnorm
  h_loss <- ctx$h_loss
  n_direct <- ctx$n_direct
  step <- ctx$step
  par <- ctx$par
  gnorm <- 0
  grad <- NULL
  loss <- 0

  on.exit(fit_loop_export(here, ctx))
  ctx$h_loss <- ctx$h_gnorm <- ctx$h_lr <- ctx$h_epoch <- ctx$h_val <- NULL  # one reference each

  while (step < max_steps) {
    if (has_data) {
      if (batch >= n_batches) {
        epoch <- epoch + 1L
        batch <- 0L
        epoch_first <- step + 1L
        order <- if (shuffle) sample.int(n_obs) else seq_len(n_obs)
      }
      batch <- batch + 1L
      first <- (batch - 1L) * batch_size + 1L
      last <- min(batch * batch_size, n_obs)
    }
    if (direct) {
      if (has_data) {
        rows <- if (whole) data else data[order[first:last], , drop = FALSE]
        loss <- fn(par, rows)
        grad <- gr(par, rows)
      } else {
        loss <- fn(par)
        grad <- gr(par)
      }
      n_direct <- n_direct + 1
    } else {
      res <- if (has_data) {
        evaluate(par, order[first:last], need_grad = TRUE, order = order, span = c(first, last))
      } else {
        evaluate(par, NULL)
      }
      n_fn <- n_fn + res$n_fn
      n_gr <- n_gr + res$n_gr
      loss <- res$loss
      grad <- res$grad
    }
    if (!is.numeric(loss) || length(loss) != 1L || !is.finite(loss)) {
      loss <- fit_check_loss(loss)
      if (!is.finite(loss)) {
        fit_nonfinite_start(step, sprintf("the loss is %s at the initial parameters",
                                          format(loss)))
        code <- 4L
        msg <- sprintf(paste(
          "stopped: the loss is %s at the parameters reached by step %d; returning the",
          "parameters before that step, the last ones whose loss was finite"), format(loss), step)
        break
      }
    }
    gnorm <- sqrt(sum(if (is.list(grad)) unlist(grad, use.names = FALSE)^2 else grad * grad))
    if (!is.finite(gnorm) && fit_not_all_finite(unlist(grad, use.names = FALSE))) {
      fit_nonfinite_start(step, "the gradient is not finite at the initial parameters")
      code <- 4L
      msg <- sprintf(paste(
        "stopped before step %d: the gradient is not finite at the parameters reached by",
        "step %d; returning those parameters"), step + 1L, step)
      break
    }
    prev_par <- par
    par <- opt$step(grad, par)
    step <- step + 1L
    if (step > length(h_loss)) {
      n <- min(max_steps, 2 * length(h_loss))
      length(h_loss) <- length(h_gnorm) <- length(h_lr) <- n
      if (has_data) length(h_epoch) <- n
      if (!is.null(h_val)) length(h_val) <- n
    }
    h_loss[step] <- loss
    h_gnorm[step] <- gnorm
    if (extras) {
      if (!lr_fixed) h_lr[step] <- fit_used_learning_rate(opt)
      if (has_data) {
        h_epoch[step] <- epoch
        if (batch >= n_batches) epochs_done <- epoch
      } else {
        epoch <- epoch_first <- step
      }
      if (!is.null(callback)) {
        info <- list(step = step, epoch = epoch, loss = loss, par = par, grad_norm = gnorm,
                     learning_rate = if (lr_fixed) lr_now else h_lr[step])
        reply <- callback(info)
        if (is.logical(reply) && length(reply) == 1L && !is.na(reply) && !reply) {
          code <- 2L
          msg <- sprintf("stopped by the callback after step %d", step)
        }
      }
      if (!is.null(prog) && (tick <- tick - 1L) <= 0L) {
        tick <- fit_progress_tick(prog, step, epoch, h_loss[max(1L, step - 49L):step],
                                  ctx$last_val, if (lr_fixed) lr_now else h_lr[step])
      }
      if (epoch_work && batch >= n_batches) {
        if (lr_fixed) {   # callbacks may change the rate: record it first
          h_lr[lr_from:step] <- lr_now
          lr_from <- step + 1L
        }
        out <- fit_end_of_epoch(
          ctx, par, opt, step, epoch,
          mean_loss = if (epoch_first == step) h_loss[step] else mean(h_loss[epoch_first:step]),
          mean_gnorm = if (epoch_first == step) gnorm else mean(h_gnorm[epoch_first:step]),
          prev_loss = if (step > 1L) h_loss[step - 1L] else NA_real_,
          code = code, msg = msg)
        code <- out$code
        msg <- out$msg
        if (has_val) h_val[step] <- out$val
        if (lr_fixed && cbs_any) lr_now <- fit_learning_rate(opt)
        if (save_epochs) fit_loop_save(here, ctx)
      }
      if (save_every > 0L && step %% save_every == 0L) {
        if (lr_fixed) {
          h_lr[lr_from:step] <- lr_now
          lr_from <- step + 1L
        }
        fit_loop_save(here, ctx)
      }
      if (code != 1L) break
    }
  }
  invisible()
}
