/*
 * test_cpu_backend.c — the CPU backend's pass over the data against the reference formulas, for every
 * covariance type and on both sides of the OpenBLAS threshold (d = 64): the statistics (N_k, S_k, T_k, the
 * log-likelihood) and the predict pass equal a plain per-point computation with gmm_log_gauss_point; diag
 * and spherical models accumulate only diagonal second moments and give the same bits as the same model
 * stored as full; the statistics and whole fits are bit-identical for 1, 2 and 3 threads; the memory a pass
 * keeps does not grow with the number of chunks; and diag models at d = 1000 score and sample through the
 * O(k d) path.
 */
#include "check.h"
#include "gmm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
/* The sanitizer runtime's count (declared here: GCC installs no sanitizer/allocator_interface.h). */
size_t __sanitizer_get_current_allocated_bytes(void);
/* Bytes currently allocated by malloc and friends. */
static size_t heap_bytes(void) { return __sanitizer_get_current_allocated_bytes(); }
#else
#include <malloc.h>
static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

#define CHUNK 4096 /* the backend's smallest chunk (GMM_CPU_MIN_CHUNK) */

/* n points in d dimensions around k random centers, not a multiple of any block size. */
static double *make_data(size_t n, size_t d, size_t k, uint64_t seed)
{
    gmm_rng r;
    gmm_rng_seed(&r, seed);
    double *centers = malloc(k * d * sizeof *centers), *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < k * d; i++) centers[i] = 4.0 * gmm_rng_normal(&r);
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)gmm_rng_below(&r, k);
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = centers[c * d + j] + (0.5 + 0.1 * (double)(j % 7)) * gmm_rng_normal(&r);
    }
    free(centers);
    return x;
}

/* A model of the given type with random parameters (covariances in the type's own shape). */
static gmm_model *make_model(size_t k, size_t d, gmm_covariance_type type, uint64_t seed)
{
    gmm_rng r;
    gmm_rng_seed(&r, seed);
    double *w = malloc(k * sizeof *w), *mu = malloc(k * d * sizeof *mu);
    size_t nc = gmm_covariance_size(type, k, d);
    double *cov = malloc(nc * sizeof *cov);
    for (size_t c = 0; c < k; c++) w[c] = 0.5 + gmm_rng_uniform(&r);
    for (size_t i = 0; i < k * d; i++) mu[i] = 4.0 * gmm_rng_normal(&r);
    if (type == GMM_COV_DIAG || type == GMM_COV_SPHERICAL) {
        for (size_t i = 0; i < nc; i++) cov[i] = 0.5 + 2.0 * gmm_rng_uniform(&r);
    } else { /* A A^T / d + I: symmetric positive definite */
        size_t nm = type == GMM_COV_FULL ? k : 1;
        double *a = malloc(d * d * sizeof *a);
        for (size_t c = 0; c < nm; c++) {
            for (size_t i = 0; i < d * d; i++) a[i] = gmm_rng_normal(&r);
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j <= i; j++) {
                    double v = 0.0;
                    for (size_t p = 0; p < d; p++) v += a[i * d + p] * a[j * d + p];
                    v /= (double)d;
                    if (i == j) v += 1.0;
                    cov[c * d * d + i * d + j] = cov[c * d * d + j * d + i] = v;
                }
        }
        free(a);
    }
    gmm_model *m = NULL;
    CHECK(gmm_model_from_params(k, d, type, w, mu, cov, &m) == GMM_OK);
    free(w);
    free(mu);
    free(cov);
    return m;
}

/* One stats pass of model m over x (n, d) with the given threads into s (allocated here). */
static gmm_status run_stats(const gmm_model *m, const double *x, size_t n, int threads, gmm_stats *s)
{
    gmm_backend b;
    gmm_status st = gmm_backend_cpu_open(&b, x, n, m->d, threads);
    if (st != GMM_OK) return st;
    st = gmm_stats_alloc(s, m->k, m->d);
    if (st == GMM_OK) st = b.stats(&b, m, s);
    b.release(&b);
    return st;
}

/* The reference: per point, log w_k + gmm_log_gauss_point, log-sum-exp, responsibilities, and the
 * statistics around the model's means summed point by point (full d x d moments). */
static void reference_stats(const gmm_model *m, const double *x, size_t n, gmm_stats *s, double *logp)
{
    const size_t k = m->k, d = m->d;
    double *lw = malloc(k * sizeof *lw);
    gmm_stats_zero(s);
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * d;
        double mx = -INFINITY, sum = 0.0;
        for (size_t c = 0; c < k; c++) {
            lw[c] = log(m->weights[c]) +
                    gmm_log_gauss_point(xi, m->means + c * d, m->prec_chol + c * d * d, m->log_det_chol[c], d);
            if (lw[c] > mx) mx = lw[c];
        }
        for (size_t c = 0; c < k; c++) sum += exp(lw[c] - mx);
        const double lse = mx + log(sum);
        s->loglik += lse;
        if (logp) logp[i] = lse;
        for (size_t c = 0; c < k; c++) {
            const double r = exp(lw[c] - lse);
            const double *mu = m->means + c * d;
            s->nk[c] += r;
            for (size_t a = 0; a < d; a++) {
                s->sk[c * d + a] += r * (xi[a] - mu[a]);
                for (size_t bb = 0; bb < d; bb++)
                    s->tk[c * d * d + a * d + bb] += r * (xi[a] - mu[a]) * (xi[bb] - mu[bb]);
            }
        }
    }
    free(lw);
}

/* Largest |a_i| over count doubles (the scale of a relative comparison). */
static double max_abs(const double *a, size_t count)
{
    double v = 0.0;
    for (size_t i = 0; i < count; i++) v = fabs(a[i]) > v ? fabs(a[i]) : v;
    return v;
}

/* The backend's statistics and predict pass against the reference formulas, 1e-12 of each array's scale;
 * diag and spherical moments are 0 off the diagonal. */
static void test_against_reference(void)
{
    static const struct {
        size_t d;
        gmm_covariance_type type;
    } cases[] = {{5, GMM_COV_FULL},  {70, GMM_COV_FULL},  {7, GMM_COV_TIED},      {66, GMM_COV_TIED},
                 {40, GMM_COV_DIAG}, {100, GMM_COV_DIAG}, {33, GMM_COV_SPHERICAL}};
    const size_t n = CHUNK + 77, k = 3;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const size_t d = cases[t].d;
        double *x = make_data(n, d, k, 10 + t);
        gmm_model *m = make_model(k, d, cases[t].type, 20 + t);
        gmm_stats got, ref;
        CHECK(run_stats(m, x, n, 2, &got) == GMM_OK);
        CHECK(gmm_stats_alloc(&ref, k, d) == GMM_OK);
        double *logp_ref = malloc(n * sizeof *logp_ref), *logp = malloc(n * sizeof *logp);
        reference_stats(m, x, n, &ref, logp_ref);
        const double snk = max_abs(ref.nk, k), ssk = max_abs(ref.sk, k * d), stk = max_abs(ref.tk, k * d * d);
        CHECK_NEAR(got.loglik, ref.loglik, 0, 1e-12);
        for (size_t i = 0; i < k; i++) CHECK_NEAR(got.nk[i], ref.nk[i], 1e-12 * snk, 0);
        for (size_t i = 0; i < k * d; i++) CHECK_NEAR(got.sk[i], ref.sk[i], 1e-12 * ssk, 0);
        const int diag = cases[t].type == GMM_COV_DIAG || cases[t].type == GMM_COV_SPHERICAL;
        size_t off_nonzero = 0, bad = 0;
        for (size_t c = 0; c < k; c++)
            for (size_t a = 0; a < d; a++)
                for (size_t bb = 0; bb < d; bb++) {
                    const size_t i = c * d * d + a * d + bb;
                    if (diag && a != bb)
                        off_nonzero += got.tk[i] != 0.0;
                    else
                        bad += !(fabs(got.tk[i] - ref.tk[i]) <= 1e-12 * stk);
                }
        CHECK_INT_EQ(off_nonzero, 0);
        CHECK_INT_EQ(bad, 0);
        gmm_backend b;
        CHECK(gmm_backend_cpu_open(&b, x, n, d, 3) == GMM_OK);
        CHECK(b.predict(&b, m, logp, NULL, NULL) == GMM_OK);
        b.release(&b);
        size_t bad_logp = 0;
        for (size_t i = 0; i < n; i++)
            bad_logp += !(fabs(logp[i] - logp_ref[i]) <= 1e-12 * (1.0 + fabs(logp_ref[i])));
        CHECK_INT_EQ(bad_logp, 0);
        if (bad || bad_logp) fprintf(stderr, "  case d = %zu, %s\n", d, gmm_covariance_name(cases[t].type));
        free(logp);
        free(logp_ref);
        gmm_stats_free(&got);
        gmm_stats_free(&ref);
        gmm_model_free(m);
        free(x);
    }
}

/* A diag (or spherical) model and the same parameters typed full (below the OpenBLAS threshold, so both run
 * the backend's own loops): the same log-densities, N_k, S_k and diagonal moments, bit for bit; and the same
 * precision factors and samples. */
static void test_diag_equals_full(void)
{
    const size_t n = 2 * CHUNK + 5, k = 4, d = 24;
    double *x = make_data(n, d, k, 3);
    for (int sph = 0; sph < 2; sph++) {
        gmm_model *m = make_model(k, d, sph ? GMM_COV_SPHERICAL : GMM_COV_DIAG, 4);
        gmm_model *f = gmm_model_clone(m);
        f->cov_type = GMM_COV_FULL;
        CHECK(gmm_model_update_precisions(f) == GMM_OK);
        CHECK(!memcmp(m->prec_chol, f->prec_chol, k * d * d * sizeof(double)));
        CHECK(!memcmp(m->log_det_chol, f->log_det_chol, k * sizeof(double)));
        gmm_stats sd, sf;
        CHECK(run_stats(m, x, n, 2, &sd) == GMM_OK);
        CHECK(run_stats(f, x, n, 2, &sf) == GMM_OK);
        CHECK(sd.loglik == sf.loglik);
        CHECK(!memcmp(sd.nk, sf.nk, k * sizeof(double)));
        CHECK(!memcmp(sd.sk, sf.sk, k * d * sizeof(double)));
        size_t diff = 0;
        for (size_t c = 0; c < k; c++)
            for (size_t j = 0; j < d; j++) diff += sd.tk[c * d * d + j * d + j] != sf.tk[c * d * d + j * d + j];
        CHECK_INT_EQ(diff, 0);
        double *xd = NULL, *xf = NULL;
        CHECK(gmm_sample(m, 500, 9, &xd, NULL) == GMM_OK);
        CHECK(gmm_sample(f, 500, 9, &xf, NULL) == GMM_OK);
        CHECK(xd && xf && !memcmp(xd, xf, 500 * d * sizeof(double)));
        free(xd);
        free(xf);
        gmm_stats_free(&sd);
        gmm_stats_free(&sf);
        gmm_model_free(m);
        gmm_model_free(f);
    }
    free(x);
}

static int stats_identical(const gmm_stats *a, const gmm_stats *b)
{
    const size_t k = a->k, d = a->d;
    return !memcmp(&a->loglik, &b->loglik, sizeof(double)) && !memcmp(a->nk, b->nk, k * sizeof(double)) &&
           !memcmp(a->sk, b->sk, k * d * sizeof(double)) && !memcmp(a->tk, b->tk, k * d * d * sizeof(double));
}

/* Statistics of every type, on both sides of the OpenBLAS threshold, over 6 chunks (the last one partial):
 * 1, 2 and 3 threads give the same bits. */
static void test_threads_identical(void)
{
    static const struct {
        size_t d;
        gmm_covariance_type type;
    } cases[] = {
        {6, GMM_COV_FULL}, {64, GMM_COV_FULL}, {64, GMM_COV_TIED}, {30, GMM_COV_DIAG}, {9, GMM_COV_SPHERICAL}};
    const size_t n = 5 * CHUNK + 123, k = 5;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        double *x = make_data(n, cases[t].d, k, 30 + t);
        gmm_model *m = make_model(k, cases[t].d, cases[t].type, 40 + t);
        gmm_stats s1, s;
        CHECK(run_stats(m, x, n, 1, &s1) == GMM_OK);
        for (int threads = 2; threads <= 3; threads++) {
            CHECK(run_stats(m, x, n, threads, &s) == GMM_OK);
            if (!stats_identical(&s1, &s))
                fprintf(stderr, "  d = %zu %s: %d threads differ from 1\n", cases[t].d,
                        gmm_covariance_name(cases[t].type), threads);
            CHECK(stats_identical(&s1, &s));
            gmm_stats_free(&s);
        }
        gmm_stats_free(&s1);
        gmm_model_free(m);
        free(x);
    }
    /* whole diag and spherical fits, initial responsibilities (kmeans, random) included */
    double *x = make_data(n, 6, 3, 50);
    gmm_init_method inits[] = {GMM_INIT_KMEANS, GMM_INIT_RANDOM};
    for (int sph = 0; sph < 2; sph++)
        for (int ii = 0; ii < 2; ii++) {
            gmm_model *ref = NULL;
            for (int threads = 1; threads <= 3; threads++) {
                gmm_options o;
                gmm_options_init(&o);
                o.n_components = 3;
                o.covariance_type = sph ? GMM_COV_SPHERICAL : GMM_COV_DIAG;
                o.init = inits[ii];
                o.max_iter = 8;
                o.n_threads = threads;
                gmm_model *m = NULL;
                CHECK(gmm_fit(x, n, 6, &o, &m) == GMM_OK);
                if (!m) continue;
                if (!ref) {
                    ref = m;
                    continue;
                }
                CHECK(m->n_iter == ref->n_iter && !memcmp(m->means, ref->means, 3 * 6 * sizeof(double)) &&
                      !memcmp(m->covariances, ref->covariances, 3 * 36 * sizeof(double)) &&
                      !memcmp(m->weights, ref->weights, 3 * sizeof(double)));
                gmm_model_free(m);
            }
            gmm_model_free(ref);
        }
    free(x);
}

/* Heap bytes a backend keeps after one stats pass of m over the first n points of x with 2 threads (its
 * buffers live until release, and a pass allocates nothing else that outlives it). */
static size_t pass_memory(const gmm_model *m, const double *x, size_t n)
{
    gmm_backend b;
    gmm_stats s;
    CHECK(gmm_stats_alloc(&s, m->k, m->d) == GMM_OK);
    const size_t before = heap_bytes();
    CHECK(gmm_backend_cpu_open(&b, x, n, m->d, 2) == GMM_OK);
    CHECK(b.stats(&b, m, &s) == GMM_OK);
    const size_t after = heap_bytes();
    b.release(&b);
    gmm_stats_free(&s);
    return after > before ? after - before : 0;
}

/* The memory of a stats pass is the same for 2 chunks and for 24: one chunk's statistics per thread, not one
 * per chunk (24 chunks' statistics would be 24 x 64 x (1 + 8 + 64) doubles = 0.9 MB more). */
static void test_memory_bounded(void)
{
    const size_t k = 64, d = 8, chunk_stats = (k * (1 + d + d * d) + 1) * sizeof(double);
    const size_t n_big = 24 * CHUNK;
    double *x = make_data(n_big, d, 4, 60);
    gmm_model *m = make_model(k, d, GMM_COV_FULL, 61);
    /* the measure sees a block of this size (so the check below cannot pass on a blind counter) */
    size_t h0 = heap_bytes();
    double *probe = malloc(4 * chunk_stats);
    memset(probe, 1, 4 * chunk_stats);
    CHECK(heap_bytes() >= h0 + 4 * chunk_stats);
    free(probe);
    (void)pass_memory(m, x, 2 * CHUNK); /* warm-up: the OpenMP runtime's own allocations */
    const size_t small = pass_memory(m, x, 2 * CHUNK), big = pass_memory(m, x, n_big);
    fprintf(stderr, "  stats pass memory: %zu bytes with 2 chunks, %zu with 24 (one chunk's statistics: %zu)\n",
            small, big, chunk_stats);
    CHECK(small > 0);
    CHECK(big <= small + chunk_stats / 2);
    CHECK(big <= 3 * chunk_stats + 64 * 1024); /* two threads' statistics and scratch */
    gmm_model_free(m);
    free(x);
}

/* A diag model at d = 1000, its points drawn by gmm_sample: score_samples equals the direct O(k d) formula
 * (the O(k d) routes; the d x d ones took seconds here). */
static void test_large_d_diag(void)
{
    const size_t k = 2, d = 1000, n = 300;
    gmm_model *m = make_model(k, d, GMM_COV_DIAG, 70);
    double *x = NULL;
    CHECK(gmm_sample(m, n, 1, &x, NULL) == GMM_OK);
    if (!x) return;
    double *logp = malloc(n * sizeof *logp);
    CHECK(gmm_score_samples(m, x, n, logp) == GMM_OK);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double lw[2], mx = -INFINITY;
        for (size_t c = 0; c < k; c++) {
            double q = 0.0, ld = 0.0;
            for (size_t j = 0; j < d; j++) {
                const double v = m->covariances[c * d * d + j * d + j], t = x[i * d + j] - m->means[c * d + j];
                q += t * t / v;
                ld += log(v);
            }
            lw[c] = log(m->weights[c]) -
                    0.5 * ((double)d * 1.8378770664093454835606594728112 + ld + q); /* log 2 pi */
            mx = lw[c] > mx ? lw[c] : mx;
        }
        const double ref = mx + log(exp(lw[0] - mx) + exp(lw[1] - mx));
        bad += !(fabs(logp[i] - ref) <= 1e-10 * fabs(ref));
    }
    CHECK_INT_EQ(bad, 0);
    free(logp);
    free(x);
    gmm_model_free(m);
}

int main(void)
{
    test_against_reference();
    test_diag_equals_full();
    test_threads_identical();
    test_memory_bounded();
    test_large_d_diag();
    return check_exit();
}
