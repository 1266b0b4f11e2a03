# C hygiene (issue 13, item 6): regressions for what the audit of src/*.c
# found. Each case is harmless in an ordinary build and shows up under the
# sanitizers or valgrind (tools/sanitizers.sh, tools/valgrind.sh), so the
# tests here check the results and the classed errors, and the tools check
# the memory. Uses rmsprop::: internals to reach what only an edited saved
# file could contain.

test_that("zero-length integer and logical variables and gradients are not NULL gradients", {
  # leaf_doubles() gave R_alloc(0)'s NULL for them: a zero-length integer or
  # logical gradient counted as a NULL gradient (a warning; all of them: an
  # error), and copy_structure() copied from NULL.
  vars <- list(a = 1, b = integer(0), c = logical(0))
  grads <- list(a = 1, b = integer(0), c = logical(0))
  opt <- optimizer_rmsprop(use_ema = TRUE)
  expect_no_warning(out <- opt$step(grads, vars))
  expect_identical(out$b, numeric(0))
  expect_identical(out$c, numeric(0))
  expect_no_warning(out <- opt$step(grads, out))
  expect_identical(optimizer_rmsprop()$step(integer(0), integer(0) + 0), numeric(0))
  expect_identical(optimizer_rmsprop()$step(list(logical(0)), list(integer(0)))[[1]], numeric(0))
  fin <- opt$finalize_variable_values(vars)
  expect_identical(fin$b, numeric(0))
  expect_identical(fin$c, numeric(0))
  # A NULL gradient for them takes the EMA-only road.
  out <- suppressWarnings(opt$step(list(a = 1, b = NULL, c = NULL), vars))
  expect_identical(out$b, numeric(0))
  expect_identical(opt$iterations, 3)
})

test_that("a skeleton leaf that is not a whole length is a state error, never a crash", {
  # walk() cast the leaf's double to an integer before comparing (undefined
  # for NaN and huge values).
  opt <- optimizer_rmsprop()
  opt$step(c(1, 2), c(1, 2))
  private <- rmsprop:::private_of(opt)
  good <- private$skeleton
  state <- opt$variables
  for (bad in list(NaN, NA_real_, Inf, -Inf, 1e300, -2, 2.5, 2 + 2^-40)) {
    sk <- good
    sk[] <- bad
    private$skeleton <- sk
    expect_error(opt$step(c(1, 2), c(1, 2)), class = "rmsprop_error_state", label = format(bad))
    expect_error(opt$finalize_variable_values(c(1, 2)), class = "rmsprop_error_state")
    expect_identical(opt$variables, state)
  }
  private$skeleton <- good
  expect_equal(opt$iterations, 1)
  expect_length(opt$step(c(1, 2), c(1, 2)), 2)
})

test_that("a saved state list with names but no elements is refused, not read past its end", {
  # state_format() read element 1 of a list after checking only its names.
  # An external pointer as unserialize() makes it (NULL address), whose
  # protected list is empty yet named "format".
  hdr <- "A\n3\n262658\n197888\n5\nUTF-8\n"
  forged <- paste0(hdr, "22\n", "531\n0\n",
                   "1026\n1\n262153\n5\nnames\n16\n1\n262153\n6\nformat\n254\n",
                   "1\n262153\n13\nrmsprop_state\n")
  ptr <- unserialize(charToRaw(forged))
  expect_true(inherits(ptr, "externalptr"))
  opt <- optimizer_rmsprop()
  opt$step(1, 1)
  private <- rmsprop:::private_of(opt)
  good <- private$ptr
  private$ptr <- ptr
  expect_error(opt$step(1, 1), class = "rmsprop_error_format")
  expect_error(opt$variables, class = "rmsprop_error_format")
  private$ptr <- good
  expect_equal(opt$iterations, 1)
})

test_that("step_in_place() with a gradient that is another variable gives step()'s result", {
  # check_in_place() refused variables sharing memory, but not a gradient
  # backed by another variable: the update of that variable changed the
  # gradient before it was read (or after the global norm was taken).
  configs <- list(list(), list(global_clipnorm = 0.5), list(clipnorm = 0.1, momentum = 0.9),
                  list(use_ema = TRUE, centered = TRUE))
  for (cfg in configs) {
    label <- paste(names(cfg), collapse = ", ")
    by_value <- do.call(optimizer_rmsprop, c(cfg, learning_rate = 0.1))
    in_place <- do.call(optimizer_rmsprop, c(cfg, learning_rate = 0.1))
    x0 <- c(1, 2, 3)
    y0 <- c(-4, 5, 6)
    expected <- by_value$step(list(a = y0, b = x0, c = y0), list(a = x0, b = y0, c = c(1, 1, 1)))
    x <- x0 + 0
    y <- y0 + 0
    z <- c(1, 1, 1) + 0
    in_place$step_in_place(list(a = y, b = x, c = y), list(a = x, b = y, c = z))
    expect_identical(list(a = x, b = y, c = z), expected, label = label)
    expect_identical(in_place$variables, by_value$variables, label = label)
    # A gradient that is its own variable needs no copy and agrees too.
    expected <- by_value$step(list(a = x, b = y, c = z), list(a = x, b = y, c = z))
    in_place$step_in_place(list(a = x, b = y, c = z), list(a = x, b = y, c = z))
    expect_identical(list(a = x, b = y, c = z), expected, label = label)
  }
})
