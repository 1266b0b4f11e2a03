# Learning-rate schedules: published Keras values, an independent plain-R
# reference written from SPEC A4 (one step at a time, SPEC's grouping of the
# operations), argument errors, vectorisation, printing, configuration and
# serialization round trips. Uses exported functions plus rmsprop::: internals
# only where named, so it runs against the installed package too.

internal <- function(name) {
  if (exists(name, mode = "function")) get(name, mode = "function")
  else utils::getFromNamespace(name, "rmsprop")
}

# --- plain-R reference (SPEC A4), scalar step --------------------------------

ref_exponential <- function(s, lr0, decay_steps, decay_rate, staircase = FALSE) {
  p <- s / decay_steps
  if (staircase) p <- floor(p)
  lr0 * decay_rate^p
}

ref_inverse_time <- function(s, lr0, decay_steps, decay_rate, staircase = FALSE) {
  p <- s / decay_steps
  if (staircase) p <- floor(p)
  lr0 / (1 + decay_rate * p)
}

ref_piecewise <- function(s, b, values) {
  if (s <= b[1]) return(values[1])
  for (i in seq_along(b)[-1]) {
    if (b[i - 1] < s && s <= b[i]) return(values[i])
  }
  values[length(values)]
}

ref_polynomial <- function(s, lr0, decay_steps, end = 1e-4, power = 1, cycle = FALSE) {
  if (cycle) {
    D <- decay_steps * (if (s == 0) 1 else ceiling(s / decay_steps))
  } else {
    s <- min(s, decay_steps)
    D <- decay_steps
  }
  (lr0 - end) * (1 - s / D)^power + end
}

ref_cosine <- function(s, lr0, decay_steps, alpha = 0, warmup_target = NULL,
                       warmup_steps = 0) {
  dec <- function(s, D, from) from * ((1 - alpha) * 0.5 * (1 + cos(pi * s / D)) + alpha)
  if (is.null(warmup_target)) return(dec(min(s, decay_steps), decay_steps, lr0))
  s <- min(s, decay_steps + warmup_steps)
  if (s < warmup_steps) {
    (warmup_target - lr0) * s / warmup_steps + lr0
  } else {
    dec(s - warmup_steps, decay_steps, warmup_target)
  }
}

ref_restarts <- function(s, lr0, first_decay_steps, t_mul = 2, m_mul = 1, alpha = 0) {
  f <- s / first_decay_steps
  if (t_mul == 1) {
    i <- floor(f)
    f <- f - i
  } else {
    i <- floor(log(1 - f * (1 - t_mul)) / log(t_mul))
    f <- (f - (1 - t_mul^i) / (1 - t_mul)) / t_mul^i
  }
  lr0 * ((1 - alpha) * 0.5 * m_mul^i * (1 + cos(pi * f)) + alpha)
}

ref_values <- function(ref, steps, ...) vapply(steps, function(s) ref(s, ...), numeric(1))

# Steps 0..n, plus fractional steps, plus extra steps of interest.
steps_with <- function(n, ...) sort(unique(c(0:n, seq(0, n, by = 0.37), ...)))

# --- published values (SPEC Part C) ------------------------------------------

test_that("schedules reproduce the published Keras values", {
  s <- learning_rate_schedule_exponential_decay(0.05, 10, 0.96)
  expect_equal(s(5), 0.05 * 0.96^0.5, tolerance = 1e-12)

  s <- learning_rate_schedule_piecewise_constant_decay(c(100, 110, 120),
                                                       c(1, 0.1, 0.01, 0.001))
  expect_identical(s(c(100, 105, 110, 120, 999)), c(1, 0.1, 0.1, 0.01, 0.001))

  s <- learning_rate_schedule_cosine_decay(1, 1000)
  expect_equal(s(250), 0.8535533905932737, tolerance = 1e-12)

  s <- learning_rate_schedule_cosine_decay(0, 1000, warmup_target = 10, warmup_steps = 2000)
  expect_equal(s(2250), 8.535533905932738, tolerance = 1e-12)

  s <- learning_rate_schedule_cosine_decay_restarts(1, 1000, m_mul = 0.9)
  expect_equal(s(1250), 0.8657457896300791, tolerance = 1e-12)

  s <- learning_rate_schedule_polynomial_decay(0.05, 10, end_learning_rate = 0.001, cycle = TRUE)
  expect_equal(s(15), 0.01325, tolerance = 1e-12)
})

test_that("formals and defaults match keras3", {
  expect_identical(
    formals(learning_rate_schedule_exponential_decay),
    as.pairlist(alist(initial_learning_rate = , decay_steps = , decay_rate = ,
                      staircase = FALSE, name = "ExponentialDecay"))
  )
  expect_identical(
    formals(learning_rate_schedule_inverse_time_decay),
    as.pairlist(alist(initial_learning_rate = , decay_steps = , decay_rate = ,
                      staircase = FALSE, name = "InverseTimeDecay"))
  )
  expect_identical(
    formals(learning_rate_schedule_piecewise_constant_decay),
    as.pairlist(alist(boundaries = , values = , name = "PiecewiseConstant"))
  )
  expect_identical(
    formals(learning_rate_schedule_polynomial_decay),
    as.pairlist(alist(initial_learning_rate = , decay_steps = , end_learning_rate = 1e-04,
                      power = 1, cycle = FALSE, name = "PolynomialDecay"))
  )
  expect_identical(
    formals(learning_rate_schedule_cosine_decay),
    as.pairlist(alist(initial_learning_rate = , decay_steps = , alpha = 0,
                      name = "CosineDecay", warmup_target = NULL, warmup_steps = 0L))
  )
  expect_identical(
    formals(learning_rate_schedule_cosine_decay_restarts),
    as.pairlist(alist(initial_learning_rate = , first_decay_steps = , t_mul = 2,
                      m_mul = 1, alpha = 0, name = "SGDRDecay"))
  )
})

# --- against the reference ---------------------------------------------------

test_that("exponential decay matches the reference, smooth and staircase", {
  for (staircase in c(FALSE, TRUE)) {
    for (rate in c(0, 0.5, 0.96, 1, 1.5)) {
      s <- learning_rate_schedule_exponential_decay(0.1, 7, rate, staircase = staircase)
      steps <- steps_with(60, 6.999999, 7, 7.000001, 14, 1e6)
      expect_equal(s(steps),
                   ref_values(ref_exponential, steps, 0.1, 7, rate, staircase),
                   tolerance = 1e-12)
    }
  }
  s <- learning_rate_schedule_exponential_decay(1, 10, 0.5, staircase = TRUE)
  expect_identical(s(c(0, 9.999, 10, 19, 20)), c(1, 1, 0.5, 0.5, 0.25))
  s <- learning_rate_schedule_exponential_decay(1, 10, 0.5)
  expect_identical(s(c(0, 10, 20)), c(1, 0.5, 0.25))
  expect_lt(s(9.999), 1)
  expect_gt(s(9.999), 0.5)
})

test_that("inverse time decay matches the reference, smooth and staircase", {
  for (staircase in c(FALSE, TRUE)) {
    for (rate in c(0, 0.5, 2)) {
      s <- learning_rate_schedule_inverse_time_decay(0.3, 4.5, rate, staircase = staircase)
      steps <- steps_with(50, 4.4999, 4.5, 4.5001, 9, 1e7)
      expect_equal(s(steps),
                   ref_values(ref_inverse_time, steps, 0.3, 4.5, rate, staircase),
                   tolerance = 1e-12)
    }
  }
  s <- learning_rate_schedule_inverse_time_decay(1, 10, 1, staircase = TRUE)
  expect_identical(s(c(0, 9.5, 10, 20)), c(1, 1, 0.5, 1 / 3))
})

test_that("piecewise constant decay matches the reference around every boundary", {
  b <- c(3, 10.5, 11, 40)
  v <- c(0.9, 0.5, 0.25, 0.125, 0.01)
  s <- learning_rate_schedule_piecewise_constant_decay(b, v)
  eps <- 1e-9
  steps <- steps_with(50, b, b - eps, b + eps, 1e9)
  expect_identical(s(steps), ref_values(ref_piecewise, steps, b, v))
  expect_identical(s(c(3, 3 + eps, 10.5, 10.5 + eps, 11, 11 + eps, 40, 40 + eps)),
                   c(0.9, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.01))
  # one boundary, integer inputs, a boundary at 0 and below 0
  s <- learning_rate_schedule_piecewise_constant_decay(5L, c(2L, 1L))
  expect_identical(s(c(0, 5, 6)), c(2, 2, 1))
  s <- learning_rate_schedule_piecewise_constant_decay(c(-1, 0), c(3, 2, 1))
  expect_identical(s(c(0, 1e-12, 5)), c(2, 1, 1))
})

test_that("polynomial decay matches the reference, with and without cycle", {
  for (cycle in c(FALSE, TRUE)) {
    for (power in c(0.5, 1, 2, 3.7)) {
      s <- learning_rate_schedule_polynomial_decay(0.2, 9, 0.02, power = power, cycle = cycle)
      steps <- steps_with(60, 8.9999, 9, 9.0001, 18, 27, 1e6)
      expect_equal(s(steps),
                   ref_values(ref_polynomial, steps, 0.2, 9, 0.02, power, cycle),
                   tolerance = 1e-12)
    }
  }
  # no cycle: stays at the end rate after decay_steps
  s <- learning_rate_schedule_polynomial_decay(1, 10, end_learning_rate = 0.1)
  expect_identical(s(c(0, 10, 11, 1e6)), c(1, 0.1, 0.1, 0.1))
  # cycle: exact multiples end a cycle at the end rate, the next step restarts
  s <- learning_rate_schedule_polynomial_decay(1, 10, end_learning_rate = 0, cycle = TRUE)
  expect_identical(s(c(0, 10, 20, 30)), c(1, 0, 0, 0))
  expect_equal(s(c(11, 21)), c(1 - 11 / 20, 1 - 21 / 30), tolerance = 1e-12)
  # default end rate
  s <- learning_rate_schedule_polynomial_decay(0.1, 10)
  expect_equal(s(10), 1e-4)
  # an end rate above the start rate increases
  s <- learning_rate_schedule_polynomial_decay(0, 10, end_learning_rate = 1)
  expect_equal(s(c(0, 5, 10)), c(0, 0.5, 1), tolerance = 1e-12)
})

test_that("cosine decay matches the reference, with and without warmup", {
  for (alpha in c(0, 0.1, 1)) {
    s <- learning_rate_schedule_cosine_decay(0.5, 40, alpha = alpha)
    steps <- steps_with(60, 39.999, 40, 40.001, 1e6)
    expect_equal(s(steps), ref_values(ref_cosine, steps, 0.5, 40, alpha),
                 tolerance = 1e-12)
    for (warmup_steps in c(0, 1, 13, 13.5)) {
      for (lr0 in c(0, 0.05, 0.8)) {
        s <- learning_rate_schedule_cosine_decay(lr0, 40, alpha = alpha,
                                                 warmup_target = 0.4,
                                                 warmup_steps = warmup_steps)
        steps <- steps_with(80, warmup_steps + c(-1e-6, 0, 1e-6, 40, 40 + 1e-6), 1e6)
        steps <- steps[steps >= 0]
        expect_equal(s(steps),
                     ref_values(ref_cosine, steps, lr0, 40, alpha, 0.4, warmup_steps),
                     tolerance = 1e-12)
      }
    }
  }
  s <- learning_rate_schedule_cosine_decay(1, 100, alpha = 0.2)
  expect_identical(s(c(0, 100, 200)), c(1, 0.2, 0.2))
  # warmup start, middle, end and the end of the decay
  s <- learning_rate_schedule_cosine_decay(0.1, 100, warmup_target = 1, warmup_steps = 10)
  expect_equal(s(c(0, 5, 10, 60, 110, 1000)), c(0.1, 0.55, 1, 0.5, 0, 0),
               tolerance = 1e-12)
  # warmup_steps = 0 with a target: decays from the target from step 0
  s <- learning_rate_schedule_cosine_decay(0.1, 100, warmup_target = 1)
  expect_equal(s(c(0, 50, 100)), c(1, 0.5, 0), tolerance = 1e-12)
})

test_that("cosine decay restarts matches the reference, t_mul == 1 and != 1", {
  for (t_mul in c(1, 2, 0.5, 1.5, 3)) {
    for (m_mul in c(1, 0.9, 1.3)) {
      for (alpha in c(0, 0.25)) {
        s <- learning_rate_schedule_cosine_decay_restarts(0.7, 12, t_mul = t_mul,
                                                          m_mul = m_mul, alpha = alpha)
        steps <- steps_with(200, 11.999, 12, 12.001)
        if (t_mul < 1) steps <- steps[steps < 12 / (1 - t_mul)]
        expect_equal(s(steps),
                     ref_values(ref_restarts, steps, 0.7, 12, t_mul, m_mul, alpha),
                     tolerance = 1e-12)
      }
    }
  }
  # restart boundaries, t_mul = 1: periods of 10 steps
  s <- learning_rate_schedule_cosine_decay_restarts(1, 10, t_mul = 1, m_mul = 0.5)
  expect_equal(s(c(0, 5, 10, 15, 20, 25)), c(1, 0.5, 0.5, 0.25, 0.25, 0.125),
               tolerance = 1e-12)
  expect_equal(s(9.999999), 0, tolerance = 1e-9)
  # t_mul = 2: restarts at 10, 30, 70, 150 (exact in binary)
  s <- learning_rate_schedule_cosine_decay_restarts(1, 10, t_mul = 2, m_mul = 0.5, alpha = 0.1)
  expect_equal(s(c(0, 10, 30, 70, 150)), 0.1 + 0.9 * 0.5^(0:4), tolerance = 1e-12)
  expect_equal(s(c(20, 50, 110)), 0.1 + 0.9 * 0.5 * 0.5^(1:3), tolerance = 1e-12)
  expect_equal(s(c(29.999999, 69.999999)), c(0.1, 0.1), tolerance = 1e-9)
  # t_mul < 1: periods 10, 5, 2.5, ... all end at step 20
  s <- learning_rate_schedule_cosine_decay_restarts(1, 10, t_mul = 0.5)
  expect_equal(s(c(0, 10, 15, 17.5)), c(1, 1, 1, 1), tolerance = 1e-12)
  expect_equal(s(c(12.5, 19.9)), ref_values(ref_restarts, c(12.5, 19.9), 1, 10, 0.5),
               tolerance = 1e-12)
  err <- expect_error(s(c(1, 20)), class = "rmsprop_error_argument")
  expect_match(conditionMessage(err), "`step`")
  expect_match(conditionMessage(err), "20")
  expect_error(s(1e6), class = "rmsprop_error_argument")
})

# --- calling a schedule ------------------------------------------------------

test_that("schedules are vectorised functions of the step", {
  s <- learning_rate_schedule_cosine_decay(1, 1000)
  steps <- 0:1000
  out <- s(steps)
  expect_type(out, "double")
  expect_length(out, 1001L)
  expect_identical(out, vapply(steps, s, numeric(1)))
  expect_identical(s(5L), s(5))
  expect_identical(s(numeric(0)), numeric(0))
  expect_identical(s(matrix(c(0, 250), 1)), s(c(0, 250)))
  pdf(NULL)
  on.exit(dev.off(), add = TRUE)
  expect_no_error(plot(0:1000, s(0:1000)))
})

test_that("bad steps are classed errors", {
  s <- learning_rate_schedule_exponential_decay(0.1, 10, 0.9)
  bad_steps <- list(-1, c(1, -0.5), NA_real_, c(1, NA), NA, "1", TRUE, Inf, NaN,
                    list(1), factor(1), NULL, 1i)
  for (step in bad_steps) {
    expect_error(s(step), class = "rmsprop_error_argument")
  }
  err <- tryCatch(s(-1), error = identity)
  expect_s3_class(err, "rmsprop_error")
  expect_match(conditionMessage(err), "`step`")
  expect_match(conditionMessage(err), "-1")
  expect_error(s(), class = "rmsprop_error_argument")
})

# --- argument errors ---------------------------------------------------------

expect_arg_error <- function(expr, arg) {
  err <- expect_error(expr, class = "rmsprop_error_argument")
  expect_s3_class(err, "rmsprop_error")
  expect_match(conditionMessage(err), paste0("`", arg, "`"), fixed = TRUE)
  invisible(err)
}

test_that("bad arguments are classed errors naming the argument", {
  bad_lr <- list(-0.1, NA_real_, Inf, NaN, "0.1", NULL, c(0.1, 0.2), TRUE, list(0.1))
  bad_steps <- list(0, -1, Inf, NA, "10", NULL, c(1, 2))
  bad_name <- list("", NA_character_, c("a", "b"), 1, NULL)
  bad_flag <- list(NA, 1, "TRUE", c(TRUE, FALSE), NULL)

  for (ctor in list(learning_rate_schedule_exponential_decay,
                    learning_rate_schedule_inverse_time_decay)) {
    for (x in bad_lr) expect_arg_error(ctor(x, 10, 0.5), "initial_learning_rate")
    for (x in bad_steps) expect_arg_error(ctor(0.1, x, 0.5), "decay_steps")
    for (x in list(-0.5, Inf, NA, "a", NULL)) expect_arg_error(ctor(0.1, 10, x), "decay_rate")
    for (x in bad_flag) expect_arg_error(ctor(0.1, 10, 0.5, staircase = x), "staircase")
    for (x in bad_name) expect_arg_error(ctor(0.1, 10, 0.5, name = x), "name")
    expect_error(ctor(0.1, 10), "decay_rate")
  }

  pc <- learning_rate_schedule_piecewise_constant_decay
  for (x in list(c(1, 1), c(2, 1), c(1, NA), c(1, Inf), "1", numeric(0), NULL, list(1, 2)))
    expect_arg_error(pc(x, c(1, 2, 3)[seq_len(max(1, length(x)) + 1)]), "boundaries")
  for (x in list(c(1, NA), c(1, Inf), c("a", "b"), NULL, list(1, 2)))
    expect_arg_error(pc(5, x), "values")
  expect_arg_error(pc(c(1, 2), c(1, 2)), "values")
  expect_arg_error(pc(c(1, 2), c(1, 2, 3, 4)), "values")
  for (x in bad_name) expect_arg_error(pc(5, c(1, 2), name = x), "name")

  pd <- learning_rate_schedule_polynomial_decay
  for (x in bad_lr) expect_arg_error(pd(x, 10), "initial_learning_rate")
  for (x in bad_steps) expect_arg_error(pd(0.1, x), "decay_steps")
  for (x in bad_lr) expect_arg_error(pd(0.1, 10, end_learning_rate = x), "end_learning_rate")
  for (x in list(NA, Inf, -Inf, "1", NULL, c(1, 2)))
    expect_arg_error(pd(0.1, 10, power = x), "power")
  for (x in bad_flag) expect_arg_error(pd(0.1, 10, cycle = x), "cycle")
  for (x in bad_name) expect_arg_error(pd(0.1, 10, name = x), "name")

  cd <- learning_rate_schedule_cosine_decay
  for (x in bad_lr) expect_arg_error(cd(x, 10), "initial_learning_rate")
  for (x in bad_steps) expect_arg_error(cd(0.1, x), "decay_steps")
  for (x in list(-0.1, 1.1, NA, Inf, "0", NULL))
    expect_arg_error(cd(0.1, 10, alpha = x), "alpha")
  for (x in bad_name) expect_arg_error(cd(0.1, 10, name = x), "name")
  for (x in list(-1, NA, Inf, NaN, "1", c(1, 2), TRUE))
    expect_arg_error(cd(0.1, 10, warmup_target = x), "warmup_target")
  for (x in list(-1, NA, Inf, "1", NULL, c(1, 2)))
    expect_arg_error(cd(0.1, 10, warmup_target = 1, warmup_steps = x), "warmup_steps")

  cr <- learning_rate_schedule_cosine_decay_restarts
  for (x in bad_lr) expect_arg_error(cr(x, 10), "initial_learning_rate")
  for (x in bad_steps) expect_arg_error(cr(0.1, x), "first_decay_steps")
  for (x in list(0, -1, Inf, NA, "2", NULL)) expect_arg_error(cr(0.1, 10, t_mul = x), "t_mul")
  for (x in list(0, -1, Inf, NA, "2", NULL)) expect_arg_error(cr(0.1, 10, m_mul = x), "m_mul")
  for (x in list(-0.1, 1.1, NA, "0", NULL)) expect_arg_error(cr(0.1, 10, alpha = x), "alpha")
  for (x in bad_name) expect_arg_error(cr(0.1, 10, name = x), "name")

  # the message shows what was received
  err <- expect_arg_error(learning_rate_schedule_exponential_decay(-2, 10, 0.5),
                          "initial_learning_rate")
  expect_match(conditionMessage(err), "-2", fixed = TRUE)
  err <- expect_arg_error(pc(c(3, 2), c(1, 2, 3)), "boundaries")
  expect_match(conditionMessage(err), "c(3, 2)", fixed = TRUE)
})

test_that("edge values of the arguments are accepted", {
  expect_no_error(learning_rate_schedule_exponential_decay(0, 1e-9, 0))
  expect_no_error(learning_rate_schedule_inverse_time_decay(0L, 1L, 0L))
  expect_no_error(learning_rate_schedule_polynomial_decay(0, 1, 0, power = -1))
  expect_no_error(learning_rate_schedule_cosine_decay(0, 1, alpha = 1, warmup_target = 0))
  expect_no_error(learning_rate_schedule_cosine_decay_restarts(0, 1, t_mul = 1e-3,
                                                               m_mul = 1e3, alpha = 1))
})

# --- classes, fields, printing -----------------------------------------------

all_kinds <- function() {
  list(
    exponential_decay = learning_rate_schedule_exponential_decay(0.1, 10, 0.9, staircase = TRUE),
    inverse_time_decay = learning_rate_schedule_inverse_time_decay(0.1, 10, 0.5, name = "itd"),
    piecewise_constant_decay = learning_rate_schedule_piecewise_constant_decay(
      c(10L, 20L), c(0.1, 0.01, 0.001)),
    polynomial_decay = learning_rate_schedule_polynomial_decay(0.1, 10, power = 2, cycle = TRUE),
    cosine_decay = learning_rate_schedule_cosine_decay(0.1, 10, alpha = 0.1),
    cosine_decay_warmup = learning_rate_schedule_cosine_decay(0, 10, warmup_target = 0.1,
                                                               warmup_steps = 5L),
    cosine_decay_restarts = learning_rate_schedule_cosine_decay_restarts(0.1, 10, t_mul = 1.5,
                                                                         m_mul = 0.8)
  )
}

constructor_of <- function(kind) {
  kind <- sub("_warmup$", "", kind)
  get(paste0("learning_rate_schedule_", kind), mode = "function")
}

test_that("schedules have the documented classes and are recognised", {
  is_schedule <- internal("is_schedule")
  for (kind in names(all_kinds())) {
    s <- all_kinds()[[kind]]
    base_kind <- sub("_warmup$", "", kind)
    expect_identical(class(s), c(paste0("rmsprop_schedule_", base_kind),
                                 "rmsprop_schedule", "function"))
    expect_true(is.function(s))
    expect_true(is_schedule(s))
  }
  expect_false(is_schedule(function(step) 0.1))
  expect_false(is_schedule(0.1))
  expect_false(is_schedule(structure(list(), class = "rmsprop_schedule")))
})

test_that("get_config gives exactly the constructor's arguments and rebuilds the schedule", {
  schedule_config <- internal("schedule_config")
  steps <- steps_with(300, 1e5)
  for (kind in names(all_kinds())) {
    s <- all_kinds()[[kind]]
    ctor <- constructor_of(kind)
    config <- s$get_config()
    expect_type(config, "list")
    expect_identical(names(config), names(formals(ctor)))
    expect_identical(config, schedule_config(s))
    rebuilt <- do.call(ctor, config)
    expect_identical(rebuilt$get_config(), config)
    expect_identical(rebuilt(steps), s(steps))
    expect_equal(rebuilt, s)
    for (field in names(config)) {
      expect_identical(eval(parse(text = paste0("s$", field))), config[[field]])
    }
  }
  s <- learning_rate_schedule_cosine_decay(0.1, 10)
  expect_true("warmup_target" %in% names(s$get_config()))
  expect_null(s$get_config()$warmup_target)
  expect_null(s$warmup_target)
  expect_identical(s$warmup_steps, 0L)
  expect_identical(s$name, "CosineDecay")
  expect_identical(s$decay_steps, 10)
  expect_error(schedule_config(function(step) 1), class = "rmsprop_error_argument")
})

test_that("`$` gives config entries, rejects unknown fields and assignment", {
  s <- learning_rate_schedule_exponential_decay(0.1, 10, 0.9, name = "mine")
  expect_identical(s$initial_learning_rate, 0.1)
  expect_identical(s$decay_steps, 10)
  expect_identical(s$decay_rate, 0.9)
  expect_false(s$staircase)
  expect_identical(s$name, "mine")
  err <- expect_error(s$nope, class = "rmsprop_error_argument")
  expect_match(conditionMessage(err), "nope")
  expect_error(s$decay_rate <- 0.5, class = "rmsprop_error_argument")
  expect_identical(s$decay_rate, 0.9)
  expect_identical(sort(utils::.DollarNames(s, "")),
                   sort(c("get_config", names(formals(learning_rate_schedule_exponential_decay)))))
})

test_that("format and print never fail and show the kind and config", {
  many <- learning_rate_schedule_piecewise_constant_decay(as.double(1:500), rep(0.1, 501))
  odd_name <- learning_rate_schedule_exponential_decay(0.1, 10, 0.9,
                                                       name = strrep("n\"ame\n", 50))
  for (s in c(all_kinds(), list(many, odd_name))) {
    lines <- format(s)
    expect_type(lines, "character")
    expect_gte(length(lines), 2L)
    expect_match(lines[1], sub("rmsprop_schedule_", "", class(s)[1]), fixed = TRUE)
    expect_match(paste(lines, collapse = " "), "name = ", fixed = TRUE)
    out <- expect_output(res <- withVisible(print(s)))
    expect_false(res$visible)
    expect_identical(res$value, s)
    expect_identical(capture.output(print(s)), lines)
  }
  s <- learning_rate_schedule_exponential_decay(0.05, 10, 0.96)
  text <- paste(format(s), collapse = "\n")
  expect_match(text, "exponential_decay")
  expect_match(text, "initial_learning_rate = 0.05")
  expect_match(text, "decay_rate = 0.96")
  expect_match(text, "staircase = FALSE")
  expect_match(text, "name = \"ExponentialDecay\"", fixed = TRUE)
  expect_match(paste(format(all_kinds()$cosine_decay), collapse = " "), "warmup_target = NULL")
})

# --- serialization -----------------------------------------------------------

test_that("schedules survive saveRDS/readRDS and serialize", {
  steps <- steps_with(500, 1e5)
  file <- tempfile(fileext = ".rds")
  on.exit(unlink(file), add = TRUE)
  for (kind in names(all_kinds())) {
    s <- all_kinds()[[kind]]
    saveRDS(s, file)
    from_file <- readRDS(file)
    from_raw <- unserialize(serialize(s, NULL))
    for (copy in list(from_file, from_raw)) {
      expect_identical(class(copy), class(s))
      expect_identical(copy(steps), s(steps))
      expect_identical(copy$get_config(), s$get_config())
      expect_equal(copy, s)
      expect_true(identical(copy, s, ignore.environment = TRUE))
      expect_identical(format(copy), format(s))
    }
  }
  # no external pointers or other references to this session
  s <- all_kinds()$cosine_decay_restarts
  expect_lt(length(serialize(s, NULL)), 5000)
  expect_setequal(ls(environment(s), all.names = TRUE), c("kind", "config"))
})

test_that("different schedules compare as different", {
  a <- learning_rate_schedule_exponential_decay(0.1, 10, 0.9)
  b <- learning_rate_schedule_exponential_decay(0.1, 10, 0.8)
  expect_false(isTRUE(all.equal(a, b)))
  expect_false(identical(a, b, ignore.environment = TRUE) &&
                 identical(a$get_config(), b$get_config()))
})

# --- short labels (plot legends, summaries) ----------------------------------

test_that("format(short = TRUE) reads like the call, without defaults", {
  label <- function(s) format(s, short = TRUE)
  expect_identical(label(learning_rate_schedule_cosine_decay(0.1, decay_steps = 500)),
                   "cosine_decay(0.1, decay_steps = 500)")
  expect_identical(label(learning_rate_schedule_cosine_decay(0, 1000, warmup_target = 0.1,
                                                             warmup_steps = 200L)),
                   "cosine_decay(0, decay_steps = 1000, warmup_target = 0.1, warmup_steps = 200)")
  expect_identical(label(learning_rate_schedule_exponential_decay(0.05, 500, 0.5)),
                   "exponential_decay(0.05, decay_steps = 500, decay_rate = 0.5)")
  expect_identical(label(learning_rate_schedule_exponential_decay(0.05, 500L, 0.5,
                                                                  staircase = TRUE,
                                                                  name = "my \"lr\"")),
                   paste0("exponential_decay(0.05, decay_steps = 500, decay_rate = 0.5, ",
                          "staircase = TRUE, name = \"my \\\"lr\\\"\")"))
  expect_identical(label(learning_rate_schedule_inverse_time_decay(1 / 3, 100, 0.5)),
                   "inverse_time_decay(0.3333333, decay_steps = 100, decay_rate = 0.5)")
  expect_identical(label(learning_rate_schedule_piecewise_constant_decay(c(100, 110),
                                                                         c(1, 0.1, 0.01))),
                   "piecewise_constant_decay(boundaries = c(100, 110), values = c(1, 0.1, 0.01))")
  expect_identical(label(learning_rate_schedule_piecewise_constant_decay(as.double(1:500),
                                                                         rep(0.1, 501))),
                   paste0("piecewise_constant_decay(boundaries = c(1, 2, 3, ..., 500), ",
                          "values = c(0.1, 0.1, 0.1, ..., 0.1))"))
  expect_identical(label(learning_rate_schedule_polynomial_decay(0.1, 100, 1e-4, power = 2,
                                                                 cycle = TRUE)),
                   "polynomial_decay(0.1, decay_steps = 100, power = 2, cycle = TRUE)")
  expect_identical(label(learning_rate_schedule_polynomial_decay(0.1, 100, 0.01)),
                   "polynomial_decay(0.1, decay_steps = 100, end_learning_rate = 0.01)")
  expect_identical(label(learning_rate_schedule_cosine_decay_restarts(0.1, 100, m_mul = 0.8)),
                   "cosine_decay_restarts(0.1, first_decay_steps = 100, m_mul = 0.8)")
  for (s in all_kinds()) {
    expect_length(label(s), 1L)
    expect_match(label(s), paste0("^", sub("rmsprop_schedule_", "", class(s)[1]), "\\("))
  }
  # the full format is unchanged by the argument's existence
  s <- learning_rate_schedule_exponential_decay(0.05, 10, 0.96)
  expect_identical(format(s, short = FALSE), format(s))
})
