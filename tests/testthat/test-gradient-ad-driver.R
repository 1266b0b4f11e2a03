# gr = "ad" through the training driver: minimize() trajectories agree with
# hand-written gradients after 1,000 steps (full batch and mini-batches with
# a short last batch); validation, metrics, callbacks, checkpoints (a resumed
# run rebuilds its tapes and ends bit-identical), engines (each worker tapes
# for itself) and sweeps.

skip_if_not_installed("RTMB")
local_interrupt_return()

set.seed(31)
gd_n <- 70   # batches of 16: four full ones and a short one of 6
gd_x <- matrix(rnorm(gd_n * 3), gd_n, 3)
gd_data <- data.frame(y = rbinom(gd_n, 1, plogis(gd_x %*% c(1, -1, 0.5))), x = I(gd_x))
gd_par <- list(w = c(0.1, -0.1, 0), b = 0)
gd_loss <- function(par, batch) {
  eta <- drop(batch$x %*% par$w) + par$b
  mean(log1p(exp(eta)) - batch$y * eta)
}
gd_grad <- function(par, batch) {
  r <- (plogis(drop(batch$x %*% par$w) + par$b) - batch$y) / nrow(batch)
  list(w = drop(crossprod(batch$x, r)), b = sum(r))
}
gd_run <- function(gr, ..., epochs = 2, batch_size = 16, seed = 1) {
  set.seed(seed)
  minimize(gd_par, gd_loss, gr, data = gd_data, batch_size = batch_size, epochs = epochs,
           progress = FALSE, optimizer = optimizer_rmsprop(1e-3), ...)
}
gd_diff <- function(a, b) max(abs(unlist(a) - unlist(b)))

test_that("1,000 steps with AD and with hand-written gradients agree to 1e-10", {
  # without data: the rows are constants of the loss (a plain matrix here)
  full_loss <- function(p) {
    eta <- drop(gd_x %*% p$w) + p$b
    mean(log1p(exp(eta)) - gd_data$y * eta)
  }
  full_ad <- minimize(gd_par, full_loss, "ad", steps = 1000,
                      progress = FALSE, optimizer = optimizer_rmsprop(1e-3))
  full_hand <- minimize(gd_par, function(p) gd_loss(p, gd_data),
                        function(p) gd_grad(p, gd_data), steps = 1000, progress = FALSE,
                        optimizer = optimizer_rmsprop(1e-3))
  expect_lt(gd_diff(full_ad$par, full_hand$par), 1e-10)
  expect_lt(max(abs(full_ad$history$loss - full_hand$history$loss)), 1e-10)
  expect_identical(full_ad$gradient, "ad")
  mini_ad <- gd_run("ad", epochs = 200)       # 5 batches per epoch: 1,000 steps
  mini_hand <- gd_run(gd_grad, epochs = 200)
  expect_identical(mini_ad$steps, 1000L)
  expect_lt(gd_diff(mini_ad$par, mini_hand$par), 1e-10)
  expect_lt(max(abs(mini_ad$history$grad_norm - mini_hand$history$grad_norm)), 1e-10)
})

test_that("a matrix kept with I() is a constant the tape can multiply", {
  d <- gd_data
  f <- function(p) mean((d$x %*% p$w + p$b - d$y)^2)
  g <- ad_gradient(f, gd_par)
  r <- drop(gd_x %*% gd_par$w + gd_par$b - gd_data$y)
  expect_equal(g(gd_par), list(w = drop(2 * crossprod(gd_x, r)) / gd_n, b = 2 * mean(r)),
               tolerance = 1e-12)
})

test_that("validation, metrics and callbacks work with AD gradients", {
  acc <- function(par, rows) mean((drop(rows$x %*% par$w) + par$b > 0) == (rows$y == 1))
  a <- gd_run("ad", validation_data = gd_data[1:20, ], metrics = list(accuracy = acc),
              callbacks = list(callback_early_stopping("val_loss", patience = 2)), epochs = 5)
  h <- gd_run(gd_grad, validation_data = gd_data[1:20, ], metrics = list(accuracy = acc),
              callbacks = list(callback_early_stopping("val_loss", patience = 2)), epochs = 5)
  expect_equal(a$history, h$history, tolerance = 1e-12)
})

test_that("a resumed AD run rebuilds its tapes and ends bit-identical", {
  dir <- tempfile("ad-ck-")
  dir.create(dir)
  cbs <- list(callback_backup_and_restore(dir))
  ref <- gd_run("ad", epochs = 4)
  stop_at <- function(info) {
    if (info$step == 7) signalCondition(structure(class = c("interrupt", "condition"), list()))
  }
  expect_message(gd_run("ad", epochs = 4, callbacks = cbs, callback = stop_at), "interrupted")
  again <- suppressMessages(gd_run("ad", epochs = 4, callbacks = cbs))
  expect_identical(again$resumed_from, 7L)
  expect_identical(again$par, ref$par)
  expect_identical(again$history, ref$history)
  # a checkpoint written with the hand-written gradient is not an AD run's
  expect_message(gd_run(gd_grad, epochs = 4, callbacks = cbs, callback = stop_at),
                 "interrupted")
  expect_error(gd_run("ad", epochs = 4, callbacks = cbs), "`gr` differs",
               class = "rmsprop_error_checkpoint")
})

test_that("engines: every worker tapes for itself, with the same numbers", {
  seq2 <- gd_run("ad", engine = rmsprop_engine("sequential", shards = 2))
  local <- gd_run("ad")
  expect_lt(gd_diff(seq2$par, local$par), 1e-12)
  cl <- parallel::makeCluster(2L)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  expect_identical(gd_run("ad", engine = cl)$par, seq2$par)
  if (requireNamespace("mirai", quietly = TRUE)) {
    mirai::daemons(2L)
    on.exit(mirai::daemons(0L), add = TRUE)
    expect_identical(gd_run("ad", engine = "mirai")$par, seq2$par)
  }
})

test_that("sweeps take gr = \"ad\"", {
  grid <- data.frame(learning_rate = c(1e-3, 1e-2))
  sw <- sweep_optimizers(grid, gd_par, gd_loss, "ad", data = gd_data, batch_size = 16,
                         epochs = 2, seed = 5)
  set.seed(5)
  one <- minimize(gd_par, gd_loss, "ad", data = gd_data, batch_size = 16, epochs = 2,
                  progress = FALSE, optimizer = optimizer_rmsprop(1e-2))
  expect_identical(sw$loss[sw$config == 2], one$history$loss)
  expect_error(sweep_optimizers(grid, gd_par, function(p, batch) if (p$b > 0) 1 else 0, "ad",
                                data = gd_data, epochs = 1),
               class = "rmsprop_error_ad")
})
