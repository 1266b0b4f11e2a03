# The globals of a run: the helpers and objects that the user's functions
# (fn, gr, functions passed through `...`) find in the global environment
# or in attached packages, which workers do not have. They travel with the
# functions: each function whose environment is the global environment is
# sent as a copy whose environment is a new one holding the globals (its
# parent still the global environment), so on a worker a lookup finds them
# first and anything else as before (a function made by a function of the
# global environment gets a copy of its own environment, hanging off that
# new one). Found with globals::findGlobals(), as
# future does (the globals package is suggested: without it nothing is
# added, and a worker's "could not find" error says what to send).
#
# Owns: ship_globals() (the functions with their globals, for a payload) and
# missing_global_advice() (what a worker's error says when one is missing).
# Must never: change the user's functions or environments (only copies are
# changed), or send what workers already have (base R, R's default
# packages, namespaces, which load by name).

# x: a list with fn, source (a gradient source) or gr, dots, and optionally
# `more` (a list of further functions, such as a sweep's metrics and
# callback; NULL entries allowed) (a sweep's payload has gr, a run's has its
# source); returns it with
# every function of the global environment (or made by a function called
# from it: its environment's parent is the global environment) replaced by a
# copy that carries its globals.
ship_globals <- function(x) {
  if (!requireNamespace("globals", quietly = TRUE)) return(x)
  found <- new.env(parent = emptyenv())
  roots <- c(list(x$fn), if (is.function(x$source$gr)) list(x$source$gr),
             if (is.function(x$gr)) list(x$gr), Filter(is.function, x$dots),
             Filter(is.function, x$more))
  for (f in roots) collect_globals(f, found)
  if (!length(ls(found, all.names = TRUE))) return(x)
  genv <- new.env(parent = globalenv())
  copies <- new.env(parent = emptyenv())  # each environment copied once
  copies$from <- list()
  copies$to <- list()
  for (name in ls(found, all.names = TRUE)) {
    assign(name, rehome_function(get(name, envir = found), genv, copies), envir = genv)
  }
  x$fn <- rehome_function(x$fn, genv, copies)
  if (is.function(x$source$gr)) x$source$gr <- rehome_function(x$source$gr, genv, copies)
  if (is.function(x$gr)) x$gr <- rehome_function(x$gr, genv, copies)
  for (i in seq_along(x$dots)) x$dots[[i]] <- rehome_function(x$dots[[i]], genv, copies)
  for (i in seq_along(x$more)) {
    if (is.function(x$more[[i]])) x$more[[i]] <- rehome_function(x$more[[i]], genv, copies)
  }
  x
}

# A function of the global environment with its environment set to genv; a
# function whose environment hangs off the global environment with a copy of
# that environment hanging off genv; anything else unchanged.
rehome_function <- function(f, genv, copies) {
  if (!is.function(f) || is.primitive(f)) return(f)
  env <- environment(f)
  if (identical(env, globalenv())) {
    environment(f) <- genv
  } else if (!isNamespace(env) && !identical(env, genv) &&
             identical(parent.env(env), globalenv())) {
    k <- Position(function(e) identical(e, env), copies$from)
    if (is.na(k)) {
      copies$from <- c(copies$from, env)
      copies$to <- c(copies$to, list2env(as.list(env, all.names = TRUE), parent = genv))
      k <- length(copies$to)
    }
    environment(f) <- copies$to[[k]]
  }
  f
}

# Adds to `found` the globals of f (by name) that a worker lacks, and those
# of the global functions among them, once each.
collect_globals <- function(f, found) {
  if (!is.function(f) || is.primitive(f)) return(invisible())
  names <- tryCatch(
    suppressWarnings(globals::findGlobals(f, dotdotdot = "ignore")),
    error = function(e) character(0))
  for (name in names) {
    if (exists(name, envir = found, inherits = FALSE)) next
    where <- global_home(name, environment(f))
    if (is.null(where)) next
    value <- get(name, envir = where, inherits = FALSE)
    assign(name, value, envir = found)
    if (identical(where, globalenv())) collect_globals(value, found)
  }
  invisible()
}

# Where `name` is found from env when a worker would not find it there: the
# global environment, or an attached package other than R's default ones.
# NULL when it is found elsewhere first (a closure's own environment, a
# namespace, base R or a default package) or nowhere.
global_home <- function(name, env) {
  while (!identical(env, emptyenv())) {
    if (exists(name, envir = env, inherits = FALSE)) {
      if (identical(env, globalenv())) return(env)
      pkg <- attr(env, "name")
      if (is.character(pkg) && startsWith(pkg, "package:") &&
          !sub("^package:", "", pkg) %in% c("base", default_packages())) {
        return(env)
      }
      return(NULL)
    }
    env <- parent.env(env)
  }
  NULL
}

default_packages <- function() {
  c(getOption("defaultPackages"), "datasets", "utils", "grDevices", "graphics", "stats",
    "methods")
}

# The name a worker's error says it could not find (NA if none), from R's
# own messages "could not find function \"h\"" and "object 'h' not found".
missing_global <- function(message) {
  m <- regmatches(message, regexec("could not find function \"([^\"]+)\"", message))[[1]]
  if (length(m) == 2L) return(m[2L])
  m <- regmatches(message, regexec("object '([^']+)' not found", message))[[1]]
  if (length(m) == 2L) return(m[2L])
  NA_character_
}

# What to add to a worker's error when it names something missing.
missing_global_advice <- function(name) {
  sprintf(paste(
    "`%s` is not on the worker (workers have no copy of this session's global",
    "environment%s). Define it inside `fn`, pass it through `...`, or put it on the",
    "workers before the run: parallel::clusterExport(cl, \"%s\") for a cluster,",
    "mirai::everywhere({}, %s = %s) for mirai daemons."),
    name, if (requireNamespace("globals", quietly = TRUE))
      "; rmsprop sends the globals it can find, and this one it could not" else
      "; install the globals package and rmsprop sends those it finds",
    name, name, name)
}
