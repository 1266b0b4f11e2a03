# The training driver's surface under odd inputs: every argument of
# minimize(), sweep_optimizers(), the callbacks and rmsprop_engine() gets
# each odd value; the call either works or raises a classed rmsprop_error
# (never an unclassed error from inside the package, never a crash).

fd_atoms <- list(
  NULL, NA, NA_real_, NaN, Inf, -Inf, -1, 0, 0.5, 1e300, 2^31, TRUE, "x", "", c(1, 2),
  character(0), numeric(0), list(), list(1), list(a = "b"), function() 1, function(a, b) 1,
  new.env(), as.raw(1), 1i, factor("a"), Sys.time(), data.frame(), data.frame(a = 1:3),
  matrix("a", 2, 2), matrix(1, 0, 3), quote(x), expression(1)
)
fd_data <- data.frame(y = mtcars$mpg, x = I(unname(cbind(1, scale(mtcars$wt)))))
fd_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
fd_gr <- function(b, batch) drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)

# The outcome of a call: "ok", "classed" or the unclassed message.
fd_outcome <- function(expr) {
  tryCatch({
    suppressWarnings(suppressMessages(expr))
    "ok"
  }, rmsprop_error = function(e) "classed", error = function(e) conditionMessage(e))
}

fd_check <- function(call_with, args) {
  bad <- character(0)
  for (arg in args) {
    for (i in seq_along(fd_atoms)) {
      out <- fd_outcome(call_with(arg, fd_atoms[i]))
      if (!out %in% c("ok", "classed")) bad <- c(bad, sprintf("%s = atom %d: %s", arg, i, out))
    }
  }
  bad
}

test_that("minimize() arguments: odd values work or give classed errors", {
  # a loss that takes any rows (errors of the user's own code are not ours)
  base <- list(par = c(0, 0), fn = function(b, batch) sum(b^2) + 0 * NROW(batch),
               gr = function(b, batch) 2 * b, data = fd_data, batch_size = 8, epochs = 2,
               progress = FALSE, callback = function(info) info$step < 20)
  call_with <- function(arg, value) {
    args <- base
    args[arg] <- value
    do.call(minimize, args, quote = TRUE)
  }
  # any par: a loss that takes any structure (its own errors would not be ours)
  any_par <- function(arg, value) {
    minimize(value[[1]], function(p, batch) sum(unlist(p)^2), data = fd_data, epochs = 1,
             progress = FALSE)
  }
  expect_identical(fd_check(any_par, "par"), character(0))
  bad <- fd_check(call_with, c("gr", "optimizer", "steps", "tol", "data", "batch_size",
                               "epochs", "shuffle", "validation_data", "metrics", "callback",
                               "callbacks", "progress", "engine"))
  expect_identical(bad, character(0))
})

test_that("sweep_optimizers(), callbacks and engines: odd values work or give classed errors", {
  grid <- data.frame(learning_rate = c(0.01, 0.1))
  sw <- function(arg, value) {
    args <- list(grid = grid, par = c(0, 0), fn = fd_fn, gr = fd_gr, data = fd_data,
                 batch_size = 16, epochs = 1)
    args[arg] <- value
    do.call(sweep_optimizers, args, quote = TRUE)
  }
  expect_identical(fd_check(sw, c("grid", "seed", "progress", "metrics", "callbacks",
                                  "validation_data", "engine")), character(0))
  ctor <- function(f) function(arg, value) {
    args <- list()
    args[arg] <- value
    do.call(f, args, quote = TRUE)
  }
  expect_identical(fd_check(ctor(callback_early_stopping),
                            names(formals(callback_early_stopping))), character(0))
  expect_identical(fd_check(ctor(callback_reduce_lr_on_plateau),
                            names(formals(callback_reduce_lr_on_plateau))), character(0))
  expect_identical(fd_check(function(arg, value) {
    args <- list(backup_dir = tempdir())
    args[arg] <- value
    do.call(callback_backup_and_restore, args, quote = TRUE)
  }, names(formals(callback_backup_and_restore))), character(0))
  expect_identical(fd_check(function(arg, value) {
    args <- list(filename = tempfile())
    args[arg] <- value
    do.call(callback_csv_logger, args, quote = TRUE)
  }, names(formals(callback_csv_logger))), character(0))
  expect_identical(fd_check(ctor(callback_lambda), names(formals(callback_lambda))),
                   character(0))
  expect_identical(fd_check(ctor(rmsprop_engine), names(formals(rmsprop_engine))),
                   character(0))
})
