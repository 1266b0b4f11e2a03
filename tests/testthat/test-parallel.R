# Data-parallel gradients and optimizer sweeps on future plans, parallel
# clusters and mirai daemons. Workers are local processes; each test stops what it
# starts.

par_data <- local({
  set.seed(101)
  n <- 240
  x <- cbind(1, matrix(stats::rnorm(n * 3), n))
  y <- drop(x %*% c(1, 2, -1, 0.5) + stats::rnorm(n))
  data.frame(y = y, x = I(x))
})
par_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
par_gr <- function(b, batch) -2 * drop(crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)

par_run <- function(engine, gr = par_gr, optimizer = NULL) {
  if (is.null(optimizer)) optimizer <- optimizer_rmsprop(0.05, momentum = 0.5)
  set.seed(3)
  minimize(rep(0, 4), par_fn, gr, data = par_data, batch_size = 50, epochs = 4,
           engine = engine, optimizer = optimizer)
}

local_cluster <- function(env = parent.frame()) {
  skip_if_not_installed("withr")
  cl <- parallel::makeCluster(2L)
  withr::defer(parallel::stopCluster(cl), envir = env)
  cl
}

local_daemons <- function(env = parent.frame()) {
  skip_if_not_installed("mirai")
  skip_if_not_installed("withr")
  mirai::daemons(2L)
  withr::defer(mirai::daemons(0L), envir = env)
  invisible()
}

local_multisession <- function(env = parent.frame()) {
  skip_if_not_installed("future")
  skip_if_not_installed("withr")
  old <- future::plan(future::multisession, workers = 2L)
  withr::defer(future::plan(old), envir = env)
  invisible()
}

test_that("engines are built, printed and checked", {
  e <- rmsprop_engine("sequential", shards = 3)
  expect_s3_class(e, "rmsprop_engine")
  expect_output(print(e), "3 shards")
  expect_s3_class(e, "rmsprop_engine_sequential")
  expect_error(rmsprop_engine("gpu"), "`backend`.*\"mirai\"", class = "rmsprop_error_argument")
  expect_error(rmsprop_engine(NA_character_), "`backend`", class = "rmsprop_error_argument")
  expect_error(rmsprop_engine("sequential", shards = 0), "`shards`",
               class = "rmsprop_error_argument")
  expect_error(minimize(1, function(p) p^2, engine = 3), "`engine`",
               class = "rmsprop_error_argument")
  expect_identical(split_even(1:10, 3), list(`1` = 1:3, `2` = 4:7, `3` = 8:10))
  expect_length(split_even(1:2, 5), 2L)
  # one class per backend, from the registry
  expect_s3_class(as_engine("sequential"), "rmsprop_engine_sequential")
  cl <- structure(list(), class = "cluster")
  expect_s3_class(as_engine(cl), "rmsprop_engine_cluster")
  expect_output(print(as_engine(cl)), "a cluster of 0 workers")
  # a class without methods stops with a message naming what is missing
  odd <- structure(list(shards = 1L), class = c("rmsprop_engine_odd", "rmsprop_engine"))
  expect_error(engine_open(odd, NULL), "engine_open\\(\\) is not implemented")
  expect_error(engine_workers(odd), "engine_workers")
})

test_that("the mirai engine needs daemons, and says so", {
  skip_if_not_installed("mirai")
  skip_if(isTRUE(mirai::daemons_set()), "mirai daemons are set")
  expect_s3_class(rmsprop_engine("mirai"), "rmsprop_engine_mirai")
  expect_error(par_run("mirai"), "mirai::daemons\\(2\\)", class = "rmsprop_error_argument")
})

test_that("sharded gradients in one process agree with the plain run", {
  plain <- par_run(NULL)
  for (k in c(1, 2, 3, 7)) {
    sharded <- par_run(rmsprop_engine("sequential", shards = k))
    expect_equal(sharded$par, plain$par, tolerance = 1e-12)
    expect_equal(sharded$history$loss, plain$history$loss, tolerance = 1e-12)
    expect_identical(sharded$counts, plain$counts)
  }
  # numerical gradients, on data (finite differences magnify the rounding of
  # the combined loss: about 1e-11) and without data (each partial derivative
  # is computed the same way wherever it runs: identical)
  num <- par_run(rmsprop_engine("sequential", shards = 2), gr = NULL)
  expect_equal(num$par, par_run(NULL, gr = NULL)$par, tolerance = 1e-9)
  f <- function(p) sum((p - seq_along(p))^2 * seq_along(p))
  expect_identical(minimize(rep(0, 5), f, steps = 30, engine = "sequential")$par,
                   minimize(rep(0, 5), f, steps = 30)$par)
})

test_that("gradients combine over nested lists with NULL leaves", {
  g1 <- list(a = matrix(1:4, 2), b = list(c = c(x = 1), d = NULL))
  g2 <- list(a = matrix(5:8, 2), b = list(c = c(x = 3), d = NULL))
  out <- combine_gradients(list(g1, g2), c(0.25, 0.75))
  expect_identical(out$a, matrix(0.25 * (1:4) + 0.75 * (5:8), 2))
  expect_identical(out$b$c, c(x = 2.5))
  expect_null(out$b$d)
  expect_named(out$b, c("c", "d"))
})

test_that("a PSOCK cluster gives the single-process trajectory", {
  cl <- local_cluster()
  plain <- par_run(NULL)
  seq2 <- par_run(rmsprop_engine("sequential", shards = 2))
  user_opt <- optimizer_rmsprop(0.05, momentum = 0.5)
  fit <- par_run(cl, optimizer = user_opt)
  expect_equal(fit$par, plain$par, tolerance = 1e-12)
  expect_identical(fit$par, seq2$par)
  expect_identical(fit$history, seq2$history)
  expect_identical(user_opt$iterations, 0)
  # more shards than workers
  expect_identical(par_run(rmsprop_engine(cl, shards = 3))$par,
                   par_run(rmsprop_engine("sequential", shards = 3))$par)
  # numerical gradients on the workers
  expect_identical(par_run(cl, gr = NULL)$par,
                   par_run(rmsprop_engine("sequential", shards = 2), gr = NULL)$par)
  f <- function(p) sum((p - seq_along(p))^2 * seq_along(p))
  expect_identical(minimize(rep(0, 5), f, steps = 30, engine = cl)$par,
                   minimize(rep(0, 5), f, steps = 30)$par)
  # nothing is left on the workers
  left <- parallel::clusterEvalQ(cl, !is.null(getOption("rmsprop.worker_runs")))
  expect_false(any(unlist(left)))
})

test_that("future plans give the single-process trajectory", {
  skip_if_not_installed("future")
  seq2 <- par_run(rmsprop_engine("sequential", shards = 2))
  local({
    old <- future::plan(future::sequential)
    on.exit(future::plan(old), add = TRUE)
    expect_identical(par_run(rmsprop_engine("future", shards = 2))$par, seq2$par)
  })

  local_multisession()
  expect_identical(future::nbrOfWorkers(), 2L)
  fit <- par_run("future")
  expect_equal(fit$par, par_run(NULL)$par, tolerance = 1e-12)
  expect_identical(fit$par, seq2$par)
  expect_identical(fit$history, seq2$history)
  f <- function(p) sum((p - seq_along(p))^2 * seq_along(p))
  expect_identical(minimize(rep(0, 5), f, steps = 20, engine = "future")$par,
                   minimize(rep(0, 5), f, steps = 20)$par)
})

test_that("mirai daemons give the single-process trajectory", {
  local_daemons()
  seq2 <- par_run(rmsprop_engine("sequential", shards = 2))
  fit <- par_run("mirai")
  expect_equal(fit$par, par_run(NULL)$par, tolerance = 1e-12)
  expect_identical(fit$par, seq2$par)
  expect_identical(fit$history, seq2$history)
  expect_identical(par_run(rmsprop_engine("mirai", shards = 3))$par,
                   par_run(rmsprop_engine("sequential", shards = 3))$par)
  # numerical gradients on the daemons
  expect_identical(par_run("mirai", gr = NULL)$par,
                   par_run(rmsprop_engine("sequential", shards = 2), gr = NULL)$par)
  f <- function(p) sum((p - seq_along(p))^2 * seq_along(p))
  expect_identical(minimize(rep(0, 5), f, steps = 30, engine = "mirai")$par,
                   minimize(rep(0, 5), f, steps = 30)$par)
  left <- mirai::everywhere(!is.null(getOption("rmsprop.worker_runs")))[]
  expect_false(any(unlist(left)))
})

test_that("a failing worker is a classed error naming the shard", {
  bad_gr <- function(b, batch) {
    if (any(batch$y > 4)) stop("shard data out of range")
    par_gr(b, batch)
  }
  engines <- list(rmsprop_engine("sequential", shards = 2))
  cl <- local_cluster()
  engines <- c(engines, list(cl))
  if (requireNamespace("future", quietly = TRUE)) {
    local_multisession()
    engines <- c(engines, list("future"))
  }
  if (requireNamespace("mirai", quietly = TRUE)) {
    local_daemons()
    engines <- c(engines, list("mirai"))
  }
  for (engine in engines) {
    user_opt <- optimizer_rmsprop(0.05)
    err <- expect_error(par_run(engine, gr = bad_gr, optimizer = user_opt),
                        class = "rmsprop_error_worker")
    expect_match(conditionMessage(err), "shard [0-9]+ of 2")
    expect_match(conditionMessage(err), "shard data out of range")
    expect_identical(user_opt$iterations, 0)
  }
  # the cluster is still fine and clean afterwards
  left <- parallel::clusterEvalQ(cl, !is.null(getOption("rmsprop.worker_runs")))
  expect_false(any(unlist(left)))
  expect_identical(par_run(cl)$par, par_run(rmsprop_engine("sequential", shards = 2))$par)
})

sweep_grid <- function() {
  grid <- data.frame(momentum = c(0, 0.5, 0), centered = c(FALSE, FALSE, TRUE))
  grid$learning_rate <- list(0.01, learning_rate_schedule_cosine_decay(0.1, 40), 0.05)
  grid
}
sweep_run <- function(engine) {
  sweep_optimizers(sweep_grid(), rep(0, 4), par_fn, par_gr, data = par_data,
                   batch_size = 60, epochs = 3, seed = 11, engine = engine)
}

test_that("a sweep returns tidy histories equal to separate runs", {
  sw <- sweep_run(NULL)
  expect_s3_class(sw, "rmsprop_sweep")
  d <- as.data.frame(sw)
  expect_identical(class(d), "data.frame")
  expect_named(d, c("config", "momentum", "centered", "learning_rate_config", "step", "epoch",
                    "loss", "learning_rate", "grad_norm"))
  expect_identical(nrow(d), 3L * 12L)
  expect_identical(unique(d$config), 1:3)
  expect_match(d$learning_rate_config[d$config == 2][1], "cosine_decay")
  final <- attr(sw, "final")
  expect_identical(nrow(final), 3L)
  # configuration 2 is the same as a minimize() run with that optimizer
  set.seed(11)
  one <- minimize(rep(0, 4), par_fn, par_gr, data = par_data, batch_size = 60, epochs = 3,
                  optimizer = optimizer_rmsprop(learning_rate_schedule_cosine_decay(0.1, 40),
                                                momentum = 0.5, centered = FALSE))
  expect_identical(d$loss[d$config == 2], one$history$loss)
  expect_identical(attr(sw, "par")[[2]], one$par)
  expect_identical(final$value[2], one$value)
  expect_output(print(sw), "3 configurations")
  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  expect_invisible(plot(sw))
  # a list grid, and NA meaning "default"
  sw2 <- sweep_optimizers(list(list(learning_rate = 0.1), list(learning_rate = 0.1, rho = 0.5)),
                          1, function(p) (p - 3)^2, function(p) 2 * (p - 3), steps = 10)
  sw3 <- sweep_optimizers(data.frame(learning_rate = 0.1, rho = c(NA, 0.5)),
                          1, function(p) (p - 3)^2, function(p) 2 * (p - 3), steps = 10)
  expect_identical(as.data.frame(sw2)$loss, as.data.frame(sw3)$loss)
})

test_that("sweeps on a cluster, mirai daemons and future workers equal the sequential sweep", {
  reference <- as.data.frame(sweep_run(NULL))
  cl <- local_cluster()
  expect_identical(as.data.frame(sweep_run(cl)), reference)
  if (requireNamespace("mirai", quietly = TRUE)) {
    local_daemons()
    expect_identical(as.data.frame(sweep_run("mirai")), reference)
  }
  skip_if_not_installed("future")
  local_multisession()
  expect_identical(as.data.frame(sweep_run("future")), reference)
})

test_that("sweep errors name the configuration", {
  expect_error(sweep_optimizers(data.frame(rho = c(0.9, 2)), 1, function(p) p^2, steps = 2),
               "configuration 2", class = "rmsprop_error_argument")
  expect_error(sweep_optimizers("x", 1, function(p) p^2), "`grid`",
               class = "rmsprop_error_argument")
  fn <- function(p) if (p > 0.5) stop("diverged") else (p - 1)^2
  gr <- function(p) 2 * (p - 1)
  grid <- data.frame(learning_rate = c(0.001, 0.3))
  expect_error(sweep_optimizers(grid, 0, fn, gr, steps = 10), "configuration 2 .*diverged",
               class = "rmsprop_error_worker")
  cl <- local_cluster()
  expect_error(sweep_optimizers(grid, 0, fn, gr, steps = 10, engine = cl),
               "configuration 2 .*diverged", class = "rmsprop_error_worker")
})
