# optimizer_loss_scale(): SPEC A5 and the published values of SPEC C.

test_that("published values: halving on non-finite steps, doubling on growth", {
  opt <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 400)
  w <- c(1, 2)
  for (i in 1:4) w <- opt$step(c(Inf, 1), w)
  expect_equal(opt$scale_loss(1), 25)
  expect_identical(w, c(1, 2))

  opt <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 2, dynamic_growth_steps = 2)
  for (i in 1:8) w <- opt$step(c(1, 1), w)
  expect_equal(opt$scale_loss(1), 32)
  expect_equal(opt$iterations, 8)
})

test_that("a skipped step changes nothing in the inner optimizer", {
  inner <- optimizer_rmsprop(learning_rate = 0.1, momentum = 0.5, centered = TRUE, use_ema = TRUE)
  opt <- optimizer_loss_scale(inner, initial_scale = 8, dynamic_growth_steps = 3)
  w <- list(a = c(1, 2, 3), b = matrix(1:4 / 4, 2))
  w <- opt$step(list(a = c(1, 1, 1), b = matrix(1, 2, 2)), w)
  before <- inner$variables
  for (bad in list(NaN, Inf, -Inf, NA_real_)) {
    g <- list(a = c(1, bad, 1), b = matrix(1, 2, 2))
    out <- opt$step(g, w)
    expect_identical(out, w)
    expect_identical(inner$variables, before)
  }
  expect_equal(opt$loss_scale_factor, 8 / 16)
  expect_equal(opt$variables[["loss_scale_optimizer/step_counter"]], 0)
})

test_that("a first step that is skipped leaves the inner optimizer unbuilt", {
  inner <- optimizer_rmsprop()
  opt <- optimizer_loss_scale(inner)
  expect_identical(opt$step(c(NaN, 1), c(1, 1)), c(1, 1))
  expect_identical(names(inner$variables), c("rmsprop/iteration", "rmsprop/learning_rate"))
  expect_equal(opt$loss_scale_factor, 32768 / 2)
})

test_that("finite steps equal the inner optimizer fed unscaled gradients, bit for bit", {
  set.seed(11)
  for (trial in 1:20) {
    cfg <- list(learning_rate = runif(1, 1e-3, 0.2), rho = runif(1), momentum = sample(c(0, 0.9), 1),
                centered = runif(1) < 0.5, use_ema = runif(1) < 0.5)
    scale <- 2^sample(0:15, 1)
    growth <- sample(1:4, 1)
    opt <- optimizer_loss_scale(do.call(optimizer_rmsprop, cfg), initial_scale = scale,
                                dynamic_growth_steps = growth)
    plain <- do.call(optimizer_rmsprop, cfg)
    w1 <- w2 <- list(x = rnorm(5), y = matrix(rnorm(6), 2))
    expected_scale <- scale
    count <- 0
    for (step in 1:12) {
      g <- list(x = rnorm(5), y = matrix(rnorm(6), 2))
      finite <- runif(1) < 0.8
      if (!finite) g$x[sample(5, 1)] <- Inf
      current <- opt$loss_scale_factor
      w1 <- opt$step(lapply(g, function(x) x * current), w1)
      if (finite) {
        w2 <- plain$step(lapply(g, function(x) x * current / current), w2)
        if (count == growth - 1) {
          count <- 0
          expected_scale <- expected_scale * 2
        } else {
          count <- count + 1
        }
      } else {
        count <- 0
        expected_scale <- expected_scale / 2
      }
      expect_identical(w1, w2, label = sprintf("trial %d step %d", trial, step))
      expect_identical(opt$loss_scale_factor, expected_scale)
    }
    expect_identical(opt$iterations, plain$iterations)
    expect_identical(opt$finalize_variable_values(w1), plain$finalize_variable_values(w2))
  }
})

test_that("the inner optimizer's own loss_scale_factor is not used while wrapped", {
  opt <- optimizer_loss_scale(optimizer_rmsprop(loss_scale_factor = 1000), initial_scale = 4)
  plain <- optimizer_rmsprop()
  expect_identical(opt$step(c(4, 8), c(1, 1)), plain$step(c(1, 2), c(1, 1)))
  expect_equal(opt$scale_loss(3), 12)
})

test_that("iterations, learning rate, variables and EMA delegate to the inner optimizer", {
  inner <- optimizer_rmsprop(learning_rate = 0.01, use_ema = TRUE, ema_momentum = 0.5)
  opt <- optimizer_loss_scale(inner, initial_scale = 1, name = "ls")
  w <- c(1, 2)
  for (i in 1:3) w <- opt$step(c(0.5, -0.5), w)
  expect_identical(opt$iterations, inner$iterations)
  expect_identical(opt$learning_rate, 0.01)
  opt$learning_rate <- 0.5
  expect_identical(inner$learning_rate, 0.5)
  expect_identical(opt$finalize_variable_values(w), inner$finalize_variable_values(w))
  v <- opt$variables
  expect_identical(names(v)[1:2], c("ls/step_counter", "ls/dynamic_scale"))
  expect_identical(v[-(1:2)], inner$variables)
  expect_identical(opt$inner_optimizer, inner)
  expect_error(opt$iterations <- 3, class = "rmsprop_error")
  expect_error(opt$loss_scale_factor <- 3, class = "rmsprop_error")
})

test_that("apply() and apply_gradients() agree with step()", {
  a <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.1), initial_scale = 2)
  b <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.1), initial_scale = 2)
  c <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.1), initial_scale = 2)
  g <- list(c(1, 2), 3)
  v <- list(c(0, 0), 1)
  expected <- a$step(g, v)
  expect_identical(b$apply(g, v), expected)
  expect_identical(c$apply_gradients(list(list(g[[1]], v[[1]]), list(g[[2]], v[[2]]))), expected)
})

test_that("arguments are checked, base-optimizer arguments refused unless default", {
  inner <- optimizer_rmsprop()
  expect_error(optimizer_loss_scale(list()), class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(optimizer_loss_scale(inner)), "loss-scale",
               class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, initial_scale = 0), "initial_scale",
               class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, initial_scale = NA_real_), "initial_scale",
               class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, dynamic_growth_steps = 1.5), "dynamic_growth_steps",
               class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, name = ""), "name", class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, clipnorm = 1), "inner optimizer",
               class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, use_ema = TRUE), "use_ema",
               class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, gradient_accumulation_steps = 2),
               "gradient_accumulation_steps", class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, learning_rate = 1), "learning_rate",
               class = "rmsprop_error_argument")
  expect_error(optimizer_loss_scale(inner, 1, 2, 3), "unnamed", class = "rmsprop_error_argument")
  expect_s3_class(optimizer_loss_scale(inner, clipnorm = NULL, use_ema = FALSE, ema_momentum = 0.99),
                  "rmsprop_loss_scale_optimizer")
})

test_that("errors other than non-finite gradients are raised and change nothing", {
  inner <- optimizer_rmsprop()
  opt <- optimizer_loss_scale(inner, initial_scale = 4)
  w <- opt$step(c(1, 1), c(1, 1))
  before <- opt$variables
  expect_error(opt$step(c(1, 1, 1), c(1, 1)), class = "rmsprop_error_structure")
  expect_error(opt$step("a", c(1, 1)), class = "rmsprop_error_gradient")
  expect_error(opt$scale_loss("a"), class = "rmsprop_error_argument")
  expect_identical(opt$variables, before)
})

test_that("config, clone and print", {
  opt <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.2, momentum = 0.5),
                              initial_scale = 16, dynamic_growth_steps = 5, name = "scaler")
  cfg <- opt$get_config()
  expect_identical(cfg$initial_scale, 16)
  expect_identical(cfg$dynamic_growth_steps, 5)
  expect_identical(cfg$name, "scaler")
  expect_identical(cfg$inner_optimizer$get_config(), opt$inner_optimizer$get_config())
  fresh <- do.call(optimizer_loss_scale, cfg)
  w <- c(1, 2)
  expect_identical(fresh$step(c(1, 1), w), opt$step(c(1, 1), w))

  twin <- opt$clone()
  w1 <- opt$step(c(Inf, 1), w)
  expect_false(identical(twin$loss_scale_factor, opt$loss_scale_factor))
  expect_identical(twin$step(c(2, 2), w), fresh$step(c(2, 2), w))
  expect_output(print(opt), "loss-scale optimizer \"scaler\"")
  expect_output(print(opt), "rmsprop optimizer")
})

test_that("the loss-scale optimizer survives serialization", {
  opt <- optimizer_loss_scale(optimizer_rmsprop(momentum = 0.9), initial_scale = 8,
                              dynamic_growth_steps = 2)
  w <- opt$step(c(8, 16), c(1, 1))
  copy <- unserialize(serialize(opt, NULL))
  for (g in list(c(1, 2), c(Inf, 1), c(3, 1), c(2, 2))) {
    expect_identical(copy$step(g, w), opt$step(g, w))
    expect_identical(copy$variables, opt$variables)
  }
})

test_that("load_variables() restores the wrapper's counter and scale with the inner state", {
  make <- function() optimizer_loss_scale(optimizer_rmsprop(momentum = 0.5), initial_scale = 8,
                                          dynamic_growth_steps = 3)
  a <- make()
  w <- a$step(c(8, 16), c(1, 1))
  w <- a$step(c(Inf, 1), w)
  w <- a$step(c(4, 4), w)
  b <- make()
  b$build(c(1, 1))
  b$load_variables(a$variables)
  expect_identical(b$variables, a$variables)
  for (g in list(c(1, 2), c(3, 1), c(NaN, 1), c(2, 2))) {
    expect_identical(b$step(g, w), a$step(g, w))
  }
  before <- b$variables
  bad <- before
  bad[["loss_scale_optimizer/dynamic_scale"]] <- -1
  expect_error(b$load_variables(bad), "dynamic_scale", class = "rmsprop_error_argument")
  bad <- before
  bad[["loss_scale_optimizer/step_counter"]] <- 3
  expect_error(b$load_variables(bad), "step_counter", class = "rmsprop_error_argument")
  bad <- before
  bad[["rmsprop/variable_velocity"]] <- c(1, 2, 3)
  expect_error(b$load_variables(bad), class = "rmsprop_error_argument")
  expect_error(b$load_variables(before[-1]), class = "rmsprop_error_argument")
  expect_identical(b$variables, before)
})
