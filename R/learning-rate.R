# The learning rate of one call (SPEC A2): a number as is, a schedule or a
# one-argument function evaluated at the raw call counter, a function without
# arguments called once per call. Resolved in R before the C step, so a
# schedule that fails or returns a bad value leaves the optimizer unchanged.

resolve_learning_rate <- function(private) {
  lr <- private$lr
  if (is.double(lr)) return(lr)
  it <- raw_iterations(private)
  value <- tryCatch(
    if (takes_step(lr)) lr(it) else lr(),
    rmsprop_error = function(e) stop(e),
    error = function(e) {
      rmsprop_abort("learning_rate", sprintf(
        "the learning-rate %s failed at step %s: %s",
        if (inherits(lr, "rmsprop_schedule")) "schedule" else "function",
        format(it), conditionMessage(e)), parent = e)
    })
  if (is.numeric(value) && is.object(value)) value <- unclass(value)
  if (!(is.numeric(value) && length(value) == 1L && !is.na(value) && is.finite(value) &&
        value >= 0)) {
    rmsprop_abort("learning_rate", sprintf(
      "the learning-rate %s returned %s at step %s; it must return one finite number >= 0.",
      if (inherits(lr, "rmsprop_schedule")) "schedule" else "function",
      describe_value(value), format(it)), value = value)
  }
  as.double(value)
}

# Schedules and functions of one or more arguments get the step.
takes_step <- function(f) {
  if (inherits(f, "rmsprop_schedule")) return(TRUE)
  a <- args(f)   # NULL for some primitives
  !is.null(a) && length(formals(a)) > 0L
}

current_learning_rate <- function(private) resolve_learning_rate(private)

set_learning_rate <- function(private, value) {
  check_learning_rate(value)
  if (is.numeric(value) && !is.double(private$lr)) {
    rmsprop_abort("learning_rate", paste(
      "this optimizer's learning rate is a schedule or a function, so it cannot be set to a",
      "number; assign another schedule or function, or create the optimizer with a numeric",
      "`learning_rate`."), argument = "learning_rate")
  }
  if (is.numeric(value)) value <- as.double(value)
  private$lr <- value
  private$config$learning_rate <- value
  invisible(value)
}
