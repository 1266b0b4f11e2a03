# What the monitoring callbacks (early stopping, reduce-on-plateau, ...)
# share: the checks of `monitor` and `mode`, and keras' "auto" rule.
# Must never: decide which names a run records (the spec checks a monitor
# against the run's logs before anything runs).

check_monitor <- function(monitor) {
  if (!(is.character(monitor) && length(monitor) == 1L && !is.na(monitor) &&
        nzchar(monitor))) {
    rmsprop_abort("argument", sprintf(paste(
      "`monitor` must be the name of a quantity minimize() records (\"val_loss\", \"loss\",",
      "a metric, or \"val_\" and a metric), not %s."),
      describe_value(monitor)), argument = "monitor", value = monitor)
  }
  invisible(monitor)
}

check_mode <- function(mode) {
  if (!(is.character(mode) && length(mode) == 1L && !is.na(mode) &&
        mode %in% c("auto", "min", "max"))) {
    rmsprop_abort("argument", sprintf("`mode` must be \"auto\", \"min\" or \"max\", not %s.",
                                      describe_value(mode)), argument = "mode", value = mode)
  }
  invisible(mode)
}

# keras3's mode = "auto": names containing "acc" (accuracy) are maximised.
monitor_maximizes <- function(cb) {
  cb$mode == "max" || (cb$mode == "auto" && grepl("acc", cb$monitor, fixed = TRUE))
}
