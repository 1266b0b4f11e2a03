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

optimizer_load_variables <- function(private, values) {
  if (is.null(private$skeleton)) {
    rmsprop_abort("state", paste(
      "build the optimizer first (`opt$build(variables)`) so it knows the shapes of the state",
      "to load."))
  }
  current <- optimizer_variables(private)
  if (!is.list(values) || is.null(names(values))) {
    rmsprop_abort("argument", sprintf("`values` must be a named list like `opt$variables`, not %s.",
                                      describe_value(values)), argument = "values")
  }
  if (length(values) != length(current)) {
    rmsprop_abort("argument", sprintf(
      "`values` has %d arrays, but this optimizer has %d (%s).", length(values), length(current),
      paste0("\"", names(current), "\"", collapse = ", ")), argument = "values")
  }
  if (!identical(names(values), names(current))) {
    bad <- which(names(values) != names(current))[[1L]]
    rmsprop_abort("argument", sprintf(
      "`values` entry %d is named \"%s\", but this optimizer expects \"%s\".", bad,
      names(values)[[bad]], names(current)[[bad]]), argument = "values")
  }
  for (n in names(current)) {
    v <- values[[n]]
    ok <- (is.double(v) || is.integer(v)) && length(v) == length(current[[n]]) &&
      identical(dim(v), dim(current[[n]])) && all(is.finite(v))
    if (!ok) {
      rmsprop_abort("argument", sprintf(
        "`values[[\"%s\"]]` must be finite numbers of length %d%s, not %s.", n,
        length(current[[n]]),
        if (is.null(dim(current[[n]]))) "" else paste0(" with dim ", dim_text(dim(current[[n]]))),
        describe_value(v)), argument = "values")
    }
  }
  it <- values[[1L]]
  if (it < 0 || it != round(it)) {
    rmsprop_abort("argument", "the iteration counter in `values` must be a whole number >= 0.",
                  argument = "values")
  }
  name <- private$config$name
  state <- .Call(C_state_get, private$ptr)
  state[["iterations"]] <- as.double(it)
  for (k in seq_len(nrow(slot_kinds))) {
    idx <- slot_kinds$slot[[k]]
    if (is.null(state[[idx]])) next
    keys <- sprintf("%s/%s_%s", name, private$paths, slot_kinds$suffix[[k]])
    state[[idx]] <- as.double(unlist(lapply(values[keys], as.vector), use.names = FALSE))
  }
  lr_key <- paste0(name, "/learning_rate")
  new_lr <- if (lr_key %in% names(values)) as.double(values[[lr_key]]) else NULL
  if (!is.null(new_lr) && new_lr < 0) {
    rmsprop_abort("argument", "the learning rate in `values` must be >= 0.", argument = "values")
  }
  .Call(C_state_set, private$ptr, state)
  if (!is.null(new_lr)) set_learning_rate(private, new_lr)
  invisible(NULL)
}
