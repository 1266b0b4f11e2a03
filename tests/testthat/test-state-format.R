# Issue 13, item 3: the state list is named and versioned, its layout defined
# once (src/state_layout.h) and read by name in R. Files of 0.1.0 migrate
# (test-format-migration.R); a format this release does not know is a
# classed error naming both formats, never garbage.

state_of <- function(opt) .Call(C_state_get, private_of(opt)$ptr)

test_that("the state list is named as the layout says, with its format", {
  layout <- state_layout()
  opt <- optimizer_rmsprop(momentum = 0.5, centered = TRUE, use_ema = TRUE,
                           gradient_accumulation_steps = 2)
  st <- state_of(opt)
  expect_identical(names(st), layout$fields)
  expect_identical(st$format, layout$format)
  expect_identical(st$format, 2L)
  expect_identical(names(st$config), layout$config)
  expect_identical(unname(st$config[["momentum"]]), 0.5)
  expect_identical(st$last_learning_rate, NA_real_)
  opt$step(c(1, 2), c(3, 4))
  st <- state_of(opt)
  for (slot in c("velocity", "momentum", "average_gradient", "ema", "accumulator")) {
    expect_identical(length(st[[slot]]), 2L, label = slot)
  }
  # The configuration names are optimizer_rmsprop()'s arguments.
  expect_true(all(layout$config %in% names(formals(optimizer_rmsprop))))
})

# The bytes of a saved optimizer with every integer 2 of length one (the
# state's `format` field among them) changed into `value`: what a file of
# another format looks like to this release.
forge_format <- function(opt, value) {
  raw <- serialize(opt, NULL, xdr = TRUE)
  two <- as.raw(c(0, 0, 0, 0x0d, 0, 0, 0, 1, 0, 0, 0, 2))
  n <- length(two)
  hits <- which(vapply(seq_len(length(raw) - n + 1L),
                       function(i) identical(raw[i:(i + n - 1L)], two), logical(1)))
  expect_gt(length(hits), 0)
  for (i in hits) raw[i + n - 1L] <- as.raw(value)
  unserialize(raw)
}

test_that("a file of a newer format is refused, naming both formats", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  v <- opt$step(c(1, 2), c(1, 2))
  newer <- forge_format(opt, 3L)
  err <- expect_error(newer$step(c(1, 2), v), class = "rmsprop_error_format")
  expect_match(conditionMessage(err), "state format 3", fixed = TRUE)
  expect_match(conditionMessage(err), "formats 1 to 2", fixed = TRUE)
  expect_error(newer$variables, class = "rmsprop_error_format")
  # The original is untouched, and a format no release wrote is refused too.
  expect_identical(opt$iterations, 1)
  broken <- forge_format(opt, 0L)
  err <- expect_error(broken$step(c(1, 2), v), class = "rmsprop_error_format")
  expect_match(conditionMessage(err), "not in any format", fixed = TRUE)
})
