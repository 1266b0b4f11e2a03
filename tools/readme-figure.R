# Renders man/figures/README-loss.png, the figure of README.md's minimize()
# section: plot() of its logistic-regression example (mtcars: am ~ wt + hp,
# an exponentially decaying learning rate), checked against glm().
# Run from the package's source directory; it installs that source into a
# temporary library first, so the figure always shows this tree's plot()
# (needs only R and the compiler the package needs anyway):
#   Rscript tools/readme-figure.R
if (!file.exists("DESCRIPTION") ||
    !identical(unname(read.dcf("DESCRIPTION", fields = "Package")[1, 1]), "rmsprop")) {
  stop("run this from the rmsprop source directory (where DESCRIPTION is)")
}
lib <- tempfile("rmsprop-lib")
dir.create(lib)
status <- system2(file.path(R.home("bin"), "R"),
                  c("CMD", "INSTALL", "--no-test-load", "-l", shQuote(lib), "."),
                  stdout = FALSE, stderr = FALSE)
if (status != 0) stop("R CMD INSTALL of this source tree failed")
library(rmsprop, lib.loc = lib)

x <- cbind(1, scale(as.matrix(mtcars[, c("wt", "hp")])))
colnames(x)[1] <- "(Intercept)"
y <- mtcars$am
nll <- function(b) {
  eta <- drop(x %*% b)
  mean(log1p(exp(eta)) - y * eta)
}
nll_grad <- function(b) drop(crossprod(x, plogis(drop(x %*% b)) - y)) / nrow(x)

opt <- optimizer_rmsprop(
  learning_rate = learning_rate_schedule_exponential_decay(0.05, 500, 0.5)
)
fit <- minimize(c(0, 0, 0), nll, nll_grad, optimizer = opt, steps = 2000)
ref <- coef(glm(am ~ scale(wt) + scale(hp), family = binomial, data = mtcars))
stopifnot(max(abs(fit$par - ref)) < 1e-6)

dir.create(file.path("man", "figures"), recursive = TRUE, showWarnings = FALSE)
grDevices::png(file.path("man", "figures", "README-loss.png"), width = 700, height = 550,
               res = 100)
plot(fit, main = "Logistic regression on mtcars: loss per step")
invisible(grDevices::dev.off())
unlink(lib, recursive = TRUE)
message("wrote man/figures/README-loss.png")
