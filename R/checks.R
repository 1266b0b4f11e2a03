# Argument checks and classed conditions.
#
# Every error the package raises goes through rmsprop_abort(), so callers can
# catch `rmsprop_error` (or a specific `rmsprop_error_<kind>`) and every
# message names the argument and shows what was received. The checks only
# read their inputs: they run before any state changes.

rmsprop_abort <- function(kind, message, ..., call = NULL) {
  cond <- structure(
    class = c(paste0("rmsprop_error_", kind), "rmsprop_error", "error", "condition"),
    list(message = message, call = call, ...)
  )
  stop(cond)
}

rmsprop_warn <- function(kind, message, ...) {
  cond <- structure(
    class = c(paste0("rmsprop_warning_", kind), "rmsprop_warning", "warning", "condition"),
    list(message = message, call = NULL, ...)
  )
  warning(cond)
}

# A name (of a field, a method) as a message shows it: sprintf() refuses
# "bytes"-encoded strings, so the name is escaped as print() would show it.
shown_name <- function(name) encodeString(name)

# A length, count or position for a message: "%d" refuses the double that
# length() returns for a long vector (2^31 elements or more), and format()
# would write 1e+10.
count_text <- function(n) format(n, scientific = FALSE, trim = TRUE)

# A short, safe description of any R value for error messages.
describe_value <- function(x) {
  if (is.null(x)) return("NULL")
  if (inherits(x, "rmsprop_schedule")) return("a learning-rate schedule")
  if (is.function(x)) return("a function")
  if (is.environment(x)) return("an environment")
  if (is.factor(x)) return("a factor")
  # Never dispatch on the value's class: its format() method may fail.
  if (is.atomic(x) && is.object(x)) x <- unclass(x)
  if (is.list(x)) return(sprintf("a list of length %s", count_text(length(x))))
  if (!is.atomic(x)) return(sprintf("an object of type %s", typeof(x)))
  if (length(x) == 0L) return(sprintf("a zero-length %s vector", typeof(x)))
  if (length(x) > 1L) {
    return(sprintf("a %s vector of length %s", typeof(x), count_text(length(x))))
  }
  if (is.character(x)) {
    # encodeString() also copes with NA and with "bytes"-encoded strings.
    return(sprintf("the string %s", encodeString(substr(x, 1L, 40L), quote = "\"")))
  }
  if (is.raw(x) || is.complex(x)) return(sprintf("a %s value", typeof(x)))
  format(x, digits = 15L)
}

# A single finite number: double, integer or (for convenience) logical is not
# accepted; NA never is. `lower`/`upper` bound it, `*_open` make a bound strict.
is_single_number <- function(x) {
  (is.double(x) || is.integer(x)) && length(x) == 1L && !is.object(x) &&
    !is.na(x) && is.finite(x)
}

check_number <- function(x, arg, lower = -Inf, upper = Inf, lower_open = FALSE,
                         upper_open = FALSE, null_ok = FALSE, whole = FALSE) {
  if (is.null(x) && null_ok) return(invisible(NULL))
  bad <- !is_single_number(x) ||
    (if (lower_open) x <= lower else x < lower) ||
    (if (upper_open) x >= upper else x > upper) ||
    (whole && x != round(x))
  if (bad) {
    range_text <- number_range_text(lower, upper, lower_open, upper_open, whole)
    rmsprop_abort(
      "argument",
      sprintf("`%s` must be %s%s, not %s.", arg, range_text,
              if (null_ok) " or NULL" else "", describe_value(x)),
      argument = arg, value = x
    )
  }
  invisible(x)
}

number_range_text <- function(lower, upper, lower_open, upper_open, whole) {
  what <- if (whole) "a whole number" else "a single finite number"
  if (is.finite(lower) && is.finite(upper)) {
    sprintf("%s in %s%s, %s%s", what, if (lower_open) "(" else "[", format(lower),
            format(upper), if (upper_open) ")" else "]")
  } else if (is.finite(lower)) {
    sprintf("%s %s %s", what, if (lower_open) ">" else ">=", format(lower))
  } else {
    what
  }
}

check_flag <- function(x, arg) {
  if (!(is.logical(x) && length(x) == 1L && !is.na(x))) {
    rmsprop_abort("argument",
                  sprintf("`%s` must be TRUE or FALSE, not %s.", arg, describe_value(x)),
                  argument = arg, value = x)
  }
  invisible(x)
}

check_string <- function(x, arg, null_ok = FALSE) {
  if (is.null(x) && null_ok) return(invisible(NULL))
  if (!(is.character(x) && length(x) == 1L && !is.na(x) && nzchar(x))) {
    rmsprop_abort("argument",
                  sprintf("`%s` must be one non-empty string%s, not %s.", arg,
                          if (null_ok) " or NULL" else "", describe_value(x)),
                  argument = arg, value = x)
  }
  invisible(x)
}
