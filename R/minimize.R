# minimize(): an optim()-style training driver around the optimizer object.
#
# Owns: minimize()'s documentation and signature, and the small checks of
# what fn and gr return. The run's arguments are checked into a spec
# (run-spec.R), the gradient comes from a gradient source
# (gradient-source.R), a run is set up and finished in run.R, its state is
# the table of run-state.R, the loop is run-loop.R, and everything else a
# run does is a callback (callback-*.R); the result's methods are in
# minimize-methods.R.
# Must never: step the caller's optimizer object (the driver steps a
# $clone() of it), touch the optimizer state outside $step(), or lose a run
# that was interrupted.

#' Minimise a function with RMSprop, in the style of optim()
#'
#' Runs the RMSprop optimizer on `fn`, starting from `par`, using the gradient
#' `gr`: exact gradients taped from `fn` itself with `gr = "ad"` (automatic
#' differentiation with \pkg{RTMB}), a function you wrote, or central
#' differences when `gr` is `NULL`. With `data`, it trains
#' on mini-batches of rows for a number of epochs, like `keras3::fit()`.
#'
#' Each step evaluates the loss and the gradient at the current parameters and
#' hands the gradient to `optimizer$step()`; so the run is exactly the loop
#' \preformatted{for (i in seq_len(steps)) par <- opt$step(gr(par, ...), par)}
#' (see the examples), plus the bookkeeping.
#'
#' **The optimizer.** The driver steps a `$clone()` of `optimizer`, so the
#' object you pass is never changed: the trained optimizer (with its slots
#' and iteration counter) is returned as `$optimizer` of the result, and can be
#' passed to another `minimize()` call to continue training. The learning rate,
#' schedules, momentum, clipping, weight decay, gradient accumulation and
#' exponential moving averages all come from the optimizer; with `use_ema =
#' TRUE` the returned `par` are the moving averages
#' (`opt$finalize_variable_values()`).
#'
#' **Gradients without writing them.** With `gr = "ad"`, `fn` is taped once
#' per batch size by \pkg{RTMB}'s reverse-mode automatic differentiation and
#' every step takes the exact gradient from the tape (see [ad_gradient()] for
#' what `fn` may use). The tapes are built where they are used (each engine
#' worker builds its own, a resumed run builds them again); a `fn` that
#' cannot be taped is an error of class `rmsprop_error_ad` before the first
#' step. RTMB is suggested, not required: without it `gr = "ad"` is an error
#' of class `rmsprop_error_dependency` with the line that installs it.
#'
#' **Numerical gradient.** When `gr` is `NULL` the gradient is approximated by
#' central differences, `(fn(x + h * e_i) - fn(x - h * e_i)) / (2 * h)` for
#' each coordinate `i` (`e_i` is the `i`-th unit vector), with
#' `h = .Machine$double.eps^(1/3) * max(abs(x[i]), 1)`: that costs `2 * length(par)` calls
#' of `fn` per step, so it is much slower than an analytic gradient for more
#' than a few parameters, and less accurate (about 1e-10 relative).
#'
#' **Mini-batches.** With `data` (a data frame or matrix whose rows are
#' observations), `fn` and `gr` are called as `fn(par, batch, ...)`, where
#' `batch` holds the rows of the current mini-batch (`data[rows, , drop =
#' FALSE]`). Each epoch visits every row once, in `batch_size` chunks (the last
#' one may be smaller), in an order drawn with [sample.int()] when `shuffle =
#' TRUE`, so runs are reproducible under [set.seed()]. `fn` should return the
#' *mean* loss over the rows of `batch` (so that batches of different sizes and
#' data-parallel shards combine correctly). A `fn`, `gr` or metric that cannot
#' take the batch as its second argument is an error of class
#' `rmsprop_error_signature` before anything runs, and a `gr` whose first
#' gradient is not shaped like `par` one of class `rmsprop_error_gradient`
#' before the first step.
#'
#' **Stopping.** The run stops after `steps` steps (without `data`) or
#' `epochs` epochs (with `data`; `steps` then is an optional cap on the total
#' number of steps), or earlier when:
#' * `tol > 0` and the absolute change of the loss between two steps, or the
#'   gradient norm, falls below `tol` (with `data`: the change of the mean
#'   loss between two epochs, or the mean gradient norm of an epoch);
#' * `callback(info)` returns `FALSE`;
#' * a callback in `callbacks` stops it ([callback_early_stopping()]);
#' * the loss or the gradient is not finite: a warning is given and the run
#'   returns the last parameters whose loss was finite (convergence code `4`,
#'   a finite `value`). When the loss at the parameters reached by step *k* is
#'   not finite, those are the parameters before step *k* (the history keeps
#'   step *k*, whose loss was computed there; `$optimizer` has taken *k*
#'   steps); when only the gradient is not finite, the parameters reached by
#'   step *k*. At the very first step this is an error instead;
#' * you press Ctrl-C (or Esc): see "Interrupts" below.
#'
#' **Interrupts.** Ctrl-C (or Esc) stops the run between two steps; with
#' [callback_backup_and_restore()] the checkpoint is written first. In an
#' interactive session the parameters reached so far are returned (convergence
#' code `3`) with a message. In a script (Rscript, a batch job) the interrupt
#' is an error of class `rmsprop_error_interrupted`, so the script ends with
#' a non-zero status and a pipeline never takes the partial run for a finished
#' one; run it again to resume from the checkpoint. `options(rmsprop.on_interrupt
#' = "return")` or `"error"` chooses either behaviour anywhere.
#'
#' **Metrics.** `metrics = list(accuracy = function(par, rows) ...)` (keras3's
#' `metrics`) are computed at the end of every epoch at the parameters reached
#' then: on all the training rows (`accuracy`) and, with `validation_data`
#' rows, on them (`val_accuracy`). They are columns of the history (on the
#' last step of each epoch, `NA` elsewhere), are shown by the progress line,
#' `print()` and `plot()`, and callbacks can monitor them
#' (`callback_early_stopping(monitor = "val_accuracy")`; `mode = "auto"`
#' maximises names containing "acc"). (keras averages a training metric over
#' the epoch's batches as they go; here both columns are computed at the
#' epoch's end, so they are comparable.) Without `data` a metric is
#' `function(par)`, computed after every step.
#'
#' **Validation.** With `validation_data`, the validation loss is computed at
#' the end of every epoch (without `data`, after every step), at the
#' parameters reached then, and recorded in the `val_loss` column of the
#' history (`NA` on the other rows). Rows with the same columns as `data` are
#' scored with `fn(par, validation_data, ...)`; a function is called as
#' `validation_data(par)`. The validation loss is computed in this R process,
#' whatever the engine, and its calls are not in `counts`.
#'
#' **Callbacks.** `callbacks` takes keras3's callbacks, with keras3's names,
#' arguments and rules: [callback_early_stopping()],
#' [callback_reduce_lr_on_plateau()] (they act at the end of every epoch;
#' `monitor = "loss"` watches the mean training loss of the epoch,
#' `"val_loss"` the validation loss) and [callback_backup_and_restore()]
#' (checkpoints: a run that dies is resumed, bit-identically, by running the
#' same call again). The function `callback` is called after every step, as
#' before.
#'
#' **Progress.** With `progress = TRUE` one line shows the step (and epoch),
#' the loss (the mean of the last 50 steps), the validation loss, the
#' learning rate, the elapsed time and an estimate of the time left. In an
#' interactive session it is redrawn in place at most ten times a second; in
#' a script (Rscript, a batch job) a line goes to stderr when an epoch has
#' begun (at most one a second) or every five seconds, so the job's log shows
#' progress. The clock is read only every so many steps (adapted to the
#' speed of the steps), so progress costs next to nothing.
#'
#' **Cost.** The bookkeeping costs a few R operations per step, the same at
#' every length of run (the history is written in place):
#' `bench/bench-minimize.R` measures `minimize()` within 1.3 times a
#' hand-written loop of `fn`, `gr` and `$step()` on a 3-parameter problem.
#'
#' @param par Initial parameters: a numeric vector, matrix or array, or a
#'   (nested, named or not) list of them. The result has the same structure.
#' @param fn The function to minimise: `fn(par, ...)`, or `fn(par, batch,
#'   ...)` when `data` is given. Returns a single number.
#' @param gr `"ad"` for exact gradients taped from `fn` (needs \pkg{RTMB});
#'   the gradient of `fn` as a function, called like `fn`, returning the same
#'   structure as `par`; or `NULL` for a numerical central-difference
#'   gradient (slower: `2 * length(par)` calls of `fn` per step).
#' @param ... Further arguments passed to `fn` and `gr`.
#' @param optimizer An optimizer from [optimizer_rmsprop()] (any object with
#'   `$step()` and `$clone()` methods; the result of `gr` is handed to
#'   `$step()` as it is, so with [optimizer_loss_scale()] `gr` must return the
#'   gradient of the scaled loss). `NULL` means `optimizer_rmsprop(learning_rate
#'   = 0.01)`. It is cloned, never modified.
#' @param steps The number of optimizer steps: `NULL` means 1000 without
#'   `data` and "every batch of every epoch" with `data` (then a number caps
#'   the total number of steps).
#' @param tol A number >= 0: stop when the change of the loss, or the
#'   gradient norm, falls below it. `0` (the default) never stops early.
#' @param data `NULL`, or a data frame or matrix of observations (rows) for
#'   mini-batch training.
#' @param batch_size With `data`: the number of rows per mini-batch; `NULL`
#'   uses all rows (one step per epoch).
#' @param epochs With `data`: the number of passes over the rows.
#' @param shuffle With `data`: `TRUE` draws a new row order for every epoch
#'   with R's random number generator; `FALSE` keeps the row order.
#' @param validation_data `NULL`; or held-out rows (a data frame or matrix
#'   with the same columns as `data`), scored with `fn(par, validation_data,
#'   ...)`; or a function `function(par)` returning the validation loss (also
#'   without `data`).
#' @param metrics `NULL`, or a named list of functions `function(par, rows)`
#'   (without `data`: `function(par)`) returning one number each, recorded at
#'   the end of every epoch (see "Metrics").
#' @param callback `NULL` or a function called after every step with one
#'   argument, a list with `step`, `epoch` (equal to `step` without `data`),
#'   `loss` (the loss at the
#'   parameters before the step), `par` (the parameters after the step),
#'   `grad_norm`, `learning_rate` and `epoch_end` (`TRUE` at the last step of
#'   an epoch). Returning `FALSE` stops the run.
#' @param callbacks `NULL`, or a list of callbacks made by
#'   [callback_early_stopping()], [callback_reduce_lr_on_plateau()],
#'   [callback_csv_logger()] and [callback_backup_and_restore()] (at most
#'   one). They act in the order given, after the metrics and validation loss
#'   of the epoch are computed.
#' @param progress `TRUE` shows a progress line (see "Progress"); on by
#'   default in interactive sessions. `FALSE` is quiet.
#' @param engine `NULL` (compute in this R process) or an engine for
#'   data-parallel gradients: see [rmsprop_engine()].
#'
#' @return An object of class `"rmsprop_fit"`, with
#' [`print()`][print.rmsprop_fit], [`summary()`][summary.rmsprop_fit],
#' [`as.data.frame()`][as.data.frame.rmsprop_fit] (the history) and
#' [`plot()`][plot.rmsprop_fit] methods: a list with
#' \item{par}{the parameters found (the EMA values with `use_ema = TRUE`).}
#' \item{value}{`fn` at `par` (with `data`: on all rows).}
#' \item{counts}{calls of `fn` and of the gradient, as in [stats::optim()]:
#'   `c("function" = , gradient = )`. The `fn` calls that make up a numerical
#'   gradient are counted as gradient evaluations, not as function calls.}
#' \item{convergence}{`0` converged (`tol`), `1` step or epoch limit reached,
#'   `2` stopped by the callback, `3` interrupted, `4` stopped on a non-finite
#'   loss or gradient.}
#' \item{message}{a sentence saying why the run stopped.}
#' \item{history}{a data frame with one row per step: `step`, `epoch` (with
#'   `data` only), `loss` (at the parameters before the step), `learning_rate`
#'   (used by the step), `grad_norm` (Euclidean norm of the gradient, before
#'   clipping), the metrics and, with `validation_data`, `val_loss` and the
#'   `val_` metrics (at the parameters after the last step of an epoch; `NA`
#'   on the other rows).}
#' \item{optimizer}{the trained optimizer (a clone of the one passed in).}
#' \item{steps, epochs}{the number of steps taken and of epochs completed
#'   (without `data` every step is a full pass, so `epochs` equals `steps`).}
#' \item{elapsed}{the run time in seconds (for a resumed run: of its parts
#'   up to the last checkpoint, plus this one).}
#' \item{resumed_from}{the step of the checkpoint the run resumed from, or
#'   `NA`.}
#' \item{resumed_epoch}{the epochs completed at that checkpoint, or `NA`.}
#' \item{par_epoch, par_step}{the epoch (and step) whose parameters `par`
#'   holds; `par_step` is `NA` for restored best weights.}
#' \item{restored}{`TRUE` when early stopping restored its best weights.}
#' \item{best}{`NULL`, or with [callback_early_stopping()] the monitored
#'   quantity and its best epoch and value: `list(monitor, mode, epoch,
#'   value)`.}
#' \item{metrics}{the names of the metrics.}
#' \item{gradient}{where the gradients came from: `"ad"`, `"function"` or
#'   `"numerical"`.}
#' \item{best_epoch}{with `callback_early_stopping(restore_best_weights =
#'   TRUE)`: the epoch whose parameters are returned, else `NA`.}
#'
#' @seealso [stats::optim()], [optimizer_rmsprop()], [rmsprop_engine()] for
#'   data-parallel gradients, [sweep_optimizers()] to compare settings.
#' @export
#' @examples
#' # Least squares, compared with lm()
#' x <- cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")])))
#' y <- mtcars$mpg
#' loss <- function(b) mean((y - x %*% b)^2)
#' grad <- function(b) drop(-2 * crossprod(x, y - x %*% b) / nrow(x))
#' fit <- minimize(c(0, 0, 0), loss, grad,
#'                 optimizer = optimizer_rmsprop(learning_rate = 0.1), steps = 500)
#' fit
#' cbind(rmsprop = fit$par, lm = coef(lm(y ~ x - 1)))
#'
#' # The driver is exactly a loop of opt$step()
#' opt <- optimizer_rmsprop(learning_rate = 0.1)
#' b <- c(0, 0, 0)
#' for (i in 1:500) b <- opt$step(grad(b), b)
#' identical(b, fit$par)
#'
#' # Mini-batches of 8 rows, 20 epochs
#' d <- data.frame(y = y, x)
#' batch_loss <- function(b, batch) mean((batch$y - as.matrix(batch[-1]) %*% b)^2)
#' set.seed(1)
#' fit2 <- minimize(c(0, 0, 0), batch_loss, data = d, batch_size = 8, epochs = 20,
#'                  optimizer = optimizer_rmsprop(learning_rate = 0.05))
#' fit2$value
#'
#' # Held-out rows, early stopping, a rate that drops on plateaus, and a
#' # checkpoint to resume from if the R process dies
#' dir <- tempfile("run-")
#' dir.create(dir)
#' set.seed(1)
#' train <- sample(32, 24)
#' fit3 <- minimize(c(0, 0, 0), batch_loss, data = d[train, ],
#'                  validation_data = d[-train, ], batch_size = 8, epochs = 100,
#'                  optimizer = optimizer_rmsprop(learning_rate = 0.1),
#'                  callbacks = list(
#'                    callback_early_stopping(patience = 10, restore_best_weights = TRUE),
#'                    callback_reduce_lr_on_plateau(patience = 3, factor = 0.5),
#'                    callback_backup_and_restore(dir)),
#'                  progress = FALSE)
#' fit3
#' tail(fit3$history)
minimize <- function(par, fn, gr = NULL, ..., optimizer = NULL, steps = NULL, tol = 0,
                     data = NULL, batch_size = NULL, epochs = 1L, shuffle = TRUE,
                     validation_data = NULL, metrics = NULL, callback = NULL, callbacks = NULL,
                     progress = interactive(), engine = NULL) {
  started <- proc.time()[["elapsed"]]
  spec <- run_spec(par, fn, gr, list(...), optimizer = optimizer, steps = steps, tol = tol,
                   data = data, batch_size = batch_size, epochs = epochs, shuffle = shuffle,
                   validation_data = validation_data, metrics = metrics, callback = callback,
                   callbacks = callbacks, progress = progress, engine = engine)
  run_fit(spec, started)
}

# Runs a spec: set up, resume (callbacks' on_train_begin), the loop, finish.
run_fit <- function(spec, started = proc.time()[["elapsed"]]) {
  run <- run_new(spec, started)
  cleanup <- attr(run$evaluate, "cleanup")
  if (is.function(cleanup)) on.exit(cleanup(), add = TRUE)
  tryCatch({
    callbacks_call(run, "on_train_begin")
    run_prepare(run)
    if (!run$finished && run$code == run_codes[["limit"]]) run_loop(run)
  }, interrupt = function(cond) run_interrupted(run))
  run_finish(run)
}

# ---- helpers ------------------------------------------------------------

# A non-finite loss or gradient before the first step: nothing to return.
fit_nonfinite_start <- function(step, what) {
  if (step == 0L) rmsprop_abort("value", sprintf("minimize() cannot start: %s.", what))
  invisible()
}

# TRUE when some gradient number is not finite (the norm can also overflow
# with finite numbers).
fit_not_all_finite <- function(g) is.numeric(g) && !all(is.finite(g))

# The learning rate the step just taken used, as the optimizer reports it
# (NA for an optimizer-like object that does not).
fit_used_learning_rate <- function(opt) {
  lr <- if (inherits(opt, c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer"))) {
    opt$last_learning_rate
  } else {
    .subset2(opt, "last_learning_rate")
  }
  if (is.null(lr)) NA_real_ else lr
}

# The value of fn: a single number (names and attributes dropped).
fit_check_loss <- function(x) {
  if (!(is.numeric(x) || is.logical(x)) || length(x) != 1L) {
    rmsprop_abort("value", sprintf("`fn` must return a single number, not %s.",
                                   describe_value(x)))
  }
  as.double(x)
}

# A leaf with a class (a date, a factor, ...): `fn` would get that class back
# on every step, with arithmetic that is not R's numbers' own.
has_classed_leaf <- function(x) {
  if (is.list(x) && !is.object(x)) return(any(vapply(x, has_classed_leaf, logical(1))))
  is.object(x)
}

# par: numeric leaves (double, integer, logical) in (nested) lists, as the
# structure module takes variables (make_skeleton()), with at least one
# number and no NA. Returned with every leaf as double and all attributes
# kept.
fit_check_par <- function(par) {
  bad <- function() {
    rmsprop_abort("argument", sprintf(
      "`par` must be a plain numeric vector, matrix or array (no class: use as.numeric()), or a list of them, with at least one number and no NA; got %s.",
      describe_value(par)), argument = "par")
  }
  if (is.data.frame(par) || has_classed_leaf(par)) bad()
  tryCatch(make_skeleton(par, "par"), rmsprop_error = function(e) bad())
  flat <- unlist(par, use.names = FALSE)
  if (length(flat) == 0L || anyNA(flat)) bad()
  relist_flat(as.double(flat), par)
}

# The learning rate the next step will use (NA if the optimizer cannot say).
fit_learning_rate <- function(opt) {
  f <- opt$current_learning_rate
  if (is.function(f)) return(as.double(f()))
  lr <- opt$learning_rate
  if (is.numeric(lr) && length(lr) == 1L) as.double(lr) else NA_real_
}

