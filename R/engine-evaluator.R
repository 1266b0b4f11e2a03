# The driver side of data-parallel gradients for minimize(): sending the
# user's functions and data to an engine once per run, cutting each batch into
# shards, running the shard tasks, and combining the losses and gradients in
# shard order (so every backend gives the same numbers).
# Must never: send optimizer state to a worker, depend on the order in which
# workers answer, or leave anything behind on a cluster after the run.


# A name for one run's state on cluster workers. It must not use the RNG:
# drawing from it would change the shuffling of the user's run.
run_counter <- new.env(parent = emptyenv())
run_key <- function() {
  run_counter$n <- (if (is.null(run_counter$n)) 0 else run_counter$n) + 1
  sprintf("run_%d_%s_%d", Sys.getpid(), format(Sys.time(), "%Y%m%d%H%M%OS6"), run_counter$n)
}

# The library this session loaded rmsprop from, for workers to load it too.
driver_lib <- function() {
  path <- tryCatch(getNamespaceInfo("rmsprop", "path"), error = function(e) NA_character_)
  if (is.na(path)) NA_character_ else dirname(path)
}

# Run tasks on the engine; returns the list of worker results, in task order.
engine_run <- function(engine, tasks, fun_name, shared, wenv) {
  fun <- get(fun_name, envir = wenv)
  switch(engine$type,
    sequential = lapply(tasks, fun_with_args(fun, shared)),
    cluster = tryCatch(
      if (fun_name == "worker_cluster_task") {
        parallel::clusterApply(engine$cluster, tasks, cluster_step, shared$key, shared$par)
      } else {
        parallel::clusterApply(engine$cluster, tasks, fun_with_args(fun, shared))
      },
      error = function(e) {
        rmsprop_abort("worker", sprintf("the cluster failed: %s", conditionMessage(e)))
      }),
    future = {
      futures <- lapply(tasks, function(t) {
        future::future(quote(f(t)), substitute = FALSE, lazy = FALSE, seed = NULL,
                       globals = list(f = fun_with_args(fun, shared), t = t),
                       packages = character(0))
      })
      lapply(seq_along(futures), function(i) tryCatch(
        future::value(futures[[i]]),
        error = function(e) list(ok = FALSE, message = conditionMessage(e))))
    })
}

# One step's task on a cluster worker, through the code worker_setup() left
# there. Kept tiny (its environment is base): a message larger than a few
# kilobytes meets TCP's delayed acknowledgements on PSOCK sockets and costs
# about 40 ms per step.
cluster_step <- function(task, key, par) {
  state <- get0(key, envir = getOption("rmsprop.worker_runs", emptyenv()), inherits = FALSE)
  if (!is.list(state) || !is.function(state$task)) {
    return(list(ok = FALSE, message = "the worker has no state for this run"))
  }
  state$task(task, key, par)
}
environment(cluster_step) <- baseenv()

# fun(task, <shared...>) as a function of the task alone, still free of any
# reference to the package namespace.
fun_with_args <- function(fun, shared) {
  env <- new.env(parent = environment(fun))
  env$fun <- fun
  env$shared <- shared
  f <- function(task) do.call(fun, c(list(task), shared))
  environment(f) <- env
  f
}

# Split x into n contiguous, nearly equal pieces (none empty).
split_even <- function(x, n) {
  n <- min(n, length(x))
  if (n <= 1L) return(list(x))
  split(x, rep(seq_len(n), diff(round(seq(0, length(x), length.out = n + 1L)))))
}

# The weighted sum of gradient structures, in shard order; NULL leaves stay NULL.
combine_gradients <- function(grads, weights) {
  first <- grads[[1L]]
  if (is.null(first)) return(NULL)
  if (is.list(first)) {
    out <- lapply(seq_along(first), function(i) {
      combine_gradients(lapply(grads, function(g) g[[i]]), weights)
    })
    attributes(out) <- attributes(first)
    return(out)
  }
  acc <- weights[1L] * as.double(first)
  for (k in seq_along(grads)[-1L]) acc <- acc + weights[k] * as.double(grads[[k]])
  attributes(acc) <- attributes(first)
  acc
}

raise_worker_error <- function(res, what) {
  rmsprop_abort("worker", sprintf("%s failed on its worker: %s", what, res$message),
                worker_message = res$message)
}

# The evaluator of minimize() for an engine: function(par, rows, need_grad).
engine_evaluator <- function(engine, fn, gr, dots, data) {
  engine <- as_engine(engine)
  has_data <- !is.null(data)
  local <- fit_local_evaluator(fn, gr, dots, data)
  if (!has_data && !is.null(gr)) return(local)
  n_shards <- engine_shards(engine)
  wenv <- worker_env()
  lib <- driver_lib()
  key <- run_key()
  # A cluster gets the data once (then only row indices travel per step);
  # a future gets its shard's rows with every task.
  payload <- if (engine$type == "sequential") NULL else {
    serialize(list(fn = fn, gr = gr, dots = dots,
                   data = if (engine$type == "cluster") data), NULL)
  }
  cleanup <- NULL
  if (engine$type == "cluster") {
    setup <- get("worker_setup", envir = wenv)
    tryCatch(parallel::clusterCall(engine$cluster, setup, key, payload, lib),
             error = function(e) rmsprop_abort("worker", sprintf(
               "sending the functions and data to the cluster failed: %s",
               conditionMessage(e))))
    cleanup <- function() {
      try(parallel::clusterCall(engine$cluster, get("worker_cleanup", envir = wenv), key),
          silent = TRUE)
      invisible()
    }
  }
  run_tasks <- if (engine$type == "sequential") {
    # In this process: the same worker code on the unpacked state.
    state <- list(fn = fn, gr = gr, dots = dots, data = data,
                  cache = new.env(parent = emptyenv()))
    task_fun <- get("worker_task", envir = wenv)
    function(tasks, par) lapply(tasks, function(t) task_fun(state, t, par))
  } else if (engine$type == "cluster") {
    function(tasks, par) engine_run(engine, tasks, "worker_cluster_task",
                                    list(key = key, par = par), wenv)
  } else {
    function(tasks, par) engine_run(engine, tasks, "worker_future_task",
                                    list(payload = payload, lib = lib, par = par), wenv)
  }

  evaluate <- function(par, rows, need_grad = TRUE) {
    if (!has_data) {
      # Numerical gradient: the coordinates are split across the workers.
      loss <- fit_call(fn, par, NULL, dots, FALSE)
      if (!need_grad) return(list(loss = loss, grad = NULL, n_fn = 1, n_gr = 0))
      n_par <- length(unlist(par, use.names = FALSE))
      blocks <- split_even(seq_len(n_par), n_shards)
      tasks <- lapply(blocks, function(idx) list(type = "partials", idx = idx))
      res <- run_tasks(tasks, par)
      for (k in seq_along(res)) {
        if (!isTRUE(res[[k]]$ok)) {
          raise_worker_error(res[[k]], sprintf(
            "the numerical gradient for coordinates %d-%d (block %d of %d)",
            min(blocks[[k]]), max(blocks[[k]]), k, length(blocks)))
        }
      }
      g <- unlist(lapply(res, `[[`, "partials"), use.names = FALSE)
      return(list(loss = loss, grad = fit_relist(g, par), n_fn = 1, n_gr = 1))
    }
    shards <- split_even(rows, n_shards)
    tasks <- lapply(shards, function(r) {
      t <- list(type = "shard", rows = r, need_grad = need_grad, batch = NULL)
      if (engine$type == "future") {
        t$batch <- data[r, , drop = FALSE]
      } else if (r[length(r)] - r[1L] + 1L == length(r) && !is.unsorted(r, strictly = TRUE)) {
        t$rows <- NULL
        t$range <- c(r[1L], r[length(r)])
      }
      t
    })
    res <- run_tasks(tasks, par)
    for (k in seq_along(res)) {
      if (!isTRUE(res[[k]]$ok)) {
        raise_worker_error(res[[k]], sprintf(
          "shard %d of %d (%d rows, first row %d of the data)", k, length(shards),
          length(shards[[k]]), shards[[k]][1L]))
      }
    }
    weights <- lengths(shards) / length(rows)
    loss <- 0
    for (k in seq_along(res)) loss <- loss + weights[k] * res[[k]]$loss
    grad <- if (need_grad) combine_gradients(lapply(res, `[[`, "grad"), weights)
    # Counted as one evaluation of fn (and gr) on the batch, as in one process.
    list(loss = loss, grad = grad, n_fn = 1, n_gr = if (need_grad) 1 else 0)
  }
  attr(evaluate, "cleanup") <- cleanup
  evaluate
}

