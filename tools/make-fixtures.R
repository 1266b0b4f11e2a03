# Writes the format fixtures of one release: optimizers saved by that release
# with saveRDS(), and what it computed when it continued them. Later
# releases must load these files and continue bit for bit (SPEC B: "files
# written by earlier releases load (migrated) and continue identically");
# tests/testthat/test-format-migration.R checks that.
#
# The fixtures in tests/testthat/fixtures/v<release>/ were made by running
# this script with that release's code, from the package's source directory:
#
#   git worktree add /tmp/rmsprop-0.1.0 54d7504
#   R CMD INSTALL --preclean -l /tmp/lib-0.1.0 /tmp/rmsprop-0.1.0
#   R_LIBS=/tmp/lib-0.1.0 Rscript tools/make-fixtures.R 0.1.0 54d7504
#
# and the same for 0.2.0 at commit 7f41905 (the last commit before objects
# stopped carrying their methods, issue 23).
#
# Never rerun it for a release with a later one: the point of the files is
# that the release wrote them. It refuses to run unless the installed
# rmsprop is that release, and refuses to overwrite existing fixtures unless
# RMSPROP_OVERWRITE_FIXTURES=true.
#
# Output: one <name>.rds per optimizer (only the optimizer, as a user would
# have saved it) and expected.rds, a named list with, per fixture:
#   vars      the variables to continue with (what the last call returned)
#   grads     the gradients of the next 3 calls (a NULL leaf leaves its
#             variable alone; a non-finite one makes optimizer_loss_scale()
#             skip the call)
#   at_load   observe_optimizer() right after saving: $variables,
#             $iterations, $learning_rate, comparable $get_config(),
#             $finalize_variable_values(vars), $scale_loss(1)
#   steps     what each of the next 3 calls of $step() returned
#   after     observe_optimizer() after those 3 calls
# plus `meta` (package version, commit, R version, date).

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2L) stop("usage: Rscript tools/make-fixtures.R <release> <commit>")
release <- args[[1L]]
commit <- args[[2L]]
suppressPackageStartupMessages(library(rmsprop))
if (!file.exists("tests/testthat/helper-fixtures.R")) {
  stop("run this from the package's source directory")
}
if (packageVersion("rmsprop") != release) {
  stop("these fixtures must be written by rmsprop ", release, ", not ", packageVersion("rmsprop"))
}
source("tests/testthat/helper-fixtures.R")
out_dir <- file.path("tests", "testthat", "fixtures", paste0("v", release))
if (length(list.files(out_dir)) && !identical(Sys.getenv("RMSPROP_OVERWRITE_FIXTURES"), "true")) {
  stop(out_dir, " already has fixtures; they must stay as ", release, " wrote them")
}
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

# Functions stored in optimizers: an environment whose parent is the global
# one, so the saved file does not drag this script's environment along.
in_global <- function(f, ...) {
  environment(f) <- list2env(list(...), parent = globalenv())
  f
}

# A nested named list: a matrix with dimnames, a named vector, a 3-d array.
nested_vars <- function() {
  list(
    layer = list(
      w = matrix(c(0.5, -1, 1.5, 2, -0.25, 0.75), 2, 3, dimnames = list(c("a", "b"), NULL)),
      b = c(u = 0.1, v = -0.2)
    ),
    out = array(seq(-1, 1, length.out = 8), c(2, 2, 2))
  )
}

# The gradients of call i: fixed numbers of the variables' shapes.
fixed_grads <- function(i, vars) {
  leaf <- function(x) {
    x[] <- sin(seq_along(x) * 0.7 + i) * 1.5 + 0.1 * i
    x
  }
  if (is.list(vars)) rapply(vars, leaf, how = "replace") else leaf(vars)
}

# Each fixture: `make` builds the optimizer, `vars` the starting variables,
# `pre` how many calls happen before saving, `grads(i, vars)` the gradients
# of call i (pre calls first, then the 3 continued ones).
fixtures <- list(
  plain = list(make = function() optimizer_rmsprop(learning_rate = 0.01),
               vars = function() c(1, -2, 3.5, 0.25)),
  plain_lr_set = list(make = function() {
    o <- optimizer_rmsprop()
    o$learning_rate <- 0.02   # a learning rate changed after construction
    o
  }),
  momentum = list(make = function() optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9)),
  centered = list(make = function() {
    optimizer_rmsprop(learning_rate = 0.02, rho = 0.8, centered = TRUE)
  }),
  centered_momentum = list(make = function() {
    optimizer_rmsprop(learning_rate = 0.02, rho = 0.8, momentum = 0.5, centered = TRUE,
                      epsilon = 1e-5)
  }),
  ema_overwrite = list(pre = 3L, make = function() {
    optimizer_rmsprop(learning_rate = 0.01, momentum = 0.3, use_ema = TRUE, ema_momentum = 0.9,
                      ema_overwrite_frequency = 2)
  }, grads = function(i, vars) {
    g <- fixed_grads(i, vars)
    if (i == 5L) g$layer["b"] <- list(NULL)   # EMA still moves the variable without a gradient
    g
  }),
  accumulation_mid_cycle = list(pre = 4L, make = function() {
    optimizer_rmsprop(learning_rate = 0.05, momentum = 0.2, gradient_accumulation_steps = 3)
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
  schedule_exponential = list(make = function() {
    optimizer_rmsprop(learning_rate = learning_rate_schedule_exponential_decay(0.02, 3, 0.5),
                      momentum = 0.5)
  }),
  schedule_piecewise_accumulation = list(pre = 5L, make = function() {
    optimizer_rmsprop(
      learning_rate = learning_rate_schedule_piecewise_constant_decay(c(2, 6), c(0.05, 0.02, 0.01)),
      gradient_accumulation_steps = 2)
  }),
  schedule_cosine_restarts_ema = list(make = function() {
    optimizer_rmsprop(learning_rate = learning_rate_schedule_cosine_decay_restarts(0.02, 4),
                      use_ema = TRUE, ema_overwrite_frequency = 5)
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
                           loss_scale_factor = 2, gradient_accumulation_steps = 3,
                           name = "all_options")
    o$exclude_from_weight_decay(var_names = "^out$")
    o
  }),
  unnamed_list = list(make = function() optimizer_rmsprop(learning_rate = 0.01, momentum = 0.1),
                      vars = function() list(c(1, 2), matrix(1:4 / 4, 2), list(-3))),
  unbuilt = list(pre = 0L, make = function() {
    o <- optimizer_rmsprop(learning_rate = 0.01, weight_decay = 0.05, centered = TRUE)
    o$exclude_from_weight_decay(var_names = "^layer/w$")
    o
  }),
  built_not_stepped = list(pre = 0L, make = function() {
    o <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.4, use_ema = TRUE)
    o$build(nested_vars())
    o
  }),
  loss_scale = list(pre = 5L, make = function() {
    optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5),
                         initial_scale = 8, dynamic_growth_steps = 2)
  }, grads = function(i, vars) {
    g <- fixed_grads(i, vars)
    if (i %in% c(3L, 7L)) g$layer$w[2] <- Inf   # skipped: the scale halves
    g
  }),
  loss_scale_unbuilt = list(pre = 0L, make = function() {
    optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.01), initial_scale = 4,
                         dynamic_growth_steps = 2)
  })
)

n_next <- 3L
expected <- list()
for (name in names(fixtures)) {
  fx <- fixtures[[name]]
  pre <- if (is.null(fx$pre)) 3L else fx$pre
  grads_of <- if (is.null(fx$grads)) fixed_grads else fx$grads
  vars <- if (is.null(fx$vars)) nested_vars() else fx$vars()
  opt <- fx$make()
  for (i in seq_len(pre)) vars <- suppressWarnings(opt$step(grads_of(i, vars), vars))
  saveRDS(opt, file.path(out_dir, paste0(name, ".rds")))
  grads <- lapply(pre + seq_len(n_next), grads_of, vars = vars)
  at_load <- observe_optimizer(opt, vars)
  steps <- continue_steps(opt, vars, grads)
  expected[[name]] <- list(vars = vars, grads = grads, at_load = at_load, steps = steps,
                           after = observe_optimizer(opt, steps[[n_next]]))
}
expected$meta <- list(package_version = as.character(packageVersion("rmsprop")),
                      commit = commit, r_version = R.version.string,
                      written = format(Sys.time(), tz = "UTC", usetz = TRUE))
saveRDS(expected, file.path(out_dir, "expected.rds"))

files <- list.files(out_dir, full.names = TRUE)
cat(sprintf("%d files, %.1f KB in %s\n", length(files), sum(file.size(files)) / 1024, out_dir))
