# Finalizers run: rmsprop_live_states() counts the C caches alive (one per
# optimizer that has been used since it was created or restored). Dropping
# optimizers and collecting garbage must bring the count back to where it was,
# for fresh, restored (readRDS/unserialize) and cloned optimizers alike.

settle <- function() {
  invisible(gc(full = TRUE))
  invisible(gc(full = TRUE))
  rmsprop_live_states()
}

test_that("10,000 optimizers created, stepped and dropped are all finalized", {
  baseline <- settle()
  peak <- 0L
  for (i in seq_len(10000)) {
    o <- optimizer_rmsprop(learning_rate = 0.01, momentum = if (i %% 2) 0.9 else 0,
                           centered = i %% 3 == 0, use_ema = i %% 5 == 0)
    w <- o$step(c(0.1, -0.2), c(1, 2))
    if (i %% 1000 == 0) peak <- max(peak, rmsprop_live_states() - baseline)
  }
  expect_gte(peak, 1L)                 # the caches did exist
  expect_gte(rmsprop_live_states(), baseline + 1L)   # `o` is still alive
  rm(o, w)
  expect_identical(settle(), baseline)
})

test_that("restored optimizers get a C cache when used and are finalized when dropped", {
  baseline <- settle()
  o <- optimizer_rmsprop(momentum = 0.9, gradient_accumulation_steps = 2)
  o$step(list(a = 1, b = c(1, 2)), list(a = 0, b = c(0, 0)))
  f <- tempfile(fileext = ".rds")
  on.exit(unlink(f), add = TRUE)
  saveRDS(o, f)
  raw <- serialize(o, NULL)
  rm(o)
  expect_identical(settle(), baseline)

  restored <- lapply(1:100, function(i) if (i %% 2) readRDS(f) else unserialize(raw))
  # nothing is allocated in C until a restored optimizer is used ...
  expect_identical(rmsprop_live_states(), baseline)
  for (r in restored) r$step(list(a = 1, b = c(1, 2)), list(a = 0, b = c(0, 0)))
  # ... then each one has exactly one cache, however often it is used
  for (r in restored) r$step(list(a = 1, b = c(1, 2)), list(a = 0, b = c(0, 0)))
  expect_identical(rmsprop_live_states(), baseline + 100L)
  rm(restored, r)
  expect_identical(settle(), baseline)

  # many cycles of restore, use, drop
  for (i in 1:2000) {
    r <- unserialize(raw)
    invisible(r$iterations)
  }
  rm(r)
  expect_identical(settle(), baseline)
})

test_that("clones and their originals are finalized independently", {
  baseline <- settle()
  a <- optimizer_rmsprop(use_ema = TRUE)
  a$step(1, 2)
  clones <- lapply(1:50, function(i) a$clone())
  expect_identical(rmsprop_live_states(), baseline + 51L)
  rm(a)
  expect_identical(settle(), baseline + 50L)
  expect_identical(clones[[1]]$iterations, 1)   # still works without the original
  rm(clones)
  expect_identical(settle(), baseline)
})

test_that("optimizers wrapped by optimizer_loss_scale() are finalized", {
  skip_if_not("optimizer_loss_scale" %in% getNamespaceExports("rmsprop"),
              "optimizer_loss_scale() is not available (yet)")
  baseline <- settle()
  for (i in 1:2000) {
    ls <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 4, dynamic_growth_steps = 2)
    w <- suppressWarnings(ls$step(if (i %% 3) c(4, 8) else c(Inf, 1), c(1, 2)))
  }
  rm(ls, w)
  expect_identical(settle(), baseline)
})

test_that("an error during a step or a load leaks nothing", {
  baseline <- settle()
  for (i in 1:500) {
    o <- optimizer_rmsprop()
    try(o$step(c(NaN, 1), c(1, 2)), silent = TRUE)        # refused first step
    o$step(c(1, 1), c(1, 2))
    try(o$step(list(1), c(1, 2)), silent = TRUE)          # structure error
    try(o$load_variables(list(x = 1)), silent = TRUE)     # load error
  }
  rm(o)
  expect_identical(settle(), baseline)
})
