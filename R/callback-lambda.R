# callback_lambda(): keras3's LambdaCallback for minimize(): the user's own
# functions at the run's hooks.
#
# Owns: the constructor (which checks the functions' signatures) and calling
# them with keras' arguments.
# Must never: let a function change the run other than through what it is
# given (the parameters and logs are copies: R's value semantics).

#' Call your own functions at the points of a run
#'
#' The keras3 callback, for [minimize()]: each function given is called at its
#' point of the run, with keras' arguments. Epochs are numbered from 1 (keras
#' counts from 0), and `logs` are the epoch's logs as
#' [callback_csv_logger()] writes them (`loss`, `grad_norm`,
#' `learning_rate`, the metrics, `val_loss`, ...). A batch's `logs` are the
#' `info` list of [minimize()]'s `callback` (`step`, `epoch`, `loss`, `par`,
#' `grad_norm`, `learning_rate`, `epoch_end`), and `batch` is the step
#' number. What the functions return is ignored; use `callback` (or
#' [callback_early_stopping()]) to stop a run.
#'
#' @param on_epoch_begin `NULL` or `function(epoch, logs)` (`logs` is empty).
#' @param on_epoch_end `NULL` or `function(epoch, logs)`.
#' @param on_train_begin `NULL` or `function(logs)` (`logs` is empty).
#' @param on_train_end `NULL` or `function(logs)`, with the last epoch's logs.
#' @param on_train_batch_end `NULL` or `function(batch, logs)`, after every
#'   step.
#' @return A callback object for the `callbacks` argument of [minimize()].
#' @seealso [minimize()], [callback_csv_logger()]
#' @export
#' @examples
#' seen <- numeric(0)
#' cb <- callback_lambda(on_epoch_end = function(epoch, logs) seen[epoch] <<- logs$loss)
#' fit <- minimize(c(3, -2), function(p) sum(p^2), function(p) 2 * p, steps = 5,
#'                 progress = FALSE, callbacks = list(cb))
#' seen
callback_lambda <- function(on_epoch_begin = NULL, on_epoch_end = NULL, on_train_begin = NULL,
                            on_train_end = NULL, on_train_batch_end = NULL) {
  fns <- list(on_epoch_begin = on_epoch_begin, on_epoch_end = on_epoch_end,
              on_train_begin = on_train_begin, on_train_end = on_train_end,
              on_train_batch_end = on_train_batch_end)
  arity <- c(on_epoch_begin = 2L, on_epoch_end = 2L, on_train_begin = 1L, on_train_end = 1L,
             on_train_batch_end = 2L)
  for (n in names(fns)) {
    f <- fns[[n]]
    if (is.null(f)) next
    if (!is.function(f) || !isTRUE(positional_arity(f) >= arity[[n]])) {
      rmsprop_abort("argument", sprintf("`%s` must be NULL or a function(%s), not %s.", n,
                                        if (arity[[n]] == 2L) {
                                          if (n == "on_train_batch_end") "batch, logs" else "epoch, logs"
                                        } else "logs", describe_value(f)), argument = n)
    }
  }
  structure(fns, class = c("rmsprop_callback_lambda", "rmsprop_callback"))
}

#' @exportS3Method on_train_begin rmsprop_callback_lambda
on_train_begin.rmsprop_callback_lambda <- function(cb, run) {
  if (!is.null(cb$on_train_begin)) cb$on_train_begin(list())
  invisible()
}

#' @exportS3Method on_epoch_begin rmsprop_callback_lambda
on_epoch_begin.rmsprop_callback_lambda <- function(cb, run, epoch) {
  if (!is.null(cb$on_epoch_begin)) cb$on_epoch_begin(epoch, list())
  invisible()
}

#' @exportS3Method on_train_batch_end rmsprop_callback_lambda
on_train_batch_end.rmsprop_callback_lambda <- function(cb, run, info) {
  if (is.null(cb$on_train_batch_end)) return(Inf)
  cb$on_train_batch_end(info$step, info[setdiff(names(info), "recent")])
  1L
}

#' @exportS3Method on_epoch_end rmsprop_callback_lambda
on_epoch_end.rmsprop_callback_lambda <- function(cb, run, epoch, logs) {
  if (!is.null(cb$on_epoch_end)) cb$on_epoch_end(epoch, logs)
  logs
}

#' @exportS3Method on_train_end rmsprop_callback_lambda
on_train_end.rmsprop_callback_lambda <- function(cb, run) {
  if (!is.null(cb$on_train_end)) cb$on_train_end(if (is.null(run$logs)) list() else run$logs)
  invisible()
}
