# Callbacks as users hold them: printing, and the `callbacks` argument.
#
# Owns: format()/print() of a callback object and the check of minimize()'s
# `callbacks` (a list of callback objects, at most one backup).
# Must never: look inside a callback's run state (the hooks own it).

#' @export
format.rmsprop_callback <- function(x, ...) {
  kind <- sub("^rmsprop_callback_", "", class(x)[1])
  vals <- vapply(x, function(v) {
    if (is.null(v)) "NULL" else if (is.function(v)) "<function>" else
      paste(format(v), collapse = ",")
  }, character(1))
  sprintf("<callback_%s> %s", kind, paste(paste0(names(vals), " = ", vals), collapse = ", "))
}

#' @export
print.rmsprop_callback <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}

# `callbacks` of minimize(): NULL, one callback, or a list of them; at most
# one backup. Returns a plain list.
check_callbacks <- function(callbacks) {
  if (is.null(callbacks)) return(list())
  if (inherits(callbacks, "rmsprop_callback")) callbacks <- list(callbacks)
  ok <- is.list(callbacks) && !is.object(callbacks) &&
    all(vapply(callbacks, inherits, logical(1), "rmsprop_callback"))
  if (!ok) {
    bad <- if (is.list(callbacks) && !is.object(callbacks)) {
      i <- which(!vapply(callbacks, inherits, logical(1), "rmsprop_callback"))[1]
      sprintf("element %d is %s", i, describe_value(callbacks[[i]]))
    } else {
      sprintf("got %s", describe_value(callbacks))
    }
    rmsprop_abort("argument", sprintf(paste(
      "`callbacks` must be a list of callbacks made by callback_early_stopping(),",
      "callback_reduce_lr_on_plateau(), callback_csv_logger(), callback_lambda() or",
      "callback_backup_and_restore() (use `callback` for a function); %s."), bad),
      argument = "callbacks")
  }
  if (sum(vapply(callbacks, inherits, logical(1), "rmsprop_callback_backup_and_restore")) > 1L) {
    rmsprop_abort("argument", "`callbacks` may hold at most one callback_backup_and_restore().",
                  argument = "callbacks")
  }
  unname(callbacks)
}

# The numeric learning rate of an optimizer's configuration (NULL for a
# schedule or a function); for optimizer_loss_scale() the inner one's.
fit_config_learning_rate <- function(opt) {
  cfg <- tryCatch(opt$get_config(), error = function(e) NULL)
  if (is.environment(cfg$inner_optimizer)) return(fit_config_learning_rate(cfg$inner_optimizer))
  lr <- cfg$learning_rate
  if (is.numeric(lr) && length(lr) == 1L) lr else NULL
}
