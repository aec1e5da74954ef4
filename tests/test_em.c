/*
 * test_em.c — whole fits: the log-likelihood never decreases with reg_covar = 0, a model sampled from known
 * parameters is recovered, every init method runs, results do not depend on the thread count and repeat
 * bit for bit with the same seed, n_init keeps the best run, failures are clear errors and a component
 * that empties is kept as scikit-learn keeps it. On the CPU:
 * fits on one session (different k, covariance types, inits, seeds) equal separate gmm_fit calls bit for
 * bit, gmm_fit_predict's labels are gmm_predict's, and gmm_infer equals predict / predict_proba /
 * score_samples.
 */
#include "backend_cuda.h"
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
    return !memcmp(a->weights, b->weights, k * sizeof(double)) &&
           !memcmp(a->means, b->means, k * d * sizeof(double)) &&
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

    /* a sample count whose n * d * sizeof(double) wraps around is refused, not allocated short */
    const double w1[1] = {1.0}, mu1[1] = {0.0}, var1[1] = {1.0};
    gmm_model *one = NULL;
    CHECK(gmm_model_from_params(1, 1, GMM_COV_DIAG, w1, mu1, var1, &one) == GMM_OK);
    double *xs = NULL;
    int *ls = NULL;
    CHECK(gmm_sample(one, SIZE_MAX / 4 + 2, 1, &xs, &ls) == GMM_ERR_NOMEM);
    CHECK(xs == NULL && ls == NULL);
    CHECK_STR_CONTAINS(gmm_last_error(), "too many to hold in memory");
    gmm_model_free(one);

    /* collinear points with reg_covar 0: the covariance is singular, the error names the component */
    double line[20];
    for (int i = 0; i < 10; i++) {
        line[2 * i] = i;
        line[2 * i + 1] = 2.0 * i;
    }
    gmm_options_init(&o);
    o.reg_covar = 0.0;
    CHECK(gmm_fit(line, 10, 2, &o, &m) == GMM_ERR_NOT_PD);
    CHECK_STR_CONTAINS(gmm_last_error(), "component 1 (label 0): covariance is not positive definite");
    CHECK_STR_CONTAINS(gmm_last_error(), "reg_covar");
    /* the default reg_covar regularizes the same data into a valid model */
    o.reg_covar = 1e-6;
    CHECK(gmm_fit(line, 10, 2, &o, &m) == GMM_OK);
    gmm_model_free(m);
    m = NULL;

    /* a user start whose second component sits far from all data empties it in the first E-step: as in
     * scikit-learn the fit goes on, the component kept with weight ~10 eps / n, mean sum r x / (N + 10 eps) ~ 0
     * and covariance reg_covar I, and the model records when it emptied */
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
    o.max_iter = 1; /* the parameters after that first M-step */
    CHECK(gmm_fit(pts, 100, 2, &o, &m) == GMM_OK);
    if (m) {
        CHECK_INT_EQ(gmm_model_empty_since(m, 0), 0);
        CHECK_INT_EQ(gmm_model_empty_since(m, 1), 1);
        CHECK(m->weights[1] < 1e-15 && m->weights[1] > 0.0);
        CHECK_NEAR(m->weights[0], 1.0, 1e-15, 0);
        CHECK(fabs(m->means[2]) < 1e-6 && fabs(m->means[3]) < 1e-6);
        CHECK_NEAR(m->covariances[4], 1e-6, 1e-18, 0);
        CHECK_NEAR(m->covariances[7], 1e-6, 1e-18, 0);
        CHECK(m->covariances[5] == m->covariances[6] && fabs(m->covariances[5]) < 1e-18);
    }
    gmm_model_free(m);
    m = NULL;
    o.max_iter = 100; /* and the whole fit finishes with the component still empty */
    CHECK(gmm_fit(pts, 100, 2, &o, &m) == GMM_OK);
    if (m) {
        CHECK(m->converged);
        CHECK_INT_EQ(gmm_model_empty_since(m, 1), 1);
        CHECK(m->weights[1] < 1e-15);
    }
    gmm_model_free(m);
}

/* Everything a fit records beyond the parameters: the same as models_identical plus type, status and device. */
static int fits_identical(const gmm_model *a, const gmm_model *b)
{
    return models_identical(a, b) && a->cov_type == b->cov_type && a->converged == b->converged &&
           a->best_run == b->best_run && a->lower_bound == b->lower_bound && a->n_train == b->n_train &&
           !strcmp(a->device, b->device);
}

/* One session, many fits: k in a non-monotone order (the backend's buffers shrink and grow), every
 * covariance type, several inits and seeds, n_init 2 for some; each equals gmm_fit with the same options
 * bit for bit, and the session's predict equals gmm_infer's. Then the session's argument errors. */
static void test_session_fits(void)
{
    const size_t n = 4000, d = 2;
    double *x = sample_true(n, 21, NULL);
    static const int ks[] = {5, 1, 3, 2, 4};
    static const gmm_init_method inits[] = {GMM_INIT_KMEANS, GMM_INIT_KMEANS_PLUSPLUS, GMM_INIT_RANDOM,
                                            GMM_INIT_RANDOM_FROM_DATA, GMM_INIT_BINARY};
    double *l1 = malloc(n * sizeof *l1), *l2 = malloc(n * sizeof *l2);
    double *r1 = malloc(n * 5 * sizeof *r1), *r2 = malloc(n * 5 * sizeof *r2);
    int *b1 = malloc(n * sizeof *b1), *b2 = malloc(n * sizeof *b2);
    CHECK(x && l1 && l2 && r1 && r2 && b1 && b2);
    gmm_options o;
    gmm_options_init(&o);
    gmm_session s;
    CHECK(gmm_session_open(&s, x, n, d, &o, 5) == GMM_OK);
    CHECK_STR_CONTAINS(s.device, "CPU (");
    int fits = 0;
    for (int t = 0; t < 4 && s.open; t++)
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
            gmm_options oc = o;
            oc.n_components = ks[i];
            oc.covariance_type = (gmm_covariance_type)t;
            oc.init = inits[((size_t)t + i) % 5];
            oc.seed = (uint64_t)(10 * t + ks[i]);
            oc.n_init = ks[i] == 3 ? 2 : 1;
            gmm_model *a = NULL, *b = NULL;
            gmm_status sa = gmm_session_fit(&s, &oc, &a);
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", gmm_last_error());
            gmm_status sb = gmm_fit(x, n, d, &oc, &b);
            CHECK_INT_EQ(sa, sb);
            if (sa != GMM_OK || sb != GMM_OK) {
                CHECK(!strcmp(msg, gmm_last_error()));
                fprintf(stderr, "  k=%d %s: %s / %s\n", ks[i], gmm_covariance_name(oc.covariance_type), msg,
                        gmm_last_error());
            } else {
                fits++;
                if (!fits_identical(a, b))
                    fprintf(stderr, "  k=%d %s init %s: the session's fit differs from gmm_fit's\n", ks[i],
                            gmm_covariance_name(oc.covariance_type), gmm_init_name(oc.init));
                CHECK(fits_identical(a, b));
                const size_t k = (size_t)ks[i];
                CHECK(gmm_session_predict(&s, a, l1, b1, r1) == GMM_OK);
                CHECK(gmm_infer(b, x, n, NULL, l2, b2, r2) == GMM_OK);
                CHECK(!memcmp(l1, l2, n * sizeof *l1) && !memcmp(b1, b2, n * sizeof *b1) &&
                      !memcmp(r1, r2, n * k * sizeof *r1));
            }
            gmm_model_free(a);
            gmm_model_free(b);
        }
    CHECK(fits >= 18); /* a collapse or two is allowed, as long as both ways report it alike */
    /* more components than the session was opened for; a model of another dimension */
    gmm_options o6 = o;
    o6.n_components = 6;
    gmm_model *m = NULL;
    CHECK(gmm_session_fit(&s, &o6, &m) == GMM_ERR_INVALID_ARG);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(gmm_last_error(), "n_components 6 is more than the 5 the session was opened for");
    static const double w1[1] = {1.0}, mu3[3] = {0, 0, 0}, cov3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    CHECK(gmm_model_from_params(1, 3, GMM_COV_FULL, w1, mu3, cov3, &m) == GMM_OK);
    CHECK(gmm_session_predict(&s, m, l1, NULL, NULL) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "the model has 3 features, the data 2");
    gmm_model_free(m);
    gmm_session_close(&s);
    CHECK(!s.open);
    gmm_session_close(&s); /* closing twice is allowed */
    gmm_session_close(NULL);
    /* open's checks */
    CHECK(gmm_session_open(&s, x, n, d, &o, 0) == GMM_ERR_INVALID_ARG);
    CHECK(!s.open);
    CHECK(gmm_session_open(&s, x, 0, d, &o, 1) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "no data points");
    x[7] = INFINITY;
    CHECK(gmm_session_open(&s, x, n, d, &o, 1) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "data row 3, column 1 is not finite");
    CHECK(!s.open);
    free(x);
    free(l1);
    free(l2);
    free(r1);
    free(r2);
    free(b1);
    free(b2);
}

/* gmm_fit_predict: the model gmm_fit gives and the labels gmm_predict gives for it. gmm_infer: with NULL
 * options (and with the CPU backend at any thread count) the outputs of gmm_score_samples, gmm_predict and
 * gmm_predict_proba bit for bit, each output alone or together; CUDA without a GPU and the argument errors
 * are clear errors. */
static void test_fit_predict_and_infer(void)
{
    const size_t n = 30000, d = 2, k = 3; /* several CPU chunks */
    double *x = sample_true(n, 31, NULL);
    int *lab = malloc(n * sizeof *lab), *pred = malloc(n * sizeof *pred), *lab2 = malloc(n * sizeof *lab2);
    double *logp = malloc(n * sizeof *logp), *logp2 = malloc(n * sizeof *logp2);
    double *resp = malloc(n * k * sizeof *resp), *resp2 = malloc(n * k * sizeof *resp2);
    CHECK(x && lab && pred && lab2 && logp && logp2 && resp && resp2);
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = (int)k;
    o.seed = 4;
    o.n_init = 2;
    gmm_model *ref = NULL, *m = NULL;
    CHECK(gmm_fit(x, n, d, &o, &ref) == GMM_OK);
    CHECK(gmm_fit_predict(x, n, d, &o, &m, lab) == GMM_OK);
    if (!ref || !m) goto done;
    CHECK(fits_identical(ref, m));
    CHECK(gmm_predict(m, x, n, pred) == GMM_OK);
    CHECK(!memcmp(lab, pred, n * sizeof *lab));

    /* gmm_infer with NULL options: the CPU conveniences' outputs, bit for bit */
    CHECK(gmm_infer(m, x, n, NULL, logp, lab2, resp) == GMM_OK);
    CHECK(!memcmp(lab2, pred, n * sizeof *lab2));
    CHECK(gmm_score_samples(m, x, n, logp2) == GMM_OK);
    CHECK(!memcmp(logp, logp2, n * sizeof *logp));
    CHECK(gmm_predict_proba(m, x, n, resp2) == GMM_OK);
    CHECK(!memcmp(resp, resp2, n * k * sizeof *resp));
    double mean = 0;
    CHECK(gmm_score(m, x, n, &mean) == GMM_OK);
    CHECK(mean == gmm_mean_logp(logp, n));
    double bic = 0, aic = 0;
    CHECK(gmm_bic(m, x, n, &bic) == GMM_OK && bic == gmm_bic_from_mean(m, mean, n));
    CHECK(gmm_aic(m, x, n, &aic) == GMM_OK && aic == gmm_aic_from_mean(m, mean, n));
    /* the CPU backend named, one thread and three: the same bits; each output alone */
    for (int threads = 1; threads <= 3; threads += 2) {
        gmm_options oc;
        gmm_options_init(&oc);
        oc.backend = GMM_BACKEND_CPU;
        oc.n_threads = threads;
        memset(logp2, 0, n * sizeof *logp2);
        memset(lab2, 0, n * sizeof *lab2);
        memset(resp2, 0, n * k * sizeof *resp2);
        CHECK(gmm_infer(m, x, n, &oc, logp2, NULL, NULL) == GMM_OK);
        CHECK(gmm_infer(m, x, n, &oc, NULL, lab2, NULL) == GMM_OK);
        CHECK(gmm_infer(m, x, n, &oc, NULL, NULL, resp2) == GMM_OK);
        CHECK(!memcmp(logp, logp2, n * sizeof *logp));
        CHECK(!memcmp(lab2, pred, n * sizeof *lab2));
        CHECK(!memcmp(resp, resp2, n * k * sizeof *resp));
    }
    CHECK(gmm_infer(m, x, n, NULL, NULL, NULL, NULL) == GMM_OK); /* nothing asked: nothing to do */
    /* CUDA: an error where no GPU is usable (the GPU case is tests/test_cuda.c's); AUTO falls back to the CPU */
    if (gmm_cuda_available(NULL, 0) == 0) {
        gmm_options oc;
        gmm_options_init(&oc);
        oc.backend = GMM_BACKEND_CUDA;
        CHECK(gmm_infer(m, x, n, &oc, logp2, NULL, NULL) == GMM_ERR_NO_DEVICE);
        CHECK(gmm_last_error()[0] != '\0');
        oc.backend = GMM_BACKEND_AUTO;
        CHECK(gmm_infer(m, x, n, &oc, logp2, lab2, NULL) == GMM_OK);
        CHECK(!memcmp(logp, logp2, n * sizeof *logp) && !memcmp(lab2, pred, n * sizeof *lab2));
        gmm_options of = o;
        of.backend = GMM_BACKEND_CUDA;
        gmm_model *mc = m;
        CHECK(gmm_fit_predict(x, n, d, &of, &mc, lab2) == GMM_ERR_NO_DEVICE);
        CHECK(mc == NULL);
    }
    /* errors */
    CHECK(gmm_infer(NULL, x, n, NULL, logp2, NULL, NULL) == GMM_ERR_INVALID_ARG);
    CHECK(gmm_infer(m, x, 0, NULL, logp2, NULL, NULL) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "no data points");
    gmm_options bad;
    gmm_options_init(&bad);
    bad.backend = (gmm_backend_kind)7;
    CHECK(gmm_infer(m, x, n, &bad, logp2, NULL, NULL) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "unknown backend 7");
    x[5] = NAN;
    CHECK(gmm_infer(m, x, n, NULL, logp2, NULL, NULL) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "data row 2, column 1 is not finite");
    gmm_model *m2 = m;
    CHECK(gmm_fit_predict(x, n, d, &o, &m2, lab2) == GMM_ERR_INVALID_ARG);
    CHECK(m2 == NULL);
    x[5] = 0.0;
    CHECK(gmm_fit_predict(x, n, d, &o, &m2, NULL) == GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "labels must not be NULL");
    CHECK(gmm_fit_predict(x, 2, d, &o, &m2, lab2) == GMM_ERR_TOO_FEW_POINTS);
    CHECK(m2 == NULL);
done:
    gmm_model_free(ref);
    gmm_model_free(m);
    free(x);
    free(lab);
    free(pred);
    free(lab2);
    free(logp);
    free(logp2);
    free(resp);
    free(resp2);
}

/* The backend's initialization passes refuse to run before the pass that sets up their state (a draw
 * before any potential, an assignment or a farthest point before an assignment that resets the labels,
 * one-hot statistics before any labels), and run once it has. */
static void test_init_pass_order(void)
{
    const double x[12] = {0, 0, 1, 0, 0, 1, 5, 5, 6, 5, 5, 6};
    const double centers[4] = {0, 0, 5, 5};
    double means[4], counts[2], pot = 0.0;
    size_t idx = 99, changed = 99;
    gmm_backend b;
    CHECK(gmm_backend_cpu_open(&b, x, 6, 2, 1) == GMM_OK);
    gmm_stats s;
    CHECK(gmm_stats_alloc(&s, 2, 2) == GMM_OK);
    CHECK(b.pp_draw(&b, 1.0, &idx) == GMM_ERR_INVALID_ARG);
    CHECK(b.pp_potential(&b, x, 0, 1, &pot) == GMM_ERR_INVALID_ARG);
    CHECK(b.lloyd_assign(&b, 2, centers, 0, means, counts, &changed) == GMM_ERR_INVALID_ARG);
    CHECK(b.lloyd_farthest(&b, &idx) == GMM_ERR_INVALID_ARG);
    CHECK(b.resp_stats(&b, GMM_RESP_LABELS, 0, centers, &s) == GMM_ERR_INVALID_ARG);
    /* in order: potential of point 0 (squared distances 0, 1, 1, 50, 61, 61), a draw, Lloyd, one-hot stats */
    CHECK(b.pp_potential(&b, x, 1, 1, &pot) == GMM_OK);
    CHECK_NEAR(pot, 174.0, 0, 1e-15);
    CHECK(b.pp_draw(&b, 1.5, &idx) == GMM_OK);
    CHECK_INT_EQ(idx, 2); /* running sums 0, 1, 2: the first >= 1.5 */
    CHECK(b.lloyd_assign(&b, 2, centers, 1, means, counts, &changed) == GMM_OK);
    CHECK_INT_EQ(changed, 6);
    CHECK(counts[0] == 3.0 && counts[1] == 3.0);
    CHECK_NEAR(means[0], 1.0 / 3.0, 0, 1e-15);
    CHECK_NEAR(means[3], 16.0 / 3.0, 0, 1e-15);
    CHECK(b.resp_stats(&b, GMM_RESP_LABELS, 0, centers, &s) == GMM_OK);
    CHECK(s.nk[0] == 3.0 && s.nk[1] == 3.0);
    CHECK(b.lloyd_farthest(&b, &idx) == GMM_OK);
    CHECK_INT_EQ(idx, 1); /* distances 0, 1, 1, 0, 1, 1: the first largest */
    b.init_end(&b);
    gmm_stats_free(&s);
    b.release(&b);
}

int main(void)
{
    test_monotone();
    test_recovery();
    test_threads_and_seeds();
    test_errors();
    test_session_fits();
    test_fit_predict_and_infer();
    test_init_pass_order();
    return check_exit();
}
