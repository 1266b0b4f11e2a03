# optimizer_loss_scale(): dynamic loss scaling around an RMSprop optimizer
# (SPEC A5). The wrapper keeps two numbers (the scale and the count of finite
# steps since the last change) in its private environment; the inner
# optimizer keeps all the rest. A step with a non-finite gradient is refused
# by the C step before anything changes, so skipping it costs nothing.

#' Dynamic loss scaling
#'
#' Wraps an RMSprop optimizer so that losses can be multiplied by a large
#' factor (to keep small gradients from underflowing in low precision) and
#' the gradients divided by it again before the update. The factor adapts:
#' a step whose gradients contain `NaN` or infinite values is skipped
#' entirely and the factor halved; after `dynamic_growth_steps` finite steps
#' in a row it is doubled.
#'
#' @param inner_optimizer An optimizer made by [optimizer_rmsprop()]. It is
#'   used (not copied), like in Keras: stepping the wrapper advances it. Its
#'   own `loss_scale_factor`, if any, is not used while it is wrapped.
#' @param initial_scale The starting factor, a number > 0.
#' @param dynamic_growth_steps How many finite steps in a row double the
#'   factor, a whole number >= 1.
#' @param ... Arguments of the base optimizer (`weight_decay`, `clipnorm`,
#'   `clipvalue`, `global_clipnorm`, `use_ema`, `ema_momentum`,
#'   `ema_overwrite_frequency`, `loss_scale_factor`,
#'   `gradient_accumulation_steps`) are accepted only with their default
#'   values: set them on the inner optimizer instead.
#' @param name `NULL` (giving `"loss_scale_optimizer"`) or a non-empty
#'   string, the prefix of the wrapper's own entries in `$variables`.
#'
#' @return An object of class `rmsprop_loss_scale_optimizer` with, through
#'   `$`: `step(grads, variables)`, `apply(grads, variables)`,
#'   `step_in_place(grads, variables)` (see [optimizer_rmsprop()]),
#'   `exclude_from_weight_decay()` (passed to the inner optimizer),
#'   `apply_gradients(grads_and_vars)`, `scale_loss(loss)` (the loss times
#'   the current factor), `finalize_variable_values(variables)`,
#'   `load_variables(values)` (a list like `$variables`),
#'   `build(variables)`, `get_config()`, `clone()` (deep, inner optimizer
#'   included), and the properties `loss_scale_factor` (the current factor),
#'   `inner_optimizer`, `iterations`, `learning_rate` (read and assign, passed
#'   to the inner optimizer) and `variables` (`"<name>/step_counter"`,
#'   `"<name>/dynamic_scale"`, then the inner optimizer's).
#'
#' @export
#' @examples
#' opt <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.01),
#'                             initial_scale = 1024, dynamic_growth_steps = 100)
#' w <- c(1, 2, 3)
#' loss_scale <- opt$scale_loss(1)          # multiply your loss by this
#' grads <- loss_scale * 2 * w              # gradients of the scaled loss
#' w <- opt$step(grads, w)
#' w
#' w <- opt$step(c(Inf, 1, 1), w)          # skipped: the factor is halved
#' opt$loss_scale_factor
optimizer_loss_scale <- function(inner_optimizer, initial_scale = 32768,
                                 dynamic_growth_steps = 2000L, ..., name = NULL) {
  if (!inherits(inner_optimizer, "rmsprop_optimizer")) {
    rmsprop_abort("argument", sprintf(
      "`inner_optimizer` must be an optimizer made by optimizer_rmsprop(), not %s.",
      if (inherits(inner_optimizer, "rmsprop_loss_scale_optimizer")) "a loss-scale optimizer"
      else describe_value(inner_optimizer)), argument = "inner_optimizer")
  }
  check_number(initial_scale, "initial_scale", 0, lower_open = TRUE)
  check_number(dynamic_growth_steps, "dynamic_growth_steps", 1, whole = TRUE)
  check_string(name, "name", null_ok = TRUE)
  check_base_dots(list(...))
  new_loss_scale_optimizer(inner_optimizer, list(
    initial_scale = as.double(initial_scale), dynamic_growth_steps = as.double(dynamic_growth_steps),
    name = if (is.null(name)) "loss_scale_optimizer" else name))
}

# Base-optimizer arguments, with the defaults that are the only values the
# wrapper accepts.
base_optimizer_defaults <- list(
  weight_decay = NULL, clipnorm = NULL, clipvalue = NULL, global_clipnorm = NULL,
  use_ema = FALSE, ema_momentum = 0.99, ema_overwrite_frequency = NULL,
  loss_scale_factor = NULL, gradient_accumulation_steps = NULL
)

check_base_dots <- function(dots) {
  if (length(dots) == 0L) return(invisible())
  nms <- names(dots)
  if (is.null(nms) || any(is.na(nms) | !nzchar(nms))) {
    rmsprop_abort("argument", "`...` takes only named base-optimizer arguments; an unnamed value was given.",
                  argument = "...")
  }
  for (n in nms) {
    if (!n %in% names(base_optimizer_defaults)) {
      rmsprop_abort("argument", sprintf("unknown argument `%s` to optimizer_loss_scale().", n),
                    argument = n)
    }
    if (!identical(dots[[n]], base_optimizer_defaults[[n]]) &&
        !(is.numeric(dots[[n]]) && is.numeric(base_optimizer_defaults[[n]]) &&
          isTRUE(all.equal(dots[[n]], base_optimizer_defaults[[n]])))) {
      rmsprop_abort("argument", sprintf(
        "`%s` cannot be set on optimizer_loss_scale(); set it on the inner optimizer (optimizer_rmsprop(%s = ...)).",
        n, n), argument = n)
    }
  }
  invisible()
}


# The wrapper's data (object.R): the inner optimizer, the configuration,
# the scale and the count of finite steps since it last changed.
new_loss_scale_optimizer <- function(inner, config, scale = config$initial_scale, counter = 0) {
  data <- new.env(hash = FALSE, parent = emptyenv())
  data$inner <- inner
  data$config <- config
  data$scale <- scale
  data$counter <- counter
  new_object(data, "rmsprop_loss_scale_optimizer")
}

loss_scale_members <- c(
  "step", "apply", "step_in_place", "exclude_from_weight_decay", "apply_gradients",
  "scale_loss", "finalize_variable_values", "build", "current_learning_rate", "load_variables",
  "get_config", "clone", "last_learning_rate", "loss_scale_factor", "inner_optimizer",
  "iterations", "learning_rate", "variables", "initial_scale", "dynamic_growth_steps", "name")

# Member `name` of the wrapper `x` whose data is `private` (see
# optimizer_member(), optimizer.R).
loss_scale_member <- function(x, private, name) {
  switch(name,
    step = function(grads, variables) loss_scale_step(private, grads, variables),
    apply = function(grads, variables) loss_scale_step(private, grads, variables),
    step_in_place = function(grads, variables) {
      invisible(loss_scale_step(private, grads, variables, step_in_place_flag))
    },
    exclude_from_weight_decay = function(var_list = NULL, var_names = NULL) {
      private$inner$exclude_from_weight_decay(var_list, var_names)
      invisible(x)
    },
    apply_gradients = function(grads_and_vars) {
      pairs <- pairs_to_structures(grads_and_vars)
      loss_scale_step(private, pairs$grads, pairs$vars)
    },
    scale_loss = function(loss) check_loss(loss) * private$scale,
    finalize_variable_values = function(variables) private$inner$finalize_variable_values(variables),
    build = function(variables) {
      private$inner$build(variables)
      invisible(x)
    },
    current_learning_rate = function() private$inner$current_learning_rate(),
    load_variables = function(values) {
      loss_scale_load_variables(private, values)
      invisible(x)
    },
    get_config = function() {
      c(list(inner_optimizer = do.call(optimizer_rmsprop, private$inner$get_config())),
        private$config)
    },
    clone = function() {
      new_loss_scale_optimizer(private$inner$clone(), private$config, private$scale,
                               private$counter)
    },
    last_learning_rate = private$inner$last_learning_rate,
    loss_scale_factor = private$scale,
    inner_optimizer = private$inner,
    iterations = private$inner$iterations,
    learning_rate = private$inner$learning_rate,
    variables = {
      own <- list(private$counter, private$scale)
      names(own) <- own_entry_names(private)
      c(own, private$inner$variables)
    },
    initial_scale = private$config$initial_scale,
    dynamic_growth_steps = private$config$dynamic_growth_steps,
    name = private$config$name,
    unknown_member(name, loss_scale_members))
}

# The wrapper's own two entries come first, then the inner optimizer's; the
# inner one checks its part completely before anything is set.
own_entry_names <- function(private) {
  paste0(private$config$name, c("/step_counter", "/dynamic_scale"))
}

loss_scale_load_variables <- function(private, values) {
  own <- own_entry_names(private)
  if (!is.list(values) || length(values) < 2L || !identical(names(values)[1:2], own)) {
    rmsprop_abort("argument", sprintf(
      "`values` must be a list like `opt$variables`, starting with \"%s\" and \"%s\".",
      own[[1L]], own[[2L]]), argument = "values")
  }
  counter <- values[[1L]]
  scale <- values[[2L]]
  if (!is_single_number(counter) || counter < 0 || counter != round(counter) ||
      counter >= private$config$dynamic_growth_steps) {
    rmsprop_abort("argument", sprintf(
      "`values[[\"%s\"]]` must be a whole number in [0, %s), not %s.", own[[1L]],
      format(private$config$dynamic_growth_steps), describe_value(counter)), argument = "values")
  }
  if (!is_single_number(scale) || scale <= 0) {
    rmsprop_abort("argument", sprintf("`values[[\"%s\"]]` must be a finite number > 0, not %s.",
                                      own[[2L]], describe_value(scale)), argument = "values")
  }
  private$inner$load_variables(values[-(1:2)])
  private$counter <- as.double(counter)
  private$scale <- as.double(scale)
}

loss_scale_step <- function(private, grads, variables, flags = 0L) {
  inner <- private_of(private$inner)
  res <- optimizer_step(inner, grads, variables, flags, loss_scale = private$scale,
                        skip_nonfinite = TRUE)
  if (inherits(res, "rmsprop_signal")) {
    # A non-finite gradient: nothing changed in the inner optimizer.
    private$counter <- 0
    private$scale <- private$scale / 2
    return(variables)
  }
  if (private$counter == private$config$dynamic_growth_steps - 1) {
    private$counter <- 0
    private$scale <- private$scale * 2
  } else {
    private$counter <- private$counter + 1
  }
  res
}

#' @export
format.rmsprop_loss_scale_optimizer <- function(x, ...) {
  private <- private_of(x)
  c(sprintf("<rmsprop loss-scale optimizer \"%s\">", private$config$name),
    sprintf("  scale %s (initial %s, doubles after %s finite steps; %s so far)",
            format(private$scale), format(private$config$initial_scale),
            format(private$config$dynamic_growth_steps), format(private$counter)),
    paste0("  ", format(private$inner)))
}

#' @export
print.rmsprop_loss_scale_optimizer <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}
