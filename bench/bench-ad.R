# The "ad" gradient source against a hand-written gradient: what exact
# gradients from RTMB's tape cost.
#
# A 50 -> 32 (tanh) -> 1 network with a logistic loss, 1,665 parameters in
# a nested named list (hidden = list(W, b), out = list(W, b)), on 5,000 rows
# (a matrix, the response in column 1). In this one process, interleaved
# and repeated, the script times:
#   - one gradient: the AD gradient (ad_gradient(), its tape already built)
#     against hand-written R backprop, on the full batch and on batches of
#     256 rows (target: AD <= 1.2 x hand), and central differences
#     (2 x 1,665 loss calls; estimated from a few coordinates);
#   - the time to build a tape (once per batch size);
#   - whole minimize() runs (10 epochs of 256-row batches) with gr = "ad"
#     against gr = the hand-written gradient (target <= 1.3 x; tapes built
#     inside the run are counted in). Until minimize() accepts gr = "ad",
#     that row says so and is skipped.
# Times are CPU times (user + system) of this process, the minimum over the
# repetitions, the two sides of a ratio measured in alternation: other
# processes on a shared machine only ever add time.
# Before timing, the AD and hand-written gradients are checked to agree.
#
# Usage: Rscript bench/bench-ad.R [reps]   (from the package directory, with
# rmsprop installed; R_LIBS=... to pick a library). Needs RTMB: it is
# installed from CRAN when missing (about 11 minutes to compile; on R < 4.3
# it needs C++17: tools/install-deps.sh does both).
args <- commandArgs(trailingOnly = TRUE)
reps <- if (length(args)) as.integer(args[[1]]) else 7L
suppressPackageStartupMessages(library(rmsprop))
if (!requireNamespace("RTMB", quietly = TRUE)) {
  message("RTMB is not installed: installing it with tools/install-deps.sh ...")
  if (file.exists("tools/install-deps.sh")) system2("bash", "tools/install-deps.sh")
  if (!requireNamespace("RTMB", quietly = TRUE)) {
    stop("RTMB is needed: run `bash tools/install-deps.sh` (or install.packages(\"RTMB\") ",
         "with a C++17 compiler setting on R < 4.3), then run this script again.")
  }
}

# ---- the problem ------------------------------------------------------------
set.seed(1)
n <- 5000
p_in <- 50
p_hid <- 32
x <- matrix(rnorm(n * p_in), n, p_in)
truth <- list(W = matrix(rnorm(p_in * p_hid) / sqrt(p_in), p_in, p_hid), v = rnorm(p_hid))
y <- rbinom(n, 1, plogis(drop(tanh(x %*% truth$W) %*% truth$v)))
data <- cbind(y = y, x)
par0 <- list(hidden = list(W = matrix(rnorm(p_in * p_hid, sd = 0.1), p_in, p_hid),
                           b = rep(0, p_hid)),
             out = list(W = matrix(rnorm(p_hid, sd = 0.1), p_hid, 1), b = 0))
stopifnot(length(unlist(par0)) == 1665)

loss <- function(par, batch) {
  X <- batch[, -1]
  H <- tanh(X %*% par$hidden$W + rep(par$hidden$b, each = nrow(X)))
  eta <- H %*% par$out$W + par$out$b
  mean(log1p(exp(eta)) - batch[, 1] * eta)
}
# Backprop written by hand: the baseline.
grad_hand <- function(par, batch) {
  X <- batch[, -1]
  H <- tanh(X %*% par$hidden$W + rep(par$hidden$b, each = nrow(X)))
  eta <- drop(H %*% par$out$W) + par$out$b
  r <- (plogis(eta) - batch[, 1]) / nrow(X)
  dZ <- (r %o% drop(par$out$W)) * (1 - H^2)
  list(hidden = list(W = crossprod(X, dZ), b = colSums(dZ)),
       out = list(W = crossprod(H, r), b = sum(r)))
}

# ---- timing -------------------------------------------------------------------
cpu <- function() {
  t <- proc.time()
  t[["user.self"]] + t[["sys.self"]]
}
# CPU seconds per call of f(), repeated so that one measurement lasts about
# 0.2 s; the minimum over `reps` measurements.
chunk <- function(f) {
  t0 <- cpu(); f(); one <- max(cpu() - t0, 1e-4)
  max(1L, ceiling(0.2 / one))
}
measure <- function(f, times) {
  gc(FALSE)
  t0 <- cpu()
  for (k in seq_len(times)) f()
  (cpu() - t0) / times
}
per_call <- function(f, reps) {
  times <- chunk(f)
  min(vapply(seq_len(reps), function(r) measure(f, times), numeric(1)))
}
# Two functions measured in alternation (a, b, a, b, ...), so that a change
# in the machine's load hits both alike: c(best of a, best of b).
per_call_pair <- function(a, b, reps) {
  ta <- chunk(a)
  tb <- chunk(b)
  best <- c(Inf, Inf)
  for (r in seq_len(reps)) {
    best[1] <- min(best[1], measure(a, ta))
    best[2] <- min(best[2], measure(b, tb))
  }
  best
}
rows <- function(table, label, ad, hand, note = "") {
  rbind(table, data.frame(what = label, ad_ms = 1e3 * ad, hand_ms = 1e3 * hand,
                          ratio = ad / hand, note = note))
}

g_ad <- ad_gradient(loss, par0)
max_diff <- function(a, b) max(abs(unlist(a) - unlist(b)))
full <- data
b256 <- data[1:256, , drop = FALSE]
stopifnot(max_diff(g_ad(par0, full), grad_hand(par0, full)) < 1e-12,
          max_diff(g_ad(par0, b256), grad_hand(par0, b256)) < 1e-12)

table <- NULL
# one gradient, full batch and 256 rows (tapes already built above)
t <- per_call_pair(function() g_ad(par0, full), function() grad_hand(par0, full), reps)
table <- rows(table, "gradient, 5000 rows", t[1], t[2], "target ratio <= 1.2")
t <- per_call_pair(function() g_ad(par0, b256), function() grad_hand(par0, b256), reps)
table <- rows(table, "gradient, 256 rows", t[1], t[2], "target ratio <= 1.2")

# central differences: 2 loss calls per coordinate, timed on 20 coordinates
num_grad_one <- function(batch, k) {
  theta <- unlist(par0, use.names = FALSE)
  h <- 1e-5
  for (i in seq_len(k)) {
    up <- theta; up[i] <- up[i] + h
    down <- theta; down[i] <- down[i] - h
    loss(rmsprop:::relist_flat(up, par0), batch) - loss(rmsprop:::relist_flat(down, par0), batch)
  }
}
t <- per_call_pair(function() num_grad_one(full, 20), function() grad_hand(par0, full), reps)
table <- rows(table, "central differences, 5000 rows", t[1] / 20 * 1665, t[2],
              "estimated from 20 of 1,665 coordinates; 'AD' column: their cost")
t <- per_call_pair(function() num_grad_one(b256, 20), function() grad_hand(par0, b256), reps)
table <- rows(table, "central differences, 256 rows", t[1] / 20 * 1665, t[2],
              "estimated from 20 of 1,665 coordinates; 'AD' column: their cost")

# building a tape (once per batch size)
tape_time <- function(batch) {
  best <- Inf
  for (r in seq_len(min(reps, 3L))) {
    g <- ad_gradient(loss, par0)
    t0 <- cpu(); g(par0, batch); best <- min(best, cpu() - t0)
  }
  best
}
table <- rows(table, "building the tape, 5000 rows", tape_time(full), NA, "once per batch size")
table <- rows(table, "building the tape, 256 rows", tape_time(b256), NA, "once per batch size")

# whole minimize() runs: 10 epochs of 256-row batches (20 batches, the last
# short: two tapes)
fit <- function(gr) {
  minimize(par0, loss, gr = gr, data = data, batch_size = 256, epochs = 10,
           optimizer = optimizer_rmsprop(0.001), progress = FALSE)
}
ad_fit <- tryCatch(fit("ad"), error = function(e) e)
if (inherits(ad_fit, "error")) {
  table <- rows(table, "minimize(), 10 epochs x 256 rows", NA, NA,
                paste("skipped: minimize(gr = \"ad\") says:",
                      substr(conditionMessage(ad_fit), 1, 60)))
} else {
  t_ad <- t_hand <- Inf
  for (r in seq_len(reps)) {
    set.seed(r); t0 <- cpu(); fit("ad"); t_ad <- min(t_ad, cpu() - t0)
    set.seed(r); t0 <- cpu(); fit(grad_hand); t_hand <- min(t_hand, cpu() - t0)
  }
  set.seed(1); a <- fit("ad")$par
  set.seed(1); b <- fit(grad_hand)$par
  table <- rows(table, "minimize(), 10 epochs x 256 rows", t_ad, t_hand,
                sprintf(paste("target ratio <= 1.3; whole runs, AD's two tapes included;",
                              "par differ by %.1e"), max_diff(a, b)))
}

cat(sprintf("rmsprop %s, RTMB %s, R %s; %s; best of %d reps (CPU time)\n",
            packageVersion("rmsprop"), packageVersion("RTMB"), getRversion(),
            "50 -> 32 tanh -> 1 network, 1,665 parameters, 5,000 rows", reps))
ms <- function(x) ifelse(is.na(x), "", formatC(signif(x, 3), format = "fg", digits = 3, flag = "#",
                                                  big.mark = ","))
table$ad_ms <- ms(table$ad_ms)
table$hand_ms <- ms(table$hand_ms)
table$ratio <- ifelse(is.na(table$ratio), "", formatC(table$ratio, format = "f", digits = 2))
names(table) <- c("", "AD (ms)", "hand-written (ms)", "ratio", "note")
print(table, row.names = FALSE, right = FALSE)
