# load_variables() checks every field before anything is used (issue 23):
# types, lengths and dims, finite values, a whole iteration counter in
# [0, 2^53], velocities >= 0, and (centered) average gradients whose square
# does not exceed the velocity plus epsilon. A negative velocity or an
# iteration of 1e300 used to be accepted, and every later step answered NaN.
# Each refusal is a classed error naming the entry, and nothing changes.

trained <- function(...) {
  opt <- optimizer_rmsprop(learning_rate = 0.05, ...)
  v <- list(w = matrix(c(1, -2, 3, 0.5), 2), b = c(0.1, 0.2, 0.3))
  for (i in 1:3) v <- opt$step(rapply(v, function(x) sin(x * i), how = "replace"), v)
  list(opt = opt, vars = v)
}

expect_refused <- function(opt, values, field, pattern) {
  before <- opt$variables
  err <- expect_error(opt$load_variables(values), class = "rmsprop_error_argument")
  expect_identical(err$field, field)
  expect_match(conditionMessage(err), pattern)
  expect_identical(opt$variables, before)
  invisible(err)
}

test_that("impossible values are refused with the entry named, and nothing changes", {
  t <- trained(momentum = 0.5, centered = TRUE, use_ema = TRUE)
  opt <- t$opt
  good <- opt$variables
  set <- function(name, value) {
    x <- good
    x[[name]] <- value
    x
  }
  neg <- good$`rmsprop/b_velocity`
  neg[2] <- -1e-3
  expect_refused(opt, set("rmsprop/b_velocity", neg), "rmsprop/b_velocity", ">= 0")
  for (it in c(1e300, -1, 2.5, 2^53 + 2)) {
    expect_refused(opt, set("rmsprop/iteration", it), "rmsprop/iteration", "whole number")
  }
  expect_refused(opt, set("rmsprop/iteration", NA_real_), "rmsprop/iteration", "finite")
  big_mg <- good$`rmsprop/w_average_gradient`
  big_mg[3] <- 10
  expect_refused(opt, set("rmsprop/w_average_gradient", big_mg), "rmsprop/w_average_gradient",
                 "square root of a negative")
  inf <- good$`rmsprop/w_momentum`
  inf[1] <- Inf
  expect_refused(opt, set("rmsprop/w_momentum", inf), "rmsprop/w_momentum", "finite")
  expect_refused(opt, set("rmsprop/b_average", c(1, 2)), "rmsprop/b_average", "length 3")
  expect_refused(opt, set("rmsprop/w_velocity", as.vector(good$`rmsprop/w_velocity`)),
                 "rmsprop/w_velocity", "dim")
  expect_refused(opt, set("rmsprop/b_velocity", as.character(neg)), "rmsprop/b_velocity", "character")
  expect_refused(opt, set("rmsprop/b_velocity", factor(1:3)), "rmsprop/b_velocity", "factor")
  expect_refused(opt, set("rmsprop/learning_rate", -0.1), "rmsprop/learning_rate", ">= 0")
  renamed <- good
  names(renamed)[4] <- "rmsprop/x_velocity"
  expect_refused(opt, renamed, names(good)[4], "expects")
  # The untouched values still load, and the optimizer continues as before.
  copy <- trained(momentum = 0.5, centered = TRUE, use_ema = TRUE)$opt
  copy$load_variables(good)
  g <- rapply(t$vars, function(x) cos(x), how = "replace")
  expect_identical(copy$step(g, t$vars), opt$step(g, t$vars))
})

test_that("a huge entry is refused by its length, before any value is read or copied", {
  t <- trained()
  vals <- t$opt$variables
  vals$`rmsprop/b_velocity` <- 1:2^40   # a compact sequence: no memory behind it
  err <- expect_error(t$opt$load_variables(vals), class = "rmsprop_error_argument")
  expect_match(conditionMessage(err), "length 3, not a double vector of length 1099511627776",
               fixed = TRUE)
})

test_that("the limits themselves load: zero velocities, the largest counter, an average gradient at the edge", {
  t <- trained(centered = TRUE)
  vals <- t$opt$variables
  vals$`rmsprop/iteration` <- 2^53
  vals$`rmsprop/b_velocity`[] <- 0
  vals$`rmsprop/b_average_gradient`[] <- 0
  vals$`rmsprop/w_velocity`[] <- 4
  vals$`rmsprop/w_average_gradient`[] <- 2   # 2^2 == 4: the square root of epsilon remains
  t$opt$load_variables(vals)
  expect_identical(t$opt$iterations, 2^53)
  out <- t$opt$step(list(w = matrix(0, 2, 2), b = c(0, 0, 0)), t$vars)
  expect_true(all(is.finite(unlist(out))))
})
