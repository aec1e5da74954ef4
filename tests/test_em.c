/*
 * test_em.c — whole fits: the log-likelihood never decreases with reg_covar = 0, a model sampled from known
 * parameters is recovered, every init method runs, results do not depend on the thread count and repeat
 * bit for bit with the same seed, n_init keeps the best run, and failures are clear errors.
 */
#include "check.h"
#include "gmm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Three well separated 2-D clusters with known parameters. */
static const double TRUE_W[3] = {0.5, 0.3, 0.2};
static const double TRUE_MU[6] = {0.0, 0.0, 6.0, 1.0, -3.0, 7.0};
static const double TRUE_COV[12] = {1.0, 0.3, 0.3, 0.5, 0.6, -0.2, -0.2, 0.9, 0.4, 0.0, 0.0, 0.4};

static double *sample_true(size_t n, uint64_t seed, int **labels)
{
    gmm_model *m = NULL;
    CHECK(gmm_model_from_params(3, 2, GMM_COV_FULL, TRUE_W, TRUE_MU, TRUE_COV, &m) == GMM_OK);
    double *x = NULL;
    CHECK(gmm_sample(m, n, seed, &x, labels) == GMM_OK);
    gmm_model_free(m);
    return x;
}

static int models_identical(const gmm_model *a, const gmm_model *b)
{
    if (a->k != b->k || a->d != b->d || a->n_iter != b->n_iter) return 0;
    size_t k = a->k, d = a->d;
    return !memcmp(a->weights, b->weights, k * sizeof(double)) && !memcmp(a->means, b->means, k * d * sizeof(double)) &&
           !memcmp(a->covariances, b->covariances, k * d * d * sizeof(double)) &&
           !memcmp(a->loglik_trace, b->loglik_trace, (size_t)a->n_iter * sizeof(double));
}

static void test_monotone(void)
{
    /* overlapping clusters, reg_covar 0: EM's log-likelihood never goes down. (One-point initializations,
     * k-means++ and random_from_data, start from zero covariances and need reg_covar > 0.) */
    const size_t n = 3000;
    double *x = sample_true(n, 5, NULL);
    for (size_t i = 0; i < n; i++) x[i * 2] *= 0.3; /* squeeze so that the components overlap */
    gmm_init_method inits[] = {GMM_INIT_RANDOM, GMM_INIT_KMEANS, GMM_INIT_BINARY};
    for (size_t t = 0; t < sizeof inits / sizeof inits[0]; t++)
        for (uint64_t seed = 0; seed < 5; seed++) {
            gmm_options o;
            gmm_options_init(&o);
            o.n_components = 3;
            o.reg_covar = 0.0;
            o.tol = 0.0;
            o.max_iter = 60;
            o.init = inits[t];
            o.seed = seed;
            gmm_model *m = NULL;
            gmm_status st = gmm_fit(x, n, 2, &o, &m);
            CHECK(st == GMM_OK);
            if (st != GMM_OK) {
                fprintf(stderr, "  init %s seed %llu: %s\n", gmm_init_name(inits[t]), (unsigned long long)seed,
                        gmm_last_error());
                continue;
            }
            int len = 0;
            const double *tr = gmm_model_loglik_trace(m, &len);
            CHECK_INT_EQ(len, 60);
            for (int i = 1; i < len; i++) {
                if (!(tr[i] >= tr[i - 1] - 1e-9 * fabs(tr[i - 1]))) {
                    fprintf(stderr, "  init %s seed %llu: loglik fell at iteration %d: %.17g -> %.17g\n",
                            gmm_init_name(inits[t]), (unsigned long long)seed, i + 1, tr[i - 1], tr[i]);
                    CHECK(0);
                    break;
                }
            }
            gmm_model_free(m);
        }
    free(x);
}

static void test_recovery(void)
{
    const size_t n = 20000;
    double *x = sample_true(n, 42, NULL);
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 3;
    o.seed = 1;
    gmm_model *m = NULL;
    CHECK(gmm_fit(x, n, 2, &o, &m) == GMM_OK);
    if (!m) return;
    CHECK(gmm_model_converged(m));
    /* match each true component to the fitted one with the nearest mean */
    for (int c = 0; c < 3; c++) {
        int best = 0;
        double bd = INFINITY;
        for (int j = 0; j < 3; j++) {
            double dd = hypot(m->means[j * 2] - TRUE_MU[c * 2], m->means[j * 2 + 1] - TRUE_MU[c * 2 + 1]);
            if (dd < bd) {
                bd = dd;
                best = j;
            }
        }
        /* tolerances: ~5 standard errors at n = 20000 */
        CHECK_NEAR(m->weights[best], TRUE_W[c], 0.02, 0);
        CHECK_NEAR(m->means[best * 2], TRUE_MU[c * 2], 0.05, 0);
        CHECK_NEAR(m->means[best * 2 + 1], TRUE_MU[c * 2 + 1], 0.05, 0);
        for (int e = 0; e < 4; e++) CHECK_NEAR(m->covariances[best * 4 + e], TRUE_COV[c * 4 + e], 0.06, 0);
    }
    /* fit labels: predict agrees with the generating components on well separated data */
    free(x);
    int *truth = NULL;
    x = sample_true(n, 43, &truth);
    int *labels = malloc(n * sizeof *labels);
    CHECK(gmm_predict(m, x, n, labels) == GMM_OK);
    int map[3] = {-1, -1, -1};
    size_t agree = 0;
    for (size_t i = 0; i < n; i++) {
        if (map[truth[i]] < 0) map[truth[i]] = labels[i];
        agree += map[truth[i]] == labels[i];
    }
    CHECK((double)agree / (double)n > 0.995);
    free(labels);
    free(truth);
    free(x);
    gmm_model_free(m);
}

static void test_threads_and_seeds(void)
{
    const size_t n = 50000; /* several chunks */
    double *x = sample_true(n, 7, NULL);
    gmm_init_method inits[] = {GMM_INIT_KMEANS, GMM_INIT_KMEANS_PLUSPLUS, GMM_INIT_RANDOM, GMM_INIT_RANDOM_FROM_DATA,
                               GMM_INIT_BINARY};
    for (size_t t = 0; t < sizeof inits / sizeof inits[0]; t++) {
        gmm_model *ref = NULL;
        for (int threads = 1; threads <= 3; threads++) {
            gmm_options o;
            gmm_options_init(&o);
            o.n_components = 3;
            o.init = inits[t];
            o.seed = 99;
            o.n_threads = threads;
            gmm_model *m = NULL;
            CHECK(gmm_fit(x, n, 2, &o, &m) == GMM_OK);
            if (!m) continue;
            if (!ref)
                ref = m;
            else {
                if (!models_identical(ref, m))
                    fprintf(stderr, "  init %s: %d threads differ from 1 thread\n", gmm_init_name(inits[t]), threads);
                CHECK(models_identical(ref, m));
                gmm_model_free(m);
            }
        }
        gmm_model_free(ref);
    }
    /* n_init keeps the best lower bound and records which run won */
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 3;
    o.init = GMM_INIT_BINARY;
    o.n_init = 6;
    o.seed = 3;
    gmm_model *best = NULL;
    CHECK(gmm_fit(x, n, 2, &o, &best) == GMM_OK);
    if (best) {
        for (int run = 0; run < 6; run++) {
            gmm_options o1 = o;
            o1.n_init = 1;
            o1.seed = o.seed + 0x9e3779b97f4a7c15ULL * (uint64_t)run; /* run r's seed, as em.c derives it */
            gmm_model *m = NULL;
            CHECK(gmm_fit(x, n, 2, &o1, &m) == GMM_OK);
            if (!m) continue;
            CHECK(m->lower_bound <= best->lower_bound);
            if (run == best->best_run) CHECK(m->lower_bound == best->lower_bound);
            gmm_model_free(m);
        }
    }
    gmm_model_free(best);
    free(x);
}

static void test_errors(void)
{
    double x[6] = {0, 0, 1, 1, 2, 2};
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 4;
    gmm_model *m = NULL;
    CHECK(gmm_fit(x, 3, 2, &o, &m) == GMM_ERR_TOO_FEW_POINTS);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(gmm_last_error(), "3 points are fewer than the 4 components");
    o.n_components = 1;
    o.tol = -1;
    CHECK(gmm_fit(x, 3, 2, &o, &m) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "tol must be >= 0");
    gmm_options_init(&o);
    double bad[4] = {0, NAN, 1, 1};
    CHECK(gmm_fit(bad, 2, 2, &o, &m) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "row 0, column 1 is not finite");

    /* collinear points with reg_covar 0: the covariance is singular, the error names the component */
    double line[20];
    for (int i = 0; i < 10; i++) {
        line[2 * i] = i;
        line[2 * i + 1] = 2.0 * i;
    }
    gmm_options_init(&o);
    o.reg_covar = 0.0;
    CHECK(gmm_fit(line, 10, 2, &o, &m) == GMM_ERR_NOT_PD);
    CHECK_STR_CONTAINS(gmm_last_error(), "component 0: covariance is not positive definite");
    CHECK_STR_CONTAINS(gmm_last_error(), "reg_covar");
    /* the default reg_covar regularizes the same data into a valid model */
    o.reg_covar = 1e-6;
    CHECK(gmm_fit(line, 10, 2, &o, &m) == GMM_OK);
    gmm_model_free(m);
    m = NULL;

    /* a user start whose second component sits far from all data collapses: a clear error */
    double pts[200];
    gmm_rng r;
    gmm_rng_seed(&r, 1);
    for (int i = 0; i < 200; i++) pts[i] = 0.1 * gmm_rng_normal(&r);
    double w[2] = {0.5, 0.5}, mu[4] = {0, 0, 1e3, 1e3}, prec[8] = {1, 0, 0, 1, 1e4, 0, 0, 1e4};
    gmm_options_init(&o);
    o.n_components = 2;
    o.weights_init = w;
    o.means_init = mu;
    o.precisions_init = prec;
    CHECK(gmm_fit(pts, 100, 2, &o, &m) == GMM_ERR_COLLAPSED);
    CHECK_STR_CONTAINS(gmm_last_error(), "component 1 collapsed");
    CHECK(m == NULL);
}

int main(void)
{
    test_monotone();
    test_recovery();
    test_threads_and_seeds();
    test_errors();
    return check_exit();
}
