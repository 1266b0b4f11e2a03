# The "ad" gradient source: exact gradients of `fn` from RTMB's reverse-mode
# tape, for minimize(gr = "ad") (through gradient-source.R's registry) and
# for hand-written loops (ad_gradient()).
#
# Owns: building tapes of `fn` (ad_tape_build()), the cache of tapes of one
# bound gradient (one tape per batch size, ad_tape_cache()), the batch as
# the tape sees it (a matrix advector, or a data frame of advector columns
# whose as.matrix() stays on the tape), the check before the first step
# (ad_check()) and ad_gradient(). What cannot be taped is turned into
# classed errors by gradient-ad-errors.R.
# Must never: re-tape inside a step (a batch's values enter the tape through
# RTMB::DataEval and $force.update()); keep a tape anywhere but in the
# closure that uses it (tapes are external pointers: they neither survive
# saveRDS() nor travel to workers); leave RTMB's global tape settings
# changed; use RTMB without requireNamespace() (it is in Suggests).

# RTMB's settings for our tapes: matrix products as one atomic operation and
# vectorised arithmetic (an MLP's tape: 0.24 s and 14 ms per gradient,
# against 11 s and 137 ms with RTMB's defaults; DESIGN.md), and comparisons
# refused, so that a branch on a taped value is an error instead of a path
# silently frozen at the first batch.
ad_tape_settings <- list(comparison = "forbid", atomic = "enable", vectorize = "enable")

# Tapes built in this session, for tests that count them.
ad_counters <- new.env(parent = emptyenv())
ad_counters$tapes <- 0L
ad_tapes_built <- function() ad_counters$tapes

# The last cache ad_check() built, for the ad_bind() that follows it in the
# same process (the driver checks, then binds): its tapes are reused instead
# of built twice. One entry, replaced by the next check.
ad_checked <- new.env(parent = emptyenv())

#' Exact gradients from RTMB's tape
#'
#' `ad_gradient()` tapes `fn` once with the 'RTMB' package (on CRAN) and
#' returns a function that gives the exact gradient of `fn`, shaped like
#' `par` (names, `dim`, nested lists), for loops written by hand:
#' `g <- ad_gradient(fn, par); par <- opt$step(g(par, batch), par)`.
#' `minimize(par, fn, gr = "ad")` uses the same tapes.
#'
#' The loss is written in plain R: arithmetic, matrix products (`%*%`,
#' `crossprod()`), `exp()`, `log()`, `tanh()`, `plogis()`, `sqrt()`,
#' `abs()`, `sum()`, `mean()`, `rowSums()`, `colSums()`, `max()`, `min()`,
#' and column and row subsetting of the batch (`batch$y`, `batch[, -1]`,
#' `as.matrix(batch[, cols])`, `batch[, 1]` of a matrix). The tape records
#' the operations once and replays them: an `if` on a value that depends on
#' the parameters or on the batch (and `ifelse()`, `pmax()`, comparisons),
#' or a function RTMB cannot tape (`round()`, `range()`, ...) is a classed
#' error (`rmsprop_error_ad`) that names the operation and what to write
#' instead. While it tapes, `fn` finds RTMB's versions of the base and stats
#' functions RTMB extends (`matrix()`, `rowSums()`, `crossprod()`,
#' `plogis()`, `dpois()`, ...), as if `library(RTMB)` had been called.
#' Before the first gradient the tape is replayed at other parameter values
#' and other rows: when it does not give what `fn` gives (a choice made by
#' values was frozen at taping, such as indexing a matrix by labels read
#' from the batch, `P[cbind(i, batch$label)]`; or `fn` draws random
#' numbers), that is an error too.
#'
#' With a batch, the batch's values enter the tape as data: one tape is
#' built per batch size (the first call with a new number of rows builds
#' it; a short last batch gets its own), and every later call only replays
#' it. Tapes live in the returned function, in this R process: a function
#' saved with `saveRDS()` or sent to another process tapes again where it is
#' used.
#'
#' @param fn The loss: `fn(par, ...)` or `fn(par, batch, ...)`, returning one
#'   number. It takes a batch when it has a second argument without a
#'   default that is not given in `...`. The batch is a data frame of
#'   numeric columns (matrix columns made with `I()` allowed) or a numeric
#'   matrix.
#' @param par The parameters: a numeric vector, matrix or array, or a
#'   (nested) list of them, as in [optimizer_rmsprop()]. The gradient has its
#'   shape.
#' @param ... Further arguments of `fn`, fixed for every call (they are
#'   constants on the tape).
#' @return A function `function(par)` or `function(par, batch)` returning the
#'   gradient of `fn` at `par` (on `batch`), shaped like `par`.
#' @seealso [minimize()] with `gr = "ad"`.
#' @examples
#' if (requireNamespace("RTMB", quietly = TRUE)) {
#'   # Logistic regression on mini-batches of a data frame
#'   set.seed(1)
#'   d <- data.frame(y = rbinom(100, 1, 0.5), x1 = rnorm(100), x2 = rnorm(100))
#'   loss <- function(par, batch) {
#'     eta <- par$b + as.matrix(batch[, -1]) %*% par$w
#'     mean(log1p(exp(eta)) - batch$y * eta)
#'   }
#'   par <- list(w = c(0, 0), b = 0)
#'   g <- ad_gradient(loss, par)
#'   g(par, d[1:10, ])
#'
#'   opt <- optimizer_rmsprop(learning_rate = 0.01)
#'   for (epoch in 1:5) {
#'     for (rows in split(1:100, rep(1:4, each = 25))) {
#'       par <- opt$step(g(par, d[rows, ]), par)
#'     }
#'   }
#'   par
#' }
#' @export
ad_gradient <- function(fn, par, ...) {
  check_installed("RTMB", "ad_gradient()")
  if (!is.function(fn)) {
    rmsprop_abort("argument", sprintf("`fn` must be a function, not %s.", describe_value(fn)),
                  argument = "fn")
  }
  make_skeleton(par, "par")
  dots <- list(...)
  has_data <- ad_takes_batch(fn, dots)
  grad <- ad_bind(NULL, fn, dots, has_data)
  # Without data there is a single tape: build it now, so that what cannot
  # be taped is an error here rather than at the first step.
  cache <- environment(grad)$cache
  if (!has_data) {
    ad_check(NULL, fn, par, NULL, dots, FALSE, cache = cache)
    return(function(par) grad(par, NULL))
  }
  # With data the first batch is needed to tape: the first call checks.
  checked <- FALSE
  function(par, batch) {
    if (!checked) {
      ad_check(NULL, fn, par, batch, dots, TRUE, cache = cache)
      checked <<- TRUE
    }
    grad(par, batch)
  }
}

# Does `fn` take a batch? When it has a second argument without a default
# that `...` does not give (by name, or by position for unnamed ones).
ad_takes_batch <- function(fn, dots) {
  f <- formals(fn)
  if (is.null(f)) f <- formals(args(fn))
  f <- f[names(f) != "..."]
  nms <- names(dots)
  if (!is.null(nms)) f <- f[!names(f) %in% nms[nzchar(nms)]]
  no_default <- vapply(f, function(a) identical(a, quote(expr = )), logical(1))
  free <- sum(no_default) - sum(if (is.null(nms)) rep(TRUE, length(dots)) else !nzchar(nms))
  free >= 2L
}

# ---- binding: the function a step calls ------------------------------------

# function(par, batch) -> the exact gradient of fn at par (on batch), shaped
# like par. Tapes are built on first use, one per batch size, and kept in
# this closure; a cache that ad_check() just built for the same fn and
# extra arguments is taken over.
ad_bind <- function(source, fn, dots, has_data) {
  cache <- ad_take_checked(fn, dots, has_data)
  if (is.null(cache)) cache <- ad_tape_cache(fn, dots, has_data)
  function(par, batch) {
    theta <- unlist(par, use.names = FALSE)
    if (!is.double(theta)) theta <- as.double(theta)
    tape <- ad_tape_for(cache, par, theta, batch)
    if (has_data) {
      cache$state$values <- ad_batch_values(batch)
      tape$gradient$force.update()
    }
    relist_flat(tape$gradient(theta), par)
  }
}

# An empty cache of tapes for one (fn, extra arguments): `tapes` by batch
# size (a single entry "0" without data), `state$values` the current
# batch's numbers, read by the tapes' DataEval node. `template` is the
# structure of par the tapes were built for.
ad_tape_cache <- function(fn, dots, has_data) {
  cache <- new.env(parent = emptyenv())
  cache$fn <- fn
  cache$dots <- dots
  cache$has_data <- has_data
  cache$tapes <- list()
  cache$template <- NULL
  cache$state <- new.env(parent = emptyenv())
  # This session's counters, by reference: a cache read back from a file
  # (or in another process) holds a copy instead, and its tapes are dead
  # pointers (ad_tape_for() then tapes again).
  cache$home <- ad_counters
  cache
}

# The tape for this batch's size, built when there is none yet (or when the
# batch's columns or the parameters' structure differ from the ones it was
# built for).
ad_tape_for <- function(cache, par, theta, batch) {
  if (is.null(cache$template) || length(theta) != cache$n_par ||
      !identical(cache$home, ad_counters)) ad_reset(cache, par, theta)
  key <- if (cache$has_data) as.character(NROW(batch)) else "0"
  tape <- cache$tapes[[key]]
  if (is.null(tape) || !ad_layout_matches(tape$layout, batch)) {
    tape <- ad_tape_build(cache, par, batch)
    cache$tapes[[key]] <- tape
  }
  tape
}

# New parameters' structure (or a cache restored from a file): the tapes
# built so far are for another one, or dead.
ad_reset <- function(cache, par, theta) {
  cache$home <- ad_counters
  cache$template <- par
  cache$n_par <- length(theta)
  cache$tapes <- list()
}

# Take over the cache ad_check() built for this fn and these extra
# arguments (identical() returns at once for the same objects).
ad_take_checked <- function(fn, dots, has_data) {
  entry <- ad_checked$cache
  if (is.null(entry) || !identical(entry$fn, fn) || !identical(entry$dots, dots) ||
      !identical(entry$has_data, has_data)) return(NULL)
  ad_checked$cache <- NULL
  entry
}

# ---- the check before the first step ---------------------------------------

# Tapes `fn` at the first batch (so that what cannot be taped is a classed
# error before any step) and replays the tape away from where it was
# recorded: at other parameter values, on the batch's rows in reverse order
# with its first row replaced by its last (a permutation alone would leave
# every sum over rows as it was), the tape must give what `fn` gives, or
# something in `fn` was frozen at taping (labels used as a matrix index,
# random numbers). The tape is kept for the ad_bind() that follows in this
# process (or in `cache`).
ad_check <- function(source, fn, par, batch, dots, has_data, cache = NULL) {
  keep <- is.null(cache)
  if (keep) cache <- ad_tape_cache(fn, dots, has_data)
  theta <- as.double(unlist(par, use.names = FALSE))
  ad_reset(cache, par, theta)
  tape <- ad_tape_build(cache, par, batch, keep_value = TRUE)
  ad_check_replay(cache, tape$value, par, theta, batch)
  tape$value <- NULL
  cache$tapes[[if (has_data) as.character(NROW(batch)) else "0"]] <- tape
  if (keep) ad_checked$cache <- cache
  invisible(TRUE)
}

ad_check_replay <- function(cache, value_tape, par, theta, batch) {
  k <- seq_along(theta)
  moved <- theta * (1 + 0.1 * sin(k)) + 0.01 * cos(k)
  other <- NULL
  if (cache$has_data) {
    n <- NROW(batch)
    other <- batch[c(rev(seq_len(n))[-n], n), , drop = FALSE]
    cache$state$values <- ad_batch_values(other)
    value_tape$force.update()
  }
  for (th in list(moved, theta)) {
    direct <- tryCatch(suppressWarnings(
      fit_call(cache$fn, relist_flat(th, par), other, cache$dots, cache$has_data)),
      error = function(e) NULL)
    if (!is.numeric(direct) || length(direct) != 1L || !is.finite(direct)) next
    taped <- value_tape(th)
    if (!isTRUE(abs(taped - direct) <= 1e-7 * max(1, abs(direct)))) {
      ad_abort_replay(taped, direct)
    }
    break
  }
  invisible(TRUE)
}

# ---- taping ---------------------------------------------------------------

# A tape of the gradient of fn for the structure of `par` and the layout of
# `batch`: list(gradient, value (the loss's own tape, kept for the check
# only), layout).
ad_tape_build <- function(cache, par, batch, keep_value = FALSE) {
  layout <- if (cache$has_data) ad_batch_layout(batch) else NULL
  if (cache$has_data) cache$state$values <- ad_batch_values(batch)
  template <- cache$template
  state <- cache$state
  fn <- ad_rtmb_versions(cache$fn)
  dots <- cache$dots
  has_data <- cache$has_data
  taped_fn <- function(theta) {
    p <- ad_relist(theta, template)
    b <- if (has_data) ad_batch(RTMB::DataEval(function() state$values), layout)
    ad_check_value(fit_call(fn, p, b, dots, has_data))
  }
  theta <- as.double(unlist(par, use.names = FALSE))
  value <- ad_with_settings(ad_catch(RTMB::MakeTape(taped_fn, theta), fn))
  ad_counters$tapes <- ad_counters$tapes + 1L
  # The gradient's tape, with RTMB's optimisation pass (it drops what does
  # not reach the result: about 10-20% off each gradient of an MLP, for
  # the time of one or two gradients, once).
  gradient <- value$jacfun()
  gradient$simplify("optimize")
  list(gradient = gradient, value = if (keep_value) value, layout = layout)
}

# Runs expr with our tape settings and puts RTMB's global ones back after.
# While it runs, RTMB is on the search path, as if the user had called
# library(RTMB): `fn` then finds RTMB's versions of matrix(), colSums(),
# crossprod(), plogis(), dpois() and the like, which keep taped values on
# the tape where base R's would drop them. It is taken off again after,
# unless the user had attached it.
ad_with_settings <- function(expr) {
  old <- RTMB::TapeConfig()
  on.exit(RTMB::TapeConfig(old), add = TRUE)
  do.call(RTMB::TapeConfig, ad_tape_settings)
  if (!"package:RTMB" %in% search()) {
    attachNamespace("RTMB", pos = 2L)
    on.exit(detach("package:RTMB", character.only = TRUE), add = TRUE)
  }
  expr
}

# `fn` seeing RTMB's versions of the base and stats functions RTMB
# overloads (matrix(), rowSums(), crossprod(), plogis(), ...) wherever it
# would find base's or stats' own: attaching RTMB is not enough for code
# whose environment descends from a namespace (a package's, or testthat's),
# which finds base's versions before the search path. A function of that
# name that the user defined stays theirs.
ad_rtmb_versions <- function(fn) {
  env <- environment(fn)
  if (is.null(env)) return(fn)
  shadow <- new.env(parent = env)
  for (name in ad_rtmb_overloads()) {
    found <- get0(name, envir = env, mode = "function")
    if (is.null(found) || identical(found, get0(name, envir = .BaseNamespaceEnv)) ||
        identical(found, get0(name, envir = asNamespace("stats")))) {
      assign(name, getExportedValue("RTMB", name), envir = shadow)
    }
  }
  # A matrix kept with I() (a data frame's matrix column, read as a constant
  # of fn's environment) has class "AsIs", which RTMB's %*% methods do not
  # take: its product with a taped value would fall back to base R's and
  # leave the tape. The product sees such a matrix without the class.
  if (identical(get0("%*%", envir = env, mode = "function"), base::`%*%`)) {
    assign("%*%", ad_matrix_product, envir = shadow)
  }
  environment(fn) <- shadow
  fn
}

ad_matrix_product <- function(x, y) {
  if (inherits(x, "AsIs")) x <- unclass(x)
  if (inherits(y, "AsIs")) y <- unclass(y)
  x %*% y
}

# RTMB's exports that replace a function of base or stats (once a session).
ad_rtmb_overloads <- function() {
  if (is.null(ad_counters$overloads)) {
    exports <- getNamespaceExports("RTMB")
    stats <- asNamespace("stats")
    keep <- vapply(exports, function(n) {
      !startsWith(n, ".") && (exists(n, envir = .BaseNamespaceEnv, inherits = FALSE) ||
                                exists(n, envir = stats, inherits = FALSE)) &&
        is.function(getExportedValue("RTMB", n))
    }, logical(1))
    ad_counters$overloads <- sort(exports[keep])
  }
  ad_counters$overloads
}

# The flattened parameters (an advector) put back into the structure of
# `template` with their names, dim and dimnames (relist() of an advector
# loses the dims; DESIGN.md).
ad_relist <- function(theta, template) {
  pos <- 0L
  fill <- function(s) {
    if (is.list(s)) {
      out <- lapply(s, fill)
      attributes(out) <- attributes(s)
      return(out)
    }
    n <- length(s)
    v <- theta[pos + seq_len(n)]
    pos <<- pos + n
    if (!is.null(dim(s))) dim(v) <- dim(s)
    if (!is.null(dimnames(s))) dimnames(v) <- dimnames(s)
    if (!is.null(names(s))) names(v) <- names(s)
    v
  }
  fill(template)
}

# ---- the batch on the tape -------------------------------------------------

# What a tape knows of its batch: its kind, rows, columns (names, and the
# dims of matrix columns) and how many numbers it holds.
ad_batch_layout <- function(batch) {
  if (is.data.frame(batch)) {
    cols <- unclass(batch)
    for (j in seq_along(cols)) {
      if (!is_numeric_leaf(cols[[j]]) || is.object(cols[[j]]) && !inherits(cols[[j]], "AsIs")) {
        ad_abort_batch_column(names(batch)[j], cols[[j]])
      }
    }
    lens <- lengths(cols, use.names = FALSE)
    return(list(kind = "frame", names = names(batch), n = nrow(batch),
                dims = lapply(cols, function(x) dim(x)), lengths = lens, size = sum(lens)))
  }
  if (is.matrix(batch) && is_numeric_leaf(batch)) {
    return(list(kind = "matrix", dim = dim(batch), colnames = colnames(batch),
                size = length(batch)))
  }
  rmsprop_abort("ad", sprintf(paste(
    "gr = \"ad\" tapes `fn` with its batch as a data frame of numeric columns or a numeric",
    "matrix; the batch is %s."), describe_value(batch)), argument = "data")
}

# Is this batch laid out as the one a tape was built for? (Rows are the
# cache's key; a data frame's column names and the number of values decide
# the rest.)
ad_layout_matches <- function(layout, batch) {
  if (is.null(layout)) return(TRUE)
  if (layout$kind == "matrix") return(identical(dim(batch), layout$dim))
  is.data.frame(batch) && identical(names(batch), layout$names) &&
    sum(lengths(batch, use.names = FALSE)) == layout$size
}

# The batch's numbers as the tape's DataEval node reads them: a double
# matrix as it is (no copy), a data frame's columns one after the other.
ad_batch_values <- function(batch) {
  if (is.data.frame(batch)) return(as.double(unlist(batch, use.names = FALSE)))
  if (is.double(batch)) batch else as.double(batch)
}

# The batch on the tape, from the DataEval node's values: a matrix advector
# with the batch's column names, or a data frame of advector columns of
# class "rmsprop_ad_batch" (its as.matrix() method keeps the values on the
# tape, where the data frame method would turn them into plain numbers).
ad_batch <- function(values, layout) {
  if (layout$kind == "matrix") {
    dim(values) <- layout$dim
    if (!is.null(layout$colnames)) dimnames(values) <- list(NULL, layout$colnames)
    return(values)
  }
  cols <- vector("list", length(layout$names))
  pos <- 0L
  for (j in seq_along(cols)) {
    v <- values[pos + seq_len(layout$lengths[[j]])]
    pos <- pos + layout$lengths[[j]]
    if (!is.null(layout$dims[[j]])) dim(v) <- layout$dims[[j]]
    cols[[j]] <- v
  }
  names(cols) <- layout$names
  attr(cols, "row.names") <- .set_row_names(layout$n)
  class(cols) <- c("rmsprop_ad_batch", "data.frame")
  cols
}

#' @export
as.matrix.rmsprop_ad_batch <- function(x, ...) {
  cols <- unclass(x)
  n <- attr(x, "row.names")
  n <- if (is.integer(n) && length(n) == 2L && is.na(n[[1L]])) abs(n[[2L]]) else length(n)
  labels <- character(0)
  for (j in seq_along(cols)) {
    d <- dim(cols[[j]])
    labels <- c(labels, if (is.null(d)) names(cols)[j] else
      if (!is.null(colnames(cols[[j]]))) colnames(cols[[j]]) else
        paste(names(cols)[j], seq_len(d[2L]), sep = "."))
    dim(cols[[j]]) <- NULL
  }
  m <- do.call(c, unname(cols))
  dim(m) <- c(n, length(m) %/% max(n, 1L))
  dimnames(m) <- list(NULL, labels)
  m
}
