# Learning-rate schedules: the six keras3 constructors, their evaluation and
# their S3 methods (`$`, format, print, .DollarNames).
#
# A schedule is a plain R closure of one argument `step`. Its whole state is
# two values in its enclosing environment, `kind` (e.g. "exponential_decay")
# and `config` (a named list of exactly the constructor's arguments), so it
# survives saveRDS()/readRDS() and serialize() with no external pointer, and
# `do.call(learning_rate_schedule_<kind>, schedule_config(s))` rebuilds it.
# This file must never hold optimizer state or call C: the optimizer only
# evaluates `s(iterations)` (SPEC A2) through is_schedule()/schedule_config().
#
# Numbers follow SPEC A4 in double precision, with the operations grouped as
# Keras 3 groups them (keras/src/optimizers/schedules/learning_rate_schedule.py),
# e.g. `pi * (s / D)`; the two differ by at most a rounding in the last place.

# ---------------------------------------------------------------------------
# Constructors
# ---------------------------------------------------------------------------

#' Exponential decay learning-rate schedule
#'
#' A schedule that multiplies the initial learning rate by `decay_rate` once
#' every `decay_steps` steps, either smoothly or (with `staircase = TRUE`) in
#' discrete jumps. At step `s` it returns
#' `initial_learning_rate * decay_rate ^ (s / decay_steps)`, where the exponent
#' is rounded down to a whole number when `staircase = TRUE`.
#'
#' A schedule is an R function of one argument, `step`: a numeric vector of
#' non-negative step numbers (the optimizer passes its call counter, starting
#' at 0). It returns the learning rates at those steps as a double vector of the
#' same length. Pass it as `learning_rate` to [optimizer_rmsprop()].
#' Its configuration is available as `schedule$get_config()` (a named list of
#' the constructor's arguments, so [do.call()] on it rebuilds the schedule) or
#' field by field (`schedule$decay_rate`). Schedules survive [saveRDS()] and
#' [serialize()].
#'
#' @param initial_learning_rate The learning rate at step 0: a single finite
#'   number >= 0.
#' @param decay_steps How many steps one decay period lasts: a single finite
#'   number > 0.
#' @param decay_rate The factor applied per decay period: a single finite
#'   number >= 0.
#' @param staircase `TRUE` to decay at whole periods only (the exponent is
#'   `floor(step / decay_steps)`), `FALSE` (the default) for a smooth decay.
#' @param name A name for the schedule: one non-empty string. It is kept in the
#'   configuration only.
#'
#' @return A schedule: a function of `step` with class
#'   `c("rmsprop_schedule_exponential_decay", "rmsprop_schedule", "function")`.
#' @family learning rate schedules
#' @export
#' @examples
#' schedule <- learning_rate_schedule_exponential_decay(
#'   initial_learning_rate = 0.1, decay_steps = 100, decay_rate = 0.5
#' )
#' schedule
#' schedule(c(0, 50, 100, 200))
#' stairs <- learning_rate_schedule_exponential_decay(0.1, 100, 0.5, staircase = TRUE)
#' plot(0:400, schedule(0:400), type = "l", xlab = "step", ylab = "learning rate")
#' lines(0:400, stairs(0:400), lty = 2)
learning_rate_schedule_exponential_decay <- function(initial_learning_rate, decay_steps,
                                                     decay_rate, staircase = FALSE,
                                                     name = "ExponentialDecay") {
  decay_schedule("exponential_decay", initial_learning_rate, decay_steps, decay_rate, staircase, name)
}

# The exponential and inverse-time schedules take the same arguments.
decay_schedule <- function(kind, initial_learning_rate, decay_steps, decay_rate, staircase,
                           name) {
  check_learning_rate_arg(initial_learning_rate, "initial_learning_rate")
  check_decay_steps_arg(decay_steps, "decay_steps")
  check_number(decay_rate, "decay_rate", lower = 0)
  check_flag(staircase, "staircase")
  check_string(name, "name")
  new_schedule(kind, list(
    initial_learning_rate = initial_learning_rate, decay_steps = decay_steps,
    decay_rate = decay_rate, staircase = staircase, name = name
  ))
}

#' Inverse time decay learning-rate schedule
#'
#' A schedule that divides the initial learning rate by a term growing
#' linearly with the step: at step `s` it returns
#' `initial_learning_rate / (1 + decay_rate * s / decay_steps)`, where
#' `s / decay_steps` is rounded down to a whole number when `staircase = TRUE`.
#'
#' See [learning_rate_schedule_exponential_decay()] for how a schedule is
#' called, configured and saved.
#'
#' @inheritParams learning_rate_schedule_exponential_decay
#' @param decay_steps How many steps one decay period lasts: a single finite
#'   number > 0.
#' @param decay_rate How much the divisor grows per decay period: a single
#'   finite number >= 0.
#' @param staircase `TRUE` to count whole periods only
#'   (`floor(step / decay_steps)`), `FALSE` (the default) for a smooth decay.
#'
#' @return A schedule: a function of `step` with class
#'   `c("rmsprop_schedule_inverse_time_decay", "rmsprop_schedule", "function")`.
#' @family learning rate schedules
#' @export
#' @examples
#' schedule <- learning_rate_schedule_inverse_time_decay(
#'   initial_learning_rate = 0.1, decay_steps = 10, decay_rate = 0.5
#' )
#' schedule(c(0, 10, 20, 100))
#' plot(0:200, schedule(0:200), type = "l", xlab = "step", ylab = "learning rate")
learning_rate_schedule_inverse_time_decay <- function(initial_learning_rate, decay_steps,
                                                      decay_rate, staircase = FALSE,
                                                      name = "InverseTimeDecay") {
  decay_schedule("inverse_time_decay", initial_learning_rate, decay_steps, decay_rate, staircase, name)
}

#' Piecewise constant learning-rate schedule
#'
#' A schedule that is constant between step boundaries. At step `s` it returns
#' `values[1]` while `s <= boundaries[1]`, `values[i + 1]` while
#' `boundaries[i] < s <= boundaries[i + 1]`, and the last value once `s` is
#' past the last boundary. A boundary step itself still belongs to the
#' interval that ends there.
#'
#' See [learning_rate_schedule_exponential_decay()] for how a schedule is
#' called, configured and saved.
#'
#' @param boundaries The steps at which the learning rate changes: a numeric
#'   vector of one or more finite, strictly increasing numbers.
#' @param values The learning rates of the intervals: a numeric vector of
#'   finite numbers, one longer than `boundaries`.
#' @param name A name for the schedule: one non-empty string. It is kept in the
#'   configuration only.
#'
#' @return A schedule: a function of `step` with class
#'   `c("rmsprop_schedule_piecewise_constant_decay", "rmsprop_schedule", "function")`.
#' @family learning rate schedules
#' @export
#' @examples
#' schedule <- learning_rate_schedule_piecewise_constant_decay(
#'   boundaries = c(100, 110), values = c(1, 0.5, 0.1)
#' )
#' schedule(c(0, 100, 101, 110, 111))
#' plot(0:200, schedule(0:200), type = "s", xlab = "step", ylab = "learning rate")
learning_rate_schedule_piecewise_constant_decay <- function(boundaries, values,
                                                            name = "PiecewiseConstant") {
  check_numeric_vector(boundaries, "boundaries")
  if (length(boundaries) > 1L && any(diff(boundaries) <= 0)) {
    rmsprop_abort("argument",
                  sprintf("`boundaries` must be strictly increasing, not %s.",
                          format_config_value(boundaries)),
                  argument = "boundaries", value = boundaries)
  }
  check_numeric_vector(values, "values")
  if (length(values) != length(boundaries) + 1L) {
    rmsprop_abort("argument",
                  sprintf(paste("`values` must have one element more than `boundaries`",
                                "(%d), not %d."),
                          length(boundaries) + 1L, length(values)),
                  argument = "values", value = values)
  }
  check_string(name, "name")
  new_schedule("piecewise_constant_decay", list(
    boundaries = boundaries, values = values, name = name
  ))
}

#' Polynomial decay learning-rate schedule
#'
#' A schedule that moves from `initial_learning_rate` to `end_learning_rate`
#' over `decay_steps` steps along a polynomial of degree `power`:
#' at step `s` it returns
#' `(initial_learning_rate - end_learning_rate) * (1 - s / D) ^ power + end_learning_rate`.
#' Without `cycle`, `D = decay_steps` and `s` stops at `decay_steps`, so the rate
#' stays at `end_learning_rate` afterwards. With `cycle = TRUE`, `D` is
#' `decay_steps` times `ceiling(s / decay_steps)` (1 at step 0), so the decay
#' restarts, ever longer, after each multiple of `decay_steps`; an exact
#' multiple still ends the current cycle at `end_learning_rate`.
#'
#' See [learning_rate_schedule_exponential_decay()] for how a schedule is
#' called, configured and saved.
#'
#' @inheritParams learning_rate_schedule_exponential_decay
#' @param decay_steps How many steps the decay lasts: a single finite number > 0.
#' @param end_learning_rate The learning rate at the end of the decay: a single
#'   finite number >= 0.
#' @param power The degree of the polynomial: a single finite number (1, the
#'   default, is a straight line).
#' @param cycle `TRUE` to restart the decay after `decay_steps` steps, `FALSE`
#'   (the default) to stay at `end_learning_rate`.
#'
#' @return A schedule: a function of `step` with class
#'   `c("rmsprop_schedule_polynomial_decay", "rmsprop_schedule", "function")`.
#' @family learning rate schedules
#' @export
#' @examples
#' schedule <- learning_rate_schedule_polynomial_decay(
#'   initial_learning_rate = 0.1, decay_steps = 100, end_learning_rate = 0.01,
#'   power = 2
#' )
#' schedule(c(0, 50, 100, 150))
#' cyclic <- learning_rate_schedule_polynomial_decay(0.1, 100, 0.01, cycle = TRUE)
#' plot(0:400, cyclic(0:400), type = "l", xlab = "step", ylab = "learning rate")
learning_rate_schedule_polynomial_decay <- function(initial_learning_rate, decay_steps,
                                                    end_learning_rate = 1e-04, power = 1,
                                                    cycle = FALSE, name = "PolynomialDecay") {
  check_learning_rate_arg(initial_learning_rate, "initial_learning_rate")
  check_decay_steps_arg(decay_steps, "decay_steps")
  check_learning_rate_arg(end_learning_rate, "end_learning_rate")
  check_number(power, "power")
  check_flag(cycle, "cycle")
  check_string(name, "name")
  new_schedule("polynomial_decay", list(
    initial_learning_rate = initial_learning_rate, decay_steps = decay_steps,
    end_learning_rate = end_learning_rate, power = power, cycle = cycle, name = name
  ))
}

#' Cosine decay learning-rate schedule, with optional linear warmup
#'
#' A schedule that follows half a cosine wave from a starting rate down to
#' `alpha` times that rate over `decay_steps` steps, then stays there:
#' `from * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)`
#' with `s` stopped at `decay_steps`.
#'
#' Without `warmup_target` (the default) the decay starts at step 0 from
#' `initial_learning_rate`. With a `warmup_target`, the rate first rises
#' linearly from `initial_learning_rate` to `warmup_target` over
#' `warmup_steps` steps, and the cosine decay then runs from `warmup_target`
#' over the following `decay_steps` steps.
#'
#' See [learning_rate_schedule_exponential_decay()] for how a schedule is
#' called, configured and saved.
#'
#' @inheritParams learning_rate_schedule_exponential_decay
#' @param initial_learning_rate The learning rate at step 0 (the start of the
#'   warmup, if any): a single finite number >= 0.
#' @param decay_steps How many steps the cosine decay lasts: a single finite
#'   number > 0.
#' @param alpha The floor of the decay, as a fraction of the rate it decays
#'   from: a single number in \[0, 1\].
#' @param warmup_target `NULL` (the default) for no warmup, or the learning
#'   rate reached at the end of the warmup: a single finite number >= 0.
#' @param warmup_steps How many steps the warmup lasts: a single finite
#'   number >= 0. Ignored when `warmup_target` is `NULL`.
#'
#' @return A schedule: a function of `step` with class
#'   `c("rmsprop_schedule_cosine_decay", "rmsprop_schedule", "function")`.
#' @family learning rate schedules
#' @export
#' @examples
#' schedule <- learning_rate_schedule_cosine_decay(
#'   initial_learning_rate = 0.1, decay_steps = 1000, alpha = 0.1
#' )
#' schedule(c(0, 500, 1000, 2000))
#' warm <- learning_rate_schedule_cosine_decay(
#'   0, 1000, warmup_target = 0.1, warmup_steps = 200
#' )
#' plot(0:1500, warm(0:1500), type = "l", xlab = "step", ylab = "learning rate")
learning_rate_schedule_cosine_decay <- function(initial_learning_rate, decay_steps,
                                                alpha = 0, name = "CosineDecay",
                                                warmup_target = NULL, warmup_steps = 0L) {
  check_learning_rate_arg(initial_learning_rate, "initial_learning_rate")
  check_decay_steps_arg(decay_steps, "decay_steps")
  check_number(alpha, "alpha", lower = 0, upper = 1)
  check_string(name, "name")
  check_number(warmup_target, "warmup_target", lower = 0, null_ok = TRUE)
  check_number(warmup_steps, "warmup_steps", lower = 0)
  new_schedule("cosine_decay", list(
    initial_learning_rate = initial_learning_rate, decay_steps = decay_steps,
    alpha = alpha, name = name, warmup_target = warmup_target,
    warmup_steps = warmup_steps
  ))
}

#' Cosine decay with warm restarts (SGDR) learning-rate schedule
#'
#' A schedule that runs a cosine decay (see
#' [learning_rate_schedule_cosine_decay()]) over `first_decay_steps` steps,
#' then restarts it: each new period is `t_mul` times as long as the one before
#' and starts from `m_mul` times the previous peak. Within period `i` (counting
#' from 0), at fraction `f` of the period, the rate is
#' `initial_learning_rate * ((1 - alpha) * 0.5 * m_mul^i * (1 + cos(pi * f)) + alpha)`;
#' the floor `alpha * initial_learning_rate` is not scaled by `m_mul`.
#' This is the schedule of Loshchilov and Hutter (2017), "SGDR: Stochastic
#' Gradient Descent with Warm Restarts".
#'
#' With `t_mul < 1` the periods shrink and all of them together last
#' `first_decay_steps / (1 - t_mul)` steps; calling the schedule at or past
#' that step is an error (Keras returns `NaN` there).
#'
#' The period is found as in Keras, with
#' `floor(log(1 - s / first_decay_steps * (1 - t_mul)) / log(t_mul))` when
#' `t_mul != 1`; exactly at a restart step, rounding in the logarithms can
#' place the step at the very end of the previous period for some `t_mul`.
#'
#' See [learning_rate_schedule_exponential_decay()] for how a schedule is
#' called, configured and saved.
#'
#' @inheritParams learning_rate_schedule_cosine_decay
#' @param first_decay_steps How many steps the first period lasts: a single
#'   finite number > 0.
#' @param t_mul How much longer each period is than the one before: a single
#'   finite number > 0 (1 gives periods of equal length).
#' @param m_mul How much lower each restart starts than the one before: a
#'   single finite number > 0.
#' @param alpha The floor of the decay, as a fraction of
#'   `initial_learning_rate`: a single number in \[0, 1\].
#'
#' @return A schedule: a function of `step` with class
#'   `c("rmsprop_schedule_cosine_decay_restarts", "rmsprop_schedule", "function")`.
#' @family learning rate schedules
#' @export
#' @examples
#' schedule <- learning_rate_schedule_cosine_decay_restarts(
#'   initial_learning_rate = 0.1, first_decay_steps = 100, t_mul = 2,
#'   m_mul = 0.8
#' )
#' schedule(c(0, 50, 99, 100, 299, 300))
#' plot(0:1500, schedule(0:1500), type = "l", xlab = "step", ylab = "learning rate")
learning_rate_schedule_cosine_decay_restarts <- function(initial_learning_rate,
                                                         first_decay_steps, t_mul = 2,
                                                         m_mul = 1, alpha = 0,
                                                         name = "SGDRDecay") {
  check_learning_rate_arg(initial_learning_rate, "initial_learning_rate")
  check_decay_steps_arg(first_decay_steps, "first_decay_steps")
  check_number(t_mul, "t_mul", lower = 0, lower_open = TRUE)
  check_number(m_mul, "m_mul", lower = 0, lower_open = TRUE)
  check_number(alpha, "alpha", lower = 0, upper = 1)
  check_string(name, "name")
  new_schedule("cosine_decay_restarts", list(
    initial_learning_rate = initial_learning_rate, first_decay_steps = first_decay_steps,
    t_mul = t_mul, m_mul = m_mul, alpha = alpha, name = name
  ))
}

# ---------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------

check_learning_rate_arg <- function(x, arg) {
  check_number(x, arg, lower = 0)
}

check_decay_steps_arg <- function(x, arg) {
  check_number(x, arg, lower = 0, lower_open = TRUE)
}

# A non-empty double or integer vector of finite numbers.
check_numeric_vector <- function(x, arg) {
  ok <- (is.double(x) || is.integer(x)) && !is.object(x) && length(x) >= 1L &&
    all(is.finite(x))
  if (!ok) {
    rmsprop_abort("argument",
                  sprintf("`%s` must be a non-empty numeric vector of finite numbers, not %s.",
                          arg, describe_value(x)),
                  argument = arg, value = x)
  }
  invisible(x)
}

# The closure's enclosing environment holds exactly `kind` and `config`; its
# parent is the package namespace, which serialize() writes as a reference.
new_schedule <- function(kind, config) {
  fun <- function(step) evaluate_schedule(kind, config, step)
  environment(fun) <- list2env(list(kind = kind, config = config),
                               parent = parent.env(environment()))
  class(fun) <- c(paste0("rmsprop_schedule_", kind), "rmsprop_schedule", "function")
  fun
}

is_schedule <- function(x) {
  is.function(x) && inherits(x, "rmsprop_schedule")
}

# The configuration list of a schedule (the constructor's arguments, in order).
schedule_config <- function(s) {
  if (!is_schedule(s)) {
    rmsprop_abort("argument",
                  sprintf("`s` must be a learning-rate schedule, not %s.", describe_value(s)),
                  argument = "s", value = s)
  }
  get("config", envir = environment(s), inherits = FALSE)
}

schedule_kind <- function(s) {
  get("kind", envir = environment(s), inherits = FALSE)
}

check_step <- function(step) {
  ok <- (is.double(step) || is.integer(step)) && !is.object(step) &&
    !anyNA(step) && all(is.finite(step)) && all(step >= 0)
  if (!ok) {
    rmsprop_abort("argument",
                  sprintf("`step` must be a numeric vector of finite numbers >= 0, not %s.",
                          describe_value(step)),
                  argument = "step", value = step)
  }
  invisible(step)
}

evaluate_schedule <- function(kind, config, step) {
  if (missing(step)) {
    rmsprop_abort("argument", "`step` is missing: call the schedule with a step number.",
                  argument = "step")
  }
  check_step(step)
  s <- as.double(step)
  switch(kind,
    exponential_decay = {
      p <- s / config$decay_steps
      if (config$staircase) p <- floor(p)
      config$initial_learning_rate * config$decay_rate^p
    },
    inverse_time_decay = {
      p <- s / config$decay_steps
      if (config$staircase) p <- floor(p)
      config$initial_learning_rate / (1 + config$decay_rate * p)
    },
    piecewise_constant_decay = {
      # left.open: a boundary step belongs to the interval that ends there.
      index <- findInterval(s, config$boundaries, left.open = TRUE) + 1L
      as.double(config$values)[index]
    },
    polynomial_decay = {
      lr0 <- config$initial_learning_rate
      end <- config$end_learning_rate
      decay_steps <- config$decay_steps
      if (config$cycle) {
        multiplier <- ifelse(s == 0, 1, ceiling(s / decay_steps))
        d <- decay_steps * multiplier
      } else {
        s <- pmin(s, decay_steps)
        d <- decay_steps
      }
      p <- s / d
      (lr0 - end) * (1 - p)^config$power + end
    },
    cosine_decay = {
      lr0 <- config$initial_learning_rate
      decay_steps <- config$decay_steps
      alpha <- config$alpha
      if (is.null(config$warmup_target)) {
        cosine_part(pmin(s, decay_steps), decay_steps, lr0, alpha)
      } else {
        target <- config$warmup_target
        warmup_steps <- config$warmup_steps
        s <- pmin(s, decay_steps + warmup_steps)
        warming <- s < warmup_steps
        out <- cosine_part(s - warmup_steps, decay_steps, target, alpha)
        if (any(warming)) {
          out[warming] <- (target - lr0) * (s[warming] / warmup_steps) + lr0
        }
        out
      }
    },
    cosine_decay_restarts = {
      lr0 <- config$initial_learning_rate
      t_mul <- config$t_mul
      alpha <- config$alpha
      f <- s / config$first_decay_steps
      if (t_mul == 1) {
        i <- floor(f)
        f <- f - i
      } else {
        remaining <- 1 - f * (1 - t_mul)
        if (any(remaining <= 0)) {
          # t_mul < 1: the periods shrink geometrically and all of them together
          # last first_decay_steps / (1 - t_mul) steps; Keras returns NaN after.
          limit <- config$first_decay_steps / (1 - t_mul)
          rmsprop_abort("argument",
                        sprintf(paste("`step` must be below %s for a cosine_decay_restarts",
                                      "schedule with t_mul = %s (all its periods end there),",
                                      "not %s."),
                                format(limit, digits = 15L), format(t_mul, digits = 15L),
                                format(max(step), digits = 15L)),
                        argument = "step", value = step)
        }
        i <- floor(log(remaining) / log(t_mul))
        sum_r <- (1 - t_mul^i) / (1 - t_mul)
        f <- (f - sum_r) / t_mul^i
      }
      cosine_decayed <- 0.5 * config$m_mul^i * (1 + cos(pi * f))
      lr0 * ((1 - alpha) * cosine_decayed + alpha)
    },
    rmsprop_abort("argument", sprintf("Unknown schedule kind \"%s\".", kind),
                  argument = "kind", value = kind)
  )
}

# Keras' `_decay_function`: `from * ((1 - alpha) * 0.5 * (1 + cos(pi * s / D)) + alpha)`.
cosine_part <- function(s, decay_steps, from, alpha) {
  cosine_decayed <- 0.5 * (1 + cos(pi * (s / decay_steps)))
  from * ((1 - alpha) * cosine_decayed + alpha)
}

format_config_value <- function(x, width = 60L) {
  text <- paste(deparse(x, width.cutoff = 500L), collapse = " ")
  if (nchar(text) > width) text <- paste0(substr(text, 1L, width - 3L), "...")
  text
}

# ---------------------------------------------------------------------------
# S3 methods
# ---------------------------------------------------------------------------

#' Fields, printing and configuration of a learning-rate schedule
#'
#' Schedules made by the `learning_rate_schedule_*()` constructors are
#' functions of the step, with a few extras reached with `$`:
#' `schedule$get_config()` returns the configuration (a named list of exactly
#' the constructor's arguments, so [do.call()] of the constructor on it builds
#' an equal schedule) and `schedule$<argument>` returns one entry of it.
#' Schedules cannot be modified; build a new one instead.
#'
#' @param x A learning-rate schedule.
#' @param name The name of a field: `"get_config"` or an argument of the
#'   constructor (such as `"decay_steps"`).
#' @param value Not used: assigning a field is an error.
#' @param ... Not used.
#'
#' @return `$` returns the field; `format()` a character vector of lines (one
#'   string with `short = TRUE`);
#'   `print()` its argument, invisibly.
#' @name rmsprop_schedule
#' @family learning rate schedules
#' @examples
#' schedule <- learning_rate_schedule_exponential_decay(0.1, 1000, 0.96)
#' schedule$decay_rate
#' config <- schedule$get_config()
#' str(config)
#' rebuilt <- do.call(learning_rate_schedule_exponential_decay, config)
#' all.equal(schedule(0:10), rebuilt(0:10))
#' format(schedule)
#' format(schedule, short = TRUE)
#' print(schedule)
NULL

#' @rdname rmsprop_schedule
#' @method $ rmsprop_schedule
#' @export
`$.rmsprop_schedule` <- function(x, name) {
  config <- schedule_config(x)
  if (identical(name, "get_config")) {
    return(function() config)
  }
  if (!name %in% names(config)) {
    rmsprop_abort("argument",
                  sprintf(paste("`%s` is not a field of a %s schedule; the fields are",
                                "get_config, %s."),
                          shown_name(name), schedule_kind(x), paste(names(config), collapse = ", ")),
                  argument = "name", value = name)
  }
  config[[name]]
}

#' @rdname rmsprop_schedule
#' @method $<- rmsprop_schedule
#' @export
`$<-.rmsprop_schedule` <- function(x, name, value) {
  rmsprop_abort("argument",
                sprintf(paste("A learning-rate schedule cannot be modified (tried to set `%s`);",
                              "build a new one with learning_rate_schedule_%s()."),
                        shown_name(name), schedule_kind(x)),
                argument = "name", value = name)
}

#' @rdname rmsprop_schedule
#' @param short `TRUE` returns one line that reads like the call which builds
#'   the schedule, without the `learning_rate_schedule_` prefix and without
#'   arguments left at their defaults, such as
#'   `"cosine_decay(0.1, decay_steps = 500)"` (as used in plot legends and
#'   summaries).
#' @method format rmsprop_schedule
#' @export
format.rmsprop_schedule <- function(x, ..., short = FALSE) {
  if (isTRUE(short)) return(schedule_label(x))
  config <- schedule_config(x)
  entries <- vapply(names(config), function(n) {
    paste(n, "=", format_config_value(config[[n]]))
  }, character(1), USE.NAMES = FALSE)
  c(sprintf("<learning rate schedule: %s>", schedule_kind(x)),
    pack_entries(entries, width = max(40L, getOption("width", 80L)) - 2L))
}

# One line that reads like the constructor call: the first argument by
# position, the others by name, arguments equal to their defaults left out.
# Never fails (a label must not break a plot or a print).
schedule_label <- function(s) {
  tryCatch({
    kind <- schedule_kind(s)
    config <- schedule_config(s)
    defaults <- formals(get(paste0("learning_rate_schedule_", kind), mode = "function"))
    shown <- character()
    for (i in seq_along(config)) {
      n <- names(config)[i]
      v <- config[[n]]
      # (an argument without a default is the empty symbol, which cannot be
      # stored in a variable)
      has_default <- !identical(defaults[[n]], quote(expr = ))
      if (i > 1L && has_default &&
          isTRUE(all.equal(v, eval(defaults[[n]], baseenv()), tolerance = 0))) next
      shown <- c(shown, if (i == 1L && kind != "piecewise_constant_decay")
        label_value(v) else paste(n, "=", label_value(v)))
    }
    sprintf("%s(%s)", kind, paste(shown, collapse = ", "))
  }, error = function(e) "a schedule")
}

# A short, R-like text for one configuration value: numbers with up to 7
# significant digits (as R prints them), strings quoted,
# long vectors shortened.
label_value <- function(v) {
  if (is.null(v)) return("NULL")
  if (is.character(v)) {
    text <- encodeString(v, quote = "\"")
  } else if (is.numeric(v) || is.logical(v)) {
    text <- if (is.logical(v)) as.character(v) else
      vapply(v, function(e) format(e, digits = 7L), character(1))
  } else {
    return(format_config_value(v, width = 40L))
  }
  if (length(text) > 6L) text <- c(text[1:3], "...", text[length(text)])
  if (length(v) == 1L) text else sprintf("c(%s)", paste(text, collapse = ", "))
}

# Joins "key = value" entries with ", " into indented lines of at most `width`
# characters, never splitting an entry.
pack_entries <- function(entries, width) {
  lines <- character()
  current <- ""
  for (entry in entries) {
    if (!nzchar(current)) {
      current <- entry
    } else if (nchar(current) + 2L + nchar(entry) <= width) {
      current <- paste0(current, ", ", entry)
    } else {
      lines <- c(lines, paste0(current, ","))
      current <- entry
    }
  }
  paste0("  ", c(lines, current))
}

#' @rdname rmsprop_schedule
#' @method print rmsprop_schedule
#' @export
print.rmsprop_schedule <- function(x, ...) {
  writeLines(format(x, ...))
  invisible(x)
}

#' @rdname rmsprop_schedule
#' @param pattern A regular expression (used by tab completion).
#' @exportS3Method utils::.DollarNames rmsprop_schedule
.DollarNames.rmsprop_schedule <- function(x, pattern = "") {
  fields <- c("get_config", names(schedule_config(x)))
  grep(pattern, fields, value = TRUE)
}
