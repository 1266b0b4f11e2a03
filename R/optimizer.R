# optimizer_rmsprop(): the constructor, its argument checks, the optimizer's
# methods and properties, weight-decay exclusions and clone().
#
# The object (object.R) is an environment of class "rmsprop_optimizer" whose
# methods are closures over a private environment holding: the
# configuration as a plain R list, the learning rate (`lr`), the structure
# it was built on (`skeleton`, `paths`, from structure.R), the weight-decay
# exclusions, and the external pointer whose `prot` list is the numeric
# state (src/state.c, layout in src/state_layout.h). All of it is ordinary
# R data, so saveRDS() and serialize() keep it; C rebuilds its cache on
# first use. A step takes the road in step.R.

#' RMSprop optimizer
#'
#' @description
#' Creates an RMSprop optimizer that computes exactly what Keras 3's RMSprop
#' computes (in double precision) for R numeric vectors, matrices, arrays and
#' lists of them. RMSprop keeps a decaying average of squared gradients and
#' divides each gradient by the square root of that average (plus `epsilon`),
#' optionally with plain (not Nesterov) momentum and, when `centered`, after
#' subtracting the squared average gradient, which estimates the variance.
#'
#' Gradients come first, variables second: `opt$step(grads, variables)`, as in
#' Keras' `optimizer$apply(grads, variables)`. The two have the same shape, so
#' swapped arguments cannot be detected: they run without error and return
#' nonsense. Name them when in doubt: `opt$step(grads = g, variables = w)`.
#'
#' @param learning_rate The step size: a number >= 0, a schedule made by one of
#'   the `learning_rate_schedule_*()` functions such as
#'   [learning_rate_schedule_exponential_decay()] (evaluated at the optimizer's
#'   call counter, starting at 0), or a function. A function without
#'   arguments is called once per call of `$step()`; a function of one
#'   argument is called with the call counter, like a schedule.
#' @param rho Discount factor in \[0, 1\] of the moving average of squared
#'   gradients.
#' @param momentum Momentum factor in \[0, 1\]. With 0 (the default) no
#'   momentum slot is kept.
#' @param epsilon Small positive constant added to the average of squared
#'   gradients inside the square root, for numerical stability (Keras'
#'   "epsilon hat").
#' @param centered If `TRUE`, the average of the gradients is tracked too and
#'   its square subtracted, so gradients are scaled by an estimate of their
#'   variance; costs one more slot.
#' @param weight_decay `NULL` or a number >= 0: decoupled weight decay,
#'   `v <- v - v * weight_decay * learning_rate`, applied before the update to
#'   every variable not excluded with `$exclude_from_weight_decay()`.
#' @param clipnorm `NULL` or a number > 0: each variable's gradient is rescaled
#'   so its L2 norm is at most this value.
#' @param clipvalue `NULL` or a number > 0: every gradient element is clamped
#'   to \[-clipvalue, clipvalue\].
#' @param global_clipnorm `NULL` or a number > 0: all gradients are rescaled
#'   together so their joint L2 norm is at most this value. At most one of
#'   `clipnorm`, `clipvalue` and `global_clipnorm` may be set.
#' @param use_ema If `TRUE`, an exponential moving average of every variable
#'   is kept (see `ema_momentum`); `$finalize_variable_values()` returns it.
#' @param ema_momentum Number in \[0, 1\]: weight of the old average in
#'   `average <- ema_momentum * average + (1 - ema_momentum) * value`. The
#'   first update copies the values.
#' @param ema_overwrite_frequency `NULL` or a whole number >= 1: with
#'   `use_ema`, every this many iterations the variables returned by
#'   `$step()` are replaced by their moving averages. With `NULL` they never
#'   are during training; call `$finalize_variable_values()` at the end.
#' @param name Name of the optimizer, a non-empty string; it prefixes the
#'   names of the state arrays in `$variables`.
#' @param ... Only for compatibility: `lr` is accepted as the old name of
#'   `learning_rate` (with a deprecation warning) and `decay` is ignored with
#'   a warning. Anything else is an error.
#' @param loss_scale_factor `NULL` or a number > 0. Gradients are divided by
#'   it before anything else; `$scale_loss(loss)` multiplies a loss by it.
#'   Useful when losses are scaled up to avoid underflow; see also
#'   [optimizer_loss_scale()] for a dynamic factor.
#' @param gradient_accumulation_steps `NULL` or a whole number >= 2. When set,
#'   gradients are summed over that many calls and the variables and slots
#'   change only on every `gradient_accumulation_steps`-th call, using the
#'   mean gradient. `$iterations` then counts those real updates.
#'
#' @return An optimizer object (an environment of class `rmsprop_optimizer`
#'   holding its data) with these methods and properties, all reached with
#'   `$`:
#' \describe{
#'   \item{`step(grads, variables)`, `apply(grads, variables)`}{One optimizer
#'     step: the gradients come first, as in Keras' `apply(grads,
#'     variables)` (a swapped call cannot be detected when the shapes agree).
#'     `variables` is a numeric vector, matrix or array, or a list (named or
#'     not, nested to any depth) of them; `grads` has the same structure (see
#'     "Matching gradients and variables" below). A `NULL` gradient (or a
#'     `NULL` in place of a whole sub-list) leaves its variables unchanged,
#'     with a warning. Returns the updated variables with the same structure,
#'     names, `dim` and `dimnames`; the caller's objects are never modified.
#'     Integer and logical values are taken as double. The first call builds
#'     the optimizer for that structure; later calls must match it. A
#'     gradient or a variable that holds `NA`, `NaN` or `Inf` is refused (an
#'     error naming the variable and the position; nothing changes): a
#'     non-finite value would poison the moving averages for good.}
#'   \item{`apply_gradients(grads_and_vars)`}{The same for a list of
#'     `list(gradient, variable)` pairs; returns the list of updated
#'     variables.}
#'   \item{`step_in_place(grads, variables)`}{The by-reference variant, for
#'     speed: the double vectors in `variables` are overwritten with their new
#'     values and returned invisibly. R shares memory between copies until
#'     one is modified, so every object that shares a vector with
#'     `variables` (for example `w2` after `w2 <- w`) changes too. Make a real
#'     copy first (e.g. `w <- w + 0`) if that matters. The variables must be
#'     plain double vectors in the caller's own memory and must not share
#'     memory with one another: an ALTREP vector (a compact sequence such as
#'     `as.double(1:n)`, a memory-mapped or wrapped vector), whose values R
#'     may answer from a description rather than from its memory, is refused
#'     with an error of class `rmsprop_error_variable` before anything
#'     changes; copy it first (`w <- w + 0`).}
#'   \item{`build(variables)`}{Creates the slots for this structure (done by
#'     the first step otherwise).}
#'   \item{`finalize_variable_values(variables)`}{The variables with their
#'     moving averages when `use_ema = TRUE` (unchanged before the first step
#'     or without EMA). The structure must be the one the optimizer was built
#'     on.}
#'   \item{`iterations`}{Number of updates so far (with gradient accumulation,
#'     real updates only).}
#'   \item{`learning_rate`}{The learning rate the next step uses. Assign a
#'     number, a schedule or a function with `opt$learning_rate <- x`; a
#'     number cannot replace a schedule or a function (as in Keras).}
#'   \item{`current_learning_rate()`}{The same number, as a method.}
#'   \item{`last_learning_rate`}{The learning rate the most recent call of
#'     `step()` used (`NA` before the first). A schedule or a function is
#'     evaluated once per call, so this is how a training loop records the
#'     rate without calling it again.}
#'   \item{`variables`}{A named list with a copy of every state array, in
#'     Keras order: `"<name>/iteration"` (the raw call counter),
#'     `"<name>/learning_rate"` (if numeric), then per variable path
#'     `"_average"` (EMA), `"_gradient_accumulator"`, `"_velocity"`,
#'     `"_momentum"` and `"_average_gradient"` arrays, each only when used.
#'     A variable's path is `"variable"` for a single array, otherwise its
#'     list names (or positions, when unnamed) joined with `"/"` (so list
#'     names cannot contain `"/"`: see "Matching gradients and variables").}
#'   \item{`load_variables(values)`}{Loads such a list (from this or another
#'     optimizer with the same configuration, built on the same structure)
#'     into this one. Every entry is checked before anything is used: a
#'     mismatch in count, names, types, lengths or dims, a value that is not
#'     finite, an iteration counter that is not a whole number in \[0, 2^53\],
#'     a negative velocity, or (centered) an average gradient whose square
#'     exceeds the velocity plus `epsilon` (states no optimizer can reach, from
#'     which every later step would give `NaN`) is an error of class
#'     `rmsprop_error_argument` naming the entry (in its `field`) that changes
#'     nothing.}
#'   \item{`get_config()`}{The constructor arguments as a named list;
#'     `do.call(optimizer_rmsprop, opt$get_config())` makes a fresh optimizer
#'     with the same settings. Exclusions from weight decay are not
#'     constructor arguments, so they are not in it (as in Keras): call
#'     `exclude_from_weight_decay()` on the new optimizer too, or use
#'     `clone()`, which keeps everything.}
#'   \item{`exclude_from_weight_decay(var_list = NULL, var_names = NULL)`}{
#'     Exempts variables from weight decay: `var_list` holds variable paths or
#'     positions in depth-first order, `var_names` regular expressions matched
#'     against the paths. Only before the optimizer is built; when it is
#'     built, a name or pattern that matches no variable gives a warning.
#'     `print()` shows the exclusions and the variables they match.}
#'   \item{`scale_loss(loss)`}{`loss * loss_scale_factor`, or `loss` unchanged.}
#'   \item{`clone()`}{An independent deep copy, state included.}
#'   \item{`name`, `rho`, `momentum`, `epsilon`, `centered`, `weight_decay`,
#'     `clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`, `ema_momentum`,
#'     `ema_overwrite_frequency`, `loss_scale_factor`,
#'     `gradient_accumulation_steps`}{The constructor's arguments, read-only
#'     (`opt$rho`). Reading a name the optimizer does not have (a typo such as
#'     `opt$stpe`) is an error of class `rmsprop_error_field` that suggests
#'     the nearest name.}
#' }
#'
#' @section Matching gradients and variables:
#' The variables must have the structure the optimizer was built on: the same
#' nesting, list lengths and list names, and numeric arrays of the same
#' length and `dim`. Names of a numeric vector and `dimnames` are labels,
#' not structure: they are not compared (the result keeps the variables'
#' own). Gradients follow the variables leniently:
#' * a `NULL` stands for a variable, or for a whole sub-list;
#' * an unnamed list of gradients matches a named list of variables by
#'   position (a named one must have the same names);
#' * the gradient of a matrix or array may come without `dim`, with the
#'   same length;
#' * the gradient of a variable without `dim` may have the `dim` of a vector
#'   laid out as an array (one column or one row, as `crossprod()` returns).
#'
#' Anything else that differs (another length, another `dim`, other names,
#' a list where a number array is expected) is an error of class
#' `rmsprop_error_structure` that says where (the variable's path) and what
#' differs.
#'
#' Paths are unambiguous: `"/"` separates their levels, so a list name that
#' contains `"/"` is refused when the optimizer is built (an error of class
#' `rmsprop_error_structure` naming the element). Otherwise
#' `list(a = list(b = 1))` and `list("a/b" = 1)` would both be `"a/b"`, and
#' `exclude_from_weight_decay("a/b")` could not say which it means; rename
#' such elements (e.g. `gsub("/", "_", names(x))`).
#' Every problem with an argument, a gradient or a structure is an error of
#' class `rmsprop_error` (and a more specific `rmsprop_error_*` class) raised
#' before anything changes: after an error the optimizer and the caller's
#' variables are as they were. Non-finite gradients and variables are such an
#' error. The optimizer survives [saveRDS()] and [serialize()] and continues
#' identically (see "Saving and loading"); it records the format of its
#' state, so a file saved by rmsprop 0.1.0 or 0.2.0 loads and continues, and a
#' file from a newer release that this one cannot read is an error of class
#' `rmsprop_error_format`.
#'
#' @section Saving and loading:
#' An optimizer survives [saveRDS()]/[readRDS()] and [serialize()] and
#' continues bit for bit. What is saved is data only: the configuration, the
#' state, the structure it was built on. Its methods are not saved: `$` hands
#' out the installed package's methods, bound to the object's data, so
#' loading an optimizer runs none of its content, and a file whose content
#' was edited to hold code (closures in place of methods, active bindings,
#' promises) runs none of it: before a loaded optimizer is first used, its
#' data is checked without evaluating anything, and anything that is not
#' plain data, out of range, or inconsistent with the state is an error of
#' class `rmsprop_error_format`. Files written by rmsprop 0.1.0 and 0.2.0
#' carried their methods as closures; those closures are never called, and
#' the files load and continue as they did. The learning rate is the one
#' place where a saved optimizer holds a function: a schedule made by a
#' `learning_rate_schedule_*()` function is saved as its kind and settings
#' and made anew by the installed package on loading, but a learning rate
#' that is your own function is your code, saved with the optimizer and
#' called when it steps: load such a file only from a source you trust.
#'
#' @seealso [optimizer_loss_scale()], [learning_rate_schedule_exponential_decay()],
#'   [minimize()]
#' @export
#' @examples
#' opt <- optimizer_rmsprop(learning_rate = 0.1)
#' w <- c(a = 1, b = -2)
#' for (i in 1:50) w <- opt$step(2 * w, w)   # minimise sum(w^2)
#' w
#' opt$iterations
#'
#' # Nested lists of matrices work the same way
#' params <- list(layer = list(w = matrix(1, 2, 2), b = c(0.5, 0.5)))
#' grads <- list(layer = list(w = matrix(0.1, 2, 2), b = c(1, -1)))
#' opt2 <- optimizer_rmsprop(momentum = 0.9, centered = TRUE)
#' params <- opt2$step(grads, params)
#' names(opt2$variables)
optimizer_rmsprop <- function(learning_rate = 0.001, rho = 0.9, momentum = 0, epsilon = 1e-07,
                              centered = FALSE, weight_decay = NULL, clipnorm = NULL,
                              clipvalue = NULL, global_clipnorm = NULL, use_ema = FALSE,
                              ema_momentum = 0.99, ema_overwrite_frequency = NULL,
                              name = "rmsprop", ..., loss_scale_factor = NULL,
                              gradient_accumulation_steps = NULL) {
  learning_rate <- resolve_dots(list(...), learning_rate, missing(learning_rate))
  config <- list(
    learning_rate = learning_rate, rho = rho, momentum = momentum, epsilon = epsilon,
    centered = centered, weight_decay = weight_decay, clipnorm = clipnorm,
    clipvalue = clipvalue, global_clipnorm = global_clipnorm, use_ema = use_ema,
    ema_momentum = ema_momentum, ema_overwrite_frequency = ema_overwrite_frequency,
    name = name, loss_scale_factor = loss_scale_factor,
    gradient_accumulation_steps = gradient_accumulation_steps
  )
  new_rmsprop_optimizer(check_config(config))
}

# SPEC B: `...` carries only the legacy `lr` and `decay`.
resolve_dots <- function(dots, learning_rate, learning_rate_missing) {
  if (length(dots) == 0L) return(learning_rate)
  nms <- names(dots)
  if (is.null(nms) || any(is.na(nms) | !nzchar(nms))) {
    rmsprop_abort("argument", "`...` takes only named arguments (`lr` or `decay`); an unnamed value was given.",
                  argument = "...")
  }
  unknown <- setdiff(nms, c("lr", "decay"))
  if (length(unknown)) {
    rmsprop_abort("argument", sprintf("unknown argument%s %s to optimizer_rmsprop().",
                                      if (length(unknown) > 1L) "s" else "",
                                      paste0("`", unknown, "`", collapse = ", ")),
                  argument = unknown[[1L]])
  }
  if ("decay" %in% nms) {
    rmsprop_warn("deprecated", "`decay` is no longer supported and is ignored; use a learning-rate schedule instead.")
  }
  if ("lr" %in% nms) {
    if (!learning_rate_missing) {
      rmsprop_abort("argument", "give either `learning_rate` or its old name `lr`, not both.",
                    argument = "lr")
    }
    rmsprop_warn("deprecated", "`lr` is deprecated; use `learning_rate` instead.")
    learning_rate <- dots[["lr"]]
  }
  learning_rate
}

check_config <- function(config) {
  with(config, {
    check_learning_rate(learning_rate)
    check_number(rho, "rho", 0, 1)
    check_number(momentum, "momentum", 0, 1)
    check_number(epsilon, "epsilon", 0, lower_open = TRUE)
    check_flag(centered, "centered")
    check_number(weight_decay, "weight_decay", 0, null_ok = TRUE)
    check_number(clipnorm, "clipnorm", 0, lower_open = TRUE, null_ok = TRUE)
    check_number(clipvalue, "clipvalue", 0, lower_open = TRUE, null_ok = TRUE)
    check_number(global_clipnorm, "global_clipnorm", 0, lower_open = TRUE, null_ok = TRUE)
    check_flag(use_ema, "use_ema")
    check_number(ema_momentum, "ema_momentum", 0, 1)
    check_number(ema_overwrite_frequency, "ema_overwrite_frequency", 1, null_ok = TRUE, whole = TRUE)
    check_string(name, "name")
    check_number(loss_scale_factor, "loss_scale_factor", 0, lower_open = TRUE, null_ok = TRUE)
    check_number(gradient_accumulation_steps, "gradient_accumulation_steps", 2, null_ok = TRUE,
                 whole = TRUE)
  })
  clips <- c("clipnorm", "clipvalue", "global_clipnorm")
  set <- clips[!vapply(config[clips], is.null, logical(1))]
  if (length(set) > 1L) {
    rmsprop_abort("argument", sprintf("only one of `clipnorm`, `clipvalue` and `global_clipnorm` may be set, but %s were.",
                                      paste0("`", set, "`", collapse = " and ")),
                  argument = set[[2L]])
  }
  # Store numbers as doubles so get_config() round trips give identical configs.
  num <- c("rho", "momentum", "epsilon", "weight_decay", "clipnorm", "clipvalue",
           "global_clipnorm", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
           "gradient_accumulation_steps")
  for (n in num) if (!is.null(config[[n]])) config[[n]] <- as.double(config[[n]])
  if (is.numeric(config$learning_rate)) config$learning_rate <- as.double(config$learning_rate)
  config
}

check_learning_rate <- function(x, arg = "learning_rate") {
  ctor <- schedule_constructor_name(x)
  if (!is.null(ctor)) {
    rmsprop_abort("argument", sprintf(
      "`%s` is the schedule constructor %s() itself; call it to make a schedule, e.g. `%s = %s(...)`.",
      arg, ctor, arg, ctor), argument = arg)
  }
  if (is.function(x)) return(invisible(x))
  if (!is_single_number(x) || x < 0) {
    rmsprop_abort("argument", sprintf(
      "`%s` must be a single finite number >= 0, a learning-rate schedule or a function, not %s.",
      arg, describe_value(x)), argument = arg, value = x)
  }
  invisible(x)
}

# The name of the package's schedule constructor `x` is, or NULL.
schedule_constructor_name <- function(x) {
  if (!is.function(x) || inherits(x, "rmsprop_schedule")) return(NULL)
  ns <- asNamespace("rmsprop")
  ctors <- grep("^learning_rate_schedule_", getNamespaceExports(ns), value = TRUE)
  for (n in ctors) if (identical(x, get(n, envir = ns))) return(n)
  NULL
}

# The numeric configuration C reads: named as src/state_layout.h lists it
# (0 stands for NULL).
config_vector <- function(config) {
  vapply(state_layout()$config, function(n) {
    x <- config[[n]]
    if (is.null(x)) 0 else as.double(x)
  }, numeric(1))
}

# The state layout C defines (src/state_layout.h): format, field names,
# configuration names. Asked once per session.
state_layout <- local({
  layout <- NULL
  function() {
    if (is.null(layout)) layout <<- .Call(C_state_layout)
    layout
  }
})

# The names of the configuration, in the constructor's order.
config_names <- function() setdiff(names(formals(optimizer_rmsprop)), "...")

# The members `$` hands out besides the configuration fields: methods (bound
# to the object's data by optimizer_member()) and properties.
optimizer_members <- c(
  "step", "apply", "step_in_place", "apply_gradients", "build", "finalize_variable_values",
  "current_learning_rate", "get_config", "exclude_from_weight_decay", "scale_loss",
  "load_variables", "clone", "iterations", "last_learning_rate", "learning_rate", "variables")

# The data of an optimizer (object.R), in an environment of its own:
# the configuration (`config`), the learning rate (`lr`), the external
# pointer (`ptr`), the structure it was built on (`skeleton`, `paths`) and
# the weight-decay exclusions. Plain data only: no method lives here.
new_rmsprop_optimizer <- function(config, ptr = NULL, private_fields = list()) {
  data <- new.env(hash = FALSE, parent = emptyenv())
  data$config <- config
  data$lr <- config$learning_rate
  data$ptr <- if (is.null(ptr)) .Call(C_state_new, config_vector(config)) else ptr
  data$skeleton <- NULL
  data$paths <- NULL
  data$exclusions <- list(var_list = NULL, var_names = NULL)
  for (n in names(private_fields)) assign(n, private_fields[[n]], envir = data)
  new_object(data, "rmsprop_optimizer")
}

# Member `name` of optimizer `x` whose data is `private`: a method is a
# closure made here, bound to the object (the package's code, never the
# saved object's); a property is its value. Every step method takes the one
# road of step.R (`$` writes out `step` itself).
optimizer_member <- function(x, private, name) {
  switch(name,
    step = function(grads, variables) optimizer_step(private, grads, variables),
    apply = function(grads, variables) optimizer_step(private, grads, variables),
    step_in_place = function(grads, variables) {
      res <- .Call(C_step, private$ptr, grads, variables, private$skeleton, private$lr,
                   step_in_place_flag, 0)
      if (is.object(res) && inherits(res, "rmsprop_signal")) {
        res <- step_signal(private, res, grads, variables, step_in_place_flag, 0, FALSE)
      }
      invisible(res)
    },
    apply_gradients = function(grads_and_vars) optimizer_apply_gradients(private, grads_and_vars),
    build = function(variables) {
      optimizer_build(private, variables)
      invisible(x)
    },
    finalize_variable_values = function(variables) optimizer_finalize(private, variables),
    current_learning_rate = function() current_learning_rate(private),
    get_config = function() private$config,
    exclude_from_weight_decay = function(var_list = NULL, var_names = NULL) {
      optimizer_exclude(private, var_list, var_names)
      invisible(x)
    },
    scale_loss = function(loss) optimizer_scale_loss(private, loss),
    load_variables = function(values) {
      optimizer_load_variables(private, values)
      invisible(x)
    },
    clone = function() optimizer_clone(private),
    iterations = optimizer_iterations(private),
    last_learning_rate = last_learning_rate(private),
    learning_rate = current_learning_rate(private),
    variables = optimizer_variables(private),
    optimizer_field(private, name))
}

# A constructor argument (read-only), or a classed error naming the nearest.
optimizer_field <- function(private, name) {
  config <- private$config
  if (name %in% names(config) && name != "learning_rate") return(config[[name]])
  unknown_member(name, c(optimizer_members, setdiff(names(config), "learning_rate")))
}

# c(raw call counter, learning rate of the last call) from the C state.
state_scalars <- function(private) .Call(C_state_scalars, private$ptr)

raw_iterations <- function(private) state_scalars(private)[[1L]]

last_learning_rate <- function(private) state_scalars(private)[[2L]]

optimizer_iterations <- function(private) {
  it <- raw_iterations(private)
  k <- private$config$gradient_accumulation_steps
  if (is.null(k)) it else it %/% k
}

optimizer_exclude <- function(private, var_list, var_names) {
  if (!is.null(private$skeleton)) {
    rmsprop_abort("state",
      "`exclude_from_weight_decay()` must be called before the optimizer is built (before the first step).")
  }
  ok_list <- is.null(var_list) || !is.object(var_list) && (
    (is.character(var_list) && !anyNA(var_list)) ||
      (is.numeric(var_list) && !anyNA(var_list) && all(is.finite(var_list)) &&
         all(var_list >= 1) && all(var_list == round(var_list))))
  if (!ok_list) {
    rmsprop_abort("argument", sprintf(
      "`var_list` must be NULL, variable paths (character) or positions (whole numbers >= 1), not %s.",
      describe_value(var_list)), argument = "var_list")
  }
  if (!is.null(var_names)) {
    if (!is.character(var_names) || is.object(var_names) || anyNA(var_names)) {
      rmsprop_abort("argument", sprintf(
        "`var_names` must be NULL or a character vector of regular expressions, not %s.",
        describe_value(var_names)), argument = "var_names")
    }
    for (re in var_names) {
      bad <- tryCatch({ grepl(re, ""); FALSE }, error = function(e) TRUE, warning = function(w) TRUE)
      if (bad) {
        rmsprop_abort("argument", sprintf("`var_names` has an invalid regular expression: \"%s\".", re),
                      argument = "var_names")
      }
    }
  }
  ex <- private$exclusions
  private$exclusions <- list(var_list = c(ex$var_list, var_list),
                             var_names = c(ex$var_names, var_names))
}

check_loss <- function(loss) {
  if (!is.numeric(loss)) {
    rmsprop_abort("argument", sprintf("`loss` must be numeric, not %s.", describe_value(loss)),
                  argument = "loss")
  }
  invisible(loss)
}

decay_mask_quiet <- function(exclusions, paths) suppressWarnings(decay_mask(exclusions, paths))

# 1 = the variable takes weight decay, 0 = excluded. Names and patterns
# that match no variable are warned about (a typo would otherwise exclude
# nothing without a word).
decay_mask <- function(exclusions, paths) {
  excluded <- logical(length(paths))
  vl <- exclusions$var_list
  if (is.character(vl)) {
    excluded <- excluded | paths %in% vl
  } else if (is.numeric(vl)) {
    if (any(vl > length(paths))) {
      rmsprop_abort("argument", sprintf(
        "`var_list` names variable position %s, but there are only %d variables.",
        format(max(vl)), length(paths)), argument = "var_list")
    }
    excluded[vl] <- TRUE
  }
  unmatched <- character()
  if (is.character(vl)) unmatched <- vl[!vl %in% paths]
  for (re in exclusions$var_names) {
    hit <- grepl(re, paths)
    if (!any(hit)) unmatched <- c(unmatched, re)
    excluded <- excluded | hit
  }
  if (length(unmatched)) {
    rmsprop_warn("exclusion", sprintf(
      "exclude_from_weight_decay(): %s matches no variable (the paths are %s); nothing is excluded by it.",
      paste0("\"", unmatched, "\"", collapse = ", "),
      paste0("\"", utils::head(paths, 10L), "\"", collapse = ", ")), unmatched = unmatched)
  }
  as.integer(!excluded)
}

optimizer_scale_loss <- function(private, loss) {
  check_loss(loss)
  f <- private$config$loss_scale_factor
  if (is.null(f)) loss else loss * f
}

optimizer_clone <- function(private) {
  fields <- mget(c("skeleton", "paths", "exclusions", "lr"), envir = private)
  config <- private$config
  if (is.function(fields$lr) && !inherits(fields$lr, "rmsprop_schedule")) {
    # A user's function may keep state in its closure: the copy gets its own,
    # as after saveRDS(), so stepping one never moves the other's rate.
    fields$lr <- unserialize(serialize(fields$lr, NULL))
    config$learning_rate <- fields$lr
  }
  new_rmsprop_optimizer(config, ptr = .Call(C_state_clone, private$ptr),
                        private_fields = fields)
}
