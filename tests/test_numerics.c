/*
 * test_numerics.c — the numerical core against closed forms and brute force: Cholesky, the precision
 * factor and its log-determinant, log-densities, the backend's responsibilities and sufficient statistics
 * (for block-unaligned n, several k and d), and the M-step against explicitly weighted sums.
 */
#include "check.h"
#include "gmm_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Random symmetric positive definite (d, d): A A^T / d + 0.5 I. */
static void random_spd(gmm_rng *r, size_t d, double *out)
{
    double *a = malloc(d * d * sizeof *a);
    for (size_t i = 0; i < d * d; i++) a[i] = gmm_rng_normal(r);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double s = 0.0;
            for (size_t p = 0; p < d; p++) s += a[i * d + p] * a[j * d + p];
            out[i * d + j] = s / (double)d + (i == j ? 0.5 : 0.0);
        }
    free(a);
}

static gmm_model *random_model(gmm_rng *r, size_t k, size_t d)
{
    double *w = malloc(k * sizeof *w), *mu = malloc(k * d * sizeof *mu), *cov = malloc(k * d * d * sizeof *cov);
    for (size_t c = 0; c < k; c++) {
        w[c] = 0.2 + gmm_rng_uniform(r);
        for (size_t j = 0; j < d; j++) mu[c * d + j] = 3.0 * gmm_rng_normal(r);
        random_spd(r, d, cov + c * d * d);
    }
    gmm_model *m = NULL;
    gmm_status st = gmm_model_from_params(k, d, GMM_COV_FULL, w, mu, cov, &m);
    CHECK(st == GMM_OK);
    free(w);
    free(mu);
    free(cov);
    return m;
}

static void test_cholesky_and_logdet(void)
{
    /* closed form 2 x 2: Sigma = [[4, 2], [2, 3]] -> L = [[2, 0], [1, sqrt 2]], det 8 */
    double a[4] = {4, 2, 2, 3};
    CHECK_INT_EQ(gmm_cholesky_lower(a, 2), 0);
    CHECK_NEAR(a[0], 2.0, 0, 1e-15);
    CHECK_NEAR(a[1], 0.0, 1e-300, 0);
    CHECK_NEAR(a[2], 1.0, 0, 1e-15);
    CHECK_NEAR(a[3], sqrt(2.0), 0, 1e-15);
    double u[4];
    gmm_precision_chol_from_cov_chol(a, u, 2);
    /* U U^T must equal inv(Sigma) = [[3, -2], [-2, 4]] / 8 */
    CHECK_NEAR(u[0] * u[0] + u[1] * u[1], 3.0 / 8, 0, 1e-14);
    CHECK_NEAR(u[0] * u[2] + u[1] * u[3], -2.0 / 8, 0, 1e-14);
    CHECK_NEAR(u[2] * u[2] + u[3] * u[3], 4.0 / 8, 0, 1e-14);
    CHECK_NEAR(u[2], 0.0, 1e-300, 0); /* upper triangular */
    /* not positive definite: the failing minor is reported */
    double b[4] = {1, 2, 2, 1};
    CHECK_INT_EQ(gmm_cholesky_lower(b, 2), 2);
    double c[4] = {-1, 0, 0, 1};
    CHECK_INT_EQ(gmm_cholesky_lower(c, 2), 1);

    /* brute force d = 6: Sigma U U^T = I and log_det_chol = -1/2 log det Sigma */
    gmm_rng r;
    gmm_rng_seed(&r, 11);
    const size_t d = 6;
    double sigma[36], l[36], uu[36];
    random_spd(&r, d, sigma);
    memcpy(l, sigma, sizeof l);
    CHECK_INT_EQ(gmm_cholesky_lower(l, d), 0);
    gmm_precision_chol_from_cov_chol(l, uu, d);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double s = 0.0;
            for (size_t p = 0; p < d; p++) {
                double prec_pj = 0.0; /* (U U^T)[p][j] */
                for (size_t q = 0; q < d; q++) prec_pj += uu[p * d + q] * uu[j * d + q];
                s += sigma[i * d + p] * prec_pj;
            }
            CHECK_NEAR(s, i == j ? 1.0 : 0.0, 1e-12, 0);
        }
    /* det via the product of L's diagonal squared */
    double logdet = 0.0;
    for (size_t i = 0; i < d; i++) logdet += 2.0 * log(l[i * d + i]);
    gmm_model *m = NULL;
    double w = 1.0, mu[6] = {0};
    CHECK(gmm_model_from_params(1, d, GMM_COV_FULL, &w, mu, sigma, &m) == GMM_OK);
    CHECK_NEAR(m->log_det_chol[0], -0.5 * logdet, 1e-13, 1e-13);
    gmm_model_free(m);
}

static void test_log_density(void)
{
    /* 2-D closed form: log N = -log(2 pi) - 1/2 log det - 1/2 q with q = (x-mu)^T Sigma^-1 (x-mu) */
    double w = 1.0, mu[2] = {1.0, -2.0}, cov[4] = {4, 2, 2, 3};
    gmm_model *m = NULL;
    CHECK(gmm_model_from_params(1, 2, GMM_COV_FULL, &w, mu, cov, &m) == GMM_OK);
    double x[2] = {2.5, 0.5};
    double dx0 = x[0] - mu[0], dx1 = x[1] - mu[1];
    double q = (3 * dx0 * dx0 - 4 * dx0 * dx1 + 4 * dx1 * dx1) / 8.0;
    double expect = -log(2 * 3.14159265358979323846) - 0.5 * log(8.0) - 0.5 * q;
    CHECK_NEAR(gmm_log_gauss_point(x, m->means, m->prec_chol, m->log_det_chol[0], 2), expect, 1e-14, 1e-14);
    double lp;
    CHECK(gmm_score_samples(m, x, 1, &lp) == GMM_OK);
    CHECK_NEAR(lp, expect, 1e-14, 1e-14);
    gmm_model_free(m);
}

/* The backend pass against a naive loop: log p per point, responsibilities summing to 1, N_k, S_k, T_k. */
static void test_stats_brute_force(size_t n, size_t k, size_t d, uint64_t seed)
{
    gmm_rng r;
    gmm_rng_seed(&r, seed);
    gmm_model *m = random_model(&r, k, d);
    double *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < n * d; i++) x[i] = 3.0 * gmm_rng_normal(&r) + 100.0 * (double)(i % d == 0);
    for (size_t c = 0; c < k; c++) m->means[c * d] += 100.0; /* far from the origin on feature 0 */

    gmm_backend b;
    CHECK(gmm_backend_cpu_open(&b, x, n, d, 0) == GMM_OK);
    gmm_stats s;
    CHECK(gmm_stats_alloc(&s, k, d) == GMM_OK);
    CHECK(b.stats(&b, m, &s) == GMM_OK);
    double *proba = malloc(n * k * sizeof *proba), *logp = malloc(n * sizeof *logp);
    CHECK(gmm_predict_proba(m, x, n, proba) == GMM_OK);
    CHECK(gmm_score_samples(m, x, n, logp) == GMM_OK);

    double *nk = calloc(k, sizeof *nk), *sk = calloc(k * d, sizeof *sk), *tk = calloc(k * d * d, sizeof *tk);
    double *lw = malloc(k * sizeof *lw);
    long double ll = 0.0L;
    int rows_ok = 1;
    for (size_t i = 0; i < n; i++) {
        double mx = -INFINITY;
        for (size_t c = 0; c < k; c++) {
            lw[c] = log(m->weights[c]) +
                    gmm_log_gauss_point(x + i * d, m->means + c * d, m->prec_chol + c * d * d, m->log_det_chol[c], d);
            if (lw[c] > mx) mx = lw[c];
        }
        double se = 0.0;
        for (size_t c = 0; c < k; c++) se += exp(lw[c] - mx);
        double lse = mx + log(se);
        ll += lse;
        if (!(fabs(logp[i] - lse) <= 1e-12 * (1 + fabs(lse)))) rows_ok = 0;
        double rowsum = 0.0;
        for (size_t c = 0; c < k; c++) {
            double rr = exp(lw[c] - lse);
            rowsum += proba[i * k + c];
            if (!(fabs(proba[i * k + c] - rr) <= 1e-12)) rows_ok = 0;
            nk[c] += rr;
            for (size_t a = 0; a < d; a++) {
                double da = x[i * d + a] - m->means[c * d + a];
                sk[c * d + a] += rr * da;
                for (size_t bb = 0; bb < d; bb++)
                    tk[c * d * d + a * d + bb] += rr * da * (x[i * d + bb] - m->means[c * d + bb]);
            }
        }
        if (!(fabs(rowsum - 1.0) <= 1e-12)) rows_ok = 0;
    }
    CHECK(rows_ok);
    CHECK_NEAR(s.loglik, (double)ll, 1e-9, 1e-12);
    for (size_t c = 0; c < k; c++) {
        CHECK_NEAR(s.nk[c], nk[c], 1e-9, 1e-11);
        for (size_t a = 0; a < d; a++) {
            CHECK_NEAR(s.sk[c * d + a], sk[c * d + a], 1e-8, 1e-10);
            for (size_t bb = 0; bb < d; bb++)
                CHECK_NEAR(s.tk[c * d * d + a * d + bb], tk[c * d * d + a * d + bb], 1e-8, 1e-10);
        }
    }

    /* M-step against explicit weighted means and covariances around the new means */
    gmm_model *m2 = gmm_model_clone(m);
    CHECK(gmm_mstep(m2, &s, n, 1e-6, 0) == GMM_OK);
    double wsum = 0.0;
    for (size_t c = 0; c < k; c++) wsum += nk[c] + 10 * DBL_EPSILON;
    for (size_t c = 0; c < k; c++) {
        double nkc = nk[c] + 10 * DBL_EPSILON;
        CHECK_NEAR(m2->weights[c], nkc / wsum, 1e-14, 1e-10);
        double mu[16] = {0};
        for (size_t i = 0; i < n; i++)
            for (size_t a = 0; a < d; a++) mu[a] += proba[i * k + c] * x[i * d + a];
        for (size_t a = 0; a < d; a++) {
            mu[a] /= nkc;
            CHECK_NEAR(m2->means[c * d + a], mu[a], 1e-9, 1e-10);
        }
        for (size_t a = 0; a < d; a++)
            for (size_t bb = 0; bb < d; bb++) {
                double v = 0.0;
                for (size_t i = 0; i < n; i++)
                    v += proba[i * k + c] * (x[i * d + a] - mu[a]) * (x[i * d + bb] - mu[bb]);
                v = v / nkc + (a == bb ? 1e-6 : 0.0);
                CHECK_NEAR(m2->covariances[c * d * d + a * d + bb], v, 1e-9, 1e-8);
            }
    }
    gmm_model_free(m2);
    free(nk);
    free(sk);
    free(tk);
    free(lw);
    free(proba);
    free(logp);
    gmm_stats_free(&s);
    b.release(&b);
    free(x);
    gmm_model_free(m);
}

int main(void)
{
    test_cholesky_and_logdet();
    test_log_density();
    /* n not a multiple of the block (64) or the chunk (4096); n < one block; several k and d */
    test_stats_brute_force(1, 1, 1, 1);
    test_stats_brute_force(37, 3, 2, 2);
    test_stats_brute_force(1000, 4, 2, 3);
    test_stats_brute_force(9001, 5, 3, 4);
    test_stats_brute_force(777, 17, 8, 5);
    test_stats_brute_force(300, 2, 16, 6);
    return check_exit();
}
