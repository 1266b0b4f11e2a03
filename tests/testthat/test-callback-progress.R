# The progress line of minimize().

pr_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")]))))
pr_fn <- function(b) mean((mtcars$mpg - pr_x %*% b)^2)
pr_gr <- function(b) -2 * drop(crossprod(pr_x, mtcars$mpg - pr_x %*% b)) / 32
pr_data <- data.frame(y = mtcars$mpg, x = I(pr_x))
pr_bfn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
pr_bgr <- function(b, batch) drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)

test_that("in scripts, progress = TRUE writes lines to stderr, and nothing to stdout", {
  out <- NULL
  err <- capture.output(
    out <- capture.output(fit <- minimize(c(0, 0, 0), pr_fn, pr_gr, steps = 300, progress = TRUE)),
    type = "message")
  expect_length(out, 0L)
  expect_gte(length(err), 1L)
  last <- err[length(err)]
  expect_match(last, "^step 300/300  loss [0-9.e+-]+  lr 0.01  [0-9]+s elapsed, ~0s left$")
  # the loss shown is the mean of the last 50 steps
  shown <- as.numeric(sub(".*  loss ([^ ]+) .*", "\\1", last))
  expect_equal(shown, mean(fit$history$loss[251:300]), tolerance = 1e-4)
  quiet <- minimize(c(0, 0, 0), pr_fn, pr_gr, steps = 300, progress = FALSE)
  expect_identical(quiet$par, fit$par)
  expect_identical(quiet$history, fit$history)
})

test_that("with data and validation the line shows the epoch and the validation loss", {
  err <- capture.output({
    set.seed(1)
    fit <- minimize(c(0, 0, 0), pr_bfn, pr_bgr, data = pr_data[1:24, ],
                    validation_data = pr_data[25:32, ], batch_size = 6, epochs = 5,
                    progress = TRUE)
  }, type = "message")
  last <- err[length(err)]
  expect_match(last, "^epoch 5/5, step 20/20  loss [^ ]+  val_loss [^ ]+  lr ")
  val <- as.numeric(sub(".*  val_loss ([^ ]+) .*", "\\1", last))
  expect_equal(val, fit$history$val_loss[20], tolerance = 1e-4)
})

test_that("the line shows the last epoch's metrics, training and validation", {
  err <- capture.output({
    set.seed(1)
    fit <- minimize(c(0, 0, 0), pr_bfn, pr_bgr, data = pr_data[1:24, ],
                    validation_data = pr_data[25:32, ], batch_size = 6, epochs = 3,
                    metrics = list(mae = function(b, rows) mean(abs(rows[[1]] - rows$x %*% b))),
                    progress = TRUE)
  }, type = "message")
  last <- err[length(err)]
  expect_match(last, "  loss [^ ]+  mae [^ ]+  val_loss [^ ]+  val_mae [^ ]+  lr ")
  mae <- as.numeric(sub(".*  val_mae ([^ ]+) .*", "\\1", last))
  expect_equal(mae, fit$history$val_mae[12], tolerance = 1e-4)
})

test_that("a long run writes a line when an epoch has begun, at most one a second", {
  slow_gr <- function(b, batch) {
    Sys.sleep(0.03)
    pr_bgr(b, batch)
  }
  err <- capture.output({
    set.seed(2)
    fit <- minimize(c(0, 0, 0), pr_bfn, slow_gr, data = pr_data, batch_size = 8, epochs = 12,
                    progress = TRUE)
  }, type = "message")
  # 48 steps of at least 30 ms: about 1.5 s, so at least one line before the last
  expect_gte(length(err), 2L)
  expect_lte(length(err), 6L)
  expect_true(all(grepl("^epoch [0-9]+/12, step [0-9]+/48  loss ", err)))
})

test_that("progress = FALSE prints nothing at all", {
  expect_silent(minimize(c(0, 0, 0), pr_fn, pr_gr, steps = 50, progress = FALSE))
  expect_error(minimize(c(0, 0, 0), pr_fn, pr_gr, progress = NA), "progress",
               class = "rmsprop_error_argument")
})

test_that("interactively the line is redrawn in place, and the clock is read less and less", {
  p <- rmsprop:::fit_progress_new(max_steps = 1000, epochs = 1000, has_data = FALSE,
                                  interactive = TRUE)
  out <- capture.output({
    every <- 1L
    for (i in 1:20) every <- rmsprop:::fit_progress_tick(p, i, i, c(2, 4), NA_real_, 0.01)
    rmsprop:::fit_progress_done(p, 20L, 20L, c(2, 4), NA_real_, 0.01)
  })
  # ticks that come quickly double the countdown
  expect_gte(every, 2L^10)
  text <- paste(out, collapse = "\n")
  expect_match(text, "\rstep 20/1000  loss 3  lr 0.01  0s elapsed")
  expect_identical(rmsprop:::fit_format_seconds(75), "1m15s")
  expect_identical(rmsprop:::fit_format_seconds(7300), "2h01m")
  expect_identical(rmsprop:::fit_format_seconds(NA), "?")
})
