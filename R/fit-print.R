# format() and print() of the "rmsprop_fit" result of minimize(): how the run
# ended, where it resumed, the last epoch's losses and metrics, the best
# epoch, and the parameters with the step or epoch they come from (so that a
# last-epoch validation loss is never read as that of restored parameters).
# Must never: change the fit, or print anything but through print().

fit_convergence_text <- function(code) {
  switch(as.character(code),
         "0" = "converged", "1" = "limit reached", "2" = "stopped by callback",
         "3" = "interrupted", "4" = "non-finite value", "unknown")
}

fit_format_par <- function(par, digits) {
  flat <- unlist(par)
  if (length(flat) > 8L) {
    return(sprintf("%d numbers in %s (first: %s ...)", length(flat),
                   if (is.list(par)) sprintf("a list of %d", length(par)) else "a vector",
                   paste(format_each(flat[1:4], digits), collapse = ", ")))
  }
  vals <- format(flat, digits = digits)
  if (!is.null(names(flat))) vals <- paste0(names(flat), " = ", vals)
  paste(vals, collapse = ", ")
}

# "epoch 7" with data (an epoch column), "step 7" without (every step is
# then a pass over all of it).
fit_unit <- function(h) if ("epoch" %in% names(h)) "epoch" else "step"

# The sentence saying where the returned parameters come from.
fit_origin_text <- function(origin, best, unit, digits) {
  if (origin$kind == "restored") {
    what <- if (!is.null(best) && !is.na(best$monitor)) {
      sprintf(" (best %s%s)", best$monitor, if (is.na(best$value)) "" else
        paste0(" ", format(best$value, digits = digits)))
    } else {
      ""
    }
    return(sprintf("restored by early stopping from %s %d%s",
                   if (unit == "epoch") "the end of epoch" else "step", origin$epoch, what))
  }
  if (origin$kind == "before") {
    where <- if (unit == "epoch" && !is.na(origin$epoch)) {
      sprintf(" (%s epoch %d)", if (origin$complete) "at the end of" else "during", origin$epoch)
    } else {
      ""
    }
    return(sprintf("the parameters before step %d%s, the last whose loss was finite",
                   origin$step + 1L, where))
  }
  if (unit == "epoch" && origin$complete) {
    return(sprintf("from the end of the last epoch (%d), after step %d", origin$epoch,
                   origin$step))
  }
  if (unit == "epoch" && !is.na(origin$epoch)) {
    return(sprintf("reached by the last step (%d), during epoch %d", origin$step,
                   origin$epoch))
  }
  sprintf("reached by the last step (%d)", origin$step)
}

fit_resumed_text <- function(resumed) {
  if (is.null(resumed)) return(NULL)
  sprintf("resumed at step %d%s from a checkpoint", resumed$step,
          if (is.na(resumed$epoch)) "" else sprintf(" (after epoch %d)", resumed$epoch))
}

# "name value" entries of the last epoch that has a per-epoch value: the
# loss (its epoch mean with mini-batches), val_loss and every metric with its
# validation twin. NULL when the history has no validation loss and no
# metrics (the value line says it all).
fit_last_entries <- function(x, epochs, digits) {
  metrics <- fit_metric_names(x$history, fit_field(x, "metrics"))
  if (is.null(epochs) || (all(is.na(epochs$val_loss)) && !length(metrics))) return(NULL)
  cols <- c("loss", "val_loss", as.vector(rbind(metrics, paste0("val_", metrics))))
  cols <- intersect(cols, names(epochs))
  # the last epoch with any per-epoch value (a run stopped during an epoch
  # has none in its last, partial one)
  has <- Reduce(`|`, lapply(setdiff(cols, "loss"), function(n) !is.na(epochs[[n]])))
  i <- if (any(has)) max(which(has)) else nrow(epochs)
  vals <- vapply(cols, function(n) epochs[[n]][i], numeric(1))
  keep <- !is.na(vals)
  structure(paste(cols[keep], format_each(vals[keep], digits)), at = epochs$epoch[i])
}

# Each number formatted on its own ("0.5", "12.25", not "0.50", "12.25").
format_each <- function(v, digits) vapply(v, format, character(1), digits = digits)

# Lines starting with `label` (padded to `indent`) holding `entries` packed
# to the console width, continued under the first entry.
fit_label_lines <- function(label, entries, indent = 11L) {
  indent <- max(indent, nchar(label) + 1L)
  width <- max(40L, getOption("width", 80L)) - indent
  lines <- sub("^  ", "", pack_entries(entries, width))
  paste0(c(formatC(label, width = -indent), rep(strrep(" ", indent), length(lines) - 1L)),
         lines)
}

#' @rdname rmsprop_fit-methods
#' @export
format.rmsprop_fit <- function(x, digits = 6L, ...) {
  h <- x$history
  epochs <- fit_epochs(h)
  unit <- fit_unit(h)
  first <- if (fit_is_batched(epochs)) {
    sprintf("first epoch mean loss %s", format(epochs$loss[1L], digits = digits))
  } else {
    sprintf("first loss %s", format(if (nrow(h) > 0L) h$loss[1L] else NA_real_,
                                    digits = digits))
  }
  last <- fit_last_entries(x, epochs, digits)
  best <- fit_best(x, epochs)
  origin <- fit_par_origin(x, epochs)
  c(
    sprintf("<rmsprop_fit> %d step%s%s: %s (convergence %d)",
            x$steps, if (x$steps == 1L) "" else "s",
            if ("epoch" %in% names(h)) sprintf(", %d epoch%s", x$epochs,
                                                if (x$epochs == 1L) "" else "s") else "",
            fit_convergence_text(x$convergence), x$convergence),
    sprintf("  message: %s", x$message),
    if (!is.null(fit_resumed(x))) sprintf("  %s", fit_resumed_text(fit_resumed(x))),
    sprintf("  value:   %s (%s)", format(x$value, digits = digits), first),
    if (length(last)) fit_label_lines(sprintf("  %s %d:", unit, attr(last, "at")), last),
    fit_best_line(best, unit, digits),
    sprintf("  par:     %s", fit_format_par(x$par, digits)),
    sprintf("           %s", fit_origin_text(origin, best, unit, digits)),
    sprintf("  counts:  function %d, gradient %d", as.integer(x$counts[["function"]]),
            as.integer(x$counts[["gradient"]]))
  )
}

# "best:" with the best epoch's monitored value ("val_loss 0.35 at epoch 2").
fit_best_line <- function(best, unit, digits) {
  if (is.null(best)) return(NULL)
  what <- if (is.na(best$monitor)) "" else sprintf("%s %s at ", best$monitor,
                                                  format(best$value, digits = digits))
  sprintf("  best:    %s%s %d%s", what, unit, best$epoch,
          if (best$from == "callback") " (early stopping)" else "")
}

#' @rdname rmsprop_fit-methods
#' @export
print.rmsprop_fit <- function(x, digits = 6L, ...) {
  cat(format(x, digits = digits, ...), sep = "\n")
  invisible(x)
}
