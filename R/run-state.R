# The state of a training run, as one table of fields.
#
# Owns: which fields a run has, their starting values, which of them a
# checkpoint saves, how each is checked when a checkpoint is read (type,
# length, range, consistency with the run's spec), and the order in which
# the loop keeps them as local variables (coldest first: see run-loop.R).
# Saving, resuming and the loop's locals all follow from run_fields; no other
# list of state names exists.
# Must never: trust a saved field before its check ran (an edited checkpoint
# must give a classed error naming the field, never a huge allocation or a
# run in an impossible state).

# The convergence codes of a result, by name (stats::optim() style numbers).
run_codes <- c(converged = 0L, limit = 1L, stopped = 2L, interrupted = 3L, nonfinite = 4L)

# One field: `init` gives its starting value from the spec; `check(x, spec,
# state)` is TRUE when a saved value is usable, `what` says what it must be
# (a checkpoint's fields are checked in an order where `state`'s step and
# epochs are already known to be sound).
run_field <- function(init, check, what, saved = TRUE, local = TRUE) {
  list(init = init, check = check, what = what, saved = saved, local = local)
}

is_count <- function(x, upper = .Machine$integer.max) {
  (is.integer(x) || is.double(x)) && length(x) == 1L && !is.na(x) && x >= 0 && x <= upper &&
    x == round(x)
}
is_history <- function(x, n, type = "double") {
  typeof(x) == type && is.null(attributes(x)) && length(x) == n
}
is_par_like <- function(x, spec) {
  is.null(x) || tryCatch({
    flat <- unlist(x, use.names = FALSE)
    is.double(flat) && length(flat) == length(unlist(spec$par, use.names = FALSE)) &&
      all(is.finite(flat)) &&
      identical(relist_flat(rep(0, length(flat)), x),
                relist_flat(rep(0, length(flat)), spec$par))
  }, error = function(e) FALSE)
}
is_order <- function(x, spec) {
  is.null(x) || (is.integer(x) && is.null(attributes(x)) && length(x) == spec$n_obs &&
                   !anyNA(x) && min(x) >= 1L && max(x) <= spec$n_obs && !anyDuplicated(x))
}

# Coldest first: the loop defines its locals in this order, so the ones read
# at every step (at the end) are found first.
run_fields <- list(
  elapsed = run_field(
    function(s) 0, function(x, s, st) is.double(x) && length(x) == 1L && is.finite(x) && x >= 0,
    "a number of seconds >= 0", local = FALSE),
  rng = run_field(
    function(s) NULL,
    function(x, s, st) is.null(x) || (is.integer(x) && length(x) >= 1L && length(x) <= 1000L),
    "NULL or an R random seed (an integer vector)", local = FALSE),
  finished = run_field(function(s) FALSE, function(x, s, st) isTRUE(x) || isFALSE(x),
                       "TRUE or FALSE", local = FALSE),
  cb_state = run_field(function(s) list(), function(x, s, st) is.list(x),
                       "a list of callback states", local = FALSE),
  return_prev = run_field(function(s) FALSE, function(x, s, st) isTRUE(x) || isFALSE(x),
                          "TRUE or FALSE"),
  h_epoch = run_field(
    function(s) if (s$has_data) integer(0),
    function(x, s, st) if (!s$has_data) is.null(x) else is_history(x, st$step, "integer") &&
      !anyNA(x) && (!length(x) || (min(x) >= 1L && max(x) <= st$epoch)),
    "an integer vector of one epoch per step (NULL without data)"),
  h_lr = run_field(function(s) numeric(0), function(x, s, st) is_history(x, st$step),
                   "a double vector of one learning rate per step"),
  order = run_field(function(s) NULL, function(x, s, st) is_order(x, s),
                    "NULL or a permutation of the rows of `data`"),
  epoch_first = run_field(function(s) 1L,
                          function(x, s, st) is_count(x, st$step + 1) && x >= 1,
                          "a step number"),
  epochs_done = run_field(function(s) 0L, function(x, s, st) is_count(x, s$epochs),
                          "a number of epochs"),
  epoch = run_field(function(s) 0L,
                    function(x, s, st) is_count(x, s$epochs) && x >= st$epochs_done,
                    "an epoch number"),
  batch = run_field(function(s) s$n_batches, function(x, s, st) is_count(x, s$n_batches),
                    "a batch number"),
  code = run_field(function(s) run_codes[["limit"]],
                   function(x, s, st) is.integer(x) && length(x) == 1L && x %in% run_codes,
                   "a convergence code"),
  msg = run_field(function(s) NULL, function(x, s, st) is.null(x) ||
                    (is.character(x) && length(x) == 1L && !is.na(x)), "NULL or a string"),
  n_fn = run_field(function(s) 0, function(x, s, st) is_count(x, Inf), "a count"),
  n_gr = run_field(function(s) 0, function(x, s, st) is_count(x, Inf), "a count"),
  opt = run_field(
    function(s) NULL,
    function(x, s, st) is.environment(x) &&
      inherits(x, c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer")),
    "an optimizer"),
  prev_par = run_field(function(s) NULL, function(x, s, st) is_par_like(x, s),
                       "NULL or parameters shaped like `par`"),
  h_gnorm = run_field(function(s) numeric(0), function(x, s, st) is_history(x, st$step),
                      "a double vector of one gradient norm per step"),
  h_loss = run_field(function(s) numeric(0), function(x, s, st) is_history(x, st$step),
                     "a double vector of one loss per step"),
  step = run_field(function(s) 0L, function(x, s, st) is_count(x, s$max_steps),
                   function(s) sprintf("a whole number of steps in [0, %d]", s$max_steps)),
  par = run_field(function(s) s$par, function(x, s, st) !is.null(x) && is_par_like(x, s),
                  "finite parameters shaped like `par`")
)

run_saved_fields <- names(run_fields)[vapply(run_fields, `[[`, logical(1), "saved")]
run_local_fields <- names(run_fields)[vapply(run_fields, `[[`, logical(1), "local")]

# The starting state of a run, in the run's environment.
run_state_init <- function(run, spec) {
  for (n in names(run_fields)) assign(n, run_fields[[n]]$init(spec), envir = run)
  invisible(run)
}

# The saved fields as a list (the loop's frame holds them while it runs).
run_state_get <- function(run) {
  src <- if (is.environment(run$loop_env)) run$loop_env else run
  s <- mget(run_local_fields, envir = src)
  if (identical(src, run$loop_env) && isTRUE(src$lr_fixed) && src$lr_from <= s$step) {
    # the loop writes a fixed rate into the history in bulk: fill the copy
    s$h_lr[src$lr_from:s$step] <- src$lr_now
  }
  for (n in setdiff(run_saved_fields, run_local_fields)) s[n] <- list(get(n, envir = run))
  keep <- seq_len(s$step)
  for (h in c("h_loss", "h_lr", "h_gnorm", "h_epoch")) {
    if (!is.null(s[[h]])) s[[h]] <- s[[h]][keep]
  }
  s$cb_state <- callbacks_state(run)
  s$elapsed <- run$elapsed + proc.time()[["elapsed"]] - run$started
  s["rng"] <- list(fit_rng_get())   # NULL (never drawn) is a value here
  s
}

# Checks every saved field of a checkpoint's state against the spec, in an
# order where each check may rely on the fields checked before it (step
# first). Returns the state; a bad field is a classed error naming it.
run_state_check <- function(s, spec, path) {
  bad <- function(field, what) {
    rmsprop_abort("checkpoint", sprintf(paste(
      "the checkpoint %s is damaged: its field `%s` must be %s. It is not used;",
      "delete it to start afresh."), encodeString(path, quote = "\""), field, what),
      argument = "backup_dir", path = path, field = field)
  }
  if (!is.list(s) || !all(run_saved_fields %in% names(s))) {
    bad(setdiff(run_saved_fields, names(s))[1] %||% "state", "present")
  }
  order <- c("step", "epochs_done", "epoch", setdiff(run_saved_fields,
                                                     c("step", "epochs_done", "epoch")))
  for (n in order) {
    f <- run_fields[[n]]
    if (!isTRUE(tryCatch(f$check(s[[n]], spec, s), error = function(e) FALSE))) {
      bad(n, if (is.character(f$what)) f$what else f$what(spec))
    }
  }
  s
}

`%||%` <- function(a, b) if (is.null(a)) b else a

# Puts a checked state into the run (the history vectors get room to grow).
run_state_set <- function(run, s) {
  for (n in run_saved_fields) assign(n, s[[n]], envir = run)
  run$elapsed <- s$elapsed
  fit_rng_set(s$rng)
  invisible(run)
}
