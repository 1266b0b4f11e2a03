# minimize()'s overhead against the equivalent hand-written loop.
#
# Least squares with 100 rows and 3 parameters: a hand loop calls fn, gr and
# opt$step() once per step; minimize() does the same plus its bookkeeping
# (history, counts, checks, callbacks, progress countdown). Both run in this
# process, interleaved, several times; the script prints the best CPU time
# per step of each (the minimum over the repetitions: other processes on
# the machine only ever add time) and the ratio minimize / hand loop for several run lengths, also with
# mini-batches (`data =`) and a callback, and with validation + early
# stopping + reduce-lr callbacks. The ratio should stay below 1.3 and flat
# in the number of steps.
#
# Usage: Rscript bench/bench-minimize.R [reps]   (from the package directory,
# with rmsprop installed; R_LIBS=... to pick a library)
args <- commandArgs(trailingOnly = TRUE)
reps <- if (length(args)) as.integer(args[[1]]) else 5L
suppressPackageStartupMessages(library(rmsprop))

set.seed(1)
n <- 100
x <- cbind(1, matrix(rnorm(n * 2), n))
y <- drop(x %*% c(1, -2, 0.5)) + rnorm(n)
fn <- function(b) mean((y - x %*% b)^2)
gr <- function(b) -2 * drop(crossprod(x, y - x %*% b)) / n
m <- cbind(y, x)
fn_b <- function(b, d) mean((d[, 1] - d[, -1] %*% b)^2)
gr_b <- function(b, d) -2 * drop(crossprod(d[, -1], d[, 1] - d[, -1] %*% b)) / nrow(d)
cb <- function(info) NULL

hand_full <- function(steps) {
  opt <- optimizer_rmsprop(0.01)
  b <- c(0, 0, 0)
  for (i in seq_len(steps)) {
    loss <- fn(b)
    b <- opt$step(gr(b), b)
  }
  b
}
fit_full <- function(steps) {
  minimize(c(0, 0, 0), fn, gr, steps = steps, optimizer = optimizer_rmsprop(0.01),
           progress = FALSE)$par
}
# mini-batches of 10 rows (10 steps per epoch) and a callback every step
hand_batch <- function(steps) {
  opt <- optimizer_rmsprop(0.01)
  b <- c(0, 0, 0)
  for (e in seq_len(steps / 10)) {
    order <- sample.int(n)
    for (k in 1:10) {
      rows <- order[((k - 1) * 10 + 1):(k * 10)]
      d <- m[rows, , drop = FALSE]
      loss <- fn_b(b, d)
      b <- opt$step(gr_b(b, d), b)
      cb(list(step = k, loss = loss, par = b))
    }
  }
  b
}
fit_batch <- function(steps) {
  minimize(c(0, 0, 0), fn_b, gr_b, data = m, batch_size = 10, epochs = steps / 10,
           callback = cb, optimizer = optimizer_rmsprop(0.01), progress = FALSE)$par
}
# the same with the progress line on (drawn to a connection that is thrown away)
fit_batch_progress <- function(steps) {
  zz <- file(nullfile(), open = "wt")
  sink(zz, type = "message")
  on.exit({
    sink(type = "message")
    close(zz)
  })
  minimize(c(0, 0, 0), fn_b, gr_b, data = m, batch_size = 10, epochs = steps / 10,
           callback = cb, optimizer = optimizer_rmsprop(0.01), progress = TRUE)$par
}

# CPU time (user + system) of this process: other processes on a shared
# machine slow a run down but hardly change its CPU time. Short runs are
# repeated so that each measurement lasts about half a second.
time_it <- function(f, steps) {
  times <- max(1L, ceiling(5e4 / steps))
  gc(FALSE)
  t <- system.time(for (k in seq_len(times)) f(steps))
  (t[["user.self"]] + t[["sys.self"]]) / times
}
compare <- function(label, hand, fit, lengths) {
  for (steps in lengths) {
    th <- tf <- numeric(reps)
    for (r in seq_len(reps)) {
      set.seed(r); th[r] <- time_it(hand, steps)
      set.seed(r); tf[r] <- time_it(fit, steps)
    }
    cat(sprintf("%-28s %7d steps: hand %6.1f us/step, minimize %6.1f us/step, ratio %.2f\n",
                label, steps, 1e6 * min(th) / steps, 1e6 * min(tf) / steps,
                min(tf) / min(th)))
  }
}

# the two give the same numbers
stopifnot(identical(hand_full(200), fit_full(200)))
set.seed(3); a <- hand_batch(200); set.seed(3); b <- fit_batch(200)
stopifnot(identical(a, b))

cat(sprintf("rmsprop %s, R %s, best of %d reps\n", packageVersion("rmsprop"),
            getRversion(), reps))
lengths <- c(1e3, 1e4, 1e5)
compare("full batch", hand_full, fit_full, lengths)
compare("mini-batch + callback", hand_batch, fit_batch, lengths)
compare("mini-batch + cb + progress", hand_batch, fit_batch_progress, c(1e4, 1e5))
