# Kill-and-resume trials for callback_backup_and_restore(): a minimize() run
# in a separate R process (callr::r_bg) is killed with SIGKILL at a random
# moment, started again with the same call until it finishes, and its result
# is compared bit for bit with a run that was never interrupted. Used by
# test-checkpoint.R (a few trials) and tools/kill-resume.R (many).

# The run of the child process: a stochastic-gradient problem (the gradient
# draws from the RNG), shuffled mini-batches, momentum, validation rows,
# early stopping with best weights, a learning rate reduced on plateaus, and
# a checkpoint every `save_freq`. Writes what must be identical to `out`.
kill_child_run <- function(cfg, dir, out) {
  suppressPackageStartupMessages(library(rmsprop))
  set.seed(100 + cfg$problem)
  n <- 240
  x <- cbind(1, matrix(stats::rnorm(n * 4), n))
  y <- drop(x %*% stats::rnorm(5)) + stats::rnorm(n)
  d <- data.frame(y = y, x = I(x))
  train <- d[1:200, ]
  valid <- d[201:240, ]
  fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
  gr <- function(b, batch) {
    # some work per step, so that kills land inside steps as well as writes
    for (k in seq_len(cfg$work)) g <- drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b))
    g / nrow(batch) + stats::rnorm(length(b), sd = 0.01)
  }
  start <- rep(0, 5)
  big <- if (is.null(cfg$big)) 0 else cfg$big
  if (big > 0) {
    # a large block of parameters (a big model): checkpoints take a while to
    # write, so that kills land inside writes too
    fn_small <- fn
    gr_small <- gr
    fn <- function(p, batch) fn_small(p$b, batch) + 1e-6 * sum(p$w^2)
    gr <- function(p, batch) list(b = gr_small(p$b, batch), w = 2e-6 * p$w)
    start <- list(b = start, w = seq(-1, 1, length.out = big))
  }
  set.seed(cfg$seed)
  fit <- minimize(start, fn, gr, data = train, validation_data = valid,
                  batch_size = cfg$batch_size, epochs = cfg$epochs, progress = FALSE,
                  optimizer = optimizer_rmsprop(0.02, momentum = 0.5, centered = cfg$problem == 2L),
                  callbacks = list(
                    callback_reduce_lr_on_plateau("loss", factor = 0.5, patience = 1,
                                                  min_delta = 0.05),
                    callback_early_stopping(patience = 10, restore_best_weights = TRUE),
                    callback_backup_and_restore(dir, save_freq = cfg$save_freq)))
  res <- list(par = fit$par, value = fit$value, counts = fit$counts,
              convergence = fit$convergence, message = fit$message, history = fit$history,
              steps = fit$steps, epochs = fit$epochs,
              optimizer = fit$optimizer$variables, iterations = fit$optimizer$iterations,
              learning_rate = fit$optimizer$learning_rate,
              rng = get(".Random.seed", envir = globalenv()))
  tmp <- paste0(out, ".tmp")
  saveRDS(res, tmp)
  file.rename(tmp, out)
  invisible(fit$resumed_from)
}

kill_configs <- function(scale = 1) {
  w <- function(k) as.integer(max(1, round(k * scale)))
  list(
    list(problem = 1L, seed = 1L, batch_size = 16L, epochs = 30L, save_freq = "epoch", work = w(3000)),
    list(problem = 2L, seed = 2L, batch_size = 25L, epochs = 40L, save_freq = 3L, work = w(3000)),
    list(problem = 1L, seed = 3L, batch_size = 40L, epochs = 60L, save_freq = 1L, work = w(1000)),
    list(problem = 2L, seed = 4L, batch_size = 20L, epochs = 6L, save_freq = 4L, work = w(200),
         big = as.integer(1e6 * scale))
  )
}

kill_start <- function(cfg, dir, out) {
  callr::r_bg(function(helper, cfg, dir, out) {
    source(helper, local = TRUE)
    kill_child_run(cfg, dir, out)
  }, args = list(helper = kill_helper_path(), cfg = cfg, dir = dir, out = out),
  libpath = .libPaths(), supervise = TRUE)
}

kill_helper_path <- function() {
  for (p in c("helper-kill.R", "tests/testthat/helper-kill.R")) {
    if (file.exists(p)) return(normalizePath(p))
  }
  stop("helper-kill.R not found: run from the package or the tests directory")
}

# The uninterrupted result of a configuration (run in a child as well, so
# both sides load the package the same way), and how long the run takes.
kill_reference <- function(cfg) {
  dir <- tempfile("ref-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  out <- file.path(dir, "result.rds")
  started <- proc.time()[["elapsed"]]
  p <- kill_start(cfg, dir, out)
  p$wait()
  if (!file.exists(out)) stop("the reference run failed: ", paste(p$read_all_error(), collapse = " "))
  list(result = readRDS(out), seconds = proc.time()[["elapsed"]] - started)
}

# One trial: start, kill at a random moment, start again... at most
# `max_kills` kills, then let it finish. Half of the kills aim at checkpoint
# writes: they wait for a temporary checkpoint file to appear and kill then.
# Returns kills, resumes (starts that found a checkpoint), torn writes (kills
# that left a temporary file) and whether the result is identical to the
# reference.
kill_trial <- function(cfg, reference, max_kills = 3L) {
  dir <- tempfile("run-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  out <- file.path(dir, "result.rds")
  ck <- file.path(dir, "rmsprop-checkpoint.rds")
  kills <- 0L
  resumes <- 0L
  torn <- 0L   # kills that landed inside a checkpoint write (its temporary file is left)
  repeat {
    if (file.exists(ck)) resumes <- resumes + 1L
    if (length(list.files(dir, pattern = "^rmsprop-checkpoint-.*\\.tmp$"))) torn <- torn + 1L
    p <- kill_start(cfg, dir, out)
    if (kills < max_kills) {
      # anywhere from start-up to a little past the end of a whole run
      deadline <- proc.time()[["elapsed"]] + stats::runif(1, 0, 1.1 * reference$seconds)
      if (stats::runif(1) < 0.5) {
        # or in the middle of a checkpoint write
        deadline <- proc.time()[["elapsed"]] + 1.1 * reference$seconds
        while (p$is_alive() && proc.time()[["elapsed"]] < deadline &&
               !length(list.files(dir, pattern = "^rmsprop-checkpoint-.*\\.tmp$"))) {
          Sys.sleep(0.0005)
        }
      } else {
        while (p$is_alive() && proc.time()[["elapsed"]] < deadline) Sys.sleep(0.005)
      }
      if (p$is_alive()) {
        tools::pskill(p$get_pid(), tools::SIGKILL)
        p$wait()
        kills <- kills + 1L
        next
      }
    }
    p$wait()
    if (file.exists(out)) break
    stop("a run failed: ", paste(p$read_all_error(), collapse = " "))
  }
  res <- readRDS(out)
  list(kills = kills, resumes = resumes, torn_writes = torn,
       identical = identical(res, reference$result), checkpoint_left = file.exists(ck))
}
