# Methods for the "rmsprop_fit" result of minimize(): format/print, summary
# (with its own print), as.data.frame (the history) and plot (base graphics).
#
# With mini-batches the history has one row per batch: the loss of one batch
# is noisy (and a short last batch makes spikes), so summaries and the bold
# line of the plot use the mean loss of each epoch; the per-batch loss is
# drawn faintly behind it. A `val_loss` column (NA where not evaluated) is
# shown where present.
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

# One row per epoch of a history: the epoch, its first and last step, the
# number of steps, the mean loss of its steps (weighted by a `batch_size`
# column when the history has one) and the last validation loss recorded in
# it (NA if none). NULL for a history without an `epoch` column or rows.
fit_epoch_table <- function(h) {
  if (!"epoch" %in% names(h) || nrow(h) == 0L) return(NULL)
  runs <- rle(h$epoch)
  last <- cumsum(runs$lengths)
  first <- last - runs$lengths + 1L
  w <- if ("batch_size" %in% names(h)) as.double(h$batch_size) else rep(1, nrow(h))
  mean_loss <- vapply(seq_along(first), function(i) {
    idx <- first[i]:last[i]
    sum(h$loss[idx] * w[idx]) / sum(w[idx])
  }, numeric(1))
  val <- if ("val_loss" %in% names(h)) {
    vapply(seq_along(first), function(i) {
      v <- h$val_loss[first[i]:last[i]]
      v <- v[!is.na(v)]
      if (length(v)) v[length(v)] else NA_real_
    }, numeric(1))
  } else {
    rep(NA_real_, length(first))
  }
  data.frame(epoch = runs$values, first_step = h$step[first], last_step = h$step[last],
             steps = runs$lengths, loss = mean_loss, val_loss = val)
}

# TRUE when the history has epochs of more than one step (mini-batches).
fit_is_batched <- function(epochs) !is.null(epochs) && any(epochs$steps > 1L)

# The learning-rate setting of a trained optimizer as given to it: a number,
# a schedule, a function, or NULL when the optimizer cannot say.
fit_lr_setting <- function(opt) {
  cfg <- tryCatch(opt$get_config(), error = function(e) NULL)
  if (is.null(cfg)) return(NULL)
  if (is.null(cfg$learning_rate) && !is.null(cfg$inner_optimizer)) {
    return(fit_lr_setting(cfg$inner_optimizer))
  }
  cfg$learning_rate
}

fit_lr_label <- function(v) {
  if (is_schedule(v)) return(format(v, short = TRUE))
  if (is.function(v)) return("a function")
  if (is.numeric(v) && length(v) == 1L) return(format(v))
  NA_character_
}

# Two numbers with as few significant digits as show that they differ
# (at least `digits`), so "0.05 -> 0.04999" never prints as "0.05 -> 0.05".
fit_format_pair <- function(a, b, digits) {
  for (d in c(digits:15L)) {
    fa <- format(a, digits = d)
    fb <- format(b, digits = d)
    if (a == b || fa != fb) break
  }
  c(fa, fb)
}

#' Print, summarise and convert a minimize() result
#'
#' `print()` shows how the run ended, the final loss and the parameters;
#' `summary()` adds the course of the loss, of the validation loss (when the
#' history has a `val_loss` column) and of the learning rate, and a table of
#' the parameters; `as.data.frame()` returns the history (one row per step).
#'
#' With mini-batches (`data` and a `batch_size` smaller than the data) the loss
#' of one batch is noisy, so `summary()` reports the loss as epoch means: the
#' mean loss of the first epoch, of the last one and of the best one (a plain
#' mean of the batch losses, or weighted by the rows of each batch when the
#' history has a `batch_size` column). Without
#' mini-batches every step sees all the data and the losses are those of the
#' steps. The learning rate is given in step order, first to last
#' (`0.05 -> 0.00314`), with its range when it went outside these two.
#'
#' @param x,object A result of [minimize()].
#' @param digits Significant digits to show (the learning rate is shown with
#'   at most 3 unless more are needed to tell two rates apart).
#' @param ... Ignored (for compatibility with the generics).
#' @param row.names,optional Ignored (for compatibility with the generic).
#' @return `format()` a character vector of lines; `print()` its argument,
#'   invisibly; `summary()` an object of class `"summary.rmsprop_fit"`, a list
#'   whose `loss` and `val_loss` entries are `NULL` or
#'   `c(first = , last = , best = , best_at = )` (per epoch or per step, as
#'   its `loss_per` entry says), and whose `learning_rate` is `NULL` or
#'   `c(first = , last = , min = , max = )`; `as.data.frame()` the history
#'   data frame (`step`, `epoch` with data, `loss`, `learning_rate`,
#'   `grad_norm`, and any further columns that [minimize()] records).
#' @name rmsprop_fit-methods
#' @examples
#' fit <- minimize(c(a = 3, b = -2), function(p) sum((p - 1)^2),
#'                 function(p) 2 * (p - 1), steps = 300,
#'                 optimizer = optimizer_rmsprop(learning_rate = 0.05))
#' fit
#' summary(fit)
#' head(as.data.frame(fit))
#'
#' # Mini-batches: the loss is summarised per epoch
#' d <- data.frame(y = mtcars$mpg, x = scale(mtcars$wt))
#' batch_loss <- function(b, batch) mean((batch$y - b[1] - b[2] * batch$x)^2)
#' set.seed(1)
#' fit2 <- minimize(c(0, 0), batch_loss, data = d, batch_size = 10, epochs = 40,
#'                  optimizer = optimizer_rmsprop(
#'                    learning_rate_schedule_exponential_decay(1, 40, 0.5)))
#' summary(fit2)
NULL

#' @rdname rmsprop_fit-methods
#' @export
format.rmsprop_fit <- function(x, digits = 6L, ...) {
  h <- x$history
  epochs <- fit_epoch_table(h)
  first <- if (fit_is_batched(epochs)) {
    sprintf("first epoch mean loss %s", format(epochs$loss[1L], digits = digits))
  } else {
    sprintf("first loss %s", format(if (nrow(h) > 0L) h$loss[1L] else NA_real_,
                                    digits = digits))
  }
  c(
    sprintf("<rmsprop_fit> %d step%s%s: %s (convergence %d)",
            x$steps, if (x$steps == 1L) "" else "s",
            if ("epoch" %in% names(h)) sprintf(", %d epoch%s", x$epochs,
                                                if (x$epochs == 1L) "" else "s") else "",
            fit_convergence_text(x$convergence), x$convergence),
    sprintf("  message: %s", x$message),
    sprintf("  value:   %s (%s)", format(x$value, digits = digits), first),
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

# first, last, best (the smallest) and where the best is, of a series whose
# NA entries are skipped; NULL when nothing is left.
fit_course <- function(values, at) {
  keep <- !is.na(values)
  values <- values[keep]
  at <- at[keep]
  if (!length(values)) return(NULL)
  best <- which.min(values)
  c(first = values[1L], last = values[length(values)], best = values[best],
    best_at = at[best])
}

#' @rdname rmsprop_fit-methods
#' @export
summary.rmsprop_fit <- function(object, ...) {
  h <- object$history
  flat <- unlist(object$par)
  if (is.null(names(flat))) names(flat) <- paste0("par[", seq_along(flat), "]")
  epochs <- fit_epoch_table(h)
  batched <- fit_is_batched(epochs)
  if (batched) {
    loss <- fit_course(epochs$loss, epochs$epoch)
    val <- fit_course(epochs$val_loss, epochs$epoch)
  } else {
    loss <- if (nrow(h)) fit_course(h$loss, h$step) else NULL
    val <- if ("val_loss" %in% names(h)) fit_course(h$val_loss, h$step) else NULL
  }
  lr <- if (nrow(h)) h$learning_rate[!is.na(h$learning_rate)] else numeric()
  structure(list(
    convergence = object$convergence,
    message = object$message,
    steps = object$steps,
    epochs = object$epochs,
    has_epochs = "epoch" %in% names(h),
    value = object$value,
    loss_per = if (batched) "epoch" else "step",
    loss = loss,
    val_loss = val,
    learning_rate = if (length(lr)) c(first = lr[1L], last = lr[length(lr)],
                                      min = min(lr), max = max(lr)) else NULL,
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
  if (is.null(cfg$learning_rate) && !is.null(cfg$inner_optimizer)) {
    inner <- fit_optimizer_text(cfg$inner_optimizer)
    entries <- c(sprintf("dynamic loss scale from %s", format(cfg$initial_scale)),
                 attr(inner, "entries"))
    return(structure(paste(entries, collapse = ", "), entries = entries))
  }
  show <- cfg[!vapply(cfg, is.null, logical(1))]
  # (the text carries its "name = value" entries, for printing on several lines)
  show <- show[intersect(names(show), c("learning_rate", "rho", "momentum", "epsilon",
                                        "centered", "weight_decay", "clipnorm",
                                        "clipvalue", "global_clipnorm", "use_ema",
                                        "gradient_accumulation_steps"))]
  vals <- vapply(show, function(v) {
    if (is.function(v)) fit_lr_label(v) else paste(format(v), collapse = ",")
  }, character(1))
  entries <- paste0(names(vals), " = ", vals)
  structure(paste(entries, collapse = ", "), entries = entries)
}

fit_course_text <- function(label, course, per, digits) {
  if (is.null(course)) return(NULL)
  f <- function(v) format(v, digits = digits)
  sprintf("%s: first %s, last %s, best %s (%s %d)", label, f(course[["first"]]),
          f(course[["last"]]), f(course[["best"]]), per, as.integer(course[["best_at"]]))
}

fit_lr_text <- function(lr, digits) {
  if (is.null(lr)) return(NULL)
  d <- min(digits, 3L)
  if (lr[["min"]] == lr[["max"]]) {
    return(sprintf("learning rate: %s (constant)", format(lr[["first"]], digits = d)))
  }
  ends <- fit_format_pair(lr[["first"]], lr[["last"]], d)
  text <- sprintf("learning rate: %s -> %s", ends[1L], ends[2L])
  if (lr[["min"]] < min(lr[["first"]], lr[["last"]]) ||
      lr[["max"]] > max(lr[["first"]], lr[["last"]])) {
    range <- fit_format_pair(lr[["min"]], lr[["max"]], d)
    text <- sprintf("%s (between %s and %s)", text, range[1L], range[2L])
  }
  text
}

#' @rdname rmsprop_fit-methods
#' @export
format.summary.rmsprop_fit <- function(x, digits = 6L, ...) {
  f <- function(v) format(v, digits = digits)
  par_lines <- utils::capture.output(print(x$par, digits = digits))
  per_epoch <- identical(x$loss_per, "epoch")
  c(
    sprintf("minimize(): %d step%s%s in %.2f s; convergence %d (%s)", x$steps,
            if (x$steps == 1L) "" else "s",
            if (x$has_epochs) sprintf(", %d epochs", x$epochs) else "",
            x$elapsed, x$convergence, fit_convergence_text(x$convergence)),
    sprintf("  %s", x$message),
    if (!is.na(x$optimizer)) {
      entries <- attr(x$optimizer, "entries")
      if (is.null(entries)) sprintf("optimizer: %s", x$optimizer) else
        c("optimizer:", pack_entries(entries, width = max(40L, getOption("width", 80L)) - 2L))
    },
    sprintf("final value: %s", f(x$value)),
    fit_course_text(if (per_epoch) "loss (epoch means)" else "loss", x$loss,
                    x$loss_per, digits),
    fit_course_text("validation loss", x$val_loss, x$loss_per, digits),
    fit_lr_text(x$learning_rate, digits),
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

#' Plot the loss curve (and the learning rate) of a minimize() run
#'
#' Draws the loss per step, on a log scale when every loss is positive.
#' With mini-batches the loss of each batch is drawn faintly, and the mean
#' loss of each epoch as a bold line with points at the middle of the epoch
#' (the mean is taken over the batches of the epoch while the parameters
#' moved; weighted by the rows of each batch when the history has a
#' `batch_size` column); dotted lines mark the epoch boundaries when there
#' are few epochs.
#' A validation loss (a `val_loss` column of the history, `NA` where it was
#' not evaluated) is drawn where it was measured, after the last step of its
#' epoch. When the learning rate changed during the run (a schedule), a
#' second, smaller panel shows it, titled with the schedule; a constant rate
#' is only noted above the loss panel. The graphics parameters are restored
#' afterwards; a one-panel plot fits in a cell of the caller's `par(mfrow =)`.
#'
#' @param x A result of [minimize()].
#' @param log_loss `TRUE` draws the loss on a log axis (ignored when a loss is
#'   not positive).
#' @param main A title for the loss panel.
#' @param col Colour of the loss (the per-batch loss uses a faint version).
#' @param lwd Width of the lines.
#' @param val_col Colour of the validation loss.
#' @param ... Further graphical arguments for the loss panel's
#'   [graphics::plot()] (such as `xlim`, `ylim` or `ylab`).
#' @return `x`, invisibly.
#' @export
#' @examples
#' fit <- minimize(c(-1.2, 1), function(p) (1 - p[1])^2 + 100 * (p[2] - p[1]^2)^2,
#'                 steps = 200, optimizer = optimizer_rmsprop(
#'                   learning_rate = learning_rate_schedule_exponential_decay(0.01, 50, 0.5)))
#' plot(fit)
#'
#' # Mini-batches of 10 rows: the faint line is the loss of each batch, the
#' # bold one the mean of each epoch
#' d <- data.frame(y = mtcars$mpg, x = scale(mtcars$wt))
#' batch_loss <- function(b, batch) mean((batch$y - b[1] - b[2] * batch$x)^2)
#' set.seed(1)
#' fit2 <- minimize(c(0, 0), batch_loss, data = d, batch_size = 10, epochs = 40,
#'                  optimizer = optimizer_rmsprop(learning_rate = 0.5))
#' plot(fit2)
plot.rmsprop_fit <- function(x, log_loss = TRUE, main = "Loss", col = "steelblue",
                             lwd = 1.5, val_col = "darkorange3", ...) {
  h <- x$history
  if (is.null(h) || nrow(h) == 0L) {
    rmsprop_abort("argument", "`x` has no steps to plot.", argument = "x")
  }
  epochs <- fit_epoch_table(h)
  batched <- fit_is_batched(epochs)
  # validation points: measured after the last step of their epoch
  if (batched) {
    has_val <- !is.na(epochs$val_loss)
    val_x <- epochs$last_step[has_val] + 0.5
    val_y <- epochs$val_loss[has_val]
  } else if ("val_loss" %in% names(h)) {
    has_val <- !is.na(h$val_loss)
    val_x <- h$step[has_val] + 0.5
    val_y <- h$val_loss[has_val]
  } else {
    val_x <- val_y <- numeric()
  }
  lr <- h$learning_rate
  lr_known <- lr[!is.na(lr)]
  lr_panel <- length(lr_known) > 1L && any(lr_known != lr_known[1L])
  lr_setting <- fit_lr_setting(x$optimizer)

  legend_text <- c(if (batched) c("loss per batch", "epoch mean"),
                   if (length(val_y)) c(if (!batched) "loss", "validation loss"))
  # top margin: the title, and a line for the legend or the constant rate
  # Above the loss panel: the legend on the left and a constant rate on the
  # right, on one line if they fit the panel's width (estimated before the
  # panel exists: the device's width shared by the columns of the grid), else
  # the rate on a line of its own above the legend.
  note <- if (!lr_panel && length(lr_known)) {
    sprintf("learning rate %s (constant)", format(lr_known[1L], digits = 3L))
  }
  entries <- if (length(legend_text)) paste0(legend_text, "   ") else character()
  em <- graphics::strwidth("m", units = "inches", cex = 0.8)
  panel_w <- graphics::par("din")[1L] / graphics::par("mfrow")[2L] -
    5.5 * graphics::par("csi")
  need <- sum(graphics::strwidth(entries, units = "inches", cex = 0.8)) +
    length(entries) * 2.5 * em +
    (if (length(note)) graphics::strwidth(note, units = "inches", cex = 0.8) + 2 * em else 0)
  two_rows <- length(entries) > 0L && length(note) > 0L && need > panel_w
  top <- 2.4 + (length(entries) > 0L || length(note) > 0L) + two_rows
  bottom <- 3.4
  lr_top <- if (is.function(lr_setting)) 2.6 else 2
  old <- graphics::par(mar = c(bottom, 4.5, top, 1), mgp = c(2.2, 0.7, 0))
  if (lr_panel) {
    # a layout replaces the caller's mfrow grid; put that grid back afterwards
    old <- c(old, graphics::par(mfrow = graphics::par("mfrow")))
  }
  on.exit(graphics::par(old), add = TRUE)
  if (lr_panel) graphics::layout(matrix(1:2, ncol = 1L), heights = fit_panel_heights(
    c(top + bottom, lr_top + bottom), share = c(2, 1)))

  ys <- c(h$loss, if (batched) epochs$loss, val_y)
  ys <- ys[is.finite(ys)]
  log_axis <- if (log_loss && length(ys) && all(ys > 0)) "y" else ""
  args <- utils::modifyList(list(
    xlim = range(c(h$step, val_x)), ylim = if (length(ys)) range(ys) else c(0, 1),
    log = log_axis, xlab = "step",
    ylab = if (nzchar(log_axis)) "loss (log scale)" else "loss", main = ""
  ), list(...))
  if (nzchar(log_axis) && is.null(args$yaxt)) args$yaxt <- "n"
  do.call(graphics::plot, c(list(x = h$step, y = h$loss, type = "n"), args))
  if (identical(args$yaxt, "n") && nzchar(log_axis) && is.null(list(...)$yaxt)) {
    fit_log_axis()
  }
  graphics::title(main = main, line = top - 1.3)
  if (batched && nrow(epochs) > 1L && nrow(epochs) <= 20L) {
    graphics::abline(v = epochs$last_step[-nrow(epochs)] + 0.5, col = "grey85", lty = 3)
  }
  faint <- grDevices::adjustcolor(col, alpha.f = 0.35)
  graphics::lines(h$step, h$loss, col = if (batched) faint else col,
                  lwd = if (batched) 1 else lwd)
  if (nrow(h) == 1L) graphics::points(h$step, h$loss, col = col, pch = 19)
  dots <- function(n) n <= 60L
  if (batched) {
    mid <- (epochs$first_step + epochs$last_step) / 2
    graphics::lines(mid, epochs$loss, col = col, lwd = lwd * 1.4)
    if (dots(nrow(epochs))) graphics::points(mid, epochs$loss, col = col, pch = 19, cex = 0.6)
  }
  if (length(val_y)) {
    graphics::lines(val_x, val_y, col = val_col, lwd = lwd)
    if (dots(length(val_y))) graphics::points(val_x, val_y, col = val_col, pch = 15, cex = 0.6)
  }
  leg_col <- c(if (batched) c(faint, col), if (length(val_y)) c(if (!batched) col, val_col))
  leg_lwd <- c(if (batched) c(1, lwd * 1.4), if (length(val_y)) c(if (!batched) lwd, lwd))
  leg_pch <- c(if (batched) c(NA, 19), if (length(val_y)) c(if (!batched) NA, 15))
  draw_legend <- function(cex, plot = TRUE) {
    graphics::legend(graphics::grconvertX(0, "npc", "user"),
                     graphics::grconvertY(1, "npc", "user"), legend = entries,
                     col = leg_col, lwd = leg_lwd, pch = leg_pch, pt.cex = 0.6,
                     horiz = TRUE, bty = "n", cex = cex, xjust = 0, yjust = 0,
                     x.intersp = 0.5, seg.len = 1.5, xpd = NA, text.width = NA,
                     plot = plot)
  }
  cex <- 0.8
  if (length(entries)) {
    # smaller text when even the legend alone is wider than the panel
    inches_per_x <- graphics::par("pin")[1L] / diff(graphics::par("usr")[1:2])
    width <- draw_legend(cex, plot = FALSE)$rect$w * inches_per_x +
      (if (length(note) && !two_rows) graphics::strwidth(note, units = "inches", cex = cex) +
         2 * em else 0)
    if (width > graphics::par("pin")[1L]) cex <- max(0.55, cex * graphics::par("pin")[1L] / width)
    draw_legend(cex)
  }
  if (length(note)) {
    # mtext() does not scale by par("cex") as legend() does
    graphics::mtext(note, side = 3, line = if (two_rows) 1.2 else 0.3, adj = 1,
                    cex = cex * graphics::par("cex"))
  }
  if (lr_panel) {
    graphics::par(mar = c(bottom, 4.5, lr_top, 1))
    graphics::plot(h$step, lr, type = "l", col = "grey25", lwd = lwd, xlab = "step",
                   ylab = "learning rate", main = "", xlim = args$xlim)
    graphics::title(main = "Learning rate", line = lr_top - 1.3)
    label <- fit_lr_label(lr_setting)
    if (!is.na(label) && is.function(lr_setting)) {
      graphics::mtext(label, side = 3, line = 0.2, cex = 0.75)
    }
  }
  invisible(x)
}

# Layout heights for panels stacked on the current device whose margins are
# `margin_lines` text lines high, so that their plot regions share the rest of
# the height in the ratio `share` (margins do not shrink with the device, so
# plain relative heights would squeeze a small panel to nothing).
fit_panel_heights <- function(margin_lines, share) {
  line <- graphics::par("csi") * graphics::par("mex")
  margins <- margin_lines * line
  free <- graphics::par("din")[2L] - sum(margins) -
    sum(graphics::par("omi")[c(1L, 3L)])
  if (!is.finite(free) || free <= 0) return(share)
  margins + free * share / sum(share)
}

# The y axis of a log-scale plot drawn with yaxt = "n": each tick labelled on
# its own ("0.1", "500", not "0.1", "500.0"); over more than two decades
# only the powers of ten are labelled (axis() would otherwise drop whichever
# labels overlap, leaving 0.5, 5, 50).
fit_log_axis <- function() {
  ticks <- graphics::axTicks(2L)
  labels <- vapply(ticks, format, character(1))
  decade <- abs(log10(ticks) - round(log10(ticks))) < 1e-9
  if (sum(decade) >= 3L) {
    graphics::axis(2L, at = ticks[!decade], labels = FALSE, tcl = -0.3)
    graphics::axis(2L, at = ticks[decade], labels = labels[decade])
  } else {
    graphics::axis(2L, at = ticks, labels = labels)
  }
}
