# minimize(): an optim()-style training driver around the optimizer object.
#
# Owns: the arguments of minimize() and their checks, setting up a run
# (evaluator, validation, callbacks, checkpoint resume), finishing it (the
# parameters to return, the final value, the "rmsprop_fit" result), the
# numerical gradient and the local evaluator. The loop itself is in
# minimize-loop.R, the callbacks in callbacks.R, checkpoints in checkpoint.R,
# the progress line in progress.R; print/summary/plot methods live in
# minimize-methods.R; the engine evaluator in engine-evaluator.R.
# Must never: step the caller's optimizer object (the driver steps a
# $clone() of it), touch the optimizer state outside $step(), or lose a run
# that was interrupted.

#' Minimise a function with RMSprop, in the style of optim()
#'
#' Runs the RMSprop optimizer on `fn`, starting from `par`, using the gradient
#' `gr` (or a numerical gradient when `gr` is `NULL`). With `data`, it trains
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
#' data-parallel shards combine correctly).
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
#' * you press Ctrl-C (or Esc): the interrupt is caught and the parameters
#'   reached so far are returned, with a message saying so.
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
#' @param gr The gradient of `fn`, called like `fn`, returning the same
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
#' @param callback `NULL` or a function called after every step with one
#'   argument, a list with `step`, `epoch` (equal to `step` without `data`),
#'   `loss` (the loss at the
#'   parameters before the step), `par` (the parameters after the step),
#'   `grad_norm` and `learning_rate`. Returning `FALSE` stops the run.
#' @param callbacks `NULL`, or a list of callbacks made by
#'   [callback_early_stopping()], [callback_reduce_lr_on_plateau()] and
#'   [callback_backup_and_restore()] (at most one).
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
#'   clipping) and, with `validation_data`, `val_loss` (at the parameters after
#'   the last step of an epoch; `NA` on the other rows).}
#' \item{optimizer}{the trained optimizer (a clone of the one passed in).}
#' \item{steps, epochs}{the number of steps taken and of epochs completed
#'   (without `data` every step is a full pass, so `epochs` equals `steps`).}
#' \item{elapsed}{the run time in seconds (for a resumed run: of its parts
#'   up to the last checkpoint, plus this one).}
#' \item{resumed_from}{the step of the checkpoint the run resumed from, or
#'   `NA`.}
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
                     validation_data = NULL, callback = NULL, callbacks = NULL,
                     progress = interactive(), engine = NULL) {
  started <- proc.time()[["elapsed"]]
  par <- fit_check_par(par)
  fit_check_function(fn, "fn")
  if (!is.null(gr)) fit_check_function(gr, "gr")
  if (!is.null(callback)) fit_check_function(callback, "callback")
  check_number(tol, "tol", lower = 0)
  check_flag(shuffle, "shuffle")
  check_flag(progress, "progress")
  check_number(steps, "steps", lower = 1, upper = .Machine$integer.max, whole = TRUE, null_ok = TRUE)
  has_data <- !is.null(data)
  if (has_data) {
    if (!(is.data.frame(data) || is.matrix(data)) || NROW(data) < 1L) {
      rmsprop_abort("argument", sprintf(
        "`data` must be a data frame or matrix with at least one row, not %s.",
        fit_describe_data(data)), argument = "data")
    }
    n_obs <- NROW(data)
    check_number(batch_size, "batch_size", lower = 1, upper = .Machine$integer.max, whole = TRUE,
                 null_ok = TRUE)
    check_number(epochs, "epochs", lower = 1, upper = .Machine$integer.max, whole = TRUE)
    batch_size <- if (is.null(batch_size)) n_obs else min(as.integer(batch_size), n_obs)
    n_batches <- as.integer(ceiling(n_obs / batch_size))
    max_steps <- epochs * n_batches
    if (!is.null(steps)) max_steps <- min(max_steps, steps)
  } else {
    if (!is.null(batch_size)) {
      rmsprop_abort("argument", sprintf(
        "`batch_size` needs `data`; got batch_size = %s without data.",
        describe_value(batch_size)), argument = "batch_size")
    }
    check_number(epochs, "epochs", lower = 1, upper = .Machine$integer.max, whole = TRUE)
    n_obs <- 0L
    batch_size <- 0L
    n_batches <- 1L
    max_steps <- if (is.null(steps)) 1000 else steps
    epochs <- max_steps
  }
  max_steps <- as.integer(max_steps)
  epochs <- as.integer(epochs)
  validation <- fit_check_validation(validation_data, data)
  has_val <- !is.null(validation)
  cbs <- fit_check_callbacks(callbacks)
  is_backup <- vapply(cbs, inherits, logical(1), "rmsprop_callback_backup_and_restore")
  backup <- if (any(is_backup)) cbs[[which(is_backup)]] else NULL
  cbs <- cbs[!is_backup]
  for (cb in cbs) {
    if (identical(cb$monitor, "val_loss") && !has_val) {
      rmsprop_abort("argument", sprintf(
        "%s monitors \"val_loss\", which needs `validation_data`; give it, or use monitor = \"loss\".",
        sub("^rmsprop_", "", class(cb)[1])), argument = "callbacks")
    }
  }
  if (!is.null(backup)) fit_checkpoint_check_dir(backup)
  opt <- fit_clone_optimizer(optimizer)
  if (any(vapply(cbs, inherits, logical(1), "rmsprop_callback_reduce_lr_on_plateau")) &&
      is.null(fit_config_learning_rate(opt))) {
    rmsprop_abort("argument", paste(
      "callback_reduce_lr_on_plateau() needs an optimizer with a numeric learning rate;",
      "this one has a schedule or a function. Use a number, or drop the callback."),
      argument = "callbacks")
  }
  fingerprint <- if (is.null(backup)) NULL else
    fit_fingerprint(par, opt, has_data, data, batch_size, epochs, max_steps, shuffle, tol,
                    is.null(gr), validation, cbs)
  # A checkpoint of another problem is refused before anything starts.
  ck <- if (is.null(backup)) NULL else fit_checkpoint_load(backup, fingerprint)
  dots <- list(...)
  evaluate <- fit_evaluator(engine, fn, gr, dots, data)
  cleanup <- attr(evaluate, "cleanup")
  if (is.function(cleanup)) on.exit(cleanup(), add = TRUE)
  val_loss_of <- if (has_val) fit_validation_loss(validation, fn, dots) else NULL

  # The run: configuration and state in one environment; fit_loop() (in
  # minimize-loop.R) keeps the state in local variables while it runs and
  # puts it back here when it returns or is unwound by an interrupt.
  ctx <- new.env(parent = emptyenv())
  ctx$fn <- fn
  ctx$gr <- gr
  ctx$evaluate <- evaluate
  ctx$data <- data
  ctx$has_data <- has_data
  ctx$n_obs <- n_obs
  ctx$batch_size <- batch_size
  ctx$n_batches <- n_batches
  ctx$shuffle <- shuffle
  ctx$max_steps <- max_steps
  ctx$tol <- tol
  ctx$callback <- callback
  ctx$cbs <- cbs
  ctx$has_val <- has_val
  ctx$val_loss_of <- val_loss_of
  ctx$backup <- backup
  ctx$fingerprint <- fingerprint
  ctx$started <- started
  fit_state_init(ctx, par, opt, cbs)
  resumed_from <- NA_integer_
  if (!is.null(ck)) {
    fit_state_restore(ctx, ck$state)
    resumed_from <- ctx$step
  }
  opt <- ctx$opt
  ctx$save_every <- if (!is.null(backup) && is.numeric(backup$save_freq)) backup$save_freq else 0L
  ctx$save_epochs <- !is.null(backup) && identical(backup$save_freq, "epoch")
  # The learning rate of each step. A numeric rate is the same for every
  # step until a callback changes it at the end of an epoch, so the loop
  # writes it into the history in bulk (steps lr_from..step) before anything
  # reads it; for a schedule or a function the optimizer reports the rate
  # each step used (fit_used_learning_rate()): it is never evaluated again.
  ctx$lr_fixed <- !is.null(fit_config_learning_rate(opt))
  ctx$lr_now <- if (ctx$lr_fixed) fit_learning_rate(opt) else NA_real_
  ctx$lr_from <- ctx$step + 1L
  ctx$prog <- if (progress) fit_progress_new(max_steps, epochs, has_data) else NULL
  ctx$tick <- 1L
  # What happens at the end of an epoch besides counting it: the validation
  # loss, the callbacks, tol and the epoch's checkpoint.
  ctx$epoch_work <- has_val || length(cbs) > 0L || tol > 0 || ctx$save_epochs
  # The plain case (no extra arguments, an analytic gradient, in this
  # process) calls fn and gr directly, as the local evaluator would: its call
  # and list cost as much as the rest of the bookkeeping.
  ctx$direct <- isTRUE(attr(evaluate, "direct"))
  ctx$whole <- has_data && n_batches == 1L && !shuffle   # every batch is `data` itself
  # Anything beyond the bare step (checked once per step).
  ctx$extras <- !is.null(callback) || progress || ctx$epoch_work || ctx$save_every > 0L ||
    !ctx$lr_fixed || has_data

  tryCatch(if (!ctx$finished && ctx$code == 1L) fit_loop(ctx), interrupt = function(cond) {
    ctx$code <- 3L
    ctx$msg <- sprintf("interrupted after step %d: returning the parameters reached so far",
                       ctx$step)
  })

  step <- ctx$step
  if (ctx$lr_fixed && ctx$lr_from <= step) ctx$h_lr[ctx$lr_from:step] <- ctx$lr_now
  ctx$lr_from <- step + 1L
  if (!has_data) ctx$epoch <- ctx$epochs_done <- step
  ctx$n_fn <- ctx$n_fn + ctx$n_direct
  ctx$n_gr <- ctx$n_gr + ctx$n_direct
  ctx$n_direct <- 0
  code <- ctx$code
  if (is.null(ctx$msg)) {
    ctx$msg <- if (!has_data) {
      sprintf("step limit reached (%d steps)", step)
    } else if (ctx$epochs_done == epochs) {
      sprintf("epoch limit reached (%d epochs, %d steps)", ctx$epochs_done, step)
    } else if (ctx$batch >= n_batches) {
      sprintf("step limit reached (%d steps, after epoch %d)", step, ctx$epoch)
    } else {
      sprintf("step limit reached (%d steps, during epoch %d)", step, ctx$epoch)
    }
  }
  msg <- ctx$msg
  if (code != 3L) ctx$finished <- TRUE
  recent <- if (step > 0L) ctx$h_loss[max(1L, step - 49L):step] else numeric(0)
  if (!is.null(ctx$prog) && step > 0L) {
    fit_progress_done(ctx$prog, step, max(ctx$epoch, 1L), recent, ctx$last_val,
                      ctx$h_lr[step])
  }

  # The parameters to return.
  restored_epoch <- NA_integer_
  if (code == 4L && startsWith(msg, "stopped: the loss")) {
    final_par <- ctx$prev_par
  } else {
    final_par <- NULL
    if (code != 3L) {
      for (i in seq_along(cbs)) {
        st <- ctx$cb_state[[i]]
        if (inherits(cbs[[i]], "rmsprop_callback_early_stopping") &&
            cbs[[i]]$restore_best_weights && !is.null(st$best_par)) {
          final_par <- st$best_par
          restored_epoch <- st$best_epoch
          if (cbs[[i]]$verbose > 0L) {
            message(sprintf("Restoring model weights from the end of the best epoch: %d.",
                            restored_epoch))
          }
        }
      }
    }
    if (is.null(final_par)) final_par <- opt$finalize_variable_values(ctx$par)
  }
  # A kept checkpoint holds the finished run (before the final evaluation,
  # which the rerun makes again).
  if (!is.null(backup) && code != 3L && !backup$delete_checkpoint) fit_save_state(ctx)
  value <- NA_real_
  tryCatch({
    res <- evaluate(final_par, if (has_data) seq_len(n_obs) else NULL, need_grad = FALSE)
    ctx$n_fn <- ctx$n_fn + res$n_fn
    value <- fit_check_loss(res$loss)
  }, interrupt = function(cond) {
    if (code != 3L) {
      code <<- ctx$code <- 3L
      msg <<- ctx$msg <- sprintf(
        "interrupted after step %d: returning the parameters reached so far", step)
    }
  })
  if (code == 3L) message("minimize(): ", msg, ".")
  if (code == 4L) rmsprop_warn("nonfinite", paste0("minimize() ", msg, "."))
  if (!is.null(backup) && code != 3L && backup$delete_checkpoint) fit_checkpoint_remove(backup)

  keep <- seq_len(step)
  history <- list(step = keep)
  if (has_data) history$epoch <- ctx$h_epoch[keep]
  history$loss <- ctx$h_loss[keep]
  history$learning_rate <- ctx$h_lr[keep]
  history$grad_norm <- ctx$h_gnorm[keep]
  if (has_val) history$val_loss <- ctx$h_val[keep]
  # what data.frame() makes of these columns, without its checks
  history <- structure(history, class = "data.frame", row.names = c(NA_integer_, -step))

  structure(list(
    par = final_par,
    value = value,
    counts = c(`function` = ctx$n_fn, gradient = ctx$n_gr),
    convergence = code,
    message = msg,
    history = history,
    optimizer = opt,
    steps = step,
    epochs = as.integer(ctx$epochs_done),
    elapsed = ctx$elapsed_before + proc.time()[["elapsed"]] - started,
    resumed_from = resumed_from,
    best_epoch = restored_epoch
  ), class = "rmsprop_fit")
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

# validation_data: NULL, a function(par) returning the validation loss, or
# rows with the same columns as `data` (then fn(par, rows, ...) is the loss).
fit_check_validation <- function(validation_data, data) {
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

# function(par) giving the validation loss (in this process, with any engine).
fit_validation_loss <- function(validation, fn, dots) {
  check <- function(x) {
    if (!(is.numeric(x) || is.logical(x)) || length(x) != 1L) {
      rmsprop_abort("value", sprintf(
        "the validation loss must be a single number, not %s.", describe_value(x)),
        argument = "validation_data")
    }
    as.double(x)
  }
  if (validation$kind == "function") {
    f <- validation$f
    return(function(par) check(f(par)))
  }
  rows <- validation$data
  function(par) check(fit_call(fn, par, rows, dots, TRUE))
}

fit_check_function <- function(f, arg) {
  if (!is.function(f)) {
    rmsprop_abort("argument", sprintf("`%s` must be a function, not %s.", arg,
                                      describe_value(f)), argument = arg)
  }
  invisible(f)
}

fit_describe_data <- function(x) {
  if (is.data.frame(x) || is.matrix(x)) return(sprintf("a %s with 0 rows", class(x)[1]))
  describe_value(x)
}

# The value of fn: a single number (names and attributes dropped).
fit_check_loss <- function(x) {
  if (!(is.numeric(x) || is.logical(x)) || length(x) != 1L) {
    rmsprop_abort("value", sprintf("`fn` must return a single number, not %s.",
                                   describe_value(x)))
  }
  as.double(x)
}

# par: numeric leaves (double, integer, logical) in (nested) lists, as the
# structure module takes variables (make_skeleton()), with at least one
# number and no NA. Returned with every leaf as double and all attributes
# kept.
fit_check_par <- function(par) {
  bad <- function() {
    rmsprop_abort("argument", sprintf(
      "`par` must be a numeric vector, matrix or array, or a list of them, with at least one number and no NA; got %s.",
      describe_value(par)), argument = "par")
  }
  if (is.data.frame(par)) bad()
  tryCatch(make_skeleton(par, "par"), rmsprop_error = function(e) bad())
  flat <- unlist(par, use.names = FALSE)
  if (length(flat) == 0L || anyNA(flat)) bad()
  relist_flat(as.double(flat), par)
}

fit_clone_optimizer <- function(optimizer) {
  if (is.null(optimizer)) return(optimizer_rmsprop(learning_rate = 0.01))
  if (!is.environment(optimizer) || !is.function(optimizer$step) ||
      !is.function(optimizer$clone)) {
    rmsprop_abort("argument", sprintf(
      "`optimizer` must be an optimizer from optimizer_rmsprop() or optimizer_loss_scale(), not %s.",
      describe_value(optimizer)), argument = "optimizer")
  }
  optimizer$clone()
}

# The learning rate the next step will use (NA if the optimizer cannot say).
fit_learning_rate <- function(opt) {
  f <- opt$current_learning_rate
  if (is.function(f)) return(as.double(f()))
  lr <- opt$learning_rate
  if (is.numeric(lr) && length(lr) == 1L) as.double(lr) else NA_real_
}

# Central differences on the flattened parameters: 2 * length(par) calls of f.
numerical_gradient <- function(f, par) {
  relist_flat(numerical_partials(f, par, seq_along(unlist(par, use.names = FALSE))), par)
}

# The central-difference partial derivatives for the coordinates `idx` of the
# flattened parameters (data-parallel engines split idx across workers; each
# partial is computed the same way wherever it runs).
numerical_partials <- function(f, par, idx) {
  x <- unlist(par, use.names = FALSE)
  g <- numeric(length(idx))
  for (j in seq_along(idx)) {
    i <- idx[j]
    h <- .Machine$double.eps^(1 / 3) * max(abs(x[i]), 1)
    up <- x
    down <- x
    up[i] <- x[i] + h
    down[i] <- x[i] - h
    f_up <- fit_check_loss(f(relist_flat(up, par)))
    f_down <- fit_check_loss(f(relist_flat(down, par)))
    g[j] <- (f_up - f_down) / (up[i] - down[i])
  }
  g
}

# Loss and gradient of fn at par for the given rows (NULL without data), in
# this process. Also used on data-parallel workers, so it must not need the
# package: fit_call() and numerical_gradient() are copied with it.
fit_call <- function(f, par, batch, dots, has_data) {
  args <- if (has_data) c(list(par, batch), dots) else c(list(par), dots)
  do.call(f, args)
}

# The evaluator in this process. Called as evaluate(par, rows, need_grad,
# order, span) (order and span are for engines; ignored here). Without extra
# arguments fn and gr are called directly, not through do.call(): that is
# most of the driver's cost per step on small problems.
fit_local_evaluator <- function(fn, gr, dots, data) {
  has_data <- !is.null(data)
  n_obs <- NROW(data)
  if (length(dots)) {
    f <- function(p, batch) fit_call(fn, p, batch, dots, has_data)
    g <- if (is.null(gr)) NULL else function(p, batch) fit_call(gr, p, batch, dots, has_data)
  } else if (has_data) {
    f <- fn
    g <- gr
  } else {
    f <- function(p, batch) fn(p)
    g <- if (is.null(gr)) NULL else function(p, batch) gr(p)
  }
  evaluate <- function(par, rows, need_grad = TRUE, order = NULL, span = NULL) {
    batch <- NULL
    if (has_data) {
      # All the rows in their order (a full batch without shuffling): no copy.
      all_rows <- length(rows) == n_obs && !is.unsorted(rows, strictly = TRUE)
      batch <- if (all_rows) data else data[rows, , drop = FALSE]
    }
    loss <- f(par, batch)
    if (!need_grad) return(list(loss = loss, grad = NULL, n_fn = 1, n_gr = 0))
    grad <- if (is.null(g)) numerical_gradient(function(p) f(p, batch), par) else g(par, batch)
    list(loss = loss, grad = grad, n_fn = 1, n_gr = 1)
  }
  # Without extra arguments and with an analytic gradient, minimize() calls
  # fn(par[, batch]) and gr(par[, batch]) itself: the same calls, less cost.
  if (!length(dots) && !is.null(gr)) attr(evaluate, "direct") <- TRUE
  evaluate
}

fit_evaluator <- function(engine, fn, gr, dots, data) {
  if (is.null(engine)) return(fit_local_evaluator(fn, gr, dots, data))
  engine_evaluator(engine, fn, gr, dots, data)
}
