# The engines side by side, in one run: the README's mini-batch pattern
# (logistic regression 50,000 x 10, shuffled batches of 1024 rows, 3 epochs,
# 147 steps; bench/problem-logistic.R) on 2 local workers, per step, on
#   - one process (no engine) and "sequential" with 2 shards (no workers),
#   - a PSOCK cluster (parallel::makeCluster()) through parallel's calls,
#   - a cluster from mirai::make_cluster(2) (the same calls),
#   - future::plan(multisession, workers = 2),
#   - engine = "mirai" on mirai::daemons(2),
#   - and, given a library holding rmsprop 0.2.0 (the release whose PSOCK
#     engine wrote to the workers' sockets itself), that direct transport,
#     run in a second R process (callr) in the same round robin.
# Then a step with no work whose gradient has 1,000 or 100,000 numbers, and
# whether every trajectory is identical to "sequential" with 2 shards.
#
# Timing: the candidates run round robin (one run of each in turn, `reps`
# times), so changes in the machine's load hit them alike; per-step times
# are medians of the time between the callbacks of consecutive steps.
# Workers are started before timing. Nothing here asserts timings.
#
#   Rscript bench/bench-engines.R [lib] [lib-0.2.0]
#   lib:       the library rmsprop is installed in ("" for the usual paths)
#   lib-0.2.0: a library with rmsprop 0.2.0 (optional; for the direct
#              transport), e.g.
#                git -C . worktree add /tmp/r020 30b4ff0
#                R CMD INSTALL -l /tmp/lib020 /tmp/r020

args <- commandArgs(trailingOnly = TRUE)
lib <- if (length(args) && nzchar(args[[1]])) args[[1]] else NULL
old_lib <- if (length(args) > 1L) args[[2]] else NULL
suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))
for (p in c("mirai", "future")) {
  if (!requireNamespace(p, quietly = TRUE)) stop("this benchmark needs the ", p, " package")
}
reps <- 7L

load_avg <- function() {
  x <- tryCatch(readLines("/proc/loadavg", warn = FALSE), error = function(e) "")
  paste(strsplit(x, " ")[[1]][1:3], collapse = " ")
}
cat(sprintf("R %s, %d cores, mirai %s, future %s, load average before: %s\n\n", getRversion(),
            parallel::detectCores(), packageVersion("mirai"), packageVersion("future"),
            load_avg()))

here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
source(file.path(here, "problem-logistic.R"))
small <- logistic(50000, 10)

# One minimize() run: the seconds between consecutive steps, and the fit.
# (Also evaluated in the callr session, so it names everything it uses.)
timed_run <- function(data, engine, fn, gr, batch_size = 1024, epochs = 3) {
  now <- function() as.numeric(Sys.time())
  stamps <- numeric(0)
  cb <- function(info) {
    stamps[info$step] <<- now()
    TRUE
  }
  set.seed(2)
  fit <- rmsprop::minimize(numeric(ncol(data) - 1), fn, gr, data = data,
                           batch_size = batch_size, epochs = epochs, engine = engine,
                           callback = cb, optimizer = rmsprop::optimizer_rmsprop(0.01))
  list(steps = diff(stamps), fit = fit)
}

cl <- parallel::makeCluster(2)
mcl <- mirai::make_cluster(2)
mirai::daemons(2)
old_plan <- future::plan(future::multisession, workers = 2)
on.exit({
  parallel::stopCluster(cl)
  parallel::stopCluster(mcl)
  mirai::daemons(0)
  future::plan(old_plan)
}, add = TRUE)
invisible(future::value(future::future(NULL)))  # the future workers are up
invisible(mirai::everywhere(NULL)[])             # the daemons are up

# The direct transport of 0.2.0, in a second R process with its own cluster.
old <- NULL
if (!is.null(old_lib) && requireNamespace("callr", quietly = TRUE)) {
  old <- callr::r_session$new()
  old$run(function(lib, data) {
    library(rmsprop, lib.loc = lib)
    assign("cl", parallel::makeCluster(2), globalenv())
    assign("small", data, globalenv())
    invisible()
  }, list(old_lib, small))
  cat(sprintf("rmsprop %s from %s for the direct transport\n\n",
              old$run(function() as.character(packageVersion("rmsprop"))), old_lib))
}

candidates <- list(
  "one process (no engine)" = function() timed_run(small, NULL, fn, gr),
  "\"sequential\", 2 shards" = function() timed_run(small, rmsprop_engine("sequential", shards = 2), fn, gr),
  "PSOCK cluster, parallel's calls" = function() timed_run(small, cl, fn, gr),
  "mirai::make_cluster(2), parallel's calls" = function() timed_run(small, mcl, fn, gr),
  "future multisession (2)" = function() timed_run(small, "future", fn, gr),
  "engine = \"mirai\", mirai::daemons(2)" = function() timed_run(small, "mirai", fn, gr)
)
if (!is.null(old)) {
  candidates[["PSOCK cluster, 0.2.0's direct transport"]] <- function() {
    old$run(function(timed_run, fn, gr) {
      environment(timed_run) <- globalenv()
      r <- timed_run(small, cl, fn, gr)
      r$fit <- list(par = r$fit$par, history = r$fit$history)
      r
    }, list(timed_run, fn, gr))
  }
}

# A future ships every shard's rows at every step, a few hundred ms: two
# runs of it are enough.
slow <- "future multisession (2)"
runs <- lapply(candidates, function(f) list())
for (r in seq_len(reps)) {
  for (name in names(candidates)) {
    if (name %in% slow && r > 2L) next
    runs[[name]][[r]] <- candidates[[name]]()
  }
}
med_step <- function(rs) median(unlist(lapply(rs, `[[`, "steps")))
steps <- vapply(runs, med_step, numeric(1))
base <- steps[["one process (no engine)"]]
ref <- runs[["\"sequential\", 2 shards"]][[1]]$fit
same <- vapply(runs, function(rs) identical(rs[[1]]$fit$par, ref$par) &&
                 identical(rs[[1]]$fit$history, ref$history), logical(1))

cat("The README's mini-batch pattern: logistic regression 50,000 x 10, shuffled batches of 1024,\n")
cat(sprintf("3 epochs (%d steps), 2 workers; median time per step over %d runs of each (%s: 2)\n\n",
            ref$steps, reps, slow))
cat("| engine | per step | over one process | trajectory identical to \"sequential\", 2 shards |\n")
cat("|---|---:|---:|---|\n")
for (name in names(candidates)) {
  cat(sprintf("| %s | %.2f ms | %+.2f ms | %s |\n", name, 1000 * steps[[name]],
              1000 * (steps[[name]] - base),
              if (name == "one process (no engine)") "(no shards: agrees to 1e-12)" else
                if (same[[name]]) "yes" else "NO"))
}

direct <- "PSOCK cluster, 0.2.0's direct transport"
if (direct %in% names(steps)) {
  cat("\nAgainst 0.2.0's own socket transport (the rule: keep no networking code of our own\n")
  cat("where an existing engine is within 0.2 ms per step):\n")
  for (name in c("engine = \"mirai\", mirai::daemons(2)", "mirai::make_cluster(2), parallel's calls",
                 "PSOCK cluster, parallel's calls")) {
    d <- 1000 * (steps[[name]] - steps[[direct]])
    cat(sprintf("  %s: %+.2f ms per step (%s)\n", name, d,
                if (d <= 0.2) "within 0.2 ms" else "more than 0.2 ms slower"))
  }
}

# A step with no work whose gradient has k numbers: the engine's round trip.
round_trip <- function(engine, k) {
  fk <- function(b, d) sum(b^2)
  gk <- function(b, d) 2 * b
  ev <- rmsprop:::engine_evaluator(engine, fk, gk, list(), small[1:1000, ])
  on.exit(attr(ev, "cleanup")())
  b <- rep(0.5, k)
  ev(b, 1:1000)
  median(vapply(1:40, function(i) {
    t0 <- as.numeric(Sys.time())
    ev(b, 1:1000)
    as.numeric(Sys.time()) - t0
  }, numeric(1)))
}
cat("\nA step with no work whose gradient has k numbers (median of 40 steps)\n\n")
cat("| engine | k = 1,000 | k = 100,000 |\n|---|---:|---:|\n")
for (what in list(list("PSOCK cluster, parallel's calls", cl),
                  list("mirai::make_cluster(2), parallel's calls", mcl),
                  list("future multisession (2)", "future"),
                  list("engine = \"mirai\", mirai::daemons(2)", "mirai"))) {
  cat(sprintf("| %s | %.2f ms | %.2f ms |\n", what[[1]], 1000 * round_trip(what[[2]], 1000),
              1000 * round_trip(what[[2]], 100000)))
}
if (!is.null(old)) old$close()
cat(sprintf("\nload average after: %s\n", load_avg()))
