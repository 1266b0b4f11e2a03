# Lengths and positions of long vectors (2^31 elements or more) in messages
# (issue 23): "%d" refused them ("invalid format '%d'"), an unclassed error.
# A compact sequence has that length without the memory.

test_that("a gradient or variable of length 2^31 gets a classed structure error with its length", {
  big <- 1:2^31
  expect_identical(length(big), 2^31)
  opt <- optimizer_rmsprop()
  opt$build(c(1, 2))
  err <- expect_error(opt$step(big, c(1, 2)), class = "rmsprop_error_structure")
  expect_match(conditionMessage(err), "length 2147483648", fixed = TRUE)
  err <- expect_error(opt$step(c(1, 2), big), class = "rmsprop_error_structure")
  expect_match(conditionMessage(err), "length 2147483648", fixed = TRUE)
  expect_identical(opt$iterations, 0)
  nested <- optimizer_rmsprop()
  nested$build(list(a = list(b = c(1, 2))))
  err <- expect_error(nested$step(list(a = list(b = big)), list(a = list(b = c(1, 2)))),
                      class = "rmsprop_error_structure")
  expect_match(conditionMessage(err), "\"a/b\".*length 2147483648")
})

test_that("describe_value() and count_text() write long lengths in full", {
  expect_identical(rmsprop:::count_text(2^31), "2147483648")
  expect_identical(rmsprop:::count_text(1e15), "1000000000000000")
  expect_identical(rmsprop:::describe_value(1:2^31), "a double vector of length 2147483648")
  opt <- optimizer_rmsprop()
  opt$build(c(1, 2))
  err <- expect_error(opt$load_variables(list(`rmsprop/iteration` = 0, `rmsprop/learning_rate` = 0.001,
                                              `rmsprop/variable_velocity` = 1:2^31)),
                      class = "rmsprop_error_argument")
  expect_match(conditionMessage(err), "length 2147483648", fixed = TRUE)
})
