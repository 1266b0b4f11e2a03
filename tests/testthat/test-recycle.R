# Large results come from memory that earlier results gave back (see
# ?rmsprop_memory_info). Recycling must never be visible: a result still
# referenced is never reused, values are exactly those of a step with
# recycling off, and the cache keeps to its limit.

big_n <- 20000L # above the length from which results are recycled

with_recycling <- function(bytes, code) {
  old <- rmsprop_set_recycling(bytes)
  on.exit(rmsprop_set_recycling(old))
  force(code)
}

train <- function(cfg, steps, vars, keep_all = FALSE) {
  opt <- do.call(optimizer_rmsprop, cfg)
  all <- vector("list", steps)
  for (s in seq_len(steps)) {
    g <- lapply(vars, function(v) sin(v * s) + 0.1)
    vars <- opt$step(g, vars)
    if (keep_all && s %% 2 == 0) all[[s]] <- vars # the others become garbage
    if (s %% 5 == 0) invisible(gc()) # collections hand blocks back mid-run
  }
  list(vars = vars, all = all, final = opt$finalize_variable_values(vars))
}

test_that("results with recycling equal the reference and a run without it", {
  set.seed(11)
  vars0 <- list(big = matrix(runif(big_n), 100), small = runif(7))
  cfg <- list(learning_rate = 0.01, momentum = 0.5, centered = TRUE, use_ema = TRUE)
  on <- with_recycling(64 * 2^20, train(cfg, 25, vars0))
  off <- with_recycling(0, train(cfg, 25, vars0))
  expect_identical(on$vars, off$vars)
  expect_identical(on$final, off$final)

  o <- oracle_new(cfg)
  vars <- vars0
  for (s in 1:25) {
    g <- lapply(vars, function(v) sin(v * s) + 0.1)
    r <- oracle_step_like(o, g, vars)
    o <- r$o
    vars <- r$vars
  }
  expect_equal(on$vars, vars, tolerance = 1e-12)
  expect_equal(on$final, relist_like(oracle_finalize(o, flatten_leaves(vars)), vars),
               tolerance = 1e-12)
  expect_identical(dim(on$vars$big), c(100L, 200L))
})

test_that("memory is reused, and never while a result is still referenced", {
  with_recycling(256 * 2^20, {
    before <- rmsprop_memory_info()
    set.seed(12)
    vars0 <- list(w = runif(big_n))
    kept <- train(list(learning_rate = 0.01), 40, vars0, keep_all = TRUE)
    after <- rmsprop_memory_info()
    # the dropped results came back and were reused
    expect_gt(after$reused, before$reused)
    # every result kept alive still holds its own step's values: replay the
    # run without recycling and compare each of the 20 kept results
    replay <- with_recycling(0, train(list(learning_rate = 0.01), 40, vars0, keep_all = TRUE))
    expect_identical(kept$all, replay$all)
  })
})

test_that("the cache keeps to its limit and can be emptied", {
  with_recycling(2^20, { # 1 MiB: one block of 20,000 doubles (160 KB) fits, a 2e5 one does not
    x <- runif(2e5)
    opt <- optimizer_rmsprop()
    for (i in 1:10) {
      x <- opt$step(x * 0.01, x)
      invisible(gc())
    }
    info <- rmsprop_memory_info()
    expect_identical(info$limit_bytes, 2^20)
    expect_lte(info$cached_bytes, 2^20)
  })
  with_recycling(2^20, { # results in use from recycled memory: 1 MiB at most
    invisible(gc())
    base <- rmsprop_memory_info()$in_use_bytes
    opt <- optimizer_rmsprop()
    x <- runif(big_n)
    kept <- list()
    for (i in 1:20) {
      x <- opt$step(x * 0.01, x)
      kept[[i]] <- x
      expect_lte(rmsprop_memory_info()$in_use_bytes, max(base, 2^20))
    }
    rm(kept, x)
    invisible(gc())
    expect_identical(rmsprop_memory_info()$in_use_bytes, base) # all came back
  })
  with_recycling(64 * 2^20, {
    x <- runif(big_n)
    opt <- optimizer_rmsprop()
    for (i in 1:5) x <- opt$step(x * 0.01, x)
    rm(x)
    invisible(gc())
    expect_gt(rmsprop_memory_info()$cached_bytes, 0)
    rmsprop_set_recycling(64 * 2^20) # setting the limit releases the cache
    expect_identical(rmsprop_memory_info()$cached_bytes, 0)
  })
  with_recycling(0, { # off: nothing comes from the cache or goes into it
    before <- rmsprop_memory_info()
    x <- runif(big_n)
    opt <- optimizer_rmsprop()
    for (i in 1:5) x <- opt$step(x * 0.01, x)
    invisible(gc())
    after <- rmsprop_memory_info()
    expect_identical(after$fresh, before$fresh)
    expect_identical(after$reused, before$reused)
    expect_identical(after$cached_bytes, 0)
  })
})

test_that("recycled results are ordinary R vectors", {
  opt <- optimizer_rmsprop()
  x <- opt$step(rep(1, big_n), rep(2, big_n))
  y <- x
  y[1] <- 0 # copy on modify: x is untouched
  expect_equal(x[1], 2 - 0.001 * 1 / sqrt(0.9 * 0 + (1 - 0.9) * 1 + 1e-7))
  expect_identical(y[1], 0)
  expect_identical(unserialize(serialize(x, NULL)), x)
  x[2] <- 5 # modified in place by R, as any vector
  expect_identical(x[2], 5)
  expect_identical(length(c(x, 1)), big_n + 1L)
})

test_that("rmsprop_set_recycling() checks its argument before changing anything", {
  old <- rmsprop_memory_info()$limit_bytes
  for (bad in list(-1, NA_real_, Inf, "1", c(1, 2), NULL, TRUE)) {
    expect_error(rmsprop_set_recycling(bad), class = "rmsprop_error_argument")
    expect_identical(rmsprop_memory_info()$limit_bytes, old)
  }
  expect_error(rmsprop_set_recycling(-1), "max_bytes")
  expect_identical(rmsprop_set_recycling(old), old)
})

test_that("blocks of a size no longer used give way to the sizes in use", {
  with_recycling(3 * 2^20, { # room for one 2.4 MB block or one 1.6 MB one, not both
    drive <- function(n, steps) {
      x <- runif(n)
      opt <- optimizer_rmsprop()
      for (i in 1:steps) {
        x <- opt$step(x * 0.01, x)
        invisible(gc())
      }
    }
    drive(3e5, 6)
    invisible(gc())
    expect_gt(rmsprop_memory_info()$cached_bytes, 2.4e6) # a 3e5-double block waits
    before <- rmsprop_memory_info()
    drive(2e5, 12)
    after <- rmsprop_memory_info()
    expect_gte(after$reused - before$reused, 5) # the new size was recycled
    expect_lte(after$cached_bytes, 3 * 2^20)
  })
})
