# Ctrl-C (SIGINT) in a script: minimize() writes the checkpoint and ends the
# script with a non-zero status, and running the script again resumes to the
# result of a run that was never interrupted.

test_that("SIGINT ends an Rscript run with an error after writing the checkpoint", {
  skip_on_cran()
  skip_if_not_installed("processx")
  skip_on_os("windows")
  dir <- tempfile("sigint-")
  dir.create(dir)
  out <- tempfile(fileext = ".rds")
  mark <- tempfile()
  script <- tempfile(fileext = ".R")
  writeLines(c(
    sprintf(".libPaths(%s)", paste(deparse(.libPaths()), collapse = "")),
    "suppressPackageStartupMessages(library(rmsprop))",
    "a <- commandArgs(TRUE)",
    "fn <- function(p) sum((p - 3)^2)",
    "gr <- function(p) {",
    "  if (!file.exists(a[3])) file.create(a[3])",
    "  Sys.sleep(0.01)   # nearly all of a step: the interrupt lands between steps",
    "  2 * (p - 3)",
    "}",
    "fit <- minimize(c(0, 0), fn, gr, steps = 400, progress = FALSE,",
    "                callbacks = list(callback_backup_and_restore(a[1], save_freq = 1000)))",
    "saveRDS(list(par = fit$par, resumed_from = fit$resumed_from), a[2])"), script)
  rscript <- file.path(R.home("bin"), "Rscript")
  p <- processx::process$new(rscript, c(script, dir, out, mark), stderr = "|", stdout = "|")
  t0 <- Sys.time()
  while (!file.exists(mark) && p$is_alive() && Sys.time() - t0 < 30) Sys.sleep(0.05)
  Sys.sleep(0.5)   # some steps, fewer than the first periodic save
  expect_true(p$is_alive())
  p$interrupt()
  p$wait(30000)
  for (i in 1:100) if (is.na(p$get_exit_status())) Sys.sleep(0.1) else break
  expect_false(p$is_alive())
  expect_true(p$get_exit_status() != 0)
  err <- p$read_all_error()
  expect_match(err, "interrupted after step [0-9]+; the checkpoint in .* holds that step")
  expect_true(file.exists(file.path(dir, "rmsprop-checkpoint.rds")))
  expect_false(file.exists(out))
  # the same script again resumes and finishes
  q <- processx::run(rscript, c(script, dir, out, mark), error_on_status = FALSE)
  expect_identical(q$status, 0L)
  res <- readRDS(out)
  expect_true(res$resumed_from > 0L)
  ref <- minimize(c(0, 0), function(p) sum((p - 3)^2), function(p) 2 * (p - 3), steps = 400,
                  progress = FALSE)
  expect_identical(res$par, ref$par)
})
