# Learning rates inside the optimizer (SPEC A2): schedules, callables, setter.
# Trajectories are compared with the plain-R oracle (helper-oracle.R), which
# gets a plain R function written from SPEC A4, not the package's schedule.

run_both <- function(cfg, oracle_lr, steps, seed, k = NULL) {
  set.seed(seed)
  cfg$gradient_accumulation_steps <- k
  opt <- do.call(optimizer_rmsprop, cfg)
  ocfg <- cfg
  ocfg$learning_rate <- oracle_lr
  o <- oracle_new(ocfg)
  vars <- list(w = rnorm(4), b = 0.5)
  for (s in seq_len(steps)) {
    grads <- list(w = rnorm(4), b = rnorm(1))
    out <- opt$step(grads, vars)
    ref <- oracle_step_like(o, grads, vars)
    o <- ref$o
    expect_equal(unlist(out), unlist(ref$vars), tolerance = 1e-12,
                 label = sprintf("seed %d step %d", seed, s))
    vars <- out
  }
  expect_identical(opt$iterations, oracle_iterations(o))
}

test_that("schedules are evaluated at the raw call counter", {
  run_both(list(learning_rate = learning_rate_schedule_exponential_decay(0.05, 3, 0.5),
                momentum = 0.3),
           function(s) 0.05 * 0.5^(s / 3), steps = 12, seed = 1)
  run_both(list(learning_rate = learning_rate_schedule_piecewise_constant_decay(c(2, 5), c(0.1, 0.01, 0.001)),
                centered = TRUE),
           function(s) if (s <= 2) 0.1 else if (s <= 5) 0.01 else 0.001, steps = 9, seed = 2)
  run_both(list(learning_rate = learning_rate_schedule_cosine_decay(0.1, 10)),
           function(s) { s <- min(s, 10); 0.1 * (0.5 * (1 + cos(pi * s / 10))) }, steps = 14, seed = 3)
})

test_that("with accumulation the n-th real update sees step n*k - 1", {
  seen <- numeric()
  spy <- function(step) {
    seen[[length(seen) + 1L]] <<- step
    0.01
  }
  opt <- optimizer_rmsprop(learning_rate = spy, gradient_accumulation_steps = 3)
  w <- c(1, 2)
  for (i in 1:9) w <- opt$step(c(1, 1), w)
  expect_identical(seen, as.numeric(0:8))
  run_both(list(learning_rate = learning_rate_schedule_inverse_time_decay(0.1, 2, 1)),
           function(s) 0.1 / (1 + 1 * s / 2), steps = 12, seed = 4, k = 3)
})

test_that("a function without arguments is called once per call", {
  calls <- 0
  lr <- function() {
    calls <<- calls + 1
    0.01 * calls
  }
  opt <- optimizer_rmsprop(learning_rate = lr)
  o <- oracle_new(list(learning_rate = local({
    n <- 0
    function() {
      n <<- n + 1
      0.01 * n
    }
  })))
  w <- c(a = 1, b = -1)
  for (i in 1:5) {
    g <- c(a = i, b = 1 / i)
    w_new <- opt$step(g, w)
    ref <- oracle_step(o, flatten_leaves(g), flatten_leaves(w))
    o <- ref$o
    expect_equal(w_new, ref$vars$variable, tolerance = 1e-12)
    w <- w_new
  }
  expect_identical(calls, 5)
})

test_that("the learning_rate property reads the value of the next step", {
  s <- learning_rate_schedule_exponential_decay(1, 1, 0.5)
  opt <- optimizer_rmsprop(learning_rate = s)
  expect_identical(opt$learning_rate, 1)
  w <- opt$step(1, 1)
  expect_identical(opt$learning_rate, 0.5)
  expect_identical(opt$current_learning_rate(), 0.5)
  expect_false("rmsprop/learning_rate" %in% names(opt$variables))
  expect_identical(opt$get_config()$learning_rate, s)
})

test_that("the setter follows Keras: numbers only replace numbers", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  opt$learning_rate <- 0.2
  expect_identical(opt$learning_rate, 0.2)
  expect_identical(opt$get_config()$learning_rate, 0.2)
  expect_identical(opt$variables[["rmsprop/learning_rate"]], 0.2)
  opt$learning_rate <- 1L
  expect_identical(opt$learning_rate, 1)
  expect_error(opt$learning_rate <- -1, "learning_rate", class = "rmsprop_error_argument")
  expect_error(opt$learning_rate <- NA_real_, class = "rmsprop_error_argument")
  expect_error(opt$learning_rate <- "fast", class = "rmsprop_error_argument")
  expect_identical(opt$learning_rate, 1)

  s <- learning_rate_schedule_cosine_decay(0.5, 100)
  opt$learning_rate <- s
  expect_identical(opt$learning_rate, 0.5)
  expect_error(opt$learning_rate <- 0.3, "schedule", class = "rmsprop_error_learning_rate")
  expect_identical(opt$get_config()$learning_rate, s)
  opt$learning_rate <- function() 0.25
  expect_identical(opt$learning_rate, 0.25)
  expect_error(opt$learning_rate <- 0.3, class = "rmsprop_error_learning_rate")
  opt$learning_rate <- learning_rate_schedule_exponential_decay(0.7, 10, 0.9)
  expect_identical(opt$learning_rate, 0.7)
})

test_that("a schedule or function that fails or returns a bad value changes nothing", {
  bad_values <- list(-1, NaN, Inf, NA_real_, c(0.1, 0.2), "x", NULL, numeric())
  for (bad in bad_values) {
    value <- bad
    opt <- optimizer_rmsprop(learning_rate = function() value)
    expect_error(opt$step(1, 1), class = "rmsprop_error_learning_rate")
    expect_identical(opt$iterations, 0)
    expect_identical(names(opt$variables), "rmsprop/iteration")
  }
  flip <- FALSE
  opt <- optimizer_rmsprop(learning_rate = function(step) if (flip) stop("boom") else 0.1)
  w <- opt$step(c(1, 2), c(1, 1))
  before <- opt$variables
  flip <- TRUE
  expect_error(opt$step(c(1, 2), w), "boom", class = "rmsprop_error_learning_rate")
  expect_identical(opt$variables, before)
  flip <- FALSE
  twin <- optimizer_rmsprop(learning_rate = 0.1)
  twin$step(c(1, 2), c(1, 1))
  expect_identical(opt$step(c(1, 2), w), twin$step(c(1, 2), w))
})

test_that("a learning rate of zero leaves the variables unchanged but updates the slots", {
  opt <- optimizer_rmsprop(learning_rate = 0)
  expect_identical(opt$step(c(1, 2), c(3, 4)), c(3, 4))
  expect_equal(opt$variables[["rmsprop/variable_velocity"]], 0.1 * c(1, 4))
})
