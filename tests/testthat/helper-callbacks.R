# Shared by the callback tests: a regression problem on mtcars split into
# training and validation rows, keras' EarlyStopping as a plain-R reference,
# and a run that records the parameters at the end of every epoch.
cb_x <- unname(cbind(1, as.matrix(scale(mtcars[, c("wt", "hp", "qsec")]))))
cb_data <- data.frame(y = mtcars$mpg, x = I(cb_x))
cb_train <- cb_data[1:24, ]
cb_valid <- cb_data[25:32, ]
cb_fn <- function(b, batch) mean((batch$y - batch$x %*% b)^2)
cb_gr <- function(b, batch) drop(-2 * crossprod(batch$x, batch$y - batch$x %*% b)) / nrow(batch)

# keras' EarlyStopping, epoch by epoch (1-based epochs; keras counts from 0).
ref_early_stopping <- function(values, patience = 0, min_delta = 0, mode = "min",
                               baseline = NULL, start_from_epoch = 0) {
  sign <- if (mode == "max") -1 else 1   # compare sign * value, smaller is better
  better <- function(a, b) is.na(b) || isTRUE(sign * a + abs(min_delta) < sign * b)
  best <- NA_real_
  best_epoch <- NA_integer_
  wait <- 0
  for (e in seq_along(values)) {
    if (e <= start_from_epoch) next
    if (is.na(best_epoch)) best_epoch <- e
    wait <- wait + 1
    if (better(values[e], best)) {
      best <- values[e]
      best_epoch <- e
      if (is.null(baseline) || better(values[e], baseline)) wait <- 0
    } else if (wait >= patience && e > 1) {
      return(list(stop = e, best_epoch = best_epoch))
    }
  }
  list(stop = NA_integer_, best_epoch = best_epoch)
}

# A full run that records the parameters at the end of every epoch.
run_recording <- function(epochs, ...) {
  ends <- list()
  cb <- function(info) {
    if (info$step %% 5L == 0L) ends[[info$epoch]] <<- info$par
  }
  set.seed(21)
  fit <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                  batch_size = 5, epochs = epochs, callback = cb, progress = FALSE, ...)
  list(fit = fit, ends = ends)
}

