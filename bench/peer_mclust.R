# peer_mclust.R — times R mclust's EM (me(): M-step then E-step per iteration, Fortran, one thread) for
# bench_peers.py. Reads the data and the initial model's means as raw float64 files, starts from
# responsibilities that put each point on its nearest initial mean, runs at most R iterations with the
# log-likelihood tolerance 0, and prints one line:
#   seconds S iterations I loglik L
# S: wall time of me(); I: the iterations it ran (attr "info"); L: mclust's final log-likelihood (total).
# Models: VVI (diagonal covariances varying by component) for diag, VVV for full.
#
# Usage: Rscript peer_mclust.R DATA.bin N D K R INIT.bin diag|full
#   DATA.bin: N x D doubles, row-major; INIT.bin: K x D means first (the rest is ignored).
suppressPackageStartupMessages(library(mclust))
a <- commandArgs(trailingOnly = TRUE)
n <- as.integer(a[2]); d <- as.integer(a[3]); k <- as.integer(a[4]); iters <- as.integer(a[5])
model <- if (a[7] == "diag") "VVI" else "VVV"
x <- matrix(readBin(a[1], "double", n * d), nrow = n, ncol = d, byrow = TRUE)
mu <- matrix(readBin(a[6], "double", k * d), nrow = k, ncol = d, byrow = TRUE)
# nearest initial mean: |x|^2 - 2 x.mu + |mu|^2, the |x|^2 term left out
dist <- -2 * x %*% t(mu) + matrix(rowSums(mu^2), n, k, byrow = TRUE)
z <- matrix(0, n, k)
z[cbind(seq_len(n), max.col(-dist, ties.method = "first"))] <- 1
t0 <- proc.time()[["elapsed"]]
fit <- me(modelName = model, data = x, z = z, control = emControl(itmax = iters, tol = c(0, sqrt(.Machine$double.eps))),
          warn = FALSE)
t1 <- proc.time()[["elapsed"]]
info <- attr(fit, "info")
cat(sprintf("seconds %.6f iterations %d loglik %.17g\n", t1 - t0, abs(as.integer(info[["iterations"]])), fit$loglik))
