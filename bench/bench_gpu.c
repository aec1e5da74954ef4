/*
 * bench_gpu.c — the GPU benchmark: seconds per EM iteration of the CUDA backend (its stats pass plus the host
 * M-step) on deterministic synthetic data, against the memory floor measured in the same run.
 *
 * For every case (d, k, n): draws n points from a fixed-seed mixture of k well-separated Gaussians (OpenMP,
 * the same points for any thread count), starts from that mixture with its means moved by half a standard
 * deviation, opens the CUDA backend (float32; the upload is timed separately), runs --warmup EM iterations,
 * then --repeats timed ones. Each iteration is timed with CUDA events on the backend's stream around the
 * stats pass and around stats + M-step; reported are the medians (and minima). The floor of an iteration is
 * the time to read X once (n d 4 bytes) at the device-to-device copy bandwidth measured at the start of the
 * run (a cudaMemcpy of 1 GiB, which reads and writes: bandwidth = 2 bytes / time). With --cpu-max-n the CPU
 * reference backend is timed on the same data and model too (wall clock, median), for cases up to that n.
 *
 * Usage: bench_gpu [--cases SPEC...] [--repeats R] [--warmup W] [--max-n N] [--cpu-max-n N] [--seed S]
 *                  [--csv FILE]
 *   SPEC is DxK:N1,N2,... (e.g. 2x4:5e3,1e8). Default: 2x4:5e3,1e5,1e6,1e7,1e8 8x8:1e6,1e7 16x16:1e6,1e7.
 * Prints a table (stdout) and optionally a CSV. Without CUDA in the build, or without a usable device, it
 * says so and exits 0, so that benchmark runners do not fail.
 */
#include "backend_cuda.h"
#include "bench_common.h"
#include "gmm.h"
#include "gmm_internal.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef GMM_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

typedef struct bench_args {
    bench_case cases[BENCH_MAX_CASES];
    int n_cases;
    int repeats, warmup;
    double max_n, cpu_max_n;
    uint64_t seed;
    const char *csv;
} bench_args;

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_gpu [--cases SPEC...] [--repeats R] [--warmup W] [--max-n N] [--cpu-max-n N]\n"
               "                 [--seed S] [--csv FILE]\n"
               "  SPEC          DxK:N1,N2,...   default: 2x4:5e3,1e5,1e6,1e7,1e8 8x8:1e6,1e7 16x16:1e6,1e7\n"
               "  --repeats R   timed EM iterations per case (default 20)\n"
               "  --warmup W    untimed EM iterations first (default 3)\n"
               "  --max-n N     skip cases with more points\n"
               "  --cpu-max-n N also time the CPU reference for cases up to N points (default 0: never)\n"
               "  --seed S      data seed (default 20240601)\n"
               "  --csv FILE    also write the results as CSV\n");
}

static int parse_args(int argc, char **argv, bench_args *a)
{
    memset(a, 0, sizeof *a);
    a->repeats = 20;
    a->warmup = 3;
    a->max_n = INFINITY;
    a->cpu_max_n = 0;
    a->seed = 20240601u;
    int have_cases = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(o, "--cases")) {
            if (bench_parse_cases_option("bench_gpu", argc, argv, &i, a->cases, &a->n_cases, &have_cases)) return -1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_gpu: %s needs a value\n", o);
            return -1;
        }
        char *e = NULL;
        if (!strcmp(o, "--repeats")) {
            long r = strtol(v, &e, 10);
            if (e == v || *e || r < 1 || r > 100000) goto bad;
            a->repeats = (int)r;
        } else if (!strcmp(o, "--warmup")) {
            long r = strtol(v, &e, 10);
            if (e == v || *e || r < 0 || r > 1000) goto bad;
            a->warmup = (int)r;
        } else if (!strcmp(o, "--max-n")) {
            a->max_n = strtod(v, &e);
            if (e == v || *e || !(a->max_n >= 1)) goto bad;
        } else if (!strcmp(o, "--cpu-max-n")) {
            a->cpu_max_n = strtod(v, &e);
            if (e == v || *e || !(a->cpu_max_n >= 0)) goto bad;
        } else if (!strcmp(o, "--seed")) {
            unsigned long long s = strtoull(v, &e, 10);
            if (e == v || *e) goto bad;
            a->seed = (uint64_t)s;
        } else if (!strcmp(o, "--csv")) {
            a->csv = v;
        } else {
            fprintf(stderr, "bench_gpu: unknown option '%s'\n", o);
            usage(stderr);
            return -1;
        }
        i++;
        continue;
    bad:
        fprintf(stderr, "bench_gpu: bad value '%s' for %s\n", v, o);
        return -1;
    }
    if (!have_cases) {
        const char *defaults[] = {"2x4:5e3,1e5,1e6,1e7,1e8", "8x8:1e6,1e7", "16x16:1e6,1e7"};
        for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
            if (bench_parse_spec("bench_gpu", defaults[i], a->cases, &a->n_cases)) return -1;
    }
    return 0;
}

#ifdef GMM_HAVE_CUDA

/* ------------------------------------------------------------------------------------------- the data */

/* The generating model (bench_common.h's), NULL on failure. */
static gmm_model *true_model(size_t d, size_t k, uint64_t seed)
{
    gmm_model *m = NULL;
    return bench_true_model(d, k, seed, &m) == GMM_OK ? m : NULL;
}


/* n points from model m into a new (n, d) array, in parallel: chunk c of 65536 rows uses its own generator
 * seeded from (seed, c), so the data do not depend on the thread count. NULL when out of memory. */
static double *draw(const gmm_model *m, size_t n, uint64_t seed)
{
    const size_t d = m->d, k = m->k, chunk = 65536;
    double *x = malloc(n * d * sizeof *x), *chol = malloc(k * d * d * sizeof *chol);
    if (!x || !chol) {
        free(x);
        free(chol);
        return NULL;
    }
    memcpy(chol, m->covariances, k * d * d * sizeof *chol);
    for (size_t c = 0; c < k; c++) gmm_cholesky_lower(chol + c * d * d, d); /* positive definite by construction */
    const long n_chunks = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static)
    for (long ch = 0; ch < n_chunks; ch++) {
        gmm_rng r;
        gmm_rng_seed(&r, seed * 0x9e3779b97f4a7c15ULL + (uint64_t)ch);
        double z[4096];
        const size_t i1 = ((size_t)ch + 1) * chunk < n ? ((size_t)ch + 1) * chunk : n;
        for (size_t i = (size_t)ch * chunk; i < i1; i++) {
            double u = gmm_rng_uniform(&r), acc = 0.0;
            size_t c = 0;
            for (; c + 1 < k; c++) {
                acc += m->weights[c];
                if (u < acc) break;
            }
            for (size_t j = 0; j < d; j++) z[j] = gmm_rng_normal(&r);
            const double *l = chol + c * d * d;
            for (size_t j = 0; j < d; j++) {
                double v = m->means[c * d + j];
                for (size_t p = 0; p <= j; p++) v += l[j * d + p] * z[p];
                x[i * d + j] = v;
            }
        }
    }
    free(chol);
    return x;
}

/* The starting model: m with every mean moved by half a standard deviation along each axis. */
static gmm_model *start_model(const gmm_model *m)
{
    gmm_model *s = gmm_model_clone(m);
    if (!s) return NULL;
    for (size_t c = 0; c < m->k; c++)
        for (size_t j = 0; j < m->d; j++)
            s->means[c * m->d + j] += 0.5 * sqrt(m->covariances[c * m->d * m->d + j * m->d + j]);
    return s;
}

/* ------------------------------------------------------------------------------------------- timing */



#define CK(call)                                                                                              \
    do {                                                                                                      \
        cudaError_t e_ = (call);                                                                              \
        if (e_ != cudaSuccess) {                                                                              \
            fprintf(stderr, "bench_gpu: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,                   \
                    cudaGetErrorString(e_));                                                                  \
            goto fail;                                                                                        \
        }                                                                                                     \
    } while (0)

/* Device-to-device copy bandwidth in bytes per second (reads + writes), median of 10 copies of up to 1 GiB
 * (less when the device has less free); 0 on failure. */
static double copy_bandwidth(void)
{
    size_t free_b = 0, total_b = 0, bytes = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double bw = 0.0, t[10];
    CK(cudaMemGetInfo(&free_b, &total_b));
    while (bytes > ((size_t)1 << 24) && 2 * bytes > free_b / 2) bytes /= 2;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    CK(cudaMemset(a, 1, bytes));
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice)); /* warm-up */
    for (int i = 0; i < 10; i++) {
        float ms = 0.0f;
        CK(cudaEventRecord(e0, 0));
        CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        t[i] = ms * 1e-3;
    }
    bw = 2.0 * (double)bytes / bench_median(t, 10);
    printf("device-to-device copy: %zu MiB in %.3f ms: %.1f GB/s (read + write)\n", bytes >> 20, bench_median(t, 10) * 1e3,
           bw * 1e-9);
fail:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (a) cudaFree(a);
    if (b) cudaFree(b);
    return bw;
}

typedef struct case_result {
    double t_iter, t_iter_min, t_stats, t_stats_min, upload, t_cpu;
    char kernel[256];
} case_result;

/* Times one case; 0 on success, -1 (message printed) on failure. */
static int run_case(const bench_args *a, const bench_case *bc, case_result *res)
{
    const size_t d = bc->d, k = bc->k, n = bc->n;
    int rc = -1;
    gmm_model *truth = true_model(d, k, a->seed + 1000 * d + k), *m0 = NULL, *m = NULL;
    double *x = NULL, *ti = malloc((size_t)a->repeats * sizeof *ti), *ts = malloc((size_t)a->repeats * sizeof *ts);
    gmm_backend g = {0}, cpu = {0};
    gmm_stats s = {0};
    cudaEvent_t e0 = NULL, e1 = NULL, e2 = NULL;
    memset(res, 0, sizeof *res);
    if (!truth || !ti || !ts || !(x = draw(truth, n, a->seed + n)) || !(m0 = start_model(truth)) ||
        !(m = gmm_model_clone(m0)) || gmm_stats_alloc(&s, k, d) != GMM_OK) {
        fprintf(stderr, "bench_gpu: out of host memory for d = %zu, k = %zu, n = %zu\n", d, k, n);
        goto fail;
    }
    double t0 = gmm_now();
    if (gmm_backend_cuda_open(&g, x, n, d, 0) != GMM_OK) {
        fprintf(stderr, "bench_gpu: d = %zu, k = %zu, n = %zu: %s\n", d, k, n, gmm_last_error());
        goto fail;
    }
    res->upload = gmm_now() - t0;
    cudaStream_t st = (cudaStream_t)gmm_backend_cuda_stream(&g);
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaEventCreate(&e2));
    for (int it = -a->warmup; it < a->repeats; it++) {
        float ms_stats = 0.0f, ms_iter = 0.0f;
        CK(cudaEventRecord(e0, st));
        if (g.stats(&g, m, &s) != GMM_OK) {
            fprintf(stderr, "bench_gpu: stats pass: %s\n", gmm_last_error());
            goto fail;
        }
        CK(cudaEventRecord(e1, st));
        if (gmm_mstep(m, &s, n, 1e-6, 0) != GMM_OK) { /* keep timing from the start model */
            gmm_model_free(m);
            if (!(m = gmm_model_clone(m0))) goto fail;
        }
        CK(cudaEventRecord(e2, st));
        CK(cudaEventSynchronize(e2));
        CK(cudaEventElapsedTime(&ms_stats, e0, e1));
        CK(cudaEventElapsedTime(&ms_iter, e0, e2));
        if (it >= 0) {
            ts[it] = ms_stats * 1e-3;
            ti[it] = ms_iter * 1e-3;
        }
    }
    gmm_backend_cuda_describe(&g, res->kernel, sizeof res->kernel);
    res->t_stats = bench_median(ts, (size_t)a->repeats);
    res->t_stats_min = ts[0];
    res->t_iter = bench_median(ti, (size_t)a->repeats);
    res->t_iter_min = ti[0];
    res->t_cpu = NAN;
    if ((double)n <= a->cpu_max_n) {
        const int reps = a->repeats < 5 ? a->repeats : 5;
        gmm_model_free(m);
        if (!(m = gmm_model_clone(m0)) || gmm_backend_cpu_open(&cpu, x, n, d, 0) != GMM_OK) goto fail;
        for (int it = -1; it < reps; it++) {
            double c0 = gmm_now();
            if (cpu.stats(&cpu, m, &s) != GMM_OK) goto fail;
            if (gmm_mstep(m, &s, n, 1e-6, 0) != GMM_OK) {
                gmm_model_free(m);
                if (!(m = gmm_model_clone(m0))) goto fail;
            }
            if (it >= 0) ti[it] = gmm_now() - c0;
        }
        res->t_cpu = bench_median(ti, (size_t)reps);
    }
    rc = 0;
fail:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (e2) cudaEventDestroy(e2);
    if (g.release) g.release(&g);
    if (cpu.release) cpu.release(&cpu);
    gmm_stats_free(&s);
    gmm_model_free(truth);
    gmm_model_free(m0);
    gmm_model_free(m);
    free(x);
    free(ti);
    free(ts);
    return rc;
}

int main(int argc, char **argv)
{
    bench_args a;
    if (parse_args(argc, argv, &a)) return 2;
    char name[256];
    if (gmm_cuda_available(name, sizeof name) < 1) {
        gmm_backend b;
        double x0 = 0.0;
        if (gmm_backend_cuda_open(&b, &x0, 1, 1, 0) == GMM_OK) b.release(&b);
        printf("bench_gpu: no usable CUDA device (%s); nothing to measure\n", gmm_last_error());
        return 0;
    }
    printf("device: %s; %d OpenMP threads on the host\n", name, omp_get_max_threads());
    const double bw = copy_bandwidth();
    if (!(bw > 0)) return 1;
    FILE *csv = NULL;
    if (a.csv) {
        csv = fopen(a.csv, "w");
        if (!csv) {
            fprintf(stderr, "bench_gpu: cannot write %s: %s\n", a.csv, strerror(errno));
            return 1;
        }
        fprintf(csv, "device,d,k,n,repeats,t_iter_median_s,t_iter_min_s,t_stats_median_s,t_stats_min_s,floor_s,"
                     "copy_bw_GBs,iter_over_floor,stats_over_floor,stats_GBs,upload_s,t_cpu_iter_s,cpu_over_gpu,"
                     "kernel\n");
    }
    printf("%3s %3s %11s %12s %12s %11s %7s %7s %8s %9s %12s %8s\n", "d", "k", "n", "iter ms", "stats ms",
           "floor ms", "iter/fl", "stat/fl", "GB/s", "upload s", "cpu iter ms", "cpu/gpu");
    int failures = 0;
    for (int i = 0; i < a.n_cases; i++) {
        const bench_case *bc = &a.cases[i];
        if ((double)bc->n > a.max_n) continue;
        case_result r;
        if (run_case(&a, bc, &r)) {
            failures++;
            continue;
        }
        const double bytes = (double)bc->n * (double)bc->d * sizeof(float), floor_s = bytes / bw;
        printf("%3zu %3zu %11zu %12.4f %12.4f %11.4f %7.2f %7.2f %8.1f %9.3f %12.3f %8.1f\n", bc->d, bc->k, bc->n,
               r.t_iter * 1e3, r.t_stats * 1e3, floor_s * 1e3, r.t_iter / floor_s, r.t_stats / floor_s,
               bytes / r.t_stats * 1e-9, r.upload, r.t_cpu * 1e3, r.t_cpu / r.t_iter);
        printf("    %s\n", r.kernel);
        fflush(stdout);
        if (csv)
            fprintf(csv, "\"%s\",%zu,%zu,%zu,%d,%.6e,%.6e,%.6e,%.6e,%.6e,%.2f,%.3f,%.3f,%.2f,%.4f,%.6e,%.2f,\"%s\"\n",
                    name, bc->d, bc->k, bc->n, a.repeats, r.t_iter, r.t_iter_min, r.t_stats, r.t_stats_min, floor_s,
                    bw * 1e-9, r.t_iter / floor_s, r.t_stats / floor_s, bytes / r.t_stats * 1e-9, r.upload, r.t_cpu,
                    r.t_cpu / r.t_iter, r.kernel);
    }
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "bench_gpu: error writing %s\n", a.csv);
        return 1;
    }
    return failures ? 1 : 0;
}

#else /* !GMM_HAVE_CUDA */

int main(int argc, char **argv)
{
    bench_args a;
    if (parse_args(argc, argv, &a)) return 2;
    printf("bench_gpu: this gmm was built without CUDA; nothing to measure\n");
    return 0;
}

#endif /* GMM_HAVE_CUDA */
