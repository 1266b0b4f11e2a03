# Files written by earlier releases (SPEC B): optimizers saved with saveRDS()
# by rmsprop 0.1.0 and 0.2.0 must load with this version and continue bit
# for bit as that release continued them (0.2.0's objects carried their
# methods as closures; today's are data only and take the installed
# package's methods). The fixtures and the expected numbers were written by
# tools/make-fixtures.R running that release's code; they are never
# regenerated. Helpers (comparable_config(), observe_optimizer(),
# continue_steps()) are in helper-fixtures.R.

# expect_identical() for a readable difference, identical() for the verdict
# (bit for bit, no tolerance).
expect_same <- function(object, expected, label) {
  expect_identical(object, expected, label = label)
  expect_true(identical(object, expected, num.eq = FALSE, single.NA = TRUE), label = label)
}

check_against_release <- function(opt, exp, label) {
  expect_same(observe_optimizer(opt, exp$vars), exp$at_load, paste(label, "as loaded"))
  expect_same(continue_steps(opt, exp$vars, exp$grads), exp$steps, paste(label, "next 3 steps"))
  after <- observe_optimizer(opt, exp$steps[[length(exp$steps)]])
  expect_identical(names(after$variables), names(exp$after$variables),
                   label = paste(label, "names of $variables"))
  expect_identical(after$variables, exp$after$variables, label = paste(label, "$variables"))
  expect_identical(after$iterations, exp$after$iterations, label = paste(label, "$iterations"))
  expect_same(after, exp$after, paste(label, "after 3 steps"))
}

for (release in c("0.1.0", "0.2.0")) local({
fixture_dir <- test_path("fixtures", paste0("v", release))
expected <- readRDS(file.path(fixture_dir, "expected.rds"))
fixture_names <- setdiff(names(expected), "meta")

read_fixture <- function(name) readRDS(file.path(fixture_dir, paste0(name, ".rds")))

test_that(sprintf("the %s fixtures are all there and small", release), {
  expect_identical(expected$meta$package_version, release)
  files <- list.files(fixture_dir)
  expect_setequal(files, c("expected.rds", paste0(fixture_names, ".rds")))
  expect_lt(sum(file.size(file.path(fixture_dir, files))), 100 * 1024)
})

test_that(sprintf("optimizers saved by %s load and continue exactly as %s did", release, release), {
  for (name in fixture_names) {
    opt <- read_fixture(name)
    exp <- expected[[name]]
    expect_true(inherits(opt, c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer")),
                label = name)
    expect_no_error(format(opt))
    # format() may read the learning rate; the expected values did not: start again.
    opt <- read_fixture(name)
    check_against_release(opt, exp, paste(release, name))
  }
})

test_that(sprintf("a %s optimizer saved again by this version continues identically", release), {
  for (name in fixture_names) {
    f <- tempfile(fileext = ".rds")
    saveRDS(read_fixture(name), f)
    opt <- readRDS(f)
    unlink(f)
    check_against_release(opt, expected[[name]], paste(release, name, "(saved again)"))
  }
})

test_that(sprintf("a clone of a loaded %s optimizer continues identically and independently", release), {
  for (name in fixture_names) {
    opt <- read_fixture(name)
    copy <- opt$clone()
    check_against_release(copy, expected[[name]], paste(release, name, "(clone)"))
    # The original did not move while the clone stepped.
    check_against_release(opt, expected[[name]], paste(release, name, "(original after clone)"))
  }
})
})
