# Runs every C entry point of the package under gctorture(TRUE) (issue 7):
# steps of every variant (lists with names and NULL gradients, matrices,
# integer variables, momentum/centered/EMA/accumulation/clipping), in-place
# steps, apply_gradients, finalize_variable_values, $variables,
# load_variables, clone, serialize()/unserialize() round trips, a rebuilt
# state after readRDS, the error paths (structure, type and non-finite
# signals), large results made from recycled memory, and the C layout of
# issue 13 (state rebuilt from its named list, problem reports with paths,
# build() on a built optimizer, zero-length integer leaves, 0.1.0 files
# migrated from state format 1; run from the source directory to include
# the fixtures). Every result must be identical to the same run without gctorture:
# a missing PROTECT shows up as a crash or a different value.
# Usage: Rscript tools/gctorture.R [lib]   (lib: where rmsprop is installed)
args <- commandArgs(trailingOnly = TRUE)
lib <- if (length(args)) args[[1]] else NULL
suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))

scenario <- function() {
  out <- list()
  add <- function(x) out[[length(out) + 1L]] <<- x
  catch <- function(expr) tryCatch(expr, rmsprop_error = function(e) class(e)[[1]],
                                   rmsprop_warning = function(w) class(w)[[1]])
  vars <- list(w = matrix(c(1, 2, 3, 4), 2, dimnames = list(c("a", "b"), NULL)),
               b = c(x = 0.5, y = -0.5), n = list(i = 1:3, e = numeric(0)))
  grads <- list(w = matrix(0.1, 2, 2), b = c(1, -1), n = list(i = c(0.2, 0.2, 0.2), e = numeric(0)))
  configs <- list(
    list(),
    list(momentum = 0.9, centered = TRUE),
    list(use_ema = TRUE, ema_overwrite_frequency = 2, weight_decay = 0.01),
    list(gradient_accumulation_steps = 2, clipnorm = 0.5, loss_scale_factor = 4),
    list(global_clipnorm = 1, learning_rate = learning_rate_schedule_cosine_decay(0.1, 10)),
    list(clipvalue = 0.05, learning_rate = function() 0.02)
  )
  for (cfg in configs) {
    opt <- do.call(optimizer_rmsprop, cfg)
    v <- vars
    for (s in 1:3) v <- opt$step(grads, v)
    add(v)
    add(suppressWarnings(opt$step(list(w = NULL, b = c(1, 1), n = list(i = NULL, e = NULL)), v)))
    add(opt$apply_gradients(list(w = list(grads$w, v$w), b = list(grads$b, v$b), n = list(grads$n, v$n))))
    add(catch(opt$step(grads["w"], v)))                                   # structure
    add(catch(opt$step(list(w = "a", b = c(1, 1), n = grads$n), v)))      # type
    add(catch(opt$step(list(w = matrix(NaN, 2, 2), b = c(1, 1), n = grads$n), v))) # non-finite
    add(catch(opt$step(grads, list(w = 1, b = 2, n = 3))))
    add(opt$finalize_variable_values(v))
    add(opt$variables)
    st <- opt$variables
    opt2 <- opt$clone()
    add(opt2$step(grads, v))
    opt2$load_variables(st)
    add(opt2$variables)
    opt3 <- unserialize(serialize(opt, NULL))
    add(opt3$step(grads, v))
    add(opt$step(grads, v))
    f <- tempfile(fileext = ".rds")
    saveRDS(opt, f)
    opt4 <- readRDS(f)
    unlink(f)
    add(opt4$iterations)
    add(opt4$step(grads, v))
    add(format(opt4))
  }
  # In-place steps on private copies.
  opt <- optimizer_rmsprop(momentum = 0.5)
  a <- c(1, 2, 3) + 0
  b <- matrix(c(4, 5), 1) + 0
  opt$step_in_place(list(c(1, 1, 1), c(1, 1)), list(a, b))
  add(list(a, b))
  add(catch(opt$step_in_place(list(c(1, 1, 1), c(1, 1)), list(a, a[1:2]))))
  add(catch(opt$step_in_place(list(c(1, 1, 1), c(1, 1)), list(1:3, b))))
  if ("optimizer_loss_scale" %in% getNamespaceExports("rmsprop")) {
    ls <- optimizer_loss_scale(optimizer_rmsprop(), initial_scale = 8, dynamic_growth_steps = 2)
    v <- vars
    for (s in 1:3) v <- ls$step(grads, v)
    add(v)
    add(ls$step(list(w = matrix(Inf, 2, 2), b = c(1, 1), n = grads$n), v))
    add(ls$variables)
    add(ls$clone()$variables)
  }
  # Large results come from recycled memory (src/recycle.c): keep every other
  # one alive while collections hand the dropped ones back for reuse.
  set.seed(7)
  big <- list(a = runif(20000), b = matrix(runif(9000), 90))
  opt <- optimizer_rmsprop(momentum = 0.9, centered = TRUE, use_ema = TRUE)
  for (s in 1:15) {
    big <- opt$step(list(a = sin(big$a), b = cos(big$b)), big)
    if (s %% 2 == 0) add(big)
  }
  add(opt$finalize_variable_values(big))
  add(rmsprop_kernel_info())
  # The C layout of issue 13: the state list by name (C_state_layout), a
  # state rebuilt from its list (C_state_forget, as after serialize()), the
  # walk's problem reports with paths in nested named lists, build() on a
  # built optimizer (C_check_structure), zero-length integer leaves, and
  # optimizers saved by 0.1.0 (state format 1, migrated by state.c).
  add(rmsprop:::state_layout())
  # Class and message: the message words the path C reports.
  catchm <- function(expr) tryCatch(expr, rmsprop_error = function(e) c(class(e)[[1]], conditionMessage(e)))
  deep <- list(outer = list(inner = list(x = c(1, 2), y = 3L), z = integer(0)), w = 1)
  dgrad <- list(outer = list(inner = list(x = c(0.5, -0.5), y = 1L), z = integer(0)), w = 2)
  opt <- optimizer_rmsprop(momentum = 0.5, use_ema = TRUE)
  d <- opt$step(dgrad, deep)
  add(d)
  private <- rmsprop:::private_of(opt)
  .Call(rmsprop:::C_state_forget, private$ptr)
  add(opt$step(dgrad, d))
  add(opt$iterations)
  add(catchm({opt$build(deep); "built"}))
  add(catchm({opt$build(list(outer = list(inner = list(x = 1, y = 3L), z = integer(0)), w = 1)); "built"}))
  add(catchm(opt$step(list(outer = list(inner = list(x = c(1, NaN), y = 1L), z = NULL), w = 1), d)))
  add(catchm(opt$step(list(outer = list(inner = list(x = c(1, 1), q = 1L), z = NULL), w = 1), d)))
  add(catchm(opt$step(dgrad, list(outer = list(inner = list(x = c(1, 2), y = "a"), z = 1), w = 1))))
  add(catchm(opt$finalize_variable_values(list(outer = 1, w = 1))))
  add(opt$finalize_variable_values(d))
  fixtures <- file.path("tests", "testthat", "fixtures", "v0.1.0")
  if (file.exists(file.path(fixtures, "expected.rds"))) {
    expected <- readRDS(file.path(fixtures, "expected.rds"))
    for (name in c("everything", "unnamed_list", "loss_scale", "built_not_stepped")) {
      old <- readRDS(file.path(fixtures, paste0(name, ".rds")))
      add(old$variables)
      v <- expected[[name]]$vars
      for (g in expected[[name]]$grads) v <- suppressWarnings(old$step(g, v))
      add(v)
      add(old$variables)
    }
  }
  out
}

plain <- scenario()
t0 <- proc.time()[["elapsed"]]
gctorture(TRUE)
tortured <- scenario()
gctorture(FALSE)
elapsed <- proc.time()[["elapsed"]] - t0
invisible(gc())
same <- identical(plain, tortured)
cat(sprintf("gctorture: %d results, identical to the run without gctorture: %s (%.1f s)\n",
            length(plain), same, elapsed))
if (!same) {
  bad <- which(!mapply(identical, plain, tortured))
  cat("differing results:", bad, "\n")
  quit(status = 1L)
}
