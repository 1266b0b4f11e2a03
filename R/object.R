# The object machinery shared by optimizer_rmsprop() and
# optimizer_loss_scale(): an environment with a class (reference semantics,
# like a keras3 optimizer or an R6 object) whose methods are thin closures
# over a private environment, plus active bindings for the properties that
# change.
#
# Owns: building the public object (attach_object()), finding the private
# environment behind one (private_of()), `$` and `[[` (methods, properties,
# the constructor's arguments as read-only fields, a classed error with the
# nearest name for anything else), assignment (only `learning_rate`), and
# bringing objects saved by an older release up to date (their methods are
# closures of the old code: they are replaced by today's on first use).
# Must never: change an optimizer's numbers while migrating it.

# The layout of the object itself (not of the numeric state, which C
# versions): 2 since rmsprop 0.2.0; objects without it are 0.1.0's.
object_format <- 2L

# Builds the public environment around a private one made by
# optimizer_private() or loss_scale_private(), whose frames hold the methods
# and bindings (closures over that frame, byte-compiled). `.format` marks an
# object of today's layout, so `$` can take the fast road.
attach_object <- function(private, class) {
  self <- new.env(parent = emptyenv())
  link_private(private, self)
  methods <- private$methods
  bindings <- private$bindings
  rm(list = c("methods", "bindings"), envir = private)
  for (n in names(methods)) assign(n, methods[[n]], envir = self)
  for (n in names(bindings)) makeActiveBinding(n, bindings[[n]], self)
  assign(".format", object_format, envir = self)
  lockBinding(".format", self)
  for (n in names(methods)) lockBinding(n, self)
  lockEnvironment(self)
  class(self) <- class
  self
}

link_private <- function(private, self) {
  if (!identical(parent.env(private), asNamespace("rmsprop"))) {
    parent.env(private) <- asNamespace("rmsprop")
  }
  private$private <- private
  private$self <- self
  private$format <- object_format
}

# The private environment behind an object made by attach_object(), brought
# up to date first if it was saved by an older release.
private_of <- function(x) {
  f <- if (is.environment(x)) get0("step", envir = x, inherits = FALSE)
  if (!is.function(f) || is.primitive(f) ||
      !exists("private", envir = environment(f), inherits = FALSE)) {
    rmsprop_abort("argument", sprintf(
      "expected an optimizer made by optimizer_rmsprop() or optimizer_loss_scale(), not %s.",
      describe_value(x)), argument = "x")
  }
  private <- get("private", envir = environment(f))
  if (!identical(private$format, object_format)) migrate_object(x, private)
  private
}

# An object of rmsprop 0.1.0: its methods are closures of the old code
# (which call functions that no longer exist), and its private environment
# lacks what today's code keeps there. The numeric state is migrated by C
# (state.c) on first use. Its public environment is locked and has no
# `.format`, so every `$` on it takes the slower road (object_field()),
# which hands out today's methods, kept in the private environment, instead
# of the old ones. (Setting their environment makes them interpreted: only
# old objects pay.)
migrate_object <- function(self, private) {
  link_private(private, self)
  fresh <- if (inherits(self, "rmsprop_loss_scale_optimizer")) {
    loss_scale_private(NULL, list())
  } else {
    optimizer_private(list(), NULL)
  }
  private$current_methods <- lapply(fresh$methods, function(f) {
    environment(f) <- private
    f
  })
  invisible(private)
}

# `$` and `[[` (below): methods and active bindings first (the hot path:
# `opt$step`), then fields. `.format` is absent only on objects of an older
# release. The body is written out in each method: one closure call less on
# every step.
# `value` is what `.subset2()` found (an active binding is read once only).
object_field <- function(x, name, value = NULL) {
  private <- private_of(x)
  if (!is.null(value)) {
    # An object of an older release: today's method in place of its own (an
    # active binding was read once already, and stays).
    current <- private$current_methods
    if (is.character(name) && name %in% names(current) && !bindingIsActive(name, x)) {
      return(current[[name]])
    }
    return(value)
  }
  if (!(is.character(name) && length(name) == 1L && !is.na(name))) {
    rmsprop_abort("field", "an optimizer's fields are reached by name, e.g. `opt$rho`.",
                  argument = "name")
  }
  fields <- object_fields(private)
  if (name %in% names(fields)) return(fields[[name]]())
  known <- unique(c(setdiff(ls(x, sorted = TRUE), ".format"), names(fields)))
  nearest <- known[which.min(utils::adist(name, known, ignore.case = TRUE))]
  rmsprop_abort("field", sprintf(
    "an optimizer has no field or method `%s`; did you mean `%s`? (It has: %s.)",
    name, nearest, paste(sort(known), collapse = ", ")), argument = "name", field = name,
    suggestion = nearest)
}

# The read-only fields of an object: the constructor's arguments (and, for
# objects of an older release, which lack its active binding, the learning
# rate of the last step), each as a function (so nothing is computed until
# it is read).
object_fields <- function(private) {
  if (!is.null(private$inner)) {
    inner <- private$inner
    return(list(
      initial_scale = function() private$config$initial_scale,
      dynamic_growth_steps = function() private$config$dynamic_growth_steps,
      name = function() private$config$name,
      last_learning_rate = function() inner$last_learning_rate))
  }
  config <- private$config
  fields <- lapply(setdiff(names(config), "learning_rate"), function(n) {
    force(n)
    function() config[[n]]
  })
  names(fields) <- setdiff(names(config), "learning_rate")
  c(fields, list(last_learning_rate = function() last_learning_rate(private)))
}

#' @export
`$.rmsprop_optimizer` <- function(x, name) {
  value <- .subset2(x, name)
  if (is.null(value) || is.null(.subset2(x, ".format"))) object_field(x, name, value) else value
}

#' @export
`[[.rmsprop_optimizer` <- function(x, i, ...) {
  value <- .subset2(x, i)
  if (is.null(value) || is.null(.subset2(x, ".format"))) object_field(x, i, value) else value
}

#' @export
`$.rmsprop_loss_scale_optimizer` <- `$.rmsprop_optimizer`

#' @export
`[[.rmsprop_loss_scale_optimizer` <- `[[.rmsprop_optimizer`

#' @export
`$<-.rmsprop_optimizer` <- function(x, name, value) {
  assign_property(x, name, value)
}

#' @export
`[[<-.rmsprop_optimizer` <- function(x, name, value) {
  assign_property(x, name, value)
}

#' @export
`$<-.rmsprop_loss_scale_optimizer` <- function(x, name, value) {
  assign_property(x, name, value)
}

#' @export
`[[<-.rmsprop_loss_scale_optimizer` <- function(x, name, value) {
  assign_property(x, name, value)
}

#' @exportS3Method utils::.DollarNames rmsprop_optimizer
.DollarNames.rmsprop_optimizer <- function(x, pattern = "") {
  all <- c(setdiff(ls(x), ".format"), names(object_fields(private_of(x))))
  sort(unique(grep(pattern, all, value = TRUE)))
}

#' @exportS3Method utils::.DollarNames rmsprop_loss_scale_optimizer
.DollarNames.rmsprop_loss_scale_optimizer <- .DollarNames.rmsprop_optimizer

# Only `learning_rate` is assignable (an active binding that checks the
# value); anything else is a classed error instead of base R's "locked
# binding" message.
assign_property <- function(x, name, value) {
  private_of(x)
  if (!identical(name, "learning_rate")) {
    rmsprop_abort("argument", sprintf(
      "`%s` cannot be assigned on an optimizer; only `learning_rate` can.",
      if (is.character(name) && length(name) == 1L) shown_name(name) else "that"), argument = "name")
  }
  assign("learning_rate", value, envir = x)
  x
}

read_only <- function(what, hint = NULL) {
  rmsprop_abort("argument", sprintf("`%s` is read-only%s.", what,
                                    if (is.null(hint)) "" else paste0("; ", hint)),
                argument = what)
}
