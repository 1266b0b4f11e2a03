# Files written by earlier releases (SPEC B): optimizers saved with saveRDS()
# by rmsprop 0.1.0 must load with this version and continue bit for bit as
# 0.1.0 continued them. The fixtures and the expected numbers were written by
# tools/make-fixtures-0.1.0.R running the 0.1.0 code; they are never
# regenerated. Helpers (comparable_config(), observe_optimizer(),
# continue_steps()) are in helper-fixtures.R.

fixture_dir <- test_path("fixtures", "v0.1.0")
expected_0.1.0 <- readRDS(file.path(fixture_dir, "expected.rds"))
fixture_names <- setdiff(names(expected_0.1.0), "meta")

read_fixture <- function(name) readRDS(file.path(fixture_dir, paste0(name, ".rds")))

# expect_identical() for a readable difference, identical() for the verdict
# (bit for bit, no tolerance).
expect_same <- function(object, expected, label) {
  expect_identical(object, expected, label = label)
  expect_true(identical(object, expected, num.eq = FALSE, single.NA = TRUE), label = label)
}

check_against_0.1.0 <- function(opt, exp, label) {
  expect_same(observe_optimizer(opt, exp$vars), exp$at_load, paste(label, "as loaded"))
  expect_same(continue_steps(opt, exp$vars, exp$grads), exp$steps, paste(label, "next 3 steps"))
  after <- observe_optimizer(opt, exp$steps[[length(exp$steps)]])
  expect_identical(names(after$variables), names(exp$after$variables),
                   label = paste(label, "names of $variables"))
  expect_identical(after$variables, exp$after$variables, label = paste(label, "$variables"))
  expect_identical(after$iterations, exp$after$iterations, label = paste(label, "$iterations"))
  expect_same(after, exp$after, paste(label, "after 3 steps"))
}

test_that("the 0.1.0 fixtures are all there and small", {
  expect_identical(expected_0.1.0$meta$package_version, "0.1.0")
  files <- list.files(fixture_dir)
  expect_setequal(files, c("expected.rds", paste0(fixture_names, ".rds")))
  expect_lt(sum(file.size(file.path(fixture_dir, files))), 100 * 1024)
})

test_that("optimizers saved by 0.1.0 load and continue exactly as 0.1.0 did", {
  for (name in fixture_names) {
    opt <- read_fixture(name)
    exp <- expected_0.1.0[[name]]
    expect_true(inherits(opt, c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer")),
                label = name)
    expect_no_error(format(opt))
    # format() may read the learning rate; the expected values did not: start again.
    opt <- read_fixture(name)
    check_against_0.1.0(opt, exp, name)
  }
})

test_that("a 0.1.0 optimizer saved again by this version continues identically", {
  for (name in fixture_names) {
    f <- tempfile(fileext = ".rds")
    saveRDS(read_fixture(name), f)
    opt <- readRDS(f)
    unlink(f)
    check_against_0.1.0(opt, expected_0.1.0[[name]], paste(name, "(saved again)"))
  }
})

test_that("a clone of a loaded 0.1.0 optimizer continues identically and independently", {
  for (name in fixture_names) {
    opt <- read_fixture(name)
    copy <- opt$clone()
    check_against_0.1.0(copy, expected_0.1.0[[name]], paste(name, "(clone)"))
    # The original did not move while the clone stepped.
    check_against_0.1.0(opt, expected_0.1.0[[name]], paste(name, "(original after clone)"))
  }
})
