# callback_csv_logger(): one row per epoch with the epoch's logs, keras'
# columns, appending, and no duplicated epochs when a run resumes.

local_interrupt_return()

cl_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")]))))
cl_data <- data.frame(y = mtcars$mpg, x = I(cl_x))
cl_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
cl_gr <- function(b, batch) drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)
cl_run <- function(file, ..., epochs = 5, seed = 1) {
  set.seed(seed)
  minimize(c(0, 0, 0), cl_fn, cl_gr, data = cl_data[1:24, ], batch_size = 8, epochs = epochs,
           progress = FALSE, optimizer = optimizer_rmsprop(0.1), ...)
}

test_that("every epoch writes one row of its logs, as the history has them", {
  f <- tempfile(fileext = ".csv")
  fit <- cl_run(f, validation_data = cl_data[25:32, ],
                metrics = list(mae = function(b, rows) mean(abs(rows$y - rows$x %*% b))),
                callbacks = list(callback_csv_logger(f)))
  csv <- utils::read.csv(f)
  expect_identical(names(csv), c("epoch", "grad_norm", "learning_rate", "loss", "mae",
                                 "val_loss", "val_mae"))
  expect_identical(csv$epoch, 1:5)
  h <- fit$history
  ends <- h$step[!is.na(h$val_loss)]
  expect_equal(csv$val_loss, h$val_loss[ends], tolerance = 1e-14)
  expect_equal(csv$mae, h$mae[ends], tolerance = 1e-14)
  expect_equal(csv$loss, tapply(h$loss, h$epoch, mean), tolerance = 1e-14,
               ignore_attr = TRUE)
  expect_equal(csv$learning_rate, rep(0.1, 5))
})

test_that("separator and append", {
  f <- tempfile(fileext = ".csv")
  cl_run(f, callbacks = list(callback_csv_logger(f, separator = ";")), epochs = 2)
  cl_run(f, callbacks = list(callback_csv_logger(f, separator = ";", append = TRUE)), epochs = 3)
  lines <- readLines(f)
  expect_identical(lines[1], "epoch;grad_norm;learning_rate;loss")
  expect_length(lines, 1 + 2 + 3)
  expect_identical(sub(";.*", "", lines[-1]), c("1", "2", "1", "2", "3"))
  # append = FALSE starts afresh
  cl_run(f, callbacks = list(callback_csv_logger(f, separator = ";")), epochs = 1)
  expect_length(readLines(f), 2L)
})

test_that("a resumed run appends without repeating epochs", {
  f <- tempfile(fileext = ".csv")
  dir <- tempfile("csv-ck-")
  dir.create(dir)
  cbs <- list(callback_csv_logger(f), callback_backup_and_restore(dir))
  ref_file <- tempfile(fileext = ".csv")
  ref <- cl_run(ref_file, epochs = 6, callbacks = list(callback_csv_logger(ref_file)))
  # interrupted in epoch 4 (after its first step): the checkpoint holds
  # epochs 1-3 plus one step, the file epochs 1-3
  stop_at <- function(info) {
    if (info$step == 10) signalCondition(structure(class = c("interrupt", "condition"), list()))
  }
  expect_message(cl_run(f, epochs = 6, callbacks = cbs, callback = stop_at), "interrupted")
  expect_identical(utils::read.csv(f)$epoch, 1:3)
  # a row written after the checkpoint (a crash between the two) is dropped
  cat("4,1,1,1\n", file = f, append = TRUE)
  expect_message(again <- cl_run(f, epochs = 6, callbacks = cbs), "resuming",
                 class = "rmsprop_message_resume")
  expect_identical(again$par, ref$par)
  expect_identical(readLines(f), readLines(ref_file))
})

test_that("bad arguments are classed errors", {
  expect_error(callback_csv_logger(1), "filename", class = "rmsprop_error_argument")
  expect_error(callback_csv_logger("a.csv", separator = ""), "separator",
               class = "rmsprop_error_argument")
  expect_error(callback_csv_logger("a.csv", append = NA), "append",
               class = "rmsprop_error_argument")
  expect_error(cl_run(NULL, callbacks = list(callback_csv_logger(
    file.path(tempfile(), "no", "log.csv")))), "existing directory",
    class = "rmsprop_error_argument")
})
