# Data-parallel gradients on 2 local workers, everything in one run:
#
# 1. Small steps: the README's scale-out pattern (logistic regression
#    50,000 x 10, shuffled mini-batches, 3 epochs): a whole minimize() run in
#    one process, on a PSOCK cluster of 2 and on 2 mirai daemons
#    (engine = "mirai"), and the cost per step over one process.
#    (bench/bench-engines.R compares every engine on the batches of 1024.)
# 2. What a step sends and gets back: the bytes sent to each worker per step
#    for several batch sizes, and the time of a step whose gradient has 10 to
#    100,000 numbers (no work), on the cluster and the daemons.
# 3. Work-dominated steps (logistic regression 200,000 x 40): shuffled
#    batches of 50,000 rows and the full batch; seconds per step in one
#    process, on a PSOCK cluster of 2 and (full batch) under
#    future::plan(multisession, workers = 2), and the speedups.
# 4. The trajectories: identical on the cluster, the daemons, in one process
#    with the same shards and on future workers; close to one process.
#
# Timing: the candidates of a table run round robin (one sample of each in
# turn), so changes in the machine's load hit them alike; tables show
# medians. Per-step times are medians of the time between the callbacks of
# consecutive steps. Clusters are started before timing. Nothing here
# asserts timings; the goals are printed as met / not met. A speedup needs 2
# idle cores: the load average is printed before and after.
#
#   Rscript bench/bench-data-parallel.R [lib]
#   lib: the library rmsprop is installed in (default: the usual library
#        paths); workers load nothing from it (their code is base R).
#   Needs the mirai package (and uses future when installed).

args <- commandArgs(trailingOnly = TRUE)
lib <- if (length(args)) args[[1]] else NULL
suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))

# What the script needs, installed the Debian way on a fresh machine.
need <- function(pkg) {
  if (requireNamespace(pkg, quietly = TRUE)) return(TRUE)
  if (nzchar(Sys.which("apt-get"))) {
    system2("apt-get", c("install", "-y", paste0("r-cran-", pkg)), stdout = FALSE, stderr = FALSE)
  }
  requireNamespace(pkg, quietly = TRUE)
}
has_future <- need("future")
if (!requireNamespace("mirai", quietly = TRUE)) stop("this benchmark needs the mirai package")

load_avg <- function() {
  x <- tryCatch(readLines("/proc/loadavg", warn = FALSE), error = function(e) "")
  paste(strsplit(x, " ")[[1]][1:3], collapse = " ")
}
cat(sprintf("R %s, %d cores, load average before: %s\n\n", getRversion(),
            parallel::detectCores(), load_avg()))

# The problem: logistic(), fn() and gr() (shared with bench-two-halves.R).
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))),
                 "problem-logistic.R"))

now <- function() as.numeric(Sys.time())  # microseconds, unlike proc.time()

# One minimize() run: total seconds, the seconds between consecutive steps,
# and the fit.
timed_run <- function(data, engine, batch_size, epochs, shuffle = TRUE, seed = 2) {
  stamps <- numeric(0)
  cb <- function(info) {
    stamps[info$step] <<- now()
    TRUE
  }
  set.seed(seed)
  t0 <- now()
  fit <- minimize(numeric(ncol(data) - 1), fn, gr, data = data, batch_size = batch_size,
                  epochs = epochs, shuffle = shuffle, engine = engine, callback = cb,
                  optimizer = optimizer_rmsprop(0.01))
  list(total = now() - t0, steps = diff(stamps), fit = fit)
}

# Round robin over the candidates (a named list of functions returning a
# timed_run()), `reps` times; returns the runs, by candidate.
round_robin <- function(candidates, reps) {
  out <- lapply(candidates, function(f) list())
  for (r in seq_len(reps)) {
    for (name in names(candidates)) out[[name]][[r]] <- candidates[[name]]()
  }
  out
}
med_total <- function(runs) median(vapply(runs, `[[`, numeric(1), "total"))
med_step <- function(runs) median(unlist(lapply(runs, `[[`, "steps")))
fmt_ms <- function(s) sprintf("%.2f ms", 1000 * s)
fmt_s <- function(s) sprintf("%.3f s", s)
goal <- function(ok) if (ok) "met" else "NOT met"

cl <- parallel::makeCluster(2)
on.exit(parallel::stopCluster(cl), add = TRUE)
mirai::daemons(2)
on.exit(mirai::daemons(0), add = TRUE)
invisible(mirai::everywhere(NULL)[])  # the daemons are up

# ---- 1. small steps ---------------------------------------------------------
small <- logistic(50000, 10)
cat("1. Small steps: logistic regression 50,000 x 10, 3 epochs, a whole minimize() run\n")
cat("   (the cluster's one-off costs included: sending the data, starting and ending the run)\n\n")
cat("| batches | steps | one process | PSOCK cluster of 2 | per step over one process | mirai daemons (2) | per step over one process | median step: one process, cluster, daemons |\n")
cat("|---|---:|---:|---:|---:|---:|---:|---:|\n")
worst_extra <- 0
small_rows <- list()
for (cfg in list(list(b = 1024, shuffle = TRUE), list(b = 64, shuffle = TRUE),
                 list(b = 1024, shuffle = FALSE))) {
  runs <- round_robin(list(
    one = function() timed_run(small, NULL, cfg$b, 3, cfg$shuffle),
    cluster = function() timed_run(small, cl, cfg$b, 3, cfg$shuffle),
    daemons = function() timed_run(small, "mirai", cfg$b, 3, cfg$shuffle)
  ), reps = 3)
  steps <- runs$one[[1]]$fit$steps
  one <- med_total(runs$one)
  clu <- med_total(runs$cluster)
  app <- med_total(runs$daemons)
  if (cfg$b == 1024 && cfg$shuffle) worst_extra <- (clu - one) / steps
  small_rows[[length(small_rows) + 1]] <- sprintf(
    "| 50,000 x 10, batches of %d, %s, 3 epochs (%d steps): a whole run | %s | %s | %+.2f ms per step |",
    cfg$b, if (cfg$shuffle) "shuffled" else "in order", steps, fmt_s(one), fmt_s(clu),
    1000 * (clu - one) / steps)
  cat(sprintf("| %d rows, %s | %d | %s | %s | %s | %s | %s | %s, %s, %s |\n", cfg$b,
              if (cfg$shuffle) "shuffled" else "in order", steps, fmt_s(one), fmt_s(clu),
              fmt_ms((clu - one) / steps), fmt_s(app), fmt_ms((app - one) / steps),
              fmt_ms(med_step(runs$one)), fmt_ms(med_step(runs$cluster)),
              fmt_ms(med_step(runs$daemons))))
}
cat(sprintf("\ngoal: a PSOCK cluster costs at most 2 ms per step over one process (batch 1024, shuffled): %s (%s)\n\n",
            goal(worst_extra <= 0.002), fmt_ms(worst_extra)))

# ---- 2. message sizes and replies -------------------------------------------
cat("2. What a step sends: bytes to each worker per step, shuffled batches of 50,000 rows\n\n")
ev_traffic <- function(batch_size) {
  ev <- rmsprop:::engine_evaluator(cl, fn, gr, list(), small)
  on.exit(attr(ev, "cleanup")())
  set.seed(3)
  order <- sample.int(nrow(small))
  sent <- NULL
  for (first in c(1, 1 + batch_size)) {
    span <- c(first, first + batch_size - 1)
    ev(numeric(10), NULL, order = order, span = span)
    sent <- rbind(sent, attr(ev, "session")$sent)
  }
  sent
}
cat("| batch size | first step of an epoch (with the row order) | any other step |\n|---:|---:|---:|\n")
for (b in c(64, 1024, 8192)) {
  s <- ev_traffic(b)
  cat(sprintf("| %d | %d bytes | %d bytes |\n", b, max(s[1, ]), max(s[2, ])))
}

cat("\n   A step whose gradient has k numbers, no work (median of 40 steps)\n\n")
cat("| k (gradient length) | reply size | PSOCK cluster of 2 | mirai daemons (2) |\n|---:|---:|---:|---:|\n")
tiny <- small[1:1000, ]
step_time <- function(k) {
  fk <- function(b, d) sum(b^2)
  gk <- function(b, d) 2 * b
  one_side <- function(engine) {
    ev <- rmsprop:::engine_evaluator(engine, fk, gk, list(), tiny)
    on.exit(attr(ev, "cleanup")())
    b <- rep(0.5, k)
    ev(b, 1:1000)
    ts <- vapply(1:40, function(i) {
      t0 <- now()
      ev(b, 1:1000)
      now() - t0
    }, numeric(1))
    median(ts)
  }
  c(cluster = one_side(cl), daemons = one_side("mirai"))
}
reply_rows <- list()
for (k in c(10, 1000, 10000, 100000)) {
  t <- step_time(k)
  if (k %in% c(1000, 100000)) reply_rows[[length(reply_rows) + 1]] <- sprintf(
    "| a step with a gradient of %s numbers and no work | | %s | mirai daemons: %s |",
    formatC(k, big.mark = ",", format = "d"), fmt_ms(t[["cluster"]]), fmt_ms(t[["daemons"]]))
  reply <- length(serialize(list(list(ok = TRUE, loss = 1, grad = rep(0.5, k))), NULL))
  cat(sprintf("| %d | %d bytes | %s | %s |\n", k, reply, fmt_ms(t[["cluster"]]),
              fmt_ms(t[["daemons"]])))
}

# ---- 3. work-dominated steps --------------------------------------------------
big <- logistic(200000, 40)
cat("\n3. Work-dominated steps: logistic regression 200,000 x 40 (seconds per step, median)\n\n")
cat("| batches | one process | PSOCK cluster of 2 | speedup | goal | fastest step: one process, cluster, speedup |\n|---|---:|---:|---:|---|---:|\n")
mini <- round_robin(list(
  one = function() timed_run(big, NULL, 50000, 3),
  cluster = function() timed_run(big, cl, 50000, 3)
), reps = 5)
full <- round_robin(list(
  one = function() timed_run(big, NULL, nrow(big), 15, shuffle = FALSE),
  cluster = function() timed_run(big, cl, nrow(big), 15, shuffle = FALSE)
), reps = 5)
speed_mini <- med_step(mini$one) / med_step(mini$cluster)
speed_full <- med_step(full$one) / med_step(full$cluster)
fastest <- function(runs) min(unlist(lapply(runs, `[[`, "steps")))
best <- function(r) sprintf("%s, %s, %.2fx", fmt_ms(fastest(r$one)), fmt_ms(fastest(r$cluster)),
                            fastest(r$one) / fastest(r$cluster))
cat(sprintf("| 50,000 rows, shuffled | %s | %s | %.2fx | 1.5x: %s | %s |\n", fmt_ms(med_step(mini$one)),
            fmt_ms(med_step(mini$cluster)), speed_mini, goal(speed_mini >= 1.5), best(mini)))
cat(sprintf("| full batch (200,000 rows) | %s | %s | %.2fx | 1.7x: %s | %s |\n", fmt_ms(med_step(full$one)),
            fmt_ms(med_step(full$cluster)), speed_full, goal(speed_full >= 1.7), best(full)))
cat("(goals are judged on the medians; the fastest steps show what free cores give)\n")
cat(sprintf("\none-off cost of a cluster run (sending the data, the final loss): %s\n",
            fmt_s(med_total(full$cluster) - sum(full$cluster[[1]]$steps) -
                    (med_total(full$one) - sum(full$one[[1]]$steps)))))
# CPU time per step, which the load changes much less than wall time: in one
# process, and on each worker (their clocks read before and after 10 steps).
cpu_ms <- function(f, k = 10) {
  f()
  t <- system.time(for (i in 1:k) f())
  1000 * (t[["user.self"]] + t[["sys.self"]]) / k
}
worker_cpu <- function() {
  unlist(parallel::clusterEvalQ(cl, sum(proc.time()[c("user.self", "sys.self")])))
}
set.seed(4)
order <- sample.int(nrow(big))
local_ev <- function(b, rows) {  # what one process does per step
  d <- big[rows, , drop = FALSE]
  list(loss = fn(b, d), grad = gr(b, d))
}
cl_ev <- rmsprop:::engine_evaluator(cl, fn, gr, list(), big)
cpu_rows <- list()
cpu <- list()
for (what in c("mini", "full")) {
  span <- if (what == "mini") c(1, 50000) else c(1, nrow(big))
  ord <- if (what == "mini") order else seq_len(nrow(big))
  one_cpu <- cpu_ms(function() local_ev(numeric(40), ord[span[1]:span[2]]))
  step <- function() cl_ev(numeric(40), ord[span[1]:span[2]], order = ord, span = span)
  step()
  w0 <- worker_cpu()
  d0 <- proc.time()
  for (i in 1:10) step()
  d1 <- proc.time()
  w <- 1000 * (worker_cpu() - w0) / 10
  drv <- 1000 * sum((d1 - d0)[c("user.self", "sys.self")]) / 10
  cpu[[what]] <- list(one = one_cpu, workers = w)
  cpu_rows[[what]] <- sprintf("| %s | %.1f ms | %s | %.1f ms | %.2fx |",
                              if (what == "mini") "50,000 rows, shuffled" else "full batch",
                              one_cpu, paste(sprintf("%.1f ms", w), collapse = ", "), drv,
                              one_cpu / max(w))
}
attr(cl_ev, "cleanup")()
cat("\nCPU time per step (what free cores would turn into wall time)\n\n")
cat("| batches | one process | each worker | the driver | one process / slowest worker |\n|---|---:|---:|---:|---:|\n")
cat(unlist(cpu_rows), sep = "\n")
cat("\n")

fut_full <- NULL
if (has_future) {
  old <- future::plan(future::multisession, workers = 2)
  fut_full <- tryCatch(timed_run(big, "future", nrow(big), 4, shuffle = FALSE),
                       finally = future::plan(old))
  cat(sprintf("future multisession, 2 workers, full batch: %s per step (each step ships each shard)\n",
              fmt_ms(median(fut_full$steps))))
}

# ---- 4. the trajectories --------------------------------------------------------
cat("\n4. Trajectories (the small problem, batch 1024, shuffled)\n")
ref <- timed_run(small, rmsprop_engine("sequential", shards = 2), 1024, 3)$fit
same <- function(fit) identical(fit$par, ref$par) && identical(fit$history, ref$history)
cat(sprintf("   PSOCK cluster == one process with 2 shards: %s\n",
            same(timed_run(small, cl, 1024, 3)$fit)))
cat(sprintf("   mirai daemons == one process with 2 shards: %s\n",
            same(timed_run(small, "mirai", 1024, 3)$fit)))
if (has_future) {
  old <- future::plan(future::multisession, workers = 2)
  fut <- tryCatch(timed_run(small, "future", 1024, 3)$fit, finally = future::plan(old))
  cat(sprintf("   future multisession == one process with 2 shards: %s\n", same(fut)))
}
plain <- timed_run(small, NULL, 1024, 3)$fit
cat(sprintf("   max |par difference| to one process without shards: %.1e\n",
            max(abs(plain$par - ref$par))))
cat(sprintf("   big problem, full batch: max |par difference| cluster vs one process: %.1e\n",
            max(abs(full$cluster[[1]]$fit$par - full$one[[1]]$fit$par))))
cat(sprintf("\nload average after: %s\n", load_avg()))

cat("\nREADME table\n\n")
cat("| logistic regression | one process | PSOCK cluster of 2 | cluster vs one process |\n|---|---:|---:|---|\n")
cat(unlist(small_rows), sep = "\n")
cat(sprintf("| 200,000 x 40, batches of 50,000, shuffled: per step | %s | %s | speedup %.2fx |\n",
            fmt_ms(med_step(mini$one)), fmt_ms(med_step(mini$cluster)), speed_mini))
cat(sprintf("| 200,000 x 40, full batch: per step | %s | %s | speedup %.2fx |\n",
            fmt_ms(med_step(full$one)), fmt_ms(med_step(full$cluster)), speed_full))
for (what in names(cpu)) {
  x <- cpu[[what]]
  cat(sprintf("| 200,000 x 40, %s: CPU time per step | %.1f ms | %.1f ms (slowest worker) | free cores would give %.2fx |\n",
              if (what == "mini") "batches of 50,000, shuffled" else "full batch", x$one,
              max(x$workers), x$one / max(x$workers)))
}
cat(unlist(reply_rows), sep = "\n")
if (!is.null(fut_full)) {
  cat(sprintf("| 200,000 x 40, full batch, `future` multisession (2): per step | | %s | |\n",
              fmt_ms(median(fut_full$steps))))
}
