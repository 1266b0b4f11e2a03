# The object machinery shared by optimizer_rmsprop() and
# optimizer_loss_scale(). An optimizer is an environment with a class
# (reference semantics, like a keras3 optimizer) holding one binding,
# `.data`: an environment of plain data (the configuration, the learning
# rate, the structure it was built on, the external pointer to the numeric
# state; for the loss-scale wrapper the inner optimizer, the scale and its
# counter). It holds no code (SPEC B): `$` (the S3 method of this installed
# package) hands out the package's methods bound to the object's data, so
# saving an optimizer writes data only, and loading one runs none of its
# content. The one exception is data the user gave: a learning-rate
# schedule or function is a closure, and the optimizer calls it (see
# ?optimizer_rmsprop, "Saving and loading").
#
# Owns: building an object (new_object()), the gate of `$` (C_object_data,
# src/object.c: the data of an object checked in this session), checking an
# object met for the first time in a session (object_open(): a loaded,
# unserialized or older object; nothing in it is evaluated before it is
# checked, and a damaged or crafted one is a classed error), the objects of
# 0.1.0 and 0.2.0 (their methods were closures; the closures are never
# called: their data is used with today's methods), `$`, `[[` and their
# assignment forms (only `learning_rate`), and the member names for
# completion.
# Must never: call a closure or read a binding of an object before C has
# said it is plain data; change an optimizer's numbers while opening it.

# The layout of the object (not of the numeric state, which C versions):
# 3 since objects hold data only; 0.1.0 and 0.2.0 objects carried closures.
object_format <- 3L

# Nesting allowed in an object's data (a skeleton is at most max_depth
# levels, plus its attributes).
object_max_depth <- 300L

# A new object around a data environment made by the constructors.
new_object <- function(data, class) {
  assign("format", object_format, envir = data)
  .Call(C_object_mark, data)
  # The enclosure is the package's namespace only so that readRDS() loads
  # the installed package (its `$` method) in a fresh session: a namespace
  # is saved as its name, never as its code.
  self <- new.env(hash = FALSE, parent = asNamespace("rmsprop"))
  assign(".data", data, envir = self)
  lockEnvironment(self, bindings = TRUE)
  class(self) <- class
  self
}

# The data environment behind an optimizer, checked (and migrated) first if
# this is its first use in this session; a classed error for anything that
# is not an optimizer.
private_of <- function(x) {
  data <- .Call(C_object_data, x, "x")
  if (is.null(data)) data <- object_open(x)
  data
}

# ---- opening an object: loaded, unserialized, or of an older release ------

object_damaged <- function(what) {
  rmsprop_abort("format", sprintf(paste(
    "this is not an optimizer this version of rmsprop can use: %s. (Was the file damaged, or",
    "not written by rmsprop?)"), what), argument = "x")
}

# What a class of object keeps in its data: the fields today's code reads
# and writes.
object_fields_of <- function(x) {
  if (inherits(x, "rmsprop_loss_scale_optimizer")) {
    c("inner", "config", "scale", "counter")
  } else {
    c("config", "lr", "ptr", "skeleton", "paths", "exclusions")
  }
}

# Checks an object met for the first time in this session and marks it as
# checked; returns its data environment. Everything is looked at from C
# first (src/object.c): no binding of the file is read by R until C has said
# it is plain data, so a crafted file cannot run code here.
object_open <- function(x) {
  if (!inherits(x, c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer")) ||
      !is.environment(x)) {
    rmsprop_abort("argument", sprintf(
      "expected an optimizer made by optimizer_rmsprop() or optimizer_loss_scale(), not %s.",
      describe_value(x)), argument = "x")
  }
  found <- .Call(C_object_find, x)
  if (!is.null(found$problem)) object_damaged(found$problem)
  data <- found$data
  fields <- .Call(C_object_fields, data, object_fields_of(x))
  if (isTRUE(fields$locked_env)) object_damaged("its data is locked")
  bad <- nzchar(fields$problems)
  if (any(bad)) {
    object_damaged(sprintf("its field `%s` is %s", names(fields$problems)[bad][[1L]],
                           fields$problems[bad][[1L]]))
  }
  if (found$layout == 3L) {
    fmt <- .Call(C_object_fields, data, "format")
    if (nzchar(fmt$problems) || !identical(fmt$values$format, object_format)) {
      object_damaged("its layout is not one this version knows")
    }
  }
  if (inherits(x, "rmsprop_loss_scale_optimizer")) {
    open_loss_scale(fields$values)
  } else {
    lr <- open_optimizer(fields$values)
    # Everything was checked: now the schedule made anew replaces the saved
    # closure (in both places, as set_learning_rate() keeps them).
    if (!identical(lr, fields$values$lr)) {
      config <- fields$values$config
      if (inherits(config$learning_rate, "rmsprop_schedule")) config$learning_rate <- lr
      assign("config", config, envir = data)
      assign("lr", lr, envir = data)
    }
  }
  .Call(C_object_mark, data)
  data
}

# A learning-rate schedule made by this package is data (its kind and its
# settings), but a saved one is a closure: it is made anew by the installed
# package's constructor, so the saved closure's code never runs. A user's
# own function is the user's code: kept as it is.
rebuild_schedule <- function(f) {
  if (!inherits(f, "rmsprop_schedule")) return(f)
  env <- environment(f)
  parts <- if (is.environment(env)) .Call(C_object_fields, env, c("kind", "config"))
  if (is.null(parts) || any(nzchar(parts$problems)) ||
      data_kind(parts$values$kind) != "data" || data_kind(parts$values$config) != "data") {
    object_damaged("its learning-rate schedule is not one this package makes")
  }
  kind <- parts$values$kind
  config <- parts$values$config
  ctor <- if (is.character(kind) && length(kind) == 1L && !is.na(kind) && validEnc(kind)) {
    paste0("learning_rate_schedule_", kind)
  }
  if (is.null(ctor) || !ctor %in% getNamespaceExports("rmsprop") || !is.list(config) ||
      !identical(names(config), names(formals(get(ctor, envir = asNamespace("rmsprop")))))) {
    object_damaged("its learning-rate schedule is not one this package makes")
  }
  # Any error of the constructor (a damaged string included) means damage.
  tryCatch(do.call(get(ctor, envir = asNamespace("rmsprop")), config),
           error = function(e) {
             object_damaged("its learning-rate schedule's settings are out of range")
           })
}

# The kind of a value as C sees it (src/object.c, C_data_kind()).
data_kind <- function(x, allow = character()) {
  .Call(C_data_kind, x, allow, object_max_depth)
}

open_optimizer <- function(v) {
  if (data_kind(v$config, "learning_rate") != "data" || !is.list(v$config) ||
      !identical(names(v$config), config_names())) {
    object_damaged("its configuration is not the list optimizer_rmsprop() makes")
  }
  config <- tryCatch(check_config(v$config), rmsprop_error = function(e) {
    object_damaged(paste("its configuration is out of range:", conditionMessage(e)))
  })
  if (!identical(config, v$config)) object_damaged("its configuration is not stored as numbers")
  if (!validEnc(config$name)) object_damaged("its name is not a valid string")
  lr_kind <- data_kind(v$lr)
  lr <- if (lr_kind == "function") rebuild_schedule(v$lr) else v$lr
  lr_ok <- if (is.function(config$learning_rate)) lr_kind == "function" else
    lr_kind == "data" && is_single_number(v$lr) && is.double(v$lr) && v$lr >= 0
  if (!lr_ok) object_damaged("its learning rate does not match its configuration")
  if (data_kind(v$ptr) != "externalptr") object_damaged("its state is not a state pointer")
  for (n in c("skeleton", "paths", "exclusions")) {
    if (data_kind(v[[n]]) != "data") object_damaged(sprintf("its `%s` is not plain data", n))
  }
  # C checks the state list itself (and migrates format 1) on first use.
  state <- .Call(C_state_get, v$ptr)
  if (!identical(unname(state[["config"]]), unname(config_vector(config)))) {
    object_damaged("its configuration does not match its state")
  }
  open_structure(v, state)
  ex <- v$exclusions
  if (!is.list(ex) || !identical(names(ex), c("var_list", "var_names")) ||
      !(is.null(ex$var_list) || (is.character(ex$var_list) || is.numeric(ex$var_list)) &&
          !anyNA(ex$var_list)) ||
      !(is.null(ex$var_names) || is.character(ex$var_names) && !anyNA(ex$var_names))) {
    object_damaged("its weight-decay exclusions are not what exclude_from_weight_decay() keeps")
  }
  problem <- state_values_problem(state, config, v$paths)
  if (!is.null(problem)) object_damaged(paste("its state is impossible:", problem))
  lr
}

# The structure an optimizer was built on agrees with its state: both unset,
# or the skeleton's leaves, the paths and the state's segments agree.
open_structure <- function(v, state) {
  built <- !is.null(state[["offsets"]])
  if (is.null(v$skeleton) || !built) {
    if (!is.null(v$skeleton) || built || !is.null(v$paths)) {
      object_damaged("its structure and its state disagree about whether it is built")
    }
    return(invisible(TRUE))
  }
  ok <- tryCatch({
    lengths <- leaf_lengths(v$skeleton)
    is.character(v$paths) && identical(length(v$paths), length(lengths)) &&
      identical(as.double(lengths), diff(state[["offsets"]])) &&
      identical(v$paths, skeleton_paths(v$skeleton))
  }, error = function(e) FALSE)
  if (!isTRUE(ok)) object_damaged("its structure does not match its state")
  invisible(TRUE)
}

open_loss_scale <- function(v) {
  if (!inherits(v$inner, "rmsprop_optimizer") || data_kind(v$inner) != "environment") {
    object_damaged("its inner optimizer is not an optimizer")
  }
  private_of(v$inner)
  cfg <- v$config
  ok <- data_kind(cfg) == "data" && is.list(cfg) &&
    identical(names(cfg), c("initial_scale", "dynamic_growth_steps", "name")) &&
    is_single_number(cfg$initial_scale) && cfg$initial_scale > 0 &&
    is_single_number(cfg$dynamic_growth_steps) && cfg$dynamic_growth_steps >= 1 &&
    cfg$dynamic_growth_steps == round(cfg$dynamic_growth_steps) &&
    is.character(cfg$name) && length(cfg$name) == 1L && !is.na(cfg$name) && nzchar(cfg$name) &&
    validEnc(cfg$name)
  if (!ok) object_damaged("its configuration is not the list optimizer_loss_scale() makes")
  ok <- data_kind(v$scale) == "data" && data_kind(v$counter) == "data" &&
    is_single_number(v$scale) && v$scale > 0 && is_single_number(v$counter) &&
    v$counter >= 0 && v$counter == round(v$counter) && v$counter < cfg$dynamic_growth_steps
  if (!ok) object_damaged("its scale or step counter is out of range")
  invisible(TRUE)
}

# ---- `$` and `[[` ------------------------------------------------------------

# `$`: C's gate first (the data of an object checked in this session; NULL
# sends anything else, and names R cannot compare, to object_open() and
# object_name()); then the member. `step` is written out here: it is the
# hot path (one closure call less).
#' @export
`$.rmsprop_optimizer` <- function(x, name) {
  private <- .Call(C_object_data, x, name)
  if (is.null(private)) {
    private <- private_of(x)
    name <- object_name(name)
  }
  switch(name,
    step = function(grads, variables) {
      res <- .Call(C_step, private$ptr, grads, variables, private$skeleton, private$lr, 0L, 0)
      if (is.object(res) && inherits(res, "rmsprop_signal")) {
        step_signal(private, res, grads, variables, 0L, 0, FALSE)
      } else {
        res
      }
    },
    optimizer_member(x, private, name))
}

#' @export
`[[.rmsprop_optimizer` <- function(x, i, ...) `$.rmsprop_optimizer`(x, object_name(i))

#' @export
`$.rmsprop_loss_scale_optimizer` <- function(x, name) {
  private <- .Call(C_object_data, x, name)
  if (is.null(private)) {
    private <- private_of(x)
    name <- object_name(name)
  }
  loss_scale_member(x, private, name)
}

#' @export
`[[.rmsprop_loss_scale_optimizer` <- function(x, i, ...) {
  `$.rmsprop_loss_scale_optimizer`(x, object_name(i))
}

# A member name as `$` and `[[` take it: one string; a "bytes"-encoded one
# cannot be compared with the names (R refuses to translate it), so it is
# named in the error escaped.
object_name <- function(name) {
  if (!(is.character(name) && length(name) == 1L && !is.na(name))) {
    rmsprop_abort("field", "an optimizer's fields are reached by name, e.g. `opt$rho`.",
                  argument = "name")
  }
  if (Encoding(name) == "bytes") unknown_member(shown_name(name), character())
  name
}

# A classed error for a name an optimizer does not have, with the nearest.
unknown_member <- function(name, known) {
  nearest <- if (length(known)) known[which.min(utils::adist(name, known, ignore.case = TRUE))]
  rmsprop_abort("field", sprintf(
    "an optimizer has no field or method `%s`%s (It has: %s.)", name,
    if (is.null(nearest)) "." else sprintf("; did you mean `%s`?", nearest),
    paste(sort(known), collapse = ", ")), argument = "name", field = name,
    suggestion = nearest)
}

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
  all <- if (inherits(x, "rmsprop_loss_scale_optimizer")) loss_scale_members else
    c(optimizer_members, setdiff(config_names(), "learning_rate"))
  sort(unique(grep(pattern, all, value = TRUE)))
}

#' @exportS3Method utils::.DollarNames rmsprop_loss_scale_optimizer
.DollarNames.rmsprop_loss_scale_optimizer <- .DollarNames.rmsprop_optimizer

# Only `learning_rate` is assignable (checked like the constructor's
# argument); anything else is a classed error.
assign_property <- function(x, name, value) {
  private <- private_of(x)
  if (!identical(name, "learning_rate")) {
    rmsprop_abort("argument", sprintf(
      "`%s` cannot be assigned on an optimizer; only `learning_rate` can.",
      if (is.character(name) && length(name) == 1L) shown_name(name) else "that"), argument = "name")
  }
  if (inherits(x, "rmsprop_loss_scale_optimizer")) {
    private$inner$learning_rate <- value
  } else {
    set_learning_rate(private, value)
  }
  x
}

read_only <- function(what, hint = NULL) {
  rmsprop_abort("argument", sprintf("`%s` is read-only%s.", what,
                                    if (is.null(hint)) "" else paste0("; ", hint)),
                argument = what)
}
