# Code that runs on workers (cluster nodes, futures, or this process for the
# "sequential" engine).
#
# May use: base R only, and the functions listed in worker_functions (copied
# into an environment whose parent is the base environment, so they serialize
# without the package namespace). The package itself is loaded on a worker
# only when it can be found (worker_load()); nothing here may assume it.
# Must never: touch optimizer state (only parameters, gradients, the user's
# functions and data travel), or use the RNG. Only worker_serve() reads and
# writes the worker's connection to the driver itself, and only between its
# "ready" and the driver's "done".

worker_functions <- c("fit_call", "fit_check_loss", "relist_flat", "numerical_partials",
                      "worker_batch",
                      "rmsprop_abort", "describe_value", "worker_load", "worker_task",
                      "worker_state", "worker_setup", "worker_cleanup",
                      "worker_future_task", "worker_sweep", "worker_run_state",
                      "worker_set_order", "worker_step", "worker_serve", "worker_master")

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
          relist_flat(numerical_partials(f, par, seq_along(unlist(par, use.names = FALSE))), par)
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

# The rows of a task from the data the worker holds. A shuffled shard is
# described by its positions `pos` in the epoch's row order, which the worker
# received once for the epoch (worker_set_order()); a contiguous range of rows
# by its two ends, and the ranges of the last step are kept, so a full-batch
# run without shuffling cuts its shards once, not at every step; anything
# else by its rows.
worker_batch <- function(state, task) {
  cache <- state$cache
  if (!is.null(task$pos)) {
    if (is.null(cache) || !identical(cache$order_id, task$order_id)) {
      stop("the worker does not hold the row order of this epoch")
    }
    return(state$data[cache$order[seq.int(task$pos[1L], task$pos[2L])], , drop = FALSE])
  }
  if (is.null(task$range)) return(state$data[task$rows, , drop = FALSE])
  key <- paste(task$range, collapse = ":")
  kept <- if (!is.null(cache)) cache$ranges[[key]]
  if (!is.null(kept)) return(kept)
  rows <- seq.int(task$range[1L], task$range[2L])
  batch <- if (length(rows) == NROW(state$data)) state$data else state$data[rows, , drop = FALSE]
  if (!is.null(cache)) {
    if (is.null(cache$ranges)) cache$ranges <- list()
    cache$ranges[[key]] <- batch
  }
  batch
}

# Keep the epoch's row order (sent once per epoch, then only positions in it).
worker_set_order <- function(state, order_id, order) {
  if (is.list(state) && is.environment(state$cache)) {
    state$cache$order <- order
    state$cache$order_id <- order_id
  }
  invisible(TRUE)
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
  state <- tryCatch(worker_state(payload, lib), error = function(e) {
    list(failed = paste("setting up the worker failed:", conditionMessage(e)))
  })
  if (!is.list(state)) state <- list(failed = "setting up the worker failed: bad payload")
  state$cache <- new.env(parent = emptyenv())
  # The per-step code stays on the worker, so each step sends only a tiny
  # call (see cluster_step()), not this code again.
  state$step <- worker_step
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

# The state of a run on this cluster worker (see worker_setup()); it has a
# `failed` message when there is none or setting it up failed.
worker_run_state <- function(key) {
  store <- getOption("rmsprop.worker_runs")
  state <- if (is.environment(store)) get0(key, envir = store, inherits = FALSE)
  if (!is.list(state)) return(list(failed = "the worker has no state for this run"))
  state
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
  if (is.environment(cache) && length(cache$ranges)) {
    used <- unlist(lapply(msg$tasks, function(t) {
      if (!is.null(t$range)) paste(t$range, collapse = ":")
    }))
    cache$ranges <- cache$ranges[intersect(names(cache$ranges), used)]
  }
  out
}

# The connection to the driver of a PSOCK worker: the `master` node that
# parallel's worker loop (workCommand()) is serving this call from. NULL when
# this is not such a worker.
worker_master <- function() {
  for (frame in rev(sys.frames())) {
    m <- get0("master", envir = frame, inherits = FALSE)
    if (inherits(m, c("SOCKnode", "SOCK0node")) && inherits(m$con, "connection")) {
      return(m$con)
    }
  }
  NULL
}

# Serve the steps of a run over the worker's own socket, each message in one
# write. parallel writes a message larger than 4 KB in several writes, and on
# a request/reply socket Nagle's algorithm holds the last one until the other
# side's delayed acknowledgement (about 40 ms): a step then costs 40 ms
# whatever its work. Called as an ordinary cluster call; it answers with a
# "ready" message, then one reply per step message, until the driver sends
# "done"; the call then returns through parallel's loop as usual. Ordinary
# cluster calls that come meanwhile are answered as parallel would. Returns
# FALSE at once (no "ready") when the connection cannot be found.
worker_serve <- function(key, xdr, endian = NULL) {
  con <- worker_master()
  if (is.null(con)) return(FALSE)
  state <- worker_run_state(key)
  # R's native binary format when both ends have the same byte order: XDR
  # costs several milliseconds per megabyte on a socket.
  if (identical(endian, .Platform$endian)) xdr <- FALSE
  send <- function(x) writeBin(serialize(x, NULL, xdr = xdr), con)
  send(list(type = "rmsprop_ready", endian = .Platform$endian))
  repeat {
    msg <- unserialize(con)
    if (!is.list(msg)) stop("unexpected message from the driver while serving a run")
    if (identical(msg$type, "EXEC")) {
      # An ordinary cluster call between two steps (say, from a callback):
      # answered as parallel's worker loop would.
      success <- TRUE
      t1 <- proc.time()
      value <- tryCatch(do.call(msg$data$fun, msg$data$args, quote = TRUE), error = function(e) {
        success <<- FALSE
        structure(conditionMessage(e), class = c("snow-try-error", "try-error"))
      })
      send(list(type = "VALUE", value = value, success = success, time = proc.time() - t1,
                tag = msg$data$tag))
      next
    }
    if (identical(msg$type, "DONE")) {
      # The cluster is being stopped.
      close(con)
      return(FALSE)
    }
    if (!identical(msg$type, "rmsprop")) {
      stop("unexpected message from the driver while serving a run")
    }
    if (identical(msg$op, "done")) return(worker_cleanup(key))
    if (identical(msg$op, "setup")) {
      # the serialized functions and data follow as raw bytes
      payload <- readBin(con, "raw", msg$bytes)
      if (length(payload) != msg$bytes) stop("the run's data arrived incomplete")
      worker_setup(key, payload, msg$lib)
      payload <- msg <- NULL
      state <- worker_run_state(key)
      send(list(type = "rmsprop", results = list()))
      next
    }
    results <- tryCatch(worker_step(state, msg), error = function(e) {
      lapply(msg$tasks, function(t) list(ok = FALSE, message = conditionMessage(e)))
    })
    send(list(type = "rmsprop", results = results))
  }
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
    args <- c(p$args, list(optimizer = opt))
    fit <- do.call(get("minimize", envir = ns), args)
    list(ok = TRUE, history = fit$history, value = fit$value, convergence = fit$convergence,
         message = fit$message, steps = fit$steps, par = fit$par)
  }, error = function(e) list(ok = FALSE, message = conditionMessage(e)))
}

