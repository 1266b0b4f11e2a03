# The driver side of data-parallel gradients for minimize(): sending the
# user's functions and data to an engine once per run, cutting each batch into
# shards, running the shard tasks, and combining the losses and gradients in
# shard order (so every backend gives the same numbers). On PSOCK clusters it
# talks to the workers over their sockets directly while a run lasts (see
# cluster_session_open()), in the message format of parallel's own calls.
# Must never: send optimizer state to a worker, depend on the order in which
# workers answer, send anything of the size of a batch at every step, or
# leave anything behind on a cluster after the run (the workers back in
# parallel's own loop, their run state removed).


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
# (Sweeps use it; the steps of minimize() go through engine_evaluator().)
engine_run <- function(engine, tasks, fun_name, shared, wenv) {
  fun <- get(fun_name, envir = wenv)
  switch(engine$type,
    sequential = lapply(tasks, fun_with_args(fun, shared)),
    cluster = tryCatch(
      parallel::clusterApply(engine$cluster, tasks, fun_with_args(fun, shared)),
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

# One step's message to a cluster worker, through the code worker_setup() left
# there, when the direct transport (cluster_session_open()) is not available.
# Kept tiny and sent without its byte code (base_call()), since every step
# sends it: parallel writes a message above 4 KB in pieces, and then it waits
# for TCP's delayed acknowledgement (about 40 ms).
cluster_step <- function(msg, key) {
  state <- get0(key, getOption("rmsprop.worker_runs", emptyenv()), inherits = FALSE)
  if (is.list(state)) return(state$step(state, msg))
  lapply(msg$tasks, function(t) list(ok = FALSE, message = "the worker has no state for this run"))
}

# A function of base R only, as sent to a worker in a cluster call: without
# its byte code (which would triple its size) and without the package.
base_call <- function(f) {
  g <- f
  body(g) <- body(f)
  environment(g) <- baseenv()
  g
}

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

# The same pieces as split_even(seq_len(len), n), as a matrix of first and
# last positions (one row per piece).
shard_bounds <- function(len, n) {
  n <- max(1L, min(n, len))
  ends <- round(seq(0, len, length.out = n + 1L))
  cbind(from = ends[-(n + 1L)] + 1, to = ends[-1L])
}

# Is r a run of consecutive row numbers?
is_run <- function(r) {
  r[length(r)] - r[1L] + 1L == length(r) && !is.unsorted(r, strictly = TRUE)
}

# The weighted sum of gradient structures, in shard order, element by
# element; put back into the first shard's structure (structure.R), where
# NULL leaves stay NULL. Shards whose gradients have another length than the
# first's are a worker's error.
combine_gradients <- function(grads, weights) {
  flat <- lapply(grads, function(g) as.double(unlist(g, use.names = FALSE)))
  n <- length(flat[[1L]])
  if (any(lengths(flat) != n)) {
    rmsprop_abort("worker", sprintf(
      "the shards' gradients differ in length (%s numbers): `gr` must return the structure of `par`.",
      paste(lengths(flat), collapse = ", ")))
  }
  acc <- weights[1L] * flat[[1L]]
  for (k in seq_along(flat)[-1L]) acc <- acc + weights[k] * flat[[k]]
  relist_flat(acc, grads[[1L]])
}

raise_worker_error <- function(res, what) {
  rmsprop_abort("worker", sprintf("%s failed on its worker: %s", what, res$message),
                worker_message = res$message)
}

# The direct transport to PSOCK workers: while a run lasts, each worker sits
# in worker_serve() and the driver writes each step's message to the node's
# socket in one write and reads the reply, so no message waits for TCP's
# delayed acknowledgement (see worker_serve()). The messages outside a run
# (setup, cleanup) are ordinary cluster calls. NULL when the cluster has
# other nodes than PSOCK ones (then steps go through parallel::clusterApply()),
# or when options(rmsprop.cluster_direct = FALSE).
cluster_session_open <- function(cl, key, wenv) {
  is_sock <- vapply(cl, function(node) {
    inherits(node, c("SOCKnode", "SOCK0node")) && inherits(node$con, "connection")
  }, logical(1))
  if (!all(is_sock) || isFALSE(getOption("rmsprop.cluster_direct", TRUE))) return(NULL)
  s <- new.env(parent = emptyenv())
  s$cons <- lapply(cl, `[[`, "con")
  s$xdr <- !vapply(cl, inherits, logical(1), "SOCK0node")
  s$pending <- integer(length(cl))
  s$open <- logical(length(cl))
  s$sent <- integer(length(cl))
  serve <- get("worker_serve", envir = wenv)
  for (i in seq_along(cl)) {
    # The call message parallel's sendCall() writes, in one write.
    session_write(s, i, list(type = "EXEC", tag = NULL,
                             data = list(fun = serve,
                                         args = list(key, s$xdr[i], .Platform$endian),
                                         return = TRUE, tag = NULL)))
    s$open[i] <- TRUE
  }
  tryCatch(for (i in seq_along(cl)) {
    m <- unserialize(s$cons[[i]])
    if (!identical(m$type, "rmsprop_ready")) s$open[i] <- FALSE # serve returned at once
    # both ends then use R's native format (see worker_serve())
    if (identical(m$endian, .Platform$endian)) s$xdr[i] <- FALSE
  }, error = function(e) {
    cluster_session_close(s)
    stop(e)
  })
  if (!all(s$open)) {
    cluster_session_close(s)
    return(NULL)
  }
  s
}

session_write <- function(s, i, msg) {
  raw <- serialize(msg, NULL, xdr = s$xdr[i])
  s$sent[i] <- length(raw)
  writeBin(raw, s$cons[[i]])
  invisible()
}

# Send the run's functions and data (serialized once) to every node: a small
# message, then the bytes themselves (not copied into a message).
cluster_session_setup <- function(s, payload, lib) {
  for (i in seq_along(s$cons)) {
    s$pending[i] <- s$pending[i] + 1L
    session_write(s, i, list(type = "rmsprop", op = "setup", lib = lib,
                             bytes = length(payload)))
    writeBin(payload, s$cons[[i]])
  }
  for (i in seq_along(s$cons)) {
    m <- unserialize(s$cons[[i]])
    s$pending[i] <- s$pending[i] - 1L
    if (!identical(m$type, "rmsprop")) {
      s$open[i] <- FALSE
      stop("a worker stopped serving this run")
    }
  }
  invisible()
}

# Read and drop the replies to messages sent before an interrupt.
session_drain <- function(s) {
  for (i in which(s$pending > 0L & s$open)) {
    while (s$pending[i] > 0L) {
      m <- unserialize(s$cons[[i]])
      s$pending[i] <- s$pending[i] - 1L
      if (!identical(m$type, "rmsprop")) {
        s$open[i] <- FALSE
        s$pending[i] <- 0L
      }
    }
  }
}

# Send msgs[[i]] to node i (NULL: nothing for that node) and return the
# replies' results.
cluster_session_exchange <- function(s, msgs) {
  session_drain(s)
  used <- which(!vapply(msgs, is.null, logical(1)))
  if (!all(s$open[used])) stop("a worker stopped serving this run")
  s$sent[] <- 0L
  for (i in used) {
    s$pending[i] <- s$pending[i] + 1L
    session_write(s, i, msgs[[i]])
  }
  out <- vector("list", length(msgs))
  for (i in used) {
    m <- unserialize(s$cons[[i]])
    s$pending[i] <- s$pending[i] - 1L
    if (!identical(m$type, "rmsprop")) {
      # worker_serve() ended (an error outside the user's functions): parallel
      # answered its call.
      s$open[i] <- FALSE
      stop(if (identical(m$type, "VALUE") && is.character(m$value)) m$value[1L] else
        "unexpected reply")
    }
    out[[i]] <- m$results
  }
  out
}

# End the serving calls: "done" to every node still serving (the worker then
# removes the run's state), then parallel's own reply to the call. Returns,
# by node, whether that went through. Never fails (it runs on exit).
cluster_session_close <- function(s) {
  done <- logical(length(s$cons))
  tryCatch(session_drain(s), error = function(e) s$open[] <- FALSE)
  for (i in which(s$open)) {
    tryCatch(session_write(s, i, list(type = "rmsprop", op = "done")),
             error = function(e) s$open[i] <- FALSE)
  }
  for (i in which(s$open)) {
    tryCatch(repeat {
      m <- unserialize(s$cons[[i]])
      if (identical(m$type, "VALUE")) {
        done[i] <- isTRUE(m$value)
        break
      }
    }, error = function(e) NULL)
    s$open[i] <- FALSE
  }
  done
}

# The evaluator of minimize() for an engine:
# function(par, rows, need_grad = TRUE, order = NULL, span = NULL).
# With mini-batches minimize() passes the epoch's row order (the same object
# for the whole epoch) and the batch's span of positions in it (rows is
# order[span[1]:span[2]]): cluster workers get the order once per epoch and
# then only positions, so a step's message holds the parameters and a few
# numbers, whatever the batch size. `rows` alone (order NULL) works too.
# attr(, "traffic") records the bytes of the last step's messages to each
# cluster worker (tests and benchmarks read it).
engine_evaluator <- function(engine, fn, source, dots, data) {
  engine <- as_engine(engine)
  has_data <- !is.null(data)
  gr <- source$gr
  n_shards <- engine_shards(engine)
  type <- engine$type
  wenv <- worker_env()
  lib <- driver_lib()
  key <- run_key()
  traffic <- new.env(parent = emptyenv())
  traffic$sent <- integer(0)
  traffic$direct <- FALSE
  # A cluster gets the data once (then only the parameters and positions
  # travel per step); a future gets its shard's rows with every task.
  payload <- if (type == "future") serialize(list(fn = fn, gr = gr, dots = dots), NULL)
  cleanup <- function() invisible()
  session <- NULL
  if (type == "cluster") {
    cl <- engine$cluster
    clean_call <- base_call(worker_cleanup)
    cleanup <- function() {
      done <- logical(length(cl))
      if (!is.null(session)) done <- cluster_session_close(session)
      if (!all(done)) try(parallel::clusterCall(cl[!done], clean_call, key), silent = TRUE)
      invisible()
    }
    session <- tryCatch(cluster_session_open(cl, key, wenv), error = function(e) {
      cleanup()
      rmsprop_abort("worker", sprintf("the cluster failed: %s", conditionMessage(e)))
    })
    tryCatch({
      # The data once per run; in R's native format over the direct
      # transport when the workers share the driver's byte order.
      xdr <- is.null(session) || any(session$xdr)
      payload <- serialize(list(fn = fn, gr = gr, dots = dots, data = data), NULL, xdr = xdr)
      if (is.null(session)) {
        parallel::clusterCall(cl, get("worker_setup", envir = wenv), key, payload, lib)
      } else {
        cluster_session_setup(session, payload, lib)
      }
      payload <- NULL
    }, error = function(e) {
      cleanup()
      rmsprop_abort("worker", sprintf(
        "sending the functions and data to the cluster failed: %s", conditionMessage(e)))
    })
    traffic$direct <- !is.null(session)
    node_order <- integer(length(cl))  # the id of the row order each node holds
    step_call <- base_call(cluster_step)
  }
  state <- NULL
  if (type == "sequential") {
    # In this process: the same worker code on the unpacked state.
    state <- list(fn = fn, gr = gr, dots = dots, data = data,
                  cache = new.env(parent = emptyenv()))
  }
  order_now <- NULL
  order_id <- 0L
  order_run <- FALSE

  # The results of the tasks, in task order.
  run_tasks <- function(tasks, par) {
    if (type == "sequential") {
      msg <- list(par = par, tasks = tasks)
      if (!identical(state$cache$order_id, order_id)) {
        msg$order <- order_now
        msg$order_id <- order_id
      }
      return(worker_step(state, msg))
    }
    if (type == "future") {
      return(engine_run(engine, tasks, "worker_future_task",
                        list(payload = payload, lib = lib, par = par), wenv))
    }
    # A cluster: task k goes to node k (modulo the cluster's size), one
    # message per node with all its tasks.
    n_nodes <- length(cl)
    node_of <- (seq_along(tasks) - 1L) %% n_nodes + 1L
    needs_order <- vapply(tasks, function(t) !is.null(t$pos), logical(1))
    msgs <- lapply(seq_len(n_nodes), function(i) {
      mine <- which(node_of == i)
      if (!length(mine)) return(NULL)
      msg <- list(type = "rmsprop", op = "step", par = par, tasks = tasks[mine])
      if (any(needs_order[mine]) && node_order[i] != order_id) {
        msg$order <- order_now
        msg$order_id <- order_id
      }
      msg
    })
    used <- which(!vapply(msgs, is.null, logical(1)))
    replies <- tryCatch(
      if (!is.null(session)) {
        cluster_session_exchange(session, msgs)
      } else {
        out <- vector("list", n_nodes)
        out[used] <- parallel::clusterApply(cl[used], msgs[used], step_call, key)
        session_sent <- vapply(msgs, function(m) if (is.null(m)) 0L else
          length(serialize(m, NULL)), integer(1))
        traffic$sent <- session_sent
        out
      },
      error = function(e) {
        rmsprop_abort("worker", sprintf("the cluster failed: %s", conditionMessage(e)))
      })
    if (!is.null(session)) traffic$sent <- session$sent
    for (i in used) if (!is.null(msgs[[i]]$order_id)) node_order[i] <<- msgs[[i]]$order_id
    res <- vector("list", length(tasks))
    for (i in used) res[which(node_of == i)] <- replies[[i]]
    res
  }

  evaluate <- function(par, rows, need_grad = TRUE, order = NULL, span = NULL) {
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
      return(list(loss = loss, grad = relist_flat(g, par), n_fn = 1, n_gr = 1))
    }
    # Each shard is described by a range of rows when the batch is a run of
    # consecutive rows (a full batch or batches in order: the worker keeps
    # the cut), by positions in the epoch's order when shuffled, or by its
    # rows. Nothing of the size of the batch is built here, so the workers
    # wait for nothing but the message.
    by_order <- !is.null(order) && !is.null(span)
    if (by_order) {
      if (!identical(order, order_now)) {  # the same object: no comparison
        order_now <<- order
        order_id <<- order_id + 1L
        order_run <<- is_run(order)
      }
      n_rows <- span[2L] - span[1L] + 1L
      first_row <- if (order_run) order[span[1L]] else NA
    } else {
      n_rows <- length(rows)
      first_row <- if (is_run(rows)) rows[1L] else NA
    }
    bounds <- shard_bounds(n_rows, n_shards)
    n_tasks <- nrow(bounds)
    sizes <- bounds[, 2L] - bounds[, 1L] + 1
    firsts <- numeric(n_tasks)
    tasks <- vector("list", n_tasks)
    for (k in seq_len(n_tasks)) {
      t <- list(type = "shard", need_grad = need_grad)
      at <- bounds[k, ]
      if (by_order) at <- as.integer(span[1L] - 1L + at)
      if (!is.na(first_row)) {
        t$range <- as.integer(first_row - 1L + c(bounds[k, 1L], bounds[k, 2L]))
        firsts[k] <- t$range[1L]
      } else if (by_order) {
        t$pos <- at
        t$order_id <- order_id
        firsts[k] <- order[at[1L]]
      } else {
        t$rows <- rows[at[1L]:at[2L]]
        firsts[k] <- t$rows[1L]
      }
      if (type == "future") {
        # A future gets its shard's rows.
        r <- if (!is.null(t$range)) seq.int(t$range[1L], t$range[2L]) else
          if (by_order) order[at[1L]:at[2L]] else t$rows
        t <- list(type = "shard", need_grad = need_grad, batch = data[r, , drop = FALSE])
      }
      tasks[[k]] <- t
    }
    res <- run_tasks(tasks, par)
    for (k in seq_along(res)) {
      if (!isTRUE(res[[k]]$ok)) {
        raise_worker_error(res[[k]], sprintf(
          "shard %d of %d (%d rows, first row %d of the data)", k, n_tasks,
          as.integer(sizes[k]), as.integer(firsts[k])))
      }
    }
    weights <- sizes / n_rows
    loss <- 0
    for (k in seq_along(res)) loss <- loss + weights[k] * res[[k]]$loss
    grad <- if (need_grad) combine_gradients(lapply(res, `[[`, "grad"), weights)
    # Counted as one evaluation of fn (and gr) on the batch, as in one process.
    list(loss = loss, grad = grad, n_fn = 1, n_gr = if (need_grad) 1 else 0)
  }
  attr(evaluate, "cleanup") <- cleanup
  attr(evaluate, "traffic") <- traffic
  evaluate
}
