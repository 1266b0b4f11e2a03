# The logistic-regression problem the data-parallel benchmarks share: data
# (the response in column 1) and the loss and gradient of a mini-batch.
logistic <- function(n, p, seed = 1) {
  set.seed(seed)
  x <- matrix(rnorm(n * p), n, p)
  y <- rbinom(n, 1, plogis(drop(x %*% (rnorm(p) / sqrt(p)))))
  cbind(y = y, x)
}
# Written to use the rows as they come (no copy of the columns): two passes
# of matrix-vector products over the rows per step.
fn <- function(b, d) {
  eta <- drop(d %*% c(0, b))
  mean(log1p(exp(eta)) - d[, 1] * eta)
}
gr <- function(b, d) {
  r <- plogis(drop(d %*% c(0, b))) - d[, 1]
  drop(crossprod(d, r))[-1] / nrow(d)
}
