# The evaluation callback minimize() adds when it has metrics or validation
# data: at the end of every epoch, the metrics on the training rows and the
# validation loss and metrics, at the parameters reached then, joined to the
# epoch's logs (keras' order: loss, metrics, val_loss, val_ metrics).
#
# Owns: calling the metric functions and the validation loss, and checking
# what they return.
# Must never: count these calls in `counts` (they are not the optimizer's
# evaluations), or run on a worker (they run in the driver, whatever the
# engine).

evaluation_callback <- function(spec) {
  structure(list(metrics = spec$metrics, validation = spec$validation, fn = spec$fn,
                 dots = spec$dots, data = spec$data, has_data = spec$has_data),
            class = c("rmsprop_callback_evaluation", "rmsprop_callback"))
}

# One number from a metric or the validation loss.
evaluation_value <- function(x, what) {
  if (!(is.numeric(x) || is.logical(x)) || length(x) != 1L) {
    rmsprop_abort("value", sprintf("%s must return a single number, not %s.", what,
                                   describe_value(x)), argument = what)
  }
  as.double(x)
}

#' @exportS3Method on_epoch_end rmsprop_callback_evaluation
on_epoch_end.rmsprop_callback_evaluation <- function(cb, run, epoch, logs) {
  par <- run_current_par(run)
  rows <- cb$data
  for (m in names(cb$metrics)) {
    f <- cb$metrics[[m]]
    logs[[m]] <- evaluation_value(if (cb$has_data) f(par, rows) else f(par),
                                  sprintf("metric `%s`", m))
  }
  v <- cb$validation
  if (is.null(v)) return(logs)
  if (v$kind == "function") {
    logs$val_loss <- evaluation_value(v$f(par), "the validation loss function `validation_data`")
    return(logs)
  }
  logs$val_loss <- evaluation_value(fit_call(cb$fn, par, v$data, cb$dots, TRUE),
                                    "the validation loss (`fn` on `validation_data`)")
  for (m in names(cb$metrics)) {
    logs[[paste0("val_", m)]] <- evaluation_value(cb$metrics[[m]](par, v$data),
                                                  sprintf("metric `%s`", m))
  }
  logs
}
