# summary() of the "rmsprop_fit" result of minimize(), its format/print, and
# as.data.frame() (the history): the course of the loss (epoch means with
# mini-batches), of the validation loss and of every metric, the learning
# rate in step order, where the parameters come from, and a parameter table
# short enough to read (at most `max_par` rows: per variable when there are
# more numbers than that).
# Must never: change the fit.

#' Print, summarise and convert a minimize() result
#'
#' `print()` shows how the run ended (and, for a run resumed from a
#' checkpoint, the step it resumed at), the final loss, the losses and
#' metrics of the last epoch, the best epoch, and the parameters with where
#' they come from: restored from the best epoch by early stopping, the last
#' epoch, or the parameters before step *k* for a run stopped on a
#' non-finite loss. `summary()` adds the course of the loss, of the
#' validation loss, of every metric (when the history has `val_loss` or
#' metric columns) and of the learning rate, and a table of the parameters;
#' `as.data.frame()` returns the history (one row per step).
#'
#' With mini-batches (`data` and a `batch_size` smaller than the data) the loss
#' of one batch is noisy, so `summary()` reports the loss as epoch means: the
#' mean loss of the first epoch, of the last one and of the best one (a plain
#' mean of the batch losses, or weighted by the rows of each batch when the
#' history has a `batch_size` column). Without
#' mini-batches every step sees all the data and the losses are those of the
#' steps. Metrics are recorded once per epoch; the best of a metric whose name
#' contains "acc" is its largest value (keras3's rule), else its smallest.
#' The learning rate is given in step order, first to last
#' (`0.05 -> 0.00314`), with its range when it went outside these two.
#'
#' The parameter table has at most `max_par` rows: with more numbers than
#' that, a list of variables is shown one row per variable (its size and the
#' range and mean of its numbers) and a vector by its first `max_par`
#' numbers; a last line says how many more there are.
#'
#' @param x,object A result of [minimize()] (for `format()` and `print()` of a
#'   summary: the result of `summary()`).
#' @param digits Significant digits to show (the learning rate is shown with
#'   at most 3 unless more are needed to tell two rates apart).
#' @param max_par The most rows of the parameter table (`Inf` for all).
#' @param ... Ignored (for compatibility with the generics).
#' @param row.names,optional Ignored (for compatibility with the generic).
#' @return `format()` a character vector of lines; `print()` its argument,
#'   invisibly; `summary()` an object of class `"summary.rmsprop_fit"`, a list
#'   whose `loss` and `val_loss` entries are `NULL` or
#'   `c(first = , last = , best = , best_at = )` (per epoch or per step, as
#'   its `loss_per` entry says), whose `metrics` entry is a named list of
#'   such vectors (one per metric column, per epoch), and whose
#'   `learning_rate` is `NULL` or `c(first = , last = , min = , max = )`;
#'   `as.data.frame()` the history data frame (`step`, `epoch` with data,
#'   `loss`, `learning_rate`, `grad_norm`, and any further columns that
#'   [minimize()] records: `val_loss`, and a column per metric and its
#'   `val_` twin).
#' @name rmsprop_fit-methods
#' @examples
#' fit <- minimize(c(a = 3, b = -2), function(p) sum((p - 1)^2),
#'                 function(p) 2 * (p - 1), steps = 300,
#'                 optimizer = optimizer_rmsprop(learning_rate = 0.05))
#' fit
#' summary(fit)
#' head(as.data.frame(fit))
#'
#' # Mini-batches: the loss is summarised per epoch
#' d <- data.frame(y = mtcars$mpg, x = scale(mtcars$wt))
#' batch_loss <- function(b, batch) mean((batch$y - b[1] - b[2] * batch$x)^2)
#' set.seed(1)
#' fit2 <- minimize(c(0, 0), batch_loss, data = d, batch_size = 10, epochs = 40,
#'                  optimizer = optimizer_rmsprop(
#'                    learning_rate_schedule_exponential_decay(1, 40, 0.5)))
#' summary(fit2)
NULL

# first, last, best (the smallest, or the largest with mode "max") and where
# the best is, of a series whose NA entries are skipped; NULL when nothing is
# left.
fit_course <- function(values, at, mode = "min") {
  keep <- !is.na(values)
  values <- values[keep]
  at <- at[keep]
  if (!length(values)) return(NULL)
  best <- if (identical(mode, "max")) which.max(values) else which.min(values)
  c(first = values[1L], last = values[length(values)], best = values[best],
    best_at = at[best])
}

#' @rdname rmsprop_fit-methods
#' @export
summary.rmsprop_fit <- function(object, ...) {
  h <- object$history
  epochs <- fit_epochs(h)
  batched <- fit_is_batched(epochs)
  if (batched) {
    loss <- fit_course(epochs$loss, epochs$epoch)
    val <- fit_course(epochs$val_loss, epochs$epoch)
  } else {
    loss <- if (nrow(h)) fit_course(h$loss, h$step) else NULL
    val <- if ("val_loss" %in% names(h)) fit_course(h$val_loss, h$step) else NULL
  }
  best <- fit_best(object, epochs)
  metrics <- fit_metric_names(h, fit_field(object, "metrics"))
  cols <- intersect(as.vector(rbind(metrics, paste0("val_", metrics))), names(epochs))
  lr <- if (nrow(h)) h$learning_rate[!is.na(h$learning_rate)] else numeric()
  structure(list(
    convergence = object$convergence,
    message = object$message,
    steps = object$steps,
    epochs = object$epochs,
    has_epochs = "epoch" %in% names(h),
    resumed = fit_resumed(object),
    value = object$value,
    loss_per = if (batched) "epoch" else "step",
    loss = loss,
    val_loss = val,
    metrics = stats_setnames(lapply(cols, function(n) {
      fit_course(epochs[[n]], epochs$epoch, fit_metric_mode(n, best))
    }), cols),
    best = best,
    origin = if (nrow(h)) fit_par_origin(object, epochs),
    learning_rate = if (length(lr)) c(first = lr[1L], last = lr[length(lr)],
                                      min = min(lr), max = max(lr)) else NULL,
    grad_norm = if (nrow(h)) h$grad_norm[nrow(h)] else NA_real_,
    counts = object$counts,
    elapsed = object$elapsed,
    par = fit_par_frame(object$par),
    variables = fit_variable_frame(object$par),
    optimizer = fit_optimizer_text(object$optimizer)
  ), class = "summary.rmsprop_fit")
}

stats_setnames <- function(x, nms) {
  names(x) <- nms
  x
}

# Every number of the parameters, one row each.
fit_par_frame <- function(par) {
  flat <- unlist(par)
  if (is.null(names(flat))) names(flat) <- paste0("par[", seq_along(flat), "]")
  data.frame(estimate = unname(flat), row.names = make.unique(names(flat)))
}

# One row per variable of a list of parameters (NULL for a plain vector, or
# a structure make_skeleton() refuses): its size, and the smallest, mean and
# largest of its numbers; attribute "numbers" holds how many each has.
fit_variable_frame <- function(par) {
  if (!is.list(par)) return(NULL)
  sk <- tryCatch(make_skeleton(par, "par"), error = function(e) NULL)
  if (is.null(sk)) return(NULL)
  flat <- unlist(par, use.names = FALSE)
  leaf <- rep.int(seq_along(sk$lengths), sk$lengths)
  dims <- leaf_dims(sk$skeleton)
  size <- vapply(seq_along(sk$lengths), function(i) {
    if (is.null(dims[[i]])) format(sk$lengths[[i]]) else paste(dims[[i]], collapse = " x ")
  }, character(1))
  summarise <- function(f) vapply(split(flat, factor(leaf, seq_along(sk$lengths))),
                                  function(v) if (length(v)) f(v) else NA_real_, numeric(1))
  structure(data.frame(size = size, min = unname(summarise(min)),
                       mean = unname(summarise(mean)), max = unname(summarise(max)),
                       row.names = make.unique(sk$paths)),
            numbers = sk$lengths)
}

fit_optimizer_text <- function(opt) {
  cfg <- tryCatch(opt$get_config(), error = function(e) NULL)
  if (is.null(cfg)) return(NA_character_)
  if (is.null(cfg$learning_rate) && !is.null(cfg$inner_optimizer)) {
    inner <- fit_optimizer_text(cfg$inner_optimizer)
    entries <- c(sprintf("dynamic loss scale from %s", format(cfg$initial_scale)),
                 attr(inner, "entries"))
    return(structure(paste(entries, collapse = ", "), entries = entries))
  }
  show <- cfg[!vapply(cfg, is.null, logical(1))]
  # (the text carries its "name = value" entries, for printing on several lines)
  show <- show[intersect(names(show), c("learning_rate", "rho", "momentum", "epsilon",
                                        "centered", "weight_decay", "clipnorm",
                                        "clipvalue", "global_clipnorm", "use_ema",
                                        "gradient_accumulation_steps"))]
  vals <- vapply(show, function(v) {
    if (is.function(v)) fit_lr_label(v) else paste(format(v), collapse = ",")
  }, character(1))
  entries <- paste0(names(vals), " = ", vals)
  structure(paste(entries, collapse = ", "), entries = entries)
}

# The learning-rate setting of a trained optimizer as given to it: a number,
# a schedule, a function, or NULL when the optimizer cannot say.
fit_lr_setting <- function(opt) {
  cfg <- tryCatch(opt$get_config(), error = function(e) NULL)
  if (is.null(cfg)) return(NULL)
  if (is.null(cfg$learning_rate) && !is.null(cfg$inner_optimizer)) {
    return(fit_lr_setting(cfg$inner_optimizer))
  }
  cfg$learning_rate
}

fit_lr_label <- function(v) {
  if (is_schedule(v)) return(format(v, short = TRUE))
  if (is.function(v)) return("a function")
  if (is.numeric(v) && length(v) == 1L) return(format(v))
  NA_character_
}

# Two numbers with as few significant digits as show that they differ
# (at least `digits`), so "0.05 -> 0.04999" never prints as "0.05 -> 0.05".
fit_format_pair <- function(a, b, digits) {
  for (d in c(digits:15L)) {
    fa <- format(a, digits = d)
    fb <- format(b, digits = d)
    if (a == b || fa != fb) break
  }
  c(fa, fb)
}

fit_course_text <- function(label, course, per, digits) {
  if (is.null(course)) return(NULL)
  f <- function(v) format(v, digits = digits)
  sprintf("%s: first %s, last %s, best %s (%s %d)", label, f(course[["first"]]),
          f(course[["last"]]), f(course[["best"]]), per, as.integer(course[["best_at"]]))
}

fit_lr_text <- function(lr, digits) {
  if (is.null(lr)) return(NULL)
  d <- min(digits, 3L)
  if (lr[["min"]] == lr[["max"]]) {
    return(sprintf("learning rate: %s (constant)", format(lr[["first"]], digits = d)))
  }
  ends <- fit_format_pair(lr[["first"]], lr[["last"]], d)
  text <- sprintf("learning rate: %s -> %s", ends[1L], ends[2L])
  if (lr[["min"]] < min(lr[["first"]], lr[["last"]]) ||
      lr[["max"]] > max(lr[["first"]], lr[["last"]])) {
    range <- fit_format_pair(lr[["min"]], lr[["max"]], d)
    text <- sprintf("%s (between %s and %s)", text, range[1L], range[2L])
  }
  text
}

# The lines of the parameter table: every number when there are at most
# `max_par`, else one row per variable (a list) or the first `max_par`
# numbers (a vector), and a line saying how many more there are.
fit_par_lines <- function(x, max_par, digits) {
  n <- nrow(x$par)
  if (n <= max_par) {
    return(c("parameters:", utils::capture.output(print(x$par, digits = digits))))
  }
  vars <- x$variables
  if (!is.null(vars)) {
    shown <- vars[seq_len(min(nrow(vars), max_par)), , drop = FALSE]
    more <- nrow(vars) - nrow(shown)
    return(c(
      sprintf("parameters: %d numbers in %d variables", n, nrow(vars)),
      utils::capture.output(print(shown, digits = digits)),
      if (more > 0L) sprintf("... and %d more variable%s (%d numbers)", more,
                             if (more == 1L) "" else "s",
                             n - sum(attr(vars, "numbers")[seq_len(nrow(shown))]))
    ))
  }
  c(sprintf("parameters: %d numbers", n),
    utils::capture.output(print(x$par[seq_len(max_par), , drop = FALSE], digits = digits)),
    sprintf("... and %d more (all in `fit$par`; print(summary(fit), max_par = Inf) shows them)",
            n - max_par))
}

#' @rdname rmsprop_fit-methods
#' @export
format.summary.rmsprop_fit <- function(x, digits = 6L, max_par = 20L, ...) {
  f <- function(v) format(v, digits = digits)
  per_epoch <- identical(x$loss_per, "epoch")
  unit <- if (isTRUE(x$has_epochs)) "epoch" else "step"
  c(
    sprintf("minimize(): %d step%s%s in %.2f s; convergence %d (%s)", x$steps,
            if (x$steps == 1L) "" else "s",
            if (x$has_epochs) sprintf(", %d epochs", x$epochs) else "",
            x$elapsed, x$convergence, fit_convergence_text(x$convergence)),
    sprintf("  %s", x$message),
    if (!is.null(x$resumed)) sprintf("  %s", fit_resumed_text(x$resumed)),
    if (!is.na(x$optimizer)) {
      entries <- attr(x$optimizer, "entries")
      if (is.null(entries)) sprintf("optimizer: %s", x$optimizer) else
        c("optimizer:", pack_entries(entries, width = max(40L, getOption("width", 80L)) - 2L))
    },
    sprintf("final value: %s", f(x$value)),
    fit_course_text(if (per_epoch) "loss (epoch means)" else "loss", x$loss,
                    x$loss_per, digits),
    fit_course_text("validation loss", x$val_loss, x$loss_per, digits),
    unlist(lapply(names(x$metrics), function(n) {
      fit_course_text(n, x$metrics[[n]], unit, digits)
    })),
    fit_lr_text(x$learning_rate, digits),
    sprintf("last gradient norm: %s", f(x$grad_norm)),
    sprintf("counts: function %d, gradient %d", as.integer(x$counts[["function"]]),
            as.integer(x$counts[["gradient"]])),
    if (!is.null(x$origin)) {
      sprintf("returned: %s", fit_origin_text(x$origin, x$best, unit, digits))
    },
    fit_par_lines(x, max_par, digits)
  )
}

#' @rdname rmsprop_fit-methods
#' @export
print.summary.rmsprop_fit <- function(x, digits = 6L, max_par = 20L, ...) {
  cat(format(x, digits = digits, max_par = max_par, ...), sep = "\n")
  invisible(x)
}

#' @rdname rmsprop_fit-methods
#' @export
as.data.frame.rmsprop_fit <- function(x, row.names = NULL, optional = FALSE, ...) {
  x$history
}
