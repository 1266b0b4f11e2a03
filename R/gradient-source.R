# Gradient sources: where the gradient of `fn` comes from, for minimize(),
# sweep_optimizers() and the engines' workers.
#
# Owns: turning the `gr` argument into a gradient source (gradient_source()),
# the registry of source kinds (gradient_source_kinds), and binding a source
# to `fn` in the process that uses it (source_bind()), which gives the two
# functions a step calls: loss(par, batch) and gradient(par, batch).
# A source is plain data (its kind, the user's `gr`, the packages it needs),
# so it travels to workers and into checkpoints' fingerprints; what binding
# builds from it (closures, AD tapes) never travels: every process binds its
# own. A new kind is a new file with its bind function plus one entry in the
# registry below.
# Must never: call `fn` or `gr` while making a source, or keep anything bound
# to a process (tapes, pointers, environments of a run) inside the source.
#
# The bind functions and everything they call run on workers too, where the
# package may be absent: those of the kinds without `namespace` are copied
# there with the worker code (worker.R) and may use base R only.

# kind -> how to bind it. `bind`: the name of function(source, fn, dots,
# has_data) returning function(par, batch) -> gradient shaped like par;
# `namespace`: where `bind` lives when it needs the package on a worker
# (NULL: a worker copy); `packages`: what a process must load before binding;
# `split_coordinates`: engines may split the coordinates of one gradient over
# workers (without data); `check`: NULL or the name of function(source, fn,
# par, batch, dots, has_data) run once before the first step to refuse what
# cannot work with a classed error.
gradient_source_kinds <- list(
  "function" = list(bind = "bind_function_gradient", namespace = NULL,
                    packages = character(0), split_coordinates = FALSE, check = NULL,
                    label = "the gradient `gr`"),
  numerical = list(bind = "bind_numerical_gradient", namespace = NULL,
                   packages = character(0), split_coordinates = TRUE, check = NULL,
                   label = "central differences"),
  ad = list(bind = "ad_bind", namespace = "rmsprop", packages = "RTMB",
            split_coordinates = FALSE, check = "ad_check",
            label = "automatic differentiation (RTMB)")
)

# The gradient source for minimize()'s `gr`: a function, NULL (central
# differences) or "ad" (RTMB's reverse-mode tape).
gradient_source <- function(gr, arg = "gr") {
  kind <- if (is.null(gr)) "numerical" else if (is.function(gr)) "function" else
    if (is.character(gr) && length(gr) == 1L && !is.na(gr) && gr == "ad") "ad" else NULL
  if (is.null(kind)) {
    rmsprop_abort("argument", sprintf(paste(
      "`%s` must be a function (the gradient of `fn`), NULL (central differences) or",
      "\"ad\" (exact gradients from RTMB's tape), not %s."), arg, describe_value(gr)),
      argument = arg)
  }
  spec <- gradient_source_kinds[[kind]]
  for (p in spec$packages) check_installed(p, sprintf("`%s = \"%s\"`", arg, gr))
  structure(list(kind = kind, gr = if (kind == "function") gr,
                 packages = spec$packages, namespace = spec$namespace,
                 bind = spec$bind, split_coordinates = spec$split_coordinates,
                 check = spec$check, label = spec$label),
            class = "rmsprop_gradient_source")
}

# A package that an option needs: a classed error with the install line.
check_installed <- function(pkg, what) {
  if (!requireNamespace(pkg, quietly = TRUE)) {
    rmsprop_abort("dependency", sprintf(
      "%s needs the %s package, which is not installed: install.packages(\"%s\").",
      what, pkg, pkg), package = pkg)
  }
  invisible(TRUE)
}

# What identifies a source in a checkpoint's fingerprint: its kind and the
# code of `gr` (formals and body, not its environment).
source_fingerprint <- function(source) {
  list(kind = source$kind,
       gr = if (is.function(source$gr)) function_fingerprint(source$gr))
}

# A function's code without its source references (which hold the file
# they came from and differ between sessions) or its environment.
function_fingerprint <- function(f) {
  if (is.primitive(f)) return(list(primitive = deparse(f)))
  f <- utils::removeSource(f)
  list(formals = formals(f), body = body(f))
}

# Runs the kind's check (if any) before the first step.
source_check <- function(source, fn, par, batch, dots, has_data) {
  if (is.null(source$check)) return(invisible(TRUE))
  check <- get(source$check, envir = asNamespace("rmsprop"))
  check(source, fn, par, batch, dots, has_data)
  invisible(TRUE)
}

# ---- binding (runs on workers too: base R and the copied functions only) ----

# list(loss = function(par, batch), gradient = function(par, batch)) for this
# process; without data batch is ignored (NULL), and `loss1`/`gradient1` are
# the same as functions of par alone (what a step without data calls). Without
# extra arguments the user's own functions are handed out where possible: a
# wrapper's call costs as much as the rest of a small step's bookkeeping.
source_bind <- function(source, fn, dots, has_data) {
  for (p in source$packages) {
    if (!requireNamespace(p, quietly = TRUE)) {
      stop(sprintf("the %s package is needed here (%s) but is not installed", p, source$label))
    }
  }
  bind <- if (is.null(source$namespace)) get(source$bind) else
    get(source$bind, envir = asNamespace(source$namespace))
  out <- list(loss = bind_loss(fn, dots, has_data), gradient = bind(source, fn, dots, has_data))
  if (!has_data) {
    plain <- !length(dots)
    out$loss1 <- if (plain) fn else function(par) fit_call(fn, par, NULL, dots, FALSE)
    g <- out$gradient
    out$gradient1 <- if (plain && is.function(source$gr)) source$gr else
      function(par) g(par, NULL)
  }
  out
}

bind_loss <- function(fn, dots, has_data) {
  if (length(dots)) return(function(par, batch) fit_call(fn, par, batch, dots, has_data))
  if (has_data) fn else function(par, batch) fn(par)
}

bind_function_gradient <- function(source, fn, dots, has_data) {
  gr <- source$gr
  if (length(dots)) return(function(par, batch) fit_call(gr, par, batch, dots, has_data))
  if (has_data) gr else function(par, batch) gr(par)
}

bind_numerical_gradient <- function(source, fn, dots, has_data) {
  loss <- bind_loss(fn, dots, has_data)
  function(par, batch) numerical_gradient(function(p) loss(p, batch), par)
}

# fn or gr with the batch (when there are data) and the extra arguments.
fit_call <- function(f, par, batch, dots, has_data) {
  args <- if (has_data) c(list(par, batch), dots) else c(list(par), dots)
  do.call(f, args)
}

# Central differences on the flattened parameters: 2 * length(par) calls of f.
numerical_gradient <- function(f, par) {
  relist_flat(numerical_partials(f, par, seq_along(unlist(par, use.names = FALSE))), par)
}

# The central-difference partial derivatives for the coordinates `idx` of the
# flattened parameters (engines split idx across workers; each partial is
# computed the same way wherever it runs).
numerical_partials <- function(f, par, idx) {
  x <- unlist(par, use.names = FALSE)
  g <- numeric(length(idx))
  for (j in seq_along(idx)) {
    i <- idx[j]
    h <- .Machine$double.eps^(1 / 3) * max(abs(x[i]), 1)
    up <- x
    down <- x
    up[i] <- x[i] + h
    down[i] <- x[i] - h
    f_up <- fit_check_loss(f(relist_flat(up, par)))
    f_down <- fit_check_loss(f(relist_flat(down, par)))
    g[j] <- (f_up - f_down) / (up[i] - down[i])
  }
  g
}
