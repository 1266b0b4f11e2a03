# step_in_place() writes into the caller's own memory (issue 23): a variable
# whose values are not plain memory (an ALTREP vector such as the compact
# sequence `as.double(1:n)`, which keeps its description: sum() would still
# answer from it) is refused with a classed error that says to copy it,
# before anything changes.

test_that("a compact sequence is refused in place, nothing changes, and a copy works", {
  x <- as.double(1:100)
  opt <- optimizer_rmsprop(learning_rate = 0.5)
  err <- expect_error(opt$step_in_place(rep(1, 100), x), class = "rmsprop_error_variable")
  expect_match(conditionMessage(err), "copy it first")
  expect_identical(err$path, "variable")
  expect_identical(x, as.double(1:100))
  expect_identical(sum(x), 5050)
  expect_identical(opt$iterations, 0)
  expect_null(opt$variables[["rmsprop/variable_velocity"]])
  # The same call on a plain copy: what step() gives, and sum() agrees.
  y <- x + 0
  ref <- optimizer_rmsprop(learning_rate = 0.5)$step(rep(1, 100), x)
  opt$step_in_place(rep(1, 100), y)
  expect_identical(y, ref)
  expect_identical(sum(y), sum(ref))
  expect_equal(y[1], 1 - 0.5 / sqrt((1 - 0.9) + 1e-7), tolerance = 1e-15)
})

test_that("an ALTREP leaf inside a list is refused by path, on a built optimizer too", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  v <- list(a = c(1, 2, 3), b = list(c = c(4, 5)))
  g <- list(a = c(1, 1, 1), b = list(c = c(1, 1)))
  opt$step_in_place(g, v)
  state <- opt$variables
  v2 <- list(a = v$a + 0, b = list(c = as.double(4:5)))
  before <- v2
  err <- expect_error(opt$step_in_place(g, v2), class = "rmsprop_error_variable")
  expect_identical(err$path, "b/c")
  expect_identical(v2, before)
  expect_identical(opt$variables, state)
  # step() (value semantics) takes the same compact sequence.
  expect_identical(opt$clone()$step(g, v2), opt$clone()$step(g, list(a = v2$a, b = list(c = c(4, 5)))))
})

test_that("the loss-scale wrapper refuses an ALTREP variable in place without touching its scale", {
  ls <- optimizer_loss_scale(optimizer_rmsprop(0.1), initial_scale = 4, dynamic_growth_steps = 2)
  x <- as.double(1:10)
  expect_error(ls$step_in_place(rep(1, 10), x), class = "rmsprop_error_variable")
  expect_identical(ls$loss_scale_factor, 4)
  expect_identical(ls$variables[[1]], 0)
  expect_identical(x, as.double(1:10))
})
