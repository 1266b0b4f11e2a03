# State that lasts (SPEC B): saveRDS()/readRDS(), serialize(), PSOCK workers,
# another R process, opt$variables + opt$load_variables(), get_config() and
# clone(). Every comparison is identical(): a restored or copied optimizer
# must continue bit for bit like the original, and the two must be
# independent afterwards. Parts that use optimizer_loss_scale() or the
# learning_rate_schedule_*() functions skip until those are exported.

# --- helpers ------------------------------------------------------------------

has_export <- function(name) name %in% getNamespaceExports("rmsprop")
skip_without <- function(name) {
  skip_if_not(has_export(name), paste0(name, "() is not available (yet)"))
}

# Functions that travel to workers and child processes: base R only, and an
# environment that does not drag the test environment along.
in_global <- function(f, ...) {
  environment(f) <- list2env(list(...), parent = globalenv())
  f
}

p_vars <- function() {
  list(
    layer = list(
      w = matrix(c(0.5, -1, 1.5, 2, -0.25, 0.75), 2, 3, dimnames = list(c("a", "b"), NULL)),
      b = c(u = 0.1, v = -0.2)
    ),
    out = array(seq(-1, 1, length.out = 8), c(2, 2, 2))
  )
}

# Deterministic gradients for call i: they depend on the variables too, so any
# difference in state shows up in every later step.
p_grads <- in_global(function(i, vars, opt) {
  rapply(vars, function(x) {
    x[] <- 0.3 * x + sin(seq_along(x) * 0.7 + i) * 1.5
    x
  }, how = "replace")
})

# Gradients for optimizer_loss_scale(): scaled by the current loss scale, and
# non-finite on every 4th call so the scale is halved there.
p_grads_scaled <- in_global(function(i, vars, opt) {
  s <- opt$scale_loss(1)
  g <- rapply(vars, function(x) {
    x[] <- (0.3 * x + sin(seq_along(x) * 0.7 + i) * 1.5) * s
    x
  }, how = "replace")
  if (i %% 4 == 0) g[[1]][[1]][[2]] <- Inf
  g
})

# Steps `opt` n times from call `from` and records everything observable.
run_traj <- in_global(function(opt, vars, from, n, grads) {
  steps <- vector("list", n)
  for (i in seq_len(n)) {
    g <- grads(from + i, vars, opt)
    vars <- suppressWarnings(opt$step(g, vars))
    steps[[i]] <- list(vars = vars, iterations = opt$iterations, lr = opt$learning_rate,
                       scale = opt$scale_loss(1))
  }
  final <- if (inherits(opt, "rmsprop_optimizer")) opt$finalize_variable_values(vars) else vars
  list(steps = steps, state = opt$variables, vars = vars, final = final)
})

remote_run <- in_global(function(run, opt, vars, from, n, grads) {
  list(traj = run(opt, vars, from, n, grads), opt = opt)
})

expect_bitwise <- function(object, expected) {
  expect_identical(object, expected)
  expect_true(identical(object, expected, num.eq = FALSE, single.NA = TRUE))
}

# Every kind of state. `make` builds a fresh optimizer (exclusions included),
# `pre` is how many calls happen before the state is saved.
scenarios <- function() {
  out <- list(
    plain = list(make = function() optimizer_rmsprop(learning_rate = 0.01)),
    momentum = list(make = function() optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9)),
    centered = list(make = function() {
      optimizer_rmsprop(learning_rate = 0.02, rho = 0.8, momentum = 0.5, centered = TRUE)
    }),
    ema = list(make = function() {
      optimizer_rmsprop(learning_rate = 0.01, use_ema = TRUE, ema_momentum = 0.9)
    }),
    ema_overwrite = list(make = function() {
      optimizer_rmsprop(learning_rate = 0.01, momentum = 0.3, use_ema = TRUE, ema_momentum = 0.9,
                        ema_overwrite_frequency = 3)
    }),
    accumulation_mid_cycle = list(pre = 1L, make = function() {
      optimizer_rmsprop(learning_rate = 0.05, gradient_accumulation_steps = 3)
    }),
    weight_decay_exclusions = list(make = function() {
      o <- optimizer_rmsprop(learning_rate = 0.05, weight_decay = 0.1)
      o$exclude_from_weight_decay(var_list = "out", var_names = "/b$")
      o
    }),
    clipnorm = list(make = function() optimizer_rmsprop(learning_rate = 0.01, clipnorm = 0.5)),
    global_clipnorm = list(make = function() {
      optimizer_rmsprop(learning_rate = 0.01, global_clipnorm = 0.7)
    }),
    clipvalue_loss_scale_factor = list(make = function() {
      optimizer_rmsprop(learning_rate = 0.01, clipvalue = 0.2, loss_scale_factor = 8)
    }),
    callable_no_args = list(make = function() {
      optimizer_rmsprop(learning_rate = in_global(function() 0.02))
    }),
    callable_of_step = list(make = function() {
      optimizer_rmsprop(learning_rate = in_global(function(step) 0.02 / (1 + step)))
    }),
    callable_with_state = list(make = function() {
      optimizer_rmsprop(learning_rate = in_global(function() {
        n <<- n + 1
        0.02 / sqrt(n)
      }, n = 0))
    }),
    everything = list(pre = 4L, make = function() {
      o <- optimizer_rmsprop(learning_rate = 0.03, rho = 0.85, momentum = 0.7, centered = TRUE,
                             weight_decay = 0.02, clipnorm = 2, use_ema = TRUE,
                             ema_momentum = 0.8, ema_overwrite_frequency = 2,
                             loss_scale_factor = 2, gradient_accumulation_steps = 3)
      o$exclude_from_weight_decay(var_names = "^out$")
      o
    })
  )
  if (has_export("learning_rate_schedule_exponential_decay")) {
    out$schedule_exponential <- list(make = function() {
      optimizer_rmsprop(learning_rate = learning_rate_schedule_exponential_decay(0.02, 3, 0.5),
                        momentum = 0.5)
    })
  }
  if (has_export("learning_rate_schedule_piecewise_constant_decay")) {
    out$schedule_piecewise_accumulation <- list(pre = 4L, make = function() {
      optimizer_rmsprop(
        learning_rate = learning_rate_schedule_piecewise_constant_decay(c(2, 7), c(0.05, 0.02, 0.01)),
        gradient_accumulation_steps = 2)
    })
  }
  if (has_export("learning_rate_schedule_cosine_decay_restarts")) {
    out$schedule_cosine_restarts <- list(make = function() {
      optimizer_rmsprop(learning_rate = learning_rate_schedule_cosine_decay_restarts(0.02, 4),
                        use_ema = TRUE, ema_overwrite_frequency = 5)
    })
  }
  if (has_export("optimizer_loss_scale")) {
    out$loss_scale <- list(pre = 5L, grads = p_grads_scaled, make = function() {
      optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5),
                           initial_scale = 4, dynamic_growth_steps = 3)
    })
  }
  lapply(out, function(s) {
    if (is.null(s$pre)) s$pre <- 3L
    if (is.null(s$grads)) s$grads <- p_grads
    s
  })
}

roundtrips <- list(
  saveRDS = function(o) {
    f <- tempfile(fileext = ".rds")
    on.exit(unlink(f))
    saveRDS(o, f)
    readRDS(f)
  },
  saveRDS_xz_v2 = function(o) {
    f <- tempfile(fileext = ".rds")
    on.exit(unlink(f))
    saveRDS(o, f, compress = "xz", version = 2)
    readRDS(f)
  },
  serialize = function(o) unserialize(serialize(o, NULL)),
  serialize_native = function(o) unserialize(serialize(o, NULL, xdr = FALSE)),
  serialize_ascii_hex = function(o) unserialize(serialize(o, NULL, ascii = NA))
)

# `a` after `pre` calls; `b` = roundtrip(a). Both continue 20 calls with the
# same gradients: identical trajectories, neither disturbs the other, and both
# match an optimizer that was never serialized.
check_continues <- function(sc, roundtrip, label) {
  a <- sc$make()
  v <- p_vars()
  if (sc$pre > 0) v <- run_traj(a, v, 0, sc$pre, sc$grads)$vars
  b <- roundtrip(a)
  expect_identical(class(b), class(a), label = label)
  expect_bitwise(b$variables, a$variables)
  expect_identical(b$iterations, a$iterations, label = label)
  if (inherits(a, "rmsprop_optimizer")) {
    expect_true(identical(b$get_config(), a$get_config(), ignore.environment = TRUE), label = label)
    # format() both: it may evaluate the learning rate, which for a function
    # with state (callable_with_state) is part of the trajectory.
    expect_no_error(format(b))
    expect_no_error(format(a))
  }
  a_saved <- a$variables
  tb <- run_traj(b, v, sc$pre, 20, sc$grads)
  expect_identical(a$variables, a_saved, label = paste(label, ": original untouched by copy"))
  b_saved <- b$variables
  ta <- run_traj(a, v, sc$pre, 20, sc$grads)
  expect_identical(b$variables, b_saved, label = paste(label, ": copy untouched by original"))
  expect_bitwise(tb, ta)
  # A never-serialized optimizer over the whole run ends in the same place.
  ref_opt <- sc$make()
  ref_v <- p_vars()
  if (sc$pre > 0) ref_v <- run_traj(ref_opt, ref_v, 0, sc$pre, sc$grads)$vars
  if (inherits(ref_opt, "rmsprop_optimizer")) format(ref_opt)
  ref <- run_traj(ref_opt, ref_v, sc$pre, 20, sc$grads)
  expect_bitwise(ref, ta)
}

# --- saveRDS / serialize --------------------------------------------------------

test_that("every kind of state survives saveRDS() and serialize() bit for bit", {
  for (sn in names(scenarios())) {
    sc <- scenarios()[[sn]]
    for (rn in names(roundtrips)) {
      check_continues(sc, roundtrips[[rn]], paste(sn, rn))
    }
  }
})

test_that("an optimizer saved before it is built continues identically", {
  for (sn in c("plain", "everything", "weight_decay_exclusions", "callable_with_state")) {
    sc <- scenarios()[[sn]]
    sc$pre <- 0L
    check_continues(sc, roundtrips$saveRDS, paste(sn, "unbuilt"))
    check_continues(sc, roundtrips$serialize, paste(sn, "unbuilt"))
  }
})

test_that("accumulation saved after 1 of 3 calls resumes the cycle where it was", {
  sc <- scenarios()$accumulation_mid_cycle
  a <- sc$make()
  v0 <- p_vars()
  v1 <- run_traj(a, v0, 0, 1, sc$grads)$vars
  expect_identical(v1, v0)                      # accumulation call: nothing moves
  b <- roundtrips$saveRDS(a)
  st <- b$variables
  acc <- st[grepl("_gradient_accumulator$", names(st))]
  expect_true(all(vapply(acc, function(x) any(x != 0), logical(1))))
  expect_identical(b$iterations, 0)
  t2 <- run_traj(b, v1, 1, 2, sc$grads)
  expect_identical(t2$steps[[1]]$vars, v1)     # call 2 of 3: still nothing moves
  expect_false(identical(t2$steps[[2]]$vars, v1))  # call 3 of 3: the update
  expect_identical(t2$steps[[2]]$iterations, 1)
})

test_that("a restored optimizer can be saved again and again", {
  sc <- scenarios()$everything
  a <- sc$make()
  ref <- run_traj(sc$make(), p_vars(), 0, 12, sc$grads)
  v <- p_vars()
  for (k in 0:5) {
    v <- run_traj(a, v, 2 * k, 2, sc$grads)$vars
    a <- if (k %% 2 == 0) roundtrips$saveRDS(a) else roundtrips$serialize(a)
  }
  expect_bitwise(v, ref$vars)
  expect_bitwise(a$variables, ref$state)
})

test_that("restored optimizers keep working: methods, printing, learning-rate assignment", {
  a <- optimizer_rmsprop(learning_rate = 0.01, use_ema = TRUE)
  v <- run_traj(a, p_vars(), 0, 2, p_grads)$vars
  b <- roundtrips$serialize(a)
  expect_output(print(b), "rmsprop")
  expect_identical(b$finalize_variable_values(v), a$finalize_variable_values(v))
  b$learning_rate <- 0.5
  expect_identical(b$learning_rate, 0.5)
  expect_identical(a$learning_rate, 0.01)
  expect_identical(b$get_config()$learning_rate, 0.5)
  # in-place stepping on a restored object
  g <- p_grads(3, v, a)
  flat <- list(w = c(v$layer$w) + 0, b = unname(v$layer$b) + 0, out = c(v$out) + 0)
  gflat <- list(w = c(g$layer$w), b = unname(g$layer$b), out = c(g$out))
  c2 <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5)
  c2$step(gflat, flat)
  c3 <- roundtrips$serialize(c2)
  r2 <- c2$step(gflat, flat)
  flat3 <- lapply(flat, function(x) x + 0)
  c3$step_in_place(gflat, flat3)
  expect_identical(flat3, r2)
  expect_identical(c3$variables, c2$variables)
})

# --- PSOCK workers ------------------------------------------------------------------

# The libraries a worker or child process needs to find this very package:
# the one it was loaded from first (it may have been loaded with `lib.loc`),
# then this process's .libPaths() (the default library in CI).
pkg_libs <- function() {
  unique(c(dirname(getNamespaceInfo("rmsprop", "path")), .libPaths()))
}

with_cluster <- function(n, code) {
  cl <- parallel::makeCluster(n, type = "PSOCK")
  on.exit(parallel::stopCluster(cl), add = TRUE)
  # Workers load the package from the same libraries as this process. (A
  # worker that cannot find it would silently restore the methods with
  # .GlobalEnv in place of the namespace.) Not clusterCall(cl, .libPaths, ...):
  # that ships a copy of the closure .libPaths() and sets the copy's paths,
  # leaving the worker's own unchanged.
  parallel::clusterCall(cl, in_global(function(p) invisible(.libPaths(p))), pkg_libs())
  worker_lib <- parallel::clusterCall(cl, in_global(function() {
    dirname(getNamespaceInfo(loadNamespace("rmsprop"), "path"))
  }))
  for (lib in worker_lib) {
    expect_identical(normalizePath(lib), normalizePath(pkg_libs()[[1]]))
  }
  code(cl)
}

test_that("an optimizer shipped to PSOCK workers, stepped there and brought back continues identically", {
  skip_if_not_installed("parallel")
  with_cluster(2, function(cl) {
    for (sn in names(scenarios())) {
      sc <- scenarios()[[sn]]
      ref <- run_traj(sc$make(), p_vars(), 0, sc$pre + 20, sc$grads)
      a <- sc$make()
      t0 <- run_traj(a, p_vars(), 0, sc$pre, sc$grads)
      a_saved <- a$variables
      # worker 1 takes 5 calls, worker 2 the next 5, then home for 10 more
      r1 <- parallel::clusterCall(cl[1], remote_run, run_traj, a, t0$vars, sc$pre, 5, sc$grads)[[1]]
      expect_identical(a$variables, a_saved, label = paste(sn, ": local copy untouched"))
      r2 <- parallel::clusterCall(cl[2], remote_run, run_traj, r1$opt, r1$traj$vars, sc$pre + 5, 5,
                                  sc$grads)[[1]]
      back <- r2$opt
      expect_identical(class(back), class(a))
      t3 <- run_traj(back, r2$traj$vars, sc$pre + 10, 10, sc$grads)
      got <- c(t0$steps, r1$traj$steps, r2$traj$steps, t3$steps)
      expect_bitwise(got, ref$steps)
      expect_bitwise(t3$state, ref$state)
      expect_bitwise(t3$final, ref$final)
      # what came back from worker 1 is still at its own state
      expect_identical(r1$opt$variables, r1$traj$state, label = paste(sn, ": copies independent"))
    }
  })
})

test_that("one cluster worker can keep an optimizer between calls", {
  skip_if_not_installed("parallel")
  with_cluster(1, function(cl) {
    sc <- scenarios()$everything
    ref <- run_traj(sc$make(), p_vars(), 0, 9, sc$grads)
    parallel::clusterCall(cl, in_global(function(o) {
      assign("opt", o, envir = globalenv())
      NULL
    }), sc$make())
    step_there <- in_global(function(run, vars, from, n, grads) {
      run(get("opt", envir = globalenv()), vars, from, n, grads)
    })
    v <- p_vars()
    steps <- list()
    for (k in 0:2) {
      tr <- parallel::clusterCall(cl, step_there, run_traj, v, 3 * k, 3, sc$grads)[[1]]
      v <- tr$vars
      steps <- c(steps, tr$steps)
    }
    expect_bitwise(steps, ref$steps)
    home <- parallel::clusterCall(cl, in_global(function() get("opt", envir = globalenv())))[[1]]
    expect_bitwise(home$variables, ref$state)
  })
})

# --- another R process -------------------------------------------------------------

test_that("a file written by saveRDS() is resumed in another R process identically", {
  skip_if_not_installed("callr")
  for (sn in c("everything", "accumulation_mid_cycle", "callable_with_state",
               intersect(c("schedule_exponential", "loss_scale"), names(scenarios())))) {
    sc <- scenarios()[[sn]]
    a <- sc$make()
    v <- run_traj(a, p_vars(), 0, sc$pre, sc$grads)$vars
    f_opt <- tempfile(fileext = ".rds")
    f_out <- tempfile(fileext = ".rds")
    on.exit(unlink(c(f_opt, f_out)), add = TRUE)
    saveRDS(list(opt = a, vars = v), f_opt)
    child <- callr::r(function(f_opt, f_out, pre, run, grads) {
      x <- readRDS(f_opt)
      tr <- run(x$opt, x$vars, pre, 20, grads)
      saveRDS(list(traj = tr, opt = x$opt), f_out)
      list(lib = dirname(getNamespaceInfo("rmsprop", "path")))
    }, args = list(f_opt, f_out, sc$pre, run_traj, sc$grads), libpath = pkg_libs())
    expect_identical(normalizePath(child$lib), normalizePath(pkg_libs()[[1]]))
    res <- readRDS(f_out)
    ta <- run_traj(a, v, sc$pre, 20, sc$grads)
    expect_bitwise(res$traj, ta)
    # ... and what the child saved continues here as well
    more_child <- run_traj(res$opt, ta$vars, sc$pre + 20, 5, sc$grads)
    more_here <- run_traj(a, ta$vars, sc$pre + 20, 5, sc$grads)
    expect_bitwise(more_child, more_here)
  }
})

# --- opt$variables and opt$load_variables() ----------------------------------------

test_that("state loaded with load_variables() into a fresh optimizer continues identically", {
  for (sn in names(scenarios())) {
    sc <- scenarios()[[sn]]
    a <- sc$make()
    if (!is.function(a$load_variables)) next   # optimizer_loss_scale(): not part of its API
    v <- run_traj(a, p_vars(), 0, sc$pre, sc$grads)$vars
    b <- sc$make()
    b$build(v)
    b$load_variables(a$variables)
    expect_bitwise(b$variables, a$variables)
    expect_identical(b$iterations, a$iterations)
    tb <- run_traj(b, v, sc$pre, 20, sc$grads)
    ta <- run_traj(a, v, sc$pre, 20, sc$grads)
    if (sn != "callable_with_state") {
      expect_bitwise(tb, ta)
    } else {
      # the callable keeps its own counter, which is not optimizer state
      expect_bitwise(tb$steps[[1]]$iterations, ta$steps[[1]]$iterations)
    }
  }
})

test_that("load_variables() takes values that went through saveRDS() as a plain list", {
  sc <- scenarios()$everything
  a <- sc$make()
  v <- run_traj(a, p_vars(), 0, 4, sc$grads)$vars
  vals <- roundtrips$saveRDS(a$variables)
  b <- sc$make()$build(v)
  b$load_variables(vals)
  expect_bitwise(run_traj(b, v, 4, 10, sc$grads), run_traj(a, v, 4, 10, sc$grads))
})

test_that("load_variables() brings back the learning rate and it is used", {
  a <- optimizer_rmsprop(learning_rate = 0.01)
  v <- run_traj(a, p_vars(), 0, 2, p_grads)$vars
  a$learning_rate <- 0.07
  b <- optimizer_rmsprop(learning_rate = 0.01)$build(v)
  b$load_variables(a$variables)
  expect_identical(b$learning_rate, 0.07)
  expect_bitwise(run_traj(b, v, 2, 5, p_grads), run_traj(a, v, 2, 5, p_grads))
})

test_that("load_variables() refuses bad values with a classed error and changes nothing", {
  sc <- scenarios()$everything
  src <- sc$make()
  v <- run_traj(src, p_vars(), 0, 4, sc$grads)$vars
  good <- src$variables
  target <- sc$make()
  target$build(v)
  run_traj(target, v, 0, 2, sc$grads)
  nm <- names(good)
  w_key <- grep("layer/w_velocity$", nm, value = TRUE)
  b_key <- grep("layer/b_average_gradient$", nm, value = TRUE)
  last <- nm[[length(nm)]]
  bad <- list(
    not_a_list = list(values = unlist(good)),
    unnamed = list(values = unname(good)),
    too_few = list(values = good[-length(good)]),
    too_many = list(values = c(good, list(extra = 1))),
    renamed = list(values = setNames(good, replace(nm, 3, "rmsprop/nope_velocity"))),
    reordered = list(values = good[c(2, 1, seq_along(good)[-(1:2)])]),
    wrong_length = list(values = replace(good, w_key, list(c(good[[w_key]], 1)))),
    wrong_dim = list(values = replace(good, w_key, list(matrix(good[[w_key]], 3, 2)))),
    dim_dropped = list(values = replace(good, w_key, list(c(good[[w_key]])))),
    nan = list(values = replace(good, w_key, list(replace(good[[w_key]], 2, NaN)))),
    na = list(values = replace(good, b_key, list(replace(good[[b_key]], 1, NA_real_)))),
    inf_last = list(values = replace(good, last, list(replace(good[[last]], 1, Inf)))),
    character = list(values = replace(good, w_key, list(as.character(good[[w_key]])))),
    iteration_negative = list(values = replace(good, 1, list(-1))),
    iteration_fraction = list(values = replace(good, 1, list(2.5))),
    lr_negative = list(values = replace(good, 2, list(-0.1))),
    lr_inf = list(values = replace(good, 2, list(Inf)))
  )
  for (case in names(bad)) {
    before <- target$variables
    it <- target$iterations
    expect_error(target$load_variables(bad[[case]]$values), class = "rmsprop_error",
                 label = case)
    expect_identical(target$variables, before, label = paste(case, ": nothing changed"))
    expect_identical(target$iterations, it)
    expect_identical(target$get_config(), sc$make()$get_config())
  }
  # mismatches name the problem
  expect_error(target$load_variables(bad$too_few$values), "arrays", class = "rmsprop_error")
  expect_error(target$load_variables(bad$renamed$values), "nope_velocity", class = "rmsprop_error")
  expect_error(target$load_variables(bad$wrong_dim$values), "dim", class = "rmsprop_error")
  expect_error(target$load_variables(bad$nan$values), "finite", class = "rmsprop_error")
  # after all those errors it still takes good values and continues like `src`
  target$load_variables(good)
  expect_bitwise(run_traj(target, v, 4, 6, sc$grads), run_traj(src, v, 4, 6, sc$grads))
})

test_that("load_variables() refuses state from a differently configured or unbuilt optimizer", {
  a <- optimizer_rmsprop(momentum = 0.9)
  v <- run_traj(a, p_vars(), 0, 2, p_grads)$vars
  b <- optimizer_rmsprop(centered = TRUE)$build(v)
  before <- b$variables
  expect_error(b$load_variables(a$variables), class = "rmsprop_error")
  expect_identical(b$variables, before)
  c1 <- optimizer_rmsprop(momentum = 0.9, name = "other")$build(v)
  before <- c1$variables
  expect_error(c1$load_variables(a$variables), "other", class = "rmsprop_error")
  expect_identical(c1$variables, before)
  d <- optimizer_rmsprop(momentum = 0.9)$build(list(w = 1, b = 2))
  before <- d$variables
  expect_error(d$load_variables(a$variables), class = "rmsprop_error")
  expect_identical(d$variables, before)
  e <- optimizer_rmsprop(momentum = 0.9)
  expect_error(e$load_variables(a$variables), class = "rmsprop_error_state")
  expect_identical(e$variables, list(`rmsprop/iteration` = 0, `rmsprop/learning_rate` = 0.001))
  expect_error(a$variables <- a$variables, class = "rmsprop_error")
})

# --- get_config() ---------------------------------------------------------------------

test_that("do.call(optimizer_rmsprop, get_config()) builds an equal optimizer", {
  for (sn in names(scenarios())) {
    sc <- scenarios()[[sn]]
    a <- sc$make()
    if (!inherits(a, "rmsprop_optimizer")) next
    cfg <- a$get_config()
    expect_identical(names(cfg), setdiff(names(formals(optimizer_rmsprop)), "..."))
    b <- do.call(optimizer_rmsprop, cfg)
    expect_identical(b$get_config(), cfg, label = sn)
    # exclusions are not configuration: re-apply them as `make` does
    if (sn %in% c("weight_decay_exclusions", "everything")) next
    expect_bitwise(run_traj(b, p_vars(), 0, 15, sc$grads),
                   run_traj(sc$make(), p_vars(), 0, 15, sc$grads))
  }
})

test_that("get_config() of a used optimizer builds a fresh one with that configuration", {
  a <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9, use_ema = TRUE)
  run_traj(a, p_vars(), 0, 3, p_grads)
  a$learning_rate <- 0.005
  b <- do.call(optimizer_rmsprop, a$get_config())
  expect_identical(b$iterations, 0)
  expect_identical(b$learning_rate, 0.005)
  expect_identical(b$get_config(), a$get_config())
  ref <- optimizer_rmsprop(learning_rate = 0.005, momentum = 0.9, use_ema = TRUE)
  expect_bitwise(run_traj(b, p_vars(), 0, 10, p_grads), run_traj(ref, p_vars(), 0, 10, p_grads))
  # integer-valued arguments come back as the same numbers
  c1 <- optimizer_rmsprop(learning_rate = 1L, gradient_accumulation_steps = 2L,
                          ema_overwrite_frequency = 3L, use_ema = TRUE)
  expect_identical(do.call(optimizer_rmsprop, c1$get_config())$get_config(), c1$get_config())
  # and the configuration survives serialization
  expect_identical(roundtrips$saveRDS(c1)$get_config(), c1$get_config())
})

test_that("get_config() round trips keep schedules", {
  skip_without("learning_rate_schedule_cosine_decay")
  s <- learning_rate_schedule_cosine_decay(0.05, 10, alpha = 0.1, warmup_target = 0.1,
                                           warmup_steps = 3)
  a <- optimizer_rmsprop(learning_rate = s, centered = TRUE)
  b <- do.call(optimizer_rmsprop, a$get_config())
  expect_identical(b$get_config(), a$get_config())
  expect_bitwise(run_traj(b, p_vars(), 0, 15, p_grads), run_traj(a, p_vars(), 0, 15, p_grads))
  # through saveRDS the schedule is a copy that computes the same
  r <- roundtrips$saveRDS(a)
  cfg <- r$get_config()
  expect_true(identical(cfg, a$get_config(), ignore.environment = TRUE))
  expect_identical(cfg$learning_rate(0:20), s(0:20))
  b2 <- do.call(optimizer_rmsprop, cfg)
  expect_bitwise(run_traj(b2, p_vars(), 0, 15, p_grads),
                 run_traj(optimizer_rmsprop(learning_rate = s, centered = TRUE), p_vars(), 0, 15,
                          p_grads))
})

# --- clone() ------------------------------------------------------------------------------

test_that("clone() is deep: stepping either never changes the other", {
  for (sn in names(scenarios())) {
    sc <- scenarios()[[sn]]
    for (pre in unique(c(0L, sc$pre))) {
      a <- sc$make()
      if (!is.function(a$clone)) next
      v <- run_traj(a, p_vars(), 0, pre, sc$grads)$vars
      b <- a$clone()
      expect_identical(class(b), class(a))
      expect_bitwise(b$variables, a$variables)
      # b takes other gradients (shifted call numbers) first, then a continues
      a_saved <- a$variables
      other <- in_global(function(i, vars, opt) p_grads(i + 100, vars, opt), p_grads = sc$grads)
      tb <- run_traj(b, v, pre, 8, other)
      expect_identical(a$variables, a_saved, label = paste(sn, pre, ": original untouched"))
      b_saved <- b$variables
      ta <- run_traj(a, v, pre, 8, sc$grads)
      expect_identical(b$variables, b_saved, label = paste(sn, pre, ": clone untouched"))
      # each matches a never-cloned optimizer given its own gradients
      if (sn == "callable_with_state") next       # the callable itself is shared (see below)
      ref_a <- sc$make()
      ref_b <- sc$make()
      rv <- run_traj(ref_a, p_vars(), 0, pre, sc$grads)$vars
      run_traj(ref_b, p_vars(), 0, pre, sc$grads)
      expect_bitwise(ta, run_traj(ref_a, rv, pre, 8, sc$grads))
      expect_bitwise(tb, run_traj(ref_b, rv, pre, 8, other))
    }
  }
})

test_that("clone() copies configuration and exclusions independently", {
  a <- optimizer_rmsprop(learning_rate = 0.01, weight_decay = 0.5)
  b <- a$clone()
  b$learning_rate <- 0.2
  b$exclude_from_weight_decay(var_list = "out")
  expect_identical(a$learning_rate, 0.01)
  expect_identical(a$get_config()$learning_rate, 0.01)
  ra <- run_traj(a, p_vars(), 0, 3, p_grads)
  ref <- run_traj(optimizer_rmsprop(learning_rate = 0.01, weight_decay = 0.5), p_vars(), 0, 3,
                  p_grads)
  expect_bitwise(ra, ref)
  rb <- run_traj(b, p_vars(), 0, 3, p_grads)
  refb <- optimizer_rmsprop(learning_rate = 0.2, weight_decay = 0.5)
  refb$exclude_from_weight_decay(var_list = "out")
  expect_bitwise(rb, run_traj(refb, p_vars(), 0, 3, p_grads))
  # a clone of a restored optimizer is as good
  c1 <- roundtrips$serialize(a)$clone()
  expect_bitwise(run_traj(c1, ra$vars, 3, 5, p_grads), run_traj(a, ra$vars, 3, 5, p_grads))
})

test_that("optimizer_loss_scale(): get_config() rebuilds it, clone() and serialize() keep the scale", {
  skip_without("optimizer_loss_scale")
  sc <- scenarios()$loss_scale
  a <- sc$make()
  cfg <- a$get_config()
  b <- do.call(optimizer_loss_scale, cfg)
  expect_bitwise(run_traj(b, p_vars(), 0, 15, sc$grads), run_traj(sc$make(), p_vars(), 0, 15, sc$grads))
  # mid-run: the scale went up and down (calls 3 and 4), the counter is not 0
  tr <- run_traj(a, p_vars(), 0, 5, sc$grads)
  v <- tr$vars
  expect_identical(vapply(tr$steps, function(s) s$scale, 0), c(4, 4, 8, 4, 4))
  expect_identical(unname(unlist(a$variables[grepl("step_counter$", names(a$variables))])), 1)
  for (copy in list(a$clone(), roundtrips$saveRDS(a), roundtrips$serialize(a))) {
    expect_identical(copy$scale_loss(1), a$scale_loss(1))
    expect_identical(copy$variables, a$variables)
  }
  c1 <- a$clone()
  tc <- run_traj(c1, v, 5, 12, sc$grads)
  ta <- run_traj(a, v, 5, 12, sc$grads)
  expect_bitwise(tc, ta)
})
