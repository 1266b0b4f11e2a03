# Issue 16, parts 2-3: keras3 habits. Every constructor argument reads as a
# field, read-only; a name the optimizer does not have is a classed error
# that suggests the nearest name; a schedule constructor passed instead of a
# schedule is refused at construction; exclusions show in print() and warn
# when they match nothing.

test_that("every constructor argument reads back as a field", {
  args <- list(learning_rate = 0.01, rho = 0.8, momentum = 0.3, epsilon = 1e-6, centered = TRUE,
               weight_decay = 0.01, clipnorm = 2, use_ema = TRUE, ema_momentum = 0.9,
               ema_overwrite_frequency = 5, name = "mine", loss_scale_factor = 4,
               gradient_accumulation_steps = 3)
  opt <- do.call(optimizer_rmsprop, args)
  for (n in setdiff(names(args), "learning_rate")) {
    expect_identical(opt[[n]], if (is.numeric(args[[n]])) as.double(args[[n]]) else args[[n]],
                     label = n)
    expect_identical(do.call(`$`, list(opt, n)), opt[[n]], label = n)
  }
  expect_identical(opt$learning_rate, 0.01)
  expect_null(opt$clipvalue)
  expect_null(opt$global_clipnorm)
  defaults <- optimizer_rmsprop()
  expect_identical(defaults$name, "rmsprop")
  expect_identical(defaults$epsilon, 1e-7)
  expect_identical(defaults$weight_decay, NULL)
  expect_identical(defaults$centered, FALSE)
  # Read-only, like the other settings.
  expect_error(opt$rho <- 0.5, class = "rmsprop_error_argument")
  expect_error(opt[["name"]] <- "x", class = "rmsprop_error_argument")
  expect_identical(opt$rho, 0.8)
  # Completion offers them.
  expect_true(all(c("rho", "momentum", "step", "last_learning_rate") %in%
                    utils::.DollarNames(opt, "")))
})

test_that("a name the optimizer does not have is a classed error with a suggestion", {
  opt <- optimizer_rmsprop()
  err <- expect_error(opt$stpe(1, 1), class = "rmsprop_error_field")
  expect_match(conditionMessage(err), "no field or method `stpe`; did you mean `step`?", fixed = TRUE)
  expect_identical(err$suggestion, "step")
  err <- expect_error(opt$momentun, class = "rmsprop_error_field")
  expect_identical(err$suggestion, "momentum")
  expect_error(opt[["nope"]], class = "rmsprop_error_field")
  ls <- optimizer_loss_scale(optimizer_rmsprop())
  expect_identical(ls$initial_scale, 32768)
  expect_identical(ls$dynamic_growth_steps, 2000)
  expect_identical(ls$name, "loss_scale_optimizer")
  err <- expect_error(ls$loss_scale_facto, class = "rmsprop_error_field")
  expect_identical(err$suggestion, "loss_scale_factor")
})

test_that("a schedule constructor is refused where a schedule is expected", {
  err <- expect_error(optimizer_rmsprop(learning_rate = learning_rate_schedule_exponential_decay),
                      class = "rmsprop_error_argument")
  expect_match(conditionMessage(err), "call it", fixed = TRUE)
  expect_match(conditionMessage(err), "learning_rate_schedule_exponential_decay", fixed = TRUE)
  opt <- optimizer_rmsprop()
  expect_error(opt$learning_rate <- learning_rate_schedule_cosine_decay,
               class = "rmsprop_error_argument")
  # weight_decay takes a number only, and says what it was given.
  err <- expect_error(optimizer_rmsprop(weight_decay = learning_rate_schedule_cosine_decay(0.1, 10)),
                      class = "rmsprop_error_argument")
  expect_match(conditionMessage(err), "not a learning-rate schedule", fixed = TRUE)
  # A real schedule and a user's function are still fine.
  expect_silent(optimizer_rmsprop(learning_rate = learning_rate_schedule_cosine_decay(0.1, 10)))
  expect_silent(optimizer_rmsprop(learning_rate = function() 0.1))
})

test_that("exclusions show in print() and warn when they match nothing", {
  opt <- optimizer_rmsprop(weight_decay = 0.01)
  opt$exclude_from_weight_decay(var_names = "bias$")
  expect_match(format(opt), "no weight decay for names matching /bias$/ (applies when built)",
               fixed = TRUE, all = FALSE)
  v <- list(dense = list(kernel = matrix(1, 2, 2), bias = c(0, 0)), out_bias = 1)
  v <- opt$step(rapply(v, function(x) x * 0 + 1, how = "replace"), v)
  expect_match(format(opt), "(2 of 3 variables: dense/bias, out_bias)", fixed = TRUE, all = FALSE)
  # A typo in a pattern or a path matches nothing: a warning at build.
  typo <- optimizer_rmsprop(weight_decay = 0.01)
  typo$exclude_from_weight_decay(var_list = "dense/bais", var_names = "^bais")
  expect_warning(typo$build(v), class = "rmsprop_warning_exclusion")
  w <- tryCatch(optimizer_rmsprop(weight_decay = 0.01)$exclude_from_weight_decay(var_names = "zzz")$build(v),
                warning = function(w) w)
  expect_match(conditionMessage(w), "\"zzz\" matches no variable", fixed = TRUE)
  expect_identical(w$unmatched, "zzz")
  # get_config() has the constructor's arguments only; clone() keeps exclusions.
  expect_false("exclusions" %in% names(opt$get_config()))
  expect_match(format(opt$clone()), "2 of 3 variables", fixed = TRUE, all = FALSE)
})

test_that("fields cost no state: they read the configuration, stepping still works", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  v <- opt$step(c(1, 2), c(3, 4))
  expect_identical(opt$rho, 0.9)
  expect_identical(opt$iterations, 1)
  ref <- c(3, 4) - 0.1 * c(1, 2) / sqrt(0.1 * c(1, 4) + 1e-7)
  expect_equal(v, ref, tolerance = 1e-15)
})
