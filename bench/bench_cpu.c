/*
 * bench_cpu.c — the CPU benchmark of gmm_fit: per EM iteration time of the double-precision CPU path on
 * deterministic synthetic data, with the files that bench/bench_sklearn.py needs to time scikit-learn on
 * exactly the same work.
 *
 * For every case (d, K, N, R), named dDkK_nN_rR: draws N points from a fixed-seed mixture of K
 * well-separated Gaussians with random full covariances (gmm_sample), builds a deterministic initial model
 * (K distinct random data points as means, the data covariance in the shape of --covariance as every
 * covariance, equal weights; with --init-means clusters the first point drawn from each generating component
 * as its mean instead, so that no component starts between clusters), writes DIR/<case>.npy (the data, float64), DIR/<case>.init.json (the initial
 * model) and DIR/<case>.prec.npy (its precisions in the type's shape: full (K, D*D), tied (D, D), diag
 * (K, D), spherical (K, 1)), then runs gmm_fit from weights_init / means_init / precisions_init (so no init
 * method runs), tol = 0 and max_iter = R, and writes DIR/<case>.gmm.json (the fitted model with its
 * log-likelihood trace and per-iteration seconds). Reported: the MEDIAN of gmm_model_iter_seconds() over
 * iterations 2..R (iteration 1 is warm-up: first touch of scratch and partials), the fastest iteration, the
 * effective read rate (bytes of X per iteration / median time), and, measured in the same run, the time of
 * one plain parallel read of X (a sum over it with the same threads) — the memory floor of an iteration —
 * and gmm's time over that floor.
 *
 * Usage: bench_cpu [--cases SPEC...] [--covariance TYPE] [--max-n N] [--iters R] [--threads T] [--repeats P]
 *                  [--seed S] [--work DIR] [--csv FILE]
 *   TYPE: full (default), tied, diag or spherical, for every case; case names other than full's end in _TYPE.
 *   SPEC is DxK:N1,N2,... ; each N may carry its own iteration count as N@R (e.g. 2x4:5000,1e7@6).
 *   Default cases: 2x4:5000,100000,1000000,10000000 16x16:100000,1000000.
 */
#include "bench_common.h"
#include "gmm.h"
#include "gmm_internal.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct bench_args {
    bench_case cases[BENCH_MAX_CASES];
    int n_cases;
    double max_n;
    int iters;
    int threads;
    int repeats;
    uint64_t seed;
    const char *work;
    const char *csv;
    gmm_covariance_type cov;
    int means_by_cluster; /* --init-means clusters */
} bench_args;

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_cpu [--cases SPEC...] [--covariance TYPE] [--max-n N] [--iters R] [--threads T]\n"
               "                 [--repeats P] [--seed S] [--work DIR] [--csv FILE]\n"
               "  SPEC   DxK:N1,N2,...  (each N may be N@R to set its iteration count), e.g.\n"
               "         --cases 2x4:5000,100000 16x16:1e5\n"
               "         default: 2x4:5000,100000,1000000,10000000 16x16:100000,1000000\n"
               "  --covariance TYPE  full (default), tied, diag or spherical\n"
               "  --init-means M     random (default: K distinct random points) or clusters (the first point\n"
               "                     drawn from each generating component)\n"
               "  --max-n N     skip cases with more than N points\n"
               "  --iters R     EM iterations per fit (default 10; >= 2, iteration 1 is warm-up)\n"
               "  --threads T   OpenMP threads (default: OpenMP's maximum)\n"
               "  --repeats P   fits per case; the median is over all their iterations 2..R (default 1)\n"
               "  --seed S      data seed (default 20240601)\n"
               "  --work DIR    where the .npy data and the .json models go (default bench-work)\n"
               "  --csv FILE    also write the results as CSV\n");
}

static int parse_args(int argc, char **argv, bench_args *a)
{
    memset(a, 0, sizeof *a);
    a->max_n = INFINITY;
    a->iters = 10;
    a->repeats = 1;
    a->seed = 20240601u;
    a->work = "bench-work";
    int have_cases = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(o, "--cases")) {
            if (bench_parse_cases_option("bench_cpu", argc, argv, &i, a->cases, &a->n_cases, &have_cases)) return -1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_cpu: %s needs a value\n", o);
            return -1;
        }
        char *e = NULL;
        if (!strcmp(o, "--max-n")) {
            a->max_n = strtod(v, &e);
            if (e == v || *e || !(a->max_n >= 1)) goto bad;
        } else if (!strcmp(o, "--iters")) {
            long r = strtol(v, &e, 10);
            if (e == v || *e || r < 2 || r > 100000) goto bad;
            a->iters = (int)r;
        } else if (!strcmp(o, "--threads")) {
            long t = strtol(v, &e, 10);
            if (e == v || *e || t < 0 || t > 4096) goto bad;
            a->threads = (int)t;
        } else if (!strcmp(o, "--repeats")) {
            long r = strtol(v, &e, 10);
            if (e == v || *e || r < 1 || r > 1000) goto bad;
            a->repeats = (int)r;
        } else if (!strcmp(o, "--seed")) {
            unsigned long long s = strtoull(v, &e, 10);
            if (e == v || *e) goto bad;
            a->seed = (uint64_t)s;
        } else if (!strcmp(o, "--work")) {
            a->work = v;
        } else if (!strcmp(o, "--csv")) {
            a->csv = v;
        } else if (!strcmp(o, "--covariance")) {
            if (gmm_covariance_parse(v, &a->cov)) goto bad;
        } else if (!strcmp(o, "--init-means")) {
            if (strcmp(v, "random") && strcmp(v, "clusters")) goto bad;
            a->means_by_cluster = !strcmp(v, "clusters");
        } else {
            fprintf(stderr, "bench_cpu: unknown option '%s'\n", o);
            usage(stderr);
            return -1;
        }
        i++;
        continue;
    bad:
        fprintf(stderr, "bench_cpu: bad value '%s' for %s\n", v, o);
        return -1;
    }
    if (!have_cases) {
        const char *defaults[] = {"2x4:5000,100000,1000000,10000000", "16x16:100000,1000000"};
        for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
            if (bench_parse_spec("bench_cpu", defaults[i], a->cases, &a->n_cases)) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- the data */


/* The type's shape of k copies of the full covariance cov (d, d) and of its inverse prec (d, d): full as
 * they are, tied once, diag their diagonals, spherical the mean of cov's diagonal and its inverse. */
static void type_shape(gmm_covariance_type type, size_t k, size_t d, const double *cov, const double *prec,
                       double *cov_out, double *prec_out)
{
    double mean_var = 0.0;
    for (size_t j = 0; j < d; j++) mean_var += cov[j * d + j];
    mean_var /= (double)d;
    const size_t copies = type == GMM_COV_TIED ? 1 : k;
    for (size_t c = 0; c < copies; c++) switch (type) {
        case GMM_COV_FULL:
        case GMM_COV_TIED:
            memcpy(cov_out + c * d * d, cov, d * d * sizeof *cov);
            memcpy(prec_out + c * d * d, prec, d * d * sizeof *prec);
            break;
        case GMM_COV_DIAG:
            for (size_t j = 0; j < d; j++) {
                cov_out[c * d + j] = cov[j * d + j];
                prec_out[c * d + j] = 1.0 / cov[j * d + j];
            }
            break;
        case GMM_COV_SPHERICAL:
            cov_out[c] = mean_var;
            prec_out[c] = 1.0 / mean_var;
            break;
        }
}

/* The initial model of covariance type `type`: k distinct data points (drawn with rng) as means, the data
 * covariance (two-pass, in double) in the type's shape as every covariance, equal weights. Also hands out
 * its precisions in the type's shape (inverse covariances; full and tied through the Cholesky factor:
 * precision = U U^T with U = L^-T), owned by the caller: they are what gmm_fit and scikit-learn are both
 * given, bit for bit. */
static gmm_status initial_model(const double *x, const int *labels, size_t n, size_t d, size_t k,
                                gmm_covariance_type type, uint64_t seed, gmm_model **out, double **prec_out)
{
    if (k > n) return gmm_fail(GMM_ERR_TOO_FEW_POINTS, "%zu points cannot give %zu distinct means", n, k);
    gmm_rng rng;
    gmm_rng_seed(&rng, seed);
    size_t *idx = malloc(k * sizeof *idx);
    double *w = malloc(k * sizeof *w), *mu = malloc(k * d * sizeof *mu);
    double *cov = calloc(k * d * d, sizeof *cov), *mean = calloc(d, sizeof *mean);
    gmm_status st = GMM_ERR_NOMEM;
    if (!idx || !w || !mu || !cov || !mean) goto done;
    for (size_t c = 0; c < k; c++) {
        int fresh;
        idx[c] = n;
        for (size_t i = 0; labels && i < n && idx[c] == n; i++)
            if (labels[i] == (int)c) idx[c] = i;
        while (idx[c] == n) { /* random, or a component that drew no point */
            idx[c] = (size_t)gmm_rng_below(&rng, n);
            fresh = 1;
            for (size_t o = 0; o < c; o++) fresh &= idx[o] != idx[c];
            if (!fresh) idx[c] = n;
        }
        memcpy(mu + c * d, x + idx[c] * d, d * sizeof *mu);
        w[c] = 1.0 / (double)k;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mean[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++) mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * d;
        for (size_t a = 0; a < d; a++)
            for (size_t b = a; b < d; b++) cov[a * d + b] += (xi[a] - mean[a]) * (xi[b] - mean[b]);
    }
    for (size_t a = 0; a < d; a++)
        for (size_t b = a; b < d; b++) {
            cov[a * d + b] /= (double)n;
            cov[b * d + a] = cov[a * d + b];
        }
    double *prec = malloc(k * d * d * sizeof *prec), *l = malloc(d * d * sizeof *l);
    double *u = malloc(d * d * sizeof *u), *full_prec = malloc(d * d * sizeof *full_prec);
    double *cov_t = malloc(k * d * d * sizeof *cov_t);
    if (prec && l && u && full_prec && cov_t) {
        memcpy(l, cov, d * d * sizeof *l);
        if (gmm_cholesky_lower(l, d)) {
            st = gmm_fail(GMM_ERR_NOT_PD, "the data covariance is not positive definite");
        } else {
            gmm_precision_chol_from_cov_chol(l, u, d);
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j < d; j++) {
                    double v = 0.0;
                    for (size_t p = 0; p < d; p++) v += u[i * d + p] * u[j * d + p];
                    full_prec[i * d + j] = v;
                }
            type_shape(type, k, d, cov, full_prec, cov_t, prec);
            st = gmm_model_from_params(k, d, type, w, mu, cov_t, out);
        }
    }
    free(l);
    free(u);
    free(full_prec);
    free(cov_t);
    if (st == GMM_OK) {
        *prec_out = prec;
    } else {
        free(prec);
    }
done:
    free(idx);
    free(w);
    free(mu);
    free(cov);
    free(mean);
    return st;
}

/* ------------------------------------------------------------------------------------------- timing */


/* Seconds of one parallel read of x (count doubles) with `threads` threads: the median of 7 passes after
 * one warm-up. The sum is returned through *sink so that the compiler keeps the loads. */
static double read_floor(const double *x, size_t count, int threads, double *sink)
{
    double t[7], total = 0.0;
    for (int rep = -1; rep < 7; rep++) {
        double s = 0.0, t0 = gmm_now();
#pragma omp parallel for simd reduction(+ : s) schedule(static) num_threads(threads)
        for (size_t i = 0; i < count; i++) s += x[i];
        double dt = gmm_now() - t0;
        if (rep >= 0) t[rep] = dt;
        total += s;
    }
    *sink += total;
    return bench_median(t, 7);
}

/* ------------------------------------------------------------------------------------------------ main */

typedef struct case_result {
    char name[64];
    size_t n, d, k;
    int threads, iters;
    double s_iter, s_min, gbps, floor_s, loglik_mean;
    char data[1024], init[1024], prec[1024], fit[1024];
} case_result;

static int fail(const char *what, gmm_status st)
{
    fprintf(stderr, "bench_cpu: %s: %s: %s\n", what, gmm_strerror(st), gmm_last_error());
    return 1;
}

static int run_case(const bench_args *a, const bench_case *bc, int threads, case_result *r, double *sink)
{
    const size_t n = bc->n, d = bc->d, k = bc->k;
    const int iters = bc->iters ? bc->iters : a->iters;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "d%zuk%zu_n%zu_r%d%s%s", d, k, n, iters, a->cov == GMM_COV_FULL ? "" : "_",
             a->cov == GMM_COV_FULL ? "" : gmm_covariance_name(a->cov));
    r->n = n;
    r->d = d;
    r->k = k;
    r->threads = threads;
    r->iters = iters;
    snprintf(r->data, sizeof r->data, "%s/%s.npy", a->work, r->name);
    snprintf(r->init, sizeof r->init, "%s/%s.init.json", a->work, r->name);
    snprintf(r->prec, sizeof r->prec, "%s/%s.prec.npy", a->work, r->name);
    snprintf(r->fit, sizeof r->fit, "%s/%s.gmm.json", a->work, r->name);

    /* the same true model for every N of a (d, k): the seed depends on d and k only */
    const uint64_t case_seed = a->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(d * 1000003u + k));
    gmm_model *truth = NULL, *init = NULL, *fitted = NULL;
    double *x = NULL, *times = NULL, *prec = NULL;
    int *labels = NULL;
    int rc = 1;
    gmm_status st = bench_true_model(d, k, case_seed, &truth);
    if (st != GMM_OK) return fail("true model", st);
    st = gmm_sample(truth, n, case_seed + 1, &x, a->means_by_cluster ? &labels : NULL);
    if (st != GMM_OK) {
        fail("gmm_sample", st);
        goto done;
    }
    st = initial_model(x, labels, n, d, k, a->cov, case_seed + 2, &init, &prec);
    if (st != GMM_OK) {
        fail("initial model", st);
        goto done;
    }
    st = gmm_write_npy(r->data, x, n, d);
    if (st == GMM_OK) st = gmm_model_save(init, r->init);
    const size_t prec_rows = a->cov == GMM_COV_TIED ? d : k;
    const size_t prec_cols = a->cov == GMM_COV_FULL   ? d * d
                             : a->cov == GMM_COV_TIED ? d
                             : a->cov == GMM_COV_DIAG ? d
                                                      : 1;
    if (st == GMM_OK) st = gmm_write_npy(r->prec, prec, prec_rows, prec_cols);
    if (st != GMM_OK) {
        fail("writing the case files", st);
        goto done;
    }

    gmm_options o;
    gmm_options_init(&o);
    o.n_components = (int)k;
    o.covariance_type = a->cov;
    /* all three given: gmm_fit runs no init method, as scikit-learn with all three *_init */
    o.weights_init = gmm_model_weights(init);
    o.means_init = gmm_model_means(init);
    o.precisions_init = prec;
    o.tol = 0.0; /* |change| < 0 never holds: exactly max_iter iterations, as scikit-learn with tol=0 */
    o.max_iter = iters;
    o.n_threads = threads;
    times = malloc((size_t)a->repeats * (size_t)iters * sizeof *times);
    if (!times) {
        fprintf(stderr, "bench_cpu: out of memory\n");
        goto done;
    }
    size_t n_times = 0;
    for (int rep = 0; rep < a->repeats; rep++) {
        gmm_model_free(fitted);
        fitted = NULL;
        st = gmm_fit(x, n, d, &o, &fitted);
        if (st != GMM_OK) {
            fail("gmm_fit", st);
            goto done;
        }
        int len = 0;
        const double *sec = gmm_model_iter_seconds(fitted, &len);
        if (len != iters) {
            fprintf(stderr, "bench_cpu: %s: gmm_fit ran %d iterations, expected %d\n", r->name, len, iters);
            goto done;
        }
        for (int i = 1; i < len; i++) times[n_times++] = sec[i]; /* iteration 1 is warm-up */
    }
    st = gmm_model_save(fitted, r->fit);
    if (st != GMM_OK) {
        fail("saving the fitted model", st);
        goto done;
    }
    r->s_iter = bench_median(times, n_times);
    r->s_min = times[0]; /* sorted by bench_median() */
    r->gbps = (double)(n * d * sizeof(double)) / r->s_iter / 1e9;
    r->floor_s = read_floor(x, n * d, threads, sink);
    int len = 0;
    const double *trace = gmm_model_loglik_trace(fitted, &len);
    r->loglik_mean = trace[len - 1] / (double)n;
    rc = 0;
done:
    gmm_model_free(truth);
    gmm_model_free(init);
    gmm_model_free(fitted);
    gmm_free(x);
    gmm_free(labels);
    free(times);
    free(prec);
    return rc;
}

int main(int argc, char **argv)
{
    bench_args a;
    if (parse_args(argc, argv, &a)) return 2;
    if (mkdir(a.work, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_cpu: cannot create %s: %s\n", a.work, strerror(errno));
        return 1;
    }
    const int threads = a.threads > 0 ? a.threads : omp_get_max_threads();
    FILE *csv = NULL;
    if (a.csv) {
        csv = fopen(a.csv, "w");
        if (!csv) {
            fprintf(stderr, "bench_cpu: cannot write %s: %s\n", a.csv, strerror(errno));
            return 1;
        }
        fprintf(csv, "case,n,d,k,threads,iters,gmm_s_per_iter,gmm_s_min,gmm_gbps,read_floor_s,"
                     "gmm_over_floor,gmm_loglik_mean,data,init,prec,fit,cov\n");
    }
    printf("gmm CPU benchmark: %d threads; per-iteration time = median of iterations 2..R of gmm_fit "
           "(weights/means/precisions_init given, tol 0)\n",
           threads);
    printf("%-22s %9s %3s %3s %3s %5s %12s %12s %8s %12s %7s %20s\n", "case", "n", "d", "k", "thr", "iters", "s/iter",
           "min s/iter", "GB/s", "read X (s)", "xfloor", "mean loglik");
    fflush(stdout);
    double sink = 0.0;
    int status = 0, ran = 0;
    for (int i = 0; i < a.n_cases; i++) {
        const bench_case *bc = &a.cases[i];
        if ((double)bc->n > a.max_n) {
            printf("d%zuk%zu_n%zu: skipped (n > --max-n %.0f)\n", bc->d, bc->k, bc->n, a.max_n);
            continue;
        }
        case_result r;
        if (run_case(&a, bc, threads, &r, &sink)) {
            status = 1;
            continue;
        }
        ran++;
        printf("%-22s %9zu %3zu %3zu %3d %5d %12.4e %12.4e %8.2f %12.4e %7.2f %20.12f\n", r.name, r.n, r.d, r.k,
               r.threads, r.iters, r.s_iter, r.s_min, r.gbps, r.floor_s, r.s_iter / r.floor_s, r.loglik_mean);
        fflush(stdout);
        if (csv)
            fprintf(csv, "%s,%zu,%zu,%zu,%d,%d,%.6e,%.6e,%.4f,%.6e,%.3f,%.17g,%s,%s,%s,%s,%s\n", r.name, r.n, r.d,
                    r.k, r.threads, r.iters, r.s_iter, r.s_min, r.gbps, r.floor_s, r.s_iter / r.floor_s,
                    r.loglik_mean, r.data, r.init, r.prec, r.fit, gmm_covariance_name(a.cov));
    }
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "bench_cpu: error writing %s\n", a.csv);
        status = 1;
    }
    if (sink == 1234.5) printf("(checksum %g)\n", sink); /* keeps the floor's reads alive */
    if (!ran) {
        fprintf(stderr, "bench_cpu: no case ran\n");
        status = 1;
    }
    return status;
}
