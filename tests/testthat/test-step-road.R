# Issue 13, item 2: one road per step. R resolves the learning rate of the
# call once, one .Call does the step, and the step reports the rate it used
# (`$last_learning_rate`), so nothing needs to evaluate the rate again.

counting_rate <- function() {
  calls <- 0
  f <- function() {
    calls <<- calls + 1
    0.1 / calls
  }
  list(f = f, calls = function() calls)
}

test_that("a learning-rate function is called exactly once per call, on every road", {
  roads <- list(
    step = function(opt, g, v) opt$step(g, v),
    apply = function(opt, g, v) opt$apply(g, v),
    step_in_place = function(opt, g, v) opt$step_in_place(g, v + 0),
    apply_gradients = function(opt, g, v) opt$apply_gradients(list(list(g, v)))[[1L]]
  )
  for (road in names(roads)) {
    lr <- counting_rate()
    opt <- optimizer_rmsprop(learning_rate = lr$f)
    v <- c(1, 2, 3)
    for (i in 1:5) v <- roads[[road]](opt, c(0.5, -1, 2), v)
    expect_identical(lr$calls(), 5, label = road)
    expect_identical(opt$last_learning_rate, 0.1 / 5, label = road)
  }
  # Also with NULL gradients (the warning comes first, then the same step)
  # and through the loss-scale wrapper.
  lr <- counting_rate()
  opt <- optimizer_rmsprop(learning_rate = lr$f)
  v <- list(a = 1, b = 2)
  v <- opt$step(list(a = 1, b = 1), v)
  expect_warning(v <- opt$step(list(a = NULL, b = 1), v), class = "rmsprop_warning_null_gradient")
  expect_identical(lr$calls(), 2)
  lr <- counting_rate()
  ls <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = lr$f), initial_scale = 4)
  w <- c(1, 2)
  for (i in 1:3) w <- ls$step(c(4, 4), w)
  expect_identical(lr$calls(), 3)
  expect_identical(ls$last_learning_rate, 0.1 / 3)
})

test_that("last_learning_rate is the rate each step used, NA before the first", {
  sched <- learning_rate_schedule_exponential_decay(0.1, decay_steps = 2, decay_rate = 0.5)
  opt <- optimizer_rmsprop(learning_rate = sched)
  expect_identical(opt$last_learning_rate, NA_real_)
  v <- 1
  used <- numeric(4)
  for (i in 1:4) {
    v <- opt$step(1, v)
    used[i] <- opt$last_learning_rate
  }
  expect_identical(used, sched(0:3))
  # A numeric rate, changed between steps.
  opt <- optimizer_rmsprop(learning_rate = 0.5)
  v <- opt$step(1, 1)
  opt$learning_rate <- 0.25
  v <- opt$step(1, v)
  expect_identical(opt$last_learning_rate, 0.25)
  # It is part of the state: saved and restored, cloned.
  again <- unserialize(serialize(opt, NULL))
  expect_identical(again$last_learning_rate, 0.25)
  expect_identical(opt$clone()$last_learning_rate, 0.25)
  # A refused step leaves it as it was.
  expect_error(opt$step(NA, v), class = "rmsprop_error_gradient")
  expect_identical(opt$last_learning_rate, 0.25)
})

test_that("the step the loop takes equals the reference with a rate that changes on every call", {
  lr <- counting_rate()
  opt <- optimizer_rmsprop(learning_rate = lr$f, rho = 0.8)
  v <- c(1, -2)
  ms <- c(0, 0)
  ref <- v
  for (i in 1:10) {
    g <- 2 * v
    v <- opt$step(g, v)
    rate <- 0.1 / i
    gr <- 2 * ref
    ms <- 0.8 * ms + (1 - 0.8) * gr^2
    ref <- ref - rate * gr / sqrt(ms + 1e-7)
  }
  expect_equal(v, ref, tolerance = 1e-14)
  expect_identical(lr$calls(), 10)
})

test_that("every problem is found before anything changes, with the variable's path", {
  opt <- optimizer_rmsprop(learning_rate = 0.1, momentum = 0.5)
  v <- list(a = c(1, 2), b = matrix(1, 2, 2))
  v <- opt$step(list(a = c(1, 1), b = matrix(1, 2, 2)), v)
  before <- opt$variables
  err <- expect_error(opt$step(list(a = c(1, 1), b = matrix(c(1, 1, Inf, 1), 2)), v),
                      class = "rmsprop_error_gradient")
  expect_match(conditionMessage(err), "variable \"b\" is not finite at position 3", fixed = TRUE)
  expect_identical(err$path, "b")
  expect_identical(err$position, 3)
  err <- expect_error(opt$step(list(a = c(1, 1), b = "x"), v), class = "rmsprop_error_gradient")
  expect_match(conditionMessage(err), "for variable \"b\" must be numeric", fixed = TRUE)
  expect_identical(opt$variables, before)
})
