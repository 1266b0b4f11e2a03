# Shows that the process footprint stays flat while optimizers are created,
# stepped, serialized, cloned and dropped in a loop: prints the resident set
# size (VmRSS from /proc/self/status, Linux only) every `every` iterations,
# with the number of C caches alive (rmsprop_live_states()).
#
# Usage: Rscript tools/memory-flat.R [iterations=200000] [every=20000] [lib]
#   `lib`: a library to load rmsprop from first (default: .libPaths()).
# Each iteration: a new optimizer with momentum, centering and EMA steps a
# list of 3 variables (110 values) twice; every 10th iteration it is also
# round-tripped through serialize() and the copy stepped, and every 10th
# (offset 5) cloned and the clone stepped; every 100th makes a refused step
# (non-finite gradient). The last columns are R's own heap (gc()) in MB.

args <- commandArgs(trailingOnly = TRUE)
n <- if (length(args) >= 1) as.numeric(args[[1]]) else 200000
every <- if (length(args) >= 2) as.numeric(args[[2]]) else 20000
if (length(args) >= 3) .libPaths(c(args[[3]], .libPaths()))
suppressPackageStartupMessages(library(rmsprop))

rss_kb <- function() {
  status <- readLines("/proc/self/status")
  as.numeric(gsub("[^0-9]", "", grep("^VmRSS:", status, value = TRUE)))
}

vars <- list(w = matrix(0.5, 10, 10), b = rep(0.1, 8), s = c(1, 2))
grads <- list(w = matrix(0.01, 10, 10), b = rep(-0.02, 8), s = c(0.3, -0.4))
bad <- grads
bad$s[[2]] <- NaN

cat(sprintf("rmsprop %s from %s\n", utils::packageVersion("rmsprop"),
            dirname(getNamespaceInfo("rmsprop", "path"))))
cat(sprintf("%10s %12s %12s %12s %12s\n", "iteration", "VmRSS_kB", "live_states",
            "Ncells_MB", "Vcells_MB"))
report <- function(i) {
  g <- gc()
  cat(sprintf("%10d %12.0f %12d %12.1f %12.1f\n", as.integer(i), rss_kb(),
              rmsprop_live_states(), g["Ncells", 2], g["Vcells", 2]))
}
report(0)
t0 <- proc.time()[["elapsed"]]
for (i in seq_len(n)) {
  o <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9, centered = TRUE, use_ema = TRUE)
  v <- o$step(grads, vars)
  v <- o$step(grads, v)
  if (i %% 10 == 0) {
    o2 <- unserialize(serialize(o, NULL))
    v <- o2$step(grads, v)
  }
  if (i %% 10 == 5) {
    o3 <- o$clone()
    v <- o3$step(grads, v)
  }
  if (i %% 100 == 0) try(o$step(bad, v), silent = TRUE)
  if (i %% every == 0) report(i)
}
rm(o, o2, o3, v)
cat("after rm():\n")
report(n)
cat(sprintf("%.1f s, %.1f us per iteration\n", proc.time()[["elapsed"]] - t0,
            1e6 * (proc.time()[["elapsed"]] - t0) / n))
