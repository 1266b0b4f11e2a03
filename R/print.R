# format() and print() for optimizers: the configuration and the state in a
# few lines. Printing only reads, and never fails on a restored object.

#' @export
format.rmsprop_optimizer <- function(x, ...) {
  private <- private_of(x)
  cfg <- private$config
  lr <- private$lr
  lr_text <- if (is.double(lr)) format(lr) else {
    kind <- if (inherits(lr, "rmsprop_schedule")) {
      tryCatch(format(lr, short = TRUE), error = function(e) "a schedule")
    } else {
      "a function"
    }
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
    format_exclusions(private),
    paste0("  state: ", state))
}

# "  no weight decay for: ..." with what the exclusions match once built.
format_exclusions <- function(private) {
  ex <- private$exclusions
  if (is.null(ex$var_list) && is.null(ex$var_names)) return(NULL)
  what <- c(if (length(ex$var_list)) paste0(encodeString(as.character(ex$var_list), quote = "\""),
                                            collapse = ", "),
            if (length(ex$var_names)) sprintf("names matching %s",
                                              paste0("/", ex$var_names, "/", collapse = ", ")))
  matched <- if (is.null(private$paths)) "applies when built" else {
    hit <- private$paths[decay_mask_quiet(ex, private$paths) == 0L]
    sprintf("%d of %d variables%s", length(hit), length(private$paths),
            if (length(hit)) paste0(": ", paste(utils::head(hit, 6L), collapse = ", "),
                                    if (length(hit) > 6L) ", ..." else "") else "")
  }
  sprintf("  no weight decay for %s (%s)", paste(what, collapse = " and "), matched)
}

#' @export
print.rmsprop_optimizer <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}
