# validation_data, callback_early_stopping() and callback_reduce_lr_on_plateau(),
# checked against plain-R references written from keras' rules.

cb_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp", "qsec")]))))
cb_data <- data.frame(y = mtcars$mpg, x = I(cb_x))
cb_train <- cb_data[1:24, ]
cb_valid <- cb_data[25:32, ]
cb_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
cb_gr <- function(b, batch) drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)

# keras' EarlyStopping, epoch by epoch (1-based epochs; keras counts from 0).
ref_early_stopping <- function(values, patience = 0, min_delta = 0, mode = "min",
                               baseline = NULL, start_from_epoch = 0) {
  sign <- if (mode == "max") -1 else 1   # compare sign * value, smaller is better
  better <- function(a, b) is.na(b) || isTRUE(sign * a + abs(min_delta) < sign * b)
  best <- NA_real_
  best_epoch <- NA_integer_
  wait <- 0
  for (e in seq_along(values)) {
    if (e <= start_from_epoch) next
    if (is.na(best_epoch)) best_epoch <- e
    wait <- wait + 1
    if (better(values[e], best)) {
      best <- values[e]
      best_epoch <- e
      if (is.null(baseline) || better(values[e], baseline)) wait <- 0
    } else if (wait >= patience && e > 1) {
      return(list(stop = e, best_epoch = best_epoch))
    }
  }
  list(stop = NA_integer_, best_epoch = best_epoch)
}

# A full run that records the parameters at the end of every epoch.
run_recording <- function(epochs, ...) {
  ends <- list()
  cb <- function(info) {
    if (info$step %% 5L == 0L) ends[[info$epoch]] <<- info$par
  }
  set.seed(21)
  fit <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                  batch_size = 5, epochs = epochs, callback = cb, progress = FALSE, ...)
  list(fit = fit, ends = ends)
}

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

test_that("early stopping stops where keras' rule says, and restores the best weights", {
  full <- run_recording(40, optimizer = optimizer_rmsprop(0.3))
  h <- full$fit$history
  val <- h$val_loss[!is.na(h$val_loss)]
  epoch_loss <- as.numeric(tapply(h$loss, h$epoch, mean))
  settings <- list(
    list(patience = 0),
    list(patience = 2),
    list(patience = 3, min_delta = 0.5),
    list(patience = 1, start_from_epoch = 4),
    list(patience = 2, baseline = 0.1),
    list(patience = 2, mode = "max"),
    list(patience = 2, monitor = "loss")
  )
  stopped <- 0
  for (s in settings) {
    monitor <- if (is.null(s$monitor)) "val_loss" else s$monitor
    values <- if (monitor == "loss") epoch_loss else val
    ref <- do.call(ref_early_stopping, c(list(values), s[setdiff(names(s), "monitor")]))
    es <- do.call(callback_early_stopping, c(s, list(restore_best_weights = TRUE)))
    set.seed(21)
    fit <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                    batch_size = 5, epochs = 40, progress = FALSE,
                    optimizer = optimizer_rmsprop(0.3), callbacks = list(es))
    if (is.na(ref$stop)) {
      expect_identical(fit$epochs, 40L)
      expect_identical(fit$convergence, 1L)
    } else {
      stopped <- stopped + 1
      expect_identical(fit$epochs, as.integer(ref$stop))
      expect_identical(fit$convergence, 2L)
      expect_match(fit$message, "early stopping")
    }
    # the run is the full run, cut short
    expect_identical(fit$history, h[seq_len(nrow(fit$history)), ])
    expect_identical(fit$par, full$ends[[ref$best_epoch]])
    expect_identical(fit$best_epoch, as.integer(ref$best_epoch))
  }
  expect_gte(stopped, 4)
  # without restore_best_weights: the last parameters
  set.seed(21)
  fit <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                  batch_size = 5, epochs = 40, progress = FALSE,
                  optimizer = optimizer_rmsprop(0.3),
                  callbacks = list(callback_early_stopping(patience = 2)))
  expect_identical(fit$par, full$ends[[fit$epochs]])
  expect_message(
    {
      set.seed(21)
      minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
               batch_size = 5, epochs = 40, progress = FALSE, optimizer = optimizer_rmsprop(0.3),
               callbacks = list(callback_early_stopping(patience = 0, verbose = 1)))
    },
    "early stopping")
})

test_that("reduce_lr_on_plateau follows keras' rule, step for step", {
  settings <- list(
    list(monitor = "loss", factor = 0.5, patience = 1, min_delta = 0.5),
    list(monitor = "val_loss", factor = 0.2, patience = 2, cooldown = 2, min_lr = 0.01),
    list(monitor = "val_loss", factor = 0.5, patience = 0, min_delta = 0, mode = "max")
  )
  for (s in settings) {
    set.seed(31)
    fit <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                    batch_size = 5, epochs = 25, progress = FALSE,
                    optimizer = optimizer_rmsprop(0.3, momentum = 0.3),
                    callbacks = list(do.call(callback_reduce_lr_on_plateau, s)))
    # the hand loop
    d <- list(monitor = "val_loss", factor = 0.1, patience = 10, mode = "auto",
              min_delta = 1e-4, cooldown = 0, min_lr = 0)
    d[names(s)] <- s
    maximize <- d$mode == "max"
    opt <- optimizer_rmsprop(0.3, momentum = 0.3)
    b <- rep(0, 4)
    best <- if (maximize) -Inf else Inf
    wait <- 0
    cooldown <- 0
    lrs <- numeric(0)
    set.seed(31)
    for (e in 1:25) {
      order <- sample.int(24)
      losses <- numeric(0)
      for (k in 1:5) {
        rows <- cb_train[order[((k - 1) * 5 + 1):min(k * 5, 24)], ]
        losses <- c(losses, cb_fn(b, rows))
        lrs <- c(lrs, opt$learning_rate)
        b <- opt$step(cb_gr(b, rows), b)
      }
      current <- if (d$monitor == "loss") mean(losses) else cb_fn(b, cb_valid)
      if (cooldown > 0) {
        cooldown <- cooldown - 1
        wait <- 0
      }
      improved <- if (maximize) current > best + d$min_delta else current < best - d$min_delta
      if (improved) {
        best <- current
        wait <- 0
      } else if (cooldown == 0) {
        wait <- wait + 1
        if (wait >= d$patience && opt$learning_rate > d$min_lr) {
          opt$learning_rate <- max(opt$learning_rate * d$factor, d$min_lr)
          cooldown <- d$cooldown
          wait <- 0
        }
      }
    }
    expect_identical(fit$par, b)
    expect_identical(fit$history$learning_rate, lrs)
    expect_gt(length(unique(lrs)), 1L)
    expect_identical(fit$optimizer$learning_rate, opt$learning_rate)
  }
})

test_that("callbacks work with the loss-scale optimizer and with an engine", {
  set.seed(41)
  base <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                   batch_size = 6, epochs = 10, progress = FALSE,
                   optimizer = optimizer_rmsprop(0.2),
                   callbacks = list(callback_reduce_lr_on_plateau("loss", patience = 1),
                                    callback_early_stopping("val_loss", patience = 2)))
  set.seed(41)
  eng <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                  batch_size = 6, epochs = 10, progress = FALSE, engine = "sequential",
                  optimizer = optimizer_rmsprop(0.2),
                  callbacks = list(callback_reduce_lr_on_plateau("loss", patience = 1),
                                   callback_early_stopping("val_loss", patience = 2)))
  expect_equal(eng$par, base$par, tolerance = 1e-12)
  expect_identical(eng$epochs, base$epochs)
  scaled <- optimizer_loss_scale(optimizer_rmsprop(0.2), initial_scale = 1)
  set.seed(41)
  ls <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                 batch_size = 6, epochs = 10, progress = FALSE, optimizer = scaled,
                 callbacks = list(callback_reduce_lr_on_plateau("loss", patience = 1),
                                  callback_early_stopping("val_loss", patience = 2)))
  expect_identical(ls$history$learning_rate, base$history$learning_rate)
})

test_that("bad validation data and callbacks are classed errors before any step", {
  calls <- 0
  fn <- function(b, batch) {
    calls <<- calls + 1
    cb_fn(b, batch)
  }
  run <- function(...) {
    minimize(rep(0, 4), fn, cb_gr, data = cb_train, batch_size = 6, epochs = 2,
             progress = FALSE, ...)
  }
  expect_error(run(validation_data = cb_valid[, 1, drop = FALSE]), "validation_data",
               class = "rmsprop_error_argument")
  expect_error(run(validation_data = as.matrix(cb_valid$x)), "validation_data",
               class = "rmsprop_error_argument")
  expect_error(run(validation_data = cb_valid[0, ]), "validation_data",
               class = "rmsprop_error_argument")
  expect_error(minimize(1, function(p) p^2, function(p) 2 * p, validation_data = mtcars),
               "validation_data", class = "rmsprop_error_argument")
  expect_error(run(callbacks = list(callback_early_stopping())), "validation_data",
               class = "rmsprop_error_argument")
  expect_error(run(callbacks = list(function(info) TRUE)), "callbacks",
               class = "rmsprop_error_argument")
  expect_error(run(callbacks = "early"), "callbacks", class = "rmsprop_error_argument")
  expect_error(run(callbacks = list(callback_reduce_lr_on_plateau("loss")),
                   optimizer = optimizer_rmsprop(
                     learning_rate_schedule_exponential_decay(0.1, 10, 0.9))),
               "numeric learning rate", class = "rmsprop_error_argument")
  expect_identical(calls, 0)
  # a single callback needs no list
  set.seed(1)
  fit <- run(callbacks = callback_early_stopping("loss", patience = 100))
  expect_identical(fit$epochs, 2L)
  # a validation function that returns junk
  expect_error(run(validation_data = function(p) "x"), "validation loss",
               class = "rmsprop_error_value")

  # a monitor the run does not record (no metric of that name)
  expect_error(run(callbacks = list(callback_early_stopping(monitor = "accuracy"))),
               "accuracy", class = "rmsprop_error_argument")
  expect_error(callback_early_stopping(monitor = NA_character_), "monitor",
               class = "rmsprop_error_argument")
  expect_error(callback_early_stopping(patience = -1), "patience",
               class = "rmsprop_error_argument")
  expect_error(callback_early_stopping(mode = "up"), "mode", class = "rmsprop_error_argument")
  expect_error(callback_early_stopping(restore_best_weights = "yes"), "restore_best_weights",
               class = "rmsprop_error_argument")
  expect_error(callback_reduce_lr_on_plateau(factor = 1), "factor",
               class = "rmsprop_error_argument")
  expect_error(callback_reduce_lr_on_plateau(min_lr = -1), "min_lr",
               class = "rmsprop_error_argument")
  expect_error(callback_reduce_lr_on_plateau(monitor = NA), "monitor",
               class = "rmsprop_error_argument")
})

test_that("callbacks have keras3's defaults and print", {
  expect_identical(formals(callback_early_stopping),
                   formals(function(monitor = "val_loss", min_delta = 0, patience = 0,
                                    verbose = 0, mode = "auto", baseline = NULL,
                                    restore_best_weights = FALSE, start_from_epoch = 0) NULL))
  expect_identical(formals(callback_reduce_lr_on_plateau),
                   formals(function(monitor = "val_loss", factor = 0.1, patience = 10,
                                    verbose = 0, mode = "auto", min_delta = 1e-4,
                                    cooldown = 0, min_lr = 0) NULL))
  expect_output(print(callback_early_stopping()), "callback_early_stopping")
  expect_output(print(callback_backup_and_restore(tempdir())), "backup_dir")
})
