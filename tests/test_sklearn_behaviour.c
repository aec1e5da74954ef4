/*
 * test_sklearn_behaviour.c — the library follows scikit-learn's GaussianMixture where its behaviour is more
 * than a formula: max_iter = 0 (the initial parameters, n_iter 0, not converged, lower bound -inf, the last
 * of n_init runs), warm starts that carry the lower bound (a chain of max_iter = 1 fits converges where one
 * long fit does), and initial weights checked as _check_weights checks them (each in [0, 1], sum 1 within
 * 1e-8) and then used as given. tests/oracle_sklearn_behaviour.py compares the same cases with scikit-learn
 * itself through the CLI.
 */
#include "check.h"
#include "gmm_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GMM_TEST_TMP
#define GMM_TEST_TMP "."
#endif

/* Three 2-D clusters drawn from a fixed model. */
static double *three_clusters(size_t n)
{
    static const double w[3] = {0.5, 0.3, 0.2}, mu[6] = {0, 0, 4, 1, -2, 5};
    static const double cov[12] = {1, 0.3, 0.3, 0.5, 0.6, -0.2, -0.2, 0.9, 0.4, 0, 0, 0.4};
    gmm_model *m = NULL;
    double *x = NULL;
    CHECK(gmm_model_from_params(3, 2, GMM_COV_FULL, w, mu, cov, &m) == GMM_OK);
    if (m) CHECK(gmm_sample(m, n, 5, &x, NULL) == GMM_OK);
    gmm_model_free(m);
    return x;
}

/* The precisions of m in its type's own shape (full: U U^T of each prec_chol), into p. Full models only. */
static void full_precisions(const gmm_model *m, double *p)
{
    const size_t k = m->k, d = m->d;
    for (size_t c = 0; c < k; c++) {
        const double *u = m->prec_chol + c * d * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                double v = 0.0;
                for (size_t t = 0; t < d; t++) v += u[i * d + t] * u[j * d + t];
                p[c * d * d + i * d + j] = v;
            }
    }
}

/* max_iter 0: the initial parameters as given, n_iter 0, converged 0, lower bound -inf; with n_init 3 the
 * last run's initialization (scikit-learn overwrites best_params on every run when max_iter is 0). The
 * model saves and loads back (lower_bound null). */
static void test_max_iter_zero(void)
{
    const size_t n = 600, d = 2;
    double *x = three_clusters(n);
    if (!x) return;
    const double w[3] = {0.2, 0.3, 0.5}, mu[6] = {1, 1, 2, 2, 3, 3}, prec[12] = {1, 0, 0, 1, 2, 0, 0, 2, 4, 1, 1, 4};
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 3;
    o.max_iter = 0;
    o.weights_init = w;
    o.means_init = mu;
    o.precisions_init = prec;
    gmm_model *m = NULL;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_OK);
    if (m) {
        CHECK_INT_EQ(gmm_model_n_iter(m), 0);
        CHECK_INT_EQ(gmm_model_converged(m), 0);
        CHECK(gmm_model_lower_bound(m) == -INFINITY);
        CHECK(!memcmp(m->weights, w, sizeof w));
        CHECK(!memcmp(m->means, mu, sizeof mu));
        double p[12];
        full_precisions(m, p);
        for (int i = 0; i < 12; i++) CHECK_NEAR(p[i], prec[i], 1e-13, 1e-13);
        char path[512];
        snprintf(path, sizeof path, "%s/sklearn_behaviour_max_iter0.json", GMM_TEST_TMP);
        CHECK_INT_EQ(gmm_model_save(m, path), GMM_OK);
        gmm_model *back = NULL;
        CHECK_INT_EQ(gmm_model_load(path, &back), GMM_OK);
        if (back) {
            CHECK_INT_EQ(back->n_iter, 0);
            CHECK(back->lower_bound == -INFINITY);
            CHECK(!memcmp(back->means, mu, sizeof mu));
        }
        gmm_init_file f;
        CHECK_INT_EQ(gmm_init_file_load(path, &f), GMM_OK);
        CHECK(f.lower_bound == -INFINITY);
        gmm_init_file_free(&f);
        gmm_model_free(back);
        remove(path);
    }
    gmm_model_free(m);

    /* n_init 3 from random_from_data: the model is the last run's initialization (best_run 2), not the first's */
    gmm_options_init(&o);
    o.n_components = 3;
    o.max_iter = 0;
    o.n_init = 3;
    o.init = GMM_INIT_RANDOM_FROM_DATA;
    m = NULL;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_OK);
    if (m) {
        CHECK_INT_EQ(gmm_model_best_run(m), 2);
        CHECK_INT_EQ(gmm_model_n_iter(m), 0);
        /* random_from_data means are data rows; run 2's differ from run 0's */
        o.n_init = 1;
        gmm_model *first = NULL;
        CHECK_INT_EQ(gmm_fit(x, n, d, &o, &first), GMM_OK);
        if (first) CHECK(memcmp(first->means, m->means, 6 * sizeof(double)) != 0);
        gmm_model_free(first);
    }
    gmm_model_free(m);

    o.max_iter = -1;
    m = NULL;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "max_iter must be >= 0");
    free(x);
}

/* A chain of max_iter 1 warm starts, each carrying the previous model's lower bound, converges at the fit
 * whose number is the n_iter of one uninterrupted fit from the same start, with the same lower bound; from
 * -inf (no carried bound) it would never converge. */
static void test_warm_start_chain(void)
{
    const size_t n = 2000, d = 2, k = 3;
    double *x = three_clusters(n);
    if (!x) return;
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = (int)k;
    o.seed = 3;
    gmm_model *whole = NULL;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &whole), GMM_OK);
    if (!whole) {
        free(x);
        return;
    }
    CHECK(whole->converged && whole->n_iter >= 3);

    o.max_iter = 1;
    gmm_model *prev = NULL;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &prev), GMM_OK);
    int fits = 1, converged_at = 0;
    double prec[18];
    while (prev && fits < 50) {
        if (prev->converged) {
            converged_at = fits;
            break;
        }
        gmm_options wo;
        gmm_options_init(&wo);
        wo.n_components = (int)k;
        wo.max_iter = 1;
        full_precisions(prev, prec);
        wo.weights_init = prev->weights;
        wo.means_init = prev->means;
        wo.precisions_init = prec;
        wo.warm_lower_bound = prev->lower_bound;
        gmm_model *next = NULL;
        CHECK_INT_EQ(gmm_fit(x, n, d, &wo, &next), GMM_OK);
        gmm_model_free(prev);
        prev = next;
        fits++;
    }
    fprintf(stderr, "one fit: %d iterations; the max_iter 1 chain converged at fit %d\n", whole->n_iter,
            converged_at);
    CHECK_INT_EQ(converged_at, whole->n_iter);
    if (prev) CHECK_NEAR(prev->lower_bound, whole->lower_bound, 0, 1e-10);
    gmm_model_free(prev);

    /* a non-finite bound other than -inf is refused */
    o.warm_lower_bound = NAN;
    gmm_model *m = NULL;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "warm_lower_bound");
    gmm_model_free(whole);
    free(x);
}

/* weights_init as scikit-learn's _check_weights: in [0, 1] each, sum 1 within 1e-8, used as given. */
static void test_weights_init(void)
{
    const size_t n = 300, d = 2;
    double *x = three_clusters(n);
    if (!x) return;
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 2;
    o.max_iter = 0;
    gmm_model *m = NULL;
    const double over[2] = {0.5, 0.6}, neg[2] = {1.2, -0.2}, far[2] = {0.5, 0.50000002};
    o.weights_init = over;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(),
                       "weights_init sum to 1.1000000000000001; initial weights must sum to 1 within 1e-08");
    o.weights_init = neg;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "weights_init[0] is 1.2; initial weights must be in [0, 1]");
    o.weights_init = far;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_ERR_INVALID_ARG);
    CHECK(m == NULL);
    /* within the tolerance: kept bit for bit, not normalized */
    const double near[2] = {0.3, 0.700000005};
    o.weights_init = near;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_OK);
    if (m) CHECK(!memcmp(m->weights, near, sizeof near));
    gmm_model_free(m);
    m = NULL;
    /* a zero weight is allowed (the component starts with no responsibility and is kept empty) */
    const double zero[2] = {0.0, 1.0};
    o.weights_init = zero;
    o.max_iter = 100;
    CHECK_INT_EQ(gmm_fit(x, n, d, &o, &m), GMM_OK);
    if (m) {
        CHECK_INT_EQ(gmm_model_empty_since(m, 0), 1);
        CHECK(m->weights[0] < 1e-15);
    }
    gmm_model_free(m);
    free(x);
}

int main(void)
{
    test_max_iter_zero();
    test_warm_start_chain();
    test_weights_init();
    return check_exit();
}
