# Speed of one RMSprop step: hand-written R, the package (value and in-place
# paths, default threads and one thread), the hardware floor (a plain fused C
# loop compiled with vectorisation, see floor.c) and PyTorch's RMSprop, in ONE
# run, with per-size ratio tables, a list-of-small-variables table and the
# cost of every option combination relative to the plain step.
# The package is timed in the loops a user writes: `x <- opt$step(g, x)` (the
# value path) and `opt$step_in_place(g, w)` on the same vector. "value, same
# input" times `opt$step(g, v)` on one unchanged input instead, a variable
# that is not the last step's result: it is read once more, to refuse
# non-finite values (what that costs, README "Speed").
#
# Usage: Rscript bench/bench.R [lib] [--quick] [--out FILE]
#   lib      library the package is installed in (default /tmp/lib_speed;
#            bench/install.sh installs the working tree and what the
#            benchmarks need: the R package bench, PyTorch if it can)
#   --quick  fewer samples, sizes up to 1e6 (a smoke test)
#   --out    where to write the markdown tables (default bench/RESULTS.md;
#            "-" = do not write)
#
# Timing: the candidates of one table run round robin (one sample of each in
# turn, repeated), so a change in machine load hits all of them alike; each
# sample times a batch of calls with bench::hires_time(); tables show medians.
# Nothing here asserts timings; the goals are printed as met / not met.

args <- commandArgs(trailingOnly = TRUE)
quick <- "--quick" %in% args
out_file <- "bench/RESULTS.md"
if ("--out" %in% args) out_file <- args[[match("--out", args) + 1]]
pos <- args[!startsWith(args, "--") & !(args %in% out_file)]
lib <- if (length(pos)) pos[[1]] else "/tmp/lib_speed"

# bench/install.sh installs rmsprop into `lib`, and the R package bench there
# too when it cannot go into the system library; it is run here with
# --deps-only when bench is missing.
bench_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
.libPaths(c(lib, .libPaths()))
if (!requireNamespace("bench", quietly = TRUE)) {
  message("The R package bench is missing: installing it with bench/install.sh --deps-only")
  status <- system2("bash", c(shQuote(file.path(bench_dir, "install.sh")), "--deps-only",
                              shQuote(lib)))
  .libPaths(c(lib, .libPaths()))
  if (status != 0 || !requireNamespace("bench", quietly = TRUE)) {
    stop("bench/bench.R needs the R package bench (bench::hires_time()), ",
         "and bench/install.sh could not install it")
  }
}
if (!nzchar(system.file(package = "rmsprop", lib.loc = lib))) {
  stop("rmsprop is not installed in ", lib, ": run `bash bench/install.sh ", lib, "` first")
}
suppressPackageStartupMessages(library(rmsprop, lib.loc = lib))
set_threads <- function(n) .Call(rmsprop:::C_set_threads, as.integer(n))
info <- rmsprop_kernel_info()

# ---- the machine ----------------------------------------------------------
lscpu <- tryCatch(system2("lscpu", stdout = TRUE), error = function(e) character())
field <- function(name) {
  x <- grep(paste0("^", name, ":"), lscpu, value = TRUE)
  if (length(x)) trimws(sub("^[^:]*:", "", x[[1]])) else "?"
}
load_avg <- function() {
  x <- tryCatch(readLines("/proc/loadavg", warn = FALSE), error = function(e) "")
  paste(strsplit(x, " ")[[1]][1:3], collapse = " ")
}
machine <- sprintf("%s, %s CPUs (%s cores/socket), %s", field("Model name"), field("CPU\\(s\\)"),
                   field("Core\\(s\\) per socket"), R.version.string)
cat("machine:", machine, "\n")
cat(sprintf("rmsprop kernels: isa %s, default threads %d; load average at start %s\n",
            info$isa, info$threads, load_avg()))

# ---- the floor: floor.c compiled with vectorisation -------------------------
# R's own CFLAGS (-O2) come after PKG_CFLAGS and override -O3; at -O2 GCC 12
# only vectorises loops with a known trip count, so the cost model is named
# explicitly. -mavx2 when the CPU has it (never -mfma: no contraction).
build_floor <- function(flags, tag) {
  dir <- file.path(tempdir(), paste0("floor_", tag))
  dir.create(dir, showWarnings = FALSE)
  src <- file.path(dir, "floor.c")
  file.copy(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE),
                                                        value = TRUE))), "floor.c"),
            src, overwrite = TRUE)
  so <- file.path(dir, paste0("floor_", tag, .Platform$dynlib.ext))
  old <- Sys.getenv("PKG_CFLAGS")
  Sys.setenv(PKG_CFLAGS = flags)
  on.exit(Sys.setenv(PKG_CFLAGS = old))
  log <- system2(file.path(R.home("bin"), "R"), c("CMD", "SHLIB", "-o", shQuote(so), shQuote(src)),
                 stdout = TRUE, stderr = TRUE)
  if (!file.exists(so)) stop("could not build the floor:\n", paste(log, collapse = "\n"))
  dll <- dyn.load(so)
  list(in_place = getNativeSymbolInfo("floor_in_place", dll),
       value = getNativeSymbolInfo("floor_value", dll), flags = flags)
}
has_avx2 <- any(grepl("\\bavx2\\b", lscpu))
base_flags <- "-O3 -fno-math-errno -fvect-cost-model=dynamic"
floor_fn <- build_floor(if (has_avx2) paste(base_flags, "-mavx2") else base_flags, "best")
cat("floor compiled with:", floor_fn$flags, "\n")

# ---- PyTorch ----------------------------------------------------------------
sizes <- if (quick) c(10, 1e2, 1e3, 1e4, 1e5, 1e6) else c(10, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7)
torch_note <- NULL
torch_times <- setNames(rep(NA_real_, length(sizes)), format(sizes, scientific = TRUE))
python <- Filter(nzchar, Sys.which(c("/usr/bin/python3", "python3")))
torch_ok <- length(python) > 0 && identical(0L, suppressWarnings(
  system2(python[[1]], c("-c", shQuote("import torch")), stdout = FALSE, stderr = FALSE)))
run_torch <- function() {
  script <- file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE),
                                                       value = TRUE))), "torch-rmsprop.py")
  out <- system2(python[[1]], c(shQuote(script), info$threads, sizes), stdout = TRUE, stderr = TRUE)
  rows <- do.call(rbind, lapply(strsplit(grep("^[0-9]", out, value = TRUE), " "), as.numeric))
  ver <- system2(python[[1]], c("-c", shQuote("import torch; print(torch.__version__)")),
                 stdout = TRUE)
  torch_note <<- sprintf("PyTorch %s RMSprop (float64, in place, %d threads), measured in this run.",
                         ver, info$threads)
  torch_times[] <<- rows[match(sizes, rows[, 1]), 2]
}
if (torch_ok) {
  run_torch()
} else {
  torch_times[] <- 1.25e-3 * sizes / 1e6
  torch_note <- paste("PyTorch is not installed here: the torch column is the quoted",
                      "1.25 ms per 1e6 elements (PyTorch 1.13, float64, in place) scaled linearly.")
}
cat(torch_note, "\n")

# ---- timing -----------------------------------------------------------------
now <- bench::hires_time
# Median seconds per call of each function, round robin.
race <- function(fns, n_elem, samples = if (quick) 7 else 31, target = 1e-2) {
  # batch size from one timed call of the slowest candidate
  one <- vapply(fns, function(f) { t0 <- now(); f(); now() - t0 }, numeric(1))
  reps <- max(1L, min(20000L, as.integer(target / max(one, 1e-7))))
  m <- matrix(NA_real_, samples, length(fns), dimnames = list(NULL, names(fns)))
  for (s in seq_len(samples)) {
    for (k in seq_along(fns)) {
      f <- fns[[k]]
      t0 <- now()
      for (r in seq_len(reps)) f()
      m[s, k] <- (now() - t0) / reps
    }
  }
  apply(m, 2, stats::median)
}

lr <- 0.001; rho <- 0.9; eps <- 1e-7
# Hand-written R: the plain RMSprop step an R user would write (value
# semantics; the velocity lives in the closure).
make_hand <- function(n) {
  ms <- numeric(n)
  function(g, v) {
    ms <<- rho * ms + (1 - rho) * g^2
    v - lr * g / sqrt(ms + eps)
  }
}

fmt_t <- function(x) ifelse(is.na(x), "", ifelse(x < 1e-3, sprintf("%.2f us", x * 1e6),
                                               sprintf("%.3f ms", x * 1e3)))
fmt_r <- function(x) ifelse(is.na(x), "", sprintf("%.2f", x))

# Sections run from the smallest memory footprint to the largest: once the
# 1e7 row has grown R's heap, R collects rarely and every fresh allocation
# (R's own or this package's) costs page faults, which would distort the
# 1e6 tables measured after it.
# ---- 2. a list of 100 variables of length 10 -----------------------------------
cat("\n== a list of 100 variables of length 10 ==\n")
set.seed(2)
vl <- setNames(lapply(1:100, function(i) rnorm(10)), paste0("w", 1:100))
gl <- lapply(vl, function(x) rnorm(10))
hand_list <- local({
  ms <- lapply(vl, function(x) numeric(length(x)))
  function(g, v) {
    for (i in seq_along(v)) {
      ms[[i]] <<- rho * ms[[i]] + (1 - rho) * g[[i]]^2
      v[[i]] <- v[[i]] - lr * g[[i]] / sqrt(ms[[i]] + eps)
    }
    v
  }
})
opt_lv <- optimizer_rmsprop(learning_rate = lr, rho = rho, epsilon = eps)
opt_li <- optimizer_rmsprop(learning_rate = lr, rho = rho, epsilon = eps)
wl <- lapply(vl, function(x) x + 0)
invisible(opt_lv$step(gl, vl)); opt_li$step_in_place(gl, wl)
tl <- race(list(hand = function() hand_list(gl, vl),
                value = function() opt_lv$step(gl, vl),
                in_place = function() opt_li$step_in_place(gl, wl)), 1000)
lists <- data.frame(hand = tl[["hand"]], value = tl[["value"]], in_place = tl[["in_place"]],
                    value_over_hand = tl[["value"]] / tl[["hand"]],
                    inplace_over_hand = tl[["in_place"]] / tl[["hand"]])
cat(sprintf("hand %s  value %s (%.2f of hand)  in place %s (%.2f of hand)\n",
            fmt_t(lists$hand), fmt_t(lists$value), lists$value_over_hand,
            fmt_t(lists$in_place), lists$inplace_over_hand))

# ---- 3. every option combination, cost per element vs the plain step -------------
n_opt <- if (quick) 1e5 else 1e6
cat(sprintf("\n== option combinations at n = %s (in place and value; ratio to the plain step) ==\n",
            format(n_opt, scientific = TRUE)))
combos <- list(
  plain = list(),
  centered = list(centered = TRUE),
  momentum = list(momentum = 0.9),
  weight_decay = list(weight_decay = 0.004),
  centered_momentum_wd = list(centered = TRUE, momentum = 0.9, weight_decay = 0.004),
  clipnorm = list(clipnorm = 1),
  global_clipnorm = list(global_clipnorm = 1),
  clipvalue = list(clipvalue = 0.5),
  loss_scale = list(loss_scale_factor = 1024),
  ema = list(use_ema = TRUE),
  ema_overwrite = list(use_ema = TRUE, ema_overwrite_frequency = 1),
  accumulation_2 = list(gradient_accumulation_steps = 2),
  everything = list(centered = TRUE, momentum = 0.9, weight_decay = 0.004, clipnorm = 1,
                    use_ema = TRUE, loss_scale_factor = 1024, gradient_accumulation_steps = 2)
)
set.seed(3)
vo <- rnorm(n_opt); go <- rnorm(n_opt)
opt_rows <- list()
for (mode in c("in_place", "value")) {
  fns <- list()
  for (nm in names(combos)) {
    local({
      o <- do.call(optimizer_rmsprop, c(list(learning_rate = lr), combos[[nm]]))
      w <- vo + 0
      if (mode == "in_place") {
        o$step_in_place(go, w)
        fns[[nm]] <<- function() o$step_in_place(go, w)
      } else {
        w <- o$step(go, w)
        fns[[nm]] <<- function() w <<- o$step(go, w)
      }
    })
  }
  t <- race(fns, n_opt)
  opt_rows[[mode]] <- t
}
options_tab <- data.frame(option = names(combos), in_place = opt_rows$in_place,
                          in_place_ratio = opt_rows$in_place / opt_rows$in_place[["plain"]],
                          value = opt_rows$value,
                          value_ratio = opt_rows$value / opt_rows$value[["plain"]],
                          row.names = NULL)
for (i in seq_len(nrow(options_tab)))
  with(options_tab[i, ], cat(sprintf("%-22s in place %-10s x%-5.2f value %-10s x%.2f\n", option,
                                     fmt_t(in_place), in_place_ratio, fmt_t(value), value_ratio)))

# ---- 1. one variable of n elements --------------------------------------------
cat("\n== one variable of n doubles ==\n")
rows <- list()
for (n in sizes) {
  set.seed(1)
  v <- rnorm(n); g <- rnorm(n)
  hand <- make_hand(n)
  opt_v <- optimizer_rmsprop(learning_rate = lr, rho = rho, epsilon = eps)
  opt_i <- optimizer_rmsprop(learning_rate = lr, rho = rho, epsilon = eps)
  opt_1 <- optimizer_rmsprop(learning_rate = lr, rho = rho, epsilon = eps)
  opt_v1 <- optimizer_rmsprop(learning_rate = lr, rho = rho, epsilon = eps)
  opt_vs <- optimizer_rmsprop(learning_rate = lr, rho = rho, epsilon = eps)
  w <- v + 0; w1 <- v + 0; wf <- v + 0; msf <- numeric(n); msv <- numeric(n)
  xv <- opt_v$step(g, v); xv1 <- opt_v1$step(g, v); invisible(opt_vs$step(g, v))
  opt_i$step_in_place(g, w); opt_1$step_in_place(g, w1)
  fns <- list(
    hand = function() hand(g, v),
    value = function() xv <<- opt_v$step(g, xv),
    in_place = function() opt_i$step_in_place(g, w),
    floor = function() .Call(floor_fn$in_place, wf, g, msf, lr, rho, eps),
    floor_value = function() .Call(floor_fn$value, v, g, msv, lr, rho, eps)
  )
  if (n >= 1e5) {
    fns$value <- function() { set_threads(0); xv <<- opt_v$step(g, xv) }
    fns$value_same_input <- function() { set_threads(0); opt_vs$step(g, v) }
    fns$in_place <- function() { set_threads(0); opt_i$step_in_place(g, w) }
    fns$in_place_1t <- function() { set_threads(1); opt_1$step_in_place(g, w1) }
    fns$value_1t <- function() { set_threads(1); xv1 <<- opt_v1$step(g, xv1) }
  }
  t <- race(fns, n)
  set_threads(0)
  rows[[length(rows) + 1]] <- data.frame(
    n = n, hand = t[["hand"]], value = t[["value"]], in_place = t[["in_place"]],
    in_place_1t = if ("in_place_1t" %in% names(t)) t[["in_place_1t"]] else NA_real_,
    value_1t = if ("value_1t" %in% names(t)) t[["value_1t"]] else NA_real_,
    value_same_input = if ("value_same_input" %in% names(t)) t[["value_same_input"]] else NA_real_,
    floor = t[["floor"]], floor_value = t[["floor_value"]],
    torch = torch_times[[format(n, scientific = TRUE)]])
  r <- rows[[length(rows)]]
  cat(sprintf("n = %-6s hand %-10s value %-10s (1 thread %-10s same input %-10s) in place %-10s (1 thread %-10s %s floor) floor %-10s (+ result %-10s) torch %s\n",
              format(n, scientific = TRUE), fmt_t(r$hand), fmt_t(r$value), fmt_t(r$value_1t),
              fmt_t(r$value_same_input), fmt_t(r$in_place), fmt_t(r$in_place_1t),
              if (is.na(r$in_place_1t)) "    " else sprintf("%.2fx", r$in_place_1t / r$floor),
              fmt_t(r$floor), fmt_t(r$floor_value), fmt_t(r$torch)))
  rm(v, g, w, w1, wf, msf, msv, xv, xv1, hand, opt_v, opt_v1, opt_vs, opt_i, opt_1, fns)
  invisible(gc())
}
one <- do.call(rbind, rows)
one$hand_over_value <- one$hand / one$value
one$value_over_hand <- one$value / one$hand
one$inplace_over_floor <- one$in_place / one$floor
one$inplace_1t_over_floor <- one$in_place_1t / one$floor
one$inplace_over_torch <- one$in_place / one$torch
one$threads_speedup <- one$in_place_1t / one$in_place

# ---- goals ------------------------------------------------------------------
at <- function(n, col) one[[col]][match(n, one$n)]
goal <- function(ok) ifelse(is.na(ok), "n/a", ifelse(ok, "met", "NOT met"))
big <- intersect(c(1e6, 1e7), one$n)
mid <- one$n[one$n >= 1e4]
bound_1t <- c(1.35, 1.25)[match(big, c(1e6, 1e7))]
worst_option <- function(col) {
  sprintf("worst %.2fx (%s)", max(options_tab[[col]]), options_tab$option[which.max(options_tab[[col]])])
}
goals <- data.frame(
  goal = c(
    sprintf("value path >= 10x faster than hand-written R at n = %s",
            paste(format(big, scientific = TRUE), collapse = ", ")),
    "in place within 1.25x of the vectorised fused C loop (n >= 1e4)",
    "in place faster than PyTorch's RMSprop for every n in 1e4..1e7",
    "one variable of length 10: at most 1.2x hand-written R",
    "100 variables of length 10: at most 0.2x hand-written R loop",
    sprintf("large steps use all %d cores and gain from them (in-place speed-up vs 1 thread > 1.05x at n = %s; memory bandwidth bounds it)",
            info$threads, paste(format(big, scientific = TRUE), collapse = ", ")),
    sprintf("one thread, in place: at most %s the fused C loop at n = %s",
            paste(sprintf("%.2fx", bound_1t), collapse = ", "),
            paste(format(big, scientific = TRUE), collapse = ", ")),
    "every option combination within 2x of the plain step (in place; the value path's worst shown too)"),
  measured = c(
    paste(sprintf("%.1fx", at(big, "hand_over_value")), collapse = ", "),
    sprintf("worst %.2fx", max(one$inplace_over_floor[one$n %in% mid])),
    sprintf("worst %.2fx", max(one$inplace_over_torch[one$n %in% mid])),
    sprintf("%.2fx", at(10, "value_over_hand")),
    sprintf("%.2fx (value), %.2fx (in place)", lists$value_over_hand, lists$inplace_over_hand),
    paste(sprintf("%.2fx", at(big, "threads_speedup")), collapse = ", "),
    paste(sprintf("%.2fx", at(big, "inplace_1t_over_floor")), collapse = ", "),
    paste(worst_option("in_place_ratio"), worst_option("value_ratio"), sep = "; ")),
  status = goal(c(
    all(at(big, "hand_over_value") >= 10),
    all(one$inplace_over_floor[one$n %in% mid] <= 1.25),
    all(one$inplace_over_torch[one$n %in% mid] < 1),
    at(10, "value_over_hand") <= 1.2,
    lists$value_over_hand <= 0.2,
    info$threads > 1 && all(at(big, "threads_speedup") > 1.05),
    all(at(big, "inplace_1t_over_floor") <= bound_1t),
    all(options_tab$in_place_ratio <= 2))))
cat("\n== goals ==\n")
for (i in seq_len(nrow(goals))) cat(sprintf("%-8s %-75s %s\n", goals$status[i], goals$goal[i],
                                            goals$measured[i]))
cat(sprintf("load average at end: %s\n", load_avg()))

mem <- rmsprop_memory_info()
cat(sprintf("recycled result blocks: %.0f reused, %.0f fresh\n", mem$reused, mem$fresh))

# ---- markdown -----------------------------------------------------------------
md_table <- function(df) {
  c(paste0("| ", paste(names(df), collapse = " | "), " |"),
    paste0("|", paste(rep("---:", ncol(df)), collapse = "|"), "|"),
    apply(df, 1, function(r) paste0("| ", paste(r, collapse = " | "), " |")))
}
if (!identical(out_file, "-")) {
  t1 <- data.frame(
    n = format(one$n, scientific = TRUE), `hand R` = fmt_t(one$hand), value = fmt_t(one$value),
    `value, 1 thread` = fmt_t(one$value_1t), `value, same input` = fmt_t(one$value_same_input),
    `in place` = fmt_t(one$in_place), `in place, 1 thread` = fmt_t(one$in_place_1t),
    `floor (fused C, vectorised)` = fmt_t(one$floor), `floor + fresh result` = fmt_t(one$floor_value),
    PyTorch = fmt_t(one$torch), `hand / value` = fmt_r(one$hand_over_value),
    `in place / floor` = fmt_r(one$inplace_over_floor),
    `in place, 1 thread / floor` = fmt_r(one$inplace_1t_over_floor),
    `in place / PyTorch` = fmt_r(one$inplace_over_torch), check.names = FALSE)
  t2 <- data.frame(`hand R loop` = fmt_t(lists$hand), value = fmt_t(lists$value),
                   `in place` = fmt_t(lists$in_place),
                   `value / hand` = fmt_r(lists$value_over_hand),
                   `in place / hand` = fmt_r(lists$inplace_over_hand), check.names = FALSE)
  t3 <- data.frame(option = options_tab$option, `in place` = fmt_t(options_tab$in_place),
                   `ratio to plain` = fmt_r(options_tab$in_place_ratio),
                   value = fmt_t(options_tab$value),
                   `ratio to plain ` = fmt_r(options_tab$value_ratio), check.names = FALSE)
  md <- c(
    "# rmsprop speed", "",
    sprintf("Machine: %s. Kernels: %s, %d threads by default. Measured %s by `Rscript bench/bench.R`; load average %s at the end (other work on the machine makes the multi-thread numbers noisy).",
            machine, info$isa, info$threads, format(Sys.time(), "%Y-%m-%d %H:%M"), load_avg()),
    "", sprintf("Library measured: `%s`%s.", lib, if (nzchar(Sys.getenv("RMSPROP_BENCH_NOTE")))
      paste0(" (", Sys.getenv("RMSPROP_BENCH_NOTE"), ")") else ""),
    "", sprintf("Floor: `bench/floor.c`, one fused loop, compiled with `%s` (single thread). %s",
                floor_fn$flags, torch_note),
    "", sprintf("Result memory recycled (`?rmsprop_memory_info`, limit %.0f MiB): %.0f result blocks reused, %.0f taken fresh from the system during the run.",
                mem$limit_bytes / 2^20, mem$reused, mem$fresh),
    "", "## One step on one variable of n doubles (median time per step)", "",
    "`value` is the loop `x <- opt$step(g, x)`; `value, same input` is `opt$step(g, v)` on one unchanged `v` (read once more: it is not the last step's result); `in place` is `opt$step_in_place(g, w)` on the same `w`.",
    "", md_table(t1), "",
    "## One step on a list of 100 variables of length 10", "", md_table(t2), "",
    sprintf("## Option combinations, n = %s (ratio = time / plain step time)",
            format(n_opt, scientific = TRUE)), "", md_table(t3), "",
    "## Goals", "", md_table(goals), "")
  writeLines(md, out_file)
  cat("wrote", out_file, "\n")
}
