# Renders man/figures/README-loss.png, the loss curve shown in README.md.
# Run from the package root after installing the package:
#   Rscript tools/readme-figure.R
# It repeats the README's logistic-regression example (mtcars: am ~ wt + hp).
library(rmsprop)

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
grDevices::png(file.path("man", "figures", "README-loss.png"), width = 700, height = 500,
               res = 100)
plot(fit, main = "Logistic regression on mtcars: loss per step")
grDevices::dev.off()
message("wrote man/figures/README-loss.png")
