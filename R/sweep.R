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
#' @param grid A data frame or a list of named lists of arguments for
#'   [optimizer_rmsprop()].
#' @inheritParams minimize
#' @param seed `NULL` or a whole number: the seed set before each
#'   configuration's run (used for shuffling). `NULL` draws one from the
#'   session's RNG.
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
                             seed = NULL, engine = NULL) {
  configs <- sweep_configs(grid)
  labels <- sweep_labels(grid, configs)
  par <- fit_check_par(par)
  fit_check_function(fn, "fn")
  if (!is.null(gr)) fit_check_function(gr, "gr")
  check_number(seed, "seed", whole = TRUE, null_ok = TRUE)
  for (i in seq_along(configs)) {
    tryCatch(do.call(optimizer_rmsprop, configs[[i]]), rmsprop_error = function(e) {
      rmsprop_abort("argument", sprintf("`grid` configuration %d (%s) is not valid: %s", i,
                                        labels$text[i], conditionMessage(e)),
                    argument = "grid", config = i)
    })
  }
  if (is.null(seed)) seed <- sample.int(.Machine$integer.max, 1L)
  engine <- if (is.null(engine)) NULL else as_engine(engine)
  payload <- serialize(list(par = par, fn = fn, gr = gr, dots = list(...), steps = steps,
                            tol = tol, data = data, batch_size = batch_size,
                            epochs = epochs, shuffle = shuffle), NULL)
  jobs <- lapply(configs, function(cfg) list(config = serialize(cfg, NULL), seed = seed))
  wenv <- worker_env()
  lib <- driver_lib()
  results <- if (is.null(engine) || engine$type == "sequential") {
    f <- get("worker_sweep", envir = wenv)
    lapply(jobs, function(j) f(j, payload, lib))
  } else {
    if (engine$type == "cluster") {
      # Load the package on every worker before anything refers to it.
      loaded <- tryCatch(
        parallel::clusterCall(engine$cluster, get("worker_load", envir = wenv), lib),
        error = function(e) rmsprop_abort("worker", sprintf(
          "loading rmsprop on the cluster failed: %s", conditionMessage(e))))
      if (!all(unlist(loaded))) {
        rmsprop_abort("worker", "the rmsprop package cannot be loaded on every worker of the cluster; install it there.")
      }
    }
    engine_run(engine, jobs, "worker_sweep", list(payload = payload, lib = lib), wenv)
  }
  for (i in seq_along(results)) {
    if (!isTRUE(results[[i]]$ok)) {
      rmsprop_abort("worker", sprintf("configuration %d (%s) failed on its worker: %s", i,
                                      labels$text[i], results[[i]]$message),
                    config = i, worker_message = results[[i]]$message)
    }
  }
  cols <- labels$columns
  clash <- names(cols) %in% c("config", "step", "epoch", "loss", "learning_rate", "grad_norm",
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

sweep_value_label <- function(v) {
  if (is.null(v)) return("default")
  if (is.function(v)) {
    lab <- tryCatch(format(v)[1L], error = function(e) "a function")
    if (!is.character(lab) || length(lab) == 0L || is.na(lab) || grepl("^function", lab)) {
      lab <- "a function"
    }
    return(sub("^<([^>]*)>.*$", "\\1", lab))
  }
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
#' @param legend `TRUE` adds a legend naming the configurations.
#' @param main A title.
#' @export
plot.rmsprop_sweep <- function(x, log_loss = TRUE, legend = TRUE,
                               main = "Loss per configuration", ...) {
  d <- as.data.frame(x)
  ids <- unique(d$config)
  cols <- grDevices::hcl.colors(max(length(ids), 2L), "Dark 3")[seq_along(ids)]
  log_axis <- if (log_loss && all(is.finite(d$loss)) && all(d$loss > 0)) "y" else ""
  graphics::plot(range(d$step), range(d$loss[is.finite(d$loss)]), type = "n", log = log_axis,
                 xlab = "step", ylab = if (nzchar(log_axis)) "loss (log scale)" else "loss",
                 main = main, ...)
  for (k in seq_along(ids)) {
    s <- d[d$config == ids[k], ]
    graphics::lines(s$step, s$loss, col = cols[k], lwd = 1.5)
  }
  if (legend) {
    labels <- attr(x, "labels")
    text <- if (!is.null(labels)) paste0(ids, ": ", labels[ids]) else paste("config", ids)
    graphics::legend("topright", legend = text, col = cols, lwd = 1.5, bty = "n",
                     cex = 0.8)
  }
  invisible(x)
}
