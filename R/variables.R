# opt$variables and opt$load_variables(): the optimizer state as a named list
# of plain R arrays, in Keras order (SPEC B), and back. The C state list is
# read and written by its field names (src/state_layout.h).

slot_kinds <- data.frame(
  slot = c("ema", "accumulator", "velocity", "momentum", "average_gradient"),
  suffix = c("average", "gradient_accumulator", "velocity", "momentum", "average_gradient"),
  stringsAsFactors = FALSE
)

optimizer_variables <- function(private) {
  state <- .Call(C_state_get, private$ptr)
  name <- private$config$name
  out <- list()
  out[[paste0(name, "/iteration")]] <- state[["iterations"]]
  if (is.double(private$lr)) out[[paste0(name, "/learning_rate")]] <- private$lr
  if (is.null(private$skeleton)) return(out)
  offsets <- state[["offsets"]]
  dims <- leaf_dims(private$skeleton)
  for (k in seq_len(nrow(slot_kinds))) {
    values <- state[[slot_kinds$slot[[k]]]]
    if (is.null(values)) next
    for (i in seq_along(private$paths)) {
      x <- values[seq.int(offsets[[i]] + 1, length.out = offsets[[i + 1L]] - offsets[[i]])]
      if (!is.null(dims[[i]])) dim(x) <- dims[[i]]
      out[[sprintf("%s/%s_%s", name, private$paths[[i]], slot_kinds$suffix[[k]])]] <- x
    }
  }
  out
}

# The largest iteration counter a state may hold: every whole number up to
# 2^53 is a double, and the counter must stay exact as it grows.
max_iterations <- 2^53

optimizer_load_variables <- function(private, values) {
  if (is.null(private$skeleton)) {
    rmsprop_abort("state", paste(
      "build the optimizer first (`opt$build(variables)`) so it knows the shapes of the state",
      "to load."))
  }
  current <- optimizer_variables(private)
  if (!is.list(values) || is.object(values) || is.null(names(values))) {
    rmsprop_abort("argument", sprintf("`values` must be a named list like `opt$variables`, not %s.",
                                      describe_value(values)), argument = "values")
  }
  if (length(values) != length(current)) {
    rmsprop_abort("argument", sprintf(
      "`values` has %s arrays, but this optimizer has %s (%s).", count_text(length(values)),
      count_text(length(current)), paste0("\"", names(current), "\"", collapse = ", ")),
      argument = "values")
  }
  if (!identical(names(values), names(current))) {
    bad <- which(is.na(names(values)) | names(values) != names(current))[[1L]]
    rmsprop_abort("argument", sprintf(
      "`values` entry %s is named %s, but this optimizer expects \"%s\".", count_text(bad),
      encodeString(names(values)[[bad]], quote = "\""), names(current)[[bad]]),
      argument = "values", field = names(current)[[bad]])
  }
  for (n in names(current)) check_loaded_array(n, values[[n]], current[[n]])
  name <- private$config$name
  state <- .Call(C_state_get, private$ptr)
  state[["iterations"]] <- as.double(values[[1L]])
  for (k in seq_len(nrow(slot_kinds))) {
    idx <- slot_kinds$slot[[k]]
    if (is.null(state[[idx]])) next
    keys <- sprintf("%s/%s_%s", name, private$paths, slot_kinds$suffix[[k]])
    state[[idx]] <- as.double(unlist(lapply(values[keys], as.vector), use.names = FALSE))
  }
  problem <- state_values_problem(state, private$config, private$paths)
  if (!is.null(problem)) {
    rmsprop_abort("argument", paste0(problem, "; nothing was loaded."), argument = "values",
                  field = attr(problem, "field"))
  }
  lr_key <- paste0(name, "/learning_rate")
  new_lr <- if (lr_key %in% names(values)) as.double(values[[lr_key]]) else NULL
  if (!is.null(new_lr) && new_lr < 0) {
    rmsprop_abort("argument", sprintf("`values[[\"%s\"]]` (the learning rate) must be >= 0, not %s.",
                                      lr_key, describe_value(new_lr)),
                  argument = "values", field = lr_key)
  }
  .Call(C_state_set, private$ptr, state)
  if (!is.null(new_lr)) set_learning_rate(private, new_lr)
  invisible(NULL)
}

# One entry of load_variables()' `values`: plain finite numbers (double or
# integer, no class) of the length and dim of this optimizer's entry. The
# length is compared before any value is looked at, so nothing of a wrong
# size is ever read or copied.
check_loaded_array <- function(n, v, like) {
  ok <- (is.double(v) || is.integer(v)) && !is.object(v) && length(v) == length(like) &&
    identical(dim(v), dim(like)) && !anyNA(v) && all(is.finite(v))
  if (!ok) {
    rmsprop_abort("argument", sprintf(
      "`values[[\"%s\"]]` must be finite numbers of length %s%s, not %s.", n,
      count_text(length(like)),
      if (is.null(dim(like))) "" else paste0(" with dim ", dim_text(dim(like))),
      describe_value(v)), argument = "values", field = n)
  }
  invisible(v)
}

# What no optimizer can reach, in a state list (from load_variables(), or
# from a file): NULL when the values are possible, else a phrase naming the
# entry of `$variables` (also in attribute "field"). Every later step would
# answer NaN from such a state (a negative velocity under the square root),
# or the counter would stop counting (past 2^53).
state_values_problem <- function(state, config, paths) {
  name <- config$name
  entry <- function(slot, pos) {
    i <- findInterval(pos - 1, state[["offsets"]], rightmost.closed = FALSE)
    sprintf("%s/%s_%s", name, paths[[i]], slot_kinds$suffix[slot_kinds$slot == slot])
  }
  problem <- function(field, what) {
    structure(sprintf("`values[[\"%s\"]]`: %s", field, what), field = field)
  }
  it <- state[["iterations"]]
  if (!is.double(it) || length(it) != 1L || is.na(it) || it < 0 || it > max_iterations ||
      it != round(it)) {
    return(problem(paste0(name, "/iteration"), sprintf(
      "the iteration counter must be a whole number in [0, 2^53], not %s", describe_value(it))))
  }
  for (slot in slot_kinds$slot) {
    v <- state[[slot]]
    bad <- if (is.null(v)) integer() else which(!is.finite(v))
    if (length(bad)) {
      return(problem(entry(slot, bad[[1L]]), "it holds a value that is not finite"))
    }
  }
  ms <- state[["velocity"]]
  bad <- if (is.null(ms)) integer() else which(ms < 0)
  if (length(bad)) {
    return(problem(entry("velocity", bad[[1L]]), sprintf(paste(
      "velocities are running averages of squared gradients, so they are >= 0, but one is %s",
      "(every later step would give NaN)"), format(ms[[bad[[1L]]]]))))
  }
  mg <- state[["average_gradient"]]
  # Rounding lets a trained state come within a few ulps of ms of the limit.
  bad <- if (is.null(mg) || is.null(ms)) integer() else
    which(mg^2 - ms >= config$epsilon + 4 * .Machine$double.eps * ms)
  if (length(bad)) {
    i <- bad[[1L]]
    return(problem(entry("average_gradient", i), sprintf(paste(
      "the square of an average gradient (%s) exceeds the velocity (%s) plus epsilon: a",
      "centered step would take the square root of a negative number"),
      format(mg[[i]]), format(ms[[i]]))))
  }
  NULL
}
