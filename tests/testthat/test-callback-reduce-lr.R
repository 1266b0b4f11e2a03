# callback_reduce_lr_on_plateau() against a plain-R version of keras' rule.

test_that("reduce_lr_on_plateau follows keras' rule, step for step", {
  settings <- list(
    list(monitor = "loss", factor = 0.5, patience = 1, min_delta = 0.5),
    list(monitor = "val_loss", factor = 0.2, patience = 2, cooldown = 2, min_lr = 0.01),
    list(monitor = "val_loss", factor = 0.5, patience = 0, min_delta = 0, mode = "max")
  )
  for (s in settings) {
    set.seed(31)
    fit <- minimize(rep(0, 4), cb_fn, cb_gr, data = cb_train, validation_data = cb_valid,
                    batch_size = 5, epochs = 25, progress = FALSE,
                    optimizer = optimizer_rmsprop(0.3, momentum = 0.3),
                    callbacks = list(do.call(callback_reduce_lr_on_plateau, s)))
    # the hand loop
    d <- list(monitor = "val_loss", factor = 0.1, patience = 10, mode = "auto",
              min_delta = 1e-4, cooldown = 0, min_lr = 0)
    d[names(s)] <- s
    maximize <- d$mode == "max"
    opt <- optimizer_rmsprop(0.3, momentum = 0.3)
    b <- rep(0, 4)
    best <- if (maximize) -Inf else Inf
    wait <- 0
    cooldown <- 0
    lrs <- numeric(0)
    set.seed(31)
    for (e in 1:25) {
      order <- sample.int(24)
      losses <- numeric(0)
      for (k in 1:5) {
        rows <- cb_train[order[((k - 1) * 5 + 1):min(k * 5, 24)], ]
        losses <- c(losses, cb_fn(b, rows))
        lrs <- c(lrs, opt$learning_rate)
        b <- opt$step(cb_gr(b, rows), b)
      }
      current <- if (d$monitor == "loss") mean(losses) else cb_fn(b, cb_valid)
      if (cooldown > 0) {
        cooldown <- cooldown - 1
        wait <- 0
      }
      improved <- if (maximize) current > best + d$min_delta else current < best - d$min_delta
      if (improved) {
        best <- current
        wait <- 0
      } else if (cooldown == 0) {
        wait <- wait + 1
        if (wait >= d$patience && opt$learning_rate > d$min_lr) {
          opt$learning_rate <- max(opt$learning_rate * d$factor, d$min_lr)
          cooldown <- d$cooldown
          wait <- 0
        }
      }
    }
    expect_identical(fit$par, b)
    expect_identical(fit$history$learning_rate, lrs)
    expect_gt(length(unique(lrs)), 1L)
    expect_identical(fit$optimizer$learning_rate, opt$learning_rate)
  }
})

