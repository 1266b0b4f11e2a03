# Forked children after threaded steps (SPEC B): once the parent has run a
# step on OpenMP threads, GNU OpenMP's thread pool is part of the process
# image that fork() copies, but its threads are not, so a child that enters
# a parallel region waits for them for ever. src/kernels.c registers a
# pthread_atfork() child handler that puts forked children on one thread
# (tools/HARDENING.md). Here: the parent steps with 2 threads on 2^21 values
# (above the size where threads are used), children made by
# parallel::mclapply() and by future::plan(multicore) continue the optimizer,
# and their results must be identical to the parent's own continuation on a
# clone; the parent keeps its 2 threads.
#
# A hang must fail, not hang the suite: each scenario runs in a job forked
# with parallel::mcparallel() and collected with a timeout. The children
# write their pids first, so on a timeout the job and its children are
# killed.

skip_on_os("windows")   # no fork()

fork_n <- 2^21

# Runs fun(pid_dir) in a forked job; its result, or the string "timeout"
# (everything killed) after `timeout` seconds.
run_with_watchdog <- function(fun, timeout = 30) {
  pid_dir <- tempfile("rmsprop-fork-pids")
  dir.create(pid_dir)
  on.exit(unlink(pid_dir, recursive = TRUE), add = TRUE)
  job <- parallel::mcparallel(fun(pid_dir), silent = TRUE)
  res <- parallel::mccollect(job, wait = FALSE, timeout = timeout)
  if (is.null(res)) {
    pids <- unlist(lapply(list.files(pid_dir, full.names = TRUE), readLines))
    tools::pskill(c(as.integer(pids), job$pid), tools::SIGKILL)
    suppressWarnings(parallel::mccollect(job, wait = TRUE))   # reap the job
    return("timeout")
  }
  res[[1L]]
}

# The parent's side: 2 threads, one threaded step, then the reference
# continuation on a clone. Returns what the children need (they inherit it
# through fork()).
fork_setup <- function() {
  i <- seq_len(fork_n)
  x <- sin(i * 0.001)
  grads <- list(cos(i * 0.002), sin(i * 0.003) + 0.5, cos(i * 0.004) - 0.25)
  opt <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9)
  x1 <- opt$step(grads[[1]], x)
  ref <- opt$clone()
  ref_vars <- ref$step(grads[[3]], ref$step(grads[[2]], x1))
  list(opt = opt, x1 = x1, grads = grads, ref_vars = ref_vars, ref_state = ref$variables)
}

# What each child does: note its pid, continue two steps, report.
fork_child <- function(s, pid_dir, i) {
  writeLines(as.character(Sys.getpid()), file.path(pid_dir, paste0("child-", i)))
  v <- s$opt$step(s$grads[[3]], s$opt$step(s$grads[[2]], s$x1))
  list(pid = Sys.getpid(), threads = rmsprop_kernel_info()$threads, vars = v,
       same_state = identical(s$opt$variables, s$ref_state),
       iterations = s$opt$iterations)
}

check_children <- function(res, s, label) {
  expect(!identical(res, "timeout"),
         sprintf("%s: the forked children did not finish within the timeout (a hang)", label))
  if (identical(res, "timeout")) return(invisible())
  expect_false(inherits(res, "try-error"), label = label)
  expect_length(res, 2L)
  pids <- vapply(res, function(r) r$pid, integer(1))
  expect_true(all(pids != Sys.getpid()) && !anyDuplicated(pids),
              label = paste(label, "ran in forked children"))
  for (r in res) {
    expect_identical(r$threads, 1L)
    expect_true(identical(r$vars, s$ref_vars), label = paste(label, "child's variables"))
    expect_true(r$same_state, label = paste(label, "child's state"))
    expect_identical(r$iterations, 3)
  }
}

check_parent_after <- function(s) {
  expect_identical(rmsprop_kernel_info()$threads, 2L)
  # The parent's optimizer was not moved by its children, and it still steps
  # (on its threads) to the same result.
  expect_identical(s$opt$iterations, 1)
  v <- s$opt$step(s$grads[[3]], s$opt$step(s$grads[[2]], s$x1))
  expect_true(identical(v, s$ref_vars))
  expect_true(identical(s$opt$variables, s$ref_state))
}

with_two_threads <- function(code) {
  rmsprop_set_threads(2)
  on.exit(rmsprop_set_threads(0))
  skip_if(rmsprop_kernel_info()$threads < 2L, "2 OpenMP threads are not available")
  code
}

test_that("children of parallel::mclapply() step after threaded steps in the parent", {
  with_two_threads({
    s <- fork_setup()
    res <- run_with_watchdog(function(pid_dir) {
      parallel::mclapply(1:2, function(i) fork_child(s, pid_dir, i), mc.cores = 2)
    })
    check_children(res, s, "mclapply")
    check_parent_after(s)
  })
})

test_that("future::plan(multicore) workers step after threaded steps in the parent", {
  skip_if_not_installed("future")
  skip_if_not(future::supportsMulticore(), "multicore futures are not supported here")
  with_two_threads({
    s <- fork_setup()
    res <- run_with_watchdog(function(pid_dir) {
      options(future.globals.maxSize = Inf)
      future::plan(future::multicore, workers = 2)
      fs <- lapply(1:2, function(i) future::future(fork_child(s, pid_dir, i), seed = NULL))
      future::value(fs)
    })
    check_children(res, s, "future multicore")
    check_parent_after(s)
  })
})

test_that("a forked child reports and uses one thread; the parent keeps its setting", {
  with_two_threads({
    res <- run_with_watchdog(function(pid_dir) rmsprop_kernel_info()$threads)
    expect_identical(res, 1L)
    expect_identical(rmsprop_kernel_info()$threads, 2L)
  })
})
