# A plain-R reference implementation of SPEC.md Part A, used by the tests.
#
# Written from the specification alone (not from the package's R or C code),
# deliberately simple: it loops over a flat named list of variables and writes
# one statement per line of the specification, in the same operation order as
# the formulas there. It is slow and that is fine. It never touches the
# package's internals, so an agreement between the two is evidence that both
# follow the specification.
#
# The oracle is a plain list (value semantics): oracle_step() returns a new
# oracle together with the new variables.

# ---------------------------------------------------------------------------
# Structures: flat, named lists of leaves, in depth-first order.

# Flatten a variable (or gradient) structure into a named list of leaves.
# Paths follow the package convention: "variable" for a single non-list value,
# otherwise the element name or its 1-based position, joined with "/".
# NULL leaves (gradients) are kept as NULL entries.
flatten_leaves <- function(x, prefix = NULL) {
  if (!is.list(x)) {
    out <- list(x)
    names(out) <- if (is.null(prefix)) "variable" else prefix
    return(out)
  }
  nms <- names(x)
  out <- list()
  for (i in seq_along(x)) {
    nm <- if (is.null(nms) || is.na(nms[i]) || !nzchar(nms[i])) as.character(i) else nms[i]
    path <- if (is.null(prefix)) nm else paste0(prefix, "/", nm)
    if (is.list(x[[i]])) {
      out <- c(out, flatten_leaves(x[[i]], path))
    } else {
      out[path] <- list(x[[i]])
    }
  }
  out
}

# Put a flat list of leaves back into the shape of `skeleton` (depth-first).
relist_like <- function(flat, skeleton) {
  i <- 0L
  rebuild <- function(s) {
    if (!is.list(s)) {
      i <<- i + 1L
      return(flat[[i]])
    }
    out <- s
    for (j in seq_along(s)) {
      val <- rebuild(s[[j]])
      if (is.null(val)) out[j] <- list(NULL) else out[[j]] <- val
    }
    out
  }
  rebuild(skeleton)
}

# A deep copy that shares no memory with `x` (so an in-place write by C code
# into the original would show up as a difference).
deep_copy <- function(x) unserialize(serialize(x, NULL))

# ---------------------------------------------------------------------------
# The optimizer.

oracle_defaults <- function() {
  list(learning_rate = 0.001, rho = 0.9, momentum = 0, epsilon = 1e-07,
       centered = FALSE, weight_decay = NULL, clipnorm = NULL, clipvalue = NULL,
       global_clipnorm = NULL, use_ema = FALSE, ema_momentum = 0.99,
       ema_overwrite_frequency = NULL, name = "rmsprop",
       loss_scale_factor = NULL, gradient_accumulation_steps = NULL)
}

# `config`: a named list of optimizer_rmsprop() arguments; missing ones take
# the defaults of SPEC B. `learning_rate` may be a number, a function of no
# arguments (called once per call) or a function of the step (the raw counter).
oracle_new <- function(config = list()) {
  cfg <- oracle_defaults()
  for (nm in names(config)) cfg[nm] <- list(config[[nm]])
  list(config = cfg, it = 0, built = FALSE, paths = character(0),
       excluded = character(0), exclude_list = NULL, exclude_names = NULL,
       ms = list(), mg = list(), mom = list(), avg = list(), acc = list())
}

# Record weight-decay exclusions (before the first step). `var_list`: paths or
# whole-number flat indices; `var_names`: regular expressions on paths.
oracle_exclude <- function(o, var_list = NULL, var_names = NULL) {
  o$exclude_list <- c(o$exclude_list, var_list)
  o$exclude_names <- c(o$exclude_names, var_names)
  o
}

oracle_build <- function(o, vars) {
  o$paths <- names(vars)
  for (p in o$paths) {
    zero <- rep(0, length(vars[[p]]))
    o$ms[[p]] <- zero
    if (o$config$centered) o$mg[[p]] <- zero
    if (o$config$momentum > 0) o$mom[[p]] <- zero
    if (isTRUE(o$config$use_ema)) o$avg[[p]] <- zero
    if (!is.null(o$config$gradient_accumulation_steps)) o$acc[[p]] <- zero
  }
  excluded <- character(0)
  for (item in o$exclude_list) {
    if (is.numeric(item)) excluded <- c(excluded, o$paths[item]) else excluded <- c(excluded, item)
  }
  for (rx in o$exclude_names) {
    excluded <- c(excluded, o$paths[grepl(rx, o$paths)])
  }
  o$excluded <- unique(excluded)
  o$built <- TRUE
  o
}

# The learning rate of this call (A2): evaluated once per call.
oracle_lr <- function(o) {
  lr <- o$config$learning_rate
  if (is.function(lr)) {
    if (length(formals(lr)) == 0L) lr() else lr(o$it)
  } else {
    lr
  }
}

# One call of step() (A1). `grads` and `vars` are flat named lists with the
# same names; a gradient may be NULL. Returns list(o = , vars = ) where vars
# keeps every attribute of the input (names, dim, dimnames) as doubles.
oracle_step <- function(o, grads, vars) {
  stopifnot(identical(names(grads), names(vars)))
  cfg <- o$config
  if (!o$built) o <- oracle_build(o, vars)

  # Values as plain doubles; attributes are put back at the end.
  val <- lapply(vars, function(v) as.numeric(v))

  # 1. Drop NULL gradients.
  active <- names(grads)[!vapply(grads, is.null, logical(1))]
  if (length(active) == 0L) stop("oracle: every gradient is NULL")
  g <- lapply(grads[active], function(x) as.numeric(x))

  lr <- oracle_lr(o)

  # 2. Loss scale factor.
  if (!is.null(cfg$loss_scale_factor)) {
    for (p in active) g[[p]] <- g[[p]] / cfg$loss_scale_factor
  }

  # 3. Gradient accumulation.
  k <- cfg$gradient_accumulation_steps
  update <- TRUE
  if (!is.null(k)) {
    if ((o$it + 1) %% k != 0) {
      for (p in active) o$acc[[p]] <- o$acc[[p]] + g[[p]]
      update <- FALSE
    } else {
      for (p in active) g[[p]] <- (g[[p]] + o$acc[[p]]) / k
    }
  }

  if (update) {
    # 4. Clipping.
    if (!is.null(cfg$clipnorm)) {
      c <- cfg$clipnorm
      for (p in active) g[[p]] <- g[[p]] * c / max(sqrt(sum(g[[p]]^2)), c)
    }
    if (!is.null(cfg$global_clipnorm)) {
      c <- cfg$global_clipnorm
      total <- 0
      for (p in active) total <- total + sum(g[[p]]^2)
      n <- sqrt(total)
      for (p in active) g[[p]] <- g[[p]] * c / max(n, c)
    }
    if (!is.null(cfg$clipvalue)) {
      c <- cfg$clipvalue
      for (p in active) g[[p]] <- pmin(pmax(g[[p]], -c), c)
    }

    for (p in active) {
      v <- val[[p]]
      gp <- g[[p]]
      # 5. Weight decay.
      if (!is.null(cfg$weight_decay) && !(p %in% o$excluded)) {
        v <- v - v * cfg$weight_decay * lr
      }
      # 6. RMSprop.
      o$ms[[p]] <- cfg$rho * o$ms[[p]] + (1 - cfg$rho) * gp^2
      if (cfg$centered) {
        o$mg[[p]] <- cfg$rho * o$mg[[p]] + (1 - cfg$rho) * gp
        den <- o$ms[[p]] - o$mg[[p]]^2 + cfg$epsilon
      } else {
        den <- o$ms[[p]] + cfg$epsilon
      }
      inc <- lr * gp / sqrt(den)
      if (cfg$momentum > 0) {
        o$mom[[p]] <- cfg$momentum * o$mom[[p]] + inc
        v <- v - o$mom[[p]]
      } else {
        v <- v - inc
      }
      val[[p]] <- v
    }
    # 3 (end). Reset the accumulators of the variables that took part.
    if (!is.null(k)) {
      for (p in active) o$acc[[p]] <- o$acc[[p]] * 0
    }
  }

  # 7. EMA, on every call, for every built variable.
  iterations <- oracle_iterations(o)
  if (isTRUE(cfg$use_ema)) {
    m <- if (iterations == 0) 0 else cfg$ema_momentum
    for (p in o$paths) o$avg[[p]] <- m * o$avg[[p]] + (1 - m) * val[[p]]
    # 8. Overwrite.
    f <- cfg$ema_overwrite_frequency
    if (!is.null(f) && (iterations + 1) %% f == 0) {
      for (p in o$paths) val[[p]] <- o$avg[[p]]
    }
  }

  # 9. Counter.
  o$it <- o$it + 1

  list(o = o, vars = oracle_restore(val, vars))
}

# oracle_step() on structured gradients and variables (lists, matrices, as
# the package takes them): the new oracle, and the new variables shaped like
# `vars`.
oracle_step_like <- function(o, grads, vars) {
  r <- oracle_step(o, flatten_leaves(grads), flatten_leaves(vars))
  list(o = r$o, vars = relist_like(r$vars, vars))
}

# Put values back into the attributes (names, dim, dimnames) of `like`.
oracle_restore <- function(val, like) {
  out <- like
  for (p in names(like)) {
    r <- like[[p]]
    storage.mode(r) <- "double"
    r[] <- val[[p]]
    out[[p]] <- r
  }
  out
}

# A3.
oracle_iterations <- function(o) {
  k <- o$config$gradient_accumulation_steps
  if (is.null(k)) o$it else o$it %/% k
}

# finalize_variable_values(): the EMA averages when use_ema, else unchanged.
oracle_finalize <- function(o, vars) {
  if (!isTRUE(o$config$use_ema)) return(vars)
  oracle_restore(o$avg, vars)
}

oracle_scale_loss <- function(o, x) {
  if (is.null(o$config$loss_scale_factor)) x else x * o$config$loss_scale_factor
}

# What opt$variables should hold (SPEC B): iteration, learning_rate if
# numeric, then slot kinds grouped in Keras order, each in flat order.
oracle_variables <- function(o) {
  cfg <- o$config
  nm <- cfg$name
  out <- list()
  out[[paste0(nm, "/iteration")]] <- o$it
  if (is.numeric(cfg$learning_rate)) out[[paste0(nm, "/learning_rate")]] <- cfg$learning_rate
  if (!o$built) return(out)
  add <- function(out, slot, suffix) {
    for (p in o$paths) out[[paste0(nm, "/", p, suffix)]] <- slot[[p]]
    out
  }
  if (isTRUE(cfg$use_ema)) out <- add(out, o$avg, "_average")
  if (!is.null(cfg$gradient_accumulation_steps)) out <- add(out, o$acc, "_gradient_accumulator")
  out <- add(out, o$ms, "_velocity")
  if (cfg$momentum > 0) out <- add(out, o$mom, "_momentum")
  if (cfg$centered) out <- add(out, o$mg, "_average_gradient")
  out
}

# ---------------------------------------------------------------------------
# Random test data.

# A random variable structure of one of several kinds, lengths 1..50.
random_structure <- function(kind = sample(c("vector", "named_vector", "matrix",
                                              "array3", "named_list", "nested_list"), 1L)) {
  len <- function() sample.int(50L, 1L)
  switch(kind,
    vector = rnorm(len()),
    named_vector = {
      n <- len()
      stats::setNames(rnorm(n), paste0("e", seq_len(n)))
    },
    matrix = {
      nr <- sample.int(7L, 1L); nc <- sample.int(7L, 1L)
      matrix(rnorm(nr * nc), nr, nc,
             dimnames = list(paste0("r", seq_len(nr)), paste0("c", seq_len(nc))))
    },
    array3 = {
      d <- sample.int(4L, 3L, replace = TRUE)
      array(rnorm(prod(d)), d)
    },
    named_list = list(w = matrix(rnorm(6), 2, 3), b = rnorm(sample.int(5L, 1L)),
                      s = rnorm(1)),
    nested_list = list(list(rnorm(len()), matrix(rnorm(4), 2, 2)),
                       list(a = rnorm(3), list(rnorm(2))),
                       rnorm(1))
  )
}

# A gradient with the same structure as `vars`, entries of magnitude ~ scale.
random_grads_like <- function(vars, scale = 1) {
  flat <- flatten_leaves(vars)
  g <- lapply(flat, function(v) {
    out <- v
    storage.mode(out) <- "double"
    out[] <- rnorm(length(v)) * scale
    out
  })
  relist_like(g, vars)
}

# Log-uniform draw.
rlogunif <- function(lo, hi) exp(runif(1L, log(lo), log(hi)))

# A compact description for failure labels.
describe_config <- function(cfg) {
  parts <- vapply(names(cfg), function(nm) {
    x <- cfg[[nm]]
    txt <- if (is.function(x)) "<function>" else paste(format(x, digits = 6), collapse = ",")
    paste0(nm, "=", txt)
  }, character(1))
  paste(parts, collapse = " ")
}

# Drop NULL entries (for do.call(optimizer_rmsprop, ...)).
compact_config <- function(cfg) cfg[!vapply(cfg, is.null, logical(1))]

# ---------------------------------------------------------------------------
# Driving the package and the oracle side by side.

# Compare opt$variables with the oracle's slots: names (exact, in order) and
# values (as plain doubles).
expect_state_matches <- function(opt, o, label) {
  problems <- state_problems(opt, o)
  testthat::expect(length(problems) == 0L,
                   paste(c(label, problems), collapse = "\n"))
}

# What differs between opt$variables / opt$iterations and the oracle.
state_problems <- function(opt, o) {
  got <- opt$variables
  want <- oracle_variables(o)
  out <- character(0)
  if (!identical(names(got), names(want))) {
    out <- c(out, sprintf("names(opt$variables) are %s, expected %s",
                          paste(names(got), collapse = ", "), paste(names(want), collapse = ", ")))
  } else {
    out <- c(out, close_problem(lapply(got, as.numeric), lapply(want, as.numeric), "opt$variables"))
  }
  c(out, close_problem(opt$iterations, oracle_iterations(o), "opt$iterations"))
}

# NULL when `object` equals `expected` to `tolerance` (attributes included),
# else a description of the difference.
close_problem <- function(object, expected, what, tolerance = 1e-12) {
  res <- all.equal(expected, object, tolerance = tolerance, check.attributes = TRUE)
  if (isTRUE(res)) NULL else paste0(what, ": ", paste(res, collapse = "; "))
}

same_problem <- function(object, expected, what) {
  if (identical(object, expected)) return(NULL)
  paste0(what, ": not identical:\n", paste(utils::capture.output(
    utils::str(list(object = object, expected = expected))), collapse = "\n"))
}

# One expectation for a whole random case: passes when no problem was found,
# else lists the first ones under the case label (which holds the seed).
expect_no_problems <- function(problems, label) {
  testthat::expect(length(problems) == 0L,
                   paste(c(label, utils::head(problems, 8L)), collapse = "\n"))
}

# Call opt$step() and record whether the NULL-gradient warning was raised.
step_capturing_null_warning <- function(opt, grads, vars) {
  warned <- FALSE
  out <- withCallingHandlers(
    opt$step(grads, vars),
    rmsprop_warning_null_gradient = function(w) {
      warned <<- TRUE
      invokeRestart("muffleWarning")
    },
    # Random configurations draw exclusions that may match no variable: that
    # warning is tested in test-fields.R.
    rmsprop_warning_exclusion = function(w) invokeRestart("muffleWarning")
  )
  list(value = out, warned = warned)
}

# paste0() recycles a zero-length vector into one string; this does not.
prefix_problems <- function(at, problems) {
  if (length(problems) == 0L) NULL else paste0(at, problems)
}
