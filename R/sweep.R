# sweep_optimizers(): minimize() for a grid of optimizer configurations, one
# configuration per worker task, with its print, as.data.frame and plot
# methods. Each configuration runs under the same seed, so every engine gives
# the same numbers.

#' Run minimize() for a grid of optimizer settings, in parallel
#'
#' Every row of `grid` (or element, for a list) is a set of arguments for
#' [optimizer_rmsprop()]; each configuration trains from the same `par` with
#' [minimize()], on the workers of `engine` (one configuration per task), and
#' the loss curves come back as one tidy data frame that `plot()` overlays.
#'
#' Columns of a data frame `grid` are arguments of `optimizer_rmsprop()`; a
#' list column carries values that are not single numbers, such as learning
#' rate schedules (`grid$learning_rate <- list(0.01,
#' learning_rate_schedule_cosine_decay(0.1, 500))`). `NA` in a column leaves
#' that argument at its default. Every configuration is checked by building
#' its optimizer before anything runs.
#'
#' With `data` and `shuffle = TRUE`, every configuration sees the same row
#' order: each runs under `set.seed(seed)`, so a sweep gives the same numbers
#' on every engine. The RNG of the calling session is used only to draw `seed`
#' when it is `NULL`.
#'
#' Every argument of [minimize()] that describes the run (`gr`, `steps`,
#' `tol`, `data`, `batch_size`, `epochs`, `shuffle`, `validation_data`,
#' `metrics`, `callback`, `callbacks`, `progress`) is taken as `minimize()`
#' takes it and checked the same way before anything runs, so a bad one is
#' the same classed error here as there, never a worker's failure. Each
#' configuration gets fresh callbacks; [callback_backup_and_restore()] and
#' [callback_csv_logger()] are refused (all configurations would write to one
#' file). The history's columns include `val_loss` and the metrics when they
#' are given.
#'
#' @param grid A data frame or a list of named lists of arguments for
#'   [optimizer_rmsprop()].
#' @inheritParams minimize
#' @param seed `NULL` or a whole number: the seed set before each
#'   configuration's run (used for shuffling). `NULL` draws one from the
#'   session's RNG.
#' @param progress `TRUE` shows each configuration's progress line (only
#'   where the configuration runs in this R process: engine `NULL` or
#'   `"sequential"`).
#' @param engine `NULL` (one after the other, here), `"sequential"`,
#'   `"future"` (any [future::plan()]), or a cluster from
#'   [parallel::makeCluster()]; see [rmsprop_engine()]. The workers need
#'   \pkg{rmsprop} installed.
#' @return A data frame of class `"rmsprop_sweep"` with one row per
#'   configuration and step: `config` (the configuration's number), the grid's
#'   columns (a list column as a character label; a column whose name is
#'   also a history column gets the suffix `_config`, so the grid's
#'   `learning_rate` is `learning_rate_config`), `step`, `epoch` (with
#'   `data`), `loss`, `learning_rate` and `grad_norm`. Its attribute
#'   `"final"` is a data frame with one row per configuration (`config`, the grid's
#'   columns, `value`, `convergence`, `steps`, `message`), and `"par"` a list
#'   of the parameters each configuration reached.
#' @seealso [minimize()], [rmsprop_engine()]
#' @export
#' @examples
#' fn <- function(p) sum((p - c(1, -2))^2)
#' gr <- function(p) 2 * (p - c(1, -2))
#' grid <- data.frame(learning_rate = c(0.01, 0.05, 0.1), momentum = c(0, 0.5, 0))
#' sw <- sweep_optimizers(grid, c(0, 0), fn, gr, steps = 100)
#' sw
#' head(as.data.frame(sw))
#' plot(sw)
sweep_optimizers <- function(grid, par, fn, gr = NULL, ..., steps = NULL, tol = 0,
                             data = NULL, batch_size = NULL, epochs = 1L, shuffle = TRUE,
                             validation_data = NULL, metrics = NULL, callback = NULL,
                             callbacks = NULL, progress = FALSE, seed = NULL, engine = NULL) {
  configs <- sweep_configs(grid)
  labels <- sweep_labels(grid, configs)
  spec <- run_spec(par, fn, gr, list(...), steps = steps, tol = tol, data = data,
                   batch_size = batch_size, epochs = epochs, shuffle = shuffle,
                   validation_data = validation_data, metrics = metrics,
                   callback = callback, callbacks = callbacks, progress = progress)
  sweep_check_callbacks(spec)
  check_number(seed, "seed", lower = -.Machine$integer.max, upper = .Machine$integer.max,
               whole = TRUE, null_ok = TRUE)
  for (i in seq_along(configs)) {
    opt <- tryCatch(do.call(optimizer_rmsprop, configs[[i]]), rmsprop_error = function(e) {
      rmsprop_abort("argument", sprintf("`grid` configuration %d (%s) is not valid: %s", i,
                                        labels$text[i], conditionMessage(e)),
                    argument = "grid", config = i)
    })
    spec$optimizer <- opt
    for (cb in spec$callbacks) callback_check_spec(cb, spec)
  }
  if (is.null(seed)) seed <- sample.int(.Machine$integer.max, 1L)
  engine <- if (is.null(engine)) NULL else as_engine(engine)
  # What each worker passes to minimize() besides the optimizer: the user's
  # functions with the globals they use (engine-globals.R).
  more <- c(metrics, list(.callback = callback,
                          .validation = if (is.function(validation_data)) validation_data))
  u <- ship_globals(list(fn = fn, gr = gr, dots = list(...), more = more))
  n_metrics <- length(metrics)
  shipped_metrics <- if (n_metrics) u$more[seq_len(n_metrics)]
  payload <- serialize(list(args = c(list(par = spec$par, fn = u$fn, gr = u$gr), u$dots,
                                     list(steps = steps, tol = tol, data = data,
                                          batch_size = batch_size, epochs = epochs,
                                          shuffle = shuffle,
                                          validation_data = if (is.function(validation_data))
                                            u$more$.validation else validation_data,
                                          metrics = shipped_metrics,
                                          callback = u$more$.callback,
                                          callbacks = callbacks, progress = progress))), NULL)
  jobs <- lapply(configs, function(cfg) list(config = serialize(cfg, NULL), seed = seed))
  wenv <- worker_env()
  lib <- driver_lib()
  results <- engine_map(if (is.null(engine)) rmsprop_engine("sequential") else engine, jobs,
                        get("worker_sweep", envir = wenv),
                        list(payload = payload, lib = lib, rng = RNGkind()))
  for (i in seq_along(results)) {
    if (!isTRUE(results[[i]]$ok)) {
      rmsprop_abort("worker", sprintf("configuration %d (%s) failed on its worker: %s", i,
                                      labels$text[i], results[[i]]$message),
                    config = i, worker_message = results[[i]]$message)
    }
  }
  cols <- labels$columns
  clash <- names(cols) %in% c("config", "step", "epoch", spec_log_names(spec), "learning_rate",
                              "value", "convergence", "steps", "message")
  names(cols)[clash] <- paste0(names(cols)[clash], "_config")
  histories <- lapply(seq_along(results), function(i) {
    h <- results[[i]]$history
    front <- cols[rep(i, nrow(h)), , drop = FALSE]
    cbind(data.frame(config = rep(i, nrow(h))), front, h, row.names = NULL)
  })
  out <- do.call(rbind, histories)
  rownames(out) <- NULL
  final <- cbind(data.frame(config = seq_along(results)), cols,
                 data.frame(value = vapply(results, `[[`, numeric(1), "value"),
                            convergence = vapply(results, `[[`, integer(1), "convergence"),
                            steps = vapply(results, `[[`, integer(1), "steps"),
                            message = vapply(results, `[[`, character(1), "message")),
                 row.names = NULL)
  structure(out, class = c("rmsprop_sweep", "data.frame"), final = final,
            par = lapply(results, `[[`, "par"), labels = labels$text)
}

# Callbacks that write files cannot be shared by the configurations.
sweep_check_callbacks <- function(spec) {
  files <- vapply(spec$callbacks, inherits, logical(1),
                  c("rmsprop_callback_backup_and_restore", "rmsprop_callback_csv_logger"))
  if (any(files)) {
    rmsprop_abort("argument", sprintf(paste(
      "sweep_optimizers() cannot take %s: every configuration would write to the same file.",
      "Run minimize() for the configuration you want to keep instead."),
      callback_label(spec$callbacks[[which(files)[1]]])), argument = "callbacks")
  }
  invisible(TRUE)
}

# A list of argument lists from a data frame or a list of lists; NA drops an
# argument.
sweep_configs <- function(grid) {
  if (is.data.frame(grid)) {
    if (nrow(grid) == 0L || ncol(grid) == 0L || is.null(names(grid))) {
      rmsprop_abort("argument", "`grid` must have at least one row and named columns.",
                    argument = "grid")
    }
    configs <- lapply(seq_len(nrow(grid)), function(i) {
      lapply(grid, function(col) if (is.list(col)) col[[i]] else col[i])
    })
  } else if (is.list(grid) && length(grid) > 0L &&
             all(vapply(grid, function(g) is.list(g) && (length(g) == 0L || !is.null(names(g))),
                        logical(1)))) {
    configs <- grid
  } else {
    rmsprop_abort("argument", sprintf(
      "`grid` must be a data frame or a list of named lists of optimizer_rmsprop() arguments, not %s.",
      describe_value(grid)), argument = "grid")
  }
  lapply(configs, function(cfg) {
    drop <- vapply(cfg, function(v) is.atomic(v) && length(v) == 1L && is.na(v), logical(1))
    cfg[!drop]
  })
}

# A short label for one argument value: schedules read like their
# constructor call ("cosine_decay(0.1, decay_steps = 500)").
sweep_value_label <- function(v) {
  if (is.null(v)) return("default")
  if (is_schedule(v)) return(format(v, short = TRUE))
  if (is.function(v)) return("a function")
  if (is.atomic(v) && length(v) == 1L) return(format(v))
  describe_value(v)
}

# The grid as plain columns (list columns become character labels) and one
# text label per configuration.
sweep_labels <- function(grid, configs) {
  names_all <- unique(unlist(lapply(configs, names)))
  if (is.data.frame(grid)) names_all <- names(grid)
  cols <- lapply(names_all, function(nm) {
    vals <- lapply(configs, function(cfg) cfg[[nm]])
    simple <- all(vapply(vals, function(v) is.atomic(v) && length(v) == 1L, logical(1)))
    if (simple) unlist(vals) else vapply(vals, sweep_value_label, character(1))
  })
  names(cols) <- names_all
  if (is.data.frame(grid)) {
    # keep the grid's own values, NA included
    for (nm in names_all) if (!is.list(grid[[nm]])) cols[[nm]] <- grid[[nm]]
  }
  columns <- as.data.frame(cols, stringsAsFactors = FALSE, optional = TRUE)
  text <- vapply(configs, function(cfg) {
    if (length(cfg) == 0L) return("defaults")
    paste(paste0(names(cfg), " = ", vapply(cfg, sweep_value_label, character(1))),
          collapse = ", ")
  }, character(1))
  list(columns = columns, text = text)
}

#' @rdname sweep_optimizers
#' @param x A result of `sweep_optimizers()`.
#' @export
format.rmsprop_sweep <- function(x, ...) {
  final <- attr(x, "final")
  if (is.null(final)) return(utils::capture.output(print(as.data.frame(x))))
  c(sprintf("<rmsprop_sweep> %d configurations, %d rows of history", nrow(final), nrow(x)),
    utils::capture.output(print(final[setdiff(names(final), "message")], row.names = FALSE)))
}

#' @rdname sweep_optimizers
#' @export
print.rmsprop_sweep <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}

#' @rdname sweep_optimizers
#' @param row.names,optional Ignored.
#' @export
as.data.frame.rmsprop_sweep <- function(x, row.names = NULL, optional = FALSE, ...) {
  attr(x, "final") <- NULL
  attr(x, "par") <- NULL
  attr(x, "labels") <- NULL
  class(x) <- "data.frame"
  x
}

#' @rdname sweep_optimizers
#' @param log_loss `TRUE` draws the loss on a log axis (when every loss is
#'   positive).
#' @param legend `TRUE` adds a legend naming the configurations, below the
#'   plot (outside the curves). It names the settings that differ between
#'   configurations; settings shared by all are noted under the title.
#' @param main A title.
#' @details `plot()` overlays the loss curves, one colour per configuration.
#'   With mini-batches the loss of each batch is drawn faintly and the mean
#'   loss of each epoch as a bold line; a validation loss (`val_loss`) is
#'   drawn dashed in the configuration's colour.
#' @export
plot.rmsprop_sweep <- function(x, log_loss = TRUE, legend = TRUE,
                               main = "Loss per configuration", ...) {
  d <- as.data.frame(x)
  if (nrow(d) == 0L) {
    rmsprop_abort("argument", "`x` has no steps to plot.", argument = "x")
  }
  ids <- unique(d$config)
  cols <- grDevices::hcl.colors(max(length(ids), 2L), "Dark 3")[seq_along(ids)]
  parts <- split(d, factor(d$config, levels = ids))
  epochs <- lapply(parts, fit_epoch_table)
  batched <- any(vapply(epochs, fit_is_batched, logical(1)))
  val <- lapply(seq_along(parts), function(k) {
    if (batched) {
      e <- epochs[[k]]
      keep <- !is.na(e$val_loss)
      list(x = e$last_step[keep] + 0.5, y = e$val_loss[keep])
    } else if ("val_loss" %in% names(d)) {
      keep <- !is.na(parts[[k]]$val_loss)
      list(x = parts[[k]]$step[keep] + 0.5, y = parts[[k]]$val_loss[keep])
    } else {
      list(x = numeric(), y = numeric())
    }
  })
  has_val <- any(vapply(val, function(v) length(v$y) > 0L, logical(1)))

  labels <- sweep_legend_labels(x, ids)
  shared <- attr(labels, "shared")
  n <- length(ids)
  # past 8 configurations the colours repeat in dashed, then dotted lines
  # (unless dashes mark the validation loss)
  lty <- if (has_val) rep(1, n) else ((seq_len(n) - 1L) %/% 8L) %% 3L + 1L
  key <- paste(c(if (batched) "bold: epoch mean, faint: each batch",
                 if (has_val) "dashed: validation loss"), collapse = "; ")
  lay <- if (legend) sweep_legend_layout(paste0(ids, ": ", labels), nzchar(key),
                                          top = if (length(shared)) 3.4 else 2.4)
  top <- if (length(shared)) 3.4 else 2.4
  bottom <- 3.4 + if (legend) lay$lines else 0
  old <- graphics::par(mar = c(bottom, 4.5, top, 1), mgp = c(2.2, 0.7, 0))
  on.exit(graphics::par(old), add = TRUE)

  ys <- c(d$loss, unlist(lapply(epochs, `[[`, "loss")), unlist(lapply(val, `[[`, "y")))
  ys <- ys[is.finite(ys)]
  log_axis <- if (log_loss && length(ys) && all(ys > 0)) "y" else ""
  args <- utils::modifyList(list(
    xlim = range(c(d$step, unlist(lapply(val, `[[`, "x")))),
    ylim = if (length(ys)) range(ys) else c(0, 1), log = log_axis, xlab = "step",
    ylab = if (nzchar(log_axis)) "loss (log scale)" else "loss", main = "",
    yaxt = if (nzchar(log_axis)) "n" else "s"
  ), list(...))
  do.call(graphics::plot, c(list(x = d$step, y = d$loss, type = "n"), args))
  if (identical(args$yaxt, "n") && nzchar(log_axis) && is.null(list(...)$yaxt)) {
    fit_log_axis()
  }
  graphics::title(main = main, line = top - 1.3)
  if (length(shared)) {
    graphics::mtext(paste("all:", paste(shared, collapse = ", ")), side = 3, line = 0.3,
                    cex = 0.8)
  }
  for (k in seq_along(ids)) {
    s <- parts[[k]]
    if (batched) {
      e <- epochs[[k]]
      graphics::lines(s$step, s$loss, col = grDevices::adjustcolor(cols[k], alpha.f = 0.25),
                      lty = lty[k])
      graphics::lines((e$first_step + e$last_step) / 2, e$loss, col = cols[k], lwd = 2,
                      lty = lty[k])
    } else {
      graphics::lines(s$step, s$loss, col = cols[k], lwd = 1.5, lty = lty[k])
    }
    if (length(val[[k]]$y)) graphics::lines(val[[k]]$x, val[[k]]$y, col = cols[k], lwd = 1.5, lty = 2)
  }
  if (legend) {
    # in the bottom margin, below the axis title: never over the curves;
    # from the left edge of the figure
    line <- graphics::par("csi") * graphics::par("mex")
    y <- graphics::grconvertY(graphics::grconvertY(0, "npc", "inches") - 3.2 * line,
                              "inches", "user")
    graphics::legend(graphics::grconvertX(0.01, "nfc", "user"), y,
                     legend = paste0(ids, ": ", labels), col = cols, lwd = 2, lty = lty,
                     ncol = lay$ncol, bty = "n", cex = lay$cex, xjust = 0, yjust = 1,
                     seg.len = 2, xpd = NA, title = if (nzchar(key)) key,
                     title.adj = 0)
  }
  invisible(x)
}

# Legend labels for the configurations `ids` of a sweep: the settings that
# differ between configurations, as "name = value"; the settings shared by
# all are returned in the attribute "shared".
sweep_legend_labels <- function(x, ids) {
  final <- attr(x, "final")
  full <- attr(x, "labels")
  if (is.null(final)) {
    return(if (!is.null(full)) full[ids] else paste("configuration", ids))
  }
  grid_cols <- setdiff(names(final), c("config", "value", "convergence", "steps", "message"))
  rows <- match(ids, final$config)
  pieces <- lapply(grid_cols, function(nm) {
    v <- final[[nm]][rows]
    shown <- ifelse(is.na(v), "default", vapply(v, function(e) format(e), character(1)))
    # a grid column renamed to avoid a history column is shown by its own name
    paste(sub("_config$", "", nm), "=", shown)
  })
  if (!length(pieces)) return(structure(rep("defaults", length(ids)), shared = character()))
  varies <- vapply(pieces, function(p) length(unique(p)) > 1L, logical(1))
  if (!any(varies)) {
    return(structure(rep(if (length(ids) == 1L) paste(unlist(pieces), collapse = ", ") else
                           "same settings", length(ids)), shared = if (length(ids) > 1L)
                       vapply(pieces, `[`, character(1), 1L) else character()))
  }
  labels <- do.call(paste, c(pieces[varies], sep = ", "))
  structure(labels, shared = vapply(pieces[!varies], `[`, character(1), 1L))
}

# Columns, text size and height (in margin lines) of a sweep's legend, from
# the size of the figure it will sit under (estimated before the figure
# exists: the device's size shared by the cells of the grid). The largest text
# (from 0.85 down to 0.5) at which the legend, in as many columns as fit side
# by side, takes at most about half of the figure's height; a few entries
# stay in one column.
sweep_legend_layout <- function(entries, has_key, top) {
  fig_w <- graphics::par("din")[1L] / graphics::par("mfrow")[2L] * 0.98
  fig_h <- graphics::par("din")[2L] / graphics::par("mfrow")[1L]
  room <- 0.5 * fig_h / graphics::par("csi") - 3.4 - top - 0.8
  n <- length(entries)
  col_w <- function(cex) max(graphics::strwidth(entries, units = "inches", cex = cex)) +
    4 * graphics::strwidth("m", units = "inches", cex = cex)
  for (cex in seq(0.85, 0.5, by = -0.05)) {
    max_cols <- max(1L, floor(fig_w / col_w(cex)))
    per_col <- max(1L, floor(room / cex) - has_key)
    ncol <- min(max_cols, max(1L, ceiling(n / max(per_col, 6L))))
    if (ncol < ceiling(n / per_col) && ceiling(n / per_col) <= max_cols) {
      ncol <- ceiling(n / per_col)
    }
    rows <- ceiling(n / ncol) + has_key
    if (rows * cex <= room && col_w(cex) <= fig_w) break
  }
  list(ncol = as.integer(ncol), cex = cex, lines = rows * cex * graphics::par("cex") + 0.8)
}
