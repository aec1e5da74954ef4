/*
 * linalg.c — the small dense linear algebra of the M-step and of model set-up: Cholesky factorization and
 * the upper-triangular precision factor U = L^{-T} (scikit-learn's precisions_cholesky_), sizes d x d with d
 * small (1..a few hundred); and the squared distance of the CPU backend's k-means passes.
 */
#include "gmm_internal.h"

#include <math.h>
#include <string.h>

int gmm_cholesky_lower(double *a, size_t d)
{
    for (size_t j = 0; j < d; j++) {
        double diag = a[j * d + j];
        for (size_t p = 0; p < j; p++) diag -= a[j * d + p] * a[j * d + p];
        if (!(diag > 0.0) || !isfinite(diag)) return (int)j + 1;
        double ljj = sqrt(diag);
        a[j * d + j] = ljj;
        for (size_t i = j + 1; i < d; i++) {
            double v = a[i * d + j];
            for (size_t p = 0; p < j; p++) v -= a[i * d + p] * a[j * d + p];
            a[i * d + j] = v / ljj;
        }
        for (size_t i = 0; i < j; i++) a[i * d + j] = 0.0; /* zero the strict upper part of column j */
    }
    return 0;
}

void gmm_precision_chol_from_cov_chol(const double *l, double *u, size_t d)
{
    /* Solve L W = I for W = L^{-1} (lower triangular) by forward substitution, then U = W^T. */
    memset(u, 0, d * d * sizeof *u);
    for (size_t c = 0; c < d; c++) { /* column c of W */
        for (size_t i = c; i < d; i++) {
            double v = (i == c) ? 1.0 : 0.0;
            for (size_t p = c; p < i; p++) v -= l[i * d + p] * u[c * d + p]; /* W[p][c] stored at u[c][p] */
            u[c * d + i] = v / l[i * d + i];                                 /* U[c][i] = W[i][c] */
        }
    }
}

double gmm_sqdist(const double *a, const double *b, size_t d)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++) {
        double t = a[j] - b[j];
        s += t * t;
    }
    return s;
}
