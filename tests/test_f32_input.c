/*
 * test_f32_input.c — float32 data read in place (gmm_fit_f32, gmm_fit_predict_f32, gmm_infer_f32) on the CPU
 * backend: every result equals, bit for bit, the double call's on the same values widened to double
 * beforehand, for every covariance type and initialization, with several threads and chunks, across the
 * OpenBLAS threshold (d = 64); non-finite float values are refused with their row and column. (The CUDA
 * backend's float32 input is tested in test_cuda.c, under the emulation in CI.)
 */
#include "check.h"
#include "gmm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n points around k random centers as float32 (xf), and the same values widened to double (xd). */
static void make_data(size_t n, size_t d, size_t k, uint64_t seed, float **xf, double **xd)
{
    gmm_rng r;
    gmm_rng_seed(&r, seed);
    double *centers = malloc(k * d * sizeof *centers);
    *xf = malloc(n * d * sizeof **xf);
    *xd = malloc(n * d * sizeof **xd);
    if (!centers || !*xf || !*xd) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < k * d; i++) centers[i] = 4.0 * gmm_rng_normal(&r);
    for (size_t i = 0; i < n; i++) {
        const size_t c = (size_t)gmm_rng_below(&r, k);
        for (size_t j = 0; j < d; j++) {
            (*xf)[i * d + j] = (float)(centers[c * d + j] + 0.7 * gmm_rng_normal(&r) + 1.0 / 3.0);
            (*xd)[i * d + j] = (double)(*xf)[i * d + j];
        }
    }
    free(centers);
}

/* Two fitted models bit for bit the same: parameters, precision factors, fit record and device line. */
static int same_model(const gmm_model *a, const gmm_model *b)
{
    const size_t k = a->k, d = a->d;
    return a->k == b->k && a->d == b->d && a->cov_type == b->cov_type && a->n_iter == b->n_iter &&
           a->converged == b->converged && a->best_run == b->best_run &&
           !memcmp(&a->lower_bound, &b->lower_bound, sizeof a->lower_bound) &&
           !memcmp(a->weights, b->weights, k * sizeof(double)) &&
           !memcmp(a->means, b->means, k * d * sizeof(double)) &&
           !memcmp(a->covariances, b->covariances, k * d * d * sizeof(double)) &&
           !memcmp(a->prec_chol, b->prec_chol, k * d * d * sizeof(double)) &&
           !memcmp(a->log_det_chol, b->log_det_chol, k * sizeof(double)) &&
           !memcmp(a->empty_since, b->empty_since, k * sizeof(int)) &&
           !memcmp(a->loglik_trace, b->loglik_trace, (size_t)a->n_iter * sizeof(double)) &&
           !strcmp(a->device, b->device);
}

/* gmm_fit_f32 and gmm_fit_predict_f32 against gmm_fit / gmm_fit_predict on the widened copy, for every
 * covariance type and initialization method. */
static void test_fits(size_t n, size_t d, size_t k, int n_threads, uint64_t seed)
{
    float *xf;
    double *xd;
    make_data(n, d, k, seed, &xf, &xd);
    static const gmm_init_method inits[] = {GMM_INIT_KMEANS, GMM_INIT_KMEANS_PLUSPLUS, GMM_INIT_RANDOM,
                                            GMM_INIT_RANDOM_FROM_DATA};
    int *lf = malloc(n * sizeof *lf), *ld = malloc(n * sizeof *ld);
    CHECK(lf && ld);
    for (int t = 0; t < 4 && lf && ld; t++)
        for (size_t ii = 0; ii < sizeof inits / sizeof *inits; ii++) {
            gmm_options o;
            gmm_options_init(&o);
            o.n_components = (int)k;
            o.covariance_type = (gmm_covariance_type)t;
            o.init = inits[ii];
            o.n_init = 2;
            o.max_iter = 20;
            o.tol = 0.0;
            o.n_threads = n_threads;
            o.seed = seed + (uint64_t)(10 * t + (int)ii);
            gmm_model *mf = NULL, *md = NULL, *pf = NULL, *pd = NULL;
            CHECK(gmm_fit_f32(xf, n, d, &o, &mf) == GMM_OK);
            CHECK(gmm_fit(xd, n, d, &o, &md) == GMM_OK);
            const int same = mf && md && same_model(mf, md);
            if (!same)
                fprintf(stderr, "  n=%zu d=%zu k=%zu %s %s: gmm_fit_f32 differs from gmm_fit\n", n, d, k,
                        gmm_covariance_name(o.covariance_type), gmm_init_name(o.init));
            CHECK(same);
            CHECK(mf && mf->n_iter == 20); /* the comparison covers whole runs */
            CHECK(gmm_fit_predict_f32(xf, n, d, &o, &pf, lf) == GMM_OK);
            CHECK(gmm_fit_predict(xd, n, d, &o, &pd, ld) == GMM_OK);
            CHECK(pf && pd && same_model(pf, pd) && same_model(pf, md));
            CHECK(memcmp(lf, ld, n * sizeof *lf) == 0);
            gmm_model_free(mf);
            gmm_model_free(md);
            gmm_model_free(pf);
            gmm_model_free(pd);
        }
    free(lf);
    free(ld);
    free(xf);
    free(xd);
}

/* gmm_infer_f32 against gmm_infer (and gmm_predict, gmm_predict_proba, gmm_score_samples) on the widened
 * copy: logp, labels and responsibilities bit for bit. */
static void test_infer(size_t n, size_t d, size_t k, uint64_t seed)
{
    float *xf;
    double *xd;
    make_data(n, d, k, seed, &xf, &xd);
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = (int)k;
    o.max_iter = 10;
    o.n_threads = 3;
    gmm_model *m = NULL;
    CHECK(gmm_fit(xd, n, d, &o, &m) == GMM_OK);
    double *lpf = malloc(n * sizeof *lpf), *lpd = malloc(n * sizeof *lpd);
    double *rf = malloc(n * k * sizeof *rf), *rd = malloc(n * k * sizeof *rd);
    int *lf = malloc(n * sizeof *lf), *ld = malloc(n * sizeof *ld);
    CHECK(m && lpf && lpd && rf && rd && lf && ld);
    if (m && lpf && lpd && rf && rd && lf && ld) {
        for (int with_options = 0; with_options < 2; with_options++) {
            const gmm_options *oo = with_options ? &o : NULL;
            memset(lpf, 0, n * sizeof *lpf);
            CHECK(gmm_infer_f32(m, xf, n, oo, lpf, lf, rf) == GMM_OK);
            CHECK(gmm_infer(m, xd, n, oo, lpd, ld, rd) == GMM_OK);
            CHECK(memcmp(lpf, lpd, n * sizeof *lpf) == 0);
            CHECK(memcmp(lf, ld, n * sizeof *lf) == 0);
            CHECK(memcmp(rf, rd, n * k * sizeof *rf) == 0);
        }
        /* and the CPU reference's own calls on the double copy */
        CHECK(gmm_score_samples(m, xd, n, lpd) == GMM_OK && memcmp(lpf, lpd, n * sizeof *lpf) == 0);
        CHECK(gmm_predict(m, xd, n, ld) == GMM_OK && memcmp(lf, ld, n * sizeof *lf) == 0);
        CHECK(gmm_predict_proba(m, xd, n, rd) == GMM_OK && memcmp(rf, rd, n * k * sizeof *rf) == 0);
        double sum = 0.0;
        for (size_t i = 0; i < n; i++) sum += lpf[i];
        CHECK(isfinite(sum) && sum != 0.0);
    }
    gmm_model_free(m);
    free(lpf);
    free(lpd);
    free(rf);
    free(rd);
    free(lf);
    free(ld);
    free(xf);
    free(xd);
}

/* Non-finite float values: refused by every float32 entry point with the row and column named. */
static void test_bad_values(void)
{
    const size_t n = 50, d = 3;
    float *xf;
    double *xd;
    make_data(n, d, 2, 77, &xf, &xd);
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 2;
    gmm_model *m = NULL;
    CHECK(gmm_fit(xd, n, d, &o, &m) == GMM_OK);
    int labels[50];
    double logp[50];
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t t = 0; t < 3; t++) {
        xf[17 * d + 2] = bad[t];
        gmm_model *out = NULL;
        CHECK(gmm_fit_f32(xf, n, d, &o, &out) == GMM_ERR_INVALID_ARG && out == NULL);
        CHECK_STR_CONTAINS(gmm_last_error(), "row 17, column 2");
        CHECK(gmm_fit_predict_f32(xf, n, d, &o, &out, labels) == GMM_ERR_INVALID_ARG && out == NULL);
        CHECK_STR_CONTAINS(gmm_last_error(), "row 17, column 2");
        CHECK(m && gmm_infer_f32(m, xf, n, NULL, logp, NULL, NULL) == GMM_ERR_INVALID_ARG);
        CHECK_STR_CONTAINS(gmm_last_error(), "row 17, column 2");
    }
    gmm_model *out = NULL;
    CHECK(gmm_fit_f32(NULL, n, d, &o, &out) == GMM_ERR_INVALID_ARG);
    CHECK(gmm_infer_f32(m, NULL, n, NULL, logp, NULL, NULL) == GMM_ERR_INVALID_ARG);
    gmm_model_free(m);
    free(xf);
    free(xd);
}

int main(void)
{
    test_fits(9001, 3, 4, 3, 101);  /* several chunks and blocks, three threads */
    test_fits(601, 1, 2, 1, 202);   /* one feature */
    test_fits(1500, 70, 3, 2, 303); /* above the OpenBLAS threshold (d = 64) */
    test_infer(20011, 5, 6, 404);
    test_bad_values();
    return check_exit();
}
