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

# 2 since rmsprop 0.3.0: the fingerprint records fn, gr and the metrics, and
# the state is run_fields' (run-state.R). A version-1 file (0.2.0) cannot say
# which functions wrote it, so it is refused, never misread.
fit_checkpoint_version <- 2L

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

fit_end_rows <- function(x) {
  n <- NROW(x)
  rows <- x[unique(c(1L, n)), , drop = FALSE]
  list(n = n, rows = if (is.data.frame(rows)) lapply(rows, unclass) else unname(rows))
}

fit_optimizer_fingerprint <- function(opt) {
  strip <- function(x) {
    if (is.environment(x) && is.function(x$get_config)) return(fit_optimizer_fingerprint(x))
    if (is.function(x)) return(function_fingerprint(x))
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
         fn = "`fn`",
         gr = "`gr`",
         metrics = "`metrics`",
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
  if (inherits(ck, "rmsprop_checkpoint") && identical(ck$version, 1L)) {
    rmsprop_abort("checkpoint", sprintf(paste(
      "%s was written by rmsprop 0.2.0, whose checkpoints do not record `fn` and `gr`:",
      "it cannot be told apart from another problem's, so it is not used. Delete it to",
      "start afresh."), encodeString(path, quote = "\"")), argument = "backup_dir", path = path,
      field = "version")
  }
  if (!inherits(ck, "rmsprop_checkpoint") || !identical(ck$version, fit_checkpoint_version) ||
      !is.list(ck$fingerprint) || !is.list(ck$state)) {
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
