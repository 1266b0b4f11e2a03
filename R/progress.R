# The progress display of minimize(): one line with the step or epoch, the
# smoothed loss, the validation loss, the learning rate, the elapsed time and
# the time left.
#
# Owns: when to look at the clock and when to draw. In an interactive session
# the line is redrawn in place (at most ten times a second); otherwise (a
# script under Rscript, a batch job) a new line goes to stderr when a new
# epoch has begun (at most one a second), or every five seconds, so logs of
# batch jobs show progress.
# Must never: cost the training loop more than a counter per step (the clock
# is read only every `every` steps, a number adapted to the speed of the
# steps), or print to stdout outside interactive sessions.

fit_progress_new <- function(max_steps, epochs, has_data, interactive = base::interactive()) {
  p <- new.env(parent = emptyenv())
  p$interactive <- interactive
  p$max_steps <- max_steps
  p$epochs <- epochs
  p$has_data <- has_data
  p$started <- proc.time()[["elapsed"]]
  p$last_draw <- -Inf
  p$last_check <- p$started
  p$every <- 1L
  p$min_gap <- if (interactive) 0.1 else 5
  p$width <- 0L
  p$drawn <- FALSE
  p$drawn_epoch <- 0L
  p
}

# Called when the countdown of the loop reaches 0; returns the next countdown.
# `recent` holds the last losses (for the smoothed loss); `val_loss` the
# last epoch's logs to show (see fit_progress_logs()).
fit_progress_tick <- function(p, step, epoch, recent, val_loss, lr, force = FALSE) {
  now <- proc.time()[["elapsed"]]
  # Aim at about 50 clock reads a second: double or halve the countdown.
  gap <- now - p$last_check
  p$last_check <- now
  if (gap < 0.01 && p$every < 65536L) p$every <- p$every * 2L
  else if (gap > 0.05 && p$every > 1L) p$every <- p$every %/% 2L
  # In scripts also a line when a new epoch has begun, at most one a second.
  new_epoch <- !p$interactive && p$has_data && epoch > p$drawn_epoch &&
    now - p$last_draw >= 1
  if (force || new_epoch || now - p$last_draw >= p$min_gap) {
    fit_progress_draw(p, step, epoch, recent, val_loss, lr, now)
  }
  p$every
}

fit_progress_line <- function(p, step, epoch, recent, val_loss, lr, now) {
  elapsed <- now - p$started
  left <- if (step > 0L) elapsed / step * (p$max_steps - step) else NA_real_
  where <- if (p$has_data) {
    sprintf("epoch %d/%d, step %d/%d", epoch, p$epochs, step, p$max_steps)
  } else {
    sprintf("step %d/%d", step, p$max_steps)
  }
  smooth <- if (length(recent)) mean(recent) else NA_real_
  paste0(where,
         sprintf("  loss %s", format(smooth, digits = 5)),
         fit_progress_logs(val_loss),
         sprintf("  lr %s", format(lr, digits = 3)),
         sprintf("  %s elapsed, ~%s left", fit_format_seconds(elapsed), fit_format_seconds(left)))
}

# The last epoch's logs shown after the loss (`shown`: a named numeric
# vector, such as val_loss and the metrics; unnamed or NA entries are left
# out).
fit_progress_logs <- function(shown) {
  nm <- names(shown)
  if (is.null(nm)) return("")
  keep <- !is.na(shown) & nzchar(nm)
  paste0(sprintf("  %s %s", nm[keep], vapply(shown[keep], format, "", digits = 5)),
         collapse = "")
}

fit_progress_draw <- function(p, step, epoch, recent, val_loss, lr, now) {
  p$last_draw <- now
  p$drawn_epoch <- epoch
  line <- fit_progress_line(p, step, epoch, recent, val_loss, lr, now)
  if (p$interactive) {
    pad <- max(0L, p$width - nchar(line))
    cat("\r", line, strrep(" ", pad), sep = "")
    p$width <- nchar(line)
    utils::flush.console()
  } else {
    cat(line, "\n", sep = "", file = stderr())
  }
  p$drawn <- TRUE
  invisible()
}

# At the end of the run: the last line, then a newline in interactive sessions.
fit_progress_done <- function(p, step, epoch, recent, val_loss, lr) {
  fit_progress_draw(p, step, epoch, recent, val_loss, lr, proc.time()[["elapsed"]])
  if (p$interactive) cat("\n")
  invisible()
}

fit_format_seconds <- function(s) {
  if (is.na(s) || !is.finite(s)) return("?")
  s <- round(s)
  if (s < 60) return(sprintf("%ds", s))
  if (s < 3600) return(sprintf("%dm%02ds", s %/% 60, s %% 60))
  sprintf("%dh%02dm", s %/% 3600, (s %% 3600) %/% 60)
}
