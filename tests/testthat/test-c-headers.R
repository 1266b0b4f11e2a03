# The C side's own promises (issue 13, item 6), checked on the sources: the
# private headers compile on their own, and every .Call entry point has one
# prototype (src/calls.h), one registration with the same argument count
# (src/init.c), and callers in R/ that pass that many arguments. Needs the
# package's source directory (tools/run-tests.R runs from it); under
# R CMD check the tests run from an installed copy without src/, so they skip.

# The package root seen from tests/testthat; only there, so that a check
# directory never picks up some other tree's src/.
source_dir <- function() {
  d <- file.path("..", "..")
  ok <- file.exists(file.path(d, "src", "calls.h")) && file.exists(file.path(d, "src", "init.c")) &&
    file.exists(file.path(d, "DESCRIPTION")) && dir.exists(file.path(d, "R"))
  if (ok) normalizePath(d) else NULL
}

read_text <- function(path) paste(readLines(path, warn = FALSE), collapse = "\n")

# Comments out, so a prototype in a comment counts for nothing.
strip_c_comments <- function(x) {
  x <- gsub("/\\*.*?\\*/", " ", x, perl = TRUE)
  gsub("//[^\n]*", " ", x, perl = TRUE)
}

# name -> number of arguments, for every match of `pattern` (groups: name,
# argument list) in `text`.
c_signatures <- function(text, pattern) {
  m <- regmatches(text, gregexpr(pattern, text, perl = TRUE))[[1]]
  if (!length(m)) return(integer(0))
  name <- sub(pattern, "\\1", m, perl = TRUE)
  args <- trimws(gsub("\\s+", " ", sub(pattern, "\\2", m, perl = TRUE)))
  n <- ifelse(args %in% c("", "void"), 0L, lengths(strsplit(args, ",")))
  stats::setNames(as.integer(n), name)
}

test_that("src/rmsprop.h, src/calls.h and src/state_layout.h compile on their own", {
  dir <- source_dir()
  skip_if(is.null(dir), "the package's source directory (with src/) is not reachable")
  r <- file.path(R.home("bin"), "R")
  cc <- strsplit(trimws(system2(r, c("CMD", "config", "CC"), stdout = TRUE)), "[[:space:]]+")[[1]]
  skip_if(!length(cc) || !nzchar(Sys.which(cc[[1]])), "no C compiler")
  cppflags <- trimws(system2(r, c("CMD", "config", "--cppflags"), stdout = TRUE))
  cppflags <- strsplit(cppflags, "[[:space:]]+")[[1]]
  for (h in c("rmsprop.h", "calls.h", "state_layout.h")) {
    obj <- tempfile(fileext = ".o")
    out <- suppressWarnings(system2(cc[[1]], c(cc[-1], cppflags, "-DR_NO_REMAP", "-c", "-x", "c",
                                               shQuote(file.path(dir, "src", h)), "-o",
                                               shQuote(obj)),
                                    stdout = TRUE, stderr = TRUE))
    status <- attr(out, "status")
    unlink(obj)
    expect(is.null(status) || status == 0,
           sprintf("src/%s does not compile on its own:\n%s", h, paste(out, collapse = "\n")))
  }
})

test_that("every .Call entry point has one prototype in calls.h and one CALLDEF in init.c", {
  dir <- source_dir()
  skip_if(is.null(dir), "the package's source directory (with src/) is not reachable")
  src <- file.path(dir, "src")
  files <- list.files(src, pattern = "\\.c$", full.names = TRUE)
  defs <- integer(0)
  for (f in files) {
    text <- strip_c_comments(read_text(f))
    d <- c_signatures(text, "(?m)^SEXP\\s+(C_\\w+)\\s*\\(([^)]*)\\)\\s*\\{")
    if (length(d)) {
      expect_match(text, "#include \"calls.h\"", fixed = TRUE,
                   info = sprintf("%s defines entry points, so it includes calls.h", basename(f)))
    }
    expect_false(any(names(d) %in% names(defs)), info = basename(f))
    defs <- c(defs, d)
  }
  expect_gt(length(defs), 0)
  protos <- c_signatures(strip_c_comments(read_text(file.path(src, "calls.h"))),
                         "(?m)^SEXP\\s+(C_\\w+)\\s*\\(([^)]*)\\)\\s*;")
  init <- strip_c_comments(read_text(file.path(src, "init.c")))
  m <- regmatches(init, gregexpr("CALLDEF\\(\\s*(C_\\w+)\\s*,\\s*(\\d+)\\s*\\)", init, perl = TRUE))[[1]]
  calldefs <- stats::setNames(as.integer(sub(".*,\\s*(\\d+)\\s*\\)$", "\\1", m, perl = TRUE)),
                              sub("CALLDEF\\(\\s*(C_\\w+).*", "\\1", m, perl = TRUE))
  expect_false(anyDuplicated(names(protos)) > 0)
  expect_false(anyDuplicated(names(calldefs)) > 0)
  for (n in names(defs)) {
    expect_true(n %in% names(protos), info = sprintf("%s has a prototype in calls.h", n))
    expect_true(n %in% names(calldefs), info = sprintf("%s has a CALLDEF in init.c", n))
    expect_identical(unname(protos[n]), unname(defs[n]), info = sprintf("%s: calls.h", n))
    expect_identical(unname(calldefs[n]), unname(defs[n]), info = sprintf("%s: init.c", n))
  }
  # Nothing declared or registered that no file defines.
  expect_setequal(names(protos), names(defs))
  expect_setequal(names(calldefs), names(defs))
  # The registered table is what the loaded DLL reports.
  reg <- getDLLRegisteredRoutines("rmsprop")$.Call
  expect_setequal(names(reg), names(defs))
  for (n in names(reg)) expect_identical(reg[[n]]$numParameters, unname(defs[n]), info = n)
})

test_that("every .Call() in R/ names a registered entry point with its argument count", {
  dir <- source_dir()
  skip_if(is.null(dir), "the package's source directory (with src/) is not reachable")
  reg <- getDLLRegisteredRoutines("rmsprop")$.Call
  counts <- vapply(reg, function(r) r$numParameters, integer(1))
  found <- 0L
  visit <- function(e, file) {
    if (is.call(e)) {
      if (identical(e[[1]], as.name(".Call"))) {
        target <- deparse(e[[2]])
        found <<- found + 1L
        expect_true(target %in% names(counts), info = sprintf("%s: .Call(%s)", file, target))
        if (target %in% names(counts)) {
          expect_identical(length(e) - 2L, counts[[target]],
                           info = sprintf("%s: .Call(%s, ...)", file, target))
        }
      }
    }
    # Only calls, formals and expressions hold calls; elements are passed on
    # unnamed, since an empty formal (the missing argument) cannot be bound.
    if (is.call(e) || is.pairlist(e) || is.expression(e)) {
      l <- as.list(e)
      for (i in seq_along(l)) {
        if (is.call(l[[i]]) || (is.pairlist(l[[i]]) && !is.null(l[[i]]))) visit(l[[i]], file)
      }
    }
  }
  for (f in list.files(file.path(dir, "R"), pattern = "\\.R$", full.names = TRUE)) {
    visit(parse(f, keep.source = FALSE), basename(f))
  }
  expect_gt(found, 10)
})
