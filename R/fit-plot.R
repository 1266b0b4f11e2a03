# plot() of the "rmsprop_fit" result of minimize() (base graphics): panels
# stacked on a shared epoch axis (keras3's plot of a history): the loss, one
# panel per metric (training and validation), and the learning rate when it
# changed; the best epoch (and whether its parameters were restored) and a
# resumption are marked in every panel.
#
# Layout rules that keep labels apart (checked on PNGs of several sizes):
# y tick labels are horizontal, as many as the panel's height has room for,
# and the left margin is as wide as the widest; each panel is named in its
# top margin (no rotated y titles, which outgrow short panels); the legend
# goes beside the first panel's name when it fits, else on rows above it.
# Must never: change the fit, or leave the caller's graphics parameters
# changed (plot() restores par()).

#' Plot the loss curve, the metrics and the learning rate of a minimize() run
#'
#' Draws, on a shared epoch axis (steps for a run without `data`), one panel
#' per quantity, as keras3 plots a training history: the loss (on a log scale
#' when every loss is positive), then every metric of the history (a column
#' `<name>` and its validation twin `val_<name>`), then the learning rate when
#' it changed during the run (a schedule; the panel names it). A constant
#' rate is noted above the loss panel.
#'
#' With mini-batches each epoch spans one unit of the axis, centred on its
#' number: the loss of each batch is drawn faintly across it, and the mean
#' loss of the epoch (weighted by the rows of each batch when the history has
#' a `batch_size` column) as a bold line with a point at the epoch's number,
#' where its validation loss and metrics are drawn too; dotted lines mark the
#' epoch boundaries when there are few epochs. A dashed vertical line marks
#' the best epoch: the one early stopping chose (with a circle on the
#' monitored value, and "restored" when its parameters are the ones
#' returned), or else the one with the smallest validation loss. A dotted one
#' marks where a run resumed from a checkpoint.
#'
#' The graphics parameters are restored afterwards; a one-panel plot fits in
#' a cell of the caller's `par(mfrow =)`, a plot of several panels takes the
#' whole device.
#'
#' @param x A result of [minimize()].
#' @param log_loss `TRUE` draws the loss on a log axis (ignored when a loss is
#'   not positive).
#' @param main A title above the panels (`NULL`: none).
#' @param col Colour of the training curves (the per-batch loss uses a faint
#'   version).
#' @param lwd Width of the lines.
#' @param val_col Colour of the validation curves.
#' @param metrics Names of the metrics to draw (`NULL`: all the history has;
#'   `character()`: none).
#' @param ... `xlim`, `ylim` and `xlab`, and `ylab` (the name of the loss
#'   panel); further graphical parameters go to the loss panel's
#'   [graphics::plot.window()].
#' @return `x`, invisibly.
#' @export
#' @examples
#' fit <- minimize(c(-1.2, 1), function(p) (1 - p[1])^2 + 100 * (p[2] - p[1]^2)^2,
#'                 steps = 200, optimizer = optimizer_rmsprop(
#'                   learning_rate = learning_rate_schedule_exponential_decay(0.01, 50, 0.5)))
#' plot(fit)
#'
#' # Mini-batches of 10 rows with a validation set, a metric and early
#' # stopping: the faint line is the loss of each batch, the bold one the mean
#' # of each epoch; the dashed line marks the restored best epoch
#' d <- data.frame(y = mtcars$mpg, x = scale(mtcars$wt))
#' batch_loss <- function(b, batch) mean((batch$y - b[1] - b[2] * batch$x)^2)
#' set.seed(1)
#' train <- sample(32, 24)
#' fit2 <- minimize(c(0, 0), batch_loss, data = d[train, ], batch_size = 10, epochs = 40,
#'                  validation_data = d[-train, ], progress = FALSE,
#'                  optimizer = optimizer_rmsprop(learning_rate = 0.5),
#'                  callbacks = list(callback_early_stopping(patience = 5,
#'                                                           restore_best_weights = TRUE)))
#' plot(fit2)
plot.rmsprop_fit <- function(x, log_loss = TRUE, main = NULL, col = "steelblue",
                             lwd = 1.5, val_col = "darkorange3", metrics = NULL, ...) {
  h <- x$history
  if (is.null(h) || nrow(h) == 0L) {
    rmsprop_abort("argument", "`x` has no steps to plot.", argument = "x")
  }
  if (!is.null(metrics) && !is.character(metrics)) {
    rmsprop_abort("argument", sprintf("`metrics` must be NULL or metric names, not %s.",
                                      describe_value(metrics)), argument = "metrics")
  }
  dots <- list(...)
  d <- fit_plot_data(x, metrics, log_loss, dots)
  n <- length(d$panels)
  repeat {
    keys <- fit_plot_keys(d, col, lwd, val_col)
    lay <- fit_plot_layout(d, keys, main)
    # a device too small for every panel: the first ones, and a warning
    if (length(d$panels) == 1L || min(lay$plot_h) >= fit_min_panel) break
    d$panels <- d$panels[-length(d$panels)]
  }
  if (length(d$panels) < n) {
    rmsprop_warn("plot", sprintf(paste(
      "The device has room for %d of the %d panels of `x`; the others are not drawn",
      "(a larger device, or `metrics =` to choose)."), length(d$panels), n))
  }
  old <- graphics::par(mgp = c(2, 0.55, 0), las = 1, tcl = -0.35, mar = graphics::par("mar"))
  if (length(lay$panels) > 1L) {
    # a layout replaces the caller's mfrow grid; put that grid back afterwards
    old <- c(old, graphics::par(mfrow = graphics::par("mfrow")),
             graphics::par(cex = graphics::par("cex")))
    graphics::layout(matrix(seq_along(lay$panels), ncol = 1L), heights = lay$heights)
    graphics::par(cex = lay$cex)
  }
  on.exit(graphics::par(old), add = TRUE)
  xlim <- dots$xlim %||% d$xlim
  for (i in seq_along(lay$panels)) {
    p <- lay$panels[[i]]
    graphics::par(mar = c(lay$bottom[i], lay$left, lay$top[i], 1))
    graphics::plot.new()
    window <- list(xlim = xlim, ylim = p$ylim, log = if (p$log) "y" else "")
    do.call(graphics::plot.window, c(window, if (i == 1L) fit_window_dots(dots)))
    fit_draw_axes(p, d, i == length(lay$panels), lay)
    fit_draw_marks(d, p)
    fit_draw_series(p, d, col, lwd, val_col)
    fit_draw_header(p, if (i == 1L) lay$top_rows, keys, lay)
    if (i == 1L && length(main) && nzchar(main)) {
      graphics::title(main = main, line = lay$top[1L] - 1.3)
    }
  }
  invisible(x)
}

# Graphical arguments of `...` for plot.window(): all but those plot() reads.
fit_window_dots <- function(dots) dots[setdiff(names(dots), c("xlim", "ylim", "xlab", "ylab"))]

# What to draw: the x position of every step and every epoch, and one panel
# (a list of name, series, ylim, log) per quantity.
fit_plot_data <- function(x, metrics, log_loss, dots) {
  h <- x$history
  epochs <- fit_epochs(h)
  batched <- fit_is_batched(epochs)
  unit <- fit_unit(h)
  # batch i in epoch e sits at e - 1/2 + (i - 1/2) / n, n the steps of a
  # whole epoch: the epoch's batches centred on its number, where its epoch
  # values are drawn (the batches of an epoch cut short fill only its start)
  step_x <- if (batched) {
    rep.int(epochs$epoch, epochs$steps) - 0.5 + (sequence(epochs$steps) - 0.5) /
      max(epochs$steps)
  } else {
    epochs$epoch
  }
  epoch_x <- epochs$epoch
  all_metrics <- fit_metric_names(h, fit_field(x, "metrics"))
  shown <- if (is.null(metrics)) all_metrics else intersect(metrics, all_metrics)
  if (!is.null(metrics) && length(setdiff(metrics, all_metrics))) {
    rmsprop_abort("argument", sprintf(
      "`metrics` names %s, which the history of `x` does not have (it has %s).",
      paste(encodeString(setdiff(metrics, all_metrics), quote = "\""), collapse = ", "),
      if (length(all_metrics)) paste(encodeString(all_metrics, quote = "\""), collapse = ", ")
      else "none"), argument = "metrics")
  }
  lr <- h$learning_rate
  lr_known <- lr[!is.na(lr)]
  lr_setting <- fit_lr_setting(x$optimizer)
  metric_panels <- lapply(shown, function(m) fit_metric_panel(m, epochs))
  # (a metric never recorded has no panel)
  metric_panels <- metric_panels[vapply(metric_panels, function(p) length(p$series) > 0L, TRUE)]
  panels <- c(list(fit_loss_panel(h, epochs, batched, step_x, log_loss, dots)), metric_panels)
  if (length(lr_known) > 1L && any(lr_known != lr_known[1L])) {
    label <- fit_lr_label(lr_setting)
    panels <- c(panels, list(list(
      name = "learning rate", log = FALSE, kind = "lr", ylim = range(lr_known),
      note = if (!is.na(label) && is.function(lr_setting)) label,
      series = list(list(x = step_x, y = lr, role = "lr")))))
  }
  lr_panel <- identical(panels[[length(panels)]]$kind, "lr")
  best <- fit_best(x, epochs)
  resumed <- fit_resumed(x)
  list(h = h, epochs = epochs, batched = batched, unit = unit, step_x = step_x,
       epoch_x = epoch_x, panels = panels, best = best,
       best_x = if (!is.null(best) && best$epoch %in% epochs$epoch) best$epoch,
       resumed = resumed, resumed_x = fit_resumed_x(resumed, h, step_x, batched),
       lr_note = if (!lr_panel && length(lr_known)) {
         sprintf("learning rate %s (constant)", format(lr_known[1L], digits = 3L))
       },
       xlim = range(c(step_x, epoch_x)),
       xlab = dots$xlab %||% fit_x_label(unit, epochs, batched))
}

# "epoch (10 steps each)" when every epoch but the last has as many steps.
fit_x_label <- function(unit, epochs, batched) {
  if (unit != "epoch" || !batched) return(unit)
  n <- epochs$steps
  full <- if (length(n) > 1L) n[-length(n)] else n
  if (all(full == full[1L]) && n[length(n)] <= full[1L]) {
    sprintf("epoch (%d steps each)", full[1L])
  } else {
    "epoch"
  }
}

# The x of a resumption after step N: between steps N and N + 1.
fit_resumed_x <- function(resumed, h, step_x, batched) {
  if (is.null(resumed)) return(NULL)
  i <- match(resumed$step, h$step)
  if (is.na(i)) return(NULL)
  if (i < length(step_x)) return((step_x[i] + step_x[i + 1L]) / 2)
  step_x[i] + if (batched) (step_x[i] - step_x[max(1L, i - 1L)]) / 2 else 0.5
}

fit_loss_panel <- function(h, epochs, batched, step_x, log_loss, dots) {
  val <- !is.na(epochs$val_loss)
  series <- if (batched) {
    list(list(x = step_x, y = h$loss, role = "batch"),
         list(x = epochs$epoch, y = epochs$loss, role = "train", column = "loss"))
  } else {
    list(list(x = step_x, y = h$loss, role = "train", column = "loss"))
  }
  if (any(val)) {
    series <- c(series, list(list(x = epochs$epoch[val], y = epochs$val_loss[val],
                                  role = "val", column = "val_loss")))
  }
  ys <- unlist(lapply(series, `[[`, "y"))
  ys <- ys[is.finite(ys)]
  log <- log_loss && length(ys) > 0L && all(ys > 0)
  list(name = dots$ylab %||% if (log) "loss (log scale)" else "loss", kind = "loss",
       log = log, series = series,
       ylim = dots$ylim %||% if (length(ys)) range(ys) else c(0, 1))
}

fit_metric_panel <- function(name, epochs) {
  series <- list()
  for (col in c(name, paste0("val_", name))) {
    v <- epochs[[col]]
    if (is.null(v) || all(is.na(v))) next
    keep <- !is.na(v)
    series <- c(series, list(list(x = epochs$epoch[keep], y = v[keep],
                                  role = if (col == name) "train" else "val", column = col)))
  }
  ys <- unlist(lapply(series, `[[`, "y"))
  ys <- ys[is.finite(ys)]
  list(name = name, kind = "metric", log = FALSE, series = series,
       ylim = if (length(ys)) range(ys) else c(0, 1))
}

# The legend entries of the first panel: list(label, col, lwd, lty, pch) for
# each kind of curve and mark drawn; none for a lone training curve.
fit_plot_keys <- function(d, col, lwd, val_col) {
  roles <- unlist(lapply(d$panels, function(p) vapply(p$series, `[[`, "", "role")))
  keys <- list()
  add <- function(label, col, lwd, lty = 1, pch = NA) {
    keys[[length(keys) + 1L]] <<- list(label = label, col = col, lwd = lwd, lty = lty,
                                       pch = pch)
  }
  if ("batch" %in% roles) add("per batch", fit_faint(col), 1)
  if ("batch" %in% roles || "val" %in% roles) {
    add("training", col, if (d$batched) lwd * 1.4 else lwd, pch = if (d$batched) 19 else NA)
  }
  if ("val" %in% roles) add("validation", val_col, lwd, pch = if (d$batched) 15 else NA)
  if (!is.null(d$best_x)) {
    b <- d$best
    label <- sprintf("%s (%s %d)", if (is.na(b$monitor)) "best" else paste("best", b$monitor),
                     d$unit, b$epoch)
    if (b$restored) label <- sub(" (", ", restored (", label, fixed = TRUE)
    add(label, fit_mark_col, 1, lty = 2, pch = if (fit_best_panel(d) > 0L) 1 else NA)
  }
  if (!is.null(d$resumed_x)) add(sprintf("resumed (step %d)", d$resumed$step), "grey45", 1,
                                 lty = 3)
  keys
}

fit_mark_col <- "grey35"
# the least height (inches) of a panel's plot region when there are several
fit_min_panel <- 0.35
fit_faint <- function(col) grDevices::adjustcolor(col, alpha.f = 0.35)

# The panel holding the monitored quantity of the best epoch (0: none).
fit_best_panel <- function(d) {
  if (is.null(d$best_x) || is.na(d$best$monitor)) return(0L)
  for (i in seq_along(d$panels)) {
    cols <- vapply(d$panels[[i]]$series, function(s) s$column %||% "", "")
    if (d$best$monitor %in% cols) return(i)
  }
  0L
}

# Margins (in lines), panel heights (inches) and the y ticks of every panel,
# for the current device: see the file's opening comment for the rules.
fit_plot_layout <- function(d, keys, main) {
  n <- length(d$panels)
  grid <- graphics::par("mfrow")
  # several panels take the whole device (whose grid would shrink the text)
  # and keep the text size of one plot (a layout of 3 rows would shrink it)
  cex <- if (n > 1L && any(grid != 1L)) 1 else graphics::par("cex")
  lh <- graphics::par("cin")[2L] * cex * graphics::par("mex")
  char_h <- graphics::par("cin")[2L] * cex * graphics::par("cex.axis")
  omi <- graphics::par("omi")
  dev <- graphics::par("din") - c(sum(omi[c(2L, 4L)]), sum(omi[c(1L, 3L)]))
  if (n == 1L) dev <- dev / rev(grid)
  width_in <- function(s, rel) graphics::strwidth(s, "inches", cex = rel * cex /
                                                    graphics::par("cex"))
  share <- vapply(d$panels, function(p) switch(p$kind, loss = 2, metric = 1.3, lr = 1), 1)
  bottom <- c(rep(1.8, n - 1L), 3.2)
  # twice: the legend rows need the left margin, which needs the y labels,
  # whose number needs the panel heights, which need the legend rows
  left <- 5
  for (pass in 1:2) {
    panel_w <- dev[1L] - (left + 1) * lh
    note_below <- length(d$lr_note) > 0L &&
      width_in(d$lr_note, 0.8) + width_in("mm", 1) <= (panel_w - width_in(d$xlab, 1)) / 2
    rows <- fit_top_rows(d$panels[[1L]]$name, keys, if (!note_below) d$lr_note, panel_w,
                         width_in)
    top <- c(1.4 + 1.15 * (length(rows) - 1L) + if (length(main) && nzchar(main)) 1.4 else 0,
             rep(1.4, n - 1L))
    margins <- (top + bottom) * lh
    free <- dev[2L] - sum(margins)
    plot_h <- if (free > 0) free * share / sum(share) else rep(0.2, n)
    labels <- unlist(lapply(seq_len(n), function(i) {
      p <- d$panels[[i]]
      fit_y_ticks(fit_axis_range(p$ylim, p$log), p$log, plot_h[i], char_h)$labels
    }))
    left <- max(2.5, max(width_in(labels, graphics::par("cex.axis"))) / lh + 1.1)
  }
  list(panels = d$panels, heights = if (free > 0) margins + plot_h else share, top = top,
       bottom = bottom, left = left, top_rows = rows,
       note_below = if (note_below) d$lr_note, cex = cex, lh = lh, char_h = char_h,
       plot_h = plot_h)
}

# The y range plot.window() makes of `lim` (4% more each side; log10 units
# on a log axis).
fit_axis_range <- function(lim, log) {
  if (log) lim <- log10(lim)
  if (diff(lim) == 0) {
    pad <- if (lim[1L] == 0) 1 else 0.4 * abs(lim[1L])
    return(lim + c(-pad, pad))
  }
  lim + c(-1, 1) * 0.04 * diff(lim)
}

# Ticks for a y axis spanning `usr` (log10 units on a log axis) on a panel
# `height` inches high: as many as leave labels of height `char_h` at least
# 1.5 heights apart (axis() would drop the labels that come closer). Labels
# are formatted one by one ("0.002", "0.01"); on a log axis the ticks are
# 1-2-5, 1-5 or powers of ten.
fit_y_ticks <- function(usr, log, height, char_h) {
  inside <- function(t, r) t[t >= r[1L] - 1e-9 * diff(r) & t <= r[2L] + 1e-9 * diff(r)]
  apart <- function(at) {
    pos <- (if (log) log10(at) else at) / diff(usr) * height
    length(at) < 2L || min(diff(pos)) >= 1.5 * char_h
  }
  for (room in seq(max(2L, floor(height / (1.5 * char_h))), 1L)) {
    at <- if (log) fit_log_ticks(usr, room, inside) else fit_linear_ticks(usr, room, inside)
    if (apart(at)) break
  }
  list(at = at, labels = format_each(at, 6L))
}

fit_log_ticks <- function(usr, room, inside) {
  decades <- seq(floor(usr[1L]), ceiling(usr[2L]))
  for (mult in list(c(1, 2, 5), c(1, 5), 1)) {
    at <- inside(as.vector(outer(mult, 10^decades)), 10^usr)
    if (length(at) <= min(room, 7L)) break
  }
  if (length(at) > room) at <- at[seq(1L, length(at), by = ceiling(length(at) / room))]
  # within about a decade: ticks as on a linear axis when they are more
  if (length(at) < 3L) {
    linear <- fit_linear_ticks(10^usr, room, inside)
    if (length(linear) > length(at)) at <- linear
  }
  at
}

fit_linear_ticks <- function(r, room, inside) {
  # the most of pretty()'s ticks that fit (pretty(r, 2) may leave one)
  best <- numeric()
  for (n in 1:12) {
    at <- inside(pretty(r, n), r)
    if (length(at) <= room && length(at) > length(best)) best <- at
  }
  if (!length(best)) {
    # room for one label that no pretty() set leaves alone: the middle one
    at <- inside(pretty(r, 10L), r)
    best <- if (length(at)) at[ceiling(length(at) / 2)] else signif(mean(r), 2L)
  }
  best
}

# The rows above the first panel: its name at the left of the bottom row,
# then the legend and the note (a constant learning rate), right-aligned,
# each on the first row with room for it (a new row above otherwise). A
# legend wider than the panel is shrunk (down to 0.6 of its size).
fit_top_rows <- function(name, keys, note, panel_w, width_in) {
  gap <- width_in("mm", 0.8)
  used <- width_in(name, 0.9) + gap
  rows <- list(list())
  widths <- used
  items <- list()
  if (length(keys)) {
    w <- fit_keys_width(keys, 0.8, width_in)
    rel <- if (w > panel_w) max(0.6, 0.8 * panel_w / w) else 0.8
    items <- c(items, list(list(kind = "keys", rel = rel, w = fit_keys_width(keys, rel, width_in))))
  }
  if (length(note)) {
    items <- c(items, list(list(kind = "note", text = note, rel = 0.8,
                                w = width_in(note, 0.8))))
  }
  for (item in items) {
    r <- length(rows)
    if (widths[r] + item$w > panel_w && length(rows[[r]]) + (r == 1L) > 0L) {
      rows <- c(rows, list(list()))
      widths <- c(widths, 0)
      r <- r + 1L
    }
    rows[[r]] <- c(rows[[r]], list(item))
    widths[r] <- widths[r] + item$w + gap
  }
  rows
}

# The width (inches) of the legend entries at size `rel`: a key of 1.6 "m"
# widths, then its label, entries 1.2 "m" widths apart.
fit_keys_width <- function(keys, rel, width_in) {
  m <- width_in("m", rel)
  sum(vapply(keys, function(k) width_in(k$label, rel), 1)) +
    length(keys) * 2 * m + (length(keys) - 1L) * 1.2 * m
}

# The axes and box of panel `p`: integer ticks on the x axis (its title on
# the last panel only), horizontal y labels as many as the panel has room for.
fit_draw_axes <- function(p, d, last, lay) {
  usr <- graphics::par("usr")
  xt <- pretty(usr[1:2])
  xt <- xt[xt == round(xt) & xt >= usr[1L] & xt <= usr[2L]]
  graphics::axis(1L, at = xt)
  if (last) {
    graphics::title(xlab = d$xlab, line = 2)
    if (length(lay$note_below)) {
      graphics::mtext(lay$note_below, side = 1, line = 2, adj = 1, cex = 0.8 * lay$cex)
    }
  }
  yt <- fit_y_ticks(usr[3:4], p$log, graphics::par("pin")[2L], lay$char_h)
  if (!p$log && length(yt$at) < 3L) {
    # a short panel: unlabelled ticks between the few labels
    inside <- function(t, r) t[t >= r[1L] & t <= r[2L]]
    minor <- fit_linear_ticks(usr[3:4], floor(graphics::par("pin")[2L] / lay$char_h), inside)
    graphics::axis(2L, at = minor, labels = FALSE, tcl = -0.2)
  }
  graphics::axis(2L, at = yt$at, labels = yt$labels)
  graphics::box()
}

# The marks behind the curves: epoch boundaries (few epochs of mini-batches),
# the best epoch (dashed) and a resumption (dotted).
fit_draw_marks <- function(d, p) {
  if (d$batched && nrow(d$epochs) > 1L && nrow(d$epochs) <= 20L) {
    graphics::abline(v = d$epochs$epoch[-nrow(d$epochs)] + 0.5, col = "grey85", lty = 3)
  }
  if (!is.null(d$best_x)) graphics::abline(v = d$best_x, col = fit_mark_col, lty = 2)
  if (!is.null(d$resumed_x)) graphics::abline(v = d$resumed_x, col = "grey45", lty = 3)
}

fit_draw_series <- function(p, d, col, lwd, val_col) {
  dots <- function(n) n <= 60L
  for (s in p$series) {
    if (s$role == "batch") {
      graphics::lines(s$x, s$y, col = fit_faint(col), lwd = 1)
    } else if (s$role == "lr") {
      graphics::lines(s$x, s$y, col = "grey25", lwd = lwd)
    } else {
      colour <- if (s$role == "val") val_col else col
      per_epoch <- d$batched || p$kind == "metric"
      graphics::lines(s$x, s$y, col = colour,
                      lwd = if (d$batched && s$role == "train") lwd * 1.4 else lwd)
      if ((per_epoch && dots(length(s$x))) || length(s$x) == 1L) {
        graphics::points(s$x, s$y, col = colour, pch = if (s$role == "val") 15 else 19,
                         cex = 0.6)
      }
    }
    if (!is.null(d$best_x) && identical(s$column, d$best$monitor)) {
      y <- s$y[match(d$best_x, s$x)]
      if (!is.na(y)) graphics::points(d$best_x, y, pch = 1, cex = 1.6, lwd = 1.5,
                                      col = fit_mark_col)
    }
  }
}

# The panel's name in its top margin (left), with the schedule of a
# learning-rate panel (right, smaller to fit) or, on the first panel, the
# legend rows.
fit_draw_header <- function(p, rows, keys, lay) {
  pin_w <- graphics::par("pin")[1L]
  graphics::mtext(p$name, side = 3, line = 0.35, adj = 0, cex = 0.9 * lay$cex, font = 2)
  if (length(p$note)) {
    room <- pin_w - graphics::strwidth(p$name, "inches", cex = 0.9, font = 2) -
      graphics::strwidth("mm", "inches", cex = 0.8)
    rel <- min(0.8, 0.8 * room / graphics::strwidth(p$note, "inches", cex = 0.8))
    if (rel >= 0.5) graphics::mtext(p$note, side = 3, line = 0.35, adj = 1, cex = rel * lay$cex)
  }
  for (r in seq_along(rows)) {
    right <- graphics::grconvertX(1, "npc", "inches")
    line <- 0.35 + 1.15 * (r - 1L)
    for (item in rev(rows[[r]])) {
      if (item$kind == "note") {
        graphics::mtext(item$text, side = 3, line = line, adj = 1, cex = item$rel * lay$cex,
                        at = graphics::grconvertX(right, "inches", "user"))
      } else {
        fit_draw_keys(keys, right - item$w, line, item$rel, lay)
      }
      right <- right - item$w - graphics::strwidth("mm", "inches", cex = 0.8)
    }
  }
}

# Legend entries drawn from `left` (inches) on margin line `line` of the top
# margin: a key (line, point) then its label, as fit_keys_width() measures.
fit_draw_keys <- function(keys, left, line, rel, lay) {
  m <- graphics::strwidth("m", "inches", cex = rel)
  base <- graphics::grconvertY(1, "npc", "inches") + line * lay$lh
  mid <- graphics::grconvertY(base + 0.3 * rel * lay$char_h, "inches", "user")
  y <- graphics::grconvertY(base, "inches", "user")
  ux <- function(v) graphics::grconvertX(v, "inches", "user")
  x <- left
  for (k in keys) {
    graphics::segments(ux(x), mid, ux(x + 1.6 * m), mid, col = k$col, lwd = k$lwd,
                       lty = k$lty, xpd = NA)
    if (!is.na(k$pch)) {
      graphics::points(ux(x + 0.8 * m), mid, pch = k$pch, col = k$col, xpd = NA,
                       cex = if (k$pch == 1) 1.1 * rel else 0.6)
    }
    graphics::text(ux(x + 2 * m), y, k$label, adj = c(0, 0), cex = rel, xpd = NA)
    x <- x + 2 * m + graphics::strwidth(k$label, "inches", cex = rel) + 1.2 * m
  }
}

# For plot() of sweeps (sweep.R): the y axis of a log-scale plot drawn with
# yaxt = "n", each tick labelled on its own ("0.1", "500", not "0.1",
# "500.0"); over more than two decades
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
