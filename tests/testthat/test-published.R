# SPEC Part C: published reference values from the Keras test suite and
# docstring (schedules and loss scaling are tested with their own files).
# Each value is checked against the package and, where it helps, the oracle.

test_that("lr 0.5 on c(1, 2, 3, 4) with gradient c(1, 6, 7, 2)", {
  opt <- optimizer_rmsprop(learning_rate = 0.5)
  out <- opt$step(c(1, 6, 7, 2), c(1, 2, 3, 4))
  expect_equal(out, c(-0.5811, 0.4189, 1.4189, 2.4189), tolerance = 1e-4)
  expect_lt(max(abs(out - c(-0.5811, 0.4189, 1.4189, 2.4189))), 1e-4)
  r <- oracle_step(oracle_new(list(learning_rate = 0.5)), list(variable = c(1, 6, 7, 2)),
                   list(variable = c(1, 2, 3, 4)))
  expect_equal(out, r$vars$variable, tolerance = 1e-12)
})

test_that("docstring example: lr 0.1, var 10, grad 10 gives 9.683772", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  out <- opt$step(10, 10)
  expect_lt(abs(out - 9.683772), 1e-6)
  expect_equal(out, 10 - 0.1 * 10 / sqrt(0.1 * 100 + 1e-7), tolerance = 1e-14)
  expect_equal(opt$iterations, 1)
})

test_that("centered sequence after steps 1..5", {
  opt <- optimizer_rmsprop(centered = TRUE)
  v <- rep(1, 10)
  expected <- c(0.9967, 0.9933, 0.9908, 0.9885, 0.9864)
  o <- oracle_new(list(centered = TRUE))
  for (s in 1:5) {
    g <- if (s == 1) rep(0.01, 10) else seq(0.1, 1, by = 0.1)
    r <- oracle_step(o, list(variable = g), list(variable = v))
    o <- r$o
    v <- opt$step(g, v)
    expect_lt(max(abs(v - expected[s])), 5e-4, label = paste("step", s))
    expect_equal(v, r$vars$variable, tolerance = 1e-12, label = paste("step", s))
  }
})

test_that("weight decay: three fresh optimizers give 1.9760959; excluded stays 2", {
  v <- 2
  for (i in 1:3) {
    opt <- optimizer_rmsprop(learning_rate = 1, weight_decay = 0.004)
    v <- opt$step(0, v)
  }
  expect_lt(abs(v - 1.9760959), 1e-7)
  expect_equal(v, 2 * (1 - 0.004)^3, tolerance = 1e-14)

  opt <- optimizer_rmsprop(learning_rate = 1, weight_decay = 0.004)
  opt$exclude_from_weight_decay(var_names = "exclude")
  out <- opt$step(list(var1 = 0, exclude = 0), list(var1 = 2, exclude = 2))
  expect_identical(out$exclude, 2)
  expect_equal(out$var1, 2 * (1 - 0.004), tolerance = 1e-14)

  opt <- optimizer_rmsprop(learning_rate = 1, weight_decay = 0.004)
  opt$exclude_from_weight_decay(var_list = "var3")
  out <- opt$step(list(var3 = 0, other = 0), list(var3 = 2, other = 2))
  expect_identical(out$var3, 2)
  expect_equal(out$other, 1.992, tolerance = 1e-14)
})

# The first step of RMSprop barely depends on the gradient's scale, so the
# clipped gradient is read where it shows directly: with rho = 0 the velocity
# slot holds g^2 and, centered, the average-gradient slot holds g.
clip_probe <- function(grads, vars, ...) {
  opt <- optimizer_rmsprop(learning_rate = 0.1, rho = 0, centered = TRUE, epsilon = 1, ...)
  out <- opt$step(grads, vars)
  st <- opt$variables
  list(out = out,
       g = lapply(st[grepl("_average_gradient$", names(st))], as.numeric),
       g2 = lapply(st[grepl("_velocity$", names(st))], as.numeric))
}

test_that("clipnorm = 1 on c(100, 100) gives c(1, 1) / sqrt(2)", {
  p <- clip_probe(c(100, 100), c(0, 0), clipnorm = 1)
  expect_equal(p$g[[1]], c(1, 1) / sqrt(2), tolerance = 1e-14)
  expect_equal(p$g2[[1]], c(0.5, 0.5), tolerance = 1e-14)
  # The variable moved by lr * g / sqrt(g^2 - g^2 + epsilon) = 0.1 * g.
  expect_equal(p$out, -0.1 * c(1, 1) / sqrt(2), tolerance = 1e-14)
  # Per variable: a small gradient elsewhere is not scaled.
  p <- clip_probe(list(a = c(100, 100), b = c(0.3, 0.4)), list(a = c(0, 0), b = c(0, 0)), clipnorm = 1)
  expect_equal(p$g, list(c(1, 1) / sqrt(2), c(0.3, 0.4)), tolerance = 1e-14, ignore_attr = TRUE)
})

test_that("clipvalue = 1 on c(100, 100) gives c(1, 1)", {
  p <- clip_probe(c(100, 100), c(0, 0), clipvalue = 1)
  expect_equal(p$g[[1]], c(1, 1), tolerance = 1e-14)
  p <- clip_probe(c(100, -100, 0.5, -2), c(0, 0, 0, 0), clipvalue = 1)
  expect_equal(p$g[[1]], c(1, -1, 0.5, -1), tolerance = 1e-14)
})

test_that("global_clipnorm = 1 on gradients c(50, 100) gives g / sqrt(sum(g^2))", {
  g <- c(50, 100)
  p <- clip_probe(list(a = 50, b = 100), list(a = 0, b = 0), global_clipnorm = 1)
  expect_equal(unlist(p$g, use.names = FALSE), g / sqrt(sum(g^2)), tolerance = 1e-14)
  p <- clip_probe(g, c(0, 0), global_clipnorm = 1)
  expect_equal(p$g[[1]], g / sqrt(sum(g^2)), tolerance = 1e-14)
  # Below the threshold nothing changes.
  p <- clip_probe(list(a = 0.3, b = 0.4), list(a = 0, b = 0), global_clipnorm = 1)
  expect_equal(unlist(p$g, use.names = FALSE), c(0.3, 0.4), tolerance = 1e-14)
})

test_that("EMA rule with ema_momentum 0.9, and overwrite every 3 calls", {
  set.seed(3)
  v0 <- c(1, -2, 0.5)
  grads <- list(c(0.3, -0.1, 2), c(-1, 0.4, 0.2), c(0.5, 0.5, -0.7))
  plain <- optimizer_rmsprop(learning_rate = 0.1, use_ema = TRUE, ema_momentum = 0.9)
  v <- v0
  vs <- list()
  avgs <- list()
  for (s in 1:3) {
    v <- plain$step(grads[[s]], v)
    vs[[s]] <- v
    avgs[[s]] <- as.numeric(plain$variables[["rmsprop/variable_average"]])
  }
  expect_equal(avgs[[1]], vs[[1]], tolerance = 1e-14)
  expect_equal(avgs[[2]], 0.9 * vs[[1]] + 0.1 * vs[[2]], tolerance = 1e-14)
  avg3 <- 0.9 * avgs[[2]] + 0.1 * vs[[3]]
  expect_equal(avgs[[3]], avg3, tolerance = 1e-14)
  expect_equal(plain$finalize_variable_values(v), avg3, tolerance = 1e-14)

  over <- optimizer_rmsprop(learning_rate = 0.1, use_ema = TRUE, ema_momentum = 0.9,
                            ema_overwrite_frequency = 3)
  w <- v0
  for (s in 1:3) {
    w <- over$step(grads[[s]], w)
    if (s < 3) expect_identical(w, vs[[s]], label = paste("call", s))
  }
  expect_equal(w, avg3, tolerance = 1e-14)
  expect_false(isTRUE(all.equal(w, vs[[3]])))
})
