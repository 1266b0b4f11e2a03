# The run spec: every argument of minimize() and sweep_optimizers() checked
# once, the same classed error wherever it is given, before anything runs;
# fn/gr signature and gradient-shape mistakes named before the first step.

rs_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")]))))
rs_data <- data.frame(y = mtcars$mpg, x = I(rs_x))
rs_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
rs_gr <- function(b, batch) drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)

test_that("fn, gr, metrics and callback signatures are checked before anything runs", {
  calls <- 0
  counted <- function(b) {
    calls <<- calls + 1
    sum(b^2)
  }
  expect_error(minimize(c(0, 0, 0), counted, data = rs_data, epochs = 1, progress = FALSE),
               "`fn` must take \\(par, batch, \\.\\.\\.\\); it takes \\(b\\)",
               class = "rmsprop_error_signature")
  expect_error(minimize(c(0, 0, 0), rs_fn, function(b) b, data = rs_data, progress = FALSE),
               "`gr` must take \\(par, batch", class = "rmsprop_error_signature")
  expect_error(minimize(c(0, 0), counted, function() 1, progress = FALSE),
               "`gr` must take \\(par, \\.\\.\\.\\)", class = "rmsprop_error_signature")
  expect_error(minimize(c(0, 0), counted, callback = function() TRUE, progress = FALSE),
               "`callback` must take \\(info\\)", class = "rmsprop_error_signature")
  expect_identical(calls, 0)
  # `...` takes anything
  fit <- minimize(c(0, 0, 0), function(...) rs_fn(...), function(b, ...) rs_gr(b, ...),
                  data = rs_data, epochs = 1, progress = FALSE)
  expect_identical(fit$steps, 1L)
})

test_that("a gradient of the wrong shape is named before the first step", {
  opt <- optimizer_rmsprop(0.1)
  expect_error(minimize(c(a = 0, b = 0), function(p) sum(p^2), function(p) c(1, 2, 3),
                        optimizer = opt, progress = FALSE),
               "`gr\\(par\\)` must return the gradient of `fn` shaped like `par`.*length",
               class = "rmsprop_error_gradient")
  expect_identical(opt$iterations, 0)
  expect_error(minimize(list(w = matrix(0, 2, 2)), function(p) sum(p$w^2),
                        function(p) list(v = p$w), progress = FALSE),
               "names differ", class = "rmsprop_error_gradient")
  expect_error(minimize(c(0, 0, 0), rs_fn, function(b, batch) NULL, data = rs_data,
                        progress = FALSE),
               "`gr\\(par, batch\\)`.*returned NULL", class = "rmsprop_error_gradient")
})

test_that("gradients without numbers are classed errors at any step", {
  for (bad in list("a", as.raw(1:2), list(1, "a"), new.env(), Sys.time() + 0:1)) {
    expect_error(minimize(c(1, 2), function(p) sum(p^2), function(p) bad, steps = 3,
                          progress = FALSE), "gr", class = "rmsprop_error")
  }
  # good at first, then a string at step 3
  k <- 0
  g <- function(p) {
    k <<- k + 1
    if (k >= 3) "a" else 2 * p
  }
  expect_error(minimize(c(1, 2), function(p) sum(p^2), g, steps = 5, progress = FALSE),
               "at step 3", class = "rmsprop_error_gradient")
})

test_that("gr = 'ad' without RTMB, and other gr values", {
  expect_error(minimize(c(0, 0), function(p) sum(p^2), gr = "numeric", progress = FALSE),
               "\"ad\"", class = "rmsprop_error_argument")
  expect_error(minimize(c(0, 0), function(p) sum(p^2), gr = 1, progress = FALSE),
               "`gr` must be a function", class = "rmsprop_error_argument")
  expect_error(rmsprop:::check_installed("rmsprop.no.such.package", "`gr = \"ad\"`"),
               "install.packages\\(\"rmsprop.no.such.package\"\\)",
               class = "rmsprop_error_dependency")
})

test_that("sweep_optimizers() takes what minimize() takes, or refuses it before running", {
  grid <- data.frame(learning_rate = c(0.05, 0.1))
  fn <- function(p) sum((p - 1)^2)
  gr <- function(p) 2 * (p - 1)
  sw <- sweep_optimizers(grid, c(0, 0), fn, gr, steps = 10, progress = FALSE)
  expect_identical(nrow(sw), 20L)
  # validation data, metrics and callbacks reach every configuration
  sw2 <- sweep_optimizers(grid, c(0, 0, 0), rs_fn, rs_gr, data = rs_data[1:24, ],
                          validation_data = rs_data[25:32, ], batch_size = 8, epochs = 4,
                          metrics = list(mae = function(b, rows) mean(abs(rows$y - rows$x %*% b))),
                          callbacks = list(callback_early_stopping("val_mae", patience = 1)),
                          seed = 3)
  expect_true(all(c("val_loss", "mae", "val_mae") %in% names(sw2)))
  set.seed(3)
  one <- minimize(c(0, 0, 0), rs_fn, rs_gr, data = rs_data[1:24, ],
                  validation_data = rs_data[25:32, ], batch_size = 8, epochs = 4,
                  metrics = list(mae = function(b, rows) mean(abs(rows$y - rows$x %*% b))),
                  callbacks = list(callback_early_stopping("val_mae", patience = 1)),
                  optimizer = optimizer_rmsprop(0.05), progress = FALSE)
  expect_identical(sw2$val_mae[sw2$config == 1], one$history$val_mae)
  # the same classed errors as minimize(), before any configuration runs
  ran <- 0
  fn2 <- function(p) {
    ran <<- ran + 1
    fn(p)
  }
  expect_error(sweep_optimizers(grid, c(0, 0), fn2, gr, epochs = 0), "epochs",
               class = "rmsprop_error_argument")
  expect_error(sweep_optimizers(grid, c(0, 0), fn2, gr, steps = 5, progress = NA), "progress",
               class = "rmsprop_error_argument")
  expect_error(sweep_optimizers(grid, c(0, 0), fn2, gr, steps = 5,
                                callbacks = list(callback_backup_and_restore(tempdir()))),
               "same file", class = "rmsprop_error_argument")
  expect_error(sweep_optimizers(list(list(learning_rate = 0.1), list(
    learning_rate = learning_rate_schedule_exponential_decay(0.1, 10, 0.5))), c(0, 0), fn2,
    gr, steps = 5, callbacks = list(callback_reduce_lr_on_plateau("loss"))),
    "numeric learning rate", class = "rmsprop_error_argument")
  expect_identical(ran, 0)
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

