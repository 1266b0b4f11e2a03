# Issue 13, item 1: the matching rules live once in R (structure_problem(),
# R/structure.R) and once in C (src/structure.c). Every lenient and every
# strict case goes through both, and both must give the same verdict: the
# same kind of problem (or none), in the same argument, at the same path.

m23 <- matrix(1, 2, 3)
rule_cases <- list(
  # variables (strict)
  list("same vector", built = c(1, 2), vars = c(1, 2), verdict = NULL),
  list("vector names ignored", built = c(x = 1, y = 2), vars = c(a = 3, b = 4), verdict = NULL),
  list("dimnames ignored", built = m23, vars = structure(m23, dimnames = list(c("a", "b"), NULL)),
       verdict = NULL),
  list("integer and logical leaves", built = list(1:2, c(TRUE, FALSE)), vars = list(c(1, 2), c(0, 1)),
       verdict = NULL),
  list("other length", built = c(1, 2), vars = c(1, 2, 3), verdict = "length"),
  list("dim dropped", built = m23, vars = c(m23), verdict = "dim"),
  list("dim added", built = 1:6, vars = m23, verdict = "dim"),
  list("dim transposed", built = m23, vars = t(m23), verdict = "dim"),
  list("list names differ", built = list(a = 1, b = 2), vars = list(a = 1, c = 2), verdict = "names"),
  list("list names dropped", built = list(a = 1, b = 2), vars = list(1, 2), verdict = "names"),
  list("list names added", built = list(1, 2), vars = list(a = 1, b = 2), verdict = "names"),
  list("list length", built = list(a = 1, b = 2), vars = list(a = 1), verdict = "list_length"),
  list("array for a list", built = list(a = 1, b = 2), vars = c(1, 2), verdict = "not_list"),
  list("list for an array", built = list(a = c(1, 2)), vars = list(a = list(1, 2)), verdict = "not_leaf"),
  list("character leaf", built = list(a = c(1, 2)), vars = list(a = c("x", "y")), verdict = "type"),
  list("factor leaf", built = list(a = c(1, 2)), vars = list(a = factor(c("x", "y"))), verdict = "type"),
  list("deep difference", built = list(l = list(m = list(w = m23, b = c(1, 2)))),
       vars = list(l = list(m = list(w = m23, b = c(1, 2, 3)))), verdict = "length"),
  # gradients (lenient where the rules say so)
  list("unnamed gradient list", built = list(a = 1, b = c(1, 2)), grads = list(1, c(1, 2)),
       verdict = NULL),
  list("NULL gradient", built = list(a = 1, b = c(1, 2)), grads = list(a = NULL, b = c(1, 2)),
       verdict = NULL),
  list("NULL sub-list", built = list(a = list(x = 1, y = 2), b = 3), grads = list(a = NULL, b = 1),
       verdict = NULL),
  list("gradient without dim", built = m23, grads = c(m23), verdict = NULL),
  list("one-column gradient", built = c(1, 2, 3), grads = matrix(1, 3, 1), verdict = NULL),
  list("one-row gradient", built = c(1, 2, 3), grads = matrix(1, 1, 3), verdict = NULL),
  list("1-d array gradient", built = c(1, 2, 3), grads = array(1, 3), verdict = NULL),
  list("gradient names ignored", built = c(x = 1, y = 2), grads = c(a = 1, b = 2), verdict = NULL),
  list("matrix gradient for a vector", built = 1:6, grads = m23, verdict = "dim"),
  list("transposed gradient", built = m23, grads = t(m23), verdict = "dim"),
  list("gradient names differ", built = list(a = 1, b = 2), grads = list(a = 1, c = 2),
       verdict = "names", in_grads = TRUE),
  list("gradient list length", built = list(a = 1, b = 2), grads = list(1, 2, 3),
       verdict = "list_length", in_grads = TRUE),
  list("gradient length", built = list(a = c(1, 2)), grads = list(a = 1), verdict = "length",
       in_grads = TRUE),
  list("gradient list for an array", built = list(a = c(1, 2)), grads = list(a = list(1, 1)),
       verdict = "not_leaf", in_grads = TRUE),
  list("array gradient for a list", built = list(a = list(x = 1)), grads = list(a = 1),
       verdict = "not_list", in_grads = TRUE),
  list("character gradient", built = c(1, 2), grads = c("a", "b"), verdict = "type", in_grads = TRUE)
)

# The C verdict: variables through C_check_structure, gradients through one
# C_step (on a throwaway optimizer).
c_verdict <- function(built, vars = NULL, grads = NULL) {
  opt <- optimizer_rmsprop()
  opt$build(built)
  p <- private_of(opt)
  if (is.null(grads)) {
    return(.Call(C_check_structure, p$ptr, vars, p$skeleton))
  }
  res <- .Call(C_step, p$ptr, grads, built, p$skeleton, 0.001, 2L, 0)
  if (inherits(res, "rmsprop_signal")) res else NULL
}

r_verdict <- function(built, vars = NULL, grads = NULL) {
  sk <- make_skeleton(built)$skeleton
  if (is.null(grads)) structure_problem(sk, vars) else structure_problem(sk, grads, grads = TRUE)
}

test_that("R and C give the same verdict on every matching rule", {
  for (case in rule_cases) {
    label <- case[[1L]]
    c_v <- c_verdict(case$built, case$vars, case$grads)
    r_v <- r_verdict(case$built, case$vars, case$grads)
    expect_identical(c_v$kind, case$verdict, label = paste(label, "(C)"))
    expect_identical(r_v$kind, case$verdict, label = paste(label, "(R)"))
    if (!is.null(case$verdict)) {
      expect_identical(c_v$in_grads, !is.null(case$grads), label = paste(label, "in_grads (C)"))
      expect_identical(r_v$in_grads, c_v$in_grads, label = paste(label, "in_grads (R)"))
      expect_identical(problem_path(r_v), problem_path(c_v), label = paste(label, "path"))
      expect_identical(r_v$index, c_v$index, label = paste(label, "index"))
    }
  }
})

test_that("lenient cases step, strict ones are classed errors that name the path", {
  for (case in rule_cases) {
    label <- case[[1L]]
    opt <- optimizer_rmsprop(learning_rate = 0.1)
    opt$build(case$built)
    vars <- if (is.null(case$vars)) case$built else case$vars
    grads <- if (is.null(case$grads)) rapply(list(case$built), function(x) x * 0 + 1, how = "replace")[[1L]] else case$grads
    if (is.null(case$verdict)) {
      res <- suppressWarnings(opt$step(grads, vars))
      expect_identical(names(res), names(vars), label = label)
    } else {
      before <- opt$variables
      err <- expect_error(opt$step(grads, vars), class = "rmsprop_error", label = label)
      expect_identical(opt$variables, before, label = label)
    }
  }
})

test_that("a structure error says where and what differs, without walking again", {
  opt <- optimizer_rmsprop()
  opt$build(list(layer = list(w = m23, b = c(1, 2))))
  err <- expect_error(opt$step(list(layer = list(w = m23, b = c(1, 2, 3))),
                               list(layer = list(w = m23, b = c(1, 2)))),
                      class = "rmsprop_error_structure")
  expect_match(conditionMessage(err), "at \"layer/b\" the variables are length 2, but `grads` has length 3",
               fixed = TRUE)
  expect_identical(err$path, "layer/b")
  err <- expect_error(opt$step(list(layer = list(w = m23, b = c(1, 2))),
                               list(layer = list(w = t(m23), b = c(1, 2)))),
                      class = "rmsprop_error_structure")
  expect_match(conditionMessage(err), "at \"layer/w\" the optimizer was built on dim c(2, 3), but `variables` has dim c(3, 2)",
               fixed = TRUE)
  err <- expect_error(opt$step(list(layer = list(b = m23, w = c(1, 2))),
                               list(layer = list(w = m23, b = c(1, 2)))),
                      class = "rmsprop_error_structure")
  expect_identical(conditionMessage(err), paste0(
    "at \"layer\" the names differ: the variables have (\"w\", \"b\"), `grads` has (\"b\", \"w\")."))
  # An unnamed gradient list is fine: it matches by position.
  expect_silent(opt$step(list(list(m23, c(1, 2))), list(layer = list(w = m23, b = c(1, 2)))))
})
