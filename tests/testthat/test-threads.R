# Thread counts (issue 23): no request, from R or from the environment, can
# make a parallel region ask for more threads than there are cores or than
# the work needs. 100,000 threads used to overflow the C stack in the
# gradient norm's region, and 40,000-60,000 made libgomp fail and R exit.
# The huge requests run in a child process, so a regression is a failed
# test, not a dead test run.

child_libs <- function() unique(c(dirname(getNamespaceInfo("rmsprop", "path")), .libPaths()))

test_that("rmsprop_kernel_info() reports the cores, and the threads never exceed them", {
  info <- rmsprop_kernel_info()
  expect_true(is.integer(info$cores) && info$cores >= 1L)
  expect_true(info$threads >= 1L && info$threads <= info$cores)
})

test_that("a request beyond the cores is clamped with a classed warning, and steps still agree", {
  on.exit(rmsprop_set_threads(0))
  cores <- rmsprop_kernel_info()$cores
  w <- expect_warning(rmsprop_set_threads(1e5), class = "rmsprop_warning_threads")
  expect_identical(w$requested, 1e5)
  expect_identical(w$cores, cores)
  expect_lte(rmsprop_kernel_info()$threads, cores)
  expect_silent(rmsprop_set_threads(cores))
  expect_error(rmsprop_set_threads(-1), class = "rmsprop_error_argument")
  expect_error(rmsprop_set_threads(2.5), class = "rmsprop_error_argument")
})

test_that("100,000 threads asked for (from R, from C, from the environment) neither crash nor change a result", {
  skip_if_not_installed("callr")
  run <- function(how) {
    suppressPackageStartupMessages(library(rmsprop))
    set.seed(1)
    x <- runif(2e6)
    g <- runif(2e6) - 0.5
    one_thread <- {
      rmsprop_set_threads(1)
      o <- optimizer_rmsprop(global_clipnorm = 1, momentum = 0.5)
      list(o$step(g, x), o$step(g, x))
    }
    rmsprop_set_threads(0)
    if (how == "R") suppressWarnings(rmsprop_set_threads(1e5))
    if (how == "C") .Call(getFromNamespace("C_set_threads", "rmsprop"), 100000L)
    many <- lapply(list(list(global_clipnorm = 1, momentum = 0.5),
                        list(clipnorm = 1, momentum = 0.5)), function(cfg) {
      o <- do.call(optimizer_rmsprop, cfg)
      r <- list(o$step(g, x), o$step(g, x))
      y <- x + 0
      o2 <- do.call(optimizer_rmsprop, cfg)
      o2$step_in_place(g, y)
      bad <- tryCatch(o$step(replace(g, 1999999, NaN), x), rmsprop_error = function(e) "refused")
      list(r = r, in_place = y, bad = bad)
    })
    list(threads = rmsprop_kernel_info()$threads, cores = rmsprop_kernel_info()$cores,
         same = identical(many[[1]]$r, one_thread), many = many)
  }
  for (how in c("R", "C", "env")) {
    env <- if (how == "env") c(RMSPROP_NUM_THREADS = "100000", OMP_NUM_THREADS = "60000") else
      character()
    res <- callr::r(run, list(how), libpath = child_libs(), env = c(callr::rcmd_safe_env(), env))
    expect_lte(res$threads, res$cores)
    expect_true(res$same, label = paste(how, "same result as one thread"))
    for (m in res$many) {
      expect_identical(m$in_place, m$r[[1]])
      expect_identical(m$bad, "refused")
    }
  }
})
