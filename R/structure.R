# The structure of a set of variables: a numeric array, or a list (named or
# not, nested to any depth) of them.
#
# When an optimizer is built, make_skeleton() records the structure once: a
# "skeleton" that mirrors the lists (with their names) and has, at each leaf,
# the leaf's length with its "dim" attribute. The C step walks the caller's
# variables and gradients against it, so no flattening happens in R on the
# hot path. The slow paths here (building, describing a mismatch) run once or
# only on error.

is_numeric_leaf <- function(x) {
  (is.double(x) || is.integer(x) || is.logical(x)) && !is.factor(x)
}

# Checks a variable structure and returns its skeleton, the path of every
# leaf (depth-first order) and the leaf lengths. The depth limit keeps the
# recursion (here and in C) far from the C stack's end.
max_depth <- 100L

make_skeleton <- function(x, arg = "variables") {
  paths <- character()
  lengths <- numeric()
  walk <- function(x, path) {
    if (length(path) > max_depth) {
      rmsprop_abort("structure", sprintf(
        "`%s` is nested deeper than %d levels (at \"%s\").", arg, max_depth,
        substr(join_path(path), 1L, 60L)), argument = arg)
    }
    if (typeof(x) == "list") {
      if (length(x) == 0L) {
        rmsprop_abort("structure", sprintf("`%s`%s is an empty list: there is nothing to optimise.",
                                           arg, path_suffix(path)), argument = arg)
      }
      nms <- names(x)
      out <- vector("list", length(x))
      for (i in seq_along(x)) {
        out[i] <- list(walk(x[[i]], c(path, element_label(nms, i))))
      }
      attr(out, "names") <- nms
      return(out)
    }
    if (!is_numeric_leaf(x)) {
      rmsprop_abort("variable", sprintf(
        "`%s`%s must be a numeric vector, matrix or array (or a list of them), not %s.",
        arg, path_suffix(path), describe_value(x)), argument = arg, path = join_path(path))
    }
    paths[[length(paths) + 1L]] <<- join_path(path)
    lengths[[length(lengths) + 1L]] <<- length(x)
    leaf <- as.double(length(x))
    if (!is.null(dim(x))) attr(leaf, "leaf_dim") <- dim(x)
    leaf
  }
  skeleton <- walk(x, character())
  list(skeleton = skeleton, paths = paths, lengths = lengths)
}

element_label <- function(nms, i) {
  if (is.null(nms) || is.na(nms[[i]]) || !nzchar(nms[[i]])) return(as.character(i))
  # "bytes" strings cannot be translated into messages: keep them escaped.
  if (Encoding(nms[[i]]) == "bytes") encodeString(nms[[i]]) else nms[[i]]
}

join_path <- function(path) {
  if (length(path) == 0L) "variable" else paste(path, collapse = "/")
}

path_suffix <- function(path) {
  if (length(path) == 0L) "" else sprintf(" (at \"%s\")", join_path(path))
}

# The first difference between `x` and the skeleton, in words.
describe_structure_difference <- function(skeleton, x, arg) {
  # Gradients are compared with the variables, variables with the build.
  built <- if (arg == "grads") "the variables are" else "the optimizer was built on"
  walk <- function(sk, x, path) {
    where <- if (length(path)) sprintf("\"%s\"", join_path(path)) else "the top level"
    if (is.list(sk)) {
      if (!is.list(x)) {
        return(sprintf("at %s %s a list of %d, but `%s` has %s",
                       where, built, length(sk), arg, describe_value(x)))
      }
      if (length(x) != length(sk)) {
        return(sprintf("at %s %s a list of %d, but `%s` has a list of %d",
                       where, built, length(sk), arg, length(x)))
      }
      if (!identical(names(x), names(sk)) && !(arg == "grads" && is.null(names(x)))) {
        return(sprintf("at %s the names differ: %s (%s), `%s` has (%s)", where,
                       if (arg == "grads") "the variables have" else "built with",
                       names_text(names(sk)), arg, names_text(names(x))))
      }
      for (i in seq_along(sk)) {
        if (arg == "grads" && is.null(x[[i]])) next
        found <- walk(sk[[i]], x[[i]], c(path, element_label(names(sk), i)))
        if (!is.null(found)) return(found)
      }
      return(NULL)
    }
    if (is.list(x)) {
      return(sprintf("at %s %s a numeric array, but `%s` has %s",
                     where, built, arg, describe_value(x)))
    }
    if (!is_numeric_leaf(x)) {
      return(sprintf("at %s `%s` has %s, not a numeric array", where, arg, describe_value(x)))
    }
    if (length(x) != sk[[1L]]) {
      return(sprintf("at %s %s length %s, but `%s` has length %d",
                     where, built, format(sk[[1L]]), arg, length(x)))
    }
    if (!identical(dim(x), attr(sk, "leaf_dim")) && !(arg == "grads" && is.null(dim(x)))) {
      return(sprintf("at %s %s dim %s, but `%s` has dim %s", where, built,
                     dim_text(attr(sk, "leaf_dim")), arg, dim_text(dim(x))))
    }
    NULL
  }
  found <- walk(skeleton, x, character())
  if (is.null(found)) sprintf("`%s` does not have the structure the optimizer was built on", arg)
  else found
}

names_text <- function(n) {
  if (is.null(n)) "no names" else paste(encodeString(n, quote = "\""), collapse = ", ")
}

dim_text <- function(d) {
  if (is.null(d)) "none" else paste0("c(", paste(d, collapse = ", "), ")")
}

# Put flat values (in depth-first order) back into a skeleton's shape, with
# dims; used for state arrays, which have no names or dimnames of their own.
leaf_dims <- function(skeleton) {
  out <- list()
  walk <- function(sk) {
    if (is.list(sk)) {
      for (s in sk) walk(s)
    } else {
      out[length(out) + 1L] <<- list(attr(sk, "leaf_dim"))
    }
  }
  walk(skeleton)
  out
}
