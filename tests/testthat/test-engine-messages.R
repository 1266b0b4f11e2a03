# What a data-parallel step sends to the workers of each engine: the
# epoch's row order once, then only the parameters and positions in that
# order, through the backend's own calls (parallel's for clusters, mirai's
# for daemons). Results are the same on every engine. Each test stops the
# workers it starts.

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

# mirai daemons for one test (and no daemons left after it).
msg_daemons <- function(env = parent.frame()) {
  skip_if_not_installed("mirai")
  skip_if_not_installed("withr")
  mirai::daemons(2L)
  withr::defer(mirai::daemons(0L), envir = env)
  invisible()
}

msg_run <- function(engine, batch_size = 256, epochs = 2, shuffle = TRUE, gr = msg_gr) {
  set.seed(21)
  minimize(rep(0, 4), msg_fn, gr, data = msg_data, batch_size = batch_size, epochs = epochs,
           shuffle = shuffle, engine = engine,
           optimizer = optimizer_rmsprop(0.02, momentum = 0.3))
}

# Nothing of a run is left on the workers.
runs_left_on_cluster <- function(cl) {
  any(unlist(parallel::clusterEvalQ(cl, !is.null(getOption("rmsprop.worker_runs")))))
}
runs_left_on_daemons <- function() {
  any(unlist(mirai::everywhere(!is.null(getOption("rmsprop.worker_runs")))[]))
}

# The bytes sent to each cluster node at every step of an epoch of batches.
epoch_traffic <- function(cl, batch_size, order) {
  ev <- engine_evaluator(cl, msg_fn, gradient_source(msg_gr), list(), msg_data)
  on.exit(attr(ev, "cleanup")(), add = TRUE)
  n <- nrow(msg_data)
  starts <- seq(1, n, by = batch_size)
  sent <- lapply(starts, function(first) {
    span <- c(first, min(first + batch_size - 1, n))
    ev(rep(0.1, 4), order[span[1]:span[2]], order = order, span = span)
    attr(ev, "session")$sent
  })
  do.call(rbind, sent)
}

test_that("a shuffled step sends a few hundred bytes whatever the batch size", {
  cl <- msg_cluster()
  set.seed(1)
  order <- sample.int(nrow(msg_data))
  per_size <- lapply(c(16, 256, 1500), function(b) epoch_traffic(cl, b, order))
  for (sent in per_size) {
    # the first step of the epoch carries the order: 4 bytes a row
    expect_gt(min(sent[1, ]), 4 * nrow(msg_data))
    expect_lt(max(sent[1, ]), 4 * nrow(msg_data) + 2000)
    # then only the parameters and positions
    rest <- sent[-1, , drop = FALSE]
    expect_lt(max(rest), 2000)
    expect_identical(min(rest), max(rest))
  }
  expect_identical(per_size[[1]][2, ], per_size[[2]][2, ])
  expect_identical(per_size[[1]][2, ], per_size[[3]][2, ])
  # the calls sent with each step and at the end of a run stay small
  expect_lt(length(serialize(base_call(worker_keyed_step), NULL)), 1500)
  expect_lt(length(serialize(base_call(worker_cleanup), NULL)), 1500)
})

test_that("shuffled runs are identical on every engine", {
  cl <- msg_cluster()
  for (shards in c(2, 3)) {
    reference <- msg_run(rmsprop_engine("sequential", shards = shards))
    fit <- msg_run(rmsprop_engine(cl, shards = shards))
    expect_identical(fit$par, reference$par)
    expect_identical(fit$history, reference$history)
    expect_identical(fit$value, reference$value)
  }
  plain <- msg_run(NULL)
  expect_equal(fit$par, plain$par, tolerance = 1e-12)
  # without shuffling, and a full batch (contiguous shards, cut once)
  seq2 <- rmsprop_engine("sequential", shards = 2)
  expect_identical(msg_run(cl, shuffle = FALSE)$par, msg_run(seq2, shuffle = FALSE)$par)
  expect_identical(msg_run(cl, batch_size = nrow(msg_data), epochs = 3)$par,
                   msg_run(seq2, batch_size = nrow(msg_data), epochs = 3)$par)
  # futures (under multisession in test-parallel.R)
  skip_if_not_installed("future")
  old <- future::plan(future::sequential)
  on.exit(future::plan(old), add = TRUE)
  expect_identical(msg_run(rmsprop_engine("future", shards = 2))$par, msg_run(seq2)$par)
})

test_that("mirai daemons and a mirai cluster give the sequential trajectory", {
  msg_daemons()
  for (shards in c(2, 3)) {
    reference <- msg_run(rmsprop_engine("sequential", shards = shards))
    fit <- msg_run(rmsprop_engine("mirai", shards = shards))
    expect_identical(fit$par, reference$par)
    expect_identical(fit$history, reference$history)
  }
  seq2 <- rmsprop_engine("sequential", shards = 2)
  expect_identical(msg_run("mirai", shuffle = FALSE)$par, msg_run(seq2, shuffle = FALSE)$par)
  expect_identical(msg_run("mirai", batch_size = nrow(msg_data), epochs = 3)$par,
                   msg_run(seq2, batch_size = nrow(msg_data), epochs = 3)$par)
  expect_false(runs_left_on_daemons())
  # parallel's calls on a cluster that mirai made
  mcl <- mirai::make_cluster(2L)
  on.exit(parallel::stopCluster(mcl), add = TRUE)
  expect_identical(msg_run(mcl)$history, msg_run(seq2)$history)
  expect_identical(msg_run(rmsprop_engine(mcl, shards = 3))$par,
                   msg_run(rmsprop_engine("sequential", shards = 3))$par)
  expect_false(runs_left_on_cluster(mcl))
})

test_that("the evaluator gives the same numbers from rows alone or from order and span", {
  cl <- msg_cluster()
  engines <- list(rmsprop_engine("sequential", shards = 2), cl)
  if (requireNamespace("mirai", quietly = TRUE)) {
    msg_daemons()
    engines <- c(engines, list("mirai"))
  }
  set.seed(5)
  order <- sample.int(nrow(msg_data))
  span <- c(101, 400)
  rows <- order[span[1]:span[2]]
  par <- c(0.1, -0.2, 0.3, 0)
  for (engine in engines) {
    ev <- engine_evaluator(engine, msg_fn, gradient_source(msg_gr), list(), msg_data)
    by_rows <- ev(par, rows)
    by_span <- ev(par, rows, order = order, span = span)
    again <- ev(par, rows, order = order, span = span)
    attr(ev, "cleanup")()
    expect_identical(by_span, by_rows)
    expect_identical(again, by_rows)
  }
  # a gradient of many numbers comes back whole
  big_fn <- function(b, batch) sum(b^2) + mean(batch$y)
  big_gr <- function(b, batch) 2 * b + mean(batch$y)
  local <- engine_evaluator(engines[[1]], big_fn, gradient_source(big_gr), list(), msg_data)
  b <- seq(-1, 1, length.out = 20000)
  expected <- local(b, rows, order = order, span = span)
  for (engine in engines[-1]) {
    ev <- engine_evaluator(engine, big_fn, gradient_source(big_gr), list(), msg_data)
    expect_identical(ev(b, rows, order = order, span = span), expected)
    attr(ev, "cleanup")()
  }
})

test_that("errors on workers stay classed, and leave the workers clean", {
  cl <- msg_cluster()
  bad_gr <- function(b, batch) {
    if (any(batch$y > 6)) stop("a large response")
    msg_gr(b, batch)
  }
  engines <- list(cl)
  if (requireNamespace("mirai", quietly = TRUE)) {
    msg_daemons()
    engines <- c(engines, list("mirai"))
  }
  for (engine in engines) {
    err <- expect_error(msg_run(engine, gr = bad_gr), class = "rmsprop_error_worker")
    expect_match(conditionMessage(err), "shard [12] of 2 \\([0-9]+ rows, first row [0-9]+")
    expect_match(conditionMessage(err), "a large response")
  }
  expect_false(runs_left_on_cluster(cl))
  expect_identical(parallel::clusterCall(cl, function() 2 * 3), list(6, 6))
  if (length(engines) > 1L) expect_false(runs_left_on_daemons())
  # a worker without the run's state answers with failed results
  expect_identical(worker_keyed_step(list(tasks = list(1, 2)), "no such run")[[2]]$ok, FALSE)
})

test_that("a cluster interrupted in a step is not used again, with a warning", {
  cl <- msg_cluster()
  ev <- engine_evaluator(cl, msg_fn, gradient_source(msg_gr), list(), msg_data)
  ev(rep(0.2, 4), 1:100)
  s <- attr(ev, "session")
  expect_false(s$in_flight)
  # as when an interrupt comes while parallel waits for the replies
  s$in_flight <- TRUE
  expect_warning(attr(ev, "cleanup")(), "stopCluster", class = "rmsprop_warning_cluster")
  # the run's state stays on the workers (no call was made), which a new cluster avoids
  expect_true(runs_left_on_cluster(cl))
  parallel::clusterEvalQ(cl, options(rmsprop.worker_runs = NULL))
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
  expect_false(runs_left_on_cluster(cl))
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

test_that("a run started from a callback may use the same workers", {
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
  reference <- outer_run(rmsprop_engine("sequential", shards = 2))
  expect_identical(outer_run(cl), reference)
  expect_false(runs_left_on_cluster(cl))
  skip_if_not_installed("mirai")
  msg_daemons()
  expect_identical(outer_run("mirai"), reference)
  expect_false(runs_left_on_daemons())
})
