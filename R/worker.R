# Code that runs on workers (cluster nodes, futures, or this process for the
# "sequential" engine).
#
# May use: base R only, and the functions listed in worker_functions (copied
# into an environment whose parent is the base environment, so they serialize
# without the package namespace). The package itself is loaded on a worker
# only when it can be found (worker_load()); nothing here may assume it.
# Must never: touch optimizer state (only parameters, gradients, the user's
# functions and data travel), or use the RNG.

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

