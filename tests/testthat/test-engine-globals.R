# The globals of fn and gr: helpers and objects of the global environment
# travel with the run to every worker (found with the globals package), and
# when one cannot be found the worker's error says what is missing and how
# to send it. Each test removes what it puts in the global environment.

glob_data <- local({
  set.seed(17)
  n <- 400
  x <- cbind(1, matrix(stats::rnorm(n * 2), n))
  y <- drop(x %*% c(1, -2, 0.5) + stats::rnorm(n))
  data.frame(y = y, x = I(x))
})

# fn and gr that call a helper and read a weight from the global
# environment, as a script's functions do.
local_global_problem <- function(env = parent.frame()) {
  skip_if_not_installed("withr")
  g <- globalenv()
  resid <- function(b, batch) batch$y - batch$x %*% b * rmsprop_test_w
  environment(resid) <- g
  assign("rmsprop_test_resid", resid, g)
  assign("rmsprop_test_w", 1, g)
  withr::defer(rm(list = c("rmsprop_test_resid", "rmsprop_test_w"), envir = g), envir = env)
  fn <- function(b, batch) mean(rmsprop_test_resid(b, batch)^2)
  gr <- function(b, batch) -2 * drop(crossprod(batch$x, rmsprop_test_resid(b, batch))) / nrow(batch)
  environment(fn) <- environment(gr) <- g
  list(fn = fn, gr = gr)
}

glob_run <- function(p, engine, gr = p$gr) {
  set.seed(4)
  minimize(rep(0, 3), p$fn, gr, data = glob_data, batch_size = 100, epochs = 2,
           engine = engine, optimizer = optimizer_rmsprop(0.05))
}

test_that("ship_globals() carries a global helper and object with copies of fn and gr", {
  skip_if_not_installed("globals")
  p <- local_global_problem()
  shipped <- ship_globals(list(fn = p$fn, source = gradient_source(p$gr), dots = list()))
  env <- environment(shipped$fn)
  expect_identical(environment(shipped$source$gr), env)
  expect_setequal(ls(env), c("rmsprop_test_resid", "rmsprop_test_w"))
  expect_identical(parent.env(env), globalenv())
  # the helper's copy finds the object there too; the user's functions are untouched
  expect_identical(environment(env$rmsprop_test_resid), env)
  expect_identical(environment(p$fn), globalenv())
  expect_identical(environment(get("rmsprop_test_resid", globalenv())), globalenv())
  # a function made by a function of the global environment
  make <- function(k) function(b, batch) k * rmsprop_test_w
  environment(make) <- globalenv()
  made <- ship_globals(list(fn = make(3), source = gradient_source(NULL), dots = list()))$fn
  expect_identical(parent.env(environment(made)), env <- parent.env(environment(made)))
  expect_identical(get("rmsprop_test_w", environment(made)), 1)
  expect_identical(get("k", environment(made)), 3)
  # a function of an attached package that is not one of R's default ones
  skip_if("package:tools" %in% search(), "tools is attached already")
  suppressPackageStartupMessages(library(tools))
  on.exit(detach("package:tools"), add = TRUE)
  ext <- function(b) nchar(file_ext("a.txt")) * b
  environment(ext) <- globalenv()
  shipped <- ship_globals(list(fn = ext, source = gradient_source(NULL), dots = list()))
  expect_identical(get("file_ext", environment(shipped$fn)), tools::file_ext)
  # base R, default packages and namespaces stay behind
  plain <- list(fn = function(b) stats::sd(b) + mean(b), source = gradient_source(NULL),
                dots = list())
  expect_identical(ship_globals(plain), plain)
})

test_that("a global helper reaches a PSOCK cluster, mirai daemons and futures", {
  skip_if_not_installed("globals")
  p <- local_global_problem()
  reference <- glob_run(p, rmsprop_engine("sequential", shards = 2))
  cl <- parallel::makeCluster(2L)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  expect_identical(glob_run(p, cl)$par, reference$par)
  # nothing is left in the workers' global environments
  expect_identical(unlist(parallel::clusterEvalQ(cl, exists("rmsprop_test_resid"))),
                   c(FALSE, FALSE))
  if (requireNamespace("mirai", quietly = TRUE)) {
    mirai::daemons(2L)
    on.exit(mirai::daemons(0L), add = TRUE)
    expect_identical(glob_run(p, "mirai")$history, reference$history)
  }
  if (requireNamespace("future", quietly = TRUE)) {
    old <- future::plan(future::multisession, workers = 2L)
    on.exit(future::plan(old), add = TRUE)
    expect_identical(glob_run(p, "future")$par, reference$par)
  }
})

test_that("a global the engines cannot see is named in the error, with how to send it", {
  p <- local_global_problem()
  # get() hides the name from any search for globals
  hidden_gr <- function(b, batch) get("rmsprop_test_hidden")(b, batch)
  plain_gr <- function(b, batch) -2 * drop(crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)
  environment(hidden_gr) <- environment(plain_gr) <- globalenv()
  assign("rmsprop_test_hidden", plain_gr, globalenv())
  on.exit(rm("rmsprop_test_hidden", envir = globalenv()), add = TRUE)
  cl <- parallel::makeCluster(2L)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  err <- expect_error(glob_run(p, cl, gr = hidden_gr), class = "rmsprop_error_worker")
  expect_match(conditionMessage(err), "object 'rmsprop_test_hidden' not found")
  expect_match(conditionMessage(err), "parallel::clusterExport(cl, \"rmsprop_test_hidden\")",
               fixed = TRUE)
  expect_match(conditionMessage(err), "pass it through `...`", fixed = TRUE)
  expect_identical(err$missing, "rmsprop_test_hidden")
  # sent as the message says, the run goes through
  parallel::clusterExport(cl, "rmsprop_test_hidden")
  expect_identical(glob_run(p, cl, gr = hidden_gr)$par,
                   glob_run(p, rmsprop_engine("sequential", shards = 2), gr = hidden_gr)$par)
  # a function that is nowhere
  nowhere_fn <- function(b, batch) rmsprop_test_nowhere(b)
  err <- expect_error(glob_run(list(fn = nowhere_fn, gr = p$gr), cl),
                      class = "rmsprop_error_worker")
  expect_match(conditionMessage(err), "could not find function \"rmsprop_test_nowhere\"")
  expect_match(conditionMessage(err), "mirai::everywhere", fixed = TRUE)
})

test_that("a sweep on a cluster sends the globals of fn, gr and a metric", {
  skip_if_not_installed("globals")
  p <- local_global_problem()
  mae <- function(b, rows) mean(abs(rmsprop_test_resid(b, rows)))
  environment(mae) <- globalenv()
  grid <- data.frame(learning_rate = c(0.02, 0.05))
  sweep <- function(engine) {
    sweep_optimizers(grid, rep(0, 3), p$fn, p$gr, data = glob_data, batch_size = 100,
                     epochs = 2, metrics = list(mae = mae), seed = 3, engine = engine)
  }
  here <- sweep(NULL)
  cl <- parallel::makeCluster(2L)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  expect_identical(as.data.frame(sweep(cl)), as.data.frame(here))
  expect_true(all(is.finite(here$mae[!is.na(here$mae)])))
})
