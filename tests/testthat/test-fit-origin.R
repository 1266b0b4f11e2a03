# print()/summary() of "rmsprop_fit" say where the returned parameters come
# from (the last step or epoch, the best epoch restored by early stopping,
# the parameters before a step whose loss was not finite) and where a resumed
# run started. Fits come from minimize() as it is; the fields a newer driver
# adds (par_step, par_epoch, restored, best, resumed_epoch) are added to real
# fits by hand, as noted at each place, and fits without them must still be
# read right.

local_interrupt_return()   # interrupts simulated here ask for the partial result

og_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")]))))
og_data <- data.frame(y = mtcars$mpg, x = I(og_x))
og_loss <- function(b, d) mean((d$y - d$x %*% b)^2)

origin_line <- function(fit) {
  lines <- format(fit)
  lines[which(startsWith(lines, "  par:")) + 1L]
}

test_that("a run to its limit returns the last step's or the last epoch's parameters", {
  full <- minimize(c(0, 0, 0), function(b) og_loss(b, og_data), steps = 20)
  expect_identical(origin_line(full), "           reached by the last step (20)")
  set.seed(1)
  batched <- minimize(c(0, 0, 0), og_loss, data = og_data, batch_size = 8, epochs = 3)
  expect_identical(origin_line(batched),
                   "           from the end of the last epoch (3), after step 12")
  expect_true("returned: from the end of the last epoch (3), after step 12" %in%
                format(summary(batched)))
  # a step cap that ends the run during an epoch
  set.seed(1)
  capped <- minimize(c(0, 0, 0), og_loss, data = og_data, batch_size = 8, epochs = 3,
                     steps = 6)
  expect_identical(origin_line(capped), "           reached by the last step (6), during epoch 2")
})

test_that("early stopping that restores the best epoch says so, beside the last epoch's losses", {
  set.seed(1)
  train <- sample(32, 24)
  fit <- minimize(c(0, 0, 0), og_loss, data = og_data[train, ],
                  validation_data = og_data[-train, ], batch_size = 8, epochs = 200,
                  progress = FALSE, optimizer = optimizer_rmsprop(0.05),
                  callbacks = list(callback_early_stopping(patience = 5,
                                                           restore_best_weights = TRUE)))
  h <- fit$history
  ends <- cumsum(rle(h$epoch)$lengths)
  val <- h$val_loss[ends]
  best <- which.min(val)
  expect_identical(fit$best_epoch, best)
  expect_lt(best, fit$epochs)
  lines <- format(fit)
  # the last epoch's losses are labelled as such
  last <- length(ends)
  mean_last <- mean(h$loss[h$epoch == last])
  expect_true(sprintf("  epoch %d: loss %s, val_loss %s", last, format(mean_last, digits = 6),
                      format(val[last], digits = 6)) %in% lines)
  # a fit of 0.2.0 recorded only best_epoch: the monitor is not named
  old <- fit
  old[c("best", "restored", "par_epoch", "par_step")] <- NULL
  expect_true(sprintf("  best:    epoch %d (early stopping)", best) %in% format(old))
  expect_identical(origin_line(old), sprintf(
    "           restored by early stopping from the end of epoch %d", best))

  # the driver records the monitored value, and where the parameters come from
  expect_identical(fit$best, list(monitor = "val_loss", mode = "min", epoch = best,
                                  value = val[best]))
  expect_true(fit$restored)
  expect_identical(fit$par_epoch, best)
  expect_identical(origin_line(fit), sprintf(
    "           restored by early stopping from the end of epoch %d (best val_loss %s)", best,
    format(val[best], digits = 6)))
  expect_true(sprintf("  best:    val_loss %s at epoch %d (early stopping)",
                      format(val[best], digits = 6), best) %in% format(fit))
  s <- summary(fit)
  expect_identical(s$origin, list(kind = "restored", step = ends[best], epoch = best,
                                  complete = TRUE))
  expect_true(sprintf(paste("returned: restored by early stopping from the end of epoch %d",
                            "(best val_loss %s)"),
                      best, format(val[best], digits = 6)) %in% format(s))

  # without early stopping the best validation epoch is still named
  plain <- fit
  plain[c("best", "restored", "par_epoch", "par_step")] <- NULL
  plain$best_epoch <- NA_integer_
  expect_true(sprintf("  best:    val_loss %s at epoch %d", format(val[best], digits = 6),
                      best) %in% format(plain))
  expect_identical(origin_line(plain), sprintf(
    "           from the end of the last epoch (%d), after step %d", last, nrow(h)))
})

test_that("a run stopped on a non-finite loss returns the parameters before the last step", {
  fn <- function(p) if (p[1] > 2.5) NaN else sum((p - 3)^2)
  gr <- function(p) 2 * (p - 3)
  expect_warning(fit <- minimize(c(0, 0), fn, gr, steps = 100,
                                 optimizer = optimizer_rmsprop(0.3)), class = "rmsprop_warning")
  k <- fit$steps
  # the parameters are those reached by step k - 1
  expect_identical(fit$par, minimize(c(0, 0), fn, gr, steps = k - 1L,
                                     optimizer = optimizer_rmsprop(0.3))$par)
  expect_identical(origin_line(fit), sprintf(
    "           the parameters before step %d, the last whose loss was finite", k))
  expect_identical(summary(fit)$origin$step, k - 1L)

  # the newer driver records par_step (added here by hand): the state decides,
  # whatever the message says
  fit$par_step <- k - 1L
  fit$message <- "stopped"
  expect_identical(origin_line(fit), sprintf(
    "           the parameters before step %d, the last whose loss was finite", k))
  fit$par_step <- k
  expect_identical(origin_line(fit), sprintf("           reached by the last step (%d)", k))

  # with mini-batches: the epoch the parameters belong to
  d <- og_data
  calls <- 0
  fn2 <- function(b, batch) {
    calls <<- calls + 1
    if (calls > 13) NaN else og_loss(b, batch)
  }
  set.seed(2)
  expect_warning(fit2 <- minimize(c(0, 0, 0), fn2, data = d, batch_size = 8, epochs = 5,
                                  gr = function(b, batch) -2 * drop(crossprod(
                                    batch$x, batch$y - batch$x %*% b)) / nrow(batch)),
                 class = "rmsprop_warning")
  # call 14 is the loss at the parameters reached by step 13 (the first of epoch 4)
  expect_identical(fit2$steps, 13L)
  expect_identical(origin_line(fit2), paste(
    "           the parameters before step 13 (at the end of epoch 3),",
    "the last whose loss was finite"))
})

test_that("a resumed run says at which step (and epoch) it resumed", {
  dir <- tempfile("fit-origin-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  run <- function(cb = NULL) {
    set.seed(5)
    minimize(c(0, 0, 0), og_loss, data = og_data, batch_size = 8, epochs = 4,
             progress = FALSE, callback = cb,
             callbacks = list(callback_backup_and_restore(dir)))
  }
  stop_at <- function(info) {
    if (info$step == 10L) signalCondition(structure(class = c("interrupt", "condition"), list()))
  }
  expect_message(first <- run(stop_at), "interrupted")
  expect_false(any(grepl("resumed", format(first))))
  expect_identical(origin_line(first), "           reached by the last step (10), during epoch 3")
  again <- suppressMessages(run())
  # the interrupt wrote the checkpoint at step 10, in epoch 3 (2 epochs done)
  expect_identical(again$resumed_from, 10L)
  expect_identical(again$resumed_epoch, 2L)
  expect_true("  resumed at step 10 (after epoch 2) from a checkpoint" %in% format(again))
  expect_output(print(again), "resumed at step 10", fixed = TRUE)
  # a fit of 0.2.0 recorded only the step
  old <- again
  old$resumed_epoch <- NULL
  expect_true("  resumed at step 10 from a checkpoint" %in% format(old))
  expect_true("  resumed at step 10 from a checkpoint" %in% format(summary(old)))
})
