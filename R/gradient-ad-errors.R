# What cannot be taped, said in the user's terms: the classed errors
# (rmsprop_error_ad) of the "ad" gradient source.
#
# Owns: running a taping with the handlers that see RTMB's failures
# (ad_catch()), finding the operation of `fn` that failed from the frames
# of the failure (which RTMB method, with which generic, called from which
# user code), and the wording of every "ad" error: what failed and what to
# write instead. RTMB's own message stays inside ours when the failure is
# not one we know.
# Must never: decide by the text of RTMB's messages (the frames and the
# generics say what failed), or swallow an error: every failure while
# taping ends as a classed error.

# Runs `expr` (a MakeTape() of `fn`) and turns its failures into classed
# errors. A warning that an AD value was coerced to plain numbers (R's own
# message, in the session's language) means the tape would silently lose a
# derivative: it is an error too.
ad_catch <- function(expr, fn) {
  site <- NULL
  ours <- NULL
  coercion <- gettext("imaginary parts discarded in coercion", domain = "R")
  tryCatch(
    withCallingHandlers(expr,
      error = function(e) {
        # Our own errors from inside the taping (RTMB's C++ layer re-raises
        # them without their class): kept as they are.
        if (inherits(e, "rmsprop_error")) {
          if (is.null(ours)) ours <<- e
        } else if (is.null(site)) {
          # The frames up to this handler's caller, without R's handler call.
          k <- sys.nframe() - 1L
          funs <- lapply(seq_len(k), sys.function)
          if (k > 0L && identical(funs[[k]], .handleSimpleError)) k <- k - 1L
          site <<- ad_failure_site(sys.calls()[seq_len(k)], sys.frames()[seq_len(k)],
                                   funs[seq_len(k)], fn)
          if (is.null(site$op)) site$op <- conditionCall(e)
        }
      },
      warning = function(w) {
        if (identical(conditionMessage(w), coercion)) {
          ours <<- tryCatch(ad_abort_coercion(conditionCall(w)), rmsprop_error = identity)
          stop(ours)
        }
      }),
    error = function(e) if (is.null(ours)) ad_abort_taping(e, site) else stop(ours))
}

# Where a taping failed: list(op = the call of `fn` (or of its helpers)
# that failed, generic = the RTMB group generic that refused and its group,
# advector = TRUE when RTMB refused a value that had lost its AD class).
# Frames of `fn` and of helpers the user wrote are those whose function
# lives outside any namespace; the operation is the first call they made
# into a package (base, stats, RTMB).
ad_failure_site <- function(calls, frames, funs, fn) {
  n <- min(length(calls), length(funs))
  start <- Position(function(f) identical(f, fn), funs)
  if (is.na(start)) return(NULL)
  rtmb <- asNamespace("RTMB")
  user <- vapply(funs, ad_is_user_function, logical(1))
  user[seq_len(start - 1L)] <- FALSE
  user[[start]] <- TRUE
  last_user <- max(which(user))
  op_index <- if (last_user < n) last_user + 1L else NA_integer_
  site <- list(op = if (!is.na(op_index)) calls[[op_index]], generic = NULL, group = NULL,
               advector = FALSE)
  for (i in rev(seq(start, n))) {
    for (group in c("Ops", "Math", "Summary")) {
      if (identical(funs[[i]], get0(paste0(group, ".advector"), envir = rtmb, inherits = FALSE))) {
        site$generic <- get0(".Generic", envir = frames[[i]], inherits = FALSE)
        site$group <- group
        if (identical(i, op_index)) site$op <- ad_generic_call(calls[[i]], site$generic)
        return(site)
      }
    }
    if (identical(funs[[i]], get0("advector", envir = rtmb, inherits = FALSE))) {
      site$advector <- TRUE
    }
  }
  site
}

ad_is_user_function <- function(f) {
  env <- environment(f)
  !is.null(env) && !isNamespace(topenv(env))
}

# `Ops.advector(z[1], 0)` as the user wrote it: `z[1] > 0`; `round()` when
# the call holds evaluated values instead of the user's expressions.
ad_generic_call <- function(call, generic) {
  if (!is.character(generic)) return(call)
  args <- as.list(call)[-1L]
  written <- vapply(args, function(a) is.language(a) || is.atomic(a) && length(a) <= 1L,
                    logical(1))
  if (!all(written)) args <- list()
  as.call(c(list(as.name(generic)), args))
}

ad_deparse <- function(call) {
  if (is.null(call)) return(NULL)
  text <- paste(deparse(call, width.cutoff = 60L, nlines = 1L), collapse = " ")
  if (nchar(text) > 60L) paste0(substr(text, 1L, 57L), "...") else text
}

# ---- the messages ----------------------------------------------------------

ad_abort <- function(message, ...) {
  rmsprop_abort("ad", paste("`fn` cannot be taped for gr = \"ad\":", message), ...)
}

ad_abort_taping <- function(e, site) {
  op <- ad_deparse(site$op)
  at <- if (is.null(op)) "" else sprintf("`%s` ", op)
  compare <- c("==", "!=", "<", ">", "<=", ">=")
  if (identical(site$group, "Ops") && isTRUE(site$generic %in% compare)) {
    ad_abort(sprintf(paste(
      "%scompares values that depend on the parameters or on the batch (`%s`). A tape",
      "records one path, so a branch on such values (if, ifelse(), pmax(), pmin(), a",
      "logical index, which()) cannot be taped. Write it without the comparison:",
      "(x + abs(x)) / 2 for pmax(x, 0), max() or min() of a whole vector, smooth forms",
      "such as plogis(x) or log1p(exp(x)), and arithmetic on 0/1 labels",
      "(y * log(p) + (1 - y) * log(1 - p)) or one-hot columns instead of tests on them.",
      "Branches on plain numbers (sizes, constants, the extra arguments) are fine."),
      at, site$generic), operation = site$generic, parent = e)
  }
  if (identical(site$group, "Math")) {
    ad_abort(sprintf("%sapplies %s() to a taped value, and RTMB's tape has no %s(). %s",
                     at, site$generic, site$generic, ad_math_advice(site$generic)),
             operation = site$generic, parent = e)
  }
  if (identical(site$group, "Summary")) {
    ad_abort(sprintf(paste(
      "%sapplies %s() to taped values; RTMB tapes sum(), prod(), max() and min() of them,",
      "not %s(). %s"), at, site$generic, site$generic, ad_summary_advice(site$generic)),
      operation = site$generic, parent = e)
  }
  if (isTRUE(site$advector)) ad_abort_lost_class(op, e)
  ad_abort(sprintf(paste(
    "%sfailed while `fn` was taped: %s. The tape follows arithmetic, matrix products,",
    "exp(), log(), tanh() and the like, sums and subsetting; write the step with those."),
    if (is.null(op)) "a step of `fn` " else at, conditionMessage(e)), operation = op, parent = e)
}

ad_math_advice <- function(generic) {
  rewrite <- c(log2 = "Write log(x) / log(2).", log10 = "Write log(x) / log(10).",
               sinpi = "Write sin(pi * x).", cospi = "Write cos(pi * x).",
               tanpi = "Write tan(pi * x).")
  if (generic %in% names(rewrite)) return(rewrite[[generic]])
  paste("Its derivative is zero or undefined almost everywhere: leave it out of the loss,",
        "or apply it to plain numbers only (constants, the extra arguments).")
}

ad_summary_advice <- function(generic) {
  if (identical(generic, "range")) return("Write c(min(x), max(x)).")
  paste("any() and all() test values: see the advice on comparisons (a branch on taped",
        "values cannot be taped).")
}

ad_abort_lost_class <- function(op, parent = NULL) {
  ad_abort(sprintf(paste(
    "%sa value that depends on the parameters or on the batch lost RTMB's AD class on",
    "the way (outer(), %%o%%, unlist(), solve(), or a function that unclass()es its",
    "argument do this), so the tape cannot follow it. Write that step with arithmetic and",
    "matrix products (outer(a, b) is a %%*%% t(b); c() keeps the class where unlist()",
    "does not)."), if (is.null(op)) "" else sprintf("at `%s`, ", op)),
    operation = op, parent = parent)
}

ad_abort_coercion <- function(call) {
  op <- ad_deparse(call)
  ad_abort(sprintf(paste(
    "%sturns a value that depends on the parameters or on the batch into plain numbers,",
    "so the tape would lose its derivative without a sign. Write it with taped",
    "operations (var(x) as sum((x - mean(x))^2) / (length(x) - 1), a norm as",
    "sqrt(sum(x^2))), or leave it out of the loss."),
    if (is.null(op)) "a step of `fn` " else sprintf("`%s` ", op)), operation = op)
}

# What `fn` returned on the tape, when it is not one taped number.
ad_check_value <- function(value) {
  if (inherits(value, "advector")) {
    if (length(value) == 1L) return(value)
    ad_abort(sprintf("`fn` must return one number; on the tape it returned %d values.",
                     length(value)))
  }
  if (is.complex(value)) ad_abort_lost_class(NULL)
  if (is.numeric(value) && length(value) == 1L) {
    ad_abort(paste(
      "`fn` returned a plain number that does not depend on the parameters on the tape:",
      "a step turned them into plain numbers (as.numeric() of unclass(), a value",
      "computed once outside `fn`), or `fn` ignores `par`."))
  }
  ad_abort(sprintf("`fn` must return one number, not %s.", describe_value(value)))
}

ad_abort_batch_column <- function(name, column) {
  rmsprop_abort("ad", sprintf(paste(
    "gr = \"ad\" puts the batch on the tape as numbers, but its column `%s` is %s.",
    "Make it numeric before training (0/1 indicator columns, or model.matrix())."),
    name, describe_value(column)), argument = "data", column = name)
}

# The tape and `fn` disagree away from the point of taping: something in
# `fn` was decided at taping time by values that change later.
ad_abort_replay <- function(taped, direct) {
  ad_abort(sprintf(paste(
    "its tape does not follow it. At other parameter values (on other rows of the",
    "batch) the tape gives %s and `fn` gives %s: something in `fn` chooses by",
    "the values of the parameters or of the batch, and the tape froze that choice when",
    "it was recorded (indexing a matrix by labels read from the batch, such as",
    "P[cbind(i, batch$label)]: use one-hot columns instead), or `fn` draws random",
    "numbers (a dropout mask: pass it in the batch)."),
    format(taped, digits = 10L), format(direct, digits = 10L)))
}
