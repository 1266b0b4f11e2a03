# Turning what C reports (an "rmsprop_signal" list, see src/structure.c)
# into the package's classed conditions. C says what, where (the variable's
# index, the path and the nodes) and at which position; the words are here,
# so no structure is walked again to explain a problem.

signal_error <- function(private, sig) {
  arg <- if (isTRUE(sig$in_grads)) "grads" else "variables"
  path <- if (sig$index >= 1) private$paths[[sig$index]] else problem_path(sig)
  at <- if (is.null(path)) "" else sprintf(" for variable \"%s\"", path)
  switch(sig$kind,
    not_list = , not_leaf = , list_length = , names = , length = , dim =
      rmsprop_abort("structure", paste0(describe_problem(sig, arg), "."), argument = arg,
                    path = path),
    type = rmsprop_abort(if (arg == "grads") "gradient" else "variable", sprintf(
      "`%s`%s must be numeric (double, integer or logical), not %s.",
      arg, at, describe_value(sig$found)), argument = arg, path = path),
    nonfinite = if (arg == "grads") {
      rmsprop_abort("gradient", sprintf(
        "the gradient%s is not finite at position %s; the step was refused and nothing changed.",
        at, format(sig$position)), argument = "grads", path = path, position = sig$position)
    } else {
      rmsprop_abort("variable", sprintf(
        "the variable \"%s\" is not finite (NA, NaN or Inf) at position %s; nothing changed.",
        path, format(sig$position)), argument = "variables", path = path,
        position = sig$position)
    },
    all_null = rmsprop_abort("gradient",
      "every gradient is NULL: there is nothing to apply.", argument = "grads"),
    in_place_type = rmsprop_abort("variable", sprintf(
      "`step_in_place()` needs double vectors, but the variable \"%s\" is of type %s.",
      path, typeof(sig$found)), argument = "variables", path = path),
    in_place_altrep = rmsprop_abort("variable", sprintf(paste(
      "`step_in_place()` writes into the caller's own memory, but the variable \"%s\" is an",
      "ALTREP vector (e.g. a compact sequence such as `as.double(1:n)`, or a memory-mapped",
      "vector) whose values are not plain memory; copy it first (e.g. `x <- x + 0`) or use",
      "`step()`. Nothing changed."), path), argument = "variables", path = path),
    shared = rmsprop_abort("variable",
      "`step_in_place()` was given two variables that share memory; copy one first (e.g. `x + 0`).",
      argument = "variables"),
    corrupt = rmsprop_abort("state",
      "the optimizer's structure does not match its state (were its internals changed?)."),
    stop("internal error: unknown signal ", sig$kind)
  )
}
