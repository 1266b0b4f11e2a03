# Runs the test suite against the installed package and ends with one line
# "N passed, N failed" (what CI reads). Exit status 1 when anything failed.
# Usage: Rscript tools/run-tests.R [filter]
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages({
  library(testthat)
  library(rmsprop)
})
dir <- if (dir.exists("tests/testthat")) "tests/testthat" else
  stop("run this from the package's source directory")
results <- as.data.frame(test_dir(dir, filter = if (length(args)) args[[1]] else NULL,
                                  reporter = CheckReporter$new(),
                                  stop_on_failure = FALSE, package = "rmsprop",
                                  load_package = "installed"))
passed <- sum(results$passed)
failed <- sum(results$failed) + sum(results$error)
skipped <- sum(results$skipped)
cat(sprintf("%d passed, %d failed, %d skipped\n", passed, failed, skipped))
quit(status = if (failed > 0) 1L else 0L)
