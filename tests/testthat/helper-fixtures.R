# Helpers shared by test-format-migration.R and tools/make-fixtures.R
# (which sources this file): a form of get_config() that identical() can
# compare across processes and releases. Closures cannot be compared as they
# are (their environments differ after readRDS()), so schedules become their
# kind and settings, optimizers their own comparable config, and any other
# function its formals and body.
comparable_config <- function(x) {
  if (inherits(x, "rmsprop_schedule")) {
    return(list(schedule = class(x)[[1L]], config = x$get_config()))
  }
  if (inherits(x, c("rmsprop_optimizer", "rmsprop_loss_scale_optimizer"))) {
    return(list(optimizer = class(x)[[1L]], config = comparable_config(x$get_config())))
  }
  if (is.function(x)) return(list(formals = formals(x), body = deparse(body(x))))
  if (is.list(x)) {
    out <- lapply(x, comparable_config)
    attributes(out) <- attributes(x)
    return(out)
  }
  x
}

# Everything observable about an optimizer at one moment.
observe_optimizer <- function(opt, vars) {
  list(variables = opt$variables, iterations = opt$iterations,
       learning_rate = opt$learning_rate, config = comparable_config(opt$get_config()),
       final = opt$finalize_variable_values(vars), scale = opt$scale_loss(1))
}

# Continues `opt` with the given gradients; returns what each call returned.
continue_steps <- function(opt, vars, grads) {
  lapply(grads, function(g) {
    vars <<- suppressWarnings(opt$step(g, vars))
    vars
  })
}

# minimize() ends a non-interactive session's run with an error on an
# interrupt; tests that simulate interrupts ask for the interactive
# behaviour (the partial result) for the rest of their file.
local_interrupt_return <- function(env = parent.frame()) {
  old <- options(rmsprop.on_interrupt = "return")
  if (requireNamespace("withr", quietly = TRUE)) withr::defer(options(old), envir = env)
  invisible(old)
}
