# Issue 22: a step does not read a variable again when it is the very vector
# the last step returned or updated and the update saw every value it wrote
# finite (src/step.c, "what the last step proved"). Every way a user can put
# a non-finite value into such a variable must still be refused with nothing
# changed, and what the optimizer holds for this is never saved with it.

snapshot <- function(opt) list(opt$variables, opt$iterations, opt$last_learning_rate)

bad_values <- list(NA_real_, NaN, Inf, -Inf)

# The refusal of a variable holding a non-finite value at `pos`, on the
# value path and in place, with the optimizer and the variable unchanged.
expect_refused <- function(opt, g, bad, pos, path = "variable") {
  before <- snapshot(opt)
  copy <- deep_copy(bad)
  err <- expect_error(opt$step(g, bad), class = "rmsprop_error_variable")
  expect_identical(err$path, path)
  expect_identical(err$position, pos)
  if (is.double(unlist(bad))) {
    err <- expect_error(opt$step_in_place(g, bad), class = "rmsprop_error_variable")
    expect_identical(err$position, pos)
  }
  expect_identical(snapshot(opt), before)
  expect_identical(bad, copy)
}

test_that("the common loops give the same numbers as steps on fresh copies", {
  set.seed(22)
  n <- 5000
  x0 <- list(w = rnorm(n), b = rnorm(40), s = rnorm(3))
  grads <- lapply(1:6, function(i) lapply(x0, function(v) rnorm(length(v))))
  for (cfg in list(list(), list(momentum = 0.9, centered = TRUE, use_ema = TRUE,
                                ema_overwrite_frequency = 2),
                   list(gradient_accumulation_steps = 2, weight_decay = 0.01))) {
    a <- do.call(optimizer_rmsprop, c(list(learning_rate = 0.01), cfg))
    b <- do.call(optimizer_rmsprop, c(list(learning_rate = 0.01), cfg))
    c_ <- do.call(optimizer_rmsprop, c(list(learning_rate = 0.01), cfg))
    xa <- x0
    xb <- x0
    xc <- lapply(x0, function(v) v + 0)
    for (g in grads) {
      xa <- a$step(g, xa)                              # the loop that skips the scan
      xb <- b$step(g, lapply(xb, function(v) v + 0))   # always fresh vectors
      c_$step_in_place(g, xc)                          # in place, same vectors
    }
    expect_identical(xa, xb)
    expect_identical(xc, xa)
    expect_identical(a$variables, b$variables)
    expect_identical(c_$variables, a$variables)
    expect_identical(a$finalize_variable_values(xa), b$finalize_variable_values(xb))
  }
})

test_that("assignment into the result is refused, on the value path and in place", {
  for (bad in bad_values) {
    for (n in c(100, 200000)) {
      opt <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5)
      g <- seq(-1, 1, length.out = n)
      x <- opt$step(g, seq(0, 1, length.out = n))
      x <- opt$step(g, x)
      pos <- n - 7
      x[pos] <- bad
      expect_refused(opt, g, x, pos)
      # in place on the caller's own vector
      w <- seq(0, 1, length.out = n)
      ip <- optimizer_rmsprop(learning_rate = 0.01)
      ip$step_in_place(g, w)
      ip$step_in_place(g, w)
      w[3] <- bad
      expect_refused(ip, g, w, 3)
    }
  }
})

test_that("a changed element of a list result, or a replaced one, is refused", {
  for (bad in bad_values) {
    opt <- optimizer_rmsprop(learning_rate = 0.01, use_ema = TRUE)
    g <- list(w = rep(0.5, 300), b = rep(1, 50))
    x <- opt$step(g, list(w = rep(1, 300), b = rep(2, 50)))
    x <- opt$step(g, x)
    y <- x
    y$w[17] <- bad
    expect_refused(opt, g, y, 17, "w")
    y <- x
    y[["b"]][50] <- bad
    expect_refused(opt, g, y, 50, "b")
    y <- x
    y$b <- c(rep(1, 49), bad)
    expect_refused(opt, g, y, 50, "b")
    y <- x
    y[[1]] <- replace(x$w, 300, bad)
    expect_refused(opt, g, y, 300, "w")
    expect_error(opt$finalize_variable_values(y), class = "rmsprop_error_variable")
    expect_true(all(is.finite(unlist(opt$step(g, x)))))
  }
})

test_that("arithmetic on a result, also on a temporary one, is refused", {
  for (bad in bad_values) {
    opt <- optimizer_rmsprop(learning_rate = 0.01)
    g <- rep(1, 1000)
    x <- opt$step(g, seq_len(1000) / 1000)
    expect_refused(opt, g, x * bad, 1)
    expect_refused(opt, g, x + c(rep(0, 999), bad), 1000)
    # A temporary result: arithmetic may reuse the memory of an operand that
    # nothing references; the optimizer's references forbid it.
    before <- snapshot(opt)
    expect_error(opt$step(g, opt$step(g, x) * bad), class = "rmsprop_error_variable")
    expect_identical(opt$iterations, before[[2]] + 1)
    expect_error(opt$step(g, opt$step(g, x) - c(bad, rep(0, 999))),
                 class = "rmsprop_error_variable")
    x <- opt$step(g, x)
    x <- x / 0
    expect_refused(opt, g, x, 1)
  }
})

test_that("a step whose update wrote a non-finite value does not vouch for it", {
  # lr * g overflows: the update writes -Inf; the next step must refuse it,
  # for the optimizer that wrote it and for every other.
  n <- 1000
  g <- rep(2, n)
  opt <- optimizer_rmsprop(learning_rate = 1e308)
  x <- opt$step(g, rep(1, n))
  expect_true(all(x == -Inf))
  expect_refused(opt, g, x, 1)
  w <- rep(1, n)
  opt$step_in_place(g, w)
  expect_true(all(w == -Inf))
  expect_refused(opt, g, w, 1)
  # with EMA overwriting the values: what is written is the average
  ema <- optimizer_rmsprop(learning_rate = 1e308, use_ema = TRUE, ema_overwrite_frequency = 1)
  x <- ema$step(g, rep(1, n))
  expect_true(all(!is.finite(x)))
  expect_refused(ema, g, x, 1)
})

test_that("step_in_place() on a vector another optimizer holds is seen by that optimizer", {
  n <- 5000
  g <- rep(1, n)
  a <- optimizer_rmsprop(learning_rate = 0.01)
  w <- rep(1, n)
  a$step_in_place(g, w)            # a now holds w, proved finite
  shared <- list(w = w)            # another object sharing the vector
  b_list <- optimizer_rmsprop(learning_rate = 1e308)
  b_list$step_in_place(list(w = rep(2, n)), shared)  # writes -Inf into w, through `shared`
  expect_true(all(w == -Inf))
  expect_refused(a, g, w, 1)
  b <- optimizer_rmsprop(learning_rate = 1e308)
  x <- a$step(g, rep(1, n))        # a holds its value result ...
  b$step_in_place(rep(2, n), x)    # ... which b overwrites in place
  expect_refused(a, g, x, 1)

  # More in-place writes since than the log keeps: a scans again.
  x <- a$step(g, rep(1, n))
  b$step_in_place(rep(2, n), x)
  many <- lapply(1:300, function(i) rep(1, 40))
  c_ <- optimizer_rmsprop()
  c_$step_in_place(lapply(many, function(v) v), many)
  expect_refused(a, g, x, 1)

  # A vector shared with another object and then changed there is copied
  # by R: the optimizer's vector stays finite, the changed one is refused.
  w <- rep(1, n)
  a2 <- optimizer_rmsprop(learning_rate = 0.01)
  a2$step_in_place(g, w)
  w2 <- w
  w2[5] <- NaN
  expect_true(all(is.finite(w)))
  expect_refused(a2, g, w2, 5)
  expect_silent(a2$step_in_place(g, w))
})

test_that("variables restored from saveRDS() are read, and nothing held is saved", {
  n <- 1e6
  set.seed(3)
  g <- rnorm(n)
  opt <- optimizer_rmsprop(learning_rate = 0.01)
  x <- opt$step(g, rnorm(n))
  x <- opt$step(g, x)
  f <- tempfile(fileext = ".rds")
  on.exit(unlink(f), add = TRUE)
  bad <- x
  bad[n] <- NaN
  saveRDS(bad, f)
  expect_refused(opt, g, readRDS(f), n)
  # The optimizer saved: its state (a velocity of 8 MB) and its structure,
  # not the results it holds; restored, it reads every variable again.
  bytes <- length(serialize(opt, NULL))
  expect_lt(bytes, 8e6 + 1e5)
  saveRDS(opt, f)
  back <- readRDS(f)
  expect_refused(back, g, bad, n)
  expect_identical(back$step(g, x), opt$step(g, x))
  w <- x + 0
  ip <- optimizer_rmsprop(learning_rate = 0.01)
  ip$step_in_place(g, w)
  expect_lt(length(serialize(ip, NULL)), 8e6 + 1e5)
})

test_that("values changed by C code that follows R's copy rules are refused", {
  r <- file.path(R.home("bin"), "R")
  cc <- strsplit(trimws(system2(r, c("CMD", "config", "CC"), stdout = TRUE)), "[[:space:]]+")[[1]]
  skip_if(!length(cc) || !nzchar(Sys.which(cc[[1]])), "no C compiler")
  dir <- tempfile("poke")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  # Two common forms of the rule: copy unless the vector is known unshared,
  # or unless nothing at all references it.
  writeLines(c(
    "#include <R.h>",
    "#include <Rinternals.h>",
    "SEXP poke_shared(SEXP x, SEXP i, SEXP v) {",
    "  if (MAYBE_SHARED(x)) x = duplicate(x);",
    "  REAL(x)[asInteger(i) - 1] = asReal(v);",
    "  return x;",
    "}",
    "SEXP poke_referenced(SEXP x, SEXP i, SEXP v) {",
    "  if (MAYBE_REFERENCED(x)) x = duplicate(x);",
    "  REAL(x)[asInteger(i) - 1] = asReal(v);",
    "  return x;",
    "}"), file.path(dir, "poke.c"))
  so <- file.path(dir, paste0("poke", .Platform$dynlib.ext))
  out <- suppressWarnings(system2(r, c("CMD", "SHLIB", "-o", shQuote(so),
                                       shQuote(file.path(dir, "poke.c"))),
                                  stdout = TRUE, stderr = TRUE))
  skip_if(!file.exists(so), paste("could not build the test code:", paste(out, collapse = "\n")))
  dll <- dyn.load(so)
  on.exit(dyn.unload(so), add = TRUE)
  for (fn in c("poke_shared", "poke_referenced")) {
    poke <- getNativeSymbolInfo(fn, dll)
    for (bad in bad_values) {
      opt <- optimizer_rmsprop(learning_rate = 0.01)
      g <- rep(1, 500)
      x <- opt$step(g, rep(1, 500))
      expect_refused(opt, g, .Call(poke, x, 7L, bad), 7)
      # on a temporary: the result as nothing but the optimizer holds it
      expect_error(opt$step(g, .Call(poke, opt$step(g, x), 9L, bad)),
                   class = "rmsprop_error_variable")
      w <- rep(1, 500)
      opt$step_in_place(g, w)
      expect_refused(opt, g, .Call(poke, w, 11L, bad), 11)
      expect_true(all(is.finite(w)))
    }
  }
})

test_that("the results an optimizer holds are let go with it", {
  settle <- function() {
    invisible(gc(full = TRUE))
    invisible(gc(full = TRUE))
    rmsprop_memory_info()$in_use_bytes
  }
  base <- settle()
  opt <- optimizer_rmsprop()
  x <- rep(1, 1e5)
  for (i in 1:3) x <- opt$step(rep(1, 1e5), x)
  rm(x)
  held <- settle()
  expect_gte(held - base, 8e5)     # the last result, held by the optimizer
  rm(opt)
  expect_lt(settle() - base, 8e5)
})
