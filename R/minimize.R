# minimize(): an optim()-style training driver around the optimizer object.
#
# Owns: the training loop (full-batch steps or mini-batch epochs), the
# numerical gradient, early stopping (tol, callback, Ctrl-C, non-finite
# values), the progress bar and the "rmsprop_fit" result. Its print/summary/
# plot methods live in minimize-methods.R; data-parallel gradients and the
# engines live in parallel.R.
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
#' central differences, \eqn{(f(x + h e_i) - f(x - h e_i)) / 2h} with
#' \eqn{h = \epsilon^{1/3} \max(|x_i|, 1)}: that costs `2 * length(par)` calls
#' of `fn` per step, so it is much slower than an analytic gradient for more
#' than a few parameters, and less accurate (about 1e-10 relative).
#'
#' **Mini-batches.** With `data` (a data frame or matrix whose rows are
#' observations), `fn` and `gr` are called as `fn(par, batch, ...)`, where
#' `batch` holds the rows of the current mini-batch (`data[rows, , drop =
#' FALSE]`). Each epoch visits every row once, in `batch_size` chunks (the last
#' one may be smaller), in an order drawn with `sample.int()` when `shuffle =
#' TRUE`, so runs are reproducible under `set.seed()`. `fn` should return the
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
#' * the loss or the gradient is not finite (the step is refused, a warning is
#'   given, and the parameters before that step are returned; at the very
#'   first step this is an error instead);
#' * you press Ctrl-C (or Esc): the interrupt is caught and the parameters
#'   reached so far are returned, with a message saying so.
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
#' @param callback `NULL` or a function called after every step with one
#'   argument, a list with `step`, `epoch` (equal to `step` without `data`),
#'   `loss` (the loss at the
#'   parameters before the step), `par` (the parameters after the step),
#'   `grad_norm` and `learning_rate`. Returning `FALSE` stops the run.
#' @param progress `TRUE` shows a text progress bar (in interactive sessions
#'   only; updated at most 100 times per run).
#' @param engine `NULL` (compute in this R process) or an engine for
#'   data-parallel gradients: see [rmsprop_engine()].
#'
#' @return An object of class `"rmsprop_fit"`, a list with
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
#'   (used by the step) and `grad_norm` (Euclidean norm of the gradient, before
#'   clipping).}
#' \item{optimizer}{the trained optimizer (a clone of the one passed in).}
#' \item{steps, epochs}{the number of steps taken and of epochs completed
#'   (without `data` every step is a full pass, so `epochs` equals `steps`).}
#' \item{elapsed}{the run time in seconds.}
#' It has [print()][print.rmsprop_fit], [summary()][summary.rmsprop_fit],
#' [as.data.frame()][as.data.frame.rmsprop_fit] (the history) and
#' [plot()][plot.rmsprop_fit] methods.
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
minimize <- function(par, fn, gr = NULL, ..., optimizer = NULL, steps = NULL, tol = 0,
                     data = NULL, batch_size = NULL, epochs = 1L, shuffle = TRUE,
                     callback = NULL, progress = interactive(), engine = NULL) {
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
    n_batches <- ceiling(n_obs / batch_size)
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
    n_batches <- 1
    max_steps <- if (is.null(steps)) 1000 else steps
    epochs <- max_steps
  }
  opt <- fit_clone_optimizer(optimizer)
  evaluate <- fit_evaluator(engine, fn, gr, list(...), data)
  cleanup <- attr(evaluate, "cleanup")
  if (is.function(cleanup)) on.exit(cleanup(), add = TRUE)

  # Run state lives in an environment so that an interrupt, which unwinds the
  # loop, still leaves everything reached so far in hand.
  st <- new.env(parent = emptyenv())
  st$par <- par
  st$step <- 0L
  st$epochs_done <- 0L
  st$n_fn <- 0
  st$n_gr <- 0
  st$code <- 1L
  st$message <- NULL
  # The history grows as steps are taken (doubling, up to max_steps): sized
  # for max_steps up front, steps = .Machine$integer.max asked for four
  # vectors of 2^31 values (tens of GB) before the first step.
  n_hist <- min(max_steps, 1024)
  st$loss <- rep(NA_real_, n_hist)
  st$lr <- rep(NA_real_, n_hist)
  st$gnorm <- rep(NA_real_, n_hist)
  st$epoch <- rep(NA_integer_, n_hist)

  bar <- NULL
  if (progress && interactive()) {
    bar <- utils::txtProgressBar(min = 0, max = max_steps, style = 3)
    on.exit(close(bar), add = TRUE)
  }
  bar_every <- max(1, ceiling(max_steps / 100))

  one_step <- function(rows, epoch) {
    res <- evaluate(st$par, rows)
    st$n_fn <- st$n_fn + res$n_fn
    st$n_gr <- st$n_gr + res$n_gr
    loss <- fit_check_loss(res$loss)
    step <- st$step + 1L
    if (!is.finite(loss)) {
      return(fit_nonfinite(st, step, sprintf(
        "the loss is %s at the parameters reached by step %d", format(loss), step - 1L)))
    }
    grad <- res$grad
    flat_g <- unlist(grad, use.names = FALSE)
    lr <- fit_learning_rate(opt)
    nonfinite <- FALSE
    new_par <- tryCatch(
      opt$step(grad, st$par),
      rmsprop_error_gradient = function(e) {
        if (is.numeric(flat_g) && !all(is.finite(flat_g))) {
          nonfinite <<- TRUE
          return(NULL)
        }
        stop(e)
      }
    )
    if (nonfinite) {
      return(fit_nonfinite(st, step, sprintf(
        "the gradient is not finite at the parameters reached by step %d", step - 1L)))
    }
    gnorm <- sqrt(sum(flat_g * flat_g))
    if (step > length(st$loss)) fit_grow_history(st, max_steps)
    st$loss[step] <- loss
    st$lr[step] <- lr
    st$gnorm[step] <- gnorm
    st$epoch[step] <- as.integer(epoch)
    st$par <- new_par
    st$step <- step
    if (!is.null(bar) && (step %% bar_every == 0 || step == max_steps)) {
      utils::setTxtProgressBar(bar, step)
    }
    if (!is.null(callback)) {
      info <- list(step = step, epoch = as.integer(epoch), loss = loss, par = new_par,
                   grad_norm = gnorm, learning_rate = lr)
      if (isFALSE(callback(info))) {
        st$code <- 2L
        st$message <- sprintf("stopped by the callback after step %d", step)
        return(FALSE)
      }
    }
    if (!has_data && tol > 0) {
      if (gnorm < tol) {
        st$code <- 0L
        st$message <- sprintf("converged: the gradient norm fell below tol after step %d", step)
        return(FALSE)
      }
      if (step > 1L && abs(loss - st$loss[step - 1L]) < tol) {
        st$code <- 0L
        st$message <- sprintf("converged: the change of the loss fell below tol at step %d", step)
        return(FALSE)
      }
    }
    TRUE
  }

  run <- function() {
    if (!has_data) {
      for (s in seq_len(max_steps)) {
        if (!one_step(NULL, s)) return(invisible())
        st$epochs_done <- s
      }
      st$message <- sprintf("step limit reached (%d steps)", st$step)
      return(invisible())
    }
    prev_mean <- NA_real_
    for (e in seq_len(epochs)) {
      order <- if (shuffle) sample.int(n_obs) else seq_len(n_obs)
      first <- st$step + 1L
      for (b in seq_len(n_batches)) {
        if (st$step >= max_steps) {
          st$message <- sprintf("step limit reached (%d steps, during epoch %d)", st$step, e)
          return(invisible())
        }
        rows <- order[((b - 1) * batch_size + 1):min(b * batch_size, n_obs)]
        if (!one_step(rows, e)) return(invisible())
      }
      st$epochs_done <- e
      if (tol > 0) {
        idx <- first:st$step
        epoch_mean <- mean(st$loss[idx])
        if (mean(st$gnorm[idx]) < tol) {
          st$code <- 0L
          st$message <- sprintf("converged: the mean gradient norm of epoch %d fell below tol", e)
          return(invisible())
        }
        if (!is.na(prev_mean) && abs(epoch_mean - prev_mean) < tol) {
          st$code <- 0L
          st$message <- sprintf("converged: the mean loss changed by less than tol in epoch %d", e)
          return(invisible())
        }
        prev_mean <- epoch_mean
      }
    }
    st$message <- sprintf("epoch limit reached (%d epochs, %d steps)", st$epochs_done, st$step)
    invisible()
  }

  interrupted <- function(cond) {
    st$code <- 3L
    st$message <- sprintf(
      "interrupted after step %d: returning the parameters reached so far", st$step)
    invisible()
  }
  tryCatch(run(), interrupt = interrupted)

  final_par <- opt$finalize_variable_values(st$par)
  value <- NA_real_
  tryCatch({
    res <- evaluate(final_par, if (has_data) seq_len(n_obs) else NULL, need_grad = FALSE)
    st$n_fn <- st$n_fn + res$n_fn
    value <- fit_check_loss(res$loss)
  }, interrupt = function(cond) {
    if (st$code != 3L) interrupted(cond)
  })
  if (st$code == 3L) message("minimize(): ", st$message, ".")

  n <- st$step
  keep <- seq_len(n)
  history <- data.frame(step = keep)
  if (has_data) history$epoch <- st$epoch[keep]
  history$loss <- st$loss[keep]
  history$learning_rate <- st$lr[keep]
  history$grad_norm <- st$gnorm[keep]

  structure(list(
    par = final_par,
    value = value,
    counts = c(`function` = st$n_fn, gradient = st$n_gr),
    convergence = st$code,
    message = st$message,
    history = history,
    optimizer = opt,
    steps = n,
    epochs = as.integer(st$epochs_done),
    elapsed = proc.time()[["elapsed"]] - started
  ), class = "rmsprop_fit")
}

# ---- helpers ------------------------------------------------------------

fit_nonfinite <- function(st, step, what) {
  if (step == 1L) {
    rmsprop_abort("value", sprintf(
      "minimize() cannot start: %s.", sub("the parameters reached by step 0", "the initial parameters", what, fixed = TRUE)))
  }
  st$code <- 4L
  st$message <- sprintf("stopped before step %d: %s", step, what)
  rmsprop_warn("nonfinite", paste0("minimize() ", st$message, "."))
  FALSE
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

# par: numeric leaves (double, integer, logical) in (nested) lists, at least
# one number. Returned with every leaf as double and all attributes kept.
# Twice the room in the run's history vectors (NA-padded), at most max_steps.
fit_grow_history <- function(st, max_steps) {
  n <- min(max_steps, 2 * length(st$loss))
  length(st$loss) <- n
  length(st$lr) <- n
  length(st$gnorm) <- n
  length(st$epoch) <- n
}

fit_check_par <- function(par) {
  ok <- function(x) {
    if (is.list(x) && !is.data.frame(x)) return(all(vapply(x, ok, logical(1))))
    (is.double(x) || is.integer(x) || is.logical(x)) && !is.factor(x)
  }
  flat <- if (ok(par)) unlist(par, use.names = FALSE) else NULL
  if (is.null(flat) || length(flat) == 0L || anyNA(flat)) {
    rmsprop_abort("argument", sprintf(
      "`par` must be a numeric vector, matrix or array, or a list of them, with at least one number and no NA; got %s.",
      describe_value(par)), argument = "par")
  }
  fit_relist(as.double(flat), par)
}

# Put the numbers of `flat` back into the shape of `skeleton` (which holds
# numeric leaves in nested lists), keeping names, dim and dimnames.
fit_relist <- function(flat, skeleton) {
  pos <- 0L
  fill <- function(s) {
    if (is.list(s)) {
      out <- lapply(s, fill)
      attributes(out) <- attributes(s)
      return(out)
    }
    n <- length(s)
    v <- flat[pos + seq_len(n)]
    pos <<- pos + n
    attributes(v) <- attributes(s)
    v
  }
  fill(skeleton)
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
  fit_relist(numerical_partials(f, par, seq_along(unlist(par, use.names = FALSE))), par)
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
    f_up <- fit_check_loss(f(fit_relist(up, par)))
    f_down <- fit_check_loss(f(fit_relist(down, par)))
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

fit_local_evaluator <- function(fn, gr, dots, data) {
  has_data <- !is.null(data)
  n_obs <- NROW(data)
  function(par, rows, need_grad = TRUE) {
    batch <- NULL
    if (has_data) {
      # All the rows in their order (a full batch without shuffling): no copy.
      all_rows <- length(rows) == n_obs && !is.unsorted(rows, strictly = TRUE)
      batch <- if (all_rows) data else data[rows, , drop = FALSE]
    }
    loss <- fit_call(fn, par, batch, dots, has_data)
    if (!need_grad) return(list(loss = loss, grad = NULL, n_fn = 1, n_gr = 0))
    grad <- if (is.null(gr)) {
      numerical_gradient(function(p) fit_call(fn, p, batch, dots, has_data), par)
    } else {
      fit_call(gr, par, batch, dots, has_data)
    }
    list(loss = loss, grad = grad, n_fn = 1, n_gr = 1)
  }
}

fit_evaluator <- function(engine, fn, gr, dots, data) {
  if (is.null(engine)) return(fit_local_evaluator(fn, gr, dots, data))
  engine_evaluator(engine, fn, gr, dots, data)
}
