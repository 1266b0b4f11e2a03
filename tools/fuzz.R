# The large fuzz run (issue 7): the generators of tests/testthat/helper-fuzz.R
# at a larger scale, over many seeds, each batch in its own R process (callr)
# so that a crash is counted rather than ending the run; plus interrupt
# trials and bit flips in saved optimizers (issue 23). Prints the figures
# for tools/HARDENING.md.
# Usage, from the package source directory:
#   Rscript tools/fuzz.R [batches = 20] [scale = 4] [lib]
args <- commandArgs(trailingOnly = TRUE)
batches <- if (length(args) >= 1) as.integer(args[[1]]) else 20L
scale <- if (length(args) >= 2) as.numeric(args[[2]]) else 4
lib <- if (length(args) >= 3) args[[3]] else dirname(find.package("rmsprop"))
helper <- normalizePath("tests/testthat/helper-fuzz.R")
suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))
source(helper)

total <- fz_counter()
crashes <- 0L
harness_errors <- 0L
t0 <- proc.time()[["elapsed"]]
for (b in seq_len(batches)) {
  res <- tryCatch(callr::r(function(lib, helper, scale, seed) {
    suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))
    source(helper)
    fz_run_all(scale = scale, seed = seed)$total
  }, args = list(lib = lib, helper = helper, scale = scale, seed = 1000L + b)),
  error = function(e) e)
  if (inherits(res, "error")) {
    msg <- conditionMessage(res)
    died <- grepl("crash|exit status|killed|signal", msg, ignore.case = TRUE) ||
      !inherits(res, "callr_error") || is.null(res$parent)
    if (died) crashes <- crashes + 1L else harness_errors <- harness_errors + 1L
    cat(sprintf("batch %d (seed %d): %s: %s\n", b, 1000L + b,
                if (died) "the R process died" else "harness error", msg))
    next
  }
  if (!is.environment(res) || !is.numeric(res$tried)) {
    harness_errors <- harness_errors + 1L
    cat(sprintf("batch %d: unexpected result of class %s\n", b, class(res)[1]))
    next
  }
  total <- fz_add(total, res)
  cat(sprintf("batch %d: %s\n", b, fz_format(res, "fuzz")[[1]]))
}
tab <- fz_interrupt_trials(lib, trials = 40, n = 1e6, seed = 11, max_delay = 0.005)
# Bit flips in saved optimizers (issue 23): 500 trials per batch, seeds
# after the test suite's.
flips <- fz_run_flip_trials(500L * batches, unique(c(lib, .libPaths())), first = 100001L)
flip_bad <- setdiff(names(flips$outcomes), c("unreadable", "foreign", "classed", "working"))
cat("\n", sep = "")
cat(fz_format(total, sprintf("TOTAL %d batches x scale %s", batches, format(scale))), sep = "\n")
cat(sprintf("crashes (R processes that died): %d of %d batches; harness errors %d\n",
            crashes, batches, harness_errors))
cat("interrupt trials: ", paste(names(tab), tab, sep = " ", collapse = "; "), "\n", sep = "")
cat(sprintf("bit flips (%d trials): %s; crashes inside base R's unserialize(): %d%s; crashes after it (in rmsprop's handling): %d\n",
            flips$trials, paste(names(flips$outcomes), flips$outcomes, sep = " ", collapse = ", "),
            flips$crashes[["read"]],
            if (length(flips$crashed_at)) paste0(" (seeds ", paste(flips$crashed_at, collapse = ", "), ")") else "",
            flips$crashes[["use"]]))
cat(sprintf("elapsed %.0f s\n", proc.time()[["elapsed"]] - t0))
quit(status = if (crashes > 0 || harness_errors > 0 || fz_failures(total) > 0 ||
                  any(grepl("PARTIAL", names(tab))) || flips$crashes[["use"]] > 0 ||
                  length(flip_bad) > 0) 1L else 0L)
