# Bitwise check of the SIMD/OpenMP kernels against a pure-R copy of SPEC A1.
#
# Every (centered, momentum, weight decay) combination, every gradient
# transform (loss scale, accumulation, clipnorm, global_clipnorm, clipvalue),
# EMA with overwrite, sizes around every vector width and the thread split
# (0, 1, 3, ..., 1e5 + 3, 3e5 + 1), value and in-place paths, 1 and 2
# threads, compared with identical(): not a tolerance, the same bits.
# The parent process runs itself once per instruction set (RMSPROP_ISA =
# scalar, sse2, and the CPU's best), since the kernels pick it on first use.
#
# Usage: Rscript bench/check-identical.R [lib]      (default lib /tmp/lib_speed)
# Exits with status 1 on any difference.

args <- commandArgs(trailingOnly = TRUE)
lib <- if (length(args) >= 1 && args[[1]] != "--child") args[[1]] else "/tmp/lib_speed"
child <- "--child" %in% args

if (!child) {
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  status <- 0L
  for (isa in c("best", "sse2", "scalar")) {
    env <- if (isa == "best") character() else paste0("RMSPROP_ISA=", isa)
    out <- system2(file.path(R.home("bin"), "Rscript"), c(script, lib, "--child"),
                   env = env, stdout = TRUE, stderr = TRUE)
    cat(out, sep = "\n")
    if (!is.null(attr(out, "status")) || !any(grepl("^ALL IDENTICAL", out))) status <- 1L
  }
  cat(if (status == 0L) "check-identical: every instruction set bit-identical\n" else
    "check-identical: DIFFERENCES FOUND\n")
  quit(status = status)
}

library(rmsprop, lib.loc = lib)
info <- rmsprop_kernel_info()
cat(sprintf("isa %s, default threads %d\n", info$isa, info$threads))

# ---- the reference: SPEC A1, one statement per formula, flat list of vectors --

# The kernels' deterministic sum of squares: chunks of 4096 elements summed in
# order; inside a chunk element q goes to lane q %% 8, lanes add in index order
# and combine as ((1+2)+(3+4))+((5+6)+(7+8)). Plain double adds throughout
# (R's sum() and cumsum() accumulate in long double, so they are not used).
det_sumsq <- function(x) {
  n <- length(x)
  total <- 0
  if (n == 0) return(total)
  for (c0 in seq(1, n, by = 4096)) {
    xx <- x[c0:min(n, c0 + 4095)]
    pad <- (8 - length(xx) %% 8) %% 8
    m <- matrix(c(xx, rep(0, pad)), nrow = 8)
    l <- numeric(8)
    for (k in seq_len(ncol(m))) l <- l + m[, k] * m[, k]
    total <- total + (((l[1] + l[2]) + (l[3] + l[4])) + ((l[5] + l[6]) + (l[7] + l[8])))
  }
  total
}

ref_new <- function(cfg, vars) {
  z <- lapply(vars, function(v) numeric(length(v)))
  list(cfg = cfg, it = 0, ms = z, mom = z, mg = z, avg = z, acc = z)
}

ref_step <- function(r, grads, vars) {
  cfg <- r$cfg
  lr <- cfg$learning_rate
  k <- cfg$gradient_accumulation_steps
  if (!is.null(cfg$loss_scale_factor)) grads <- lapply(grads, function(g) g / cfg$loss_scale_factor)
  update <- is.null(k) || (r$it + 1) %% k == 0
  if (!update) {
    for (i in seq_along(vars)) r$acc[[i]] <- r$acc[[i]] + grads[[i]]
  } else {
    if (!is.null(k)) for (i in seq_along(vars)) grads[[i]] <- (grads[[i]] + r$acc[[i]]) / k
    if (!is.null(cfg$clipnorm)) {
      c <- cfg$clipnorm
      grads <- lapply(grads, function(g) g * c / max(sqrt(det_sumsq(g)), c))
    }
    if (!is.null(cfg$global_clipnorm)) {
      c <- cfg$global_clipnorm
      total <- 0
      for (g in grads) total <- total + det_sumsq(g)
      n <- sqrt(total)
      grads <- lapply(grads, function(g) g * c / max(n, c))
    }
    if (!is.null(cfg$clipvalue)) {
      c <- cfg$clipvalue
      grads <- lapply(grads, function(g) pmin(pmax(g, -c), c))
    }
    rho <- cfg$rho
    for (i in seq_along(vars)) {
      v <- vars[[i]]
      g <- grads[[i]]
      if (!is.null(cfg$weight_decay)) v <- v - v * cfg$weight_decay * lr
      ms <- rho * r$ms[[i]] + (1 - rho) * g^2
      r$ms[[i]] <- ms
      if (isTRUE(cfg$centered)) {
        mg <- rho * r$mg[[i]] + (1 - rho) * g
        r$mg[[i]] <- mg
        den <- ms - mg^2 + cfg$epsilon
      } else {
        den <- ms + cfg$epsilon
      }
      inc <- lr * g / sqrt(den)
      if (cfg$momentum > 0) {
        mom <- cfg$momentum * r$mom[[i]] + inc
        r$mom[[i]] <- mom
        v <- v - mom
      } else {
        v <- v - inc
      }
      vars[[i]] <- v
    }
    if (!is.null(k)) r$acc <- lapply(r$acc, function(a) numeric(length(a)))
  }
  if (isTRUE(cfg$use_ema)) {
    iterations <- if (is.null(k)) r$it else r$it %/% k
    m <- if (iterations == 0) 0 else cfg$ema_momentum
    for (i in seq_along(vars)) r$avg[[i]] <- m * r$avg[[i]] + (1 - m) * vars[[i]]
    f <- cfg$ema_overwrite_frequency
    if (!is.null(f) && (iterations + 1) %% f == 0) vars <- r$avg
  }
  r$it <- r$it + 1
  list(r = r, vars = vars)
}

# The package's slots, per variable, as a list like the reference's.
pkg_slots <- function(opt, nms) {
  s <- opt$variables
  get <- function(suffix) lapply(nms, function(nm) {
    x <- s[[paste0("rmsprop/", nm, suffix)]]
    if (is.null(x)) NULL else as.vector(x)
  })
  list(ms = get("_velocity"), mom = get("_momentum"), mg = get("_average_gradient"),
       avg = get("_average"), acc = get("_gradient_accumulator"))
}

failures <- 0L
checks <- 0L
same <- function(a, b, what) {
  checks <<- checks + 1L
  if (!identical(a, b)) {
    failures <<- failures + 1L
    if (failures <= 20) {
      d <- if (is.numeric(unlist(a)) && is.numeric(unlist(b)) &&
               length(unlist(a)) == length(unlist(b)))
        max(abs(unlist(a) - unlist(b))) else NA
      cat("  DIFFERENT:", what, " max abs diff", format(d), "\n")
    }
  }
}

run_case <- function(cfg, sizes, steps, threads, in_place, label, extreme = FALSE) {
  set.seed(sum(sizes) + steps)
  nms <- paste0("v", seq_along(sizes))
  vars <- setNames(lapply(sizes, function(n) rnorm(n)), nms)
  opt <- do.call(optimizer_rmsprop, cfg)
  ref <- ref_new(modifyList(formals_defaults, cfg), vars)
  pv <- lapply(vars, function(v) v + 0)  # the package's own copy (in place writes into it)
  rv <- vars
  for (s in seq_len(steps)) {
    grads <- setNames(lapply(sizes, function(n) {
      x <- rnorm(n) * 3
      # magnitudes that overflow or go subnormal once scaled
      if (extreme) x <- x * sample(c(1e-310, 1e-300, 1e-20, 1, 1e20, 1e300), n, replace = TRUE)
      x
    }), nms)
    if (in_place) {
      opt$step_in_place(grads, pv)
    } else {
      pv <- opt$step(grads, pv)
    }
    out <- ref_step(ref, grads, rv)
    ref <- out$r
    rv <- out$vars
    same(unname(lapply(pv, as.vector)), unname(rv), paste(label, "step", s, "values"))
  }
  sl <- pkg_slots(opt, nms)
  same(unname(sl$ms), unname(ref$ms), paste(label, "velocity"))
  if (cfg$momentum > 0) same(unname(sl$mom), unname(ref$mom), paste(label, "momentum"))
  if (isTRUE(cfg$centered)) same(unname(sl$mg), unname(ref$mg), paste(label, "average gradient"))
  if (isTRUE(cfg$use_ema)) same(unname(sl$avg), unname(ref$avg), paste(label, "ema"))
  if (!is.null(cfg$gradient_accumulation_steps))
    same(unname(sl$acc), unname(ref$acc), paste(label, "accumulator"))
}

formals_defaults <- list(learning_rate = 0.001, rho = 0.9, momentum = 0, epsilon = 1e-07,
                         centered = FALSE, weight_decay = NULL, clipnorm = NULL,
                         clipvalue = NULL, global_clipnorm = NULL, use_ema = FALSE,
                         ema_momentum = 0.99, ema_overwrite_frequency = NULL,
                         loss_scale_factor = NULL, gradient_accumulation_steps = NULL)

# Loss scales that make the exact-reciprocal path overflow or underflow.
extreme_cfgs <- list(list(loss_scale_factor = 2^-20), list(loss_scale_factor = 2^1000),
                     list(loss_scale_factor = 3e-5), list(loss_scale_factor = 2^-1022),
                     list(loss_scale_factor = 2^-1074),
                     list(gradient_accumulation_steps = 4, loss_scale_factor = 2^-30))

sizes_single <- c(0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 4095, 4097,
                  65536 + 5, 1e5 + 3, 3e5 + 1)
transforms <- list(
  plain = list(),
  loss_scale = list(loss_scale_factor = 128),
  clipvalue = list(clipvalue = 1.5),
  clipnorm = list(clipnorm = 30),
  global_clipnorm = list(global_clipnorm = 40),
  loss_scale_odd = list(loss_scale_factor = 3),
  accumulate = list(gradient_accumulation_steps = 2, loss_scale_factor = 4),
  accumulate_odd = list(gradient_accumulation_steps = 3, loss_scale_factor = 6),
  ema = list(use_ema = TRUE, ema_momentum = 0.9, ema_overwrite_frequency = 2),
  everything = list(gradient_accumulation_steps = 2, clipnorm = 10, use_ema = TRUE,
                    ema_overwrite_frequency = 3, loss_scale_factor = 2)
)

for (threads in c(1, 2)) {
  rmsprop_set_threads(threads)
  cat(sprintf("threads %d\n", rmsprop_kernel_info()$threads))
  for (centered in c(FALSE, TRUE)) for (momentum in c(0, 0.9)) for (wd in list(NULL, 0.01)) {
    base <- list(learning_rate = 0.01, centered = centered, momentum = momentum,
                 weight_decay = wd)
    for (tn in names(transforms)) {
      cfg <- modifyList(base, transforms[[tn]])
      cfg$momentum <- momentum
      label <- sprintf("[t%d c%d m%g wd%s %s]", threads, centered, momentum,
                       if (is.null(wd)) "0" else wd, tn)
      # one variable, each size (big sizes only for the plain and full cases)
      for (n in sizes_single) {
        if (n > 5000 && !(tn %in% c("plain", "everything", "clipnorm"))) next
        steps <- if (!is.null(cfg$gradient_accumulation_steps)) 4 else 3
        run_case(cfg, n, steps, threads, FALSE, paste(label, "n =", n))
        if (n %in% c(3, 17, 1e5 + 3)) run_case(cfg, n, steps, threads, TRUE, paste(label, "in place n =", n))
      }
      # several variables of mixed sizes (global norm, segment offsets)
      run_case(cfg, c(3, 0, 17, 1e5 + 3, 9), 4, threads, FALSE, paste(label, "list"))
      run_case(cfg, c(3, 0, 17, 1e5 + 3, 9), 4, threads, TRUE, paste(label, "list in place"))
      run_case(cfg, c(1000, 33), 4, threads, FALSE, paste(label, "extreme magnitudes"), extreme = TRUE)
    }
  }
}
for (threads in c(1, 2)) {
  rmsprop_set_threads(threads)
  for (k in seq_along(extreme_cfgs)) {
    cfg <- c(list(learning_rate = 0.01, momentum = 0), extreme_cfgs[[k]])
    for (n in c(7, 1e5 + 3))
      run_case(cfg, n, 4, threads, FALSE, sprintf("[t%d extreme scale %d n = %d]", threads, k, n),
               extreme = TRUE)
  }
}
rmsprop_set_threads(0)
cat(sprintf("%s: %d checks, %d differences\n", info$isa, checks, failures))
if (failures == 0) cat("ALL IDENTICAL\n")
quit(status = if (failures == 0) 0L else 1L)
