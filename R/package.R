#' rmsprop: the Keras RMSprop optimizer for plain R
#'
#' Keras 3's RMSprop optimizer, computing the same numbers in double precision,
#' for R numeric vectors, matrices, arrays and nested lists of them, with its
#' state kept in C. No Python is involved.
#'
#' @section Gradients first, variables second:
#' Every step method takes the **gradients first and the variables second**:
#' `params <- opt$step(grads, params)`, in the order of Keras'
#' `optimizer$apply(grads, variables)`. Gradients and variables have the same
#' shape, so the optimizer cannot tell when they are swapped: a call such as
#' `opt$step(params, grads)` runs without any error and returns nonsense.
#' Naming the arguments, `opt$step(grads = g, variables = params)`, makes the
#' order explicit.
#'
#' @section Where to start:
#' * [optimizer_rmsprop()] creates the optimizer. Its `$step(grads, variables)`
#'   method returns the updated variables; the page lists every other method
#'   and field (`$iterations`, `$learning_rate`, `$variables`, ...).
#' * [minimize()] runs a whole training loop, in the style of [stats::optim()]:
#'   full-batch steps, or mini-batches of the rows of a data set for a number
#'   of epochs; [`plot()`][plot.rmsprop_fit] draws the loss curve. With an
#'   engine ([rmsprop_engine()]) the gradients are computed on parallel
#'   workers, and [sweep_optimizers()] compares optimizer settings.
#' * Learning-rate schedules: [learning_rate_schedule_exponential_decay()],
#'   [learning_rate_schedule_inverse_time_decay()],
#'   [learning_rate_schedule_piecewise_constant_decay()],
#'   [learning_rate_schedule_polynomial_decay()],
#'   [learning_rate_schedule_cosine_decay()] and
#'   [learning_rate_schedule_cosine_decay_restarts()].
#' * [optimizer_loss_scale()] adds dynamic loss scaling.
#' * [rmsprop_memory_info()] and [rmsprop_live_states()] report on memory and
#'   threads.
#'
#' The vignette `vignette("training", package = "rmsprop")` trains a small
#' neural network with nested parameters and hand-written gradients, saves
#' and resumes the training, and computes the gradients on parallel workers.
#'
#' An optimizer survives [saveRDS()] and [readRDS()], and being sent to a
#' parallel worker, and then continues exactly where it stopped. Every error
#' is a condition of class `rmsprop_error` raised before anything changes.
#'
#' @examples
#' library(rmsprop)
#' # Minimise sum((w - target)^2) from w = (0, 0)
#' target <- c(a = 3, b = -2)
#' w <- c(a = 0, b = 0)
#' opt <- optimizer_rmsprop(learning_rate = 0.1)
#' for (i in 1:200) {
#'   grads <- 2 * (w - target)    # the gradient at w
#'   w <- opt$step(grads, w)      # gradients first, then variables
#' }
#' w
#' opt$iterations
#'
#' # The same with minimize()
#' fit <- minimize(c(a = 0, b = 0), function(w) sum((w - target)^2),
#'                 function(w) 2 * (w - target),
#'                 optimizer = optimizer_rmsprop(learning_rate = 0.1), steps = 200)
#' all.equal(fit$par, w)
#'
#' @useDynLib rmsprop, .registration = TRUE
"_PACKAGE"

#' Internal counters, for tests and diagnostics
#'
#' `rmsprop_live_states()` is the number of C state caches alive (each
#' optimizer has one once used; finalizers free them). `rmsprop_kernel_info()`
#' says which instruction set and how many threads the kernels use.
#' `rmsprop_set_threads(n)` sets the number of threads for large steps
#' (0 = the default: all available, within `OMP_THREAD_LIMIT`). No step ever
#' uses more threads than there are cores (`rmsprop_kernel_info()$cores`),
#' nor more than one per 16,384 elements: a larger `n` is clamped to the
#' cores with a warning of class `rmsprop_warning_threads`. A process
#' made by `fork()` (a child of [parallel::mclapply()], [parallel::mcparallel()]
#' or `future::plan(future::multicore)`) always runs the kernels on one thread,
#' whatever the setting, and `rmsprop_kernel_info()` reports 1 there: OpenMP's
#' threads do not survive `fork()`, and a child that used them would hang. The
#' results are the same for any thread count; the parent keeps its setting.
#'
#' @param n Number of threads, a whole number >= 0.
#' @return `rmsprop_live_states()` an integer; `rmsprop_kernel_info()` a list
#'   with `isa`, `threads` (what a large step uses) and `cores` (the most
#'   threads a step can use); `rmsprop_set_threads()` the previous setting,
#'   invisibly.
#' @export
#' @examples
#' rmsprop_kernel_info()
#' rmsprop_live_states()
rmsprop_live_states <- function() .Call(C_live_states)

#' @rdname rmsprop_live_states
#' @export
rmsprop_kernel_info <- function() .Call(C_kernel_info)

#' @rdname rmsprop_live_states
#' @export
rmsprop_set_threads <- function(n) {
  check_number(n, "n", 0, whole = TRUE)
  info <- rmsprop_kernel_info()
  if (n > info$cores) {
    rmsprop_warn("threads", sprintf(
      "rmsprop_set_threads(): %s threads requested, but there are %d cores; using %d.",
      format(n, big.mark = ","), info$cores, info$cores), requested = n, cores = info$cores)
    n <- info$cores
  }
  .Call(C_set_threads, as.integer(n))
  invisible(info$threads)
}

#' Memory recycled between steps
#'
#' A step that returns new variables needs fresh memory for them, and for a
#' large vector the operating system must map and zero every page of it, which
#' can cost more than the update itself. So the memory of large results (8192
#' doubles or more) that R's garbage collector frees is kept and reused for the
#' next result of the same size. Results are ordinary R vectors either way:
#' memory is reused only once R has found a result unreachable.
#'
#' Two limits, both `max_bytes`, bound what this costs: at most `max_bytes`
#' are kept for reuse, and at most `max_bytes` of results are made from
#' recycled memory at any time (past that, results are allocated as usual,
#' which also makes R collect old results sooner). So recycling holds at most
#' about twice `max_bytes` more than R alone would, and only after large steps.
#' `rmsprop_set_recycling()` sets the limit and releases the memory kept (like
#' `torch.cuda.empty_cache()`); 0 turns recycling off.
#'
#' @param max_bytes A number >= 0: the limit in bytes (default 256 MiB).
#' @return `rmsprop_memory_info()` a list: `cached_bytes` (kept for reuse),
#'   `limit_bytes`, the counts of result blocks `reused` and taken
#'   `fresh` from the system, and `in_use_bytes` (recycled memory held by results
#'   alive, or dropped but not yet collected). `rmsprop_set_recycling()` the
#'   previous limit, invisibly.
#' @export
#' @examples
#' opt <- optimizer_rmsprop()
#' x <- runif(1e5)
#' for (i in 1:20) x <- opt$step(2 * x, x)
#' rmsprop_memory_info()
#' old <- rmsprop_set_recycling(0) # release the memory kept; recycle nothing
#' rmsprop_set_recycling(old)
rmsprop_memory_info <- function() .Call(C_recycle_info)

#' @rdname rmsprop_memory_info
#' @export
rmsprop_set_recycling <- function(max_bytes) {
  check_number(max_bytes, "max_bytes", 0, 2^52)
  old <- rmsprop_memory_info()$limit_bytes
  .Call(C_set_recycle_limit, as.double(max_bytes))
  invisible(old)
}
