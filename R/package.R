#' rmsprop: the Keras RMSprop optimizer for plain R
#'
#' [optimizer_rmsprop()] creates the optimizer; its `$step()` method updates
#' numeric vectors, matrices, arrays and lists of them. See also the
#' `learning_rate_schedule_*()` functions, [optimizer_loss_scale()] and
#' [minimize()].
#'
#' @keywords internal
#' @useDynLib rmsprop, .registration = TRUE
"_PACKAGE"

#' Internal counters, for tests and diagnostics
#'
#' `rmsprop_live_states()` is the number of C state caches alive (each
#' optimizer has one once used; finalizers free them). `rmsprop_kernel_info()`
#' says which instruction set and how many threads the kernels use.
#' `rmsprop_set_threads(n)` sets the number of threads for large steps
#' (0 = the default: all available, within `OMP_THREAD_LIMIT`).
#'
#' @param n Number of threads, a whole number >= 0.
#' @return `rmsprop_live_states()` an integer; `rmsprop_kernel_info()` a list
#'   with `isa` and `threads`; `rmsprop_set_threads()` the previous setting,
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
  check_number(n, "n", 0, .Machine$integer.max, whole = TRUE)
  old <- rmsprop_kernel_info()$threads
  .Call(C_set_threads, as.integer(n))
  invisible(old)
}
