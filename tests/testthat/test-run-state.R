# The run state and its checkpoint: every field of an edited or damaged
# checkpoint is refused with a classed error naming it (never a huge
# allocation, never a run in an impossible state); a checkpoint of other
# functions (fn, gr, metrics) is refused, saying what differs.

rt_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp")]))))
rt_data <- data.frame(y = mtcars$mpg, x = I(rt_x))
rt_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
rt_gr <- function(b, batch) drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)
rt_dir <- function() {
  d <- tempfile("rt-")
  dir.create(d)
  d
}
rt_run <- function(dir, fn = rt_fn, gr = rt_gr, epochs = 3, ...) {
  set.seed(2)
  minimize(c(0, 0, 0), fn, gr, data = rt_data, batch_size = 8, epochs = epochs,
           progress = FALSE, optimizer = optimizer_rmsprop(0.1),
           callbacks = list(callback_backup_and_restore(dir, delete_checkpoint = FALSE)), ...)
}
rt_path <- function(dir) file.path(dir, "rmsprop-checkpoint.rds")
rt_edit <- function(dir, f) {
  ck <- readRDS(rt_path(dir))
  ck$state <- f(ck$state)
  saveRDS(ck, rt_path(dir))
}

test_that("a checkpoint written by other functions is refused, saying which", {
  dir <- rt_dir()
  first <- rt_run(dir)
  # the issue's case: a kept checkpoint of sum(p^2) and a call for sum((p - 5)^2)
  d2 <- rt_dir()
  cb <- list(callback_backup_and_restore(d2, delete_checkpoint = FALSE))
  a <- minimize(c(1, 2), function(p) sum(p^2), function(p) 2 * p, steps = 20,
                progress = FALSE, callbacks = cb)
  expect_error(minimize(c(1, 2), function(p) sum((p - 5)^2), function(p) 2 * p, steps = 20,
                        progress = FALSE, callbacks = cb),
               "`fn` differs", class = "rmsprop_error_checkpoint")
  expect_error(minimize(c(1, 2), function(p) sum(p^2), function(p) 2 * (p - 0), steps = 20,
                        progress = FALSE, callbacks = cb),
               "`gr` differs", class = "rmsprop_error_checkpoint")
  expect_error(minimize(c(1, 2), function(p) sum(p^2), NULL, steps = 20,
                        progress = FALSE, callbacks = cb),
               "`gr` differs", class = "rmsprop_error_checkpoint")
  expect_error(rt_run(dir, metrics = list(m = function(b, rows) 1)), "`metrics` differs",
               class = "rmsprop_error_checkpoint")
  # the same functions, even defined anew (other environments), resume
  again <- minimize(c(1, 2), function(p) sum(p^2), function(p) 2 * p, steps = 20,
                    progress = FALSE, callbacks = cb)
  expect_identical(again$par, a$par)
  expect_identical(again$resumed_from, 20L)
})

test_that("every edited field of a checkpoint is a classed error naming it", {
  dir <- rt_dir()
  rt_run(dir)
  good <- readRDS(rt_path(dir))
  edits <- list(
    step = function(s) { s$step <- .Machine$integer.max; s },
    step = function(s) { s$step <- -5L; s },
    step = function(s) { s$step <- NA_integer_; s },
    opt = function(s) { s$opt <- "x"; s },
    h_loss = function(s) { s$h_loss <- numeric(0); s },
    h_loss = function(s) { s$h_loss <- rep("a", length(s$h_loss)); s },
    order = function(s) { s$order <- rep(1L, 32); s },
    par = function(s) { s$par <- c(1, 2); s },
    par = function(s) { s$par <- c(NaN, 1, 2); s },
    epoch = function(s) { s$epoch <- 1e9; s },
    batch = function(s) { s$batch <- 99L; s },
    code = function(s) { s$code <- 7L; s },
    n_fn = function(s) { s$n_fn <- -1; s },
    h_epoch = function(s) { s$h_epoch <- s$h_epoch + 100L; s },
    rng = function(s) { s$rng <- "seed"; s },
    cb_state = function(s) { s$cb_state <- list(other = list(1)); s },
    elapsed = function(s) { s$elapsed <- -1; s }
  )
  for (i in seq_along(edits)) {
    saveRDS(good, rt_path(dir))
    rt_edit(dir, edits[[i]])
    err <- tryCatch(rt_run(dir), error = function(e) e)
    expect_s3_class(err, "rmsprop_error_checkpoint")
    expect_identical(err$field, names(edits)[i], info = conditionMessage(err))
  }
  # a field missing, a state that is not a list
  saveRDS(good, rt_path(dir))
  rt_edit(dir, function(s) { s$par <- NULL; s })
  expect_error(rt_run(dir), "par", class = "rmsprop_error_checkpoint")
  saveRDS(good, rt_path(dir))
  rt_edit(dir, function(s) 42)
  expect_error(rt_run(dir), class = "rmsprop_error_checkpoint")
  # the untouched checkpoint still resumes
  saveRDS(good, rt_path(dir))
  expect_identical(rt_run(dir)$resumed_from, 12L)
})

test_that("a 0.2.0 checkpoint (version 1) is refused, never misread", {
  dir <- rt_dir()
  rt_run(dir)
  ck <- readRDS(rt_path(dir))
  ck$version <- 1L
  saveRDS(ck, rt_path(dir))
  expect_error(rt_run(dir), "0.2.0", class = "rmsprop_error_checkpoint")
})
