/*
 * test_covtypes.c — scikit-learn's four covariance types: the M-step of each against its formula computed
 * by brute force from explicit responsibilities, the free-parameter counts for BIC/AIC, monotone EM with
 * reg_covar = 0 for each type, and user initial parameters (weights_init, means_init, precisions_init in
 * the type's shape) entering the first iteration exactly.
 */
#include "check.h"
#include "gmm_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gmm_covariance_type TYPES[4] = {GMM_COV_FULL, GMM_COV_TIED, GMM_COV_DIAG, GMM_COV_SPHERICAL};

/* n points in d dimensions from k blobs with correlated spreads. */
static double *blobs(size_t n, size_t d, size_t k, uint64_t seed)
{
    gmm_rng r;
    gmm_rng_seed(&r, seed);
    double *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        size_t c = i % k;
        double z0 = gmm_rng_normal(&r);
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = 4.0 * (double)c * (j == c % d ? 1.0 : 0.3) + (0.5 + 0.2 * (double)j) * gmm_rng_normal(&r) +
                           0.4 * z0;
    }
    return x;
}

/* The type's covariance estimate by brute force, scikit-learn's formulas, as full (k, d, d). */
static void brute_force_mstep(const double *x, size_t n, size_t d, size_t k, const double *resp,
                              gmm_covariance_type t, double reg, double *w, double *mu, double *cov)
{
    double *nk = calloc(k, sizeof *nk);
    for (size_t c = 0; c < k; c++) {
        for (size_t i = 0; i < n; i++) nk[c] += resp[i * k + c];
        nk[c] += 10 * DBL_EPSILON;
        for (size_t j = 0; j < d; j++) {
            double s = 0;
            for (size_t i = 0; i < n; i++) s += resp[i * k + c] * x[i * d + j];
            mu[c * d + j] = s / nk[c];
        }
    }
    double nsum = 0;
    for (size_t c = 0; c < k; c++) nsum += nk[c];
    for (size_t c = 0; c < k; c++) w[c] = nk[c] / nsum;
    double *full = calloc(k * d * d, sizeof *full);
    for (size_t c = 0; c < k; c++)
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++) {
                double s = 0;
                for (size_t i = 0; i < n; i++)
                    s += resp[i * k + c] * (x[i * d + a] - mu[c * d + a]) * (x[i * d + b] - mu[c * d + b]);
                full[c * d * d + a * d + b] = s / nk[c];
            }
    memset(cov, 0, k * d * d * sizeof *cov);
    for (size_t c = 0; c < k; c++)
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++) {
                double v = 0;
                switch (t) {
                case GMM_COV_FULL: v = full[c * d * d + a * d + b]; break;
                case GMM_COV_TIED:
                    for (size_t q = 0; q < k; q++) v += nk[q] * full[q * d * d + a * d + b];
                    v /= nsum;
                    break;
                case GMM_COV_DIAG: v = a == b ? full[c * d * d + a * d + a] : 0; break;
                case GMM_COV_SPHERICAL:
                    if (a == b) {
                        for (size_t q = 0; q < d; q++) v += full[c * d * d + q * d + q];
                        v /= (double)d;
                    }
                    break;
                }
                cov[c * d * d + a * d + b] = v + (a == b ? reg : 0);
            }
    free(full);
    free(nk);
}

static void test_mstep_formulas(void)
{
    const size_t n = 1500, d = 3, k = 3;
    double *x = blobs(n, d, k, 1);
    /* a starting model and its responsibilities */
    double w0[3] = {0.3, 0.3, 0.4}, mu0[9] = {0, 0, 0, 4, 1, 1, 8, 2, 2}, cov0[27];
    for (size_t c = 0; c < k; c++)
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++) cov0[c * 9 + a * 3 + b] = a == b ? 2.0 : 0.5;
    for (int ti = 0; ti < 4; ti++) {
        gmm_model *m = NULL;
        CHECK(gmm_model_from_params(k, d, GMM_COV_FULL, w0, mu0, cov0, &m) == GMM_OK);
        if (!m) continue;
        m->cov_type = TYPES[ti];
        double *resp = malloc(n * k * sizeof *resp);
        CHECK(gmm_predict_proba(m, x, n, resp) == GMM_OK);
        gmm_backend b;
        gmm_stats s;
        CHECK(gmm_backend_cpu_open(&b, x, n, d, 0) == GMM_OK);
        CHECK(gmm_stats_alloc(&s, k, d) == GMM_OK);
        CHECK(b.stats(&b, m, &s) == GMM_OK);
        CHECK(gmm_mstep(m, &s, n, 1e-6, 0) == GMM_OK);
        double w[3], mu[9], cov[27];
        brute_force_mstep(x, n, d, k, resp, TYPES[ti], 1e-6, w, mu, cov);
        for (size_t c = 0; c < k; c++) {
            CHECK_NEAR(m->weights[c], w[c], 1e-13, 1e-11);
            for (size_t j = 0; j < d; j++) CHECK_NEAR(m->means[c * d + j], mu[c * d + j], 1e-11, 1e-11);
            for (size_t j = 0; j < d * d; j++)
                CHECK_NEAR(m->covariances[c * d * d + j], cov[c * d * d + j], 1e-11, 1e-10);
        }
        /* the compact shape holds what scikit-learn's covariances_ would */
        double compact[27];
        gmm_cov_compact(m, compact);
        if (TYPES[ti] == GMM_COV_SPHERICAL) CHECK_NEAR(compact[2], cov[2 * 9], 0, 1e-10);
        if (TYPES[ti] == GMM_COV_DIAG) CHECK_NEAR(compact[1 * 3 + 2], cov[9 + 2 * 3 + 2], 0, 1e-10);
        if (TYPES[ti] == GMM_COV_TIED) CHECK_NEAR(compact[1 * 3 + 0], cov[18 + 3], 0, 1e-10);
        gmm_stats_free(&s);
        b.release(&b);
        free(resp);
        gmm_model_free(m);
    }
    free(x);
}

static void test_n_parameters(void)
{
    const size_t k = 4, d = 3;
    double w[4] = {1, 1, 1, 1}, mu[12] = {0}, var[4] = {1, 2, 3, 4};
    gmm_model *m = NULL;
    CHECK(gmm_model_from_params(k, d, GMM_COV_SPHERICAL, w, mu, var, &m) == GMM_OK);
    if (!m) return;
    /* scikit-learn's _n_parameters: (k - 1) + k d + {full k d(d+1)/2, tied d(d+1)/2, diag k d, spherical k} */
    CHECK_INT_EQ(gmm_n_parameters(m), 3 + 12 + 4);
    CHECK_NEAR(m->covariances[3 * 9 + 2 * 3 + 2], 4.0, 0, 0);
    CHECK_NEAR(m->covariances[3 * 9 + 0 * 3 + 1], 0.0, 0, 0);
    m->cov_type = GMM_COV_DIAG;
    CHECK_INT_EQ(gmm_n_parameters(m), 3 + 12 + 12);
    m->cov_type = GMM_COV_TIED;
    CHECK_INT_EQ(gmm_n_parameters(m), 3 + 12 + 6);
    m->cov_type = GMM_COV_FULL;
    CHECK_INT_EQ(gmm_n_parameters(m), 3 + 12 + 24);
    gmm_model_free(m);
    /* names */
    gmm_covariance_type t;
    CHECK(gmm_covariance_parse("tied", &t) == 0 && t == GMM_COV_TIED);
    CHECK(gmm_covariance_parse("Full", &t) == -1);
    CHECK(!strcmp(gmm_covariance_name(GMM_COV_SPHERICAL), "spherical"));
    /* a non-positive diag variance is refused with the component named */
    double bad[12] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1};
    CHECK(gmm_model_from_params(k, d, GMM_COV_DIAG, w, mu, bad, &m) == GMM_ERR_NOT_PD);
    CHECK_STR_CONTAINS(gmm_last_error(), "component 3 (label 2): diag variance 0 is not positive");
}

static void test_fits(void)
{
    const size_t n = 4000, d = 2, k = 3;
    double *x = blobs(n, d, k, 7);
    for (int ti = 0; ti < 4; ti++) {
        gmm_options o;
        gmm_options_init(&o);
        o.n_components = (int)k;
        o.covariance_type = TYPES[ti];
        o.reg_covar = 0.0;
        o.tol = 0.0;
        o.max_iter = 40;
        o.seed = 3;
        gmm_model *m = NULL;
        CHECK(gmm_fit(x, n, d, &o, &m) == GMM_OK);
        if (!m) continue;
        CHECK(m->cov_type == TYPES[ti]);
        int len = 0;
        const double *tr = gmm_model_loglik_trace(m, &len);
        for (int i = 1; i < len; i++)
            if (!(tr[i] >= tr[i - 1] - 1e-9 * fabs(tr[i - 1]))) {
                fprintf(stderr, "  %s: loglik fell at iteration %d\n", gmm_covariance_name(TYPES[ti]), i + 1);
                CHECK(0);
                break;
            }
        /* the structure of the type holds in the result */
        for (size_t c = 0; c < k; c++) {
            const double *cv = m->covariances + c * d * d;
            if (TYPES[ti] == GMM_COV_DIAG || TYPES[ti] == GMM_COV_SPHERICAL) CHECK(cv[1] == 0.0 && cv[2] == 0.0);
            if (TYPES[ti] == GMM_COV_SPHERICAL) CHECK(cv[0] == cv[3]);
            if (TYPES[ti] == GMM_COV_TIED) CHECK(memcmp(cv, m->covariances, d * d * sizeof *cv) == 0);
        }
        /* user initial parameters in the type's shape: the first trace value is their log-likelihood */
        double compact[12], prec[12];
        gmm_cov_compact(m, compact);
        size_t nc = gmm_covariance_size(TYPES[ti], k, d);
        if (TYPES[ti] == GMM_COV_FULL || TYPES[ti] == GMM_COV_TIED) {
            for (size_t q = 0; q < nc / 4; q++) { /* 2 x 2 inverse */
                const double *a = compact + 4 * q;
                double det = a[0] * a[3] - a[1] * a[2];
                prec[4 * q] = a[3] / det;
                prec[4 * q + 1] = -a[1] / det;
                prec[4 * q + 2] = -a[2] / det;
                prec[4 * q + 3] = a[0] / det;
            }
        } else {
            for (size_t q = 0; q < nc; q++) prec[q] = 1.0 / compact[q];
        }
        gmm_options u = o;
        u.weights_init = m->weights;
        u.means_init = m->means;
        u.precisions_init = prec;
        u.max_iter = 1;
        gmm_model *m2 = NULL;
        CHECK(gmm_fit(x, n, d, &u, &m2) == GMM_OK);
        double score = 0;
        CHECK(gmm_score(m, x, n, &score) == GMM_OK);
        if (m2) CHECK_NEAR(m2->loglik_trace[0], score * (double)n, 1e-9, 1e-12);
        /* means_init alone: the first iteration starts from those means */
        gmm_options v = o;
        v.means_init = m->means;
        v.max_iter = 1;
        gmm_model *m3 = NULL;
        CHECK(gmm_fit(x, n, d, &v, &m3) == GMM_OK);
        gmm_model_free(m3);
        gmm_model_free(m2);
        gmm_model_free(m);
    }
    /* precisions that are not positive definite: a clear error */
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 1;
    double bad[4] = {1, 2, 2, 1};
    o.precisions_init = bad;
    gmm_model *m = NULL;
    CHECK(gmm_fit(x, n, d, &o, &m) == GMM_ERR_NOT_PD);
    CHECK_STR_CONTAINS(gmm_last_error(), "component 1 (label 0): precisions_init is not positive definite");
    free(x);
}

int main(void)
{
    test_mstep_formulas();
    test_n_parameters();
    test_fits();
    return check_exit();
}
