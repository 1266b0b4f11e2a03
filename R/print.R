# format() and print() for optimizers: the configuration and the state in a
# few lines. Printing only reads, and never fails on a restored object.

#' @export
format.rmsprop_optimizer <- function(x, ...) {
  private <- private_of(x)
  cfg <- private$config
  lr <- private$lr
  lr_text <- if (is.double(lr)) format(lr) else {
    kind <- if (inherits(lr, "rmsprop_schedule"))
      paste(sub("^rmsprop_schedule_", "", class(lr)[[1L]]), "schedule") else "a function"
    # Only schedules are evaluated: calling a user's function could change
    # its state (and so the training). Printing never fails.
    if (inherits(lr, "rmsprop_schedule")) {
      now <- tryCatch(format(current_learning_rate(private)), error = function(e) "an error")
      sprintf("%s (next: %s)", kind, now)
    } else {
      kind
    }
  }
  core <- sprintf("learning_rate %s, rho %s, momentum %s, epsilon %s%s", lr_text,
                  format(cfg$rho), format(cfg$momentum), format(cfg$epsilon),
                  if (cfg$centered) ", centered" else "")
  opts <- c(
    if (!is.null(cfg$weight_decay)) sprintf("weight_decay %s", format(cfg$weight_decay)),
    if (!is.null(cfg$clipnorm)) sprintf("clipnorm %s", format(cfg$clipnorm)),
    if (!is.null(cfg$clipvalue)) sprintf("clipvalue %s", format(cfg$clipvalue)),
    if (!is.null(cfg$global_clipnorm)) sprintf("global_clipnorm %s", format(cfg$global_clipnorm)),
    if (cfg$use_ema) sprintf("EMA momentum %s%s", format(cfg$ema_momentum),
                             if (is.null(cfg$ema_overwrite_frequency)) "" else
                               sprintf(" (overwrite every %s)", format(cfg$ema_overwrite_frequency))),
    if (!is.null(cfg$loss_scale_factor)) sprintf("loss_scale_factor %s", format(cfg$loss_scale_factor)),
    if (!is.null(cfg$gradient_accumulation_steps))
      sprintf("accumulate %s steps", format(cfg$gradient_accumulation_steps))
  )
  state <- if (is.null(private$skeleton)) "not built yet" else
    sprintf("%s iterations on %d variable%s (%s values)", format(optimizer_iterations(private)),
            length(private$paths), if (length(private$paths) == 1L) "" else "s",
            format(sum(leaf_lengths(private$skeleton)), big.mark = ","))
  c(sprintf("<rmsprop optimizer \"%s\">", cfg$name),
    paste0("  ", core),
    if (length(opts)) paste0("  ", paste(opts, collapse = ", ")),
    paste0("  state: ", state))
}

#' @export
print.rmsprop_optimizer <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}
