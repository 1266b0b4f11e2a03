# The driver side of data-parallel gradients for minimize(), the same for
# every backend: it opens a run on the engine (the functions and data sent
# once), cuts each batch into shards (or the coordinates of a numerical
# gradient into blocks), has the engine run the tasks (engine_run_tasks()),
# and combines the losses and gradients in task order, so that every backend
# gives the same numbers.
# Must never: know which backend it talks to (only the generics of
# engine.R), send optimizer state to a worker, depend on the order in which
# workers answer, or describe a shuffled shard by more than its place in the
# epoch's order (the order itself goes to each worker once per epoch).

# The evaluator of minimize() for an engine:
# function(par, rows, need_grad = TRUE, order = NULL, span = NULL).
# With mini-batches minimize() passes the epoch's row order (the same object
# for the whole epoch) and the batch's span of positions in it (rows is
# order[span[1]:span[2]]): workers get the order once per epoch and then
# only positions, so a step's message holds the parameters and a few
# numbers, whatever the batch size. `rows` alone (order NULL) works too.
# `source` is a gradient source (gradient_source(); a `gr` as minimize()
# takes it is turned into one). attr(, "cleanup") ends the run on the
# workers; attr(, "session") is the backend's session (tests read it).
engine_evaluator <- function(engine, fn, source, dots, data) {
  engine <- as_engine(engine)
  if (!inherits(source, "rmsprop_gradient_source")) source <- gradient_source(source)
  has_data <- !is.null(data)
  if (!has_data && !isTRUE(source$split_coordinates)) {
    return(source_local_evaluator(fn, source, dots))
  }
  n_shards <- engine_shards(engine)
  session <- engine_open(engine, run_job(fn, source, dots, data))
  closed <- FALSE
  cleanup <- function() {
    if (!closed) engine_close(session)
    closed <<- TRUE
    invisible()
  }
  evaluate <- if (has_data) shard_evaluator(session, n_shards, NROW(data)) else
    partials_evaluator(session, n_shards, fn, dots)
  attr(evaluate, "cleanup") <- cleanup
  attr(evaluate, "session") <- session
  evaluate
}

# Without data and with a gradient that cannot be split: nothing for the
# engine to do; the source bound in this process.
source_local_evaluator <- function(fn, source, dots) {
  bound <- source_bind(source, fn, dots, FALSE)
  function(par, rows, need_grad = TRUE, order = NULL, span = NULL) {
    loss <- fit_check_loss(bound$loss(par, NULL))
    if (!need_grad) return(list(loss = loss, grad = NULL, n_fn = 1, n_gr = 0))
    list(loss = loss, grad = bound$gradient(par, NULL), n_fn = 1, n_gr = 1)
  }
}

# The numerical gradient without data: the loss here, the coordinates split
# across the workers in blocks (each partial derivative is computed the same
# way wherever it runs).
partials_evaluator <- function(session, n_shards, fn, dots) {
  function(par, rows, need_grad = TRUE, order = NULL, span = NULL) {
    loss <- fit_check_loss(fit_call(fn, par, NULL, dots, FALSE))
    if (!need_grad) return(list(loss = loss, grad = NULL, n_fn = 1, n_gr = 0))
    n_par <- length(unlist(par, use.names = FALSE))
    blocks <- split_even(seq_len(n_par), n_shards)
    tasks <- lapply(blocks, function(idx) list(type = "partials", idx = idx))
    res <- engine_run_tasks(session, tasks, par, NULL)
    for (k in seq_along(res)) {
      if (!isTRUE(res[[k]]$ok)) {
        raise_worker_error(res[[k]], sprintf(
          "the numerical gradient for coordinates %d-%d (block %d of %d)",
          min(blocks[[k]]), max(blocks[[k]]), k, length(blocks)))
      }
    }
    g <- unlist(lapply(res, `[[`, "partials"), use.names = FALSE)
    list(loss = loss, grad = relist_flat(g, par), n_fn = 1, n_gr = 1)
  }
}

# Data-parallel steps: shards of each batch, combined weighted by size.
shard_evaluator <- function(session, n_shards, n_obs) {
  epoch <- new.env(parent = emptyenv())
  epoch$order <- NULL   # the epoch's row order: list(id, rows), as engines get it
  epoch$is_run <- FALSE
  function(par, rows, need_grad = TRUE, order = NULL, span = NULL) {
    by_order <- !is.null(order) && !is.null(span)
    if (by_order && !identical(order, epoch$order$rows)) {  # the same object: no comparison
      epoch$order <- list(id = (if (is.null(epoch$order)) 0L else epoch$order$id) + 1L,
                          rows = order)
      epoch$is_run <- is_run(order)
    }
    tasks <- shard_tasks(rows, need_grad, if (by_order) epoch$order, span, epoch$is_run,
                         n_shards)
    res <- engine_run_tasks(session, tasks, par, if (by_order) epoch$order)
    sizes <- attr(tasks, "sizes")
    for (k in seq_along(res)) {
      if (!isTRUE(res[[k]]$ok)) {
        raise_worker_error(res[[k]], sprintf(
          "shard %d of %d (%d rows, first row %d of the data)", k, length(tasks),
          as.integer(sizes[k]), as.integer(task_rows(tasks[[k]], epoch$order)[1L])))
      }
    }
    weights <- sizes / sum(sizes)
    loss <- 0
    for (k in seq_along(res)) loss <- loss + weights[k] * res[[k]]$loss
    grad <- if (need_grad) combine_gradients(lapply(res, `[[`, "grad"), weights)
    # Counted as one evaluation of fn (and gr) on the batch, as in one process.
    list(loss = loss, grad = grad, n_fn = 1, n_gr = if (need_grad) 1 else 0)
  }
}

# The shard tasks of a batch, attr(, "sizes") their numbers of rows. Each
# shard is described by a range of rows when the batch is a run of
# consecutive rows (a full batch or batches in order: workers keep the cut),
# by its positions in the epoch's order when shuffled, or by its rows.
# Nothing of the size of the batch is built here.
shard_tasks <- function(rows, need_grad, order, span, order_is_run, n_shards) {
  if (!is.null(order)) {
    n_rows <- span[2L] - span[1L] + 1L
    first_row <- if (order_is_run) order$rows[span[1L]] else NA
  } else {
    n_rows <- length(rows)
    first_row <- if (is_run(rows)) rows[1L] else NA
  }
  bounds <- shard_bounds(n_rows, n_shards)
  tasks <- lapply(seq_len(nrow(bounds)), function(k) {
    t <- list(type = "shard", need_grad = need_grad)
    if (!is.na(first_row)) {
      t$range <- as.integer(first_row - 1L + bounds[k, ])
    } else if (!is.null(order)) {
      t$pos <- as.integer(span[1L] - 1L + bounds[k, ])
      t$order_id <- order$id
    } else {
      t$rows <- rows[bounds[k, 1L]:bounds[k, 2L]]
    }
    t
  })
  attr(tasks, "sizes") <- bounds[, 2L] - bounds[, 1L] + 1
  tasks
}

# The rows of the data a shard task stands for (order: the epoch's order, as
# engines get it).
task_rows <- function(task, order) {
  if (!is.null(task$range)) return(seq.int(task$range[1L], task$range[2L]))
  if (!is.null(task$pos)) return(order$rows[seq.int(task$pos[1L], task$pos[2L])])
  task$rows
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

# A failed task as a classed error; when the worker could not find a
# function or object, the message says how to send it.
raise_worker_error <- function(res, what) {
  missing <- missing_global(res$message)
  advice <- if (!is.na(missing)) paste0(". ", missing_global_advice(missing)) else ""
  rmsprop_abort("worker", sprintf("%s failed on its worker: %s%s", what, res$message, advice),
                worker_message = res$message, missing = missing)
}
