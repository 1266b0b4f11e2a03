# The SIMD / OpenMP kernels give exactly (bitwise) what a plain-R copy of the
# SPEC A1 formulas gives, for sizes around every vector width and the thread
# split, every (centered, momentum, weight decay) combination and the
# transformed-gradient path, with 1 and 2 threads. (bench/check-identical.R
# runs a larger version of this for each instruction set.)

kref_sumsq <- function(x) {
  # the kernels' fixed summation order: chunks of 4096, 8 lanes, see kernels_body.h
  total <- 0
  n <- length(x)
  if (n == 0) return(total)
  for (c0 in seq(1, n, by = 4096)) {
    xx <- x[c0:min(n, c0 + 4095)]
    m <- matrix(c(xx, rep(0, (8 - length(xx) %% 8) %% 8)), nrow = 8)
    l <- numeric(8)
    for (k in seq_len(ncol(m))) l <- l + m[, k] * m[, k]
    total <- total + (((l[1] + l[2]) + (l[3] + l[4])) + ((l[5] + l[6]) + (l[7] + l[8])))
  }
  total
}

# One step of SPEC A1 on a single variable, state in `s` (an environment).
kref_step <- function(s, cfg, g, v) {
  lr <- cfg$learning_rate
  if (!is.null(cfg$loss_scale_factor)) g <- g / cfg$loss_scale_factor
  k <- cfg$gradient_accumulation_steps
  if (!is.null(k) && (s$it + 1) %% k != 0) {
    s$acc <- s$acc + g
  } else {
    if (!is.null(k)) {
      g <- (g + s$acc) / k
      s$acc <- numeric(length(s$acc))
    }
    if (!is.null(cfg$clipnorm)) g <- g * cfg$clipnorm / max(sqrt(kref_sumsq(g)), cfg$clipnorm)
    if (!is.null(cfg$clipvalue)) g <- pmin(pmax(g, -cfg$clipvalue), cfg$clipvalue)
    if (!is.null(cfg$weight_decay)) v <- v - v * cfg$weight_decay * lr
    s$ms <- cfg$rho * s$ms + (1 - cfg$rho) * g^2
    if (cfg$centered) {
      s$mg <- cfg$rho * s$mg + (1 - cfg$rho) * g
      den <- s$ms - s$mg^2 + cfg$epsilon
    } else {
      den <- s$ms + cfg$epsilon
    }
    inc <- lr * g / sqrt(den)
    if (cfg$momentum > 0) {
      s$mom <- cfg$momentum * s$mom + inc
      v <- v - s$mom
    } else {
      v <- v - inc
    }
  }
  if (isTRUE(cfg$use_ema)) {
    it <- if (is.null(k)) s$it else s$it %/% k
    m <- if (it == 0) 0 else cfg$ema_momentum
    s$avg <- m * s$avg + (1 - m) * v
    f <- cfg$ema_overwrite_frequency
    if (!is.null(f) && (it + 1) %% f == 0) v <- s$avg
  }
  s$it <- s$it + 1
  v
}

kernel_case <- function(cfg, n, steps = 3, in_place = FALSE) {
  full <- utils::modifyList(list(learning_rate = 0.01, rho = 0.9, momentum = 0, epsilon = 1e-7,
                                 centered = FALSE, ema_momentum = 0.99), cfg)
  set.seed(n + steps)
  v <- rnorm(n)
  s <- new.env()
  s$it <- 0
  s$ms <- s$mg <- s$mom <- s$avg <- s$acc <- numeric(n)
  opt <- do.call(optimizer_rmsprop, full)
  pv <- v + 0
  rv <- v
  for (i in seq_len(steps)) {
    g <- rnorm(n) * 3
    if (in_place) opt$step_in_place(g, pv) else pv <- opt$step(g, pv)
    rv <- kref_step(s, full, g, rv)
    if (!identical(pv, rv)) return(FALSE)
  }
  st <- opt$variables
  identical(as.vector(st[["rmsprop/variable_velocity"]]), s$ms) &&
    (full$momentum == 0 || identical(as.vector(st[["rmsprop/variable_momentum"]]), s$mom)) &&
    (!full$centered || identical(as.vector(st[["rmsprop/variable_average_gradient"]]), s$mg))
}

test_that("kernel info reports an instruction set and a thread count", {
  info <- rmsprop_kernel_info()
  expect_true(info$isa %in% c("avx2", "sse2", "scalar"))
  expect_true(is.numeric(info$threads) && info$threads >= 1)
  old <- rmsprop_set_threads(1)
  on.exit(rmsprop_set_threads(0))
  expect_equal(rmsprop_kernel_info()$threads, 1L)
  rmsprop_set_threads(0)
  expect_equal(rmsprop_kernel_info()$threads, info$threads)
})

test_that("kernels are bit-identical to plain R for every combination, size and thread count", {
  on.exit(rmsprop_set_threads(0))
  transforms <- list(list(), list(loss_scale_factor = 3), list(loss_scale_factor = 64),
                     list(clipvalue = 1), list(clipnorm = 5),
                     list(gradient_accumulation_steps = 3, use_ema = TRUE,
                          ema_overwrite_frequency = 2))
  for (threads in c(1, 2)) {
    rmsprop_set_threads(threads)
    for (centered in c(FALSE, TRUE)) for (momentum in c(0, 0.9)) for (wd in list(NULL, 0.01)) {
      base <- list(centered = centered, momentum = momentum, weight_decay = wd)
      for (tr in transforms) {
        cfg <- utils::modifyList(base, tr)
        for (n in c(0, 1, 3, 5, 8, 17, 100)) {
          expect_true(kernel_case(cfg, n, steps = if (is.null(cfg$gradient_accumulation_steps)) 3 else 4),
                      label = sprintf("threads %d, centered %s, momentum %g, wd %s, %s, n = %d",
                                      threads, centered, momentum, format(wd),
                                      paste(names(tr), collapse = "+"), n))
        }
      }
      # a size that the kernels split across threads
      expect_true(kernel_case(base, 1e5 + 3, steps = 2))
      expect_true(kernel_case(base, 1e5 + 3, steps = 2, in_place = TRUE))
    }
    expect_true(kernel_case(list(clipnorm = 50, loss_scale_factor = 3), 1e5 + 3, steps = 2))
  }
})

test_that("results do not depend on the thread count", {
  on.exit(rmsprop_set_threads(0))
  run <- function(threads) {
    # More threads than cores are clamped to the cores (with a warning).
    suppressWarnings(rmsprop_set_threads(threads), classes = "rmsprop_warning_threads")
    opt <- optimizer_rmsprop(global_clipnorm = 1, momentum = 0.9, centered = TRUE, use_ema = TRUE)
    set.seed(7)
    v <- list(a = rnorm(2e5 + 1), b = rnorm(5))
    for (i in 1:3) v <- opt$step(list(a = rnorm(2e5 + 1), b = rnorm(5)), v)
    list(v, opt$variables)
  }
  expect_identical(run(1), run(2))
  expect_identical(run(1), run(3))
})
