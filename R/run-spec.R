# The specification of a training run: minimize()'s arguments, checked once
# into one object that every consumer reads (the loop, the callbacks,
# sweep_optimizers() and the checkpoint fingerprint).
#
# Owns: every check of minimize()'s and sweep_optimizers()'s run arguments
# (through the shared helpers of checks.R), the derived sizes (rows, batches,
# the step limit), the fingerprint of the problem a checkpoint records.
# Must never: call `fn`, `gr`, a metric or a callback (except the gradient
# source's own check, which tapes `fn` once for "ad"), clone or step the
# optimizer, or touch files: a spec is built before anything runs, so a bad
# argument is the same classed error wherever it is given.

run_spec <- function(par, fn, gr = NULL, dots = list(), optimizer = NULL, steps = NULL,
                     tol = 0, data = NULL, batch_size = NULL, epochs = 1L, shuffle = TRUE,
                     validation_data = NULL, metrics = NULL, callback = NULL,
                     callbacks = NULL, progress = FALSE, engine = NULL) {
  par <- fit_check_par(par)
  check_function(fn, "fn")
  source <- gradient_source(gr)
  check_optimizer(optimizer)
  check_number(tol, "tol", lower = 0)
  check_flag(shuffle, "shuffle")
  check_flag(progress, "progress")
  check_number(steps, "steps", lower = 1, upper = .Machine$integer.max, whole = TRUE,
               null_ok = TRUE)
  check_number(epochs, "epochs", lower = 1, upper = .Machine$integer.max, whole = TRUE)
  if (!is.null(callback)) check_function(callback, "callback")
  validation <- check_validation(validation_data, data)
  # Every field is present (NULL included): `$` never matches a prefix.
  s <- c(list(par = par, fn = fn, source = source, dots = dots, optimizer = optimizer,
              tol = as.double(tol), shuffle = shuffle, progress = progress),
         spec_sizes(data, batch_size, epochs, steps),
         list(validation = validation, has_val = !is.null(validation),
              metrics = check_metrics(metrics), callback = callback,
              callbacks = check_callbacks(callbacks),
              engine = if (!is.null(engine)) as_engine(engine)))
  check_signatures(s)
  check_monitors(s)
  for (cb in s$callbacks) callback_check_spec(cb, s)
  source_check(s$source, s$fn, s$par, spec_first_batch(s), dots, s$has_data)
  structure(s, class = "rmsprop_run_spec")
}

# The sizes of a run: rows, batch size, batches per epoch, epochs and the
# step limit (without data every step is an epoch).
spec_sizes <- function(data, batch_size, epochs, steps) {
  if (is.null(data)) {
    if (!is.null(batch_size)) {
      rmsprop_abort("argument", sprintf(
        "`batch_size` needs `data`; got batch_size = %s without data.",
        describe_value(batch_size)), argument = "batch_size")
    }
    max_steps <- as.integer(if (is.null(steps)) 1000L else steps)
    return(list(data = NULL, has_data = FALSE, n_obs = 0L, batch_size = 0L, n_batches = 1L,
                epochs = max_steps, max_steps = max_steps))
  }
  if (!(is.data.frame(data) || is.matrix(data)) || NROW(data) < 1L) {
    rmsprop_abort("argument", sprintf(
      "`data` must be a data frame or matrix with at least one row, not %s.",
      describe_data(data)), argument = "data")
  }
  check_number(batch_size, "batch_size", lower = 1, upper = .Machine$integer.max,
               whole = TRUE, null_ok = TRUE)
  n_obs <- NROW(data)
  batch_size <- if (is.null(batch_size)) n_obs else min(as.integer(batch_size), n_obs)
  n_batches <- as.integer(ceiling(n_obs / batch_size))
  max_steps <- as.double(epochs) * n_batches   # as a double: no integer overflow
  if (!is.null(steps)) max_steps <- min(max_steps, steps)
  list(data = data, has_data = TRUE, n_obs = n_obs, batch_size = batch_size,
       n_batches = n_batches, epochs = as.integer(epochs),
       max_steps = as.integer(min(max_steps, .Machine$integer.max)))
}

describe_data <- function(x) {
  if (is.data.frame(x) || is.matrix(x)) return(sprintf("a %s with 0 rows", class(x)[1]))
  describe_value(x)
}

# The first batch a run evaluates (for the gradient source's check).
spec_first_batch <- function(s) {
  if (!s$has_data) return(NULL)
  s$data[seq_len(s$batch_size), , drop = FALSE]
}

check_function <- function(f, arg) {
  if (!is.function(f)) {
    rmsprop_abort("argument", sprintf("`%s` must be a function, not %s.", arg,
                                      describe_value(f)), argument = arg)
  }
  invisible(f)
}

check_optimizer <- function(optimizer) {
  if (is.null(optimizer)) return(NULL)
  ok <- is.environment(optimizer) &&
    tryCatch(is.function(optimizer$step) && is.function(optimizer$clone),
             error = function(e) FALSE)
  if (!ok) {
    rmsprop_abort("argument", sprintf(
      "`optimizer` must be an optimizer from optimizer_rmsprop() or optimizer_loss_scale(), not %s.",
      describe_value(optimizer)), argument = "optimizer")
  }
  invisible(optimizer)
}

# How many positional arguments f can take (Inf with `...`; NA for a
# primitive, whose arguments R does not list).
positional_arity <- function(f) {
  if (is.primitive(f)) return(NA)
  a <- names(formals(f))
  if ("..." %in% a) Inf else length(a)
}

# fn, gr and the metrics are called with the batch when there are data: a
# function that cannot take it is refused here, not by a failed first step.
check_signatures <- function(s) {
  need <- function(f, what, n, sig) {
    arity <- positional_arity(f)
    if (is.na(arity) && n > 1L) {
      rmsprop_abort("signature", sprintf(
        "%s must take %s; a primitive such as %s cannot be told the batch. Wrap it in a function(par, batch).",
        what, sig, paste(deparse(f), collapse = "")), argument = what)
    }
    if (!is.na(arity) && arity < n) {
      rmsprop_abort("signature", sprintf(
        "%s must take %s; it takes (%s).%s", what, sig,
        paste(names(formals(f)), collapse = ", "),
        if (n == 2L) " With `data`, each batch of rows is its second argument." else ""),
        argument = what)
    }
  }
  n <- if (s$has_data) 2L else 1L
  sig <- if (s$has_data) "(par, batch, ...)" else "(par, ...)"
  need(s$fn, "`fn`", n, sig)
  if (is.function(s$source$gr)) need(s$source$gr, "`gr`", n, sig)
  for (m in names(s$metrics)) {
    need(s$metrics[[m]], sprintf("metric `%s`", m), if (s$has_data) 2L else 1L,
         if (s$has_data) "(par, rows)" else "(par)")
  }
  if (is.primitive(s$callback)) {
    rmsprop_abort("signature", "`callback` must be a function(info), not a primitive; wrap it.",
                  argument = "`callback`")
  }
  if (!is.null(s$callback)) need(s$callback, "`callback`", 1L, "(info)")
  if (identical(s$validation$kind, "function")) {
    need(s$validation$f, "`validation_data`", 1L, "(par)")
  }
  invisible(TRUE)
}

# validation_data: NULL, a function(par) returning the validation loss, or
# rows with the same columns as `data` (then fn(par, rows, ...) is the loss).
check_validation <- function(validation_data, data) {
  if (is.null(validation_data)) return(NULL)
  if (is.function(validation_data)) return(list(kind = "function", f = validation_data))
  if (is.null(data)) {
    rmsprop_abort("argument", sprintf(paste(
      "`validation_data` without `data` must be a function(par) returning the validation",
      "loss, not %s."), describe_value(validation_data)), argument = "validation_data")
  }
  same <- (is.data.frame(validation_data) && is.data.frame(data) &&
             identical(names(validation_data), names(data))) ||
    (is.matrix(validation_data) && is.matrix(data) &&
       NCOL(validation_data) == NCOL(data) &&
       identical(colnames(validation_data), colnames(data)))
  if (!same || NROW(validation_data) < 1L) {
    rmsprop_abort("argument", sprintf(paste(
      "`validation_data` must be a function(par), or rows (at least one) of the same kind",
      "and with the same columns as `data`; got %s."),
      if (is.data.frame(validation_data) || is.matrix(validation_data)) {
        sprintf("a %s with %d rows and %d columns", class(validation_data)[1],
                NROW(validation_data), NCOL(validation_data))
      } else describe_value(validation_data)), argument = "validation_data")
  }
  list(kind = "rows", data = validation_data)
}

# metrics: NULL or a named list of functions (par, rows); names are columns
# of the history, so they must be unique, syntactic-ish and not clash with
# the driver's own columns.
check_metrics <- function(metrics) {
  if (is.null(metrics) || (is.list(metrics) && !length(metrics))) return(list())
  reserved <- c("step", "epoch", "loss", "learning_rate", "grad_norm")
  nm <- names(metrics)
  ok <- is.list(metrics) && !is.object(metrics) && !is.null(nm) && !anyNA(nm) &&
    all(nzchar(nm)) && !anyDuplicated(nm) &&
    all(vapply(metrics, is.function, logical(1)))
  if (!ok) {
    rmsprop_abort("argument", sprintf(paste(
      "`metrics` must be a named list of functions(par, rows) returning one number,",
      "with unique names, not %s."), describe_value(metrics)), argument = "metrics")
  }
  bad <- nm[nm %in% reserved | startsWith(nm, "val_") | !grepl("^[A-Za-z][A-Za-z0-9_.]*$", nm)]
  if (length(bad)) {
    rmsprop_abort("argument", sprintf(paste(
      "metric name %s is not allowed: names start with a letter, use letters, digits, `_`",
      "and `.`, do not start with \"val_\" and are not one of %s."),
      encodeString(bad[1], quote = "\""), paste(reserved, collapse = ", ")),
      argument = "metrics")
  }
  metrics
}

# The quantities a run records at the end of an epoch (what callbacks may
# monitor).
spec_log_names <- function(s) {
  m <- names(s$metrics)
  val_rows <- identical(s$validation$kind, "rows")
  c("loss", "grad_norm", "learning_rate", m, if (s$has_val) "val_loss",
    if (val_rows && length(m)) paste0("val_", m))
}

check_monitors <- function(s) {
  available <- spec_log_names(s)
  for (cb in s$callbacks) {
    mon <- cb$monitor
    if (is.null(mon) || mon %in% available) next
    hint <- if (startsWith(mon, "val_") && !s$has_val) {
      "it needs `validation_data`"
    } else {
      sprintf("this run records %s", paste0("\"", available, "\"", collapse = ", "))
    }
    rmsprop_abort("argument", sprintf("%s monitors \"%s\", but %s.",
                                      callback_label(cb), mon, hint), argument = "callbacks")
  }
  invisible(TRUE)
}

# The spec of the problem a checkpoint belongs to: everything that changes
# the numbers of a run. Functions are compared by their code (formals and
# body), not by their environments.
spec_fingerprint <- function(s, opt) {
  list(
    parameters = relist_flat(rep(0, length(unlist(s$par, use.names = FALSE))), s$par),
    starting_values = unlist(s$par, use.names = FALSE),
    fn = function_fingerprint(s$fn),
    gr = source_fingerprint(s$source),
    metrics = lapply(s$metrics, function_fingerprint),
    optimizer = fit_optimizer_fingerprint(opt),
    data_rows = s$n_obs,
    data_columns = if (s$has_data) list(class = class(s$data)[1], names = colnames(s$data),
                                        ncol = NCOL(s$data)),
    data_rows_seen = if (s$has_data) fit_end_rows(s$data),
    batch_size = as.integer(s$batch_size),
    epochs = as.integer(s$epochs),
    steps = as.integer(s$max_steps),
    shuffle = s$shuffle,
    tol = s$tol,
    validation = if (is.null(s$validation)) "none" else
      if (s$validation$kind == "function") function_fingerprint(s$validation$f) else
        fit_end_rows(s$validation$data),
    callbacks = lapply(s$callbacks, callback_fingerprint)
  )
}
