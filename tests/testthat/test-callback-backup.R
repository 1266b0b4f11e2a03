# callback_backup_and_restore(): checkpoints, resuming bit-identically, and
# refusing checkpoints of other problems.

# Interrupts here are simulated in a non-interactive session: ask for the
# interactive behaviour (the partial result) unless a test says otherwise.
local_interrupt_return()

ck_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp", "qsec")]))))
ck_data <- data.frame(y = mtcars$mpg, x = I(ck_x))
ck_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
# a stochastic gradient: the run depends on the random number generator
ck_gr <- function(b, batch) {
  drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch) +
    stats::rnorm(length(b), sd = 0.05)
}
ck_interrupt_at <- function(k) {
  function(info) {
    if (info$step == k) signalCondition(structure(class = c("interrupt", "condition"), list()))
  }
}
ck_dir <- function() {
  d <- tempfile("ck-")
  dir.create(d)
  d
}
# Everything of a result that must be identical after resuming.
ck_same <- function(fit) {
  list(par = fit$par, value = fit$value, counts = fit$counts, convergence = fit$convergence,
       message = fit$message, history = fit$history, steps = fit$steps, epochs = fit$epochs,
       variables = fit$optimizer$variables, learning_rate = fit$optimizer$learning_rate,
       rng = get(".Random.seed", envir = globalenv()))
}

test_that("a run interrupted anywhere resumes to the same result, bit for bit", {
  saving_from <- function(step, f) structure(f, first_save = step)
  runs <- list(
    # mini-batches, checkpoints at epoch ends, validation and both keras callbacks
    saving_from(5L, function(dir, cb = NULL) {
      set.seed(11)
      minimize(rep(0, 4), ck_fn, ck_gr, data = ck_data[1:24, ], validation_data = ck_data[25:32, ],
               batch_size = 5, epochs = 12, progress = FALSE, callback = cb,
               optimizer = optimizer_rmsprop(0.05, momentum = 0.5),
               callbacks = list(
                 callback_reduce_lr_on_plateau("loss", patience = 1, factor = 0.5, min_delta = 0.5),
                 callback_early_stopping(patience = 3, restore_best_weights = TRUE),
                 callback_backup_and_restore(dir)))
    }),
    # checkpoints every 4 steps, in the middle of epochs
    saving_from(4L, function(dir, cb = NULL) {
      set.seed(12)
      minimize(rep(0, 4), ck_fn, ck_gr, data = ck_data, batch_size = 6, epochs = 5,
               progress = FALSE, callback = cb, tol = 1e-12,
               optimizer = optimizer_rmsprop(learning_rate_schedule_exponential_decay(0.05, 7, 0.8),
                                             centered = TRUE, use_ema = TRUE),
               callbacks = callback_backup_and_restore(dir, save_freq = 4))
    }),
    # without data: every step is an epoch; a numerical gradient
    saving_from(3L, function(dir, cb = NULL) {
      set.seed(13)
      f <- function(p) sum((p - c(1, 2))^2) + stats::runif(1, 0, 1e-3)
      minimize(c(0, 0), f, steps = 40, progress = FALSE, callback = cb,
               optimizer = optimizer_rmsprop(0.05),
               callbacks = list(callback_backup_and_restore(dir, save_freq = 3)))
    })
  )
  for (run in runs) {
    ref <- run(ck_dir())
    ref_same <- ck_same(ref)
    set.seed(99)
    first_save <- attr(run, "first_save")
    for (k in first_save + sort(sample(ref$steps - first_save - 1L, 3))) {
      dir <- ck_dir()
      expect_message(first <- run(dir, ck_interrupt_at(k)), "interrupted")
      expect_identical(first$convergence, 3L)
      expect_true(file.exists(file.path(dir, "rmsprop-checkpoint.rds")))
      stats::runif(3)   # the session's generator moves on before the rerun
      again <- run(dir)
      expect_false(is.na(again$resumed_from))
      expect_lte(again$resumed_from, k)
      expect_identical(ck_same(again), ref_same)
      # the checkpoint is removed at the end
      expect_false(file.exists(file.path(dir, "rmsprop-checkpoint.rds")))
      expect_length(list.files(dir), 0L)
    }
  }
})

test_that("the checkpoint holds the complete state and is written atomically", {
  dir <- ck_dir()
  set.seed(3)
  expect_message(minimize(rep(0, 4), ck_fn, ck_gr, data = ck_data, batch_size = 10, epochs = 3,
                          progress = FALSE, callback = ck_interrupt_at(6),
                          callbacks = list(callback_backup_and_restore(dir, save_freq = 5))),
                 "interrupted")
  ck <- readRDS(file.path(dir, "rmsprop-checkpoint.rds"))
  expect_s3_class(ck, "rmsprop_checkpoint")
  s <- ck$state
  # the interrupt (after step 6) wrote the checkpoint, after the save at step 5
  expect_identical(s$step, 6L)
  expect_identical(s$epoch, 2L)     # 4 batches per epoch: step 6 is the second of epoch 2
  expect_identical(s$batch, 2L)
  expect_identical(sort(s$order), 1:32)
  expect_identical(s$opt$iterations, 6)
  expect_length(s$h_loss, 6L)
  expect_type(s$rng, "integer")
  # only the checkpoint is in the directory: the temporary file was renamed
  expect_identical(list.files(dir), "rmsprop-checkpoint.rds")
  # a temporary file left by a crash during a write is ignored and removed
  writeLines("partial", file.path(dir, "rmsprop-checkpoint-123.tmp"))
  set.seed(3)
  expect_message(
    fit <- minimize(rep(0, 4), ck_fn, ck_gr, data = ck_data, batch_size = 10, epochs = 3,
                    progress = FALSE,
                    callbacks = list(callback_backup_and_restore(dir, save_freq = 5))),
    "resuming from the checkpoint in .* at step 6 \\(epoch 1\\)",
    class = "rmsprop_message_resume")
  expect_identical(fit$resumed_from, 6L)
  expect_identical(fit$resumed_epoch, 1L)
  expect_length(list.files(dir), 0L)
})

test_that("delete_checkpoint = FALSE keeps the finished run, and the rerun returns it", {
  dir <- ck_dir()
  cb <- list(callback_backup_and_restore(dir, delete_checkpoint = FALSE))
  set.seed(4)
  a <- minimize(rep(0, 4), ck_fn, ck_gr, data = ck_data, batch_size = 8, epochs = 2,
                progress = FALSE, callbacks = cb)
  expect_true(file.exists(file.path(dir, "rmsprop-checkpoint.rds")))
  b <- minimize(rep(0, 4), ck_fn, ck_gr, data = ck_data, batch_size = 8, epochs = 2,
                progress = FALSE, callbacks = cb)
  expect_identical(b$resumed_from, 8L)
  expect_identical(b$par, a$par)
  expect_identical(b$history, a$history)
  expect_identical(b$counts, a$counts)
})

test_that("a checkpoint of another problem is refused, never used", {
  dir <- ck_dir()
  call_with <- function(...) {
    args <- list(
      par = rep(0, 4), fn = ck_fn, gr = ck_gr, data = ck_data, batch_size = 8, epochs = 3,
      progress = FALSE, optimizer = optimizer_rmsprop(0.01),
      callbacks = list(callback_backup_and_restore(dir, delete_checkpoint = FALSE)))
    o <- list(...)
    for (n in names(o)) args[n] <- list(o[[n]])
    do.call(minimize, args)
  }
  set.seed(5)
  call_with()
  before <- tools::md5sum(file.path(dir, "rmsprop-checkpoint.rds"))
  others <- list(
    list(par = list(a = rep(0, 2), b = rep(0, 2))),
    list(par = c(0, 0, 0, 1)),
    list(optimizer = optimizer_rmsprop(0.02)),
    list(optimizer = optimizer_rmsprop(0.01, momentum = 0.5)),
    list(optimizer = optimizer_rmsprop(learning_rate_schedule_exponential_decay(0.01, 10, 0.5))),
    list(data = ck_data[1:30, ]),
    list(data = transform(ck_data, y = rev(y))),
    list(batch_size = 4),
    list(epochs = 4),
    list(shuffle = FALSE),
    list(gr = NULL),
    list(validation_data = ck_data[1:5, ]),
    list(callbacks = list(callback_backup_and_restore(dir), callback_early_stopping("loss")))
  )
  for (o in others) {
    err <- expect_error(do.call(call_with, o), class = "rmsprop_error_checkpoint")
    expect_match(conditionMessage(err), "another problem")
    expect_identical(err$argument, "backup_dir")
  }
  # the checkpoint is untouched
  expect_identical(tools::md5sum(file.path(dir, "rmsprop-checkpoint.rds")), before)
  # an optimizer that was trained before is another starting point too
  opt <- optimizer_rmsprop(0.01)
  opt$step(c(1, 1, 1, 1), c(0, 0, 0, 0))
  expect_error(call_with(optimizer = opt), class = "rmsprop_error_checkpoint")
})

test_that("bad checkpoint arguments are classed errors before any step", {
  calls <- 0
  fn <- function(p) {
    calls <<- calls + 1
    sum(p^2)
  }
  missing_dir <- file.path(tempdir(), "does-not-exist-ck")
  expect_error(minimize(1, fn, function(p) 2 * p, progress = FALSE,
                        callbacks = list(callback_backup_and_restore(missing_dir))),
               "backup_dir", class = "rmsprop_error_argument")
  dir <- ck_dir()
  saveRDS(list(1, 2), file.path(dir, "rmsprop-checkpoint.rds"))
  expect_error(minimize(1, fn, function(p) 2 * p, progress = FALSE,
                        callbacks = list(callback_backup_and_restore(dir))),
               "not a checkpoint", class = "rmsprop_error_checkpoint")
  writeLines("garbage", file.path(dir, "rmsprop-checkpoint.rds"))
  expect_error(minimize(1, fn, function(p) 2 * p, progress = FALSE,
                        callbacks = list(callback_backup_and_restore(dir))),
               "not a checkpoint", class = "rmsprop_error_checkpoint")
  expect_identical(calls, 0)
  expect_error(callback_backup_and_restore(3), "backup_dir", class = "rmsprop_error_argument")
  expect_error(callback_backup_and_restore(dir, save_freq = 0), "save_freq",
               class = "rmsprop_error_argument")
  expect_error(callback_backup_and_restore(dir, save_freq = "batch"), "save_freq",
               class = "rmsprop_error_argument")
  expect_error(callback_backup_and_restore(dir, delete_checkpoint = NA), "delete_checkpoint",
               class = "rmsprop_error_argument")
  expect_error(minimize(1, fn, function(p) 2 * p, progress = FALSE,
                        callbacks = list(callback_backup_and_restore(dir),
                                         callback_backup_and_restore(dir))),
               "at most one", class = "rmsprop_error_argument")
  expect_identical(calls, 0)
})

test_that("runs killed with SIGKILL resume to identical results", {
  skip_if_not_installed("callr")
  skip_if(.Platform$OS.type != "unix", "SIGKILL trials need a Unix system")
  configs <- kill_configs(scale = 0.3)
  set.seed(2024)
  for (i in c(1L, 4L)) {
    ref <- kill_reference(configs[[i]])
    r <- kill_trial(configs[[i]], ref, max_kills = 2L)
    expect_true(r$identical)
    expect_false(r$checkpoint_left)
  }
})

test_that("checkpoints work with an engine", {
  run <- function(dir, cb = NULL) {
    set.seed(8)
    minimize(rep(0, 4), ck_fn, ck_gr, data = ck_data, batch_size = 8, epochs = 4,
             progress = FALSE, engine = "sequential", callback = cb,
             callbacks = list(callback_backup_and_restore(dir, save_freq = 3)))
  }
  ref <- run(ck_dir())
  dir <- ck_dir()
  expect_message(run(dir, ck_interrupt_at(10)), "interrupted")
  again <- run(dir)
  expect_identical(again$resumed_from, 10L)   # the interrupt's own save (the last periodic one: 9)
  expect_identical(ck_same(again), ck_same(ref))
})

test_that("a save between epochs holds the learning rate of every step", {
  # the loop writes a fixed rate into the history in bulk at the end of an
  # epoch; a save in the middle of one must still hold every step's rate
  dir <- ck_dir()
  seen <- NULL
  peek <- function(info) {
    if (info$step == 6) seen <<- readRDS(file.path(dir, "rmsprop-checkpoint.rds"))$state
  }
  set.seed(3)
  fit <- minimize(rep(0, 4), ck_fn, ck_gr, data = ck_data, batch_size = 4, epochs = 2,
                  progress = FALSE, callback = peek, optimizer = optimizer_rmsprop(0.05),
                  callbacks = list(callback_backup_and_restore(dir, save_freq = 5)))
  expect_identical(seen$step, 5L)   # 8 batches per epoch: step 5 is inside epoch 1
  expect_identical(seen$h_lr, rep(0.05, 5))
  expect_identical(fit$history$learning_rate[1:5], seen$h_lr)
})
