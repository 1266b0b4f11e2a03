# The cluster engine: a cluster from parallel::makeCluster(), parallelly or
# mirai::make_cluster(), through parallel's own calls only (clusterCall(),
# clusterApply()): this package keeps no networking code of its own.
#
# Owns: the methods of class rmsprop_engine_cluster: the run's functions and
# data sent to every node once (worker_setup()), one tiny call per node and
# step (worker_keyed_step(): the parameters and that node's tasks, with the
# epoch's row order when the node lacks it), and the cleanup.
# Must never: leave anything on the nodes after a run (the run's state is
# removed in engine_close(), whatever happened), or depend on the order in
# which nodes answer.

engine_cluster_new <- function(backend, shards) {
  new_engine("cluster", shards, cluster = backend)
}

#' @export
#' @noRd
engine_describe.rmsprop_engine_cluster <- function(engine) {
  sprintf("a cluster of %d workers", length(engine$cluster))
}

#' @export
#' @noRd
engine_workers.rmsprop_engine_cluster <- function(engine) length(engine$cluster)

cluster_failed <- function(e, what = "the cluster failed") {
  rmsprop_abort("worker", sprintf("%s: %s", what, conditionMessage(e)))
}

#' @export
#' @noRd
engine_open.rmsprop_engine_cluster <- function(engine, job) {
  cl <- engine$cluster
  s <- new_session(engine, cl = cl, key = job$key, node_order = integer(length(cl)),
                   in_flight = FALSE,
                   step_call = base_call(get("worker_keyed_step", envir = job$wenv)),
                   clean_call = base_call(get("worker_cleanup", envir = job$wenv)),
                   sent = integer(0))
  tryCatch(
    parallel::clusterCall(cl, get("worker_setup", envir = job$wenv), job$key, job$payload(),
                          job$lib),
    error = function(e) {
      engine_close(s)
      cluster_failed(e, "sending the functions and data to the cluster failed")
    })
  s
}

# Task k goes to node k (modulo the cluster's size), one message per node
# with all its tasks; the nodes used are always the first ones, so the
# cluster is never subset (a subset of some clusters is no cluster).
#' @export
#' @noRd
engine_run_tasks.rmsprop_engine_cluster_session <- function(session, tasks, par, order) {
  n_nodes <- length(session$cl)
  node_of <- (seq_along(tasks) - 1L) %% n_nodes + 1L
  used <- seq_len(min(n_nodes, length(tasks)))
  msgs <- lapply(used, function(i) {
    mine <- tasks[node_of == i]
    msg <- list(par = par, tasks = mine)
    needs_order <- any(vapply(mine, function(t) !is.null(t$pos), logical(1)))
    if (needs_order && session$node_order[i] != order$id) {
      msg$order <- order$rows
      msg$order_id <- order$id
    }
    msg
  })
  # Set while parallel waits for the replies: an interrupt then leaves them
  # unread on the connections (see engine_close()).
  session$in_flight <- TRUE
  replies <- tryCatch(parallel::clusterApply(session$cl, msgs, session$step_call, session$key),
                      error = function(e) {
                        session$in_flight <- FALSE  # an error, not an interrupt: all read
                        cluster_failed(e)
                      })
  session$in_flight <- FALSE
  session$sent <- vapply(msgs, function(m) length(serialize(m, NULL)), integer(1))
  for (i in used) if (!is.null(msgs[[i]]$order_id)) session$node_order[i] <- msgs[[i]]$order_id
  res <- vector("list", length(tasks))
  for (i in used) res[node_of == i] <- replies[[i]]
  res
}

#' @export
#' @noRd
engine_close.rmsprop_engine_cluster_session <- function(session) {
  if (isTRUE(session$in_flight)) {
    # parallel offers no way to read the replies of an interrupted call: any
    # later call on this cluster would read them as its own.
    rmsprop_warn("cluster", paste(
      "the run was interrupted while the cluster computed a step; parallel leaves the",
      "replies unread, so later calls on this cluster would get them: stop it",
      "(parallel::stopCluster()) and make a new one. engine = \"mirai\" is not affected."))
    return(invisible())
  }
  try(parallel::clusterCall(session$cl, session$clean_call, session$key), silent = TRUE)
  invisible()
}

# Whole runs (sweeps): rmsprop is loaded on every node first.
#' @export
#' @noRd
engine_map.rmsprop_engine_cluster <- function(engine, jobs, fun, shared) {
  loaded <- tryCatch(
    parallel::clusterCall(engine$cluster, get("worker_load", envir = environment(fun)),
                          shared$lib),
    error = function(e) cluster_failed(e, "loading rmsprop on the cluster failed"))
  if (!all(unlist(loaded))) {
    rmsprop_abort("worker", paste("the rmsprop package cannot be loaded on every worker",
                                  "of the cluster; install it there."))
  }
  tryCatch(parallel::clusterApply(engine$cluster, jobs, fun_with_args(fun, shared)),
           error = cluster_failed)
}
