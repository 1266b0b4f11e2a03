# Speedup of data-parallel gradients with 2 local workers.
#
# A logistic regression on simulated data where the gradient dominates the
# cost of a step (n rows x p columns, full batch, no shuffling, so each
# worker cuts its shard once and then receives only the parameters). Prints
# the time per step in one process, on a PSOCK cluster of 2 and under
# future::plan(multisession, workers = 2), the speedups, and checks that the
# trajectories agree. No assertions: numbers depend on the machine.
#
#   Rscript bench/bench-data-parallel.R [n] [p] [steps]
library(rmsprop)

args <- as.numeric(commandArgs(trailingOnly = TRUE))
n <- if (length(args) >= 1) args[1] else 200000
p <- if (length(args) >= 2) args[2] else 40
steps <- if (length(args) >= 3) args[3] else 20

set.seed(1)
x <- matrix(rnorm(n * p), n, p)
beta <- rnorm(p) / sqrt(p)
y <- rbinom(n, 1, plogis(drop(x %*% beta)))
data <- cbind(y = y, x)

# Written to use the rows as they come (no copy of the columns): the cost of a
# step is two passes of matrix-vector products over the rows.
fn <- function(b, d) {
  eta <- drop(d %*% c(0, b))
  mean(log1p(exp(eta)) - d[, 1] * eta)
}
gr <- function(b, d) {
  r <- plogis(drop(d %*% c(0, b))) - d[, 1]
  drop(crossprod(d, r))[-1] / nrow(d)
}

# Seconds per step, without the one-off costs (sending the data to a
# cluster, the final evaluation): the difference between a run of 1 + steps
# epochs and a run of 1 epoch, divided by steps.
run <- function(engine) {
  time_epochs <- function(epochs) {
    t <- system.time(
      fit <- minimize(numeric(p), fn, gr, data = data, epochs = epochs, shuffle = FALSE,
                      engine = engine, optimizer = optimizer_rmsprop(0.01))
    )[["elapsed"]]
    list(fit = fit, seconds = t)
  }
  short <- time_epochs(1)
  long <- time_epochs(1 + steps)
  list(fit = long$fit, per_step = (long$seconds - short$seconds) / steps,
       fixed = short$seconds - (long$seconds - short$seconds) / steps)
}

cat(sprintf("logistic regression, n = %d rows, p = %d, %d full-batch steps\n", n, p, steps))
cat(sprintf("load average before: %s\n",
            tryCatch(readLines("/proc/loadavg", warn = FALSE), error = function(e) "unknown")))
one <- run(NULL)
cat(sprintf("  one process:            %.3f s per step\n", one$per_step))

cl <- parallel::makeCluster(2)
cluster <- tryCatch(run(cl), finally = parallel::stopCluster(cl))
cat(sprintf("  PSOCK cluster, 2:       %.3f s per step (+ %.2f s once per run to send the data)\n",
            cluster$per_step, cluster$fixed))

multi <- NULL
if (requireNamespace("future", quietly = TRUE)) {
  old <- future::plan(future::multisession, workers = 2)
  multi <- tryCatch(run("future"), finally = future::plan(old))
  cat(sprintf("  future multisession, 2: %.3f s per step (ships each shard every step)\n",
              multi$per_step))
}

cat(sprintf("speedup per step, PSOCK cluster:       %.2f\n", one$per_step / cluster$per_step))
if (!is.null(multi)) {
  cat(sprintf("speedup per step, future multisession: %.2f\n", one$per_step / multi$per_step))
}
cat(sprintf("max |par difference| vs one process: %.2e\n",
            max(abs(cluster$fit$par - one$fit$par))))
cat("(a speedup needs 2 idle cores: other load on the machine hides it)\n")
