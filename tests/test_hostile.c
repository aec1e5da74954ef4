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

static gmm_status fit(const double *x, size_t n, size_t d, int k, gmm_covariance_type t, double reg, gmm_model **m)
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

/* Only 3 distinct points (10 copies each), k = 5, kmeans init: three components take one point each, the
 * other two are empty from the first E-step. As scikit-learn (1.9.1 gives the same lower bound, iteration
 * count and weights), the fit goes on: with reg_covar 1e-6 every type gives the closed form of three
 * one-point components of covariance reg_covar I, log(1/3) - log(2 pi) - log(1e-6) per point, with the two
 * empty components kept at weight ~2e-16 and named by gmm_model_empty_since. With reg_covar = 0 a one-point
 * (or empty) covariance is exactly 0: full, diag and spherical stop with GMM_ERR_NOT_PD naming the component
 * (scikit-learn raises too); tied pools every component's scatter, which is only rounding residue here, so
 * no outcome is asserted for it. */
static void test_more_components_than_distinct_points(void)
{
    const size_t n = 30, d = 2;
    double x[60];
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = (double)(i % 3);
        x[2 * i + 1] = (double)((i % 3) * (i % 3));
    }
    const double log_2pi = 1.8378770664093454835606594728112;
    const double closed_form = log(1.0 / 3.0) - log_2pi - log(1e-6);
    for (int t = 0; t < 4; t++) {
        gmm_model *m;
        gmm_status st = fit(x, n, d, 5, TYPES[t], 1e-6, &m);
        CHECK_INT_EQ(st, GMM_OK);
        if (m) {
            CHECK(model_finite(m, x, n));
            CHECK(m->converged);
            CHECK_NEAR(m->lower_bound, closed_form, 0, 1e-9);
            int n_empty = 0, n_third = 0;
            for (size_t c = 0; c < 5; c++) {
                if (gmm_model_empty_since(m, c) > 0) {
                    n_empty++;
                    CHECK_INT_EQ(gmm_model_empty_since(m, c), 1);
                    CHECK(m->weights[c] < 1e-15);
                } else {
                    n_third += fabs(m->weights[c] - 1.0 / 3.0) <= 1e-12;
                }
            }
            CHECK_INT_EQ(n_empty, 2);
            CHECK_INT_EQ(n_third, 3);
        }
        gmm_model_free(m);
        if (TYPES[t] == GMM_COV_TIED) continue;
        st = fit(x, n, d, 5, TYPES[t], 0.0, &m);
        CHECK_INT_EQ(st, GMM_ERR_NOT_PD);
        CHECK_STR_CONTAINS(gmm_last_error(), "covariance is not positive definite");
        CHECK_STR_CONTAINS(gmm_last_error(), " (label ");
        CHECK_STR_CONTAINS(gmm_last_error(), "increase reg_covar");
        CHECK(m == NULL);
    }
}

/* k = 10 on 2 distinct points (50 copies each) with reg_covar 1e-6: scikit-learn fits with every init and
 * covariance type (8 components empty with kmeans); so does gmm, with the empty components named. */
static void test_two_points_ten_components(void)
{
    const size_t n = 100, d = 2;
    double x[200];
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = i < 50 ? 0.0 : 1.0;
        x[2 * i + 1] = i < 50 ? 0.0 : 2.0;
    }
    const gmm_init_method inits[4] = {GMM_INIT_KMEANS, GMM_INIT_KMEANS_PLUSPLUS, GMM_INIT_RANDOM,
                                      GMM_INIT_RANDOM_FROM_DATA};
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 4; i++) {
            gmm_options o;
            gmm_options_init(&o);
            o.n_components = 10;
            o.covariance_type = TYPES[t];
            o.init = inits[i];
            gmm_model *m = NULL;
            gmm_status st = gmm_fit(x, n, d, &o, &m);
            if (st != GMM_OK)
                fprintf(stderr, "2 points, k = 10, %s, %s: %s\n", gmm_covariance_name(TYPES[t]),
                        gmm_init_name(inits[i]), gmm_last_error());
            CHECK_INT_EQ(st, GMM_OK);
            if (!m) continue;
            CHECK(model_finite(m, x, n));
            if (inits[i] == GMM_INIT_KMEANS) { /* k-means puts the 2 points in 2 clusters: 8 are empty */
                int n_empty = 0;
                for (size_t c = 0; c < 10; c++) n_empty += gmm_model_empty_since(m, c) == 1;
                CHECK_INT_EQ(n_empty, 8);
            }
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

/* predict and score never give NaN: a row far from a model whose log-density is still a double is computed
 * in log space (finite); a row whose squared Mahalanobis distance overflows in every component (1e200) is an
 * error naming the row; a non-finite row from a backend (as a float32 GPU gives far from the model) is
 * computed again on the host. */
static void test_far_rows_never_nan(void)
{
    const double w[2] = {0.5, 0.5}, mu[4] = {0, 0, 3, 3}, cov[8] = {1, 0, 0, 1, 0.5, 0, 0, 0.5};
    gmm_model *m = NULL;
    CHECK(gmm_model_from_params(2, 2, GMM_COV_FULL, w, mu, cov, &m) == GMM_OK);
    if (!m) return;
    double far[6] = {0, 0, 1e10, 0, 1e150, -1e150}, lp[3], resp[6];
    int lab[3];
    CHECK(gmm_score_samples(m, far, 3, lp) == GMM_OK);
    for (int i = 0; i < 3; i++) CHECK(isfinite(lp[i]));
    CHECK(lp[1] < -1e19 && lp[2] < -1e299);
    CHECK(gmm_predict_proba(m, far, 3, resp) == GMM_OK);
    for (int i = 0; i < 6; i++) CHECK(isfinite(resp[i]) && resp[i] >= 0.0 && resp[i] <= 1.0);
    double huge[6] = {0, 0, 1e200, 0, 1, 1};
    CHECK_INT_EQ(gmm_score_samples(m, huge, 3, lp), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "data row 1 (0-based)");
    CHECK_INT_EQ(gmm_predict(m, huge, 3, lab), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "data row 1 (0-based)");
    double mean = 0;
    CHECK_INT_EQ(gmm_score(m, huge, 3, &mean), GMM_ERR_INVALID_ARG);
    CHECK_INT_EQ(gmm_infer(m, huge, 3, NULL, lp, NULL, NULL), GMM_ERR_INVALID_ARG);
    /* a backend's non-finite row is redone on the host: the CPU's values come back */
    double want_lp[3], want_resp[6];
    int want_lab[3];
    CHECK(gmm_infer(m, far, 3, NULL, want_lp, want_lab, want_resp) == GMM_OK);
    memcpy(lp, want_lp, sizeof lp);
    memcpy(resp, want_resp, sizeof resp);
    memcpy(lab, want_lab, sizeof lab);
    lp[1] = -INFINITY;
    lp[2] = NAN;
    resp[2] = resp[3] = resp[4] = resp[5] = NAN;
    lab[1] = lab[2] = 7;
    CHECK(gmm_infer_check_rows(m, gmm_data_double(far), 3, lp, lab, resp) == GMM_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(lp[i], want_lp[i], 0, 1e-12);
        CHECK_INT_EQ(lab[i], want_lab[i]);
    }
    for (int i = 0; i < 6; i++) CHECK_NEAR(resp[i], want_resp[i], 1e-12, 0);
    gmm_model_free(m);
}

int main(void)
{
    test_duplicated_points();
    test_more_components_than_distinct_points();
    test_two_points_ten_components();
    test_far_rows_never_nan();
    test_constant_column();
    test_scales_and_offsets();
    return check_exit();
}
