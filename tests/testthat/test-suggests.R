# In CI (RMSPROP_REQUIRE_SUGGESTS=true, set by .ci/run) every suggested
# package the tests use must be installed, so that no test of automatic
# differentiation, engines or interrupts is skipped for lack of it.

test_that("CI has every suggested package the tests need", {
  skip_if_not(identical(Sys.getenv("RMSPROP_REQUIRE_SUGGESTS"), "true"),
              "only checked in CI (RMSPROP_REQUIRE_SUGGESTS=true)")
  for (p in c("RTMB", "mirai", "future", "globals", "callr", "withr", "processx")) {
    expect_true(requireNamespace(p, quietly = TRUE), info = p)
  }
})
