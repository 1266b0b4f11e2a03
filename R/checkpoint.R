# The checkpoint file of callback_backup_and_restore(): what a run writes so
# that the same minimize() call, run again after a crash, resumes and ends
# bit-identical to a run that was never interrupted.
#
# Owns: the file name, the file's layout (a classed list: format version, the
# fingerprint of the problem, the run state), atomic writes, and refusing a
# checkpoint of another problem.
# Must never: leave a partly written file under the checkpoint's name (write
# a temporary file in the same directory, then file.rename()), or use a
# checkpoint whose fingerprint differs from the run's.

fit_checkpoint_version <- 1L

fit_checkpoint_path <- function(backup) file.path(backup$backup_dir, "rmsprop-checkpoint.rds")

# The directory must exist before any step runs.
fit_checkpoint_check_dir <- function(backup) {
  if (!dir.exists(backup$backup_dir)) {
    rmsprop_abort("argument", sprintf(
      "`backup_dir` of callback_backup_and_restore() must be an existing directory; %s does not exist (create it first).",
      encodeString(backup$backup_dir, quote = "\"")), argument = "backup_dir")
  }
  invisible(backup)
}

# What makes two runs the same problem. Values, not environments: closures
# (schedules, functions of the step) are compared without their
# environments, optimizers by class, configuration and iteration count.
fit_fingerprint <- function(par, opt, has_data, data, batch_size, epochs, max_steps, shuffle,
                            tol, numeric_gradient, validation, callbacks) {
  list(
    parameters = relist_flat(rep(0, length(unlist(par, use.names = FALSE))), par),
    starting_values = unlist(par, use.names = FALSE),
    optimizer = fit_optimizer_fingerprint(opt),
    data_rows = if (has_data) NROW(data) else 0L,
    data_columns = if (has_data) list(class = class(data)[1], names = colnames(data),
                                      ncol = NCOL(data)) else NULL,
    # the first and the last row: a cheap look at the contents
    data_rows_seen = if (has_data) fit_end_rows(data) else NULL,
    batch_size = as.integer(batch_size),
    epochs = as.integer(epochs),
    steps = as.integer(max_steps),
    shuffle = shuffle,
    tol = tol,
    numeric_gradient = numeric_gradient,
    validation = if (is.null(validation)) "none" else
      if (validation$kind == "function") "function" else fit_end_rows(validation$data),
    callbacks = lapply(callbacks, function(cb) {
      if (inherits(cb, "rmsprop_callback_backup_and_restore")) cb["save_freq"] else unclass(cb)
    })
  )
}

fit_end_rows <- function(x) {
  n <- NROW(x)
  rows <- x[unique(c(1L, n)), , drop = FALSE]
  list(n = n, rows = if (is.data.frame(rows)) lapply(rows, unclass) else unname(rows))
}

fit_optimizer_fingerprint <- function(opt) {
  strip <- function(x) {
    if (is.environment(x) && is.function(x$get_config)) return(fit_optimizer_fingerprint(x))
    if (is.function(x)) {
      return(list(formals = formals(x), body = body(x), attributes = attributes(x)))
    }
    if (is.list(x)) {
      out <- lapply(x, strip)
      attributes(out) <- attributes(x)
      return(out)
    }
    x
  }
  list(class = class(opt), config = strip(opt$get_config()),
       iterations = tryCatch(opt$iterations, error = function(e) NA))
}

# Which field of the fingerprint differs (NULL when none).
fit_fingerprint_difference <- function(saved, current) {
  fields <- union(names(saved), names(current))
  same <- vapply(fields, function(f) {
    isTRUE(identical(saved[[f]], current[[f]], ignore.environment = TRUE))
  }, logical(1))
  if (all(same)) NULL else fields[!same][1]
}

fit_checkpoint_describe <- function(field) {
  switch(field,
         parameters = "the structure of `par`",
         starting_values = "the starting values in `par`",
         optimizer = "the optimizer's configuration or state",
         data_rows = "the number of rows of `data`",
         data_columns = "the columns of `data`",
         data_rows_seen = "the contents of `data`",
         batch_size = "`batch_size`",
         epochs = "`epochs`",
         steps = "`steps`",
         shuffle = "`shuffle`",
         tol = "`tol`",
         numeric_gradient = "whether `gr` is given",
         validation = "`validation_data`",
         callbacks = "the callbacks",
         sprintf("`%s`", field))
}

# Reads the checkpoint of `backup`, or NULL when there is none. A file that
# is not a checkpoint, or one written by another problem, is an error.
fit_checkpoint_load <- function(backup, fingerprint) {
  path <- fit_checkpoint_path(backup)
  # Temporary files of writes that a crash interrupted.
  stale <- list.files(backup$backup_dir, pattern = "^rmsprop-checkpoint-.*\\.tmp$",
                      full.names = TRUE)
  if (length(stale)) unlink(stale)
  if (!file.exists(path)) return(NULL)
  ck <- tryCatch(readRDS(path), error = function(e) NULL)
  if (!inherits(ck, "rmsprop_checkpoint") || !identical(ck$version, fit_checkpoint_version)) {
    rmsprop_abort("checkpoint", sprintf(
      "%s is not a checkpoint of minimize() (version %d); remove it or choose another `backup_dir`.",
      encodeString(path, quote = "\""), fit_checkpoint_version), argument = "backup_dir",
      path = path)
  }
  diff <- fit_fingerprint_difference(ck$fingerprint, fingerprint)
  if (!is.null(diff)) {
    rmsprop_abort("checkpoint", sprintf(paste(
      "the checkpoint %s was written by another problem: %s differs from this call's.",
      "It is not used; delete it (or choose another `backup_dir`) to start afresh."),
      encodeString(path, quote = "\""), fit_checkpoint_describe(diff)),
      argument = "backup_dir", path = path, field = diff)
  }
  ck
}

# Writes atomically: a temporary file in the same directory, then a rename.
fit_checkpoint_save <- function(backup, fingerprint, state) {
  path <- fit_checkpoint_path(backup)
  tmp <- tempfile("rmsprop-checkpoint-", tmpdir = backup$backup_dir, fileext = ".tmp")
  ck <- structure(list(version = fit_checkpoint_version, fingerprint = fingerprint,
                       state = state), class = "rmsprop_checkpoint")
  ok <- FALSE
  on.exit(if (!ok) unlink(tmp))
  saveRDS(ck, tmp, compress = FALSE)
  if (!file.rename(tmp, path)) {
    rmsprop_abort("checkpoint", sprintf("could not write the checkpoint %s.",
                                        encodeString(path, quote = "\"")),
                  argument = "backup_dir", path = path)
  }
  ok <- TRUE
  invisible(path)
}

fit_checkpoint_remove <- function(backup) {
  path <- fit_checkpoint_path(backup)
  if (file.exists(path)) unlink(path)
  invisible()
}

# The random number generator's state (NULL when it was never used).
fit_rng_get <- function() {
  if (exists(".Random.seed", envir = globalenv(), inherits = FALSE)) {
    get(".Random.seed", envir = globalenv(), inherits = FALSE)
  } else {
    NULL
  }
}

fit_rng_set <- function(seed) {
  if (is.null(seed)) {
    if (exists(".Random.seed", envir = globalenv(), inherits = FALSE)) {
      rm(".Random.seed", envir = globalenv())
    }
  } else {
    assign(".Random.seed", seed, envir = globalenv())
  }
  invisible()
}
