# Fuzzing machinery for test-fuzz.R and tools/fuzz.R (issue 7, hardening).
#
# Drives the public API (exported functions, optimizer methods and active
# bindings) with seeded, generated bad and edge inputs and classifies every
# call: it returned (and, where a correct value is known, the value is
# checked), or it raised a classed `rmsprop_error`. Anything else is a
# problem: an error without the class ("unclassed"), an optimizer whose
# state differs after an error ("corrupt"), a caller's input modified by a
# value-semantics call ("input_changed"), a returned value that differs from
# the same input without attributes or from a plain-R recomputation
# ("wrong"). A crash ends the R process; tools/fuzz.R runs batches in
# subprocesses to count them.
#
# Only public API is used (no `:::`), so the figures describe what a user can
# reach. Everything is prefixed `fz_` to stay out of the other helpers' way.

fz_pkg_has <- function(name) {
  name %in% getNamespaceExports("rmsprop")
}

# ---------------------------------------------------------------------------
# Counters

fz_counter <- function() {
  ctr <- new.env(parent = emptyenv())
  for (n in c("tried", "returned", "classed", "unclassed", "corrupt", "input_changed",
              "wrong", "foreign_warnings", "unverified")) {
    assign(n, 0, envir = ctr)
  }
  ctr$problems <- list()
  ctr
}

fz_problem <- function(ctr, kind, label, message) {
  ctr[[kind]] <- ctr[[kind]] + 1
  key <- paste(kind, substr(gsub("[0-9.e+-]+", "#", message), 1, 160), sep = " | ")
  p <- ctr$problems[[key]]
  if (is.null(p)) p <- list(kind = kind, count = 0, example = label, message = message)
  p$count <- p$count + 1
  ctr$problems[[key]] <- p
  invisible()
}

fz_add <- function(total, ctr) {
  for (n in c("tried", "returned", "classed", "unclassed", "corrupt", "input_changed",
              "wrong", "foreign_warnings", "unverified")) {
    total[[n]] <- total[[n]] + ctr[[n]]
  }
  for (key in names(ctr$problems)) {
    p <- ctr$problems[[key]]
    q <- total$problems[[key]]
    if (!is.null(q)) p$count <- p$count + q$count
    total$problems[[key]] <- p
  }
  total
}

fz_figures <- function(ctr) {
  c(tried = ctr$tried, returned = ctr$returned, classed_errors = ctr$classed,
    unclassed_errors = ctr$unclassed, state_corruptions = ctr$corrupt,
    inputs_changed = ctr$input_changed, wrong_values = ctr$wrong,
    foreign_warnings = ctr$foreign_warnings, unverified = ctr$unverified)
}

fz_format <- function(ctr, title = "fuzz") {
  f <- fz_figures(ctr)
  lines <- sprintf("%s: %s", title, paste(names(f), f, sep = " ", collapse = ", "))
  for (p in ctr$problems) {
    lines <- c(lines, sprintf("  [%s] x%d e.g. %s: %s", p$kind, p$count, p$example,
                              substr(p$message, 1, 200)))
  }
  lines
}

# Problems that break the contract (foreign warnings are reported, not failed).
fz_failures <- function(ctr) {
  ctr$unclassed + ctr$corrupt + ctr$input_changed + ctr$wrong
}

# ---------------------------------------------------------------------------
# Snapshots and the classifying call

fz_config_of <- function(opt) {
  cfg <- opt$get_config()
  if (is.environment(cfg$inner_optimizer)) cfg$inner_optimizer <- cfg$inner_optimizer$get_config()
  cfg
}

# Everything observable about an optimizer's state.
fz_snapshot <- function(opt) {
  if (!is.environment(opt)) return(NULL)
  lr <- tryCatch(opt$current_learning_rate(), error = function(e) conditionMessage(e))
  # Functions in the configuration (learning rates) compare by code: clone()
  # and serialize() legitimately give copies with their own environment.
  list(variables = opt$variables, iterations = opt$iterations,
       config = fz_plain_safe(fz_config_of(opt)), lr = lr)
}

# Functions are compared by their code only: the JIT compiler legitimately
# adds byte code to a closure once it has been called.
fz_plain <- function(x) {
  if (is.function(x)) {
    return(list("<function>", class(x), deparse(args(x)), deparse(body(x))))
  }
  if (is.list(x) && !is.object(x)) {
    a <- attributes(x)
    x <- lapply(x, fz_plain)
    attributes(x) <- a
  }
  x
}

fz_plain_safe <- function(x) tryCatch(fz_plain(x), error = function(e) x) # deep nesting

fz_bytes <- function(x) tryCatch(serialize(fz_plain_safe(x), NULL), error = function(e) NULL)

fz_same_input <- function(before, now) {
  if (is.null(before)) return(TRUE)
  identical(before, fz_bytes(now)) ||
    isTRUE(tryCatch(identical(unserialize(before), fz_plain_safe(now)), error = function(e) FALSE))
}

# Runs f(); `opt` is the optimizer whose state must survive an error,
# `inputs` what must never change, `check(value)` returns NULL when the value
# is right or a sentence saying what is wrong.
fz_call <- function(ctr, label, f, opt = NULL, inputs = NULL, check = NULL) {
  ctr$tried <- ctr$tried + 1
  before <- if (is.environment(opt)) fz_snapshot(opt)
  inputs_before <- if (!is.null(inputs)) fz_bytes(inputs)
  out <- tryCatch(
    withCallingHandlers(
      list(status = "returned", value = f()),
      warning = function(w) {
        if (!inherits(w, "rmsprop_warning")) {
          fz_problem(ctr, "foreign_warnings", label, paste(class(w)[1], conditionMessage(w)))
        }
        invokeRestart("muffleWarning")
      }),
    rmsprop_error = function(e) list(status = "classed", cond = e),
    error = function(e) list(status = "unclassed", cond = e)
  )
  if (out$status == "returned") {
    ctr$returned <- ctr$returned + 1
    if (!is.null(check)) {
      why <- tryCatch(check(out$value), error = function(e) paste("check failed:", conditionMessage(e)))
      if (!is.null(why)) fz_problem(ctr, "wrong", label, why)
    }
  } else {
    if (out$status == "classed") ctr$classed <- ctr$classed + 1
    else fz_problem(ctr, "unclassed", label, conditionMessage(out$cond))
    if (is.environment(opt) && !identical(before, fz_snapshot(opt))) {
      fz_problem(ctr, "corrupt", label, paste("state changed by a failed call:",
                                              conditionMessage(out$cond)))
    }
  }
  if (!fz_same_input(inputs_before, inputs)) {
    fz_problem(ctr, "input_changed", label, "a caller's input was modified")
  }
  invisible(out)
}

# ---------------------------------------------------------------------------
# Values

fz_deep <- function(depth, leaf = 1) {
  x <- leaf
  for (i in seq_len(depth)) x <- list(x)
  x
}

# Bad or odd values for any argument position (a fresh list each call: it
# holds environments and functions).
fz_atoms <- function() {
  bytes <- "\xff\xfe"
  Encoding(bytes) <- "bytes"
  latin <- "caf\xe9"
  Encoding(latin) <- "latin1"
  list(
    chr = "a", chr_num = "0.5", chr0 = character(0), chr_na = NA_character_,
    chr_bytes = bytes, chr_latin1 = latin, chr_long = strrep("x", 5000),
    cplx = 1 + 2i, cplx_vec = c(1i, 2i), list0 = list(), list1 = list(1), list_null = list(NULL),
    factor = factor("a"), factor_num = factor(c("1", "2")), env = new.env(),
    fun = function(x) x, fun0 = function() 0.1, prim = sum, null = NULL,
    raw = as.raw(c(1, 2)), na = NA, na_real = NA_real_, na_int = NA_integer_, nan = NaN,
    inf = Inf, ninf = -Inf, num0 = numeric(0), int0 = integer(0), lgl0 = logical(0),
    true = TRUE, false = FALSE, zero = 0, negzero = -0, one = 1, neg = -1, half = 0.5,
    huge = 1e300, tiny = 1e-300, denormal = 5e-324, xmax = .Machine$double.xmax,
    int = 3L, int_max = .Machine$integer.max, two = c(1, 2), hundred = seq(0.01, 1, 0.01),
    with_na = c(1, NA), with_nan = c(NaN, 1), with_inf = c(1, Inf),
    classed = structure(0.5, class = "foo"), date = as.Date("2020-01-01"),
    posix = as.POSIXct(0, origin = "1970-01-01", tz = "UTC"),
    difftime = as.difftime(1, units = "secs"), mat = matrix(c(1, 2, 3, 4), 2),
    mat_dn = matrix(1, 1, 1, dimnames = list("r", "c")), arr = array(1, c(1, 1, 1)),
    df = data.frame(a = 1), sym = quote(x), call = quote(f(x)), expr = expression(1),
    formula = y ~ x, named = c(a = 1), attr = structure(1, foo = "bar"),
    cls_optimizer = structure(0.5, class = "rmsprop_optimizer"),
    cls_fit = structure(0.5, class = "rmsprop_fit"),
    cls_df = structure(0.5, class = "data.frame"),
    cls_schedule = structure(0.5, class = c("rmsprop_schedule", "function")),
    cls_list_opt = structure(list(), class = "rmsprop_optimizer"),
    optimizer = optimizer_rmsprop(),
    schedule = learning_rate_schedule_exponential_decay(0.1, 10, 0.9),
    altrep = as.double(1:3), intseq = 1:3, nested = list(list(list(1))),
    deep = fz_deep(600), s4 = methods::new("externalptr"),
    pairlist = pairlist(1), big_vec = numeric(1e5)
  )
}

fz_pick <- function(atoms) {
  i <- sample.int(length(atoms), 1)
  list(name = names(atoms)[[i]], value = atoms[[i]])
}

# ---------------------------------------------------------------------------
# Valid configurations and structures

fz_random_lr <- function() {
  switch(sample(c("num", "num", "num", "sched", "fun0", "fun1"), 1),
    num = sample(c(0, 1e-3, 0.01, 0.1, 1), 1),
    sched = learning_rate_schedule_exponential_decay(0.05, 10, 0.9),
    fun0 = function() 0.01,
    fun1 = function(step) 0.01 / (1 + step)
  )
}

fz_random_config <- function() {
  cfg <- list(learning_rate = fz_random_lr(), rho = sample(c(0, 0.5, 0.9, 1), 1),
              momentum = sample(c(0, 0, 0.5, 0.9), 1), epsilon = sample(c(1e-7, 1e-3), 1),
              centered = sample(c(TRUE, FALSE), 1))
  if (runif(1) < 0.3) cfg$weight_decay <- 0.01
  clip <- sample(c("none", "none", "clipnorm", "clipvalue", "global_clipnorm"), 1)
  if (clip != "none") cfg[[clip]] <- sample(c(0.5, 1, 10), 1)
  if (runif(1) < 0.3) {
    cfg$use_ema <- TRUE
    cfg$ema_momentum <- sample(c(0, 0.5, 0.99, 1), 1)
    if (runif(1) < 0.5) cfg$ema_overwrite_frequency <- sample(1:3, 1)
  }
  if (runif(1) < 0.2) cfg$loss_scale_factor <- sample(c(0.5, 128), 1)
  if (runif(1) < 0.25) cfg$gradient_accumulation_steps <- sample(2:3, 1)
  cfg
}

fz_random_leaf <- function() {
  switch(sample(c("vec", "vec", "named", "mat", "mat_dn", "arr", "int", "lgl", "scalar",
                  "empty", "classed"), 1),
    vec = rnorm(sample(1:5, 1)),
    named = c(a = rnorm(1), b = rnorm(1)),
    mat = matrix(rnorm(6), 2, 3),
    mat_dn = matrix(rnorm(4), 2, 2, dimnames = list(c("r1", "r2"), c("c1", "c2"))),
    arr = array(rnorm(8), c(2, 2, 2)),
    int = sample(-3:3, 3, replace = TRUE),
    lgl = c(TRUE, FALSE),
    scalar = rnorm(1),
    empty = numeric(0),
    classed = structure(rnorm(2), class = "myclass", units = "m")
  )
}

fz_random_vars <- function(depth = 0) {
  if (depth >= 3 || (depth > 0 && runif(1) < 0.6) || (depth == 0 && runif(1) < 0.3)) {
    leaf <- fz_random_leaf()
    # A lone zero-length leaf is valid but makes a dull optimizer.
    if (depth == 0 && length(leaf) == 0L) leaf <- c(1, 2)
    return(leaf)
  }
  n <- sample(1:3, 1)
  out <- lapply(seq_len(n), function(i) fz_random_vars(depth + 1))
  if (runif(1) < 0.6) names(out) <- paste0(sample(letters, n), seq_len(n))
  out
}

# Gradients shaped like `vars` (a leaf as a plain vector half of the time).
fz_grads_like <- function(vars, scale = 1) {
  if (is.list(vars)) {
    out <- lapply(vars, fz_grads_like, scale = scale)
    names(out) <- names(vars)
    return(out)
  }
  g <- rnorm(length(vars)) * scale
  if (!is.null(dim(vars)) && runif(1) < 0.5) dim(g) <- dim(vars)
  g
}

# Paths (as index vectors) of every leaf, depth first.
fz_leaf_paths <- function(x, path = integer()) {
  if (!is.list(x)) return(list(path))
  if (length(x) == 0L) return(list(path))
  out <- list()
  for (i in seq_along(x)) out <- c(out, fz_leaf_paths(x[[i]], c(path, i)))
  out
}

fz_set <- function(x, path, value) {
  if (length(path) == 0L) return(value)
  if (is.null(value)) {
    x[path[[1]]] <- list(fz_set(x[[path[[1]]]], path[-1], value))
    return(x)
  }
  x[[path[[1]]]] <- fz_set(x[[path[[1]]]], path[-1], value)
  x
}

fz_get <- function(x, path) {
  for (i in path) x <- x[[i]]
  x
}

# Leaves as plain doubles (attributes dropped), for comparing values.
fz_flat <- function(x) {
  if (is.list(x)) return(unlist(lapply(x, fz_flat), recursive = FALSE, use.names = FALSE))
  list(as.double(unclass(x)))
}

# The same input without attributes: gradients become plain doubles, variable
# leaves plain doubles with only their dim.
fz_strip_grads <- function(g) {
  if (is.null(g)) return(NULL)
  if (is.list(g)) {
    out <- vector("list", length(g)) # keeps NULL entries
    for (i in seq_along(g)) if (!is.null(g[[i]])) out[[i]] <- fz_strip_grads(g[[i]])
    names(out) <- names(g)
    return(out)
  }
  as.double(unclass(g))
}

fz_strip_vars <- function(v) {
  if (is.list(v)) {
    out <- lapply(v, fz_strip_vars)
    attributes(out) <- NULL
    names(out) <- names(v)
    return(out)
  }
  out <- as.double(unclass(v))
  attributes(out) <- NULL
  if (!is.null(attr(v, "dim"))) dim(out) <- attr(v, "dim")
  out
}

# Attributes of every node (lists and leaves) except those a step converts.
fz_attr_tree <- function(x) {
  a <- attributes(x)
  if (is.list(x)) return(list(a, lapply(x, fz_attr_tree)))
  list(a)
}

# A returned step result is right when its values equal those of the same
# input without attributes (stepped on a clone made before the call) and its
# attributes are the variables' attributes.
fz_step_checker <- function(ref, grads, vars, method = "step") {
  function(value) {
    if (is.null(ref)) return(NULL)
    expected <- suppressWarnings(ref[[method]](fz_strip_grads(grads), fz_strip_vars(vars)))
    if (!identical(fz_flat(value), fz_flat(expected))) {
      return("values differ from the same input without attributes")
    }
    if (!identical(fz_attr_tree(value), fz_attr_tree(vars))) {
      return("attributes (names, dim, dimnames, class) not kept")
    }
    NULL
  }
}

# ---------------------------------------------------------------------------
# Mutations of a valid (grads, vars) pair into bad or changed inputs

fz_mutate <- function(grads, vars, atoms) {
  gpaths <- fz_leaf_paths(grads)
  vpaths <- fz_leaf_paths(vars)
  kind <- sample(c("grad_leaf", "grad_leaf", "var_leaf", "grad_nonfinite", "grad_nonfinite",
                   "grads_whole", "vars_whole", "drop", "add", "rename", "redim", "relength",
                   "wrap", "all_null", "swap_order", "grad_attr"), 1)
  label <- kind
  a <- fz_pick(atoms)
  switch(kind,
    grad_leaf = {
      p <- gpaths[[sample.int(length(gpaths), 1)]]
      grads <- fz_set(grads, p, a$value)
      label <- paste(kind, a$name)
    },
    var_leaf = {
      p <- vpaths[[sample.int(length(vpaths), 1)]]
      vars <- fz_set(vars, p, a$value)
      label <- paste(kind, a$name)
    },
    grad_nonfinite = {
      nonempty <- Filter(function(p) length(fz_get(grads, p)) > 0L, gpaths)
      if (length(nonempty)) {
        p <- nonempty[[sample.int(length(nonempty), 1)]]
        g <- fz_get(grads, p)
        bad <- sample(list(NA, NA_real_, NaN, Inf, -Inf), 1)[[1]]
        g[sample.int(length(g), 1)] <- bad
        grads <- fz_set(grads, p, g)
        label <- paste(kind, format(bad))
      }
    },
    grads_whole = {
      grads <- a$value
      label <- paste(kind, a$name)
    },
    vars_whole = {
      vars <- a$value
      label <- paste(kind, a$name)
    },
    drop = {
      if (is.list(vars) && length(vars) > 1L) {
        i <- sample.int(length(vars), 1)
        if (runif(1) < 0.5) vars <- vars[-i] else grads <- grads[-i]
      } else {
        vars <- list(vars)
      }
    },
    add = {
      if (is.list(vars)) {
        vars <- c(vars, list(extra = 1))
        if (runif(1) < 0.5) grads <- c(grads, list(extra = 1))
      } else {
        vars <- c(vars, 1)
      }
    },
    rename = {
      if (is.list(vars)) {
        nm <- names(vars)
        new <- sample(list(NULL, rep("", length(vars)), rep(NA_character_, length(vars)),
                           paste0("z", seq_along(vars)), rep(atoms$chr_bytes, length(vars)),
                           rev(nm)), 1)[[1]]
        if (runif(1) < 0.5) names(vars) <- new else names(grads) <- new
      } else {
        names(vars) <- NULL
        names(vars) <- if (length(vars)) paste0("n", seq_along(vars))
      }
    },
    redim = {
      p <- vpaths[[sample.int(length(vpaths), 1)]]
      v <- fz_get(vars, p)
      n <- length(v)
      nd <- if (n > 0 && runif(1) < 0.5) c(1L, n) else if (n > 0) c(n, 1L) else NULL
      if (!is.null(dim(v))) dim(v) <- NULL else if (!is.null(nd)) dim(v) <- nd
      if (runif(1) < 0.5) vars <- fz_set(vars, p, v) else grads <- fz_set(grads, gpaths[[1]],
        array(as.double(fz_get(grads, gpaths[[1]])), c(length(fz_get(grads, gpaths[[1]])), 1, 1)))
    },
    relength = {
      p <- vpaths[[sample.int(length(vpaths), 1)]]
      v <- as.double(fz_get(vars, p))
      v <- if (length(v) > 0 && runif(1) < 0.5) v[-1] else c(v, 0)
      if (runif(1) < 0.5) vars <- fz_set(vars, p, v) else grads <- fz_set(grads, p, v)
    },
    wrap = {
      if (runif(1) < 0.5) grads <- list(grads) else vars <- list(vars)
      if (runif(1) < 0.3) grads <- fz_deep(600, grads)
    },
    all_null = {
      if (is.list(grads)) {
        for (p in gpaths) grads <- fz_set(grads, p, NULL)
      } else {
        grads <- NULL
      }
    },
    swap_order = {
      tmp <- grads
      grads <- vars
      vars <- tmp
    },
    grad_attr = {
      p <- gpaths[[sample.int(length(gpaths), 1)]]
      g <- fz_get(grads, p)
      cls <- sample(c("foo", "factor", "data.frame", "rmsprop_optimizer"), 1)
      if (cls == "factor") g <- factor(g) else attr(g, "class") <- cls
      grads <- fz_set(grads, p, g)
      label <- paste(kind, class(g)[1])
    }
  )
  list(label = label, grads = grads, vars = vars)
}

# ---------------------------------------------------------------------------
# Fuzz drivers. Each takes a counter and a number of rounds and returns the
# counter. They use the RNG: seed before calling.

fz_new_optimizer <- function(cfg, loss_scale = FALSE) {
  opt <- do.call(optimizer_rmsprop, cfg)
  if (loss_scale && fz_pkg_has("optimizer_loss_scale")) {
    opt <- optimizer_loss_scale(opt, initial_scale = sample(c(1, 1024), 1),
                                dynamic_growth_steps = sample(1:3, 1))
  }
  opt
}

# Bad and changed inputs to the step-like methods of a built optimizer; after
# every failure the optimizer must still step exactly like a clone made
# before the failed call.
fz_run_steps <- function(ctr, rounds = 50, calls = 12) {
  atoms <- fz_atoms()
  for (r in seq_len(rounds)) {
    cfg <- fz_random_config()
    loss_scale <- runif(1) < 0.2 && is.null(cfg$loss_scale_factor) &&
      is.null(cfg$gradient_accumulation_steps) && !isTRUE(cfg$use_ema) &&
      is.null(cfg$weight_decay) && is.null(cfg$clipnorm) && is.null(cfg$clipvalue) &&
      is.null(cfg$global_clipnorm)
    opt <- fz_new_optimizer(cfg, loss_scale)
    vars <- fz_random_vars()
    grads <- fz_grads_like(vars)
    built <- runif(1) < 0.85
    if (built) vars <- opt$step(grads, vars)
    for (k in seq_len(calls)) {
      m <- fz_mutate(fz_grads_like(vars), vars, atoms)
      method <- sample(c("step", "step", "step", "apply", "apply_gradients", "step_in_place",
                         "build", "finalize_variable_values"), 1)
      ref <- opt$clone()
      label <- sprintf("round %d %s(%s)", r, method, m$label)
      g <- m$grads
      v <- m$vars
      if (!is.function(opt[[method]])) next # e.g. no step_in_place() on a loss-scale wrapper
      if (method == "step_in_place") {
        # The copy recurses: on the deepest mutations (600 levels) it runs out
        # of C stack, which ended the whole batch (tools/fuzz.R got no
        # counters back). Such a round is skipped.
        copied <- tryCatch(list(fz_copy_leaves(v)), error = function(e) NULL)
        if (is.null(copied)) next
        v <- copied[[1]]
      }
      f <- switch(method,
        step = function() opt$step(g, v),
        apply = function() opt$apply(g, v),
        apply_gradients = function() {
          pairs <- if (is.list(g) && is.list(v) && length(g) == length(v) && length(v)) {
            out <- lapply(seq_along(v), function(i) list(g[[i]], v[[i]]))
            names(out) <- names(v)
            out
          } else list(list(g, v))
          opt$apply_gradients(pairs)
        },
        step_in_place = function() opt$step_in_place(g, v),
        build = function() opt$build(v),
        finalize_variable_values = function() opt$finalize_variable_values(v)
      )
      check <- if (method %in% c("step", "apply")) fz_step_checker(ref, g, v) else NULL
      out <- fz_call(ctr, label, f, opt = opt,
                     inputs = if (method != "step_in_place") list(g, v), check = check)
      if (out$status != "returned") {
        fz_after_failure(ctr, label, opt, ref, vars)
      } else if (!built) {
        break # the first step built the optimizer on another structure; start anew
      }
    }
  }
  ctr
}

# A real copy of every leaf, so step_in_place cannot touch the caller's data.
fz_copy_leaves <- function(v) {
  if (is.list(v)) {
    out <- lapply(v, fz_copy_leaves)
    attributes(out) <- attributes(v)
    return(out)
  }
  if (is.double(v)) {
    w <- v + 0
    attributes(w) <- attributes(v)
    return(w)
  }
  v
}

# Calls after a failed call: the optimizer must continue exactly like a clone
# made before the failure.
fz_after_failure <- function(ctr, label, opt, ref, vars) {
  ok <- tryCatch({
    fz_after_failure_(ctr, label, opt, ref, vars)
    TRUE
  }, error = function(e) FALSE)
  if (!ok) ctr$unverified <- ctr$unverified + 1
}

fz_after_failure_ <- function(ctr, label, opt, ref, vars) {
  g <- fz_grads_like(vars)
  a <- tryCatch(suppressWarnings(opt$step(g, vars)), error = function(e) e)
  b <- tryCatch(suppressWarnings(ref$step(g, vars)), error = function(e) e)
  same <- if (inherits(a, "error") || inherits(b, "error")) {
    inherits(a, "error") && inherits(b, "error") &&
      identical(conditionMessage(a), conditionMessage(b))
  } else {
    identical(a, b)
  }
  if (!same || !identical(fz_snapshot(opt), fz_snapshot(ref))) {
    fz_problem(ctr, "corrupt", paste(label, "then a valid step"),
               "after a failed call the optimizer no longer steps like its clone from before")
  }
}

# Other methods and bindings of a built optimizer, with bad arguments.
fz_run_methods <- function(ctr, rounds = 40) {
  atoms <- fz_atoms()
  for (r in seq_len(rounds)) {
    cfg <- fz_random_config()
    opt <- fz_new_optimizer(cfg, runif(1) < 0.2)
    vars <- fz_random_vars()
    fresh <- opt$clone()
    if (runif(1) < 0.8) vars <- suppressWarnings(opt$step(fz_grads_like(vars), vars))
    for (k in 1:10) {
      a <- fz_pick(atoms)
      b <- fz_pick(atoms)
      x <- a$value
      y <- b$value
      which <- sample(c("exclude", "exclude_fresh", "scale_loss", "load", "load_mutated",
                        "set_lr", "set_iterations", "set_variables", "current_lr",
                        "get_config", "print", "clone", "serialize"), 1)
      label <- sprintf("round %d %s(%s, %s)", r, which, a$name, b$name)
      target <- if (which == "exclude_fresh") fresh else opt
      needs <- c(exclude = "exclude_from_weight_decay", exclude_fresh = "exclude_from_weight_decay",
                 load = "load_variables", load_mutated = "load_variables")
      if (which %in% names(needs) && !is.function(target[[needs[[which]]]])) next
      f <- switch(which,
        exclude = function() opt$exclude_from_weight_decay(x, y),
        exclude_fresh = function() fresh$exclude_from_weight_decay(
          if (runif(1) < 0.5) x else NULL, if (runif(1) < 0.5) y else NULL),
        scale_loss = function() opt$scale_loss(x),
        load = function() opt$load_variables(x),
        load_mutated = function() {
          v <- opt$variables
          if (length(v)) v[[sample.int(length(v), 1)]] <- x
          opt$load_variables(v)
        },
        set_lr = function() opt$learning_rate <- x,
        set_iterations = function() opt$iterations <- x,
        set_variables = function() opt$variables <- x,
        current_lr = function() opt$current_learning_rate(),
        get_config = function() do.call(optimizer_rmsprop, opt$get_config()),
        print = function() utils::capture.output(print(opt), format(opt)),
        clone = function() opt$clone()$variables,
        serialize = function() unserialize(serialize(opt, NULL))$variables
      )
      check <- switch(which,
        clone = function(v) if (!identical(v, opt$variables)) "clone state differs",
        serialize = function(v) if (!identical(v, opt$variables)) "serialized state differs",
        NULL)
      out <- fz_call(ctr, label, f, opt = target, inputs = list(x, y), check = check)
    }
  }
  ctr
}

# Constructors with bad arguments; an accepted value must be in the SPEC range,
# and the optimizer it makes must work and round-trip through get_config().
fz_spec_ok <- function(arg, x) {
  num <- function(x) (is.double(x) || is.integer(x)) && length(x) == 1L && !is.na(x) &&
    is.finite(x)
  flag <- function(x) is.logical(x) && length(x) == 1L && !is.na(x)
  switch(arg,
    learning_rate = is.function(x) || (num(x) && x >= 0),
    rho = , momentum = , ema_momentum = num(x) && x >= 0 && x <= 1,
    epsilon = num(x) && x > 0,
    centered = , use_ema = flag(x),
    weight_decay = is.null(x) || (num(x) && x >= 0),
    clipnorm = , clipvalue = , global_clipnorm = , loss_scale_factor =
      is.null(x) || (num(x) && x > 0),
    ema_overwrite_frequency = is.null(x) || (num(x) && x >= 1 && x == round(x)),
    gradient_accumulation_steps = is.null(x) || (num(x) && x >= 2 && x == round(x)),
    name = is.character(x) && length(x) == 1L && !is.na(x) && nzchar(x),
    TRUE)
}

fz_run_constructor <- function(ctr, rounds = 300) {
  atoms <- fz_atoms()
  args <- names(formals(optimizer_rmsprop))
  args <- setdiff(args, "...")
  for (r in seq_len(rounds)) {
    n <- sample(1:2, 1)
    chosen <- sample(args, n)
    call_args <- list()
    labels <- character()
    for (arg in chosen) {
      a <- fz_pick(atoms)
      call_args[arg] <- list(a$value)
      labels <- c(labels, paste0(arg, "=", a$name))
    }
    if (runif(1) < 0.1) {
      d <- fz_pick(atoms)
      nm <- sample(c("lr", "decay", "foo", ""), 1)
      call_args <- c(call_args, stats::setNames(list(d$value), nm))
      labels <- c(labels, paste0(nm, "=", d$name))
    }
    label <- paste0("optimizer_rmsprop(", paste(labels, collapse = ", "), ")")
    check <- function(opt) {
      for (arg in intersect(chosen, args)) {
        if (!fz_spec_ok(arg, call_args[[arg]])) return(paste("accepted an invalid", arg))
      }
      again <- do.call(optimizer_rmsprop, opt$get_config())
      if (!identical(fz_config_of(again), fz_config_of(opt))) return("get_config() does not round-trip")
      v <- suppressWarnings(opt$step(c(0.5, -1), c(1, 2)))
      if (!is.double(v) || length(v) != 2L) return("the new optimizer cannot step")
      NULL
    }
    fz_call(ctr, label, function() suppressWarnings(do.call(optimizer_rmsprop, call_args, quote = TRUE)),
            inputs = call_args, check = check)
  }
  ctr
}

fz_schedule_makers <- function() {
  nms <- grep("^learning_rate_schedule_", getNamespaceExports("rmsprop"), value = TRUE)
  stats::setNames(lapply(nms, function(n) getExportedValue("rmsprop", n)), nms)
}

fz_schedule_valid_args <- list(
  learning_rate_schedule_exponential_decay = list(0.1, 10, 0.9),
  learning_rate_schedule_inverse_time_decay = list(0.1, 10, 0.5),
  learning_rate_schedule_piecewise_constant_decay = list(c(10, 20), c(1, 0.5, 0.1)),
  learning_rate_schedule_polynomial_decay = list(0.1, 10),
  learning_rate_schedule_cosine_decay = list(0.1, 10),
  learning_rate_schedule_cosine_decay_restarts = list(0.1, 10)
)

# Schedule constructors with bad arguments, and schedules evaluated at bad
# steps, through `$` and inside an optimizer.
fz_run_schedules <- function(ctr, rounds = 150) {
  atoms <- fz_atoms()
  makers <- fz_schedule_makers()
  if (!length(makers)) return(ctr)
  for (r in seq_len(rounds)) {
    nm <- sample(names(makers), 1)
    make <- makers[[nm]]
    formals_ <- setdiff(names(formals(make)), "...")
    good <- fz_schedule_valid_args[[nm]]
    if (is.null(good)) next
    call_args <- good
    names(call_args) <- formals_[seq_along(good)]
    arg <- sample(formals_, 1)
    a <- fz_pick(atoms)
    call_args[arg] <- list(a$value)
    label <- sprintf("%s(%s = %s)", nm, arg, a$name)
    out <- fz_call(ctr, label, function() do.call(make, call_args, quote = TRUE), inputs = call_args)
    s <- do.call(make, good)
    b <- fz_pick(atoms)
    fz_call(ctr, sprintf("%s()(step = %s)", nm, b$name), function() s(b$value),
            inputs = list(b$value),
            check = function(v) if (!is.double(v) || length(v) != length(b$value))
              "a schedule value is not a double vector of the step's length")
    fz_call(ctr, sprintf("%s()$%s", nm, b$name),
            function() if (is.character(b$value) && length(b$value) == 1L && !is.na(b$value))
              do.call("$", list(s, b$value)) else s$decay_steps)
    fz_call(ctr, sprintf("%s()$x <- %s", nm, b$name), function() {
      s2 <- s
      s2$decay_steps <- b$value
    })
    opt <- optimizer_rmsprop(learning_rate = s)
    opt$step(1, 1)
    fz_call(ctr, sprintf("opt$learning_rate <- %s", b$name),
            function() opt$learning_rate <- b$value, opt = opt)
  }
  ctr
}

# Functions as learning rates that fail, return bad values, or misbehave.
fz_run_lr_functions <- function(ctr) {
  atoms <- fz_atoms()
  for (a in names(atoms)) {
    value <- atoms[[a]]
    for (f in list(function() value, function(step) value)) {
      opt <- optimizer_rmsprop(learning_rate = f)
      fz_call(ctr, paste("learning-rate function returning", a, "(first step)"),
              function() opt$step(1, 1), opt = opt)
      opt2 <- optimizer_rmsprop(learning_rate = 0.1)
      opt2$step(1, 1)
      opt2$learning_rate <- f
      fz_call(ctr, paste("learning-rate function returning", a),
              function() opt2$step(1, 1), opt = opt2)
    }
  }
  for (f in list(function() stop("boom"), function(a, b) 0.1, function(...) 0.1, sum, max, `[`, `if`)) {
    opt <- optimizer_rmsprop(learning_rate = f)
    fz_call(ctr, "odd learning-rate function", function() opt$step(1, 1), opt = opt)
  }
  ctr
}

# minimize() with bad arguments (a few cheap steps each).
fz_run_minimize <- function(ctr, rounds = 60) {
  if (!fz_pkg_has("minimize")) return(ctr)
  atoms <- fz_atoms()
  atoms$big_vec <- NULL
  atoms$deep <- NULL
  good <- list(par = c(1, 2), fn = function(p, ...) sum(unlist(p)^2),
               gr = function(p, ...) if (is.list(p)) rapply(p, function(x) 2 * x, how = "replace")
                                     else 2 * p,
               steps = 3)
  args <- c("par", "fn", "gr", "optimizer", "steps", "tol", "data", "batch_size",
            "epochs", "shuffle", "callback", "progress", "engine")
  for (r in seq_len(rounds)) {
    call_args <- good
    arg <- sample(args, 1)
    a <- fz_pick(atoms)
    label <- sprintf("minimize(%s = %s)", arg, a$name)
    if (arg == "callback" && is.function(a$value)) next # a callback that fails is the user's error
    if (arg %in% c("fn", "gr") && runif(1) < 0.5) {
      v <- a$value
      call_args[arg] <- list(function(p) v)
      label <- sprintf("minimize(%s returning %s)", arg, a$name)
    } else {
      call_args[arg] <- list(a$value)
    }
    # A valid but huge step limit (.Machine$integer.max) is a run of 2^31
    # steps: a callback ends it after a few, so the round checks that the
    # limit is accepted without taking hours (or, before minimize() grew its
    # history, tens of GB).
    huge <- arg == "steps" && is.numeric(a$value) && length(a$value) == 1L &&
      isTRUE(tryCatch(unclass(a$value) > 100, error = function(e) FALSE))
    if (huge) {
      call_args$callback <- function(info) info$step < 5
    }
    opt <- optimizer_rmsprop(learning_rate = 0.1)
    if (is.null(call_args$optimizer)) call_args$optimizer <- opt
    fz_call(ctr, label, function() suppressMessages(do.call(minimize, call_args, quote = TRUE)),
            opt = opt, inputs = list(call_args$par))
  }
  ctr
}

# optimizer_loss_scale() with bad arguments.
fz_run_loss_scale <- function(ctr, rounds = 60) {
  if (!fz_pkg_has("optimizer_loss_scale")) return(ctr)
  atoms <- fz_atoms()
  args <- c("inner_optimizer", "initial_scale", "dynamic_growth_steps", "name", "dots")
  for (r in seq_len(rounds)) {
    inner <- optimizer_rmsprop()
    call_args <- list(inner_optimizer = inner)
    arg <- sample(args, 1)
    a <- fz_pick(atoms)
    if (arg == "dots") {
      call_args[[sample(c("clipnorm", "use_ema", "foo", "weight_decay"), 1)]] <- a$value
    } else {
      call_args[arg] <- list(a$value)
    }
    fz_call(ctr, sprintf("optimizer_loss_scale(%s = %s)", arg, a$name),
            function() do.call(optimizer_loss_scale, call_args, quote = TRUE), opt = inner)
  }
  ctr
}

# Small exported helpers, and print()/format() of wrong objects.
fz_run_misc <- function(ctr) {
  atoms <- fz_atoms()
  old <- rmsprop_kernel_info()$threads
  for (a in names(atoms)) {
    x <- atoms[[a]]
    fz_call(ctr, paste("rmsprop_set_threads", a), function() rmsprop_set_threads(x))
  }
  rmsprop_set_threads(0)
  fz_call(ctr, "rmsprop_kernel_info", rmsprop_kernel_info)
  fz_call(ctr, "rmsprop_live_states", rmsprop_live_states)
  for (a in names(atoms)) {
    x <- atoms[[a]]
    for (cls in c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer")) {
      fake <- if (is.null(x)) NULL else tryCatch(structure(x, class = cls), error = function(e) NULL)
      if (is.null(fake)) next
      fz_call(ctr, sprintf("format(<%s as %s>)", a, cls),
              function() utils::capture.output(print(fake)))
    }
  }
  ctr
}

# The training driver's surface (issue 23, item 8): every atom as each
# argument of minimize() and sweep_optimizers() (with a loss that takes any
# rows, so that its own errors are not counted), of every callback
# constructor and of rmsprop_engine(). `scale` repeats the minimize() round
# with other seeds' data.
fz_run_driver <- function(ctr, scale = 1) {
  atoms <- fz_atoms()
  fn <- function(b, batch) sum(b^2) + 0 * NROW(batch)
  gr <- function(b, batch) 2 * b
  data <- data.frame(y = stats::rnorm(20), x = stats::rnorm(20))
  # a huge step or epoch limit is accepted: the callback ends such runs
  base <- list(par = c(1, 2), fn = fn, gr = gr, data = data, batch_size = 8, epochs = 2,
               progress = FALSE, callback = function(info) info$step < 20)
  run_args <- c("gr", "optimizer", "steps", "tol", "data", "batch_size", "epochs", "shuffle",
                "validation_data", "metrics", "callback", "callbacks", "progress", "engine")
  for (k in seq_len(max(1, round(scale)))) {
    for (arg in run_args) for (a in names(atoms)) {
      args <- base
      args[arg] <- list(atoms[[a]])
      fz_call(ctr, sprintf("minimize(%s = %s)", arg, a),
              function() do.call(minimize, args, quote = TRUE))
    }
  }
  grid <- data.frame(learning_rate = c(0.01, 0.1))
  for (arg in c("grid", "seed", "progress", "metrics", "callbacks", "validation_data",
                "engine")) {
    for (a in names(atoms)) {
      args <- c(list(grid = grid), base[c("par", "fn", "gr", "data", "batch_size")],
                list(epochs = 1))
      args[arg] <- list(atoms[[a]])
      fz_call(ctr, sprintf("sweep_optimizers(%s = %s)", arg, a),
              function() do.call(sweep_optimizers, args, quote = TRUE))
    }
  }
  ctors <- list(callback_early_stopping = list(), callback_reduce_lr_on_plateau = list(),
                callback_backup_and_restore = list(backup_dir = tempdir()),
                callback_csv_logger = list(filename = tempfile()), callback_lambda = list(),
                rmsprop_engine = list())
  for (ctor in names(ctors)) {
    f <- get(ctor)
    for (arg in names(formals(f))) for (a in names(atoms)) {
      args <- ctors[[ctor]]
      args[arg] <- list(atoms[[a]])
      fz_call(ctr, sprintf("%s(%s = %s)", ctor, arg, a),
              function() do.call(f, args, quote = TRUE))
    }
  }
  ctr
}

# The process-wide controls and load_variables() with numeric mutations
# (issue 23): recycling limits and memory info with every atom; thread
# counts up to 1e300, each followed by a large step (with the global norm's
# parallel region) that must equal a one-thread step; and state entries
# mutated into impossible values (negative velocities, huge or fractional
# counters, non-finite values, lost dims, wrong lengths) that load only if
# the optimizer keeps giving finite steps.
fz_run_state_controls <- function(ctr, rounds = 20) {
  atoms <- fz_atoms()
  old_limit <- rmsprop_memory_info()$limit_bytes
  for (a in names(atoms)) {
    x <- atoms[[a]]
    fz_call(ctr, paste("rmsprop_set_recycling", a), function() rmsprop_set_recycling(x))
    fz_call(ctr, paste("rmsprop_memory_info after", a), rmsprop_memory_info, check = function(v) {
      if (!is.list(v) || !all(c("cached_bytes", "limit_bytes", "reused", "fresh", "in_use_bytes") %in%
                              names(v))) "rmsprop_memory_info() lost a field"
    })
  }
  rmsprop_set_recycling(old_limit)
  set.seed(7)
  big_g <- stats::runif(2e5) - 0.5
  big_x <- stats::runif(2e5)
  rmsprop_set_threads(1)
  ref <- optimizer_rmsprop(global_clipnorm = 1)$step(big_g, big_x)
  for (n in c(0, 1, 2, 3, 64, 4e4, 6e4, 1e5, .Machine$integer.max, 1e300)) {
    fz_call(ctr, sprintf("rmsprop_set_threads(%g) then a large step", n), function() {
      rmsprop_set_threads(n)
      optimizer_rmsprop(global_clipnorm = 1)$step(big_g, big_x)
    }, check = function(v) if (!identical(v, ref)) "a thread count changed a result")
  }
  rmsprop_set_threads(0)
  mutations <- list(
    negate = function(v) -v - 1, huge = function(v) v * 0 + 1e300, nan = function(v) v * NaN,
    fraction = function(v) v + 0.5, past_2_53 = function(v) v * 0 + 2^53 + 2,
    no_dim = function(v) as.vector(v), add_dim = function(v) array(v, c(length(v), 1)),
    longer = function(v) c(v, 0), integer = function(v) as.integer(round(v)),
    list = function(v) as.list(v), tiny_negative = function(v) v * 0 - 5e-324,
    square_exceeds = function(v) v * 0 + 1e3
  )
  for (r in seq_len(rounds)) {
    cfg <- list(learning_rate = 0.01, momentum = sample(c(0, 0.5), 1), centered = runif(1) < 0.5,
                use_ema = runif(1) < 0.3)
    opt <- do.call(optimizer_rmsprop, cfg)
    vars <- fz_random_vars()
    vars <- suppressWarnings(opt$step(fz_grads_like(vars), vars))
    values <- opt$variables
    k <- sample.int(length(values), 1)
    m <- sample(names(mutations), 1)
    # A huge learning rate is a valid one (its steps overflow by design).
    if (endsWith(names(values)[[k]], "/learning_rate") && m %in% c("huge", "square_exceeds")) {
      m <- "negate"
    }
    mutated <- values
    mutated[k] <- list(tryCatch(mutations[[m]](values[[k]]), error = function(e) NULL))
    fz_call(ctr, sprintf("round %d load_variables(%s %s)", r, names(values)[[k]], m),
            function() {
              opt$load_variables(mutated)
              suppressWarnings(opt$step(fz_grads_like(vars), vars))
            }, opt = opt, inputs = mutated, check = function(v) {
              if (!all(is.finite(unlist(v)))) "an accepted state gave a non-finite step"
            })
  }
  ctr
}

# Valid but odd inputs: each result is compared with a plain-R recomputation
# of SPEC A1 (no options) and with the same input without attributes.
fz_rms_reference <- function(v, g, steps, lr = 0.1, rho = 0.9, eps = 1e-7, momentum = 0,
                             centered = FALSE) {
  ms <- mg <- mom <- numeric(length(v))
  for (s in seq_len(steps)) {
    ms <- rho * ms + (1 - rho) * (g * g)
    if (centered) {
      mg <- rho * mg + (1 - rho) * g
      den <- ms - mg * mg + eps
    } else {
      den <- ms + eps
    }
    inc <- lr * g / sqrt(den)
    if (momentum > 0) {
      mom <- momentum * mom + inc
      v <- v - mom
    } else {
      v <- v - inc
    }
  }
  v
}

fz_odd_inputs <- function() {
  list(
    zero_length = list(v = numeric(0), g = numeric(0)),
    zero_length_in_list = list(v = list(a = numeric(0), b = c(1, 2)),
                               g = list(a = numeric(0), b = c(0.1, 0.2))),
    length_one = list(v = 3, g = 0.5),
    huge = list(v = c(1e300, -1e300), g = c(1e300, -1e300)),
    huge_grad_small_var = list(v = c(1, 2), g = c(1e200, -1e200)),
    xmax = list(v = .Machine$double.xmax, g = .Machine$double.xmax),
    tiny = list(v = c(1e-300, -1e-300), g = c(1e-300, 5e-324)),
    zero_grad = list(v = c(1, 2), g = c(0, -0)),
    classed = list(v = structure(c(1, 2), class = "myclass", units = "m"), g = c(0.1, 0.2)),
    date = list(v = as.Date(c("2020-01-01", "2021-01-01")), g = c(1, 1)),
    matrix_dimnames = list(v = matrix(c(1, 2, 3, 4), 2, dimnames = list(c("a", "b"), c("x", "y"))),
                           g = matrix(c(1, -1, 0.5, 2), 2)),
    matrix_grad_plain = list(v = matrix(c(1, 2, 3, 4), 2), g = c(1, -1, 0.5, 2)),
    array3 = list(v = array(1:8 / 3, c(2, 2, 2), dimnames = list(NULL, c("p", "q"), NULL)),
                  g = array(0.25, c(2, 2, 2))),
    named = list(v = c(a = 1, b = 2), g = c(x = 0.3, y = 0.4)),
    integer_var = list(v = 1:3, g = c(0.5, 0.5, 0.5)),
    logical_var = list(v = c(TRUE, FALSE), g = c(1, 1)),
    integer_grad = list(v = c(1, 2, 3), g = c(1L, -2L, 3L)),
    logical_grad = list(v = c(1, 2), g = c(TRUE, FALSE)),
    ts = list(v = stats::ts(c(1, 2, 3)), g = c(1, 2, 3)),
    altrep_var = list(v = as.double(1:4), g = c(1, 1, 1, 1)),
    nested = list(v = list(l1 = list(l2 = list(l3 = c(1, 2))), z = 5),
                  g = list(l1 = list(l2 = list(l3 = c(0.1, 0.2))), z = 1)),
    unnamed_list = list(v = list(c(1, 2), 3), g = list(c(1, 1), 1)),
    partly_named = list(v = list(a = 1, 2), g = list(1, 1)),
    na_names = list(v = stats::setNames(list(1, 2), c(NA, "b")), g = list(1, 1)),
    dup_names = list(v = list(a = 1, a = 2), g = list(a = 1, a = 1)),
    classed_list = list(v = structure(list(a = 1, b = 2), class = "mylist"), g = list(a = 1, b = 1)),
    data_frame = list(v = data.frame(a = c(1, 2), b = c(3, 4)), g = list(a = c(1, 1), b = c(1, 1))),
    depth_100 = list(v = fz_deep(100, c(1, 2)), g = fz_deep(100, c(1, 1))),
    long = list(v = seq(-1, 1, length.out = 5000), g = sin(1:5000))
  )
}

fz_run_odd_valid <- function(ctr) {
  cases <- fz_odd_inputs()
  configs <- list(list(), list(momentum = 0.9), list(centered = TRUE),
                  list(momentum = 0.5, centered = TRUE, rho = 0.5))
  for (nm in names(cases)) {
    v <- cases[[nm]]$v
    g <- cases[[nm]]$g
    for (cfg in configs) {
      opt <- do.call(optimizer_rmsprop, c(list(learning_rate = 0.1), cfg))
      plain <- do.call(optimizer_rmsprop, c(list(learning_rate = 0.1), cfg))
      label <- sprintf("valid %s (%s)", nm, paste(names(cfg), cfg, collapse = ","))
      v0 <- v
      # A variable that is not finite is refused (test-nonfinite-variables.R):
      # take only the steps whose inputs the SPEC formula leaves finite (huge
      # gradients make the centered denominator Inf - Inf).
      steps <- 3
      while (steps > 1 && !all(vapply(seq_along(fz_flat(v0)), function(i) {
        all(is.finite(fz_rms_reference(fz_flat(v0)[[i]], fz_flat(g)[[i]], steps - 1,
                                       momentum = if (is.null(cfg$momentum)) 0 else cfg$momentum,
                                       centered = isTRUE(cfg$centered),
                                       rho = if (is.null(cfg$rho)) 0.9 else cfg$rho)))
      }, logical(1)))) steps <- steps - 1
      check <- function(res) {
        expected_plain <- fz_strip_vars(v0)
        for (s in seq_len(steps)) {
          expected_plain <- suppressWarnings(plain$step(fz_strip_grads(g), expected_plain))
        }
        if (!identical(fz_flat(res), fz_flat(expected_plain))) {
          return("values differ from the same input without attributes")
        }
        if (!identical(fz_attr_tree(res), fz_attr_tree(v0))) {
          return("attributes not kept")
        }
        ref <- mapply(function(vl, gl) {
          fz_rms_reference(vl, gl, steps, momentum = if (is.null(cfg$momentum)) 0 else cfg$momentum,
                           centered = isTRUE(cfg$centered),
                           rho = if (is.null(cfg$rho)) 0.9 else cfg$rho)
        }, fz_flat(v0), fz_flat(g), SIMPLIFY = FALSE)
        for (i in seq_along(ref)) {
          a <- fz_flat(res)[[i]]
          b <- ref[[i]]
          same_na <- identical(is.na(a), is.na(b)) && identical(is.nan(a), is.nan(b))
          fin <- is.finite(a) & is.finite(b)
          close <- all(a[!fin] == b[!fin] | is.na(a[!fin])) &&
            all(abs(a[fin] - b[fin]) <= 1e-12 * pmax(1, abs(b[fin])))
          if (!same_na || !close) return(sprintf("leaf %d differs from the SPEC formula", i))
        }
        NULL
      }
      fz_call(ctr, label, function() {
        x <- v
        for (s in seq_len(steps)) x <- opt$step(g, x)
        x
      }, inputs = list(v, g), check = check)
    }
  }
  ctr
}

# Every fuzz part with its share of the rounds; `scale` 1 is the test-suite
# size (about 10-20 s), tools/fuzz.R uses larger scales.
fz_run_all <- function(scale = 1, seed = 1) {
  total <- fz_counter()
  parts <- list(
    constructor = function(ctr) fz_run_constructor(ctr, 250 * scale),
    steps = function(ctr) fz_run_steps(ctr, 60 * scale),
    methods = function(ctr) fz_run_methods(ctr, 25 * scale),
    schedules = function(ctr) fz_run_schedules(ctr, 60 * scale),
    lr_functions = function(ctr) fz_run_lr_functions(ctr),
    loss_scale = function(ctr) fz_run_loss_scale(ctr, 40 * scale),
    minimize = function(ctr) fz_run_minimize(ctr, 30 * scale),
    misc = function(ctr) fz_run_misc(ctr),
    state_controls = function(ctr) fz_run_state_controls(ctr, 20 * scale),
    driver = function(ctr) fz_run_driver(ctr, scale),
    odd_valid = function(ctr) fz_run_odd_valid(ctr)
  )
  per_part <- list()
  for (p in names(parts)) {
    set.seed(seed)
    ctr <- parts[[p]](fz_counter())
    per_part[[p]] <- ctr
    total <- fz_add(total, ctr)
  }
  list(total = total, parts = per_part)
}

# ---------------------------------------------------------------------------
# Bit flips in saved optimizers (issue 23), used by test-saved-code.R and
# tools/fuzz.R.
# Bit flips: a child process serializes optimizers (uncompressed, so the
# flips reach the data), flips 1 to 4 random bits past the header per
# trial, and uses what unserialize() gives back. It logs each trial's stage
# to `log` ("<seed> read" before unserialize(), "<seed> use" before any
# rmsprop code, "<seed> done <outcome>"), so a crash is pinned to a stage
# and the run goes on from the next seed. Outcomes: "unreadable" (base R's
# unserialize() refused it), "foreign" (the class attribute was hit: no
# longer an rmsprop object, so R does not call this package), "classed",
# "working" (stepped 3 times, finite results of the right shape, printed,
# $variables read), "wrong", "unclassed".
fz_flip_trials <- function(seeds, log) {
  suppressPackageStartupMessages(library(rmsprop))
  note <- function(...) cat(..., "\n", file = log, append = TRUE, sep = " ")
  v <- list(layer = list(w = matrix(c(0.5, -1, 1.5, 2), 2), b = c(0.1, -0.2)), out = c(1, 2, 3))
  g <- rapply(v, function(x) sin(seq_along(x)) + x * 0, how = "replace")
  make <- list(
    plain = function() optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5),
    everything = function() {
      o <- optimizer_rmsprop(learning_rate = 0.03, rho = 0.85, momentum = 0.7, centered = TRUE,
                             weight_decay = 0.02, clipnorm = 2, use_ema = TRUE,
                             ema_overwrite_frequency = 2, gradient_accumulation_steps = 3)
      o$exclude_from_weight_decay(var_names = "^out$")
      o
    },
    schedule = function() {
      optimizer_rmsprop(learning_rate = learning_rate_schedule_exponential_decay(0.02, 3, 0.5))
    },
    loss_scale = function() optimizer_loss_scale(optimizer_rmsprop(0.01), initial_scale = 8),
    unbuilt = function() optimizer_rmsprop()
  )
  raws <- Map(function(f, kind) {
    o <- f()
    if (kind != "unbuilt") for (i in 1:4) suppressWarnings(o$step(g, v))
    serialize(o, NULL, xdr = TRUE)
  }, make, names(make))
  for (s in seeds) {
    set.seed(s)
    kind <- names(raws)[[1L + s %% length(raws)]]
    raw <- raws[[kind]]
    at <- sample(seq.int(15L, length(raw)), sample(1:4, 1))
    for (p in at) raw[p] <- xor(raw[p], as.raw(bitwShiftL(1L, sample(0:7, 1))))
    note(s, "read")
    opt <- tryCatch(unserialize(raw), error = function(e) "unreadable")
    note(s, "use")
    out <- if (identical(opt, "unreadable")) "unreadable" else
      if (!inherits(opt, c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer"))) "foreign" else
        tryCatch(withCallingHandlers({
          x <- v
          for (k in 1:3) x <- opt$step(g, x)
          ok <- identical(rapply(x, length, how = "unlist"), rapply(v, length, how = "unlist")) &&
            all(is.finite(unlist(x)))
          utils::capture.output(print(opt))
          invisible(opt$variables)
          if (ok) "working" else "wrong"
        }, warning = function(w) invokeRestart("muffleWarning")),
        rmsprop_error = function(e) "classed",
        error = function(e) paste("unclassed", kind, gsub("\\s+", "_", conditionMessage(e))))
    note(s, "done", out)
  }
  invisible(NULL)
}

# Runs the trials, starting a new child after a crash. Returns the outcome
# counts and the crashes by stage.
fz_run_flip_trials <- function(n, libs, first = 1L) {
  log <- tempfile()
  on.exit(unlink(log))
  crashes <- c(read = 0L, use = 0L)
  crashed_at <- character()
  from <- as.integer(first)
  last_seed <- from + n - 1L
  while (from <= last_seed) {
    ok <- tryCatch({
      callr::r(fz_flip_trials, list(seq(from, last_seed), log), libpath = libs)
      TRUE
    }, error = function(e) FALSE)
    lines <- strsplit(readLines(log), " ")
    last <- lines[[length(lines)]]
    if (ok) break
    stage <- last[[2L]]
    if (stage == "done") stop("the child died between trials")
    crashes[[stage]] <- crashes[[stage]] + 1L
    crashed_at <- c(crashed_at, paste(last[[1L]], stage))
    from <- as.integer(last[[1L]]) + 1L
  }
  done <- vapply(Filter(function(l) l[[2L]] == "done", lines),
                 function(l) paste(l[-(1:2)], collapse = " "), "")
  list(outcomes = table(done), crashes = crashes, crashed_at = crashed_at,
       trials = length(done) + sum(crashes))
}


# ---------------------------------------------------------------------------
# Interrupts: run in a separate R process (callr), which sends SIGINT to
# itself from a shell at a random moment around a large step. Returns a
# table of "<what the caller saw> <state>" where state is "before" (identical
# to the state before the call), "after" (identical to a clone that did the
# step) or "PARTIAL" (anything else: a failure).
fz_interrupt_trials <- function(lib, trials = 10, n = 5e5, seed = 1, max_delay = 0.03) {
  callr::r(function(lib, trials, n, seed, max_delay) {
    suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))
    set.seed(seed)
    pid <- Sys.getpid()
    make <- function() optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9, centered = TRUE,
                                         use_ema = TRUE, clipnorm = 10)
    opt <- make()
    w <- runif(n)
    outcome <- character(trials)
    for (t in seq_len(trials)) {
      if (t %% 4 == 1) opt <- make() # also interrupt first steps, which build the slots
      g <- rnorm(n)
      before <- list(opt$variables, opt$iterations)
      ref <- opt$clone()
      took <- system.time(w_after <- ref$step(g, w))[["elapsed"]]
      after <- list(ref$variables, ref$iterations)
      # Spread the signal over [0, 3 x step time]: it lands before, during
      # or after the step.
      delay <- runif(1, 0, max(max_delay, 3 * took))
      system2("sh", c("-c", shQuote(sprintf("sleep %.4f; kill -INT %d", delay, pid))),
              wait = FALSE)
      seen <- tryCatch({
        w_new <- opt$step(g, w)
        Sys.sleep(max(max_delay, 3 * took) + 0.25) # the signal lands here if the step was faster
        "completed"
      }, interrupt = function(e) "interrupted")
      now <- list(opt$variables, opt$iterations)
      state <- if (identical(now, before)) "before" else if (identical(now, after)) "after"
               else "PARTIAL"
      outcome[[t]] <- paste(seen, state)
      if (state == "after") w <- w_after
    }
    table(outcome)
  }, args = list(lib = lib, trials = trials, n = n, seed = seed, max_delay = max_delay))
}

# The library the tests run against, when it is an installed package (NULL
# under load_all()).
fz_installed_lib <- function() {
  path <- tryCatch(getNamespaceInfo("rmsprop", "path"), error = function(e) "")
  if (!nzchar(path) || !file.exists(file.path(path, "Meta", "package.rds"))) return(NULL)
  dirname(path)
}
