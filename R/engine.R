# Engines: where minimize() and sweep_optimizers() compute, behind one
# contract. Each backend is a class c("rmsprop_engine_<name>",
# "rmsprop_engine") in its own file (engine-sequential.R, engine-cluster.R,
# engine-future.R, engine-mirai.R) that implements the generics below; a new
# backend is a new file plus one entry in engine_registry.
#
# Owns: rmsprop_engine() and as_engine() (user input to an engine, through
# the registry), the generics and their stopping defaults, the number of
# shards, and what every backend shares (the run's key, the library workers
# load rmsprop from).
# Must never: branch on the kind of backend (each answers for itself through
# the generics), or know how a backend talks to its workers.
#
# The contract:
#   engine_workers(engine)               how many workers (the default shards)
#   engine_open(engine, job)             -> session: the run's functions and
#                                        data sent once (job: see run_job())
#   engine_run_tasks(session, tasks, par, order)
#                                        -> the tasks' results, in task order
#   engine_close(session)                the workers left clean; never fails
#   engine_map(engine, jobs, fun, shared)
#                                        -> fun(job, <shared>) for each job, in
#                                        job order (whole runs: sweeps)
#   engine_describe(engine)              one line for format()

#' Engines for data-parallel gradients and optimizer sweeps
#'
#' An engine tells [minimize()] and [sweep_optimizers()] where to compute.
#' With `data`, `minimize()` splits the rows of every mini-batch into
#' `shards` contiguous shards; each worker computes the loss and gradient of
#' its shard, the driver combines them weighted by shard size (so `fn`
#' should return the mean loss over the rows it gets) and takes the single
#' optimizer step itself: the optimizer state never leaves the driver, only
#' the parameters go out and the losses and gradients come back. Without
#' `data` and with `gr = NULL`, the coordinates of the numerical gradient are
#' split across the workers instead. Without `data` and with a `gr`, there is
#' nothing to split and the engine is not used.
#'
#' Backends:
#' * `"sequential"`: in this R process, shard by shard. With the same `shards`
#'   it gives bit-for-bit the numbers of the parallel backends.
#' * `"mirai"`: the daemons set with [mirai::daemons()] (local processes,
#'   other machines over SSH or TLS, or HPC schedulers); needs the \pkg{mirai}
#'   package. The functions and `data` go to every daemon once per run
#'   ([mirai::everywhere()], so use daemons with a dispatcher, the default);
#'   each step sends the parameters and where each shard lies. This is the
#'   engine to pick for speed: see the README's table.
#' * a cluster from [parallel::makeCluster()], `parallelly` or
#'   [mirai::make_cluster()]: the functions and `data` are sent once per run;
#'   each step goes through \pkg{parallel}'s own calls. A cluster made by
#'   `mirai::make_cluster()` answers them in about a millisecond; a
#'   classic PSOCK cluster waits for TCP's delayed acknowledgement when a
#'   message exceeds 4 KB (40 to 90 ms per step). An interrupt while the
#'   cluster computes a step leaves \pkg{parallel}'s replies unread: the run
#'   then ends with a warning to stop that cluster and make a new one.
#' * `"future"`: one future per shard, under whatever [future::plan()] is set
#'   (`multisession`, `cluster` over SSH hostnames, `future.batchtools`, ...);
#'   needs the \pkg{future} package. The functions and the shard's rows travel
#'   with every future: it suits sweeps and expensive gradients on small data.
#'
#' Each epoch sends every worker the epoch's row order once; each step then
#' sends only the parameters and where each shard lies in that order (a few
#' hundred bytes, whatever the batch size).
#'
#' **Globals.** `fn`, `gr` and the functions passed through `...` often call
#' helpers or read objects defined in the global environment, which workers
#' do not have. When the \pkg{globals} package is installed, the engines find
#' them (as \pkg{future} does) and send them with the run, once: helpers and
#' objects of the global environment, and functions of attached packages
#' other than R's default ones (their packages must be installed on the
#' workers). Without \pkg{globals}, or for an object reached in a way it cannot
#' see (such as `get("name")`), the error of class `rmsprop_error_worker`
#' names what the worker could not find and how to send it: pass it through
#' `...` of [minimize()], define it inside `fn`, or put it on the workers
#' yourself (`parallel::clusterExport(cl, "name")`, `mirai::everywhere({},
#' name = name)`).
#'
#' Workers that run `sweep_optimizers()`, or whose gradient source needs
#' \pkg{rmsprop} (`gr = "ad"`), load the package: from the library this
#' session loaded it from, or from the worker's own library paths (install
#' it there on other machines). Otherwise workers need base R only.
#'
#' A failure on a worker is raised in the driver as an error of class
#' `rmsprop_error_worker` naming the shard (or the configuration), before the
#' optimizer steps: the run's optimizer is left unchanged.
#'
#' Combining shards changes the rounding: a data-parallel run agrees with the
#' run in one process (`engine = NULL`) to about 1e-12, and exactly with
#' `rmsprop_engine("sequential", shards = <same number>)` on every backend.
#'
#' @param backend `"sequential"`, `"mirai"`, `"future"`, or a cluster object
#'   (class `"cluster"`).
#' @param shards The number of shards per batch: `NULL` uses one per worker
#'   (the cluster's size, the number of mirai daemons or
#'   [future::nbrOfWorkers()] at the start of each run; 1 for
#'   `"sequential"`).
#' @param x An engine.
#' @param ... Ignored.
#' @return An object of class `"rmsprop_engine"` (and
#'   `"rmsprop_engine_<backend>"`).
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
#' # Two local daemons: the same shards, the same numbers
#' if (requireNamespace("mirai", quietly = TRUE)) {
#'   mirai::daemons(2)
#'   set.seed(1)
#'   fit2 <- minimize(c(0, 0), fn, gr, data = d, batch_size = 8, epochs = 50,
#'                    engine = "mirai", optimizer = optimizer_rmsprop(learning_rate = 0.1))
#'   mirai::daemons(0)
#'   identical(fit$par, fit2$par)
#' }
#' }
rmsprop_engine <- function(backend = "sequential", shards = NULL) {
  check_number(shards, "shards", lower = 1, upper = .Machine$integer.max, whole = TRUE,
               null_ok = TRUE)
  entry <- engine_entry(backend)
  if (is.null(entry)) {
    rmsprop_abort("argument", sprintf(
      "`backend` must be %s, or a cluster from parallel::makeCluster(), not %s.",
      paste0("\"", engine_names(), "\"", collapse = ", "), describe_value(backend)),
      argument = "backend")
  }
  shards <- if (is.null(shards)) NULL else as.integer(shards)
  get(entry$new, envir = asNamespace("rmsprop"))(backend, shards)
}

# name -> the constructor function(backend, shards) (by name) and, for
# backends given as objects, the class that selects it.
engine_registry <- list(
  sequential = list(new = "engine_sequential_new", class = NULL),
  mirai = list(new = "engine_mirai_new", class = NULL),
  future = list(new = "engine_future_new", class = NULL),
  cluster = list(new = "engine_cluster_new", class = "cluster")
)

engine_names <- function() {
  names(engine_registry)[vapply(engine_registry, function(e) is.null(e$class), logical(1))]
}

# The registry's entry for what the user gave: a name, or an object of an
# entry's class. NULL when none fits.
engine_entry <- function(backend) {
  for (e in engine_registry) {
    if (!is.null(e$class) && inherits(backend, e$class)) return(e)
  }
  if (is.character(backend) && length(backend) == 1L && !is.na(backend) &&
      backend %in% engine_names()) {
    return(engine_registry[[backend]])
  }
  NULL
}

# The fields every engine has, and its classes.
new_engine <- function(name, shards, ...) {
  structure(list(name = name, shards = shards, ...),
            class = c(paste0("rmsprop_engine_", name), "rmsprop_engine"))
}

#' @rdname rmsprop_engine
#' @export
format.rmsprop_engine <- function(x, ...) {
  sprintf("<rmsprop_engine> %s, %s", engine_describe(x),
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
  if (!is.null(engine_entry(engine))) return(rmsprop_engine(engine))
  rmsprop_abort("argument", sprintf(
    "`%s` must be NULL, %s, a cluster from parallel::makeCluster() or an rmsprop_engine(), not %s.",
    arg, paste0("\"", engine_names(), "\"", collapse = ", "), describe_value(engine)),
    argument = arg)
}

engine_shards <- function(engine) {
  if (!is.null(engine$shards)) engine$shards else engine_workers(engine)
}

# ---- the generics (stopping defaults: a backend must implement each) ----

engine_missing <- function(what, x) {
  stop(sprintf("%s is not implemented for the engine of class %s", what,
               paste(class(x), collapse = "/")), call. = FALSE)
}

engine_workers <- function(engine) UseMethod("engine_workers")
#' @export
#' @noRd
engine_workers.default <- function(engine) engine_missing("engine_workers()", engine)

engine_open <- function(engine, job) UseMethod("engine_open")
#' @export
#' @noRd
engine_open.default <- function(engine, job) engine_missing("engine_open()", engine)

engine_run_tasks <- function(session, tasks, par, order) UseMethod("engine_run_tasks")
#' @export
#' @noRd
engine_run_tasks.default <- function(session, tasks, par, order) {
  engine_missing("engine_run_tasks()", session)
}

engine_close <- function(session) UseMethod("engine_close")
#' @export
#' @noRd
engine_close.default <- function(session) engine_missing("engine_close()", session)

engine_map <- function(engine, jobs, fun, shared) UseMethod("engine_map")
#' @export
#' @noRd
engine_map.default <- function(engine, jobs, fun, shared) engine_missing("engine_map()", engine)

engine_describe <- function(engine) UseMethod("engine_describe")
#' @export
#' @noRd
engine_describe.default <- function(engine) class(engine)[1L]

# A session of a run: the engine's class with "_session", so that the
# generics dispatch on it.
new_session <- function(engine, ...) {
  s <- new.env(parent = emptyenv())
  s$engine <- engine
  args <- list(...)
  for (n in names(args)) assign(n, args[[n]], envir = s)
  class(s) <- c(paste0(class(engine)[1L], "_session"), "rmsprop_engine_session")
  s
}

# ---- shared by the backends ----

# What a run sends to its workers: the user's functions (with the globals
# they use, engine-globals.R), the gradient source, the extra arguments and
# the data, serialized once; the run's key and the library rmsprop was loaded
# from. `payload()` serializes on first use (a backend that runs in this
# process never does).
run_job <- function(fn, source, dots, data) {
  job <- new.env(parent = emptyenv())
  job$fn <- fn
  job$source <- source
  job$dots <- dots
  job$data <- data
  job$key <- run_key()
  job$lib <- driver_lib()
  job$wenv <- worker_env()
  job$payload <- function(xdr = TRUE) {
    shipped <- ship_globals(list(fn = fn, source = source, dots = dots))
    serialize(c(shipped, list(data = data)), NULL, xdr = xdr)
  }
  job
}

# A name for one run's state on workers. It must not use the RNG: drawing
# from it would change the shuffling of the user's run.
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

# A function of base R only, as sent to a worker in a call: without its byte
# code (which would triple its size) and without the package.
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
