# Variable paths are unambiguous (issue 23): "/" separates the levels of a
# path, so a list name holding "/" is refused when the optimizer is built
# (list(a = list(b = 1)) and list(`a/b` = 1) would both be "a/b", and
# exclude_from_weight_decay("a/b") would silently match either).

test_that("a list name containing \"/\" is refused at build with a classed error naming it", {
  for (v in list(list(`a/b` = 1), list(a = list(`x/` = c(1, 2))), list(ok = 1, list(`/` = 2)))) {
    opt <- optimizer_rmsprop(weight_decay = 0.1)
    g <- rapply(v, function(x) x * 0 + 1, how = "replace")
    err <- expect_error(opt$step(g, v), class = "rmsprop_error_structure")
    expect_match(conditionMessage(err), "cannot contain it")
    expect_error(opt$build(v), class = "rmsprop_error_structure")
    expect_null(rmsprop:::private_of(opt)$skeleton)
    expect_identical(opt$iterations, 0)
  }
})

test_that("exclude_from_weight_decay(\"a/b\") means the nested variable only", {
  opt <- optimizer_rmsprop(learning_rate = 0.1, weight_decay = 0.5)
  opt$exclude_from_weight_decay(var_list = "a/b")
  v <- list(a = list(b = 1, c = 1))
  out <- opt$step(list(a = list(b = 0, c = 0)), v)
  # Excluded: no decay; the other decays by lr * weight_decay.
  expect_identical(out$a$b, 1)
  expect_equal(out$a$c, 1 - 1 * 0.5 * 0.1, tolerance = 1e-15)
  expect_identical(names(opt$variables)[3:4], c("rmsprop/a/b_velocity", "rmsprop/a/c_velocity"))
  # The element the pattern could also have meant cannot be built.
  opt2 <- optimizer_rmsprop(learning_rate = 0.1, weight_decay = 0.5)
  opt2$exclude_from_weight_decay(var_list = "a/b")
  expect_error(opt2$step(list(`a/b` = 0), list(`a/b` = 1)), class = "rmsprop_error_structure")
})

test_that("names with other punctuation still work and appear as given", {
  opt <- optimizer_rmsprop(learning_rate = 0.1)
  v <- list(`a.b` = 1, `c d` = 2, `e\\f` = 3, `%` = 4)
  out <- opt$step(lapply(v, function(x) 1), v)
  expect_identical(names(out), names(v))
  expect_identical(names(opt$variables)[-(1:2)],
                   paste0("rmsprop/", names(v), "_velocity"))
})
