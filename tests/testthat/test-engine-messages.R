# What a data-parallel step sends to cluster workers: the epoch's row order
# once, then only the parameters and positions in that order, each message
# in one write on PSOCK clusters (parallel::clusterApply() on other
# clusters). Results are the same on every engine and transport. Each test
# stops the workers it starts.

msg_data <- local({
  set.seed(7)
  n <- 3000
  x <- cbind(1, matrix(stats::rnorm(n * 3), n))
  y <- drop(x %*% c(0.5, -1, 2, 0) + stats::rnorm(n))
  data.frame(y = y, x = I(x))
})
msg_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
msg_gr <- function(b, batch) -2 * drop(crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)

msg_cluster <- function(env = parent.frame()) {
  skip_if_not_installed("withr")
  cl <- parallel::makeCluster(2L)
  withr::defer(parallel::stopCluster(cl), envir = env)
  cl
}

msg_run <- function(engine, batch_size = 256, epochs = 2, shuffle = TRUE, gr = msg_gr) {
  set.seed(21)
  minimize(rep(0, 4), msg_fn, gr, data = msg_data, batch_size = batch_size, epochs = epochs,
           shuffle = shuffle, engine = engine,
           optimizer = optimizer_rmsprop(0.02, momentum = 0.3))
}

# The bytes sent to each worker at every step of an epoch of batches.
epoch_traffic <- function(engine, batch_size, order) {
  ev <- engine_evaluator(engine, msg_fn, msg_gr, list(), msg_data)
  on.exit(attr(ev, "cleanup")(), add = TRUE)
  n <- nrow(msg_data)
  starts <- seq(1, n, by = batch_size)
  sent <- lapply(starts, function(first) {
    span <- c(first, min(first + batch_size - 1, n))
    ev(rep(0.1, 4), order[span[1]:span[2]], order = order, span = span)
    attr(ev, "traffic")$sent
  })
  list(sent = do.call(rbind, sent), direct = attr(ev, "traffic")$direct)
}

test_that("a shuffled step sends a few hundred bytes whatever the batch size", {
  cl <- msg_cluster()
  set.seed(1)
  order <- sample.int(nrow(msg_data))
  for (direct in c(TRUE, FALSE)) {
    withr::local_options(rmsprop.cluster_direct = direct)
    per_size <- lapply(c(16, 256, 1500), function(b) epoch_traffic(cl, b, order))
    for (tr in per_size) {
      expect_identical(tr$direct, direct)
      # the first step of the epoch carries the order: 4 bytes a row
      expect_gt(min(tr$sent[1, ]), 4 * nrow(msg_data))
      expect_lt(max(tr$sent[1, ]), 4 * nrow(msg_data) + 2000)
      # then only the parameters and positions
      rest <- tr$sent[-1, , drop = FALSE]
      expect_lt(max(rest), 2000)
      expect_identical(min(rest), max(rest))
    }
    expect_identical(per_size[[1]]$sent[2, ], per_size[[2]]$sent[2, ])
    expect_identical(per_size[[1]]$sent[2, ], per_size[[3]]$sent[2, ])
  }
  # the calls parallel sends with each step (on other clusters) and at the end
  # of a run stay small
  expect_lt(length(serialize(base_call(cluster_step), NULL)), 1500)
  expect_lt(length(serialize(base_call(worker_cleanup), NULL)), 1500)
})

test_that("shuffled runs are identical on every engine and transport", {
  cl <- msg_cluster()
  for (shards in c(2, 3)) {
    reference <- msg_run(rmsprop_engine("sequential", shards = shards))
    direct <- msg_run(rmsprop_engine(cl, shards = shards))
    expect_identical(direct$par, reference$par)
    expect_identical(direct$history, reference$history)
    expect_identical(direct$value, reference$value)
    withr::with_options(list(rmsprop.cluster_direct = FALSE), {
      applied <- msg_run(rmsprop_engine(cl, shards = shards))
    })
    expect_identical(applied$par, reference$par)
    expect_identical(applied$history, reference$history)
  }
  plain <- msg_run(NULL)
  expect_equal(direct$par, plain$par, tolerance = 1e-12)
  # without shuffling, and a full batch (contiguous shards, cut once)
  expect_identical(msg_run(cl, shuffle = FALSE)$par,
                   msg_run(rmsprop_engine("sequential", shards = 2), shuffle = FALSE)$par)
  expect_identical(msg_run(cl, batch_size = nrow(msg_data), epochs = 3)$par,
                   msg_run(rmsprop_engine("sequential", shards = 2),
                           batch_size = nrow(msg_data), epochs = 3)$par)
  # futures (under multisession in test-parallel.R)
  skip_if_not_installed("future")
  old <- future::plan(future::sequential)
  on.exit(future::plan(old), add = TRUE)
  expect_identical(msg_run(rmsprop_engine("future", shards = 2))$par,
                   msg_run(rmsprop_engine("sequential", shards = 2))$par)
})

test_that("the evaluator gives the same numbers from rows alone or from order and span", {
  cl <- msg_cluster()
  set.seed(5)
  order <- sample.int(nrow(msg_data))
  span <- c(101, 400)
  rows <- order[span[1]:span[2]]
  par <- c(0.1, -0.2, 0.3, 0)
  for (engine in list(rmsprop_engine("sequential", shards = 2), cl)) {
    ev <- engine_evaluator(engine, msg_fn, msg_gr, list(), msg_data)
    by_rows <- ev(par, rows)
    by_span <- ev(par, rows, order = order, span = span)
    again <- ev(par, rows, order = order, span = span)
    attr(ev, "cleanup")()
    expect_identical(by_span, by_rows)
    expect_identical(again, by_rows)
  }
  # a gradient of many numbers comes back whole (one write on the worker)
  big_fn <- function(b, batch) sum(b^2) + mean(batch$y)
  big_gr <- function(b, batch) 2 * b + mean(batch$y)
  ev <- engine_evaluator(cl, big_fn, big_gr, list(), msg_data)
  local <- engine_evaluator(rmsprop_engine("sequential", shards = 2), big_fn, big_gr, list(),
                            msg_data)
  b <- seq(-1, 1, length.out = 20000)
  expect_identical(ev(b, rows, order = order, span = span),
                   local(b, rows, order = order, span = span))
  attr(ev, "cleanup")()
})

test_that("a reply left unread (an interrupt) is dropped before the next step", {
  cl <- msg_cluster()
  set.seed(5)
  order <- sample.int(nrow(msg_data))
  ev <- engine_evaluator(cl, msg_fn, msg_gr, list(), msg_data)
  expected <- ev(rep(0.2, 4), NULL, order = order, span = c(1, 500))
  s <- environment(ev)$session
  expect_true(is.environment(s))
  # a step sent whose replies are never read, as when an interrupt comes
  # while the driver waits
  for (i in seq_along(cl)) {
    s$pending[i] <- s$pending[i] + 1L
    session_write(s, i, list(type = "rmsprop", op = "step", par = rep(9, 4),
                             tasks = list(list(type = "shard", need_grad = TRUE,
                                               range = c(1L, 10L)))))
  }
  expect_identical(ev(rep(0.2, 4), NULL, order = order, span = c(1, 500)), expected)
  # left unread again, then the run ends: the cluster is clean and usable
  session_write(s, 1L, list(type = "rmsprop", op = "step", par = rep(9, 4), tasks = list()))
  s$pending[1] <- 1L
  attr(ev, "cleanup")()
  expect_identical(unlist(parallel::clusterEvalQ(cl, is.null(getOption("rmsprop.worker_runs")))),
                   c(TRUE, TRUE))
  expect_identical(parallel::clusterCall(cl, function() 1 + 1), list(2, 2))
})

test_that("errors on workers stay classed on both transports, and leave the cluster clean", {
  cl <- msg_cluster()
  bad_gr <- function(b, batch) {
    if (any(batch$y > 6)) stop("a large response")
    msg_gr(b, batch)
  }
  for (direct in c(TRUE, FALSE)) {
    withr::local_options(rmsprop.cluster_direct = direct)
    err <- expect_error(msg_run(cl, gr = bad_gr), class = "rmsprop_error_worker")
    expect_match(conditionMessage(err), "shard [12] of 2 \\([0-9]+ rows, first row [0-9]+")
    expect_match(conditionMessage(err), "a large response")
    left <- parallel::clusterEvalQ(cl, !is.null(getOption("rmsprop.worker_runs")))
    expect_false(any(unlist(left)))
    expect_identical(parallel::clusterCall(cl, function() 2 * 3), list(6, 6))
  }
  # a worker without the run's state answers with a classed error too
  expect_identical(cluster_step(list(tasks = list(1, 2)), "no such run")[[2]]$ok, FALSE)
  # outside a PSOCK worker there is no connection to serve on
  expect_false(worker_serve("no such run", TRUE))
})

test_that("the cluster answers ordinary calls between steps (from a callback)", {
  cl <- msg_cluster()
  seen <- integer(0)
  cb <- function(info) {
    seen[info$step] <<- sum(unlist(parallel::clusterCall(cl, function(i) i * 2L, info$step)))
    TRUE
  }
  set.seed(21)
  fit <- minimize(rep(0, 4), msg_fn, msg_gr, data = msg_data, batch_size = 500, epochs = 2,
                  engine = cl, callback = cb, optimizer = optimizer_rmsprop(0.02, momentum = 0.3))
  expect_identical(seen, 4L * seq_len(fit$steps))
  set.seed(21)
  ref <- minimize(rep(0, 4), msg_fn, msg_gr, data = msg_data, batch_size = 500, epochs = 2,
                  engine = rmsprop_engine("sequential", shards = 2),
                  optimizer = optimizer_rmsprop(0.02, momentum = 0.3))
  expect_identical(fit$par, ref$par)
  # an error in such a call is the usual error of parallel, and the run goes on
  cb_err <- function(info) {
    if (info$step == 2) {
      expect_error(parallel::clusterCall(cl, function() stop("not here")), "not here")
    }
    TRUE
  }
  set.seed(21)
  fit2 <- minimize(rep(0, 4), msg_fn, msg_gr, data = msg_data, batch_size = 500, epochs = 2,
                   engine = cl, callback = cb_err,
                   optimizer = optimizer_rmsprop(0.02, momentum = 0.3))
  expect_identical(fit2$par, ref$par)
  expect_identical(unlist(parallel::clusterEvalQ(cl, is.null(getOption("rmsprop.worker_runs")))),
                   c(TRUE, TRUE))
})

test_that("a last batch smaller than the number of shards goes to fewer workers", {
  cl <- msg_cluster()
  d <- msg_data[1:1001, ]
  run <- function(engine) {
    set.seed(9)
    minimize(rep(0, 4), msg_fn, msg_gr, data = d, batch_size = 250, epochs = 3,
             engine = engine, optimizer = optimizer_rmsprop(0.02))
  }
  ref <- run(rmsprop_engine("sequential", shards = 3))
  fit <- run(rmsprop_engine(cl, shards = 3))
  expect_identical(fit$par, ref$par)
  expect_identical(fit$history, ref$history)
  expect_identical(nrow(fit$history), 15L)
})

test_that("a run started from a callback may use the same cluster", {
  cl <- msg_cluster()
  inner_run <- function(engine) {
    set.seed(5)
    minimize(rep(0, 4), msg_fn, msg_gr, data = msg_data, batch_size = 1000, epochs = 1,
             engine = engine, optimizer = optimizer_rmsprop(0.05))$par
  }
  outer_run <- function(engine) {
    inner <- NULL
    cb <- function(info) {
      if (info$step == 2) inner <<- inner_run(engine)
      TRUE
    }
    set.seed(1)
    fit <- minimize(rep(0, 4), msg_fn, msg_gr, data = msg_data, batch_size = 1000, epochs = 2,
                    engine = engine, callback = cb, optimizer = optimizer_rmsprop(0.05))
    list(outer = fit$par, inner = inner)
  }
  expect_identical(outer_run(cl), outer_run(rmsprop_engine("sequential", shards = 2)))
  expect_identical(unlist(parallel::clusterEvalQ(cl, is.null(getOption("rmsprop.worker_runs")))),
                   c(TRUE, TRUE))
})
