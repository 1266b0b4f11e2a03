# The road of one step, the same for $step(), $apply(), $apply_gradients(),
# $step_in_place() and the loss-scale wrapper: R resolves the learning rate
# of the call (a schedule or function is evaluated here, once per call), then
# ONE .Call (C_step) checks everything, updates the state and returns the new
# variables. C never calls back into R. When C finds something to say
# instead (a problem, or NULL gradients to warn about), it returns a signal
# with nothing changed, and R words it (signals.R).
#
# Owns: the step road, building on the first step (undone if that step
# fails), building and finalizing with the variables, and pairs of
# apply_gradients().
# Must never: evaluate a learning-rate function more than once per call, or
# change anything before C has accepted the call.

# Bits of C_step's `flags` (src/step.c).
step_in_place_flag <- 1L
step_allow_null_flag <- 2L

# One step. `loss_scale` > 0 overrides the configured loss_scale_factor (the
# dynamic loss-scale wrapper passes its scale); with `skip_nonfinite` a
# non-finite gradient returns its signal (nothing changed) instead of an
# error. The `step` method writes this body out (one closure call less).
optimizer_step <- function(private, grads, variables, flags = 0L, loss_scale = 0,
                           skip_nonfinite = FALSE) {
  res <- .Call(C_step, private$ptr, grads, variables, private$skeleton, private$lr, flags,
               loss_scale)
  if (is.object(res) && inherits(res, "rmsprop_signal")) {
    step_signal(private, res, grads, variables, flags, loss_scale, skip_nonfinite)
  } else {
    res
  }
}

# What C returned instead of a result, with nothing changed:
# - "not_built": the first step builds the optimizer, then steps;
# - "learning_rate": the rate is a schedule or a function: R evaluates it
#   (once for this call) and C is called with the number;
# - "null_gradients": the warning comes before anything changes (so
#   options(warn = 2) finds the optimizer as it was), then the same step
#   goes ahead with the same learning rate;
# - anything else is a problem with the input: a classed error.
step_signal <- function(private, sig, grads, variables, flags, loss_scale, skip_nonfinite,
                        lr = private$lr) {
  if (sig$kind == "not_built") {
    return(first_step(private, grads, variables, flags, loss_scale, skip_nonfinite))
  }
  if (sig$kind == "learning_rate") {
    lr <- resolve_learning_rate(private)
    sig <- .Call(C_step, private$ptr, grads, variables, private$skeleton, lr, flags, loss_scale)
    if (!(is.object(sig) && inherits(sig, "rmsprop_signal"))) return(sig)
  }
  if (sig$kind == "null_gradients" && bitwAnd(flags, step_allow_null_flag) == 0L) {
    warn_null_gradients(private, sig)
    flags <- bitwOr(flags, step_allow_null_flag)
    sig <- .Call(C_step, private$ptr, grads, variables, private$skeleton, lr, flags, loss_scale)
    if (!(is.object(sig) && inherits(sig, "rmsprop_signal"))) return(sig)
  }
  if (skip_nonfinite && sig$kind == "nonfinite" && isTRUE(sig$in_grads)) return(sig)
  signal_error(private, sig)
}

# The first step builds the optimizer; if the step then fails (or is
# skipped, or interrupted), the build is undone so the optimizer is exactly
# as before the call.
first_step <- function(private, grads, variables, flags, loss_scale, skip_nonfinite) {
  before <- .Call(C_state_get, private$ptr)
  ok <- FALSE
  on.exit(if (!ok) unbuild(private, before))
  optimizer_build(private, variables)
  res <- optimizer_step(private, grads, variables, flags, loss_scale, skip_nonfinite)
  ok <- !(is.object(res) && inherits(res, "rmsprop_signal"))
  res
}

unbuild <- function(private, state) {
  .Call(C_state_set, private$ptr, state)
  private$skeleton <- NULL
  private$paths <- NULL
}

warn_null_gradients <- function(private, sig) {
  paths <- private$paths[sig$extra]
  rmsprop_warn("null_gradient", sprintf("no gradient (NULL) for %s: left unchanged.",
                                        paste0("\"", paths, "\"", collapse = ", ")),
               paths = paths)
}

optimizer_build <- function(private, variables) {
  if (!is.null(private$skeleton)) {
    sig <- .Call(C_check_structure, private$ptr, variables, private$skeleton)
    if (!is.null(sig)) signal_error(private, sig)
    return(invisible(NULL))
  }
  sk <- make_skeleton(variables)
  mask <- decay_mask(private$exclusions, sk$paths)
  .Call(C_state_build, private$ptr, sk$lengths, mask)
  private$skeleton <- sk$skeleton
  private$paths <- sk$paths
  invisible(NULL)
}

optimizer_apply_gradients <- function(private, grads_and_vars) {
  pairs <- pairs_to_structures(grads_and_vars)
  optimizer_step(private, pairs$grads, pairs$vars)
}

# list(list(g1, v1), list(g2, v2), ...) -> list(grads = list(g1, g2), vars = list(v1, v2)),
# keeping the names of the pairs.
pairs_to_structures <- function(grads_and_vars) {
  ok <- is.list(grads_and_vars) && length(grads_and_vars) > 0L &&
    all(vapply(grads_and_vars, function(p) is.list(p) && length(p) == 2L, logical(1)))
  if (!ok) {
    rmsprop_abort("argument",
      "`grads_and_vars` must be a non-empty list of list(gradient, variable) pairs.",
      argument = "grads_and_vars")
  }
  grads <- lapply(grads_and_vars, function(p) p[[1L]])
  vars <- lapply(grads_and_vars, function(p) p[[2L]])
  names(grads) <- names(vars) <- names(grads_and_vars)
  list(grads = grads, vars = vars)
}

# The variables with their moving averages (SPEC B), after the checks of a
# step (structure, finite values).
optimizer_finalize <- function(private, variables) {
  if (is.null(private$skeleton)) return(variables)
  res <- .Call(C_ema_values, private$ptr, variables, private$skeleton)
  if (inherits(res, "rmsprop_signal")) signal_error(private, res)
  res
}
