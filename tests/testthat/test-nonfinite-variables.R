# Issue 13, item 5: a variable holding NA, NaN or Inf is refused like a
# non-finite gradient: a classed error naming the variable and the position,
# nothing changed, on the value and in-place paths and in
# finalize_variable_values(). (It would poison the moving averages for good.)

snapshot <- function(opt) list(opt$variables, opt$iterations, opt$last_learning_rate)

test_that("non-finite variables are refused on every path, nothing changed", {
  for (bad in list(NA_real_, NaN, Inf, -Inf)) {
    opt <- optimizer_rmsprop(learning_rate = 0.1, use_ema = TRUE, momentum = 0.5)
    v <- list(w = c(1, 2, 3), b = 4)
    v <- opt$step(list(w = c(1, 1, 1), b = 1), v)
    before <- snapshot(opt)
    bad_v <- v
    bad_v$w[2] <- bad
    copy <- bad_v
    err <- expect_error(opt$step(list(w = c(1, 1, 1), b = 1), bad_v), class = "rmsprop_error_variable")
    expect_match(conditionMessage(err), "variable \"w\" is not finite (NA, NaN or Inf) at position 2",
                 fixed = TRUE)
    expect_identical(err$path, "w")
    expect_identical(err$position, 2)
    expect_error(opt$step_in_place(list(w = c(1, 1, 1), b = 1), bad_v),
                 class = "rmsprop_error_variable")
    expect_error(opt$apply_gradients(list(w = list(c(1, 1, 1), bad_v$w), b = list(1, 4))),
                 class = "rmsprop_error_variable")
    expect_error(opt$finalize_variable_values(bad_v), class = "rmsprop_error_variable")
    # Also when the variable's gradient is NULL (its moving average still moves).
    expect_error(suppressWarnings(opt$step(list(w = NULL, b = 1), bad_v)),
                 class = "rmsprop_error_variable")
    expect_identical(snapshot(opt), before)
    expect_identical(bad_v, copy)
    # The moving average is intact: the next good step continues normally.
    expect_true(all(is.finite(unlist(opt$step(list(w = c(1, 1, 1), b = 1), v)))))
    expect_true(all(is.finite(unlist(opt$variables))))
  }
})

test_that("integer NA and non-finite variables on the first step are refused too", {
  opt <- optimizer_rmsprop()
  expect_error(opt$step(c(1, 1), c(NA_integer_, 2L)), class = "rmsprop_error_variable")
  expect_identical(opt$iterations, 0)
  expect_null(private_of(opt)$skeleton)
  err <- expect_error(opt$step(list(a = 1, b = c(1, 1)), list(a = 1, b = c(2, NaN))),
                      class = "rmsprop_error_variable")
  expect_match(conditionMessage(err), "variable \"b\" is not finite (NA, NaN or Inf) at position 2",
               fixed = TRUE)
})

test_that("the loss-scale wrapper skips non-finite gradients but refuses non-finite variables", {
  ls <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.1), initial_scale = 8)
  w <- ls$step(c(8, 8), c(1, 2))
  expect_identical(ls$step(c(Inf, 8), w), w)   # skipped, scale halved
  expect_identical(ls$loss_scale_factor, 4)
  expect_error(ls$step(c(4, 4), c(NaN, 2)), class = "rmsprop_error_variable")
  expect_identical(ls$loss_scale_factor, 4)
  expect_identical(ls$iterations, 1)
})

test_that("the check finds the first bad value in long variables, across threads", {
  n <- 300000
  v <- seq(-1, 1, length.out = n)
  opt <- optimizer_rmsprop()
  v <- opt$step(rep(1, n), v)
  for (pos in c(1, 65536, 65537, 200001, n)) {
    bad <- v
    bad[pos] <- NaN
    bad[min(n, pos + 5)] <- Inf
    g <- rep(1, n)
    err <- expect_error(opt$step(g, bad), class = "rmsprop_error_variable")
    expect_identical(err$position, pos)
    # A gradient's bad value earlier than the variable's is reported first.
    if (pos > 1) {
      g[pos - 1] <- NA
      err <- expect_error(opt$step(g, bad), class = "rmsprop_error_gradient")
      expect_identical(err$position, pos - 1)
    }
  }
  expect_identical(opt$iterations, 1)
})
