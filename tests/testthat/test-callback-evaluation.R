# metrics = list(...) and the validation loss (the evaluation callback):
# per-epoch columns of the history checked against plain-R replays of the
# same run, keras3's mode = "auto" rule, and monitoring a metric.

ev_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")]))))
ev_data <- data.frame(am = mtcars$am, x = I(ev_x))
ev_train <- ev_data[1:24, ]
ev_valid <- ev_data[25:32, ]
ev_fn <- function(b, batch) {
  eta <- drop(batch$x %*% b)
  mean(log1p(exp(eta)) - batch$am * eta)
}
ev_gr <- function(b, batch) {
  p <- 1 / (1 + exp(-drop(batch$x %*% b)))
  drop(crossprod(batch$x, p - batch$am)) / nrow(batch)
}
ev_accuracy <- function(b, rows) mean((drop(rows$x %*% b) > 0) == (rows$am == 1))
ev_brier <- function(b, rows) mean((1 / (1 + exp(-drop(rows$x %*% b))) - rows$am)^2)

# The same run by hand: the parameters at the end of every epoch.
ev_epoch_ends <- function(epochs, batch_size, lr = 0.1) {
  opt <- optimizer_rmsprop(lr)
  b <- c(0, 0, 0)
  ends <- list()
  n <- nrow(ev_train)
  for (e in seq_len(epochs)) {
    order <- sample.int(n)
    for (k in seq_len(ceiling(n / batch_size))) {
      rows <- ev_train[order[((k - 1) * batch_size + 1):min(k * batch_size, n)], ]
      b <- opt$step(ev_gr(b, rows), b)
    }
    ends[[e]] <- b
  }
  ends
}

test_that("metrics are recorded per epoch on the training and validation rows", {
  set.seed(5)
  fit <- minimize(c(0, 0, 0), ev_fn, ev_gr, data = ev_train, validation_data = ev_valid,
                  batch_size = 8, epochs = 6, progress = FALSE,
                  optimizer = optimizer_rmsprop(0.1),
                  metrics = list(accuracy = ev_accuracy, brier = ev_brier))
  set.seed(5)
  ends <- ev_epoch_ends(6, 8)
  h <- fit$history
  expect_identical(names(h), c("step", "epoch", "loss", "learning_rate", "grad_norm",
                               "accuracy", "brier", "val_loss", "val_accuracy", "val_brier"))
  last <- h$step[!is.na(h$val_loss)]
  expect_identical(last, 3L * (1:6))       # 3 batches per epoch: the last step of each
  expect_true(all(is.na(h$accuracy[-last])))
  expect_identical(h$accuracy[last], vapply(ends, ev_accuracy, 1, rows = ev_train))
  expect_identical(h$brier[last], vapply(ends, ev_brier, 1, rows = ev_train))
  expect_identical(h$val_accuracy[last], vapply(ends, ev_accuracy, 1, rows = ev_valid))
  expect_identical(h$val_loss[last], vapply(ends, ev_fn, 1, batch = ev_valid))
  expect_identical(fit$metrics, c("accuracy", "brier"))
  expect_identical(fit$par, ends[[6]])
})

test_that("without data a metric is function(par), after every step", {
  f <- function(p) sum((p - 3)^2)
  fit <- minimize(c(0, 0), f, function(p) 2 * (p - 3), steps = 5, progress = FALSE,
                  metrics = list(dist = function(p) sqrt(sum((p - 3)^2))))
  opt <- optimizer_rmsprop(0.01)
  p <- c(0, 0)
  d <- numeric(5)
  for (i in 1:5) {
    p <- opt$step(2 * (p - 3), p)
    d[i] <- sqrt(sum((p - 3)^2))
  }
  expect_identical(fit$history$dist, d)
})

test_that("callbacks monitor metrics; mode = \"auto\" maximises names with \"acc\"", {
  run <- function(...) {
    set.seed(9)
    minimize(c(0, 0, 0), ev_fn, ev_gr, data = ev_train, validation_data = ev_valid,
             batch_size = 8, epochs = 40, progress = FALSE,
             optimizer = optimizer_rmsprop(0.01),
             metrics = list(accuracy = ev_accuracy, brier = ev_brier), ...)
  }
  full <- run()
  h <- full$history
  ends <- !is.na(h$val_accuracy)
  # keras' EarlyStopping on val_accuracy (maximised), patience 3
  acc <- h$val_accuracy[ends]
  stop_at <- NA
  best <- -Inf
  wait <- 0
  for (e in seq_along(acc)) {
    wait <- wait + 1
    if (acc[e] > best) {
      best <- acc[e]
      wait <- 0
    } else if (wait >= 3 && e > 1) {
      stop_at <- e
      break
    }
  }
  es <- run(callbacks = list(callback_early_stopping("val_accuracy", patience = 3)))
  expect_identical(es$epochs, if (is.na(stop_at)) 40L else as.integer(stop_at))
  expect_identical(es$best$mode, "max")
  expect_identical(es$best$monitor, "val_accuracy")
  # brier is minimised under "auto"
  es2 <- run(callbacks = list(callback_early_stopping("brier", patience = 2)))
  expect_identical(es2$best$mode, "min")
  expect_identical(es2$best$value, min(es2$history$brier, na.rm = TRUE))
})

test_that("bad metrics are classed errors before anything runs", {
  calls <- 0
  fn <- function(b, batch) {
    calls <<- calls + 1
    ev_fn(b, batch)
  }
  run <- function(metrics, ...) {
    minimize(c(0, 0, 0), fn, ev_gr, data = ev_train, epochs = 1, progress = FALSE,
             metrics = metrics, ...)
  }
  expect_error(run(list(ev_accuracy)), "named list", class = "rmsprop_error_argument")
  expect_error(run(list(acc = "x")), "named list", class = "rmsprop_error_argument")
  expect_error(run(list(loss = ev_accuracy)), "not allowed", class = "rmsprop_error_argument")
  expect_error(run(list(val_acc = ev_accuracy)), "not allowed", class = "rmsprop_error_argument")
  expect_error(run(list(acc = function(p) 1)), "metric `acc` must take \\(par, rows\\)",
               class = "rmsprop_error_signature")
  expect_error(run(list(acc = ev_accuracy),
                   callbacks = list(callback_early_stopping("val_acc"))),
               "validation_data", class = "rmsprop_error_argument")
  expect_identical(calls, 0)
  expect_error(run(list(acc = function(b, rows) "high")), "metric `acc` must return a single",
               class = "rmsprop_error_value")
})

test_that("the validation loss is evaluated at the end of every epoch", {
  full <- run_recording(6, optimizer = optimizer_rmsprop(0.05))
  h <- full$fit$history
  expect_named(h, c("step", "epoch", "loss", "learning_rate", "grad_norm", "val_loss"))
  at_end <- h$step %% 5L == 0L
  expect_true(all(is.na(h$val_loss[!at_end])))
  expect_identical(h$val_loss[at_end],
                   vapply(full$ends, function(p) cb_fn(p, cb_valid), numeric(1)))
  # function(par) as validation, without data: every step is an epoch
  f <- function(b) mean((mtcars$mpg - cb_x %*% b)^2)
  g <- function(b) drop(-2 * crossprod(cb_x, mtcars$mpg - cb_x %*% b)) / 32
  pars <- list()
  fit <- minimize(rep(0, 4), f, g, steps = 20, progress = FALSE,
                  validation_data = function(p) sum(p^2),
                  callback = function(info) pars[[info$step]] <<- info$par)
  expect_identical(fit$history$val_loss, vapply(pars, function(p) sum(p^2), numeric(1)))
  expect_output(print(fit), "val_loss")
})


test_that("callback_lambda() calls the user's functions at keras' points", {
  calls <- character(0)
  epochs <- list()
  batches <- 0
  cb <- callback_lambda(
    on_train_begin = function(logs) calls <<- c(calls, "train_begin"),
    on_epoch_begin = function(epoch, logs) calls <<- c(calls, paste0("begin", epoch)),
    on_epoch_end = function(epoch, logs) epochs[[epoch]] <<- logs,
    on_train_batch_end = function(batch, logs) batches <<- batches + 1,
    on_train_end = function(logs) calls <<- c(calls, paste0("end:", round(logs$val_loss, 8))))
  set.seed(2)
  fit <- minimize(c(0, 0, 0), ev_fn, ev_gr, data = ev_train, validation_data = ev_valid,
                  batch_size = 8, epochs = 3, progress = FALSE, callbacks = list(cb),
                  metrics = list(accuracy = ev_accuracy))
  expect_identical(calls, c("train_begin", "begin1", "begin2", "begin3",
                            paste0("end:", round(fit$history$val_loss[9], 8))))
  expect_identical(batches, 9)
  expect_length(epochs, 3L)
  expect_identical(epochs[[2]]$accuracy, fit$history$accuracy[6])
  expect_identical(epochs[[3]]$loss, mean(fit$history$loss[7:9]))
  expect_error(callback_lambda(on_epoch_end = function(logs) 1), "on_epoch_end",
               class = "rmsprop_error_argument")
  expect_output(print(cb), "callback_lambda")
})
