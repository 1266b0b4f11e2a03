# Engines: where minimize() and sweep_optimizers() compute (this process, a
# future plan, or a parallel cluster), and how many shards a batch is cut into.
# The code that runs on workers is in worker.R, the driver side of a
# data-parallel step in engine-evaluator.R, sweeps in sweep.R.

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
#'   and `data` are sent once per run and removed at the end. Each epoch sends
#'   every worker the epoch's row order once; each step then sends only the
#'   parameters and where each shard lies in that order (a few hundred bytes,
#'   whatever the batch size), and gets back the shards' losses and
#'   gradients. On PSOCK clusters (the default of `makeCluster()`) the workers
#'   serve the steps of a run over their own connections, every message in a
#'   single write: \pkg{parallel} writes a message above 4 KB in pieces, and
#'   the last piece then waits for TCP's delayed acknowledgement (about 40 ms
#'   per step). Cluster calls made during the run (say, from a `callback`) are
#'   answered as usual. Other clusters take each step through
#'   [parallel::clusterApply()].
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
#' set.seed(1)  # the shuffling of the rows
#' fit <- minimize(c(0, 0), fn, gr, data = d, batch_size = 8, epochs = 50, engine = eng,
#'                 optimizer = optimizer_rmsprop(learning_rate = 0.1))
#' fit$par
#'
#' \donttest{
#' # Two local worker processes: the same shards, the same numbers
#' if (requireNamespace("parallel", quietly = TRUE)) {
#'   cl <- parallel::makeCluster(2)
#'   set.seed(1)
#'   fit2 <- minimize(c(0, 0), fn, gr, data = d, batch_size = 8, epochs = 50, engine = cl,
#'                    optimizer = optimizer_rmsprop(learning_rate = 0.1))
#'   parallel::stopCluster(cl)
#'   identical(fit$par, fit2$par)
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

