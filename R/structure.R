# The structure of a set of variables, in one place for all of R: a numeric
# array, or a list (named or not, nested to any depth) of them.
#
# Owns: the leaf test, the skeleton an optimizer is built on (lists with
# their names; at each leaf the leaf's length with its dims in "leaf_dim"),
# the paths of the variables, putting flat numbers back into a structure,
# the matching rules for R code (structure_problem()) and the wording of
# every structure problem, whether R or C found it (describe_problem()).
# src/structure.c has the same rules for the step; a table-driven test
# (test-structure-rules.R) holds the two to the same verdict on every case.
#
# The rules (also in ?optimizer_rmsprop):
# - variables must have the built structure exactly: the same nesting, list
#   lengths and list names, numeric leaves (double, integer, logical; not
#   factors) of the same length and dim. Names of a numeric vector, and
#   dimnames, are labels, not structure: they are not compared.
# - gradients follow the variables, leniently: NULL for a variable or a whole
#   sub-list; an unnamed list matches a named one by position; an array's
#   gradient may have no dim; a gradient for a variable without dim may have
#   a vector's dim (every extent but at most one is 1, e.g. a one-column
#   matrix from crossprod()). Anything else that differs is a problem.
#
# relist_flat() is also run on workers (worker.R copies it), so it uses base
# R only.

is_numeric_leaf <- function(x) {
  (is.double(x) || is.integer(x) || is.logical(x)) && !is.factor(x)
}

# The depth limit keeps the recursion (here and in C) far from the C stack's
# end.
max_depth <- 100L

# Checks a variable structure and returns its skeleton, the path of every
# leaf (depth-first order) and the leaf lengths.
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
      check_path_names(nms, path, arg)
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

# "/" separates the levels of a variable's path ("layer/w"), so a list name
# holding "/" would make two variables share a path (list(a = list(b = 1))
# and list(`a/b` = 1) are both "a/b"), and exclude_from_weight_decay() or
# $variables could not tell them apart. Such names are refused when the
# optimizer is built (a classed error that names the element).
check_path_names <- function(nms, path, arg) {
  if (is.null(nms)) return(invisible())
  bad <- which(!is.na(nms) & grepl("/", nms, fixed = TRUE, useBytes = TRUE))
  if (length(bad)) {
    i <- bad[[1L]]
    rmsprop_abort("structure", sprintf(paste(
      "`%s`%s has an element named %s: \"/\" separates the levels of a variable's path, so",
      "list names cannot contain it (rename it, e.g. with `gsub(\"/\", \"_\", names(x))`)."),
      arg, path_suffix(path), encodeString(nms[[i]], quote = "\"")), argument = arg,
      path = join_path(c(path, as.character(i))))
  }
  invisible()
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

# The paths of every leaf of a skeleton, depth first, as make_skeleton()
# made them (a loaded optimizer's `paths` must agree).
skeleton_paths <- function(skeleton) {
  walk <- function(s, path) {
    if (!is.list(s)) return(join_path(path))
    nms <- names(s)
    unlist(lapply(seq_along(s), function(i) walk(s[[i]], c(path, element_label(nms, i)))),
           use.names = FALSE)
  }
  as.character(walk(skeleton, character()))
}

# The dims of every leaf of a skeleton, depth first (NULL for none).
leaf_dims <- function(skeleton) {
  if (!is.list(skeleton)) return(list(attr(skeleton, "leaf_dim")))
  unlist(lapply(skeleton, leaf_dims), recursive = FALSE)
}

# The lengths of every leaf of a skeleton, depth first.
leaf_lengths <- function(skeleton) {
  if (is.list(skeleton)) unlist(lapply(skeleton, leaf_lengths), use.names = FALSE)
  else skeleton[[1L]]
}

# Put the numbers of `flat` (depth-first order) back into the shape of
# `template` (numeric leaves in nested lists), keeping every attribute; a
# NULL leaf stays NULL and takes no numbers.
relist_flat <- function(flat, template) {
  pos <- 0L
  fill <- function(s) {
    if (is.null(s)) return(NULL)
    if (is.list(s)) {
      out <- lapply(s, fill)
      attributes(out) <- attributes(s)
      return(out)
    }
    n <- length(s)
    v <- flat[pos + seq_len(n)]
    pos <<- pos + n
    attributes(v) <- attributes(s)
    v
  }
  fill(template)
}

# ---- the matching rules, for R code -------------------------------------

# The dim of a vector laid out as an array: every extent but one is 1.
is_vector_dim <- function(d) sum(d != 1L) <= 1L

# The first problem of `x` against `skeleton` (variables, or gradients with
# `grads = TRUE`), as the list C's walk returns (see src/structure.c), or
# NULL when it matches. The step itself is checked by C; this is the rules
# written in R, which test-structure-rules.R holds C's walk to, case by
# case (no package code calls it today).
structure_problem <- function(skeleton, x, grads = FALSE) {
  index <- 0
  path_names <- character()
  path_index <- numeric()
  found <- NULL
  problem <- function(kind, sk, node, in_grads) {
    list(kind = kind, in_grads = in_grads, index = index, position = 0,
         path_names = path_names, path_index = path_index, skeleton = sk, found = node,
         extra = NULL)
  }
  walk <- function(sk, v, g) {
    if (is.list(sk)) {
      if (typeof(v) != "list") return(problem("not_list", sk, v, FALSE))
      if (length(v) != length(sk)) return(problem("list_length", sk, v, FALSE))
      if (!identical(names(v), names(sk))) return(problem("names", sk, v, FALSE))
      if (!is.null(g)) {
        if (typeof(g) != "list") return(problem("not_list", sk, g, TRUE))
        if (length(g) != length(sk)) return(problem("list_length", sk, g, TRUE))
        if (!is.null(names(g)) && !identical(names(g), names(sk))) {
          return(problem("names", sk, g, TRUE))
        }
      }
      d <- length(path_index) + 1L
      for (i in seq_along(sk)) {
        path_names[d] <<- if (is.null(names(sk))) NA_character_ else names(sk)[[i]]
        path_index[d] <<- i
        found <- walk(sk[[i]], v[[i]], if (is.null(g)) NULL else g[[i]])
        if (!is.null(found)) return(found)
      }
      length(path_names) <<- d - 1L
      length(path_index) <<- d - 1L
      return(NULL)
    }
    index <<- index + 1
    leaf_problem <- function(node) if (typeof(node) == "list") "not_leaf" else "type"
    if (!is_numeric_leaf(v)) return(problem(leaf_problem(v), sk, v, FALSE))
    if (length(v) != sk[[1L]]) return(problem("length", sk, v, FALSE))
    d <- attr(sk, "leaf_dim")
    if (!identical(dim(v), d)) return(problem("dim", sk, v, FALSE))
    if (!is.null(g)) {
      if (!is_numeric_leaf(g)) return(problem(leaf_problem(g), sk, g, TRUE))
      if (length(g) != sk[[1L]]) return(problem("length", sk, g, TRUE))
      gd <- dim(g)
      if (!is.null(gd) && !identical(gd, d) && !(is.null(d) && is_vector_dim(gd))) {
        return(problem("dim", sk, g, TRUE))
      }
    }
    NULL
  }
  if (grads) {
    # Gradients are matched against variables of the skeleton's own shape.
    walk(skeleton, skeleton_variables(skeleton), x)
  } else {
    walk(skeleton, x, NULL)
  }
}

# Zero variables of a skeleton's shape (what gradients are matched with).
skeleton_variables <- function(skeleton) {
  if (is.list(skeleton)) {
    out <- lapply(skeleton, skeleton_variables)
    attributes(out) <- attributes(skeleton)
    return(out)
  }
  v <- numeric(skeleton[[1L]])
  dim(v) <- attr(skeleton, "leaf_dim")
  v
}

# ---- wording a problem ---------------------------------------------------

# The path of the node a problem was found at, as "a/b/2".
problem_path <- function(p) {
  if (length(p$path_index) == 0L) return(NULL)
  nms <- p$path_names
  labels <- vapply(seq_along(nms), function(d) element_label(nms[d], 1L), character(1))
  unnamed <- is.na(nms) | !nzchar(nms)
  labels[unnamed] <- as.character(p$path_index[unnamed])
  join_path(labels)
}

names_text <- function(n) {
  if (is.null(n)) "no names" else paste(encodeString(n, quote = "\""), collapse = ", ")
}

dim_text <- function(d) {
  if (is.null(d)) "none" else paste0("c(", paste(d, collapse = ", "), ")")
}

# The sentence for a structure problem (kinds not_list, not_leaf,
# list_length, names, type, length, dim) found in `arg`.
describe_problem <- function(p, arg) {
  path <- problem_path(p)
  where <- if (is.null(path)) "the top level" else sprintf("\"%s\"", path)
  # Gradients are compared with the variables, variables with the build.
  built <- if (isTRUE(p$in_grads)) "the variables are" else "the optimizer was built on"
  sk <- p$skeleton
  x <- p$found
  switch(p$kind,
    not_list = sprintf("at %s %s a list of %s, but `%s` has %s", where, built,
                       count_text(length(sk)), arg, describe_value(x)),
    list_length = sprintf("at %s %s a list of %s, but `%s` has a list of %s", where, built,
                          count_text(length(sk)), arg, count_text(length(x))),
    names = sprintf("at %s the names differ: %s (%s), `%s` has (%s)", where,
                    if (isTRUE(p$in_grads)) "the variables have" else "built with",
                    names_text(names(sk)), arg, names_text(names(x))),
    not_leaf = sprintf("at %s %s a numeric array, but `%s` has %s", where, built, arg,
                       describe_value(x)),
    type = sprintf("at %s `%s` must be numeric (double, integer or logical), not %s", where, arg,
                   describe_value(x)),
    length = sprintf("at %s %s length %s, but `%s` has length %s", where, built,
                     count_text(sk[[1L]]), arg, count_text(length(x))),
    dim = sprintf("at %s %s dim %s, but `%s` has dim %s", where, built,
                  dim_text(attr(sk, "leaf_dim")), arg, dim_text(dim(x))),
    sprintf("`%s` does not have the structure the optimizer was built on", arg))
}
