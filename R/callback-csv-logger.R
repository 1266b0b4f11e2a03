# callback_csv_logger(): keras3's CSVLogger for minimize().
#
# Owns: the constructor and the file: a header, then one row per epoch with
# the epoch's logs. A resumed run (callback_backup_and_restore()) appends to
# the file after dropping the rows of epochs the checkpoint did not reach,
# so the file never holds an epoch twice.
# Must never: write anything but whole rows, or rewrite a file other than by
# a temporary file and a rename.

#' Write every epoch's results to a CSV file
#'
#' The keras3 callback, for [minimize()]: at the end of every epoch a row with
#' the epoch number and the epoch's logs (`grad_norm`, `learning_rate`,
#' `loss`, the metrics, and with validation data `val_loss` and the `val_`
#' metrics; columns in keras' order, sorted by name) is added to `filename`.
#' The row is written and flushed at once, so the file can be followed while
#' the run goes on.
#'
#' Epochs are numbered from 1, as in `fit$history` (keras numbers them from
#' 0). Without `data` every step is an epoch. With
#' [callback_backup_and_restore()], a run that resumes keeps the rows of the
#' epochs its checkpoint holds, drops any later ones (written after the
#' checkpoint, before the crash) and goes on appending: the finished file has
#' each epoch once, whatever `append` says.
#'
#' @param filename The path of the CSV file.
#' @param separator The string that separates the columns.
#' @param append `FALSE` starts a new file (replacing an existing one);
#'   `TRUE` appends to an existing file (its header is not repeated).
#' @return A callback object for the `callbacks` argument of [minimize()].
#' @seealso [callback_backup_and_restore()], [minimize()]
#' @export
#' @examples
#' log_file <- tempfile(fileext = ".csv")
#' d <- data.frame(y = mtcars$mpg, x = I(cbind(1, scale(mtcars$wt))))
#' fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
#' fit <- minimize(c(0, 0), fn, data = d, batch_size = 8, epochs = 5, progress = FALSE,
#'                 optimizer = optimizer_rmsprop(0.1),
#'                 callbacks = list(callback_csv_logger(log_file)))
#' read.csv(log_file)
callback_csv_logger <- function(filename, separator = ",", append = FALSE) {
  check_string(filename, "filename")
  if (!(is.character(separator) && length(separator) == 1L && !is.na(separator) &&
        nzchar(separator))) {
    rmsprop_abort("argument", sprintf("`separator` must be one non-empty string, not %s.",
                                      describe_value(separator)), argument = "separator")
  }
  check_flag(append, "append")
  structure(list(filename = filename, separator = separator, append = append),
            class = c("rmsprop_callback_csv_logger", "rmsprop_callback"))
}

#' @exportS3Method callback_check_spec rmsprop_callback_csv_logger
callback_check_spec.rmsprop_callback_csv_logger <- function(cb, spec) {
  dir <- dirname(cb$filename)
  if (!dir.exists(dir)) {
    rmsprop_abort("argument", sprintf(
      "`filename` of callback_csv_logger() must be in an existing directory; %s does not exist.",
      encodeString(dir, quote = "\"")), argument = "filename")
  }
  invisible(TRUE)
}

# The logger's columns are fixed when the run starts (what the spec records).
#' @exportS3Method callback_initial_state rmsprop_callback_csv_logger
callback_initial_state.rmsprop_callback_csv_logger <- function(cb, spec) {
  list(columns = c("epoch", sort(spec_log_names(spec))))
}

#' @exportS3Method on_epoch_end rmsprop_callback_csv_logger
on_epoch_end.rmsprop_callback_csv_logger <- function(cb, run, epoch, logs) {
  if (is.null(cb$con)) csv_open(cb, run)
  cols <- cb$state$columns[-1L]
  vals <- vapply(cols, function(n) {
    v <- logs[[n]]
    if (is.null(v) || is.na(v)) "NA" else format(v, digits = 15)
  }, character(1))
  writeLines(paste(c(as.character(epoch), vals), collapse = cb$separator), cb$con)
  flush(cb$con)
  logs
}

#' @exportS3Method on_train_end rmsprop_callback_csv_logger
on_train_end.rmsprop_callback_csv_logger <- function(cb, run) {
  if (is.null(cb$con)) csv_open(cb, run)
  on_interrupt(cb, run)
}

#' @exportS3Method on_interrupt rmsprop_callback_csv_logger
on_interrupt.rmsprop_callback_csv_logger <- function(cb, run) {
  if (!is.null(cb$con)) close(cb$con)
  cb$con <- NULL
  invisible()
}

# Opens the file for the run's rows: a new file with its header; or, when
# appending or resuming, the existing rows (those of epochs up to the
# checkpoint's, when resuming) and the header only if there is none.
csv_open <- function(cb, run) {
  path <- cb$filename
  header <- paste(cb$state$columns, collapse = cb$separator)
  resumed <- !is.null(run$resumed_epoch) && !is.na(run$resumed_epoch)
  keep <- character(0)
  if ((cb$append || resumed) && file.exists(path)) {
    keep <- readLines(path, warn = FALSE)
    if (resumed && length(keep) > 1L) {
      first <- vapply(strsplit(keep[-1L], cb$separator, fixed = TRUE),
                      function(x) if (length(x)) x[1L] else "", character(1))
      epochs <- suppressWarnings(as.integer(first))
      keep <- c(keep[1L], keep[-1L][!is.na(epochs) & epochs <= run$resumed_epoch])
    }
  }
  if (!length(keep)) keep <- header
  tmp <- tempfile("csv-logger-", tmpdir = dirname(path))
  writeLines(keep, tmp)
  if (!file.rename(tmp, path)) {
    unlink(tmp)
    rmsprop_abort("file", sprintf("could not write %s.", encodeString(path, quote = "\"")),
                  argument = "filename")
  }
  cb$con <- file(path, open = "a")
  invisible()
}
