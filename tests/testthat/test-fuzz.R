# Hardening (issue 7): nothing R can pass crashes the package, corrupts an
# optimizer's state or leaks; every call returns a correct value or raises a
# classed `rmsprop_error`. The generators live in helper-fuzz.R; a larger run
# is tools/fuzz.R, the memory checks tools/valgrind.sh, tools/sanitizers.sh and
# tools/gctorture.R, the figures tools/HARDENING.md.

fz_report <- function(ctr, title) {
  lines <- fz_format(ctr, title)
  out <- Sys.getenv("RMSPROP_FUZZ_REPORT")
  if (nzchar(out)) cat(lines, sep = "\n", file = out, append = TRUE)
  paste(lines, collapse = "\n")
}

test_that("fuzz: bad and edge inputs give correct values or classed errors, never corruption", {
  # RMSPROP_FUZZ_SCALE shrinks the run under valgrind/sanitizers (default 2).
  scale <- as.numeric(Sys.getenv("RMSPROP_FUZZ_SCALE", "2"))
  res <- fz_run_all(scale = scale, seed = 20240607)
  total <- res$total
  info <- fz_report(total, sprintf("test-fuzz (scale %s, seed 20240607)", format(scale)))
  message(strsplit(info, "\n")[[1]][1])
  expect_gt(total$tried, 1000 * scale)
  expect_gt(total$classed, 500 * scale)
  expect_gt(total$returned, 150 * scale)
  expect_equal(total$corrupt, 0, info = info)
  expect_equal(total$input_changed, 0, info = info)
  expect_equal(total$wrong, 0, info = info)
  expect_equal(total$unclassed, 0, info = info)
})

test_that("fuzz: valid but odd inputs step like a plain-R recomputation", {
  ctr <- fz_run_odd_valid(fz_counter())
  info <- fz_report(ctr, "odd valid inputs")
  expect_equal(ctr$returned, ctr$tried, info = info)
  expect_equal(ctr$wrong, 0, info = info)
})

# ---- regressions for the bugs the fuzzing found (tools/HARDENING.md) -------

test_that("a NULL-gradient warning turned into an error leaves the optimizer unchanged", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  opt$step(list(a = 1, b = 1), list(a = 1, b = 1))
  before <- fz_snapshot(opt)
  expect_error(withCallingHandlers(
    opt$step(list(a = NULL, b = 1), list(a = 1, b = 1)),
    warning = function(w) stop("escalated: ", conditionMessage(w))), "escalated")
  expect_identical(fz_snapshot(opt), before)
  old <- options(warn = 2)
  on.exit(options(old))
  expect_error(opt$step(list(a = NULL, b = 1), list(a = 1, b = 1)))
  expect_identical(fz_snapshot(opt), before)
})

test_that("step_in_place() detects shared variables also next to zero-length ones", {
  for (arrangement in 1:20) {
    x <- c(1, 2)
    vars <- c(list(x, x), lapply(1:4, function(i) numeric(0)))
    vars <- vars[c(3, 1, 4, 5, 2, 6)[order(sample(6))]]
    opt <- optimizer_rmsprop(learning_rate = 0.1)
    opt$build(vars)
    grads <- lapply(vars, function(v) v * 0 + 1)
    expect_error(opt$step_in_place(grads, vars), class = "rmsprop_error_variable")
    expect_identical(x, c(1, 2))
  }
})

test_that("structures nested deeper than R can recurse give a classed error", {
  opt <- optimizer_rmsprop()
  deep <- fz_deep(1000)
  expect_error(opt$step(deep, deep), class = "rmsprop_error")
  expect_identical(opt$iterations, 0)
})

test_that("names in 'bytes' encoding give a classed structure error", {
  opt <- optimizer_rmsprop()
  opt$step(list(a = 1), list(a = 1))
  nm <- "\xff"
  Encoding(nm) <- "bytes"
  v <- stats::setNames(list(1), nm)
  expect_error(opt$step(v, v), class = "rmsprop_error_structure")
  expect_error(optimizer_rmsprop(name = 1, rho = nm), class = "rmsprop_error_argument")
})

test_that("field names in 'bytes' encoding give classed errors on schedules and assignments", {
  # Found by tools/fuzz.R (scale 3): the message sprintf()'d the name.
  nm <- "\xff"
  Encoding(nm) <- "bytes"
  # The methods are called by name, not through do.call(), which would put
  # the string into the call: should the test fail, testthat's report would
  # then fail to deparse it.
  s <- learning_rate_schedule_inverse_time_decay(0.1, 10, 0.5)
  expect_error(rmsprop:::`$.rmsprop_schedule`(s, nm), class = "rmsprop_error_argument")
  expect_error(rmsprop:::`$<-.rmsprop_schedule`(s, nm, 1), class = "rmsprop_error_argument")
  opt <- optimizer_rmsprop()
  expect_error(rmsprop:::`$<-.rmsprop_optimizer`(opt, nm, 1), class = "rmsprop_error_argument")
  expect_error(rmsprop:::`[[<-.rmsprop_optimizer`(opt, nm, 1), class = "rmsprop_error_argument")
})

test_that("classed values in error messages do not dispatch format methods", {
  for (cls in c("rmsprop_optimizer", "rmsprop_schedule", "data.frame", "rmsprop_fit")) {
    x <- structure(0.5, class = cls)
    expect_error(optimizer_rmsprop(rho = x), class = "rmsprop_error_argument")
    expect_error(rmsprop_set_threads(x), class = "rmsprop_error_argument")
  }
})

test_that("rmsprop_set_threads() clamps counts beyond the cores (even beyond the integer range) with a classed warning", {
  on.exit(rmsprop_set_threads(0))
  cores <- rmsprop_kernel_info()$cores
  for (n in c(1e300, .Machine$integer.max + 1, 1e5, cores + 1)) {
    expect_warning(rmsprop_set_threads(n), class = "rmsprop_warning_threads")
    expect_lte(rmsprop_kernel_info()$threads, cores)
  }
  expect_error(rmsprop_set_threads(Inf), class = "rmsprop_error_argument")
})

test_that("a learning-rate function returning a classed value gives a classed error", {
  opt <- optimizer_rmsprop(learning_rate = function() structure(0.1, class = "data.frame"))
  r <- tryCatch(opt$step(1, 1), rmsprop_error = function(e) "classed",
                error = function(e) conditionMessage(e))
  expect_true(is.double(r) || identical(r, "classed"), info = paste(r))
})

test_that("print() of a wrong object with an optimizer class gives a classed error", {
  for (x in list(list(), 1, new.env(), function() 1)) {
    fake <- structure(x, class = "rmsprop_optimizer")
    expect_error(print(fake), class = "rmsprop_error")
  }
})

test_that("an edited saved optimizer never crashes R (momentum < 0 in the C state)", {
  skip_if_not_installed("callr")
  lib <- fz_installed_lib()
  skip_if(is.null(lib), "needs the installed package")
  res <- tryCatch(callr::r(function(lib) {
    suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))
    o <- optimizer_rmsprop()
    o$build(c(1, 2, 3))
    raw <- serialize(o, NULL, xdr = TRUE)
    pat <- writeBin(c(0.9, 0, 1e-07), raw(), endian = "big")
    at <- which(vapply(seq_len(length(raw) - length(pat)),
                       function(i) all(raw[i:(i + length(pat) - 1L)] == pat), TRUE))[[1]]
    raw[at + 8:15] <- writeBin(-0.5, raw(), endian = "big")
    o2 <- unserialize(raw)
    tryCatch({ o2$step(c(1, 1, 1), c(1, 2, 3)); "returned" },
             error = function(e) "error")
  }, args = list(lib = lib)), error = function(e) paste("crashed:", conditionMessage(e)))
  # Refusing the state (a classed error) or ignoring the bad value are both
  # fine; ending the R process is not.
  expect_true(res %in% c("error", "returned"), info = res)
})

# ---- interrupts ---------------------------------------------------------------

test_that("a user interrupt around a step leaves the state fully before or fully after", {
  skip_on_os("windows")
  skip_if_not_installed("callr")
  lib <- fz_installed_lib()
  skip_if(is.null(lib), "needs the installed package")
  tab <- fz_interrupt_trials(lib, trials = 12, n = 4e5, seed = 7)
  info <- paste(names(tab), tab, sep = ": ", collapse = "; ")
  message("interrupt trials: ", info)
  expect_false(any(grepl("PARTIAL", names(tab))), info = info)
  expect_equal(sum(tab), 12)
})

test_that("an interrupt inside the learning-rate function leaves the optimizer unbuilt", {
  skip_on_os("windows")
  skip_if_not_installed("callr")
  lib <- fz_installed_lib()
  skip_if(is.null(lib), "needs the installed package")
  res <- callr::r(function(lib) {
    suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))
    interrupting <- function() {
      tools::pskill(Sys.getpid(), tools::SIGINT)
      Sys.sleep(2)
      0.1
    }
    first <- optimizer_rmsprop(learning_rate = interrupting)
    before1 <- list(first$variables, first$iterations)
    seen1 <- tryCatch(first$step(c(1, 2), c(1, 2)), interrupt = function(e) "interrupted")
    later <- optimizer_rmsprop(learning_rate = function() 0.1)
    later$step(c(1, 2), c(1, 2))
    later$learning_rate <- interrupting
    before2 <- list(later$variables, later$iterations)
    seen2 <- tryCatch(later$step(c(1, 2), c(1, 2)), interrupt = function(e) "interrupted")
    list(seen1, identical(before1, list(first$variables, first$iterations)),
         seen2, identical(before2, list(later$variables, later$iterations)))
  }, args = list(lib = lib))
  expect_identical(res, list("interrupted", TRUE, "interrupted", TRUE))
})
