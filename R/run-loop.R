# The training loop of minimize(): steps and epochs over the run's state.
#
# Owns: one step (the batch, the loss and gradient, the optimizer's step, the
# per-step history), the countdown to the step hooks, the end of an epoch
# (its logs, then the callbacks), and stopping.
# Must never: copy the history per step (the loop keeps the run's state as
# local variables, the history vectors changed in place), build lists or
# call hooks in a step when nothing asks for it, or leave the state
# half-updated where a callback or an interrupt could see it (`consistent`
# is FALSE from the optimizer's step to the end of the step's hooks).
#
# Why local variables: the state lives in the loop's frame while it runs
# (run_fields' order, coldest first, then the hot constants), and callbacks
# read it from there (run_get()); it goes back into the run's environment
# when the loop ends or is unwound by an interrupt.

run_loop <- function(run) {
  here <- environment()
  spec <- run$spec
  # Cold constants first (what only epochs and hooks read stays in `run`) ...
  # One hook needing nothing more than `info` (the `callback` function) is
  # called directly: its countdown is the loop's.
  one_hook <- length(run$step_hooks) == 1L && !run$want_recent
  hook <- if (one_hook) run$step_hooks[[1L]]
  hook_inst <- if (one_hook) run$step_insts[[1L]]
  hooks <- run$step_hooks
  hook_insts <- run$step_insts
  hook_ids <- seq_along(hooks)
  due <- rep(1, length(hooks))
  wants_recent <- run$hook_wants_recent
  tick <- if (length(run$step_hooks)) 1L else .Machine$integer.max
  lr_fixed <- run$lr_fixed
  lr_now <- run$lr_now
  lr_from <- run$step + 1L
  shuffle <- spec$shuffle
  n_obs <- spec$n_obs
  batch_size <- spec$batch_size
  n_batches <- spec$n_batches
  data <- spec$data
  whole <- spec$has_data && n_batches == 1L && !shuffle   # every batch is `data` itself
  evaluate <- run$evaluate
  passed <- first <- last <- 0L
  info <- res <- rows <- halt <- NULL
  hooked <- FALSE
  epoch_work <- run$epoch_work
  max_steps <- spec$max_steps
  has_data <- spec$has_data
  extras <- run$extras
  local <- is.null(evaluate)
  f <- run$loss
  g <- run$gradient
  # ... then the state, in run_fields' order (coldest first).
  for (n in run_local_fields) assign(n, get(n, envir = run), envir = here)
  opt <- run$opt
  consistent <- TRUE
  gnorm <- loss <- 0
  grad <- NULL
  run$loop_env <- here
  on.exit(run_loop_export(here, run))

  while (step < max_steps) {
    if (has_data) {
      if (batch >= n_batches) {
        epoch <- epoch + 1L
        batch <- 0L
        epoch_first <- step + 1L
        order <- if (shuffle) sample.int(n_obs) else seq_len(n_obs)
        if (run$epoch_begin_hooks) callbacks_call(run, "on_epoch_begin", epoch)
      }
      batch <- batch + 1L
      first <- (batch - 1L) * batch_size + 1L
      last <- min(batch * batch_size, n_obs)
    }
    if (local) {
      if (has_data) {
        rows <- if (whole) data else data[order[first:last], , drop = FALSE]
        loss <- f(par, rows)
        grad <- g(par, rows)
      } else {
        loss <- f(par)
        grad <- g(par)
      }
      n_fn <- n_fn + 1
      n_gr <- n_gr + 1
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
    if (step == 0L) run_check_gradient(run, grad, step)
    if (!is.numeric(loss) || length(loss) != 1L || !is.finite(loss)) {
      loss <- fit_check_loss(loss)
      if (!is.finite(loss)) halt <- run_nonfinite(step, loss)
    }
    gnorm <- if (is.double(grad) && !is.object(grad)) sqrt(sum(grad * grad)) else
      run_grad_norm(run, grad, step)
    if (is.null(halt) && !is.finite(gnorm) &&
        fit_not_all_finite(unlist(grad, use.names = FALSE))) {
      halt <- run_nonfinite(step, NULL)
    }
    if (!is.null(halt)) {
      code <- run_codes[["nonfinite"]]
      msg <- halt$msg
      return_prev <- halt$return_prev
      break
    }
    consistent <- FALSE
    prev_par <- par
    par <- opt$step(grad, par)
    step <- step + 1L
    if (step > length(h_loss)) {
      n <- min(max_steps, max(1024L, 2L * length(h_loss)))
      length(h_loss) <- length(h_gnorm) <- length(h_lr) <- n
      if (has_data) length(h_epoch) <- n
    }
    h_loss[step] <- loss
    h_gnorm[step] <- gnorm
    if (extras) {
      if (!lr_fixed) h_lr[step] <- fit_used_learning_rate(opt)
      if (has_data) {
        h_epoch[step] <- epoch
        if (batch >= n_batches) epochs_done <- epoch
      } else {
        epoch <- epoch_first <- epochs_done <- step
      }
      # Between steps unless the epoch's callbacks are still to come.
      consistent <- !(epoch_work && batch >= n_batches)
      passed <- passed + 1L
      hooked <- (tick <- tick - 1L) <= 0L   # only hooks ask a run to stop
      if (hooked) {
        info <- list(step = step, epoch = epoch, loss = loss, par = par, grad_norm = gnorm,
                     learning_rate = if (lr_fixed) lr_now else h_lr[step],
                     epoch_end = batch >= n_batches)
        if (one_hook) tick <- hook(hook_inst, run, info) else {
          # each hook's own countdown; the loop's is the nearest
          tick <- .Machine$integer.max
          for (i in hook_ids) {
            if ((due[i] <- due[i] - passed) <= 0) {
              if (wants_recent[i]) info$recent <- h_loss[max(1L, step - 49L):step]
              due[i] <- hooks[[i]](hook_insts[[i]], run, info)
            }
            if (due[i] < tick) tick <- due[i]
          }
        }
        passed <- 0L
      }
      if (epoch_work && batch >= n_batches) {
        hooked <- TRUE
        if (lr_fixed) {   # callbacks may change the rate: record it first
          h_lr[lr_from:step] <- lr_now
          lr_from <- step + 1L
        }
        run_epoch_end(run, epoch, step, epoch_first, h_loss, h_gnorm, h_lr[step])
        if (lr_fixed) lr_now <- fit_learning_rate(opt)
      }
      if (hooked && !is.null(run$stop_code)) {
        code <- run$stop_code
        msg <- run$stop_msg
        consistent <- TRUE
        break
      }
    }
    consistent <- TRUE
  }
  invisible()
}

# The end of an epoch: its logs (the mean loss and gradient norm of its
# steps, the rate of its last step) go through the epoch's callbacks.
run_epoch_end <- function(run, epoch, step, epoch_first, h_loss, h_gnorm, lr) {
  steps <- epoch_first:step
  callbacks_epoch_end(run, epoch, list(loss = mean(h_loss[steps]),
                                       grad_norm = mean(h_gnorm[steps]), learning_rate = lr))
}

# Why a run stops at a non-finite loss (`loss`) or gradient (loss NULL) after
# `step` steps: the message and whether the parameters before the step are
# the ones to return. Before the first step there is nothing to return.
run_nonfinite <- function(step, loss) {
  if (is.null(loss)) {
    fit_nonfinite_start(step, "the gradient is not finite at the initial parameters")
    return(list(return_prev = FALSE, msg = sprintf(paste(
      "stopped before step %d: the gradient is not finite at the parameters reached by",
      "step %d; returning those parameters"), step + 1L, step)))
  }
  fit_nonfinite_start(step, sprintf("the loss is %s at the initial parameters", format(loss)))
  list(return_prev = TRUE, msg = sprintf(paste(
    "stopped: the loss is %s at the parameters reached by step %d; returning the",
    "parameters before that step, the last ones whose loss was finite"), format(loss), step))
}

# The loop's state back into the run (when it returns or is unwound).
run_loop_export <- function(from, run) {
  for (n in run_local_fields) assign(n, get(n, envir = from, inherits = FALSE), envir = run)
  run$consistent <- get("consistent", envir = from, inherits = FALSE)
  if (get("lr_fixed", envir = from, inherits = FALSE)) {
    lr_from <- get("lr_from", envir = from, inherits = FALSE)
    if (lr_from <= run$step) {
      run$h_lr[lr_from:run$step] <- get("lr_now", envir = from, inherits = FALSE)
    }
  }
  run$loop_env <- NULL
  invisible()
}

# A field of the run's state, from the loop's frame while it runs.
run_get <- function(run, name) {
  env <- run$loop_env
  if (is.environment(env)) get(name, envir = env, inherits = FALSE) else get(name, envir = run)
}
run_current_par <- function(run) run_get(run, "par")
run_current_step <- function(run) run_get(run, "step")
run_current_optimizer <- function(run) run_get(run, "opt")

# The Euclidean norm of a gradient that is not a plain double vector (a list
# of leaves, integers); anything without numbers is refused first.
run_grad_norm <- function(run, grad, step) {
  flat <- if (is.list(grad) && !is.object(grad)) unlist(grad, use.names = FALSE) else grad
  if (!(is.double(flat) || is.integer(flat) || is.logical(flat)) || is.object(flat)) {
    run_check_gradient(run, grad, step, force = TRUE)
  }
  sqrt(sum(as.double(flat)^2))
}

# The gradient must match `par` by the optimizer's rules (structure.R): a
# wrong `gr` is named, with the signature it is called with, before the
# optimizer sees it. Checked at the first step (later steps are checked by
# the optimizer itself) and whenever a gradient has no numbers.
run_check_gradient <- function(run, grad, step, force = FALSE) {
  spec <- run$spec
  p <- if (is.null(grad)) list(kind = "null") else
    structure_problem(make_skeleton(spec$par, "par")$skeleton, grad, grads = TRUE)
  if (is.null(p) && force) p <- list(kind = "type")
  if (is.null(p)) return(invisible(TRUE))
  src <- spec$source
  who <- if (src$kind == "function") {
    sprintf("`gr(par%s)`", if (spec$has_data) ", batch" else "")
  } else src$label
  what <- if (identical(p$kind, "null")) "it returned NULL" else
    if (is.null(p$skeleton)) sprintf("it returned %s", describe_value(grad)) else
      describe_problem(p, "gr")
  rmsprop_abort("gradient", sprintf(paste(
    "%s must return the gradient of `fn` shaped like `par` (numbers in the same list",
    "structure, lengths and dims); at %s %s."), who,
    if (step == 0L) "the starting parameters" else sprintf("step %d", step + 1L), what),
    argument = "gr")
}
