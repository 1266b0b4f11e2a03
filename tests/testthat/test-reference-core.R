# The core update (SPEC A1 step 6, rho / momentum / epsilon / centered) against
# the plain-R oracle in helper-oracle.R, over many random configurations,
# shapes and steps. Every case has its own seed, shown in failure labels:
# make_core_case(seed) rebuilds it.

make_core_case <- function(seed) {
  set.seed(seed)
  cfg <- list(
    learning_rate = rlogunif(1e-4, 0.5),
    rho = if (runif(1) < 0.1) 0 else runif(1, 0.5, 0.999),
    momentum = if (runif(1) < 0.5) 0 else runif(1, 0.01, 0.99),
    epsilon = rlogunif(1e-7, 1e-3),
    centered = runif(1) < 0.5
  )
  vars <- random_structure()
  n_steps <- sample(3:12, 1L)
  grads <- lapply(seq_len(n_steps), function(i) random_grads_like(vars, rlogunif(1e-3, 10)))
  list(seed = seed, cfg = cfg, vars = vars, grads = grads)
}

run_core_case <- function(case) {
  base_label <- sprintf("core seed %d {%s}", case$seed, describe_config(case$cfg))
  opt <- do.call(optimizer_rmsprop, case$cfg)
  o <- oracle_new(case$cfg)
  vars <- case$vars
  problems <- character(0)
  for (s in seq_along(case$grads)) {
    at <- sprintf("step %d: ", s)
    g <- case$grads[[s]]
    vars_copy <- deep_copy(vars)
    g_copy <- deep_copy(g)
    new <- opt$step(g, vars)
    r <- oracle_step_like(o, g, vars)
    o <- r$o
    expected <- r$vars
    problems <- c(
      problems,
      # Values, and with them names, dim and dimnames (attributes are compared).
      close_problem(new, expected, paste0(at, "returned variables")),
      if (!all(vapply(flatten_leaves(new), is.double, logical(1)))) paste0(at, "result not double"),
      # The caller's inputs are untouched (no write into visible vectors).
      same_problem(vars, vars_copy, paste0(at, "input variables changed")),
      same_problem(g, g_copy, paste0(at, "input gradients changed")),
      if (s %% 4 == 0) prefix_problems(at, state_problems(opt, o))
    )
    vars <- new
  }
  problems <- c(problems, prefix_problems("end: ", state_problems(opt, o)))
  expect_no_problems(problems, base_label)
}

test_that("step() matches the reference over 300 random configurations", {
  for (seed in 1:300) run_core_case(make_core_case(seed))
})

test_that("every structure kind keeps its names, dim and dimnames", {
  set.seed(4242)
  for (kind in c("vector", "named_vector", "matrix", "array3", "named_list", "nested_list")) {
    vars <- random_structure(kind)
    opt <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5, centered = TRUE)
    o <- oracle_new(list(learning_rate = 0.01, momentum = 0.5, centered = TRUE))
    for (s in 1:4) {
      g <- random_grads_like(vars)
      new <- opt$step(g, vars)
      r <- oracle_step_like(o, g, vars)
      o <- r$o
      # Attributes exactly, values to 1e-12.
      flat_new <- flatten_leaves(new)
      flat_old <- flatten_leaves(vars)
      expect_identical(names(flat_new), names(flat_old), label = kind)
      for (p in names(flat_old)) {
        expect_identical(attributes(flat_new[[p]]), attributes(flat_old[[p]]),
                         label = paste(kind, p))
      }
      if (is.list(vars)) {
        expect_identical(names(new), names(vars), label = kind)
      }
      expect_equal(new, r$vars, tolerance = 1e-12, label = kind)
      vars <- new
    }
    expect_state_matches(opt, o, kind)
  }
})

test_that("opt$variables names follow the variable paths and the Keras order", {
  vars <- list(layer1 = list(w = matrix(1:4 / 10, 2, 2), b = c(0.1, 0.2)),
               list(c(1, 2), 3))
  opt <- optimizer_rmsprop(learning_rate = 0.1, momentum = 0.9, centered = TRUE, name = "opt")
  new <- opt$step(random_grads_like(vars), vars)
  paths <- c("layer1/w", "layer1/b", "2/1", "2/2")
  expect_identical(
    names(opt$variables),
    c("opt/iteration", "opt/learning_rate",
      paste0("opt/", paths, "_velocity"),
      paste0("opt/", paths, "_momentum"),
      paste0("opt/", paths, "_average_gradient"))
  )
  opt2 <- optimizer_rmsprop()
  opt2$step(1, 1)
  expect_identical(names(opt2$variables),
                   c("rmsprop/iteration", "rmsprop/learning_rate", "rmsprop/variable_velocity"))
})

test_that("integer and logical variables and gradients are taken as double", {
  cfg <- list(learning_rate = 0.05, rho = 0.8, momentum = 0.3)
  opt <- do.call(optimizer_rmsprop, cfg)
  o <- oracle_new(cfg)
  vars <- list(i = 1:6, l = c(TRUE, FALSE, TRUE), m = matrix(1:4, 2, 2))
  grads <- list(i = c(1L, -2L, 3L, 0L, 5L, -1L), l = c(FALSE, TRUE, TRUE), m = matrix(-2:1, 2, 2))
  vars_copy <- deep_copy(vars)
  new <- opt$step(grads, vars)
  expect_identical(vars, vars_copy)
  r <- oracle_step(o, flatten_leaves(lapply(grads, function(x) { storage.mode(x) <- "double"; x })),
                   flatten_leaves(lapply(vars, function(x) { storage.mode(x) <- "double"; x })))
  expect_true(is.double(new$i) && is.double(new$l) && is.double(new$m))
  expect_identical(dim(new$m), c(2L, 2L))
  expect_equal(new, relist_like(r$vars, vars), tolerance = 1e-12, ignore_attr = FALSE)
  # A second step from the (now double) result continues identically.
  new2 <- opt$step(grads, new)
  r2 <- oracle_step(r$o, flatten_leaves(lapply(grads, as.double)), flatten_leaves(new))
  expect_equal(unname(lapply(new2, as.numeric)), unname(lapply(r2$vars, as.numeric)), tolerance = 1e-12)
  # A single integer variable.
  opt3 <- optimizer_rmsprop(learning_rate = 0.5)
  out <- opt3$step(c(1L, 6L, 7L, 2L), 1:4)
  expect_true(is.double(out))
  expect_equal(out, c(-0.5811, 0.4189, 1.4189, 2.4189), tolerance = 1e-4)
})

test_that("apply() and apply_gradients() give exactly what step() gives", {
  for (seed in 1:20) {
    case <- make_core_case(1000 + seed)
    label <- sprintf("seed %d", 1000 + seed)
    opt_s <- do.call(optimizer_rmsprop, case$cfg)
    opt_a <- do.call(optimizer_rmsprop, case$cfg)
    vs <- case$vars
    va <- case$vars
    for (g in case$grads) {
      vs <- opt_s$step(g, vs)
      va <- opt_a$apply(g, va)
      expect_identical(va, vs, label = label)
    }
    expect_identical(opt_a$variables, opt_s$variables, label = label)
    expect_identical(opt_a$iterations, opt_s$iterations, label = label)
  }
  # apply_gradients() with list(grad, var) pairs == step() on list(v1, v2).
  set.seed(77)
  v1 <- matrix(rnorm(6), 2, 3)
  v2 <- rnorm(4)
  opt_s <- optimizer_rmsprop(learning_rate = 0.02, momentum = 0.4, centered = TRUE)
  opt_g <- optimizer_rmsprop(learning_rate = 0.02, momentum = 0.4, centered = TRUE)
  o <- oracle_new(list(learning_rate = 0.02, momentum = 0.4, centered = TRUE))
  vs <- list(v1, v2)
  vg <- list(v1, v2)
  for (s in 1:5) {
    g1 <- rnorm(6)
    dim(g1) <- c(2, 3)
    g2 <- rnorm(4)
    r <- oracle_step(o, flatten_leaves(list(g1, g2)), flatten_leaves(vs))
    o <- r$o
    vs <- opt_s$step(list(g1, g2), vs)
    vg <- opt_g$apply_gradients(list(list(g1, vg[[1]]), list(g2, vg[[2]])))
    expect_equal(length(vg), 2L)
    expect_identical(unname(vg), unname(vs))
    expect_equal(unname(vg), unname(relist_like(r$vars, list(v1, v2))), tolerance = 1e-12)
  }
  expect_equal(opt_g$iterations, 5)
})

test_that("learning_rate can be read and assigned, and the new value is used", {
  set.seed(9)
  cfg <- list(learning_rate = 0.01, rho = 0.7, momentum = 0.2)
  opt <- do.call(optimizer_rmsprop, cfg)
  o <- oracle_new(cfg)
  expect_equal(opt$learning_rate, 0.01)
  vars <- list(a = rnorm(5), b = matrix(rnorm(4), 2))
  for (s in 1:6) {
    if (s == 4) {
      opt$learning_rate <- 0.3
      o$config$learning_rate <- 0.3
      expect_equal(opt$learning_rate, 0.3)
    }
    g <- random_grads_like(vars)
    new <- opt$step(g, vars)
    r <- oracle_step_like(o, g, vars)
    o <- r$o
    expect_equal(new, r$vars, tolerance = 1e-12, label = paste("step", s))
    vars <- new
  }
  expect_state_matches(opt, o, "lr assigned")
  expect_equal(opt$variables[["rmsprop/learning_rate"]], 0.3)
})

test_that("build() creates zero slots and the steps then match the reference", {
  set.seed(31)
  vars <- list(w = matrix(rnorm(6), 3, 2), b = rnorm(2))
  cfg <- list(learning_rate = 0.1, momentum = 0.5, centered = TRUE)
  opt <- do.call(optimizer_rmsprop, cfg)
  opt$build(vars)
  o <- oracle_build(oracle_new(cfg), flatten_leaves(vars))
  expect_state_matches(opt, o, "after build")
  for (s in 1:3) {
    g <- random_grads_like(vars)
    new <- opt$step(g, vars)
    r <- oracle_step_like(o, g, vars)
    o <- r$o
    expect_equal(new, r$vars, tolerance = 1e-12)
    vars <- new
  }
  expect_state_matches(opt, o, "after build and steps")
})

test_that("opt$variables are copies that later steps never change", {
  set.seed(5)
  vars <- list(a = rnorm(10), b = rnorm(3))
  opt <- optimizer_rmsprop(learning_rate = 0.1, momentum = 0.9, centered = TRUE)
  vars <- opt$step(random_grads_like(vars), vars)
  snap <- opt$variables
  snap_copy <- deep_copy(snap)
  out1 <- vars
  out1_copy <- deep_copy(out1)
  vars <- opt$step(random_grads_like(vars), vars)
  vars <- opt$step(random_grads_like(vars), vars)
  expect_identical(snap, snap_copy)
  expect_identical(out1, out1_copy)
  expect_false(identical(opt$variables, snap))
})

test_that("clone() is a deep copy that continues identically and independently", {
  set.seed(11)
  vars <- list(a = rnorm(8), b = matrix(rnorm(4), 2))
  opt <- optimizer_rmsprop(learning_rate = 0.05, momentum = 0.6, centered = TRUE)
  for (s in 1:3) vars <- opt$step(random_grads_like(vars), vars)
  twin <- opt$clone()
  before <- opt$variables
  g <- random_grads_like(vars)
  a <- opt$step(g, vars)
  b <- twin$step(g, vars)
  expect_identical(a, b)
  expect_identical(opt$variables, twin$variables)
  # Stepping the clone again leaves the original alone.
  after_opt <- opt$variables
  twin$step(random_grads_like(vars), b)
  expect_identical(opt$variables, after_opt)
  expect_equal(twin$iterations, 5)
  expect_equal(opt$iterations, 4)
  expect_false(identical(before, after_opt))
})
