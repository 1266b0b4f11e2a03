# print/format/summary/plot of "rmsprop_fit" results and plot() of sweeps:
# summaries of histories whose numbers are known (exact text), the epoch
# means of mini-batch histories, the validation loss, the learning rate in
# step order, and plots of every kind of fit that run and restore par().
# Uses exported functions plus rmsprop::: internals where named.

internal <- function(name) utils::getFromNamespace(name, "rmsprop")

fm_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")]))))
fm_y <- mtcars$mpg
fm_loss <- function(b) mean((fm_y - fm_x %*% b)^2)
fm_grad <- function(b) -2 * drop(crossprod(fm_x, fm_y - fm_x %*% b)) / nrow(fm_x)
fm_data <- data.frame(y = fm_y, x = I(fm_x))
fm_batch_loss <- function(b, d) mean((d$y - d$x %*% b)^2)

# A fit with a history we choose: 3 epochs of 4 steps. Epoch means of the
# loss are 5, 4 and 5 (the second epoch ends on a spike, 10, that a per-step
# minimum would hide); the validation loss is measured at each epoch's end.
known_fit <- function(history = NULL, optimizer = NULL) {
  if (is.null(history)) {
    history <- data.frame(step = 1:12, epoch = rep(1:3, each = 4L),
                          loss = c(8, 6, 4, 2, 3, 1, 2, 10, 4, 5, 6, 5),
                          learning_rate = 0.05 * 0.5^((0:11) / 4),
                          grad_norm = seq(12, 1))
  }
  if (is.null(optimizer)) {
    optimizer <- optimizer_rmsprop(learning_rate_schedule_exponential_decay(0.05, 4, 0.5))
  }
  structure(list(
    par = c(a = 1, b = 2), value = 0.5, counts = c(`function` = 13, gradient = 12),
    convergence = 1L, message = "epoch limit reached (3 epochs, 12 steps)",
    history = history, optimizer = optimizer, steps = nrow(history),
    epochs = if ("epoch" %in% names(history)) max(history$epoch) else nrow(history),
    elapsed = 0.25
  ), class = "rmsprop_fit")
}

with_val <- function(fit, val = c(4.5, 3.5, 3.75)) {
  h <- fit$history
  h$val_loss <- NA_real_
  h$val_loss[cumsum(rle(h$epoch)$lengths)] <- val
  fit$history <- h
  fit
}

summary_lines <- function(fit) {
  old <- options(width = 80L)
  on.exit(options(old))
  format(summary(fit))
}

test_that("summary of mini-batches gives epoch means, the validation loss and the rate in step order", {
  fit <- with_val(known_fit())
  s <- summary(fit)
  expect_identical(s$loss_per, "epoch")
  expect_identical(s$loss, c(first = 5, last = 5, best = 4, best_at = 2))
  expect_identical(s$val_loss, c(first = 4.5, last = 3.75, best = 3.5, best_at = 2))
  expect_equal(s$learning_rate, c(first = 0.05, last = 0.05 * 0.5^2.75, min = 0.05 * 0.5^2.75,
                                  max = 0.05))
  expect_identical(summary_lines(fit), c(
    "minimize(): 12 steps, 3 epochs in 0.25 s; convergence 1 (limit reached)",
    "  epoch limit reached (3 epochs, 12 steps)",
    "optimizer:",
    "  learning_rate = exponential_decay(0.05, decay_steps = 4, decay_rate = 0.5),",
    "  rho = 0.9, momentum = 0, epsilon = 1e-07, centered = FALSE, use_ema = FALSE",
    "final value: 0.5",
    "loss (epoch means): first 5, last 5, best 4 (epoch 2)",
    "validation loss: first 4.5, last 3.75, best 3.5 (epoch 2)",
    "learning rate: 0.05 -> 0.00743",
    "last gradient norm: 1",
    "counts: function 13, gradient 12",
    "returned: from the end of the last epoch (3), after step 12",
    "parameters:",
    "  estimate",
    "a        1",
    "b        2"
  ))
  expect_identical(capture.output(print(s)), summary_lines(fit))
  # without a validation column there is no validation line
  expect_null(summary(known_fit())$val_loss)
  expect_false(any(grepl("validation", format(summary(known_fit())))))
  # print(fit) names the first epoch mean, not the loss of one batch
  expect_identical(format(fit)[3], "  value:   0.5 (first epoch mean loss 5)")
})

test_that("summary of full-batch runs gives the loss per step", {
  h <- data.frame(step = 1:5, loss = c(4, 2, 3, 1.5, 1.75), learning_rate = 0.1,
                  grad_norm = c(5, 4, 3, 2, 1))
  fit <- known_fit(h, optimizer_rmsprop(learning_rate = 0.1))
  s <- summary(fit)
  expect_identical(s$loss_per, "step")
  expect_identical(s$loss, c(first = 4, last = 1.75, best = 1.5, best_at = 4))
  lines <- summary_lines(fit)
  expect_identical(lines[1], "minimize(): 5 steps in 0.25 s; convergence 1 (limit reached)")
  expect_true("loss: first 4, last 1.75, best 1.5 (step 4)" %in% lines)
  expect_true("learning rate: 0.1 (constant)" %in% lines)
  expect_true("  learning_rate = 0.1, rho = 0.9, momentum = 0, epsilon = 1e-07," %in% lines)
  expect_identical(format(fit)[3], "  value:   0.5 (first loss 4)")

  # data without batch_size: every epoch is one step, so the losses are per step
  h$epoch <- 1:5
  s <- summary(known_fit(h))
  expect_identical(s$loss_per, "step")
  expect_identical(s$loss, c(first = 4, last = 1.75, best = 1.5, best_at = 4))

  # a validation loss on some steps only
  h$val_loss <- c(NA, 2.5, NA, NA, 2.25)
  expect_true("validation loss: first 2.5, last 2.25, best 2.25 (step 5)" %in%
                summary_lines(known_fit(h)))
})

test_that("the learning rate is given first to last, with its range when it leaves them", {
  h <- data.frame(step = 1:5, loss = 5:1, learning_rate = c(0, 0.05, 0.1, 0.05, 0.02),
                  grad_norm = 1)
  expect_true("learning rate: 0 -> 0.02 (between 0 and 0.1)" %in% summary_lines(known_fit(h)))
  # rising (a warmup), in step order
  h$learning_rate <- c(0.001, 0.002, 0.003, 0.004, 0.005)
  expect_true("learning rate: 0.001 -> 0.005" %in% summary_lines(known_fit(h)))
  # two rates that only differ in the 4th digit are told apart
  h$learning_rate <- c(0.05, 0.05, 0.05, 0.05, 0.04999)
  expect_true("learning rate: 0.05 -> 0.04999" %in% summary_lines(known_fit(h)))
  # unknown rates: no line
  h$learning_rate <- NA_real_
  expect_false(any(grepl("learning rate", summary_lines(known_fit(h)))))
  expect_null(summary(known_fit(h))$learning_rate)
})

test_that("epoch means are plain means, weighted by a batch_size column when there is one", {
  epoch_table <- internal("fit_epoch_table")
  fit <- with_val(known_fit())
  e <- epoch_table(fit$history)
  expect_identical(e$epoch, 1:3)
  expect_identical(e$first_step, c(1L, 5L, 9L))
  expect_identical(e$last_step, c(4L, 8L, 12L))
  expect_identical(e$steps, c(4L, 4L, 4L))
  expect_identical(e$loss, c(5, 4, 5))
  expect_identical(e$val_loss, c(4.5, 3.5, 3.75))
  h <- fit$history
  h$batch_size <- rep(c(10, 10, 10, 2), 3)
  e <- epoch_table(h)
  expect_equal(e$loss, c((8 + 6 + 4) * 10 + 2 * 2, (3 + 1 + 2) * 10 + 10 * 2,
                         (4 + 5 + 6) * 10 + 5 * 2) / 32)
  expect_null(epoch_table(data.frame(step = 1:3, loss = 1:3)))
})

test_that("summary of a real mini-batch run agrees with its history", {
  set.seed(3)
  fit <- minimize(c(0, 0, 0), fm_batch_loss, data = fm_data, batch_size = 10, epochs = 4,
                  optimizer = optimizer_rmsprop(learning_rate = 0.3))
  h <- fit$history
  means <- vapply(split(h$loss, h$epoch), mean, numeric(1))
  s <- summary(fit)
  expect_identical(s$loss_per, "epoch")
  expect_equal(s$loss, c(first = means[[1]], last = means[[4]], best = min(means),
                         best_at = unname(which.min(means))))
  expect_output(print(s), "learning rate: 0.3 (constant)", fixed = TRUE)
})

# every graphics parameter a plot may leave changed: the coordinates of the
# last plot drawn (and, in a grid of panels, which panel is next)
plot_pars <- function(in_grid = FALSE) {
  p <- graphics::par(no.readonly = TRUE)
  p[setdiff(names(p), c("usr", "xaxp", "yaxp", "xlog", "ylog", if (in_grid) c("fig", "mfg")))]
}

test_that("plot() runs on every kind of fit and restores par()", {
  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  set.seed(1)
  batched <- minimize(c(0, 0, 0), fm_batch_loss, data = fm_data, batch_size = 10, epochs = 3)
  batched_val <- batched
  batched_val$history$val_loss <- NA_real_
  ends <- cumsum(rle(batched$history$epoch)$lengths)
  batched_val$history$val_loss[ends] <- batched$history$loss[ends] + 1
  full_val <- known_fit(data.frame(step = 1:5, loss = 5:1, learning_rate = 0.1,
                                   grad_norm = 1, val_loss = c(NA, 4, NA, NA, 1.5)))
  no_rate <- known_fit()
  no_rate$history$learning_rate <- NA_real_
  one_epoch_per_step <- minimize(c(0, 0, 0), fm_batch_loss, data = fm_data, epochs = 5)
  fits <- list(
    constant = minimize(c(0, 0, 0), fm_loss, fm_grad, steps = 20),
    schedule = minimize(c(0, 0, 0), fm_loss, fm_grad, steps = 20, optimizer = optimizer_rmsprop(
      learning_rate_schedule_cosine_decay(0.1, decay_steps = 10))),
    user_function = minimize(c(0, 0, 0), fm_loss, fm_grad, steps = 5,
                             optimizer = optimizer_rmsprop(function() 0.01)),
    loss_scale = minimize(c(0, 0, 0), fm_loss, fm_grad, steps = 5,
                          optimizer = optimizer_loss_scale(optimizer_rmsprop(0.1))),
    batched = batched, batched_val = batched_val, known = with_val(known_fit()),
    full_val = full_val, no_rate = no_rate, one_epoch_per_step = one_epoch_per_step,
    one_step = minimize(1, function(p) p^2, function(p) 2 * p, steps = 1),
    negative = minimize(1, function(p) p^2 - 5, function(p) 2 * p, steps = 5)
  )
  graphics::plot.new()
  for (grid in list(c(1L, 1L), c(2L, 2L))) {
    graphics::par(mfrow = grid, mar = c(5.1, 4.1, 4.1, 2.1))
    in_grid <- grid[1] > 1L
    before <- plot_pars(in_grid)
    for (name in names(fits)) {
      res <- withVisible(plot(fits[[name]]))
      expect_false(res$visible, label = name)
      expect_identical(res$value, fits[[name]], label = name)
      expect_identical(plot_pars(in_grid), before, label = name)
    }
    # graphical arguments reach the loss panel; log_loss = FALSE
    expect_silent(plot(fits$batched_val, log_loss = FALSE, main = "Mini-batches",
                       ylim = c(0, 1000), col = "black", val_col = "red", lwd = 2))
    expect_identical(plot_pars(in_grid), before)
  }
  empty <- known_fit(data.frame(step = integer(), loss = numeric(),
                                learning_rate = numeric(), grad_norm = numeric()))
  expect_error(plot(empty), class = "rmsprop_error_argument")
})

test_that("the optimizer line names schedules by their arguments", {
  s <- summary(known_fit())
  expect_match(s$optimizer, "learning_rate = exponential_decay(0.05, decay_steps = 4, decay_rate = 0.5)",
               fixed = TRUE)
  fit <- known_fit(optimizer = optimizer_loss_scale(optimizer_rmsprop(0.1), initial_scale = 8))
  expect_match(summary(fit)$optimizer,
               "^dynamic loss scale from 8, learning_rate = 0.1, rho = 0.9")
  fit <- known_fit(optimizer = optimizer_rmsprop(function() 0.01))
  expect_match(summary(fit)$optimizer, "^learning_rate = a function, rho")
})

test_that("sweep labels show schedules by their arguments; plot() keeps the legend off the curves", {
  fn <- function(p) sum((p - c(1, -2))^2)
  gr <- function(p) 2 * (p - c(1, -2))
  grid <- data.frame(momentum = c(0, 0.9, 0), centered = c(FALSE, FALSE, FALSE))
  grid$learning_rate <- list(0.01, 0.01, learning_rate_schedule_cosine_decay(0.1, decay_steps = 500))
  sw <- sweep_optimizers(grid, c(0, 0), fn, gr, steps = 5)
  final <- attr(sw, "final")
  expect_identical(final$learning_rate_config,
                   c("0.01", "0.01", "cosine_decay(0.1, decay_steps = 500)"))
  expect_identical(attr(sw, "labels")[3],
                   "momentum = 0, centered = FALSE, learning_rate = cosine_decay(0.1, decay_steps = 500)")
  expect_output(print(sw), "cosine_decay(0.1, decay_steps = 500)", fixed = TRUE)
  # the legend names what differs; what all share goes under the title
  legend_labels <- internal("sweep_legend_labels")
  labels <- legend_labels(sw, 1:3)
  expect_identical(as.vector(labels), c(
    "momentum = 0, learning_rate = 0.01", "momentum = 0.9, learning_rate = 0.01",
    "momentum = 0, learning_rate = cosine_decay(0.1, decay_steps = 500)"))
  expect_identical(attr(labels, "shared"), "centered = FALSE")
  # NA in the grid is "default"
  sw2 <- sweep_optimizers(data.frame(learning_rate = 0.1, rho = c(NA, 0.5)), 1,
                          function(p) (p - 3)^2, function(p) 2 * (p - 3), steps = 3)
  labels <- legend_labels(sw2, 1:2)
  expect_identical(as.vector(labels), c("rho = default", "rho = 0.5"))
  expect_identical(attr(labels, "shared"), "learning_rate = 0.1")

  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  graphics::plot.new()
  before <- plot_pars()
  set.seed(2)
  swb <- sweep_optimizers(data.frame(learning_rate = c(0.1, 0.3)), c(0, 0, 0), fm_batch_loss,
                          data = fm_data, batch_size = 10, epochs = 3)
  swv <- swb
  swv$val_loss <- ifelse(swv$step %% 4 == 0, swv$loss + 1, NA)
  for (x in list(sw, sw2, swb, swv)) {
    expect_invisible(plot(x))
    expect_identical(plot_pars(), before)
  }
  expect_silent(plot(sw, legend = FALSE, log_loss = FALSE, main = "no legend"))
  expect_identical(plot_pars(), before)
})

test_that("sweep legends of many configurations fit small figures", {
  fn <- function(p) sum((p - c(1, -2))^2)
  gr <- function(p) 2 * (p - c(1, -2))
  grid <- data.frame(learning_rate = rep(c(0.01, 0.02, 0.05, 0.1, 0.2), 4),
                     rho = rep(c(0.5, 0.8, 0.9, 0.99), each = 5))
  sw <- sweep_optimizers(grid, c(0, 0), fn, gr, steps = 5)
  layout_of <- internal("sweep_legend_layout")
  labels <- paste0(1:20, ": ", internal("sweep_legend_labels")(sw, 1:20))
  for (size in list(c(7, 5), c(4, 3.5), c(12, 9))) {
    grDevices::pdf(NULL, width = size[1], height = size[2])
    lay <- layout_of(labels, FALSE, top = 2.4)
    # the margins (with the legend) leave a third of the figure to the curves
    expect_lte((lay$lines + 3.4 + 2.4) * graphics::par("csi"), 2 / 3 * size[2])
    expect_gte(lay$cex, 0.5)
    before <- plot_pars()
    expect_invisible(plot(sw))
    expect_identical(plot_pars(), before)
    grDevices::dev.off()
  }
  grDevices::pdf(NULL, width = 12, height = 9)
  expect_gte(layout_of(labels, FALSE, top = 2.4)$ncol, 2L)
  grDevices::dev.off()
})

test_that("summary() shows at most max_par parameter rows and says how many more", {
  # a vector of 259 numbers: the first 20, then how many more
  fit <- known_fit()
  fit$par <- seq(0.5, by = 0.5, length.out = 259)
  lines <- summary_lines(fit)
  at <- match("parameters: 259 numbers", lines)
  expect_false(is.na(at))
  expect_identical(lines[at + 1L], "        estimate")
  expect_identical(lines[at + 2L], "par[1]       0.5")
  expect_identical(lines[at + 21L], "par[20]     10.0")
  expect_identical(lines[at + 22L], paste(
    "... and 239 more (all in `fit$par`; print(summary(fit), max_par = Inf) shows them)"))
  expect_length(lines, at + 22L)
  # max_par = Inf shows every number
  all <- format(summary(fit), max_par = Inf)
  expect_identical(sum(grepl("^par\\[[0-9]+\\]", all)), 259L)
  expect_identical(capture.output(print(summary(fit), max_par = 5))[at + 7L],
                   paste("... and 254 more (all in `fit$par`;",
                         "print(summary(fit), max_par = Inf) shows them)"))

  # a network (a list of matrices): one row per variable, its size, range and mean
  set.seed(4)
  net <- list(layer1 = list(w = matrix(rnorm(40), 4, 10), b = rnorm(10)),
              layer2 = list(w = matrix(rnorm(200), 10, 20), b = rnorm(20)))  # 270 numbers
  fit$par <- net
  s <- summary(fit)
  expect_identical(rownames(s$variables), c("layer1/w", "layer1/b", "layer2/w", "layer2/b"))
  expect_identical(s$variables$size, c("4 x 10", "10", "10 x 20", "20"))
  leaves <- list(net$layer1$w, net$layer1$b, net$layer2$w, net$layer2$b)
  expect_identical(s$variables$min, vapply(leaves, min, 1))
  expect_identical(s$variables$max, vapply(leaves, max, 1))
  expect_equal(s$variables$mean, vapply(leaves, mean, 1))
  lines <- summary_lines(fit)
  at <- match("parameters: 270 numbers in 4 variables", lines)
  expect_false(is.na(at))
  expect_length(lines, at + 5L)   # the header and 4 rows
  expect_match(lines[at + 1L], "^ +size +min +mean +max$")
  expect_match(lines[at + 2L], "^layer1/w +4 x 10 ")

  # more variables than rows: the first max_par, then how many more
  fit$par <- stats::setNames(lapply(1:25, function(i) rep(i, 3)), paste0("v", 1:25))
  lines <- summary_lines(fit)
  at <- match("parameters: 75 numbers in 25 variables", lines)
  expect_identical(lines[length(lines)], "... and 5 more variables (15 numbers)")
  expect_identical(length(lines) - at, 22L)
  expect_match(lines[at + 21L], "^v20 +3 +20 +20 +20$")
  # up to max_par numbers: every number, as before
  fit$par <- c(a = 1, b = 2)
  expect_identical(tail(summary_lines(fit), 3), c("  estimate", "a        1", "b        2"))
})

test_that("y axis ticks leave their labels apart at every panel height", {
  ticks <- internal("fit_y_ticks")
  char_h <- 0.2
  for (height in c(0.3, 0.6, 1, 2, 4)) {
    for (case in list(list(usr = c(0.0011, 0.0104), log = FALSE),
                      list(usr = c(-0.5, 19.6), log = FALSE),
                      list(usr = log10(c(0.0008, 1.2)), log = TRUE),
                      list(usr = log10(c(2.3, 600)), log = TRUE),
                      list(usr = log10(c(0.055, 0.09)), log = TRUE))) {
      t <- ticks(case$usr, case$log, height, char_h)
      pos <- (if (case$log) log10(t$at) else t$at) / diff(case$usr) * height
      label <- sprintf("height %g, %s", height, paste(case$usr, collapse = " "))
      expect_gte(length(t$at), 1L)
      if (length(t$at) > 1L) expect_gte(min(diff(pos)), 1.5 * char_h - 1e-12, label = label)
      # inside the axis, and labelled one by one ("0.01", not "0.010")
      range_at <- if (case$log) log10(t$at) else t$at
      expect_true(all(range_at >= case$usr[1] - 1e-9 & range_at <= case$usr[2] + 1e-9))
      expect_identical(t$labels, vapply(t$at, format, "", digits = 6))
      # a taller panel has room for two labels at least
      if (height >= 1) expect_gte(length(t$at), 2L, label = label)
    }
  }
  expect_identical(ticks(c(0.0011, 0.0104), FALSE, 2, 0.2)$labels, c("0.002", "0.004",
                                                                     "0.006", "0.008", "0.01"))
  expect_identical(ticks(log10(c(0.0008, 1.2)), TRUE, 2, 0.2)$labels,
                   c("0.001", "0.01", "0.1", "1"))
})

test_that("the plot's margins hold the widest y label and the legend rows the panel's width", {
  layout_of <- internal("fit_plot_layout")
  data_of <- internal("fit_plot_data")
  keys_of <- internal("fit_plot_keys")
  fit <- with_val(known_fit())   # a schedule: a second panel for the learning rate
  fit$best_epoch <- 2L
  for (size in list(c(7, 5), c(5, 3.75), c(4, 7), c(10, 8))) {
    grDevices::pdf(NULL, width = size[1], height = size[2])
    d <- data_of(fit, NULL, TRUE, list())
    keys <- keys_of(d, "blue", 1.5, "red")
    lay <- layout_of(d, keys, NULL)
    lh <- graphics::par("csi")
    # the layout fills the device; every plot region has some height
    expect_equal(sum(lay$heights), size[2])
    expect_true(all(lay$plot_h > 0.4))
    # the left margin holds the widest label of any panel (at the heights drawn)
    widest <- max(unlist(lapply(seq_along(d$panels), function(i) {
      p <- d$panels[[i]]
      t <- internal("fit_y_ticks")(internal("fit_axis_range")(p$ylim, p$log), p$log,
                                   lay$plot_h[i], lay$char_h)
      graphics::strwidth(t$labels, "inches")
    })))
    expect_gte(lay$left * lh, widest + 0.55 * lh)
    # every row above the first panel fits the panel's width
    panel_w <- size[1] - (lay$left + 1) * lh
    width_in <- function(s, rel) graphics::strwidth(s, "inches", cex = rel)
    for (r in seq_along(lay$top_rows)) {
      items <- lay$top_rows[[r]]
      used <- sum(vapply(items, `[[`, 1, "w")) +
        if (r == 1L) width_in(d$panels[[1]]$name, 0.9) else 0
      expect_lte(used, panel_w + 1e-9)
    }
    # the top margin has a line for each row
    expect_equal(lay$top[1], 1.4 + 1.15 * (length(lay$top_rows) - 1))
    before <- graphics::par(no.readonly = TRUE)
    expect_invisible(plot(fit))
    grDevices::dev.off()
  }
  # the legend names the restored epoch
  expect_identical(vapply(keys, `[[`, "", "label")[4], "best, restored (epoch 2)")
})
