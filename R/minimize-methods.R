# Methods for the "rmsprop_fit" result of minimize(): format/print, summary
# (with its own print), as.data.frame (the history) and plot (base graphics).
#
# Must never: change the fit, or leave the caller's graphics parameters
# changed (plot() restores par()).

fit_convergence_text <- function(code) {
  switch(as.character(code),
         "0" = "converged", "1" = "limit reached", "2" = "stopped by callback",
         "3" = "interrupted", "4" = "non-finite value", "unknown")
}

fit_format_par <- function(par, digits) {
  flat <- unlist(par)
  if (length(flat) > 8L) {
    return(sprintf("%d numbers in %s (first: %s ...)", length(flat),
                   if (is.list(par)) sprintf("a list of %d", length(par)) else "a vector",
                   paste(format(flat[1:4], digits = digits), collapse = ", ")))
  }
  vals <- format(flat, digits = digits)
  if (!is.null(names(flat))) vals <- paste0(names(flat), " = ", vals)
  paste(vals, collapse = ", ")
}

#' Print, summarise and convert a minimize() result
#'
#' `print()` shows how the run ended, the final loss and the parameters;
#' `summary()` adds the loss and learning-rate ranges of the history and a
#' table of the parameters; `as.data.frame()` returns the history (one row per
#' step).
#'
#' @param x,object A result of [minimize()].
#' @param digits Significant digits to show.
#' @param ... Ignored (for compatibility with the generics).
#' @param row.names,optional Ignored (for compatibility with the generic).
#' @return `format()` a character vector of lines; `print()` its argument,
#'   invisibly; `summary()` an object of class `"summary.rmsprop_fit"`;
#'   `as.data.frame()` the history data frame (`step`, `epoch` with data,
#'   `loss`, `learning_rate`, `grad_norm`).
#' @name rmsprop_fit-methods
#' @examples
#' fit <- minimize(c(a = 3, b = -2), function(p) sum((p - 1)^2),
#'                 function(p) 2 * (p - 1), steps = 300,
#'                 optimizer = optimizer_rmsprop(learning_rate = 0.05))
#' fit
#' summary(fit)
#' head(as.data.frame(fit))
NULL

#' @rdname rmsprop_fit-methods
#' @export
format.rmsprop_fit <- function(x, digits = 6L, ...) {
  h <- x$history
  first <- if (nrow(h) > 0L) h$loss[1L] else NA_real_
  c(
    sprintf("<rmsprop_fit> %d step%s%s: %s (convergence %d)",
            x$steps, if (x$steps == 1L) "" else "s",
            if ("epoch" %in% names(h)) sprintf(", %d epoch%s", x$epochs,
                                                if (x$epochs == 1L) "" else "s") else "",
            fit_convergence_text(x$convergence), x$convergence),
    sprintf("  message: %s", x$message),
    sprintf("  value:   %s (first loss %s)", format(x$value, digits = digits),
            format(first, digits = digits)),
    fit_format_val_loss(h, digits),
    sprintf("  par:     %s", fit_format_par(x$par, digits)),
    sprintf("  counts:  function %d, gradient %d", as.integer(x$counts[["function"]]),
            as.integer(x$counts[["gradient"]]))
  )
}

# The validation line of format(): the last and the best validation loss.
fit_format_val_loss <- function(h, digits) {
  v <- h$val_loss
  if (is.null(v) || all(is.na(v))) return(character(0))
  at <- which(!is.na(v))
  best <- at[which.min(v[at])]
  sprintf("  val_loss: %s (best %s at step %d)", format(v[at[length(at)]], digits = digits),
          format(v[best], digits = digits), h$step[best])
}

#' @rdname rmsprop_fit-methods
#' @export
print.rmsprop_fit <- function(x, digits = 6L, ...) {
  cat(format(x, digits = digits, ...), sep = "\n")
  invisible(x)
}

#' @rdname rmsprop_fit-methods
#' @export
summary.rmsprop_fit <- function(object, ...) {
  h <- object$history
  flat <- unlist(object$par)
  if (is.null(names(flat))) names(flat) <- paste0("par[", seq_along(flat), "]")
  structure(list(
    convergence = object$convergence,
    message = object$message,
    steps = object$steps,
    epochs = object$epochs,
    has_epochs = "epoch" %in% names(h),
    value = object$value,
    loss = if (nrow(h)) c(first = h$loss[1L], last = h$loss[nrow(h)],
                          min = min(h$loss)) else NULL,
    learning_rate = if (nrow(h)) range(h$learning_rate) else NULL,
    grad_norm = if (nrow(h)) h$grad_norm[nrow(h)] else NA_real_,
    counts = object$counts,
    elapsed = object$elapsed,
    par = data.frame(estimate = unname(flat), row.names = names(flat)),
    optimizer = fit_optimizer_text(object$optimizer)
  ), class = "summary.rmsprop_fit")
}

fit_optimizer_text <- function(opt) {
  cfg <- tryCatch(opt$get_config(), error = function(e) NULL)
  if (is.null(cfg)) return(NA_character_)
  show <- cfg[!vapply(cfg, is.null, logical(1))]
  show <- show[intersect(names(show), c("learning_rate", "rho", "momentum", "epsilon",
                                        "centered", "weight_decay", "clipnorm",
                                        "clipvalue", "global_clipnorm", "use_ema",
                                        "gradient_accumulation_steps"))]
  vals <- vapply(show, function(v) {
    if (is.function(v) || is.list(v)) "<schedule>" else paste(format(v), collapse = ",")
  }, character(1))
  paste(paste0(names(vals), " = ", vals), collapse = ", ")
}

#' @rdname rmsprop_fit-methods
#' @export
format.summary.rmsprop_fit <- function(x, digits = 6L, ...) {
  f <- function(v) format(v, digits = digits)
  par_lines <- utils::capture.output(print(x$par, digits = digits))
  c(
    sprintf("minimize(): %d step%s%s in %.2f s; convergence %d (%s)", x$steps,
            if (x$steps == 1L) "" else "s",
            if (x$has_epochs) sprintf(", %d epochs", x$epochs) else "",
            x$elapsed, x$convergence, fit_convergence_text(x$convergence)),
    sprintf("  %s", x$message),
    if (!is.na(x$optimizer)) sprintf("optimizer: %s", x$optimizer),
    sprintf("final value: %s", f(x$value)),
    if (!is.null(x$loss)) sprintf("loss: first %s, last %s, min %s", f(x$loss[["first"]]),
                                  f(x$loss[["last"]]), f(x$loss[["min"]])),
    if (!is.null(x$learning_rate)) {
      if (x$learning_rate[1L] == x$learning_rate[2L]) {
        sprintf("learning rate: %s", f(x$learning_rate[1L]))
      } else {
        sprintf("learning rate: %s to %s", f(x$learning_rate[1L]), f(x$learning_rate[2L]))
      }
    },
    sprintf("last gradient norm: %s", f(x$grad_norm)),
    sprintf("counts: function %d, gradient %d", as.integer(x$counts[["function"]]),
            as.integer(x$counts[["gradient"]])),
    "parameters:",
    par_lines
  )
}

#' @rdname rmsprop_fit-methods
#' @export
print.summary.rmsprop_fit <- function(x, digits = 6L, ...) {
  cat(format(x, digits = digits, ...), sep = "\n")
  invisible(x)
}

#' @rdname rmsprop_fit-methods
#' @export
as.data.frame.rmsprop_fit <- function(x, row.names = NULL, optional = FALSE, ...) {
  x$history
}

#' Plot the loss curve and the learning rate of a minimize() run
#'
#' Two panels, one above the other: the loss per step (on a log scale when
#' every loss is positive) and the learning rate used by each step. The
#' graphics parameters are restored afterwards.
#'
#' @param x A result of [minimize()].
#' @param log_loss `TRUE` draws the loss on a log axis (ignored when a loss is
#'   not positive).
#' @param main A title for the loss panel.
#' @param col,lwd Colour and width of the lines.
#' @param ... Further graphical arguments for the loss panel's [graphics::plot()].
#' @return `x`, invisibly.
#' @export
#' @examples
#' fit <- minimize(c(-1.2, 1), function(p) (1 - p[1])^2 + 100 * (p[2] - p[1]^2)^2,
#'                 steps = 200, optimizer = optimizer_rmsprop(
#'                   learning_rate = learning_rate_schedule_exponential_decay(0.01, 50, 0.5)))
#' plot(fit)
plot.rmsprop_fit <- function(x, log_loss = TRUE, main = "Loss", col = "steelblue",
                             lwd = 1.5, ...) {
  h <- x$history
  if (nrow(h) == 0L) {
    rmsprop_abort("argument", "`x` has no steps to plot.", argument = "x")
  }
  old <- graphics::par(mfrow = c(2L, 1L), mar = c(2.5, 4.5, 2, 1), oma = c(1.5, 0, 0, 0))
  on.exit(graphics::par(old), add = TRUE)
  log_axis <- if (log_loss && all(is.finite(h$loss)) && all(h$loss > 0)) "y" else ""
  graphics::plot(h$step, h$loss, type = "l", log = log_axis, col = col, lwd = lwd,
                 xlab = "", ylab = if (nzchar(log_axis)) "loss (log scale)" else "loss",
                 main = main, ...)
  if ("epoch" %in% names(h) && x$epochs > 1L) {
    ends <- cumsum(rle(h$epoch)$lengths)
    graphics::abline(v = ends[-length(ends)] + 0.5, col = "grey85", lty = 3)
  }
  lr <- h$learning_rate
  if (all(is.na(lr))) {
    graphics::plot.new()
    graphics::title(main = "Learning rate (unknown)")
  } else {
    graphics::plot(h$step, lr, type = "l", col = "darkorange", lwd = lwd, xlab = "",
                   ylab = "learning rate", main = "Learning rate")
  }
  graphics::mtext("step", side = 1, line = 0.3, outer = TRUE)
  invisible(x)
}
