# Metrics in the history of a fit: a column `<name>` and its twin
# `val_<name>`, per epoch (on the last step row of each epoch, NA on the
# others, like val_loss). print() shows the last epoch's, summary() the course
# of each (the best of "acc" names is the largest), plot() a panel per metric.
# minimize() does not record metrics yet: the columns (and the `metrics` and
# `best` fields) are added by hand to a fit with a known history, and to a
# real one, as the newer driver will write them.

internal <- function(name) utils::getFromNamespace(name, "rmsprop")

# 3 epochs of 4 steps; epoch means of the loss 5, 4, 5; validation loss and
# the metrics at each epoch's end.
metric_fit <- function() {
  h <- data.frame(step = 1:12, epoch = rep(1:3, each = 4L),
                  loss = c(8, 6, 4, 2, 3, 1, 2, 10, 4, 5, 6, 5),
                  learning_rate = 0.05, grad_norm = seq(12, 1))
  ends <- c(4L, 8L, 12L)
  put <- function(v) {
    out <- rep(NA_real_, 12L)
    out[ends] <- v
    out
  }
  h$val_loss <- put(c(4.5, 3.5, 3.75))
  h$mae <- put(c(2, 1.5, 1.25))
  h$val_mae <- put(c(2.5, 1.75, 2))
  h$accuracy <- put(c(0.5, 0.75, 0.625))
  h$val_accuracy <- put(c(0.25, 0.5, 0.375))
  structure(list(
    par = c(a = 1, b = 2), value = 0.5, counts = c(`function` = 13, gradient = 12),
    convergence = 1L, message = "epoch limit reached (3 epochs, 12 steps)",
    history = h, optimizer = optimizer_rmsprop(0.05), steps = 12L, epochs = 3L,
    elapsed = 0.25, resumed_from = NA_integer_, best_epoch = NA_integer_,
    metrics = c("mae", "accuracy")
  ), class = "rmsprop_fit")
}

test_that("metric columns are found generically, val_ twins paired, declared ones first", {
  names_of <- internal("fit_metric_names")
  h <- metric_fit()$history
  expect_identical(names_of(h, c("mae", "accuracy")), c("mae", "accuracy"))
  expect_identical(names_of(h, c("accuracy", "mae")), c("accuracy", "mae"))
  expect_identical(names_of(h), c("mae", "accuracy"))
  # a validation-only column names its metric; non-numeric columns are not metrics
  h$val_auc <- NA_real_
  h$note <- "x"
  expect_identical(names_of(h, "mae"), c("mae", "accuracy", "auc"))
  expect_identical(names_of(data.frame(step = 1, loss = 1, learning_rate = 1,
                                       grad_norm = 1, batch_size = 3)), character())
  # per epoch: the last value of each column in each epoch
  e <- internal("fit_epoch_table")(metric_fit()$history)
  expect_identical(e$mae, c(2, 1.5, 1.25))
  expect_identical(e$val_accuracy, c(0.25, 0.5, 0.375))
  expect_identical(e$loss, c(5, 4, 5))
})

test_that("print() shows the last epoch's losses and metrics, summary() their course", {
  fit <- metric_fit()
  old <- options(width = 100L)
  on.exit(options(old), add = TRUE)
  lines <- format(fit)
  expect_identical(lines[4], paste0("  epoch 3: loss 5, val_loss 3.75, mae 1.25, val_mae 2, ",
                                    "accuracy 0.625, val_accuracy 0.375"))
  expect_identical(lines[5], "  best:    val_loss 3.5 at epoch 2")
  expect_identical(lines[7], "           from the end of the last epoch (3), after step 12")
  # narrow consoles: the entries wrap under the first
  options(width = 50L)
  expect_identical(format(fit)[4:6], c("  epoch 3: loss 5, val_loss 3.75, mae 1.25,",
                                       "           val_mae 2, accuracy 0.625,",
                                       "           val_accuracy 0.375"))
  options(old)

  s <- summary(fit)
  expect_identical(names(s$metrics), c("mae", "val_mae", "accuracy", "val_accuracy"))
  expect_identical(s$metrics$mae, c(first = 2, last = 1.25, best = 1.25, best_at = 3))
  expect_identical(s$metrics$val_mae, c(first = 2.5, last = 2, best = 1.75, best_at = 2))
  # "acc" names are maximised (keras3's mode = "auto")
  expect_identical(s$metrics$accuracy, c(first = 0.5, last = 0.625, best = 0.75, best_at = 2))
  text <- format(s)
  expect_true("mae: first 2, last 1.25, best 1.25 (epoch 3)" %in% text)
  expect_true("val_accuracy: first 0.25, last 0.375, best 0.5 (epoch 2)" %in% text)

  # early stopping that monitored a metric in "min" mode decides its best
  fit$best <- list(monitor = "val_accuracy", mode = "min", epoch = 1L, value = 0.25)
  expect_identical(summary(fit)$metrics$val_accuracy[["best_at"]], 1)
  options(width = 100L)
  expect_identical(format(fit)[5], "  best:    val_accuracy 0.25 at epoch 1 (early stopping)")
})

test_that("plot() draws a panel per metric and marks the best epoch", {
  fit <- metric_fit()
  data_of <- internal("fit_plot_data")
  d <- data_of(fit, NULL, TRUE, list())
  expect_identical(vapply(d$panels, `[[`, "", "name"),
                   c("loss (log scale)", "mae", "accuracy"))
  acc <- d$panels[[3]]
  expect_identical(lapply(acc$series, `[[`, "column"), list("accuracy", "val_accuracy"))
  expect_identical(acc$series[[2]]$x, 1:3)
  expect_identical(acc$series[[2]]$y, c(0.25, 0.5, 0.375))
  # batch i of n in epoch e at e - 1/2 + (i - 1/2) / n: centred on e
  expect_equal(d$step_x, rep(1:3, each = 4) - 0.5 + rep((1:4 - 0.5) / 4, 3))
  expect_identical(d$best_x, 2L)
  expect_identical(d$xlab, "epoch (4 steps each)")
  expect_identical(vapply(data_of(fit, "accuracy", TRUE, list())$panels, `[[`, "", "name"),
                   c("loss (log scale)", "accuracy"))
  expect_length(data_of(fit, character(), TRUE, list())$panels, 1L)
  # a metric column without values has no panel
  empty <- fit
  empty$history$accuracy <- NA_real_
  empty$history$val_accuracy <- NA_real_
  expect_identical(vapply(data_of(empty, NULL, TRUE, list())$panels, `[[`, "", "name"),
                   c("loss (log scale)", "mae"))
  keys <- internal("fit_plot_keys")(d, "blue", 1, "red")
  expect_identical(vapply(keys, `[[`, "", "label"),
                   c("per batch", "training", "validation", "best val_loss (epoch 2)"))

  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  graphics::plot.new()
  before <- graphics::par(no.readonly = TRUE)
  for (m in list(NULL, "mae", character())) {
    res <- withVisible(plot(fit, metrics = m))
    expect_false(res$visible)
    expect_identical(res$value, fit)
  }
  after <- graphics::par(no.readonly = TRUE)
  keep <- setdiff(names(before), c("usr", "xaxp", "yaxp", "xlog", "ylog"))
  expect_identical(after[keep], before[keep])
  expect_error(plot(fit, metrics = "auc"), class = "rmsprop_error_argument")
  expect_error(plot(fit, metrics = 1), class = "rmsprop_error_argument")
})
