# callback_early_stopping() against a plain-R version of keras' rule (the
# reference is in helper-callbacks.R); callbacks with the loss-scale
# optimizer and an engine; keras3's defaults and printing.

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
