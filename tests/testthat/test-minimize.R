# minimize(): the optim()-style driver.

# Interrupts here are simulated in a non-interactive session: ask for the
# interactive behaviour (the partial result) unless a test says otherwise.
local_interrupt_return()

# Least squares and logistic regression on mtcars, the Rosenbrock function.
mt_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")]))))
mt_mpg <- mtcars$mpg
mt_am <- mtcars$am
ls_loss <- function(b) mean((mt_mpg - mt_x %*% b)^2)
ls_grad <- function(b) -2 * drop(crossprod(mt_x, mt_mpg - mt_x %*% b)) / nrow(mt_x)
nll <- function(b) {
  eta <- drop(mt_x %*% b)
  mean(log1p(exp(eta)) - mt_am * eta)
}
nll_grad <- function(b) drop(crossprod(mt_x, stats::plogis(drop(mt_x %*% b)) - mt_am)) / nrow(mt_x)
rosen <- function(p) (1 - p[1])^2 + 100 * (p[2] - p[1]^2)^2
rosen_grad <- function(p) {
  c(-2 * (1 - p[1]) - 400 * p[1] * (p[2] - p[1]^2), 200 * (p[2] - p[1]^2))
}
decaying <- function(lr, every) learning_rate_schedule_exponential_decay(lr, every, 0.5)
signal_interrupt <- function() {
  signalCondition(structure(class = c("interrupt", "condition"), list()))
}

test_that("least squares converges to the lm() coefficients", {
  fit <- minimize(c(0, 0, 0), ls_loss, ls_grad, steps = 2000,
                  optimizer = optimizer_rmsprop(decaying(0.5, 100)))
  ref <- unname(coef(lm(mt_mpg ~ mt_x - 1)))
  expect_s3_class(fit, "rmsprop_fit")
  expect_equal(fit$par, ref, tolerance = 1e-8)
  expect_equal(fit$value, ls_loss(ref), tolerance = 1e-10)
  expect_identical(fit$convergence, 1L)
  expect_identical(fit$counts, c(`function` = 2001, gradient = 2000))
})

test_that("logistic regression converges to the glm() coefficients", {
  fit <- minimize(c(0, 0, 0), nll, nll_grad, steps = 2000,
                  optimizer = optimizer_rmsprop(decaying(0.05, 500)))
  ref <- unname(coef(glm(mt_am ~ mt_x - 1, family = binomial)))
  expect_equal(fit$par, ref, tolerance = 1e-8)
  expect_lt(fit$value, nll(c(0, 0, 0)))
})

test_that("Rosenbrock reaches (1, 1)", {
  fit <- minimize(c(-1.2, 1), rosen, rosen_grad, steps = 5000,
                  optimizer = optimizer_rmsprop(decaying(0.01, 1000), momentum = 0.9))
  expect_equal(fit$par, c(1, 1), tolerance = 1e-2)
  expect_lt(fit$value, 1e-3)
})

test_that("the driver is exactly a loop of opt$step(), on a clone", {
  configs <- list(
    list(learning_rate = 0.05),
    list(learning_rate = decaying(0.05, 30), momentum = 0.5, centered = TRUE),
    list(learning_rate = 0.02, use_ema = TRUE, ema_momentum = 0.9, weight_decay = 0.01),
    list(learning_rate = 0.02, gradient_accumulation_steps = 3, clipnorm = 1)
  )
  for (cfg in configs) {
    user_opt <- do.call(optimizer_rmsprop, cfg)
    fit <- minimize(c(0.5, -0.5, 1), nll, nll_grad, optimizer = user_opt, steps = 75)
    opt <- do.call(optimizer_rmsprop, cfg)
    b <- c(0.5, -0.5, 1)
    for (i in 1:75) b <- opt$step(nll_grad(b), b)
    expect_identical(fit$par, opt$finalize_variable_values(b))
    expect_identical(fit$optimizer$iterations, opt$iterations)
    # the optimizer passed in was not stepped
    expect_identical(user_opt$iterations, 0)
  }
})

test_that("training can continue from the returned optimizer", {
  opt <- optimizer_rmsprop(decaying(0.05, 40), momentum = 0.3)
  first <- minimize(c(1, 1, 1), nll, nll_grad, optimizer = opt, steps = 60)
  second <- minimize(first$par, nll, nll_grad, optimizer = first$optimizer, steps = 40)
  whole <- minimize(c(1, 1, 1), nll, nll_grad, optimizer = opt, steps = 100)
  expect_identical(second$par, whole$par)
  expect_identical(first$optimizer$iterations, 60)
  expect_identical(second$history$learning_rate, whole$history$learning_rate[61:100])
})

test_that("the numerical gradient agrees with the analytic one", {
  set.seed(42)
  for (i in 1:5) {
    b <- rnorm(3)
    expect_equal(numerical_gradient(nll, b), nll_grad(b), tolerance = 1e-8)
    expect_equal(numerical_gradient(ls_loss, b * 10), ls_grad(b * 10), tolerance = 1e-8)
  }
  p <- c(-1.2, 1)
  expect_equal(numerical_gradient(rosen, p), rosen_grad(p), tolerance = 1e-8)

  analytic <- minimize(c(0, 0, 0), nll, nll_grad, steps = 1500,
                       optimizer = optimizer_rmsprop(decaying(0.05, 300)))
  numeric <- minimize(c(0, 0, 0), nll, steps = 1500,
                      optimizer = optimizer_rmsprop(decaying(0.05, 300)))
  expect_equal(numeric$par, analytic$par, tolerance = 1e-6)
  expect_identical(numeric$counts, c(`function` = 1501, gradient = 1500))
})

test_that("lists, matrices and names survive, also with a numerical gradient", {
  par <- list(w = matrix(c(1, 2, 3, 4), 2, dimnames = list(c("a", "b"), NULL)),
              b = list(bias = c(x = 0.5)), n = 2L)
  fn <- function(p) sum((p$w - 1)^2) + (p$b$bias - 2)^2 + p$n^2
  gr <- function(p) list(w = 2 * (p$w - 1), b = list(bias = 2 * (p$b$bias - 2)), n = 2 * p$n)
  fit <- minimize(par, fn, gr, steps = 20)
  fit_num <- minimize(par, fn, steps = 20)
  for (f in list(fit, fit_num)) {
    expect_named(f$par, c("w", "b", "n"))
    expect_identical(dimnames(f$par$w), dimnames(par$w))
    expect_named(f$par$b$bias, "x")
    expect_type(f$par$n, "double")
  }
  expect_equal(unlist(fit_num$par), unlist(fit$par), tolerance = 1e-8)
  expect_equal(numerical_gradient(fn, par), gr(fit_check_par(par)), tolerance = 1e-8)
})

test_that("the history records every step", {
  sched <- learning_rate_schedule_cosine_decay(0.05, 40)
  fit <- minimize(c(0, 0, 0), nll, nll_grad, steps = 50,
                  optimizer = optimizer_rmsprop(sched))
  h <- fit$history
  expect_s3_class(h, "data.frame")
  expect_named(h, c("step", "loss", "learning_rate", "grad_norm"))
  expect_identical(h$step, 1:50)
  expect_identical(h$loss[1], nll(c(0, 0, 0)))
  expect_equal(h$grad_norm[1], sqrt(sum(nll_grad(c(0, 0, 0))^2)))
  expect_equal(h$learning_rate, vapply(0:49, function(s) sched(s), numeric(1)))
  expect_identical(fit$steps, 50L)
  # loss is recorded at the parameters before each step
  opt <- optimizer_rmsprop(sched)
  b <- c(0, 0, 0)
  for (i in 1:10) b <- opt$step(nll_grad(b), b)
  expect_identical(h$loss[11], nll(b))
})

test_that("print, format, summary, as.data.frame and plot work", {
  fit <- minimize(c(a = 0, b = 0, c = 0), ls_loss, ls_grad, steps = 30)
  expect_output(print(fit), "rmsprop_fit")
  utils::capture.output(out <- withVisible(print(fit)))
  expect_false(out$visible)
  expect_identical(out$value, fit)
  expect_type(format(fit), "character")
  s <- summary(fit)
  expect_s3_class(s, "summary.rmsprop_fit")
  expect_output(print(s), "parameters:")
  expect_output(print(s), "learning rate: 0.01")
  expect_identical(rownames(s$par), c("a", "b", "c"))
  expect_identical(as.data.frame(fit), fit$history)

  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off(), add = TRUE)
  before <- graphics::par(c("mfrow", "mar"))
  expect_invisible(plot(fit))
  expect_identical(graphics::par(c("mfrow", "mar")), before)
  negative <- minimize(1, function(p) p^2 - 5, function(p) 2 * p, steps = 5)
  expect_silent(plot(negative))
  set.seed(1)
  batched <- minimize(c(0, 0, 0), function(b, d) mean((d$y - d$x %*% b)^2),
                      data = data.frame(y = mt_mpg, x = I(mt_x)), batch_size = 10, epochs = 3)
  expect_silent(plot(batched))
  expect_output(print(batched), "3 epochs")
})

test_that("a callback sees each step and can stop the run", {
  seen <- list()
  cb <- function(info) {
    seen[[length(seen) + 1L]] <<- info
    info$step < 5
  }
  fit <- minimize(c(0, 0, 0), ls_loss, ls_grad, steps = 100, callback = cb)
  expect_identical(fit$convergence, 2L)
  expect_match(fit$message, "callback")
  expect_identical(fit$steps, 5L)
  expect_identical(nrow(fit$history), 5L)
  expect_length(seen, 5L)
  expect_named(seen[[1]], c("step", "epoch", "loss", "par", "grad_norm", "learning_rate",
                           "epoch_end"))
  expect_true(all(vapply(seen, `[[`, TRUE, "epoch_end")))   # without data every step is an epoch
  expect_identical(seen[[5]]$par, fit$par)
  expect_identical(seen[[3]]$loss, fit$history$loss[3])
  # anything but FALSE continues
  fit2 <- minimize(c(0, 0, 0), ls_loss, ls_grad, steps = 10, callback = function(info) NULL)
  expect_identical(fit2$steps, 10L)
})

test_that("an interrupt returns the parameters reached so far", {
  cb <- function(info) if (info$step == 7) signal_interrupt()
  expect_message(
    fit <- minimize(c(0, 0, 0), ls_loss, ls_grad, steps = 100, callback = cb),
    "interrupted"
  )
  expect_identical(fit$convergence, 3L)
  expect_match(fit$message, "interrupted after step 7")
  opt <- optimizer_rmsprop(0.01)
  b <- c(0, 0, 0)
  for (i in 1:7) b <- opt$step(ls_grad(b), b)
  expect_identical(fit$par, b)
  expect_identical(fit$value, ls_loss(b))
  expect_identical(nrow(fit$history), 7L)
})

test_that("tol stops the run when the loss stops changing", {
  fit <- minimize(c(0, 0, 0), ls_loss, ls_grad, tol = 1e-9, steps = 5000,
                  optimizer = optimizer_rmsprop(decaying(0.1, 200)))
  expect_identical(fit$convergence, 0L)
  expect_match(fit$message, "converged")
  expect_lt(fit$steps, 5000L)
  fit2 <- minimize(0.1, function(p) p^2, function(p) 2 * p, tol = 0.5, steps = 100)
  expect_identical(fit2$convergence, 0L)
  expect_identical(fit2$steps, 1L)
  expect_match(fit2$message, "gradient norm")
})

test_that("non-finite losses and gradients stop the run cleanly", {
  fn <- function(b) if (b[1] > 0.025) NaN else ls_loss(b)
  opt0 <- optimizer_rmsprop(0.002)
  expect_warning(
    fit <- minimize(c(0, 0, 0), fn, ls_grad, steps = 100, optimizer = opt0),
    class = "rmsprop_warning_nonfinite"
  )
  # the hand loop: the first parameters whose loss is not finite are after step k
  opt <- optimizer_rmsprop(0.002)
  path <- list(c(0, 0, 0))
  repeat {
    b <- path[[length(path)]]
    if (!is.finite(fn(b))) break
    path[[length(path) + 1L]] <- opt$step(ls_grad(b), b)
  }
  k <- length(path) - 1L
  expect_gt(k, 3L)
  expect_identical(fit$convergence, 4L)
  expect_identical(fit$steps, k)
  expect_identical(fit$par, path[[k]])          # the last parameters with a finite loss
  expect_true(is.finite(fit$value))
  expect_identical(fit$value, ls_loss(path[[k]]))
  expect_identical(fit$value, fit$history$loss[k])
  expect_match(fit$message, "last ones whose loss was finite")
  expect_identical(fit$optimizer$iterations, as.numeric(fit$steps))
  expect_true(all(is.finite(fit$history$loss)))

  gr <- function(b) if (b[1] > 0.025) c(Inf, 0, 0) else ls_grad(b)
  expect_warning(fit2 <- minimize(c(0, 0, 0), ls_loss, gr, steps = 100, optimizer = opt0),
                 "gradient is not finite")
  expect_identical(fit2$convergence, 4L)
  expect_identical(fit2$optimizer$iterations, as.numeric(fit2$steps))
  # the loss is finite where the gradient is not: those parameters are returned
  expect_identical(fit2$par, path[[k + 1L]])
  expect_identical(fit2$value, ls_loss(path[[k + 1L]]))

  expect_error(minimize(c(0, 0, 0), function(b) NA_real_, ls_grad),
               class = "rmsprop_error_value")
  expect_error(minimize(c(0, 0, 0), ls_loss, function(b) c(NaN, 0, 0)),
               "initial parameters", class = "rmsprop_error_value")
  # a norm that overflows is not a non-finite gradient
  big <- minimize(c(0, 0), function(p) sum(p), function(p) c(1e200, 1e200), steps = 3)
  expect_identical(big$convergence, 1L)
})

test_that("mini-batches visit every row once per epoch, reproducibly", {
  d <- data.frame(y = mt_mpg, x = I(mt_x))
  fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
  gr <- function(b, batch) drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)
  rows_seen <- list()
  gr_log <- function(b, batch) {
    rows_seen[[length(rows_seen) + 1L]] <<- rownames(batch)
    gr(b, batch)
  }
  set.seed(7)
  fit <- minimize(c(0, 0, 0), fn, gr_log, data = d, batch_size = 10, epochs = 3)
  expect_identical(fit$steps, 12L)
  expect_identical(fit$epochs, 3L)
  expect_identical(fit$history$epoch, rep(1:3, each = 4))
  expect_identical(lengths(rows_seen), rep(c(10L, 10L, 10L, 2L), 3))
  set.seed(7)
  for (e in 1:3) {
    order <- sample.int(32)
    expect_identical(unlist(rows_seen[(4 * e - 3):(4 * e)]), as.character(order))
  }
  set.seed(7)
  again <- minimize(c(0, 0, 0), fn, gr, data = d, batch_size = 10, epochs = 3)
  expect_identical(again$par, fit$par)
  expect_identical(again$history, fit$history)
  set.seed(8)
  other <- minimize(c(0, 0, 0), fn, gr, data = d, batch_size = 10, epochs = 3)
  expect_false(identical(other$par, fit$par))
  # value is the loss on all the rows
  expect_identical(fit$value, fn(fit$par, d))
  expect_identical(fit$counts, c(`function` = 13, gradient = 12))

  # without shuffling: a hand-written loop over consecutive chunks
  fit_ordered <- minimize(c(0, 0, 0), fn, gr, data = d, batch_size = 10, epochs = 2,
                          shuffle = FALSE)
  opt <- optimizer_rmsprop(0.01)
  b <- c(0, 0, 0)
  for (e in 1:2) for (chunk in split(1:32, ceiling(1:32 / 10))) {
    b <- opt$step(gr(b, d[chunk, , drop = FALSE]), b)
  }
  expect_identical(fit_ordered$par, b)

  # steps caps the run
  capped <- minimize(c(0, 0, 0), fn, gr, data = d, batch_size = 10, epochs = 3, steps = 6)
  expect_identical(capped$steps, 6L)
  expect_identical(capped$convergence, 1L)
  expect_identical(capped$epochs, 1L)
})

test_that("one batch of all rows is the full-batch run", {
  d <- as.matrix(data.frame(y = mt_mpg, mt_x))
  fn <- function(b, m) mean((m[, 1] - m[, -1] %*% b)^2)
  gr <- function(b, m) drop(-2 * crossprod(m[, -1], m[, 1] - m[, -1] %*% b)) / nrow(m)
  batched <- minimize(c(0, 0, 0), fn, gr, data = d, epochs = 200, shuffle = FALSE)
  plain <- minimize(c(0, 0, 0), ls_loss, ls_grad, steps = 200)
  expect_equal(batched$par, plain$par, tolerance = 1e-12)
  expect_identical(batched$steps, 200L)
})

test_that("extra arguments reach fn and gr", {
  fn <- function(p, target, scale) scale * sum((p - target)^2)
  gr <- function(p, target, scale) 2 * scale * (p - target)
  fit <- minimize(c(0, 0), fn, gr, target = c(1, -1), scale = 2, steps = 3000,
                  optimizer = optimizer_rmsprop(decaying(0.05, 500)))
  expect_equal(fit$par, c(1, -1), tolerance = 1e-6)
})

test_that("bad arguments are classed errors naming the argument", {
  expect_error(minimize("a", ls_loss), "`par`", class = "rmsprop_error_argument")
  expect_error(minimize(list(1, "b"), ls_loss), "`par`", class = "rmsprop_error_argument")
  expect_error(minimize(numeric(0), ls_loss), "`par`", class = "rmsprop_error_argument")
  expect_error(minimize(c(1, NA), ls_loss), "`par`", class = "rmsprop_error_argument")
  expect_error(minimize(1, "fn"), "`fn`", class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, gr = 3), "`gr`", class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, steps = 0), "`steps`", class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, steps = 2.5), "`steps`", class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, tol = -1), "`tol`", class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, optimizer = list()), "`optimizer`",
               class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, data = 1:3), "`data`", class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, data = mtcars[0, ]), "`data`",
               class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, batch_size = 3), "`batch_size`",
               class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, data = mtcars, epochs = 0), "`epochs`",
               class = "rmsprop_error_argument")
  expect_error(minimize(1, ls_loss, callback = TRUE), "`callback`",
               class = "rmsprop_error_argument")
  expect_error(minimize(1, function(p) c(1, 2), function(p) 1), "single number",
               class = "rmsprop_error_value")
  expect_error(minimize(1, function(p) "a", function(p) 1), "single number",
               class = "rmsprop_error_value")
})

test_that("a gradient with the wrong structure is the optimizer's error", {
  opt <- optimizer_rmsprop(0.1)
  expect_error(minimize(c(1, 2), function(p) sum(p^2), function(p) 1, optimizer = opt),
               class = "rmsprop_error")
  expect_identical(opt$iterations, 0)
})

test_that("the history has the rate each step used; a rate function runs once per step", {
  calls <- 0
  rate <- function(step) {
    calls <<- calls + 1
    0.05 / (1 + step)
  }
  fit <- minimize(c(0, 0, 0), ls_loss, ls_grad, steps = 30, progress = FALSE,
                  optimizer = optimizer_rmsprop(rate))
  # minimize() steps a clone, whose rate function has its own copy of `calls`.
  expect_identical(calls, 0)
  expect_identical(environment(fit$optimizer$get_config()$learning_rate)$calls, 30)
  expect_identical(fit$history$learning_rate, 0.05 / (1 + 0:29))
})

test_that("minimize() equals the documented loop bit for bit with a rate that changes on every call", {
  # A function without arguments whose value changes on each call: any
  # extra call (to record the rate, say) would change the run.
  make_rate <- function() {
    n <- 0
    function() {
      n <<- n + 1
      0.1 / sqrt(n)
    }
  }
  fit <- minimize(c(0, 0, 0), ls_loss, ls_grad, steps = 10, progress = FALSE,
                  optimizer = optimizer_rmsprop(learning_rate = make_rate()))
  opt <- optimizer_rmsprop(learning_rate = make_rate())
  b <- c(0, 0, 0)
  for (i in 1:10) b <- opt$step(ls_grad(b), b)
  expect_identical(fit$par, b)
  expect_identical(fit$history$learning_rate, 0.1 / sqrt(1:10))
  expect_identical(fit$optimizer$last_learning_rate, opt$last_learning_rate)
  # The same with mini-batches, a callback and the progress line quiet.
  d <- data.frame(i = 1:20)
  f <- function(p, batch) sum((p - mean(batch$i))^2)
  g <- function(p, batch) 2 * (p - mean(batch$i))
  set.seed(3)
  fit <- minimize(c(0, 0), f, g, data = d, batch_size = 6, epochs = 3, progress = FALSE,
                  callback = function(info) TRUE,
                  optimizer = optimizer_rmsprop(learning_rate = make_rate()))
  set.seed(3)
  opt <- optimizer_rmsprop(learning_rate = make_rate())
  p <- c(0, 0)
  for (e in 1:3) {
    order <- sample.int(20)
    for (b in split(order, ceiling(seq_along(order) / 6))) p <- opt$step(g(p, d[b, , drop = FALSE]), p)
  }
  expect_identical(fit$par, p)
  expect_identical(fit$history$learning_rate, 0.1 / sqrt(1:12))
})

test_that("the history grows with the steps taken, not with the step limit", {
  # steps = .Machine$integer.max sized four history vectors of 2^31 values up
  # front (found by tools/fuzz.R: the R process was killed for memory).
  fn <- function(p) sum((p - 3)^2)
  gr <- function(p) 2 * (p - 3)
  before <- gc(reset = TRUE)[2, 2]
  fit <- minimize(c(1, 2), fn, gr, steps = 1e7, callback = function(info) info$step < 5)
  expect_lt(gc()[2, 6] - before, 50) # Mb; sized for 1e7 steps it was about 280
  expect_identical(fit$steps, 5L)
  # Past the first allocation (1024 steps) the history doubles, NA-free.
  fit <- minimize(c(1, 2), fn, gr, steps = .Machine$integer.max,
                  optimizer = optimizer_rmsprop(learning_rate = 0.001),
                  callback = function(info) info$step < 2500)
  expect_identical(nrow(fit$history), 2500L)
  expect_identical(fit$history$step, seq_len(2500))
  expect_false(anyNA(fit$history$loss) || anyNA(fit$history$grad_norm) ||
                 anyNA(fit$history$learning_rate))
  ref <- minimize(c(1, 2), fn, gr, steps = 2500, optimizer = optimizer_rmsprop(learning_rate = 0.001))
  expect_identical(fit$par, ref$par)
  expect_identical(fit$history$loss, ref$history$loss)
})
