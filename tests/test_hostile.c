/*
 * test_hostile.c — degenerate and hostile data, each with its documented outcome (README, "Degenerate
 * data"): a regularized model whose every number is finite, or an error that names the component and
 * suggests reg_covar, fewer components or scaling. Never a NaN.
 */
#include "check.h"
#include "gmm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gmm_covariance_type TYPES[4] = {GMM_COV_FULL, GMM_COV_TIED, GMM_COV_DIAG, GMM_COV_SPHERICAL};

/* Every parameter and trace entry of m is finite, weights sum to 1, and predict gives finite output. */
static int model_finite(const gmm_model *m, const double *x, size_t n)
{
    size_t k = m->k, d = m->d;
    double ws = 0;
    for (size_t i = 0; i < k; i++) {
        if (!isfinite(m->weights[i])) return 0;
        ws += m->weights[i];
    }
    if (!(fabs(ws - 1.0) <= 1e-12)) return 0;
    for (size_t i = 0; i < k * d; i++)
        if (!isfinite(m->means[i])) return 0;
    for (size_t i = 0; i < k * d * d; i++)
        if (!isfinite(m->covariances[i]) || !isfinite(m->prec_chol[i])) return 0;
    for (int i = 0; i < m->n_iter; i++)
        if (!isfinite(m->loglik_trace[i])) return 0;
    double *lp = malloc(n * sizeof *lp);
    int ok = gmm_score_samples(m, x, n, lp) == GMM_OK;
    for (size_t i = 0; ok && i < n; i++) ok = isfinite(lp[i]);
    free(lp);
    return ok;
}

static double *normal_data(size_t n, size_t d, uint64_t seed)
{
    gmm_rng r;
    gmm_rng_seed(&r, seed);
    double *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < n * d; i++) x[i] = gmm_rng_normal(&r) + (i % d == 0 && (i / d) % 2 ? 5.0 : 0.0);
    return x;
}

static gmm_status fit(const double *x, size_t n, size_t d, int k, gmm_covariance_type t, double reg,
                      gmm_model **m)
{
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = k;
    o.covariance_type = t;
    o.reg_covar = reg;
    o.seed = 11;
    *m = NULL;
    return gmm_fit(x, n, d, &o, m);
}

/* Each point repeated 4 times: a normal fit (duplicates are just weight). */
static void test_duplicated_points(void)
{
    const size_t base = 200, d = 2, n = 4 * base;
    double *b = normal_data(base, d, 1), *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < n; i++) memcpy(x + i * d, b + (i % base) * d, d * sizeof *x);
    for (int t = 0; t < 4; t++) {
        gmm_model *m;
        CHECK(fit(x, n, d, 2, TYPES[t], 1e-6, &m) == GMM_OK);
        if (m) CHECK(model_finite(m, x, n));
        gmm_model_free(m);
    }
    free(b);
    free(x);
}

/* Only 3 distinct points, k = 5: components land on the same points; reg_covar keeps them finite and the
 * fit either returns a finite model or stops with a clear error naming the component. */
static void test_more_components_than_distinct_points(void)
{
    const size_t n = 30, d = 2;
    double x[60];
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = (double)(i % 3);
        x[2 * i + 1] = (double)((i % 3) * (i % 3));
    }
    for (int t = 0; t < 4; t++) {
        gmm_model *m;
        gmm_status st = fit(x, n, d, 5, TYPES[t], 1e-6, &m);
        if (st == GMM_OK) {
            CHECK(model_finite(m, x, n));
        } else {
            CHECK(st == GMM_ERR_COLLAPSED || st == GMM_ERR_NOT_PD);
            CHECK_STR_CONTAINS(gmm_last_error(), "component ");
            fprintf(stderr, "note: 3 distinct points, k = 5, %s: %s\n", gmm_covariance_name(TYPES[t]), gmm_last_error());
        }
        gmm_model_free(m);
        /* with reg_covar = 0 the one-point components are singular: an error naming the component */
        st = fit(x, n, d, 5, TYPES[t], 0.0, &m);
        CHECK(st == GMM_ERR_NOT_PD || st == GMM_ERR_COLLAPSED);
        CHECK_STR_CONTAINS(gmm_last_error(), "component ");
        CHECK(m == NULL);
        gmm_model_free(m);
    }
}

/* A constant column: its variance is exactly reg_covar; everything stays finite. reg_covar = 0: error. */
static void test_constant_column(void)
{
    const size_t n = 500, d = 3;
    double *x = normal_data(n, d, 2);
    for (size_t i = 0; i < n; i++) x[i * d + 1] = 7.0;
    for (int t = 0; t < 4; t++) {
        gmm_model *m;
        CHECK(fit(x, n, d, 2, TYPES[t], 1e-6, &m) == GMM_OK);
        if (m) {
            CHECK(model_finite(m, x, n));
            if (TYPES[t] != GMM_COV_SPHERICAL) /* spherical shares one variance across features */
                CHECK_NEAR(m->covariances[1 * d + 1], 1e-6, 0, 1e-6);
        }
        gmm_model_free(m);
    }
    gmm_model *m;
    CHECK(fit(x, n, d, 2, GMM_COV_FULL, 0.0, &m) == GMM_ERR_NOT_PD);
    CHECK_STR_CONTAINS(gmm_last_error(), "covariance is not positive definite");
    CHECK_STR_CONTAINS(gmm_last_error(), "reg_covar");
    CHECK_STR_CONTAINS(gmm_last_error(), "scale the data");
    free(x);
}

/* One column 1e6 times another, and data offset by 1e6: the variances are kept. */
static void test_scales_and_offsets(void)
{
    const size_t n = 20000, d = 2;
    double *x = normal_data(n, d, 3);
    /* single Gaussian, unit variance: offset by 1e6 (and by 1e8) keeps the variance to 1e-3 */
    for (size_t i = 0; i < n; i++) x[i * d] = x[i * d + 1];
    for (size_t i = 0; i < n; i++) x[i * d] = 0.5 * x[i * d] + 0.1 * (double)(i % 7);
    double var0 = 0, var1 = 0, mean0 = 0, mean1 = 0;
    for (size_t i = 0; i < n; i++) {
        mean0 += x[i * d];
        mean1 += x[i * d + 1];
    }
    mean0 /= (double)n;
    mean1 /= (double)n;
    for (size_t i = 0; i < n; i++) {
        var0 += (x[i * d] - mean0) * (x[i * d] - mean0);
        var1 += (x[i * d + 1] - mean1) * (x[i * d + 1] - mean1);
    }
    var0 /= (double)n;
    var1 /= (double)n;
    double offsets[3] = {0.0, 1e6, 1e8};
    for (int o = 0; o < 3; o++) {
        double *y = malloc(n * d * sizeof *y);
        for (size_t i = 0; i < n * d; i++) y[i] = x[i] + offsets[o];
        gmm_model *m;
        CHECK(fit(y, n, d, 1, GMM_COV_FULL, 0.0, &m) == GMM_OK);
        if (m) {
            CHECK_NEAR(m->covariances[0], var0, 0, 1e-3);
            CHECK_NEAR(m->covariances[3], var1, 0, 1e-3);
            CHECK_NEAR(m->means[1], mean1 + offsets[o], 1e-9 * (1 + offsets[o]), 0);
        }
        gmm_model_free(m);
        free(y);
    }
    /* feature 1 scaled by 1e6: each variance is recovered relative to its own scale */
    double *z = malloc(n * d * sizeof *z);
    for (size_t i = 0; i < n; i++) {
        z[i * d] = x[i * d];
        z[i * d + 1] = 1e6 * x[i * d + 1];
    }
    for (int t = 0; t < 4; t++) {
        gmm_model *m;
        CHECK(fit(z, n, d, 2, TYPES[t], 1e-6, &m) == GMM_OK);
        if (m) CHECK(model_finite(m, z, n));
        gmm_model_free(m);
    }
    gmm_model *m;
    CHECK(fit(z, n, d, 1, GMM_COV_DIAG, 1e-6, &m) == GMM_OK);
    if (m) {
        CHECK_NEAR(m->covariances[0], var0, 0, 1e-3);
        CHECK_NEAR(m->covariances[3], 1e12 * var1, 0, 1e-3);
    }
    gmm_model_free(m);
    free(z);
    free(x);
}

int main(void)
{
    test_duplicated_points();
    test_more_components_than_distinct_points();
    test_constant_column();
    test_scales_and_offsets();
    return check_exit();
}
