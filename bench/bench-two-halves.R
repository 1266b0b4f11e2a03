# What two cores can give on the full-batch data-parallel problem of
# bench-data-parallel.R (logistic regression 200,000 x 40): the loss and
# gradient on all rows in one process, on one half alone, and on the two
# halves in two processes at once (forked, no engine, no messages). The
# whole over the slower concurrent half is the most any engine can gain here.
#   Rscript bench/bench-two-halves.R
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))),
                 "problem-logistic.R"))
big <- logistic(200000, 40)
b <- rnorm(40) / 10
ms_per_step <- function(d) {
  m <- numeric(15)
  for (s in seq_along(m)) {
    t0 <- proc.time()[[3]]
    for (i in 1:5) { fn(b, d); gr(b, d) }
    m[s] <- (proc.time()[[3]] - t0) / 5
  }
  median(m) * 1e3
}
whole <- ms_per_step(big)
half <- ms_per_step(big[1:100000, ])
jobs <- list(parallel::mcparallel(ms_per_step(big[1:100000, ])),
             parallel::mcparallel(ms_per_step(big[100001:200000, ])))
both <- unlist(parallel::mccollect(jobs))
cat(sprintf("whole %.1f ms, one half alone %.1f ms, two halves at once %s ms\n",
            whole, half, paste(sprintf("%.1f", both), collapse = " and ")))
cat(sprintf("the most two workers can gain: %.2fx\n", whole / max(both)))
