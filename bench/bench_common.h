/*
 * bench_common.h — what the CPU and GPU benchmarks share: the case list syntax ("DxK:N1,N2@R,..."), the
 * generating model of the synthetic data (k well-separated Gaussians with random full covariances), and
 * the median. Header-only (static inline, so a file that uses only some of them builds warning-free);
 * included by bench_cpu.c and bench_gpu.c.
 */
#ifndef GMM_BENCH_COMMON_H
#define GMM_BENCH_COMMON_H

#include "gmm.h"
#include "gmm_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_MAX_CASES 64

typedef struct bench_case {
    size_t d, k, n;
    int iters; /* from "N@R"; 0 when the spec gives none */
} bench_case;

/* Parses a count such as "100000" or "1e6"; 0 on error. */
static inline size_t bench_parse_count(const char *s, const char **end)
{
    char *e = NULL;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || errno || !(v >= 1.0) || v > 1e12 || v != floor(v)) return 0;
    *end = e;
    return (size_t)v;
}

/* Appends the cases of one SPEC ("DxK:N1,N2@R,...") to cases[*n_cases]; 0 on success, -1 with a message
 * naming prog on stderr. */
static inline int bench_parse_spec(const char *prog, const char *spec, bench_case *cases, int *n_cases)
{
    unsigned long d = 0, k = 0;
    int used = 0;
    if (sscanf(spec, "%lux%lu:%n", &d, &k, &used) != 2 || used == 0 || d < 1 || k < 1 || d > 4096 || k > 65536) {
        fprintf(stderr, "%s: bad case spec '%s' (expected DxK:N1,N2,... e.g. 2x4:5000,1e6)\n", prog, spec);
        return -1;
    }
    const char *p = spec + used;
    for (;;) {
        const char *e = NULL;
        size_t n = bench_parse_count(p, &e);
        if (!n) {
            fprintf(stderr, "%s: bad point count in '%s' at '%s'\n", prog, spec, p);
            return -1;
        }
        int iters = 0;
        if (*e == '@') {
            char *e2 = NULL;
            long r = strtol(e + 1, &e2, 10);
            if (e2 == e + 1 || r < 2 || r > 100000) {
                fprintf(stderr, "%s: bad iteration count in '%s' (N@R needs R >= 2)\n", prog, spec);
                return -1;
            }
            iters = (int)r;
            e = e2;
        }
        if (*n_cases == BENCH_MAX_CASES) {
            fprintf(stderr, "%s: at most %d cases\n", prog, BENCH_MAX_CASES);
            return -1;
        }
        cases[(*n_cases)++] = (bench_case){(size_t)d, (size_t)k, n, iters};
        if (*e == '\0') break;
        if (*e != ',') {
            fprintf(stderr, "%s: unexpected '%c' in case spec '%s'\n", prog, *e, spec);
            return -1;
        }
        p = e + 1;
    }
    return 0;
}

/* Handles "--cases SPEC..." at argv[*i]: parses every following argument up to the next "--option" as a
 * SPEC, replacing the default list on the first --cases (*have_cases tracks that); advances *i past them.
 * 0 on success, -1 with a message. */
static inline int bench_parse_cases_option(const char *prog, int argc, char **argv, int *i, bench_case *cases,
                                           int *n_cases, int *have_cases)
{
    if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2)) {
        fprintf(stderr, "%s: --cases needs at least one SPEC\n", prog);
        return -1;
    }
    if (!*have_cases) *n_cases = 0;
    *have_cases = 1;
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2))
        if (bench_parse_spec(prog, argv[++*i], cases, n_cases)) return -1;
    return 0;
}

/* The generating model of the synthetic data: weights in [0.5, 1.5) (normalized), means uniform in
 * [-10, 10]^d at least 8 apart (the distance relaxed by 10% every 1000 tries), covariances A A^T / (2d) +
 * 0.1 I with A standard normal. Deterministic in seed. */
static inline gmm_status bench_true_model(size_t d, size_t k, uint64_t seed, gmm_model **out)
{
    gmm_rng rng;
    gmm_rng_seed(&rng, seed);
    double *w = malloc(k * sizeof *w), *mu = malloc(k * d * sizeof *mu);
    double *cov = malloc(k * d * d * sizeof *cov), *a = malloc(d * d * sizeof *a);
    gmm_status st = GMM_ERR_NOMEM;
    *out = NULL;
    if (!w || !mu || !cov || !a) goto done;
    for (size_t c = 0; c < k; c++) w[c] = 0.5 + gmm_rng_uniform(&rng);
    double min_dist = 8.0;
    for (size_t c = 0; c < k; c++) {
        for (int tries = 0;; tries++) {
            if (tries > 0 && tries % 1000 == 0) min_dist *= 0.9;
            double *m = mu + c * d;
            for (size_t j = 0; j < d; j++) m[j] = -10.0 + 20.0 * gmm_rng_uniform(&rng);
            int ok = 1;
            for (size_t o = 0; o < c && ok; o++) {
                double s = 0.0;
                for (size_t j = 0; j < d; j++) s += (m[j] - mu[o * d + j]) * (m[j] - mu[o * d + j]);
                ok = s >= min_dist * min_dist;
            }
            if (ok) break;
        }
    }
    for (size_t c = 0; c < k; c++) {
        for (size_t i = 0; i < d * d; i++) a[i] = gmm_rng_normal(&rng);
        double *s = cov + c * d * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                double v = 0.0;
                for (size_t l = 0; l < d; l++) v += a[i * d + l] * a[j * d + l];
                s[i * d + j] = 0.5 * v / (double)d + (i == j ? 0.1 : 0.0);
            }
    }
    st = gmm_model_from_params(k, d, GMM_COV_FULL, w, mu, cov, out);
done:
    free(w);
    free(mu);
    free(cov);
    free(a);
    return st;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v (n >= 1), which it sorts ascending. */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif /* GMM_BENCH_COMMON_H */
