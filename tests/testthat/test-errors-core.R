# Error paths of optimizer_rmsprop() and of a step (SPEC B): classed
# conditions whose messages name the argument, and nothing changes on error.

expect_argument_error <- function(expr, arg) {
  err <- expect_error(expr, class = "rmsprop_error_argument", label = arg)
  if (!is.null(err)) {
    expect_s3_class(err, "rmsprop_error")
    expect_match(conditionMessage(err), arg, fixed = TRUE, label = paste("message for", arg))
  }
  invisible(err)
}

bad_values <- list(
  learning_rate = list("a", NA, NA_real_, c(0.1, 0.2), -0.001, Inf, NaN, list(0.1), TRUE),
  rho = list("a", NA, NA_real_, c(0.5, 0.6), -0.1, 1.1, Inf, NULL),
  momentum = list("a", NA, NA_real_, c(0, 0.1), -0.1, 1.5, Inf, NULL),
  epsilon = list("a", NA, NA_real_, c(1e-7, 1e-7), 0, -1e-7, Inf, NULL),
  centered = list("yes", NA, c(TRUE, FALSE), NULL, 1, "TRUE"),
  weight_decay = list("a", NA, NA_real_, c(0.1, 0.2), -0.1, Inf),
  clipnorm = list("a", NA, NA_real_, c(1, 2), 0, -1, Inf),
  clipvalue = list("a", NA, NA_real_, c(1, 2), 0, -1, Inf),
  global_clipnorm = list("a", NA, NA_real_, c(1, 2), 0, -1, Inf),
  use_ema = list("yes", NA, c(TRUE, FALSE), NULL, 1),
  ema_momentum = list("a", NA, NA_real_, c(0.9, 0.9), -0.1, 1.1, Inf, NULL),
  ema_overwrite_frequency = list("a", NA, NA_real_, c(1, 2), 0, -1, 1.5, Inf),
  name = list("", NA, NA_character_, c("a", "b"), 1, NULL, character(0)),
  loss_scale_factor = list("a", NA, NA_real_, c(1, 2), 0, -1, Inf),
  gradient_accumulation_steps = list("a", NA, NA_real_, c(2, 3), 1, 0, -2, 2.5, Inf)
)

test_that("every argument rejects wrong type, NA, length 2 and out-of-range values", {
  for (arg in names(bad_values)) {
    for (i in seq_along(bad_values[[arg]])) {
      args <- list()
      args[arg] <- list(bad_values[[arg]][[i]])
      expect_argument_error(do.call(optimizer_rmsprop, args),
                            arg)
    }
  }
})

test_that("boundary values inside the ranges are accepted", {
  expect_s3_class(optimizer_rmsprop(learning_rate = 0), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(rho = 0), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(rho = 1), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(momentum = 1), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(weight_decay = 0), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(ema_momentum = 0), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(ema_momentum = 1), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(ema_overwrite_frequency = 1), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(gradient_accumulation_steps = 2L), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(learning_rate = function() 0.1), "rmsprop_optimizer")
  expect_s3_class(optimizer_rmsprop(learning_rate = 1L), "rmsprop_optimizer")
})

test_that("at most one of clipnorm, clipvalue and global_clipnorm", {
  e <- expect_error(optimizer_rmsprop(clipnorm = 1, clipvalue = 1), class = "rmsprop_error_argument")
  expect_match(conditionMessage(e), "clipnorm")
  expect_match(conditionMessage(e), "clipvalue")
  e <- expect_error(optimizer_rmsprop(clipnorm = 1, global_clipnorm = 1), class = "rmsprop_error_argument")
  expect_match(conditionMessage(e), "global_clipnorm")
  expect_error(optimizer_rmsprop(clipvalue = 1, global_clipnorm = 1), class = "rmsprop_error_argument")
  expect_error(optimizer_rmsprop(clipnorm = 1, clipvalue = 2, global_clipnorm = 3),
               class = "rmsprop_error_argument")
})

test_that("`...`: unnamed entries, lr, decay and unknown names", {
  # Every formal before `...` named, so the extra value lands in `...`.
  expect_error(
    optimizer_rmsprop(learning_rate = 0.1, rho = 0.9, momentum = 0, epsilon = 1e-7,
                      centered = FALSE, weight_decay = NULL, clipnorm = NULL, clipvalue = NULL,
                      global_clipnorm = NULL, use_ema = FALSE, ema_momentum = 0.99,
                      ema_overwrite_frequency = NULL, name = "rmsprop", 5),
    class = "rmsprop_error_argument"
  )
  # `lr` is the deprecated alias of learning_rate.
  expect_warning(opt <- optimizer_rmsprop(lr = 0.25), "lr")
  expect_equal(opt$learning_rate, 0.25)
  out <- suppressWarnings(optimizer_rmsprop(lr = 0.5))$step(c(1, 6, 7, 2), c(1, 2, 3, 4))
  expect_equal(out, c(-0.5811, 0.4189, 1.4189, 2.4189), tolerance = 1e-4)
  # A bad `lr` is checked like learning_rate.
  expect_error(suppressWarnings(optimizer_rmsprop(lr = -1)), class = "rmsprop_error_argument")
  # Both given.
  e <- expect_error(suppressWarnings(optimizer_rmsprop(learning_rate = 0.1, lr = 0.2)),
                    class = "rmsprop_error_argument")
  expect_match(conditionMessage(e), "lr")
  # `decay` is ignored with a warning.
  expect_warning(opt <- optimizer_rmsprop(learning_rate = 0.1, decay = 0.5), "decay")
  expect_equal(opt$learning_rate, 0.1)
  out <- suppressWarnings(optimizer_rmsprop(learning_rate = 0.1, decay = 0.5))$step(10, 10)
  expect_equal(out, 10 - 0.1 * 10 / sqrt(0.1 * 100 + 1e-7), tolerance = 1e-14)
  # Any other name is an error naming it.
  e <- expect_error(optimizer_rmsprop(foo_bar = 1), class = "rmsprop_error_argument")
  expect_match(conditionMessage(e), "foo_bar", fixed = TRUE)
  e <- expect_error(optimizer_rmsprop(learning_rate = 0.1, nesterov = TRUE), class = "rmsprop_error_argument")
  expect_match(conditionMessage(e), "nesterov", fixed = TRUE)
})

# ---------------------------------------------------------------------------
# Step errors: the step is refused and nothing changes.

# Run `bad(opt, vars)` on a built optimizer (after two steps) and on a fresh
# one; expect an rmsprop_error (and `class` if given) and no change anywhere.
expect_step_refused <- function(bad, vars, class = NULL, label = "", cfg = list(learning_rate = 0.1, momentum = 0.5, centered = TRUE)) {
  for (built in c(TRUE, FALSE)) {
    opt <- do.call(optimizer_rmsprop, cfg)
    v <- vars
    if (built) {
      set.seed(1)
      for (s in 1:2) v <- opt$step(random_grads_like(vars), v)
    }
    state <- opt$variables
    its <- opt$iterations
    v_copy <- deep_copy(v)
    lab <- paste(label, if (built) "(built)" else "(fresh)")
    err <- expect_error(bad(opt, v), class = "rmsprop_error", label = lab)
    if (!is.null(class) && !is.null(err)) expect_s3_class(err, class)
    expect_identical(opt$variables, state, label = paste("opt$variables after", lab))
    expect_identical(opt$iterations, its, label = paste("opt$iterations after", lab))
    expect_identical(v, v_copy, label = paste("variables after", lab))
    # The optimizer still works and continues as if nothing had happened.
    twin_cfg <- cfg
    good_g <- random_grads_like(vars)
    after <- opt$step(good_g, v)
    ref <- do.call(optimizer_rmsprop, cfg)
    if (built) {
      set.seed(1)
      w <- vars
      for (s in 1:2) w <- ref$step(random_grads_like(vars), w)
    } else {
      w <- v
    }
    expect_identical(after, ref$step(good_g, w), label = paste("continuation after", lab))
  }
}

test_that("non-finite gradients are refused", {
  vars <- list(a = c(1, 2, 3), b = matrix(1:4 / 4, 2))
  for (bad_value in list(NA_real_, NaN, Inf, -Inf, NA)) {
    expect_step_refused(function(opt, v) {
      g <- list(a = c(0.1, 0.2, 0.3), b = matrix(0.1, 2, 2))
      g$b[2, 1] <- bad_value
      opt$step(g, v)
    }, vars, class = "rmsprop_error_gradient", label = paste("gradient", bad_value))
  }
  expect_step_refused(function(opt, v) opt$step(c(1, NaN), v), c(1, 2),
                      class = "rmsprop_error_gradient", label = "single NaN")
})

test_that("non-numeric gradients are refused", {
  vars <- list(a = c(1, 2, 3), b = c(4, 5))
  bads <- list(
    character = c("1", "2"),
    complex = complex(real = c(1, 2), imaginary = 0),
    factor = factor(c("x", "y")),
    raw = as.raw(c(1, 2)),
    list = list(1, 2),
    func = function(x) x,
    env = new.env()
  )
  for (nm in names(bads)) {
    expect_step_refused(function(opt, v) {
      g <- list(a = c(0.1, 0.2, 0.3), b = NULL)
      g["b"] <- list(bads[[nm]])
      opt$step(g, v)
    }, vars, label = paste("gradient of type", nm))
  }
})

test_that("gradients that do not match the variables are refused", {
  vars <- list(a = c(1, 2, 3), b = matrix(1:4 / 4, 2))
  cases <- list(
    wrong_length = list(a = c(0.1, 0.2), b = matrix(0.1, 2, 2)),
    longer = list(a = c(0.1, 0.2, 0.3, 0.4), b = matrix(0.1, 2, 2)),
    wrong_dim = list(a = c(0.1, 0.2, 0.3), b = matrix(0.1, 1, 4)),
    wrong_names = list(a = c(0.1, 0.2, 0.3), c = matrix(0.1, 2, 2)),
    too_few = list(a = c(0.1, 0.2, 0.3)),
    too_many = list(a = c(0.1, 0.2, 0.3), b = matrix(0.1, 2, 2), c = 1),
    empty = list(),
    not_a_list = c(0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1)
  )
  for (nm in names(cases)) {
    expect_step_refused(function(opt, v) opt$step(cases[[nm]], v), vars, label = nm)
  }
  # All gradients NULL.
  expect_step_refused(function(opt, v) opt$step(list(a = NULL, b = NULL), v), vars,
                      label = "all NULL")
  expect_step_refused(function(opt, v) opt$step(NULL, v), c(1, 2), label = "NULL gradient")
})

test_that("empty and non-numeric variables are refused", {
  opt <- optimizer_rmsprop()
  state <- opt$variables
  expect_error(opt$step(list(), list()), class = "rmsprop_error")
  expect_error(opt$step("a", "b"), class = "rmsprop_error")
  expect_error(opt$step(c(1, 2), c("a", "b")), class = "rmsprop_error")
  expect_error(opt$step(1, factor("a")), class = "rmsprop_error")
  expect_error(opt$step(1, 1i), class = "rmsprop_error")
  expect_identical(opt$variables, state)
  expect_equal(opt$iterations, 0)
})

test_that("a structure change between steps is refused and says what differs", {
  vars <- list(a = c(1, 2, 3), b = matrix(1:4 / 4, 2))
  changed <- list(
    renamed = list(a = c(1, 2, 3), z = matrix(1:4 / 4, 2)),
    longer = list(a = c(1, 2, 3, 4), b = matrix(1:4 / 4, 2)),
    new_dim = list(a = c(1, 2, 3), b = matrix(1:4 / 4, 1, 4)),
    extra = list(a = c(1, 2, 3), b = matrix(1:4 / 4, 2), c = 1),
    fewer = list(a = c(1, 2, 3)),
    nested = list(a = list(c(1, 2, 3)), b = matrix(1:4 / 4, 2))
  )
  for (nm in names(changed)) {
    opt <- optimizer_rmsprop(learning_rate = 0.1, momentum = 0.5)
    v <- opt$step(random_grads_like(vars), vars)
    state <- opt$variables
    new_vars <- changed[[nm]]
    new_copy <- deep_copy(new_vars)
    err <- expect_error(opt$step(random_grads_like(new_vars), new_vars), class = "rmsprop_error",
                        label = nm)
    if (!is.null(err)) {
      expect_s3_class(err, "rmsprop_error_structure")
      expect_true(nzchar(conditionMessage(err)))
    }
    expect_identical(opt$variables, state, label = nm)
    expect_equal(opt$iterations, 1, label = nm)
    expect_identical(new_vars, new_copy, label = nm)
  }
  # The length difference is named in the message.
  opt <- optimizer_rmsprop()
  opt$step(list(a = 1, b = c(1, 2)), list(a = 1, b = c(1, 2)))
  err <- expect_error(opt$step(list(a = 1, b = c(1, 2, 3)), list(a = 1, b = c(1, 2, 3))),
                      class = "rmsprop_error_structure")
  expect_match(conditionMessage(err), "b")
})

test_that("exclude_from_weight_decay() after the first step is a state error", {
  opt <- optimizer_rmsprop(weight_decay = 0.1)
  opt$step(1, 1)
  state <- opt$variables
  err <- expect_error(opt$exclude_from_weight_decay(var_names = "variable"),
                      class = "rmsprop_error_state")
  expect_s3_class(err, "rmsprop_error")
  expect_identical(opt$variables, state)
  # And it has no effect on later steps: the variable is still decayed.
  out <- opt$step(0, 2)
  expect_equal(out, 2 - 2 * 0.1 * 0.001, tolerance = 1e-14)
})

test_that("a NULL gradient warns with its class and leaves the variable alone", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  vars <- list(alpha_var = c(1, 2), beta_var = 3)
  expect_warning(out <- opt$step(list(alpha_var = c(1, 1), beta_var = NULL), vars),
                 class = "rmsprop_warning_null_gradient")
  expect_identical(out$beta_var, 3)
  expect_false(identical(out$alpha_var, vars$alpha_var))
  w <- tryCatch(opt$step(list(alpha_var = NULL, beta_var = 1), out), warning = function(w) w)
  expect_s3_class(w, "rmsprop_warning_null_gradient")
  expect_match(conditionMessage(w), "alpha_var", fixed = TRUE)
})

test_that("assigning a bad learning rate is refused and changes nothing", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  opt$step(1, 1)
  state <- opt$variables
  for (bad in list(-1, NA_real_, "a", c(1, 2), Inf)) {
    expect_error(opt$learning_rate <- bad, class = "rmsprop_error")
    expect_equal(opt$learning_rate, 0.1)
  }
  expect_identical(opt$variables, state)
})
