# The "ad" gradient source (R/gradient-ad.R): gradients from RTMB's tape
# equal hand-written gradients (derived on paper, written in plain R below)
# on linear, logistic, softmax and Poisson regression and a small network,
# on full batches and mini-batches (a short last batch included); one tape
# per batch size; RMSprop trajectories driven by either agree; what cannot
# be taped is a classed error naming the operation.

skip_if_not_installed("RTMB")

# ---- problems, each with its hand-written gradient --------------------------

max_abs_diff <- function(a, b) max(abs(unlist(a, use.names = FALSE) - unlist(b, use.names = FALSE)))

# The nesting, names of lists and dims of a structure.
shape <- function(x) {
  if (is.list(x)) return(structure(lapply(x, shape), names = names(x)))
  list(length = length(x), dim = dim(x))
}

# Gradients must agree to 1e-12 (relative to their size, about 1 here).
expect_same_gradient <- function(ad, hand, tol = 1e-12) {
  expect_identical(shape(ad), shape(hand))
  scale <- max(1, abs(unlist(hand)))
  expect_lt(max_abs_diff(ad, hand), tol * scale)
}

set.seed(20)
n_rows <- 103   # batches of 25: four full batches and a short one of 3

# Linear regression, a matrix batch (response in column 1).
linear_data <- cbind(y = rnorm(n_rows), matrix(rnorm(n_rows * 3), n_rows, 3))
linear_par <- c(0.5, -1, 2)
linear_loss <- function(b, batch) mean((batch[, 1] - batch[, -1] %*% b)^2)
linear_grad <- function(b, batch) {
  X <- batch[, -1]
  -2 * drop(crossprod(X, batch[, 1] - X %*% b)) / nrow(batch)
}

# Logistic regression, a data frame batch; named nested parameters.
logistic_data <- data.frame(y = rbinom(n_rows, 1, 0.5), x1 = rnorm(n_rows), x2 = rnorm(n_rows),
                            x3 = rnorm(n_rows))
logistic_par <- list(w = c(x1 = 0.3, x2 = -0.2, x3 = 0.1), b = 0.05)
logistic_loss <- function(par, batch) {
  eta <- par$b + as.matrix(batch[, -1]) %*% par$w
  mean(log1p(exp(eta)) - batch$y * eta)
}
logistic_grad <- function(par, batch) {
  X <- as.matrix(batch[, -1])
  r <- (plogis(drop(par$b + X %*% par$w)) - batch$y) / nrow(batch)
  list(w = setNames(drop(crossprod(X, r)), names(par$w)), b = sum(r))
}

# Softmax regression: a data frame with matrix columns (one-hot labels and
# features, made with I()); the weights a matrix with dimnames.
k_classes <- 4
softmax_x <- matrix(rnorm(n_rows * 3), n_rows, 3)
softmax_label <- sample.int(k_classes, n_rows, replace = TRUE)
softmax_data <- data.frame(id = seq_len(n_rows))
softmax_data$x <- I(softmax_x)
softmax_data$onehot <- I(diag(k_classes)[softmax_label, ])
softmax_par <- list(W = matrix(rnorm(3 * k_classes, sd = 0.5), 3, k_classes,
                               dimnames = list(c("a", "b", "c"), paste0("k", 1:4))),
                    b = rnorm(k_classes, sd = 0.1))
softmax_loss <- function(par, batch) {
  Z <- batch$x %*% par$W + rep(par$b, each = nrow(batch))
  mean(log(rowSums(exp(Z))) - rowSums(batch$onehot * Z))
}
softmax_grad <- function(par, batch) {
  X <- unclass(batch$x)
  Z <- X %*% par$W + rep(par$b, each = nrow(X))
  P <- exp(Z) / rowSums(exp(Z))
  R <- (P - unclass(batch$onehot)) / nrow(X)
  list(W = crossprod(X, R), b = colSums(R))
}

# Poisson regression without data: the design comes in as extra arguments.
poisson_x <- cbind(1, matrix(rnorm(60 * 2), 60, 2))
poisson_y <- rpois(60, exp(drop(poisson_x %*% c(0.5, 0.3, -0.2))))
poisson_par <- c(0.1, 0.1, 0.1)
poisson_loss <- function(b, X, y) {
  eta <- X %*% b
  sum(exp(eta) - y * eta) / length(y)
}
poisson_grad <- function(b, X, y) drop(crossprod(X, exp(drop(X %*% b)) - y)) / length(y)

# A 5 -> 4 (tanh) -> 1 network with a logistic loss; nested named lists
# of matrices and vectors.
net_data <- cbind(y = rbinom(n_rows, 1, 0.5), matrix(rnorm(n_rows * 5), n_rows, 5))
net_par <- list(hidden = list(W = matrix(rnorm(20, sd = 0.5), 5, 4), b = rnorm(4, sd = 0.1)),
                out = list(W = matrix(rnorm(4, sd = 0.5), 4, 1), b = 0.1))
net_loss <- function(par, batch) {
  X <- batch[, -1]
  H <- tanh(X %*% par$hidden$W + rep(par$hidden$b, each = nrow(X)))
  eta <- H %*% par$out$W + par$out$b
  mean(log1p(exp(eta)) - batch[, 1] * eta)
}
net_grad <- function(par, batch) {
  X <- batch[, -1]
  H <- tanh(X %*% par$hidden$W + rep(par$hidden$b, each = nrow(X)))
  eta <- drop(H %*% par$out$W) + par$out$b
  r <- (plogis(eta) - batch[, 1]) / nrow(X)
  dZ <- (r %o% drop(par$out$W)) * (1 - H^2)
  list(hidden = list(W = crossprod(X, dZ), b = colSums(dZ)),
       out = list(W = crossprod(H, r), b = sum(r)))
}

batches <- function(n, size) split(seq_len(n), ceiling(seq_len(n) / size))

problems <- list(
  linear = list(loss = linear_loss, grad = linear_grad, par = linear_par, data = linear_data),
  logistic = list(loss = logistic_loss, grad = logistic_grad, par = logistic_par,
                  data = logistic_data),
  softmax = list(loss = softmax_loss, grad = softmax_grad, par = softmax_par,
                 data = softmax_data),
  network = list(loss = net_loss, grad = net_grad, par = net_par, data = net_data)
)

# ---- gradients ---------------------------------------------------------------

test_that("AD gradients equal the hand-written ones on full batches and mini-batches", {
  for (name in names(problems)) {
    pb <- problems[[name]]
    g <- ad_gradient(pb$loss, pb$par)
    # at a few points, so that the tape is replayed away from where it was made
    moved <- if (is.list(pb$par)) rapply(pb$par, function(v) v * 1.3 - 0.05, how = "replace") else
      pb$par * 1.3 - 0.05
    pars <- list(pb$par, moved)
    for (par in pars) {
      expect_same_gradient(g(par, pb$data), pb$grad(par, pb$data))
      for (rows in batches(n_rows, 25)) {
        batch <- pb$data[rows, , drop = FALSE]
        expect_same_gradient(g(par, batch), pb$grad(par, batch))
      }
    }
  }
})

test_that("the gradient has the shape of the parameters: names, dims, dimnames, nesting", {
  g <- ad_gradient(softmax_loss, softmax_par)
  out <- g(softmax_par, softmax_data[1:10, ])
  expect_identical(names(out), c("W", "b"))
  expect_identical(dim(out$W), c(3L, 4L))
  expect_identical(dimnames(out$W), dimnames(softmax_par$W))
  expect_null(dim(out$b))
  g <- ad_gradient(logistic_loss, logistic_par)
  expect_identical(names(g(logistic_par, logistic_data)$w), c("x1", "x2", "x3"))
  g <- ad_gradient(net_loss, net_par)
  out <- g(net_par, net_data)
  expect_identical(dim(out$out$W), c(4L, 1L))
  expect_identical(names(out$hidden), c("W", "b"))
})

test_that("one tape per batch size: a step replays it, the short last batch gets its own", {
  g <- ad_gradient(net_loss, net_par)
  before <- rmsprop:::ad_tapes_built()
  for (epoch in 1:3) {
    for (rows in batches(n_rows, 25)) g(net_par, net_data[rows, , drop = FALSE])
  }
  expect_identical(rmsprop:::ad_tapes_built() - before, 2L)   # 25 rows and 3 rows
  g(net_par, net_data)
  expect_identical(rmsprop:::ad_tapes_built() - before, 3L)
  # without data: one tape, built by ad_gradient() itself
  before <- rmsprop:::ad_tapes_built()
  gp <- ad_gradient(poisson_loss, poisson_par, X = poisson_x, y = poisson_y)
  for (i in 1:5) gp(poisson_par + i / 10)
  expect_identical(rmsprop:::ad_tapes_built() - before, 1L)
})

test_that("extra arguments reach fn (constants on the tape)", {
  g <- ad_gradient(poisson_loss, poisson_par, X = poisson_x, y = poisson_y)
  expect_identical(names(formals(g)), "par")
  for (b in list(poisson_par, c(0.4, 0.2, -0.1), c(-0.3, 0.5, 0.2))) {
    expect_same_gradient(g(b), poisson_grad(b, poisson_x, poisson_y))
  }
  # with a batch: fn(par, batch, lambda)
  ridge <- function(b, batch, lambda) linear_loss(b, batch) + lambda * sum(b^2)
  g <- ad_gradient(ridge, linear_par, lambda = 0.3)
  expect_identical(names(formals(g)), c("par", "batch"))
  batch <- linear_data[1:20, ]
  expect_same_gradient(g(linear_par, batch), linear_grad(linear_par, batch) + 0.6 * linear_par)
  # unnamed: by position after par
  g <- ad_gradient(function(b, X, y) poisson_loss(b, X, y), poisson_par, poisson_x, poisson_y)
  expect_same_gradient(g(poisson_par), poisson_grad(poisson_par, poisson_x, poisson_y))
})

test_that("the batch on the tape: data frame columns, as.matrix(), I() matrices, matrix columns", {
  d <- data.frame(y = rnorm(12), a = rnorm(12), b = rnorm(12), c = 1:12)
  d$m <- I(matrix(rnorm(24), 12, 2))
  p <- c(0.2, -0.4, 0.1, 0.3, -0.2)
  hand <- function(p, batch) {
    X <- cbind(batch$a, batch$b, batch$c, unclass(batch$m))
    -2 * drop(crossprod(X, batch$y - X %*% p)) / nrow(X)
  }
  forms <- list(
    function(p, batch) mean((batch$y - as.matrix(batch[, c("a", "b", "c")]) %*% p[1:3] -
                               batch$m %*% p[4:5])^2),
    function(p, batch) mean((batch[[1]] - as.matrix(batch[-1]) %*% p)^2),
    function(p, batch) mean((batch[, "y"] - cbind(batch$a, batch$b, batch$c) %*% p[1:3] -
                               batch$m[, 1] * p[4] - batch$m[, 2] * p[5])^2),
    function(p, batch) {
      X <- as.matrix(batch)
      mean((X[, "y"] - X[, c("a", "b", "c", "m.1", "m.2")] %*% p)^2)
    })
  for (f in forms) {
    g <- ad_gradient(f, p)
    expect_same_gradient(g(p, d), hand(p, d))
    expect_same_gradient(g(p, d[3:7, ]), hand(p, d[3:7, ]))
  }
  # a matrix batch with column names, subset by name
  m <- as.matrix(d[, c("y", "a", "b", "c")])
  g <- ad_gradient(function(p, batch) mean((batch[, "y"] - batch[, c("a", "b", "c")] %*% p)^2),
                   p[1:3])
  expect_same_gradient(g(p[1:3], m[1:9, ]), hand(c(p[1:3], 0, 0), d[1:9, ])[1:3])
  # integer and logical matrices are numbers too
  mi <- cbind(y = 1:6, x = c(2L, 0L, 1L, 3L, 1L, 2L))
  g <- ad_gradient(function(b, batch) sum((batch[, 1] - batch[, 2] * b)^2), 0.5)
  expect_equal(g(0.5, mi), -2 * sum(mi[, 2] * (mi[, 1] - mi[, 2] * 0.5)), tolerance = 1e-14)
})

# ---- trajectories --------------------------------------------------------------

# RMSprop's steps are normalised gradients: once a run nears a minimum,
# where gradients are about as small as their rounding errors (1e-17), two
# runs whose gradients differ in the last bits part ways. The runs compared
# here stay where the gradients are far larger (learning rate 1e-3).
run_trajectory <- function(grad, par, data, size, steps) {
  opt <- optimizer_rmsprop(learning_rate = 0.001)
  parts <- if (is.null(data)) NULL else batches(NROW(data), size)
  for (i in seq_len(steps)) {
    if (is.null(data)) {
      par <- opt$step(grad(par), par)
    } else {
      rows <- parts[[(i - 1L) %% length(parts) + 1L]]
      batch <- data[rows, , drop = FALSE]
      par <- opt$step(grad(par, batch), par)
    }
  }
  par
}

test_that("1,000 RMSprop steps driven by AD gradients follow the hand-written ones", {
  g <- ad_gradient(net_loss, net_par)
  full_ad <- run_trajectory(g, net_par, net_data, n_rows, 1000)
  full_hand <- run_trajectory(net_grad, net_par, net_data, n_rows, 1000)
  expect_lt(max_abs_diff(full_ad, full_hand), 1e-10)
  expect_gt(max_abs_diff(full_ad, net_par), 0.5)   # it did move
  mini_ad <- run_trajectory(g, net_par, net_data, 25, 1000)
  mini_hand <- run_trajectory(net_grad, net_par, net_data, 25, 1000)
  expect_lt(max_abs_diff(mini_ad, mini_hand), 1e-10)
  gs <- ad_gradient(softmax_loss, softmax_par)
  expect_lt(max_abs_diff(run_trajectory(gs, softmax_par, softmax_data, 25, 1000),
                         run_trajectory(softmax_grad, softmax_par, softmax_data, 25, 1000)),
            1e-10)
  gp <- ad_gradient(poisson_loss, poisson_par, X = poisson_x, y = poisson_y)
  expect_lt(max_abs_diff(run_trajectory(gp, poisson_par, NULL, 0, 1000),
                         run_trajectory(function(b) poisson_grad(b, poisson_x, poisson_y),
                                        poisson_par, NULL, 0, 1000)),
            1e-10)
})

# ---- the source: check, then bind, in one process ------------------------------

test_that("source_check() tapes once and source_bind() reuses that tape", {
  src <- rmsprop:::gradient_source("ad")
  batch <- logistic_data[1:25, ]
  before <- rmsprop:::ad_tapes_built()
  rmsprop:::source_check(src, logistic_loss, logistic_par, batch, list(), TRUE)
  expect_identical(rmsprop:::ad_tapes_built() - before, 1L)
  bound <- rmsprop:::source_bind(src, logistic_loss, list(), TRUE)
  expect_same_gradient(bound$gradient(logistic_par, batch), logistic_grad(logistic_par, batch))
  expect_identical(rmsprop:::ad_tapes_built() - before, 1L)
  expect_equal(bound$loss(logistic_par, batch), logistic_loss(logistic_par, batch))
  # another bind (another process would do the same) tapes for itself
  other <- rmsprop:::source_bind(src, logistic_loss, list(), TRUE)
  expect_same_gradient(other$gradient(logistic_par, batch), logistic_grad(logistic_par, batch))
  expect_identical(rmsprop:::ad_tapes_built() - before, 2L)
  # without data, with extra arguments
  dots <- list(X = poisson_x, y = poisson_y)
  rmsprop:::source_check(src, poisson_loss, poisson_par, NULL, dots, FALSE)
  bound <- rmsprop:::source_bind(src, poisson_loss, dots, FALSE)
  expect_same_gradient(bound$gradient(c(0.2, 0, 0.1), NULL),
                       poisson_grad(c(0.2, 0, 0.1), poisson_x, poisson_y))
  expect_identical(rmsprop:::ad_tapes_built() - before, 3L)
})

test_that("taping leaves RTMB's settings and the search path as they were", {
  config <- RTMB::TapeConfig()
  path <- search()
  g <- ad_gradient(net_loss, net_par)
  g(net_par, net_data[1:10, ])
  expect_identical(RTMB::TapeConfig(), config)
  expect_identical(search(), path)
  expect_error(ad_gradient(function(p) if (p[1] > 0) 1 else 2, c(1, 2)),
               class = "rmsprop_error_ad")
  expect_identical(RTMB::TapeConfig(), config)
  expect_identical(search(), path)
})

test_that("a gradient function read back from a file tapes again", {
  g <- ad_gradient(linear_loss, linear_par)
  batch <- linear_data[1:10, ]
  g(linear_par, batch)
  file <- tempfile(fileext = ".rds")
  on.exit(unlink(file))
  saveRDS(g, file)
  back <- readRDS(file)
  before <- rmsprop:::ad_tapes_built()
  expect_same_gradient(back(linear_par, batch), linear_grad(linear_par, batch))
  expect_identical(rmsprop:::ad_tapes_built() - before, 1L)
})

# ---- what cannot be taped --------------------------------------------------------

expect_ad_error <- function(expr, pattern) {
  err <- expect_error(expr, class = "rmsprop_error_ad")
  expect_match(conditionMessage(err), pattern, fixed = TRUE)
  invisible(err)
}

test_that("a branch on a parameter's value is a classed error naming the comparison", {
  expect_ad_error(ad_gradient(function(p) if (p[1] > 0) sum(p^2) else sum(p), c(1, 2)),
                  "`p[1] > 0` compares values that depend on the parameters")
  expect_ad_error(ad_gradient(function(p) sum(ifelse(p > 0, p, 0)), c(1, 2)),
                  "`ifelse(p > 0, p, 0)` compares")
  err <- expect_ad_error(ad_gradient(function(p) sum(pmax(p, 0)), c(1, 2)), "`pmax(p, 0)`")
  expect_match(conditionMessage(err), "(x + abs(x)) / 2", fixed = TRUE)
  # inside a helper the user wrote (at top level, as a user would)
  user <- new.env(parent = globalenv())
  local({
    relu <- function(z) pmax(z, 0)
    f <- function(p) sum(relu(p * 2))
  }, envir = user)
  expect_ad_error(ad_gradient(user$f, c(1, 2)), "`pmax(z, 0)`")
  # on the batch: a label tested row by row
  g <- ad_gradient(function(p, batch) sum(ifelse(batch$y == 1, log(p), log(1 - p))), 0.3)
  expect_ad_error(g(0.3, data.frame(y = c(0, 1, 1))), "compares values")
  # and the smooth rewrite the message suggests works
  relu2 <- function(p) sum((p + abs(p)) / 2)
  expect_equal(ad_gradient(relu2, c(1, -2))(c(1, -2)), c(1, 0))
})

test_that("functions RTMB cannot tape are named, with what to write instead", {
  expect_ad_error(ad_gradient(function(p) sum(round(p)), c(1, 2)), "round()")
  expect_ad_error(ad_gradient(function(p) sum(log10(p)), c(1, 2)), "log(x) / log(10)")
  expect_ad_error(ad_gradient(function(p) diff(range(p)), c(1, 2)), "c(min(x), max(x))")
  expect_ad_error(ad_gradient(function(p) sum(outer(p, p)), c(1, 2)), "lost RTMB's AD class")
  expect_ad_error(ad_gradient(function(p) var(p), c(1, 2)), "`var(p)` turns a value")
  expect_ad_error(ad_gradient(function(p) p^2, c(1, 2)), "must return one number")
  expect_ad_error(ad_gradient(function(p) sum(p * stats::rnorm(2)), c(1, 2)),
                  "its tape does not follow it")
  # an unknown failure keeps the underlying message
  expect_ad_error(ad_gradient(function(p) stop("my own bug"), c(1, 2)), "my own bug")
  # max() and min() are taped
  expect_equal(ad_gradient(function(p) max(p) - min(p), c(1, 3, 2))(c(1, 3, 2)), c(-1, 1, 0))
})

test_that("a choice frozen at taping by the batch's values is caught by the replay", {
  # indexing a matrix by labels read from the batch: the tape keeps the
  # first batch's labels
  f <- function(p, batch) {
    P <- matrix(p, 2, 3)
    -sum(log(P[cbind(batch$row, batch$label)]))
  }
  g <- ad_gradient(f, c(0.2, 0.3, 0.5, 0.1, 0.6, 0.3))
  expect_ad_error(g(c(0.2, 0.3, 0.5, 0.1, 0.6, 0.3), data.frame(row = c(1, 2), label = c(1, 3))),
                  "its tape does not follow it")
})

test_that("the batch must be numbers: data frames of numeric columns or numeric matrices", {
  g <- ad_gradient(function(p, batch) sum(p * batch$x), 1)
  expect_ad_error(g(1, data.frame(x = 1:3, f = factor(c("a", "b", "a")))),
                  "its column `f` is a factor")
  expect_ad_error(g(1, data.frame(x = 1:3, s = c("a", "b", "c"))), "column `s`")
  expect_ad_error(g(1, list(x = 1:3)), "the batch is a list")
  expect_error(ad_gradient("sum", 1), class = "rmsprop_error_argument")
  expect_error(ad_gradient(function(p) sum(p), list()), class = "rmsprop_error_structure")
})

test_that("without RTMB, ad_gradient() is a classed error with the install line", {
  skip_if_not_installed("callr")
  # A child R in which RTMB cannot be loaded: a library placed first holds
  # an "RTMB" that is not an installed package, which hides the real one.
  fake <- tempfile("lib")
  dir.create(file.path(fake, "RTMB"), recursive = TRUE)
  on.exit(unlink(fake, recursive = TRUE))
  writeLines(c("Package: RTMB", "Version: 0.0.1"), file.path(fake, "RTMB", "DESCRIPTION"))
  out <- callr::r(function(fake) {
    .libPaths(c(fake, .libPaths()))
    if (requireNamespace("RTMB", quietly = TRUE)) return("RTMB is visible")
    e <- tryCatch(rmsprop::ad_gradient(function(p) sum(p^2), 1), error = function(e) e)
    c(class(e)[1], conditionMessage(e))
  }, args = list(fake = fake))
  skip_if(identical(out, "RTMB is visible"), "RTMB cannot be hidden here")
  expect_identical(out[1], "rmsprop_error_dependency")
  expect_match(out[2], "install.packages(\"RTMB\")", fixed = TRUE)
})

test_that("RTMB's versions of sort() and order() are taped, not frozen", {
  f <- function(p) sum(sort(p) * c(1, 10, 100))
  g <- ad_gradient(f, c(3, 1, 2))
  expect_equal(g(c(3, 1, 2)), c(100, 1, 10))
  expect_equal(g(c(1, 3, 2)), c(1, 100, 10))
  h <- function(p, batch) sum(p[order(batch$x)] * 1:3)
  g <- ad_gradient(h, c(1, 2, 3))
  expect_equal(g(c(1, 2, 3), data.frame(x = c(3, 1, 2))), c(3, 1, 2))
  expect_equal(g(c(1, 2, 3), data.frame(x = c(1, 2, 3))), c(1, 2, 3))
})
