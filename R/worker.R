# Code that runs on workers (cluster nodes, mirai daemons, futures, or this
# process for the "sequential" engine).
#
# May use: base R only, and the functions listed in worker_functions (copied
# into an environment whose parent is the base environment, so they
# serialize without the package namespace). The package itself is loaded on
# a worker only when it can be found (worker_load()) and only when a run
# needs it (a gradient source bound in the package, or a sweep); nothing
# else here may assume it.
# Must never: touch optimizer state (only parameters, gradients, the user's
# functions and data travel), use the RNG, or leave anything behind after a
# run's cleanup (its state lives in one environment kept in the worker's
# options, never in the global environment).

worker_functions <- c("fit_call", "fit_check_loss", "relist_flat", "numerical_partials",
                      "numerical_gradient", "source_bind", "bind_loss",
                      "bind_function_gradient", "bind_numerical_gradient",
                      "rmsprop_abort", "describe_value", "worker_load", "worker_task",
                      "worker_state", "worker_setup", "worker_cleanup", "worker_batch",
                      "worker_future_task", "worker_sweep", "worker_run_state",
                      "worker_set_order", "worker_step", "worker_keyed_step",
                      "worker_keyed_order")

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
  tryCatch({
    loadNamespace("rmsprop", lib.loc = c(lib, .libPaths()))
    TRUE
  }, error = function(e) FALSE)
}

# Unpack the run (serialized on the driver, or as is in this process) and
# bind its gradient source once: state$bound$loss and state$bound$gradient.
worker_state <- function(payload, lib) {
  state <- if (is.raw(payload)) unserialize(payload) else payload
  source <- state$source
  if (!is.null(source$namespace) && !worker_load(lib)) {
    stop(sprintf("%s needs the %s package on the worker, which cannot be loaded there; install it",
                 source$label, source$namespace))
  }
  state$has_data <- !is.null(state$data)
  state$bound <- source_bind(source, state$fn, state$dots, state$has_data)
  state$cache <- new.env(parent = emptyenv())
  state
}

# One task: the loss (and gradient) of a shard, or some numerical partials.
worker_task <- function(state, task, par) {
  tryCatch({
    if (identical(task$type, "shard")) {
      batch <- if (is.null(task$batch)) worker_batch(state, task) else task$batch
      loss <- fit_check_loss(state$bound$loss(par, batch))
      grad <- if (task$need_grad) state$bound$gradient(par, batch)
      list(ok = TRUE, loss = loss, grad = grad)
    } else {
      loss <- state$bound$loss
      list(ok = TRUE, partials = numerical_partials(function(p) loss(p, NULL), par, task$idx))
    }
  }, error = function(e) list(ok = FALSE, message = conditionMessage(e)))
}

# The rows of a task from the data the worker holds. A shuffled shard is
# described by its positions `pos` in the epoch's row order, which the worker
# received once for the epoch (worker_set_order()); a contiguous range of rows
# by its two ends, and the ranges of the last step are kept, so a full-batch
# run without shuffling cuts its shards once, not at every step; anything
# else by its rows.
worker_batch <- function(state, task) {
  cache <- state$cache
  if (!is.null(task$pos)) {
    if (!identical(cache$order_id, task$order_id)) {
      stop("the worker does not hold the row order of this epoch")
    }
    return(state$data[cache$order[seq.int(task$pos[1L], task$pos[2L])], , drop = FALSE])
  }
  if (is.null(task$range)) return(state$data[task$rows, , drop = FALSE])
  key <- paste(task$range, collapse = ":")
  kept <- cache$ranges[[key]]
  if (!is.null(kept)) return(kept)
  rows <- seq.int(task$range[1L], task$range[2L])
  batch <- if (length(rows) == NROW(state$data)) state$data else state$data[rows, , drop = FALSE]
  if (is.null(cache$ranges)) cache$ranges <- list()
  cache$ranges[[key]] <- batch
  batch
}

# Keep the epoch's row order (sent once per epoch, then only positions in it).
worker_set_order <- function(state, order_id, order) {
  state$cache$order <- order
  state$cache$order_id <- order_id
  invisible(TRUE)
}

# One message of a step for this worker: the epoch's row order when it is new
# to the worker, the parameters, and the worker's tasks. Returns the list of
# task results, in task order.
worker_step <- function(state, msg) {
  if (!is.null(state$failed)) {
    return(lapply(msg$tasks, function(t) list(ok = FALSE, message = state$failed)))
  }
  if (!is.null(msg$order)) worker_set_order(state, msg$order_id, msg$order)
  out <- lapply(msg$tasks, function(t) worker_task(state, t, msg$par))
  # Keep the ranges of rows this step used (a worker may hold several shards
  # of a full batch), and only those.
  cache <- state$cache
  if (length(cache$ranges)) {
    used <- unlist(lapply(msg$tasks, function(t) {
      if (!is.null(t$range)) paste(t$range, collapse = ":")
    }))
    cache$ranges <- cache$ranges[intersect(names(cache$ranges), used)]
  }
  out
}

# Workers that serve several steps of a run (cluster nodes, mirai daemons)
# keep its state between calls under the run's key, in an environment held
# in the worker process's options: it persists across calls (the worker code
# itself is shipped anew with every call) without touching the worker's
# global environment.
worker_setup <- function(key, payload, lib) {
  store <- getOption("rmsprop.worker_runs")
  if (!is.environment(store)) {
    store <- new.env(parent = emptyenv())
    options(rmsprop.worker_runs = store)
  }
  state <- tryCatch(worker_state(payload, lib), error = function(e) {
    list(failed = paste("setting up the worker failed:", conditionMessage(e)))
  })
  # The per-step code stays on the worker, so each step sends only a tiny
  # call (worker_keyed_step() as sent by the engines), not this code again.
  state$step <- worker_step
  state$set_order <- worker_set_order
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

# The state of a run on this worker (see worker_setup()); it has a `failed`
# message when there is none or setting it up failed.
worker_run_state <- function(key) {
  store <- getOption("rmsprop.worker_runs")
  state <- if (is.environment(store)) get0(key, envir = store, inherits = FALSE)
  if (!is.list(state)) return(list(failed = "the worker has no state for this run"))
  state
}

# The tiny calls each step sends (as base_call(), without byte code): they
# use only what worker_setup() left on the worker, so a step's message is
# the parameters and the tasks, a few hundred bytes.
worker_keyed_step <- function(msg, key) {
  store <- getOption("rmsprop.worker_runs")
  state <- if (is.environment(store)) get0(key, envir = store, inherits = FALSE)
  if (is.list(state) && is.function(state$step)) return(state$step(state, msg))
  lapply(msg$tasks, function(t) list(ok = FALSE, message = "the worker has no state for this run"))
}

worker_keyed_order <- function(key, order_id, order) {
  store <- getOption("rmsprop.worker_runs")
  state <- if (is.environment(store)) get0(key, envir = store, inherits = FALSE)
  if (is.list(state) && is.function(state$set_order)) state$set_order(state, order_id, order)
  TRUE
}

# A future's task: the run unpacked and bound for this one task.
worker_future_task <- function(task, payload, lib, par) {
  state <- tryCatch(worker_state(payload, lib), error = function(e) e)
  if (inherits(state, "error")) {
    return(list(ok = FALSE, message = paste("setting up the worker failed:",
                                            conditionMessage(state))))
  }
  worker_task(state, task, par)
}

# One configuration of a sweep: needs the package on the worker. `rng` is
# the driver's RNGkind(): a worker may use another generator (mirai daemons
# use L'Ecuyer-CMRG), and the shuffling must be the driver's.
worker_sweep <- function(job, payload, lib, rng = NULL) {
  if (!is.null(rng)) {
    old_rng <- RNGkind()
    on.exit(do.call(RNGkind, as.list(old_rng)), add = TRUE)
    do.call(RNGkind, as.list(rng))
  }
  tryCatch({
    if (!worker_load(lib)) stop("the rmsprop package cannot be loaded on this worker")
    p <- unserialize(payload)
    cfg <- unserialize(job$config)
    ns <- asNamespace("rmsprop")
    opt <- do.call(get("optimizer_rmsprop", envir = ns), cfg)
    if (!is.null(job$seed)) set.seed(job$seed)
    args <- c(p$args, list(optimizer = opt))
    fit <- do.call(get("minimize", envir = ns), args)
    list(ok = TRUE, history = fit$history, value = fit$value, convergence = fit$convergence,
         message = fit$message, steps = fit$steps, par = fit$par)
  }, error = function(e) list(ok = FALSE, message = conditionMessage(e)))
}
