# Every optional feature of SPEC A1 (loss scale factor, accumulation, the three
# clips, weight decay with exclusions, EMA with overwrite, NULL gradients,
# learning-rate functions) against the plain-R oracle in helper-oracle.R.
# make_options_case(seed) rebuilds a failing case from the seed in its label.

make_options_case <- function(seed) {
  set.seed(seed)
  lr_kind <- sample(c("number", "number", "number", "function"), 1L)
  lr_value <- rlogunif(1e-4, 0.5)
  clip <- sample(c("none", "clipnorm", "clipvalue", "global_clipnorm"), 1L)
  use_ema <- runif(1) < 0.5
  cfg <- list(
    learning_rate = lr_value,
    rho = if (runif(1) < 0.1) 0 else runif(1, 0.5, 0.999),
    momentum = if (runif(1) < 0.5) 0 else runif(1, 0.01, 0.99),
    epsilon = rlogunif(1e-7, 1e-3),
    centered = runif(1) < 0.5,
    weight_decay = if (runif(1) < 0.5) rlogunif(1e-4, 0.2) else NULL,
    clipnorm = if (clip == "clipnorm") rlogunif(0.05, 5) else NULL,
    clipvalue = if (clip == "clipvalue") rlogunif(0.05, 5) else NULL,
    global_clipnorm = if (clip == "global_clipnorm") rlogunif(0.05, 5) else NULL,
    use_ema = use_ema,
    ema_momentum = if (runif(1) < 0.3) 0.99 else runif(1, 0.3, 0.999),
    ema_overwrite_frequency = if (runif(1) < 0.5) sample(1:4, 1L) else NULL,
    name = sample(c("rmsprop", "opt_b"), 1L),
    loss_scale_factor = if (runif(1) < 0.3) rlogunif(0.5, 1024) else NULL,
    gradient_accumulation_steps = if (runif(1) < 0.4) sample(2:4, 1L) else NULL
  )
  vars <- random_structure(sample(c("vector", "matrix", "array3", "named_list",
                                    "named_list", "nested_list", "nested_list"), 1L))
  paths <- names(flatten_leaves(vars))
  # Weight-decay exclusions (only meaningful with weight decay, harmless without).
  excl_list <- NULL
  excl_names <- NULL
  if (length(paths) > 1L && runif(1) < 0.6) {
    if (runif(1) < 0.5) excl_names <- paste0("^", sample(paths, 1L), "$")
    if (runif(1) < 0.3) excl_names <- c(excl_names, "b")
    if (runif(1) < 0.5) {
      pick <- sample.int(length(paths), 1L)
      excl_list <- if (runif(1) < 0.5) paths[pick] else pick
    }
  }
  n_steps <- sample(10:14, 1L)
  gscale <- if (is.null(cfg$loss_scale_factor)) 1 else cfg$loss_scale_factor
  grads <- lapply(seq_len(n_steps), function(i) {
    g <- flatten_leaves(random_grads_like(vars, gscale * rlogunif(1e-2, 10)))
    # Some NULL gradients (never all of them). Not combined with accumulation:
    # SPEC A1 leaves open whether an update call resets the accumulator of a
    # variable whose gradient was NULL (see the dedicated test below).
    if (length(g) > 1L && is.null(cfg$gradient_accumulation_steps) && runif(1) < 0.3) {
      drop <- sample(names(g), sample.int(length(g) - 1L, 1L))
      for (p in drop) g[p] <- list(NULL)
    }
    relist_like(g, vars)
  })
  change_lr_at <- if (lr_kind == "number" && runif(1) < 0.3) sample(2:n_steps, 1L) else NA
  list(seed = seed, cfg = cfg, lr_kind = lr_kind, vars = vars, grads = grads,
       excl_list = excl_list, excl_names = excl_names, change_lr_at = change_lr_at)
}

# A learning rate given as a function of no arguments that changes on every
# call (so calling it more or less than once per call would show).
make_lr_function <- function(base) {
  calls <- 0
  function() {
    calls <<- calls + 1
    base / (1 + 0.1 * calls)
  }
}

run_options_case <- function(case) {
  cfg <- case$cfg
  base_label <- sprintf("options seed %d {%s} excl_list=%s excl_names=%s", case$seed,
                        describe_config(cfg), paste(case$excl_list, collapse = ","),
                        paste(case$excl_names, collapse = ","))
  cfg_pkg <- cfg
  cfg_orc <- cfg
  if (case$lr_kind == "function") {
    cfg_pkg$learning_rate <- make_lr_function(cfg$learning_rate)
    cfg_orc$learning_rate <- make_lr_function(cfg$learning_rate)
  }
  opt <- do.call(optimizer_rmsprop, compact_config(cfg_pkg))
  o <- oracle_new(cfg_orc)
  if (!is.null(case$excl_list) || !is.null(case$excl_names)) {
    opt$exclude_from_weight_decay(var_list = case$excl_list, var_names = case$excl_names)
    o <- oracle_exclude(o, var_list = case$excl_list, var_names = case$excl_names)
  }
  vars <- case$vars
  problems <- character(0)
  for (s in seq_along(case$grads)) {
    at <- sprintf("step %d: ", s)
    if (!is.na(case$change_lr_at) && s == case$change_lr_at) {
      opt$learning_rate <- cfg$learning_rate * 2
      o$config$learning_rate <- cfg$learning_rate * 2
    }
    g <- case$grads[[s]]
    flat_g <- flatten_leaves(g)
    has_null <- any(vapply(flat_g, is.null, logical(1)))
    vars_copy <- deep_copy(vars)
    res <- step_capturing_null_warning(opt, g, vars)
    r <- oracle_step(o, flat_g, flatten_leaves(vars))
    o <- r$o
    problems <- c(
      problems,
      same_problem(res$warned, has_null, paste0(at, "NULL-gradient warning raised")),
      close_problem(res$value, relist_like(r$vars, vars), paste0(at, "returned variables")),
      same_problem(vars, vars_copy, paste0(at, "input variables changed")),
      prefix_problems(at, state_problems(opt, o))
    )
    vars <- res$value
  }
  problems <- c(
    problems,
    close_problem(opt$finalize_variable_values(vars),
                  relist_like(oracle_finalize(o, flatten_leaves(vars)), vars),
                  "finalize_variable_values()"),
    close_problem(opt$scale_loss(3.25), oracle_scale_loss(o, 3.25), "scale_loss(3.25)",
                  tolerance = 1e-15)
  )
  expect_no_problems(problems, base_label)
}

test_that("every option matches the reference over 300 random configurations", {
  for (seed in 1:300) run_options_case(make_options_case(5000 + seed))
})

test_that("each option alone matches the reference", {
  set.seed(123)
  vars <- list(w = matrix(rnorm(12), 3, 4), b = rnorm(4), s = 0.5)
  singles <- list(
    list(loss_scale_factor = 128),
    list(gradient_accumulation_steps = 3),
    list(clipnorm = 0.5),
    list(clipvalue = 0.2),
    list(global_clipnorm = 0.7),
    list(weight_decay = 0.05),
    list(use_ema = TRUE),
    list(use_ema = TRUE, ema_momentum = 0.5, ema_overwrite_frequency = 2),
    list(momentum = 0.9, centered = TRUE)
  )
  for (extra in singles) {
    cfg <- c(list(learning_rate = 0.05), extra)
    label <- describe_config(cfg)
    opt <- do.call(optimizer_rmsprop, cfg)
    o <- oracle_new(cfg)
    v <- vars
    for (s in 1:9) {
      g <- random_grads_like(vars, if (is.null(cfg$loss_scale_factor)) 2 else 256)
      new <- opt$step(g, v)
      r <- oracle_step_like(o, g, v)
      o <- r$o
      expect_equal(new, r$vars, tolerance = 1e-12, label = paste(label, "step", s))
      expect_state_matches(opt, o, paste(label, "step", s))
      v <- new
    }
  }
})

test_that("iterations count real updates with accumulation (A3)", {
  opt <- optimizer_rmsprop(gradient_accumulation_steps = 3)
  v <- c(1, 2)
  its <- numeric(0)
  for (s in 1:10) {
    v <- opt$step(c(0.1, -0.2), v)
    its <- c(its, opt$iterations)
  }
  expect_equal(its, c(0, 0, 1, 1, 1, 2, 2, 2, 3, 3))
  expect_equal(opt$variables[["rmsprop/iteration"]], 10)
})

test_that("accumulation is invisible until the k-th call, which uses the mean gradient", {
  set.seed(2024)
  for (k in 2:4) {
    vars <- list(w = matrix(rnorm(6), 2, 3), b = rnorm(3))
    gs <- lapply(1:k, function(i) random_grads_like(vars))
    cfg <- list(learning_rate = 0.1, weight_decay = 0.03, momentum = 0.5, centered = TRUE)
    acc_opt <- do.call(optimizer_rmsprop, c(cfg, list(gradient_accumulation_steps = k)))
    v <- vars
    for (i in seq_len(k - 1L)) {
      v <- acc_opt$step(gs[[i]], v)
      # Accumulation calls change nothing (weight decay included).
      expect_identical(v, vars, label = sprintf("k=%d call %d", k, i))
    }
    v <- acc_opt$step(gs[[k]], v)
    # The accumulated mean, added in the order of SPEC A1 step 3.
    mean_g <- lapply(names(vars), function(p) {
      acc <- 0
      for (i in seq_len(k - 1L)) acc <- acc + gs[[i]][[p]]
      (gs[[k]][[p]] + acc) / k
    })
    names(mean_g) <- names(vars)
    one_opt <- do.call(optimizer_rmsprop, cfg)
    v_one <- one_opt$step(mean_g, vars)
    expect_equal(v, v_one, tolerance = 1e-12, label = sprintf("k=%d", k))
    expect_equal(acc_opt$iterations, 1)
    expect_equal(one_opt$iterations, 1)
    # Accumulators are back to zero after the update call.
    st <- acc_opt$variables
    expect_equal(as.numeric(st[["rmsprop/w_gradient_accumulator"]]), rep(0, 6))
    expect_equal(as.numeric(st[["rmsprop/b_gradient_accumulator"]]), rep(0, 3))
    expect_equal(lapply(st[grepl("_velocity$", names(st))], as.numeric),
                 lapply(one_opt$variables[grepl("_velocity$", names(one_opt$variables))], as.numeric),
                 tolerance = 1e-12)
  }
})

test_that("a NULL gradient with accumulation leaves its variable alone", {
  set.seed(8)
  vars <- list(a = rnorm(3), b = rnorm(2))
  cfg <- list(learning_rate = 0.1, gradient_accumulation_steps = 2)
  opt <- do.call(optimizer_rmsprop, cfg)
  o <- oracle_new(cfg)
  g1 <- list(a = rnorm(3), b = NULL)
  res <- step_capturing_null_warning(opt, g1, vars)
  expect_true(res$warned)
  r <- oracle_step(o, flatten_leaves(g1), flatten_leaves(vars))
  expect_equal(res$value, relist_like(r$vars, vars), tolerance = 1e-12)
  st <- opt$variables
  expect_equal(as.numeric(st[["rmsprop/a_gradient_accumulator"]]), g1$a, tolerance = 1e-15)
  expect_equal(as.numeric(st[["rmsprop/b_gradient_accumulator"]]), c(0, 0))
  # The update call: `a` uses (g + acc) / 2, `b` (NULL again) is unchanged.
  g2 <- list(a = rnorm(3), b = NULL)
  res2 <- step_capturing_null_warning(opt, g2, res$value)
  r2 <- oracle_step(r$o, flatten_leaves(g2), flatten_leaves(res$value))
  expect_equal(res2$value, relist_like(r2$vars, vars), tolerance = 1e-12)
  expect_identical(res2$value$b, vars$b)
  expect_equal(opt$iterations, 1)
})

test_that("EMA runs on accumulation calls and covers NULL-gradient variables", {
  set.seed(19)
  vars <- list(a = rnorm(4), b = rnorm(2))
  cfg <- list(learning_rate = 0.05, use_ema = TRUE, ema_momentum = 0.8,
              ema_overwrite_frequency = 2)
  opt <- do.call(optimizer_rmsprop, cfg)
  o <- oracle_new(cfg)
  v <- vars
  for (s in 1:8) {
    g <- list(a = rnorm(4), b = if (s %% 3 == 0) NULL else rnorm(2))
    res <- step_capturing_null_warning(opt, g, v)
    r <- oracle_step_like(o, g, v)
    o <- r$o
    expect_equal(res$value, r$vars, tolerance = 1e-12, label = paste("step", s))
    expect_state_matches(opt, o, paste("step", s))
    v <- res$value
  }
  expect_equal(opt$finalize_variable_values(v), relist_like(oracle_finalize(o, flatten_leaves(v)), v),
               tolerance = 1e-12)
  cfg2 <- list(learning_rate = 0.05, use_ema = TRUE, gradient_accumulation_steps = 2)
  opt2 <- do.call(optimizer_rmsprop, cfg2)
  o2 <- oracle_new(cfg2)
  v <- vars
  for (s in 1:6) {
    g <- random_grads_like(vars)
    new <- opt2$step(g, v)
    r <- oracle_step_like(o2, g, v)
    o2 <- r$o
    expect_equal(new, r$vars, tolerance = 1e-12)
    expect_state_matches(opt2, o2, paste("ema+acc step", s))
    v <- new
  }
})

test_that("weight-decay exclusions by regex, path and index", {
  vars <- list(layer1 = list(w = c(2, 2), bias = 2), layer2 = list(w = 2, bias = c(2, 2)), 2)
  zero <- relist_like(lapply(flatten_leaves(vars), function(x) x * 0), vars)
  run <- function(var_list = NULL, var_names = NULL) {
    opt <- optimizer_rmsprop(learning_rate = 1, weight_decay = 0.1)
    opt$exclude_from_weight_decay(var_list = var_list, var_names = var_names)
    flatten_leaves(opt$step(zero, vars))
  }
  decayed <- 2 - 2 * 0.1 * 1
  out <- run(var_names = "bias$")
  expect_equal(unlist(out, use.names = FALSE), c(decayed, decayed, 2, decayed, 2, 2, decayed))
  out <- run(var_list = c("layer1/w", "3"))
  expect_equal(unlist(out, use.names = FALSE), c(2, 2, decayed, decayed, decayed, decayed, 2))
  out <- run(var_list = c(2, 4))
  expect_equal(unlist(out, use.names = FALSE), c(decayed, decayed, 2, decayed, 2, 2, decayed))
  out <- run(var_list = "layer2/w", var_names = "^layer1")
  expect_equal(unlist(out, use.names = FALSE), c(2, 2, 2, 2, decayed, decayed, decayed))
  out <- run()
  expect_equal(unlist(out, use.names = FALSE), rep(decayed, 7))
})

test_that("scale_loss() multiplies by loss_scale_factor, else is the identity", {
  expect_equal(optimizer_rmsprop()$scale_loss(2.5), 2.5)
  expect_equal(optimizer_rmsprop(loss_scale_factor = 64)$scale_loss(2.5), 160)
  expect_equal(optimizer_rmsprop(loss_scale_factor = 0.5)$scale_loss(c(1, 4)), c(0.5, 2))
})

test_that("finalize_variable_values() is the identity without EMA", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  v <- list(a = c(1, 2), b = matrix(1:4 / 4, 2))
  v <- opt$step(list(a = c(1, 1), b = matrix(1, 2, 2)), v)
  expect_identical(opt$finalize_variable_values(v), v)
})
