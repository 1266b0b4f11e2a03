# Scaling out: data-parallel gradients for minimize() and sweep_optimizers().
#
# Owns: the engines (sequential, any `future` plan, a `parallel` cluster),
# splitting a batch into shards, the code that runs on workers, combining the
# shard results, and the classed "worker" errors.
# Must never: send optimizer state to a worker (only parameters, gradients
# and the user's functions and data travel; the single optimizer step happens
# in the driver), depend on the order in which workers answer (results are
# combined in shard order, so every backend gives the same numbers), or leave
# anything behind on a cluster after the run.
#
# Code that runs on workers is copied into a small environment whose parent
# is the base environment (worker_env()), so running it does not need the
# package; the user's functions and data are serialized on the driver and
# unserialized on the worker after the package has been loaded there when it
# is installed (the user's functions may refer to it).

#' Engines for data-parallel gradients and optimizer sweeps
#'
#' An engine tells [minimize()] and [sweep_optimizers()] where to compute.
#' With `data`, `minimize()` splits the rows of every mini-batch into
#' `shards` contiguous shards; each worker calls `fn` and `gr` on its shard,
#' the driver combines the losses and gradients weighted by shard size (so
#' `fn` should return the mean loss over the rows it gets) and takes the
#' single optimizer step itself: the optimizer state never leaves the driver,
#' only the parameters go out and the losses and gradients come back. Without
#' `data` and with `gr = NULL`, the coordinates of the numerical gradient are
#' split across the workers instead. Without `data` and with a `gr`, there is
#' nothing to split and the engine is not used.
#'
#' Backends:
#' * `"sequential"`: in this R process, shard by shard. With the same `shards`
#'   it gives bit-for-bit the numbers of the parallel backends.
#' * `"future"`: one future per shard, under whatever [future::plan()] is set
#'   (`sequential`, `multisession`, `cluster` over SSH hostnames,
#'   `future.batchtools`, ...). Needs the \pkg{future} package (Suggests).
#'   The functions and the shard's rows travel with every future.
#' * a cluster from [parallel::makeCluster()] (or `parallelly`): the functions
#'   and `data` are sent once per run and removed at the end; each step sends
#'   only the parameters and row indices.
#'
#' Workers that run `sweep_optimizers()`, or whose functions refer to
#' \pkg{rmsprop}, load the package: from the library this session loaded it
#' from, or from the worker's own library paths (install it there on other
#' machines).
#'
#' A failure on a worker is raised in the driver as an error of class
#' `rmsprop_error_worker` naming the shard (or the configuration), before the
#' optimizer steps: the run's optimizer is left unchanged.
#'
#' Combining shards changes the rounding: a data-parallel run agrees with the
#' run in one process (`engine = NULL`) to about 1e-12, and exactly with
#' `rmsprop_engine("sequential", shards = <same number>)`.
#'
#' @param backend `"sequential"`, `"future"`, or a cluster object (class
#'   `"cluster"`).
#' @param shards The number of shards per batch: `NULL` uses one per worker
#'   (the cluster's size, or [future::nbrOfWorkers()] at the start of each
#'   run; 1 for `"sequential"`).
#' @param x An engine.
#' @param ... Ignored.
#' @return An object of class `"rmsprop_engine"`.
#' @seealso [minimize()], [sweep_optimizers()]
#' @export
#' @examples
#' # Linear regression on mtcars, the gradient computed on two shards per batch
#' d <- data.frame(mpg = mtcars$mpg, x = I(cbind(1, scale(mtcars$wt))))
#' fn <- function(b, batch) mean((batch$mpg - batch$x %*% b)^2)
#' gr <- function(b, batch) -2 * drop(crossprod(batch$x, batch$mpg - batch$x %*% b)) / nrow(batch)
#' eng <- rmsprop_engine("sequential", shards = 2)
#' fit <- minimize(c(0, 0), fn, gr, data = d, epochs = 300, engine = eng,
#'                 optimizer = optimizer_rmsprop(learning_rate = 0.1))
#' fit$par
#'
#' \donttest{
#' # Two local worker processes
#' if (requireNamespace("parallel", quietly = TRUE)) {
#'   cl <- parallel::makeCluster(2)
#'   fit2 <- minimize(c(0, 0), fn, gr, data = d, epochs = 300, engine = cl,
#'                    optimizer = optimizer_rmsprop(learning_rate = 0.1))
#'   parallel::stopCluster(cl)
#'   all.equal(fit$par, fit2$par, tolerance = 1e-12)
#' }
#' }
rmsprop_engine <- function(backend = "sequential", shards = NULL) {
  check_number(shards, "shards", lower = 1, whole = TRUE, null_ok = TRUE)
  if (inherits(backend, "cluster")) {
    type <- "cluster"
  } else if (is.character(backend) && length(backend) == 1L &&
             backend %in% c("sequential", "future")) {
    type <- backend
    backend <- NULL
  } else {
    rmsprop_abort("argument", sprintf(
      "`backend` must be \"sequential\", \"future\" or a cluster from parallel::makeCluster(), not %s.",
      describe_value(backend)), argument = "backend")
  }
  if (type == "future" && !requireNamespace("future", quietly = TRUE)) {
    rmsprop_abort("argument",
                  "`backend = \"future\"` needs the future package: install.packages(\"future\").",
                  argument = "backend")
  }
  structure(list(type = type, cluster = backend,
                 shards = if (is.null(shards)) NULL else as.integer(shards)),
            class = "rmsprop_engine")
}

#' @rdname rmsprop_engine
#' @export
format.rmsprop_engine <- function(x, ...) {
  what <- switch(x$type,
                 sequential = "sequential (this R process)",
                 future = "future (the current future::plan())",
                 cluster = sprintf("a cluster of %d workers", length(x$cluster)))
  sprintf("<rmsprop_engine> %s, %s", what,
          if (is.null(x$shards)) "one shard per worker" else sprintf("%d shards", x$shards))
}

#' @rdname rmsprop_engine
#' @export
print.rmsprop_engine <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}

# An engine from what the user passed as `engine`.
as_engine <- function(engine, arg = "engine") {
  if (inherits(engine, "rmsprop_engine")) return(engine)
  if (inherits(engine, "cluster") ||
      (is.character(engine) && length(engine) == 1L && engine %in% c("sequential", "future"))) {
    return(rmsprop_engine(engine))
  }
  rmsprop_abort("argument", sprintf(
    "`%s` must be NULL, \"sequential\", \"future\", a cluster from parallel::makeCluster() or an rmsprop_engine(), not %s.",
    arg, describe_value(engine)), argument = arg)
}

engine_workers <- function(engine) {
  switch(engine$type,
         sequential = 1L,
         cluster = length(engine$cluster),
         future = {
           n <- future::nbrOfWorkers()
           if (!is.finite(n)) 2L else as.integer(max(1, n))
         })
}

engine_shards <- function(engine) {
  if (!is.null(engine$shards)) engine$shards else engine_workers(engine)
}

# ---- code that runs on workers ---------------------------------------------

worker_functions <- c("fit_call", "fit_check_loss", "fit_relist", "numerical_partials",
                      "worker_batch",
                      "rmsprop_abort", "describe_value", "worker_load", "worker_task",
                      "worker_state", "worker_setup", "worker_cleanup", "worker_cluster_task",
                      "worker_future_task", "worker_sweep")

# Copies of the functions above in one environment that hangs off base, so
# that they serialize without a reference to the package's namespace.
worker_env <- function() {
  ns <- environment(worker_env)
  env <- new.env(parent = baseenv())
  for (name in worker_functions) {
    f <- get(name, envir = ns)
    environment(f) <- env
    assign(name, f, envir = env)
  }
  env
}

# Load rmsprop on a worker if it can be found (the driver's library first).
# Returns TRUE when it is loaded.
worker_load <- function(lib) {
  if ("rmsprop" %in% loadedNamespaces()) return(TRUE)
  lib <- lib[!is.na(lib) & dir.exists(lib)]
  ok <- tryCatch({
    loadNamespace("rmsprop", lib.loc = c(lib, .libPaths()))
    TRUE
  }, error = function(e) FALSE)
  ok
}

# Unpack the user's functions and data (serialized on the driver).
worker_state <- function(payload, lib) {
  worker_load(lib)
  unserialize(payload)
}

# One task: the loss (and gradient) of a shard, or some numerical partials.
worker_task <- function(state, task, par) {
  tryCatch({
    if (identical(task$type, "shard")) {
      batch <- if (is.null(task$batch)) worker_batch(state, task) else task$batch
      loss <- fit_check_loss(fit_call(state$fn, par, batch, state$dots, TRUE))
      grad <- NULL
      if (task$need_grad) {
        grad <- if (is.null(state$gr)) {
          f <- function(p) fit_call(state$fn, p, batch, state$dots, TRUE)
          fit_relist(numerical_partials(f, par, seq_along(unlist(par, use.names = FALSE))), par)
        } else {
          fit_call(state$gr, par, batch, state$dots, TRUE)
        }
      }
      list(ok = TRUE, loss = loss, grad = grad)
    } else {
      f <- function(p) fit_call(state$fn, p, NULL, state$dots, FALSE)
      list(ok = TRUE, partials = numerical_partials(f, par, task$idx))
    }
  }, error = function(e) list(ok = FALSE, message = conditionMessage(e)))
}

# The rows of a task from the data the worker holds. A contiguous range of
# rows is sent as its two ends, and the last one is kept, so a full-batch run
# without shuffling cuts its shard once, not at every step.
worker_batch <- function(state, task) {
  if (is.null(task$range)) return(state$data[task$rows, , drop = FALSE])
  cache <- state$cache
  key <- paste(task$range, collapse = ":")
  if (!is.null(cache) && identical(cache$key, key)) return(cache$batch)
  rows <- seq.int(task$range[1L], task$range[2L])
  batch <- if (length(rows) == NROW(state$data)) state$data else state$data[rows, , drop = FALSE]
  if (!is.null(cache)) {
    cache$key <- key
    cache$batch <- batch
  }
  batch
}

# Cluster workers keep the run's state between steps under a key, in an
# environment held in the worker process's options: it persists across
# calls (the worker code itself is shipped anew with every call) without
# touching the worker's global environment.
worker_setup <- function(key, payload, lib) {
  store <- getOption("rmsprop.worker_runs")
  if (!is.environment(store)) {
    store <- new.env(parent = emptyenv())
    options(rmsprop.worker_runs = store)
  }
  state <- tryCatch(worker_state(payload, lib),
                    error = function(e) structure(list(message = conditionMessage(e)),
                                                  class = "rmsprop_worker_failed"))
  if (is.list(state)) {
    state$cache <- new.env(parent = emptyenv())
    # The per-step code stays on the worker, so each step sends only a tiny
    # call (see cluster_step()), not this code again.
    state$task <- worker_cluster_task
  }
  assign(key, state, envir = store)
  TRUE
}

worker_cleanup <- function(key) {
  store <- getOption("rmsprop.worker_runs")
  if (is.environment(store)) {
    if (exists(key, envir = store, inherits = FALSE)) rm(list = key, envir = store)
    if (length(ls(store, all.names = TRUE)) == 0L) options(rmsprop.worker_runs = NULL)
  }
  TRUE
}

worker_cluster_task <- function(task, key, par) {
  store <- getOption("rmsprop.worker_runs")
  state <- if (is.environment(store) && exists(key, envir = store, inherits = FALSE)) {
    get(key, envir = store)
  }
  if (is.null(state)) return(list(ok = FALSE, message = "the worker has no state for this run"))
  if (inherits(state, "rmsprop_worker_failed")) {
    return(list(ok = FALSE, message = paste("setting up the worker failed:", state$message)))
  }
  worker_task(state, task, par)
}

worker_future_task <- function(task, payload, lib, par) {
  state <- tryCatch(worker_state(payload, lib), error = function(e) e)
  if (inherits(state, "error")) {
    return(list(ok = FALSE, message = paste("setting up the worker failed:",
                                            conditionMessage(state))))
  }
  worker_task(state, task, par)
}

# One configuration of a sweep: needs the package on the worker.
worker_sweep <- function(job, payload, lib) {
  tryCatch({
    if (!worker_load(lib)) stop("the rmsprop package cannot be loaded on this worker")
    p <- unserialize(payload)
    cfg <- unserialize(job$config)
    ns <- asNamespace("rmsprop")
    opt <- do.call(get("optimizer_rmsprop", envir = ns), cfg)
    if (!is.null(job$seed)) set.seed(job$seed)
    args <- c(list(par = p$par, fn = p$fn, gr = p$gr), p$dots,
              list(optimizer = opt, steps = p$steps, tol = p$tol, data = p$data,
                   batch_size = p$batch_size, epochs = p$epochs, shuffle = p$shuffle,
                   progress = FALSE))
    fit <- do.call(get("minimize", envir = ns), args)
    list(ok = TRUE, history = fit$history, value = fit$value, convergence = fit$convergence,
         message = fit$message, steps = fit$steps, par = fit$par)
  }, error = function(e) list(ok = FALSE, message = conditionMessage(e)))
}

# ---- the driver side ---------------------------------------------------------

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

# ---- sweeps ------------------------------------------------------------------

#' Run minimize() for a grid of optimizer settings, in parallel
#'
#' Every row of `grid` (or element, for a list) is a set of arguments for
#' [optimizer_rmsprop()]; each configuration trains from the same `par` with
#' [minimize()], on the workers of `engine` (one configuration per task), and
#' the loss curves come back as one tidy data frame that `plot()` overlays.
#'
#' Columns of a data frame `grid` are arguments of `optimizer_rmsprop()`; a
#' list column carries values that are not single numbers, such as learning
#' rate schedules (`grid$learning_rate <- list(0.01,
#' learning_rate_schedule_cosine_decay(0.1, 500))`). `NA` in a column leaves
#' that argument at its default. Every configuration is checked by building
#' its optimizer before anything runs.
#'
#' With `data` and `shuffle = TRUE`, every configuration sees the same row
#' order: each runs under `set.seed(seed)`, so a sweep gives the same numbers
#' on every engine. The RNG of the calling session is used only to draw `seed`
#' when it is `NULL`.
#'
#' @param grid A data frame or a list of named lists of arguments for
#'   [optimizer_rmsprop()].
#' @inheritParams minimize
#' @param seed `NULL` or a whole number: the seed set before each
#'   configuration's run (used for shuffling). `NULL` draws one from the
#'   session's RNG.
#' @param engine `NULL` (one after the other, here), `"sequential"`,
#'   `"future"` (any [future::plan()]), or a cluster from
#'   [parallel::makeCluster()]; see [rmsprop_engine()]. The workers need
#'   \pkg{rmsprop} installed.
#' @return A data frame of class `"rmsprop_sweep"` with one row per
#'   configuration and step: `config` (the configuration's number), the grid's
#'   columns (a list column as a character label; a column whose name is
#'   also a history column gets the suffix `_config`, so the grid's
#'   `learning_rate` is `learning_rate_config`), `step`, `epoch` (with
#'   `data`), `loss`, `learning_rate` and `grad_norm`. Its attribute `"final"`
#'   is a data frame with one row per configuration (`config`, the grid's
#'   columns, `value`, `convergence`, `steps`, `message`), and `"par"` a list
#'   of the parameters each configuration reached.
#' @seealso [minimize()], [rmsprop_engine()]
#' @export
#' @examples
#' fn <- function(p) sum((p - c(1, -2))^2)
#' gr <- function(p) 2 * (p - c(1, -2))
#' grid <- data.frame(learning_rate = c(0.01, 0.05, 0.1), momentum = c(0, 0.5, 0))
#' sw <- sweep_optimizers(grid, c(0, 0), fn, gr, steps = 100)
#' sw
#' head(as.data.frame(sw))
#' plot(sw)
sweep_optimizers <- function(grid, par, fn, gr = NULL, ..., steps = NULL, tol = 0,
                             data = NULL, batch_size = NULL, epochs = 1L, shuffle = TRUE,
                             seed = NULL, engine = NULL) {
  configs <- sweep_configs(grid)
  labels <- sweep_labels(grid, configs)
  par <- fit_check_par(par)
  fit_check_function(fn, "fn")
  if (!is.null(gr)) fit_check_function(gr, "gr")
  check_number(seed, "seed", whole = TRUE, null_ok = TRUE)
  for (i in seq_along(configs)) {
    tryCatch(do.call(optimizer_rmsprop, configs[[i]]), rmsprop_error = function(e) {
      rmsprop_abort("argument", sprintf("`grid` configuration %d (%s) is not valid: %s", i,
                                        labels$text[i], conditionMessage(e)),
                    argument = "grid", config = i)
    })
  }
  if (is.null(seed)) seed <- sample.int(.Machine$integer.max, 1L)
  engine <- if (is.null(engine)) NULL else as_engine(engine)
  payload <- serialize(list(par = par, fn = fn, gr = gr, dots = list(...), steps = steps,
                            tol = tol, data = data, batch_size = batch_size,
                            epochs = epochs, shuffle = shuffle), NULL)
  jobs <- lapply(configs, function(cfg) list(config = serialize(cfg, NULL), seed = seed))
  wenv <- worker_env()
  lib <- driver_lib()
  results <- if (is.null(engine) || engine$type == "sequential") {
    f <- get("worker_sweep", envir = wenv)
    lapply(jobs, function(j) f(j, payload, lib))
  } else {
    if (engine$type == "cluster") {
      # Load the package on every worker before anything refers to it.
      loaded <- tryCatch(
        parallel::clusterCall(engine$cluster, get("worker_load", envir = wenv), lib),
        error = function(e) rmsprop_abort("worker", sprintf(
          "loading rmsprop on the cluster failed: %s", conditionMessage(e))))
      if (!all(unlist(loaded))) {
        rmsprop_abort("worker", "the rmsprop package cannot be loaded on every worker of the cluster; install it there.")
      }
    }
    engine_run(engine, jobs, "worker_sweep", list(payload = payload, lib = lib), wenv)
  }
  for (i in seq_along(results)) {
    if (!isTRUE(results[[i]]$ok)) {
      rmsprop_abort("worker", sprintf("configuration %d (%s) failed on its worker: %s", i,
                                      labels$text[i], results[[i]]$message),
                    config = i, worker_message = results[[i]]$message)
    }
  }
  cols <- labels$columns
  clash <- names(cols) %in% c("config", "step", "epoch", "loss", "learning_rate", "grad_norm",
                              "value", "convergence", "steps", "message")
  names(cols)[clash] <- paste0(names(cols)[clash], "_config")
  histories <- lapply(seq_along(results), function(i) {
    h <- results[[i]]$history
    front <- cols[rep(i, nrow(h)), , drop = FALSE]
    cbind(data.frame(config = rep(i, nrow(h))), front, h, row.names = NULL)
  })
  out <- do.call(rbind, histories)
  rownames(out) <- NULL
  final <- cbind(data.frame(config = seq_along(results)), cols,
                 data.frame(value = vapply(results, `[[`, numeric(1), "value"),
                            convergence = vapply(results, `[[`, integer(1), "convergence"),
                            steps = vapply(results, `[[`, integer(1), "steps"),
                            message = vapply(results, `[[`, character(1), "message")),
                 row.names = NULL)
  structure(out, class = c("rmsprop_sweep", "data.frame"), final = final,
            par = lapply(results, `[[`, "par"), labels = labels$text)
}

# A list of argument lists from a data frame or a list of lists; NA drops an
# argument.
sweep_configs <- function(grid) {
  if (is.data.frame(grid)) {
    if (nrow(grid) == 0L || ncol(grid) == 0L || is.null(names(grid))) {
      rmsprop_abort("argument", "`grid` must have at least one row and named columns.",
                    argument = "grid")
    }
    configs <- lapply(seq_len(nrow(grid)), function(i) {
      lapply(grid, function(col) if (is.list(col)) col[[i]] else col[i])
    })
  } else if (is.list(grid) && length(grid) > 0L &&
             all(vapply(grid, function(g) is.list(g) && (length(g) == 0L || !is.null(names(g))),
                        logical(1)))) {
    configs <- grid
  } else {
    rmsprop_abort("argument", sprintf(
      "`grid` must be a data frame or a list of named lists of optimizer_rmsprop() arguments, not %s.",
      describe_value(grid)), argument = "grid")
  }
  lapply(configs, function(cfg) {
    drop <- vapply(cfg, function(v) is.atomic(v) && length(v) == 1L && is.na(v), logical(1))
    cfg[!drop]
  })
}

sweep_value_label <- function(v) {
  if (is.null(v)) return("default")
  if (is.function(v)) {
    lab <- tryCatch(format(v)[1L], error = function(e) "a function")
    if (!is.character(lab) || length(lab) == 0L || is.na(lab) || grepl("^function", lab)) {
      lab <- "a function"
    }
    return(sub("^<([^>]*)>.*$", "\\1", lab))
  }
  if (is.atomic(v) && length(v) == 1L) return(format(v))
  describe_value(v)
}

# The grid as plain columns (list columns become character labels) and one
# text label per configuration.
sweep_labels <- function(grid, configs) {
  names_all <- unique(unlist(lapply(configs, names)))
  if (is.data.frame(grid)) names_all <- names(grid)
  cols <- lapply(names_all, function(nm) {
    vals <- lapply(configs, function(cfg) cfg[[nm]])
    simple <- all(vapply(vals, function(v) is.atomic(v) && length(v) == 1L, logical(1)))
    if (simple) unlist(vals) else vapply(vals, sweep_value_label, character(1))
  })
  names(cols) <- names_all
  if (is.data.frame(grid)) {
    # keep the grid's own values, NA included
    for (nm in names_all) if (!is.list(grid[[nm]])) cols[[nm]] <- grid[[nm]]
  }
  columns <- as.data.frame(cols, stringsAsFactors = FALSE, optional = TRUE)
  text <- vapply(configs, function(cfg) {
    if (length(cfg) == 0L) return("defaults")
    paste(paste0(names(cfg), " = ", vapply(cfg, sweep_value_label, character(1))),
          collapse = ", ")
  }, character(1))
  list(columns = columns, text = text)
}

#' @rdname sweep_optimizers
#' @param x A result of `sweep_optimizers()`.
#' @export
format.rmsprop_sweep <- function(x, ...) {
  final <- attr(x, "final")
  if (is.null(final)) return(utils::capture.output(print(as.data.frame(x))))
  c(sprintf("<rmsprop_sweep> %d configurations, %d rows of history", nrow(final), nrow(x)),
    utils::capture.output(print(final[setdiff(names(final), "message")], row.names = FALSE)))
}

#' @rdname sweep_optimizers
#' @export
print.rmsprop_sweep <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}

#' @rdname sweep_optimizers
#' @param row.names,optional Ignored.
#' @export
as.data.frame.rmsprop_sweep <- function(x, row.names = NULL, optional = FALSE, ...) {
  attr(x, "final") <- NULL
  attr(x, "par") <- NULL
  attr(x, "labels") <- NULL
  class(x) <- "data.frame"
  x
}

#' @rdname sweep_optimizers
#' @param log_loss `TRUE` draws the loss on a log axis (when every loss is
#'   positive).
#' @param legend `TRUE` adds a legend naming the configurations.
#' @param main A title.
#' @export
plot.rmsprop_sweep <- function(x, log_loss = TRUE, legend = TRUE,
                               main = "Loss per configuration", ...) {
  d <- as.data.frame(x)
  ids <- unique(d$config)
  cols <- grDevices::hcl.colors(max(length(ids), 2L), "Dark 3")[seq_along(ids)]
  log_axis <- if (log_loss && all(is.finite(d$loss)) && all(d$loss > 0)) "y" else ""
  graphics::plot(range(d$step), range(d$loss[is.finite(d$loss)]), type = "n", log = log_axis,
                 xlab = "step", ylab = if (nzchar(log_axis)) "loss (log scale)" else "loss",
                 main = main, ...)
  for (k in seq_along(ids)) {
    s <- d[d$config == ids[k], ]
    graphics::lines(s$step, s$loss, col = cols[k], lwd = 1.5)
  }
  if (legend) {
    labels <- attr(x, "labels")
    text <- if (!is.null(labels)) paste0(ids, ": ", labels[ids]) else paste("config", ids)
    graphics::legend("topright", legend = text, col = cols, lwd = 1.5, bty = "n",
                     cex = 0.8)
  }
  invisible(x)
}
