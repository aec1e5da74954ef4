/*
 * bench_gpu.c — the GPU benchmark: seconds per EM iteration of the CUDA backend (its stats pass plus the host
 * M-step) on deterministic synthetic data, against the memory floor measured in the same run, the CPU
 * reference and scikit-learn on the same data from the same start; and the wall time of a whole gmm_fit of a
 * given data file (the assignment's) on the GPU and on the CPU.
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
 * scikit-learn (--sklearn-max-n, when $PYTHON or python3 imports numpy, scikit-learn and threadpoolctl): for
 * cases up to that n the case's data (float64, the very array the GPU got before its float32 conversion) go to
 * WORK/<case>.npy, the start model to WORK/<case>.init.json and its precisions to WORK/<case>.prec.npy; the
 * CPU reference gmm_fit runs --sklearn-iters iterations from exactly those weights, means and precisions
 * (tol 0) and writes WORK/<case>.gmm.json; then bench/bench_sklearn.py (the CPU benchmark's, unchanged) times
 * sklearn.mixture.GaussianMixture from the same parameters with --sklearn-threads threads (OMP / OpenBLAS /
 * MKL_NUM_THREADS and threadpoolctl) and checks that its log-likelihood trace matches the CPU reference's;
 * the GPU's own float32 trace over the same first iterations is compared with the CPU reference's as well.
 * sklearn's figure is the median over iterations 2..R of its E-step + M-step.
 *
 * Whole fit (--fit-csv FILE, any file gmm_read_data reads): after the CUDA context exists (the copy floor
 * created it) and one untimed fit, --fit-repeats fits with gmm_fit(backend CUDA) and scikit-learn's defaults
 * (init kmeans, tol 1e-3, reg_covar 1e-6, max_iter 100) and seed 0 are timed with the wall clock — everything:
 * upload, initialization on the device, EM to convergence; median and minimum — then the same with the CPU backend.
 *
 * Usage: bench_gpu [--cases SPEC...] [--repeats R] [--warmup W] [--max-n N] [--cpu-max-n N] [--seed S]
 *                  [--sklearn-max-n N] [--sklearn-iters R] [--sklearn-threads T] [--sklearn-budget S]
 *                  [--sklearn-script PATH] [--work DIR] [--fit-csv FILE] [--fit-k K] [--fit-repeats P]
 *                  [--csv FILE]
 *   SPEC is DxK:N1,N2,... (e.g. 2x4:5e3,1e8). Default: 2x4:5e3,1e5,1e6,1e7,1e8 8x8:1e6,1e7 16x16:1e6,1e7.
 * Prints a table (stdout) and optionally a CSV: one row per case (kind "iter") and one per backend of the
 * whole fit (kind "fit"), with the columns of the other kind left empty, as is any figure not measured
 * (bench/plot_gpu.sh draws it). Without CUDA in the build, or without a usable device, it says so and exits
 * 0, so that benchmark runners do not fail.
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
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

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
    /* scikit-learn */
    double sk_max_n, sk_budget;
    int sk_iters, sk_threads;
    const char *sk_script, *work;
    /* whole fit */
    const char *fit_data;
    int fit_k, fit_repeats;
} bench_args;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_gpu [--cases SPEC...] [--repeats R] [--warmup W] [--max-n N] [--cpu-max-n N] [--seed S]\n"
            "                 [--sklearn-max-n N] [--sklearn-iters R] [--sklearn-threads T] [--sklearn-budget S]\n"
            "                 [--sklearn-script PATH] [--work DIR] [--fit-csv FILE] [--fit-k K] [--fit-repeats P]\n"
            "                 [--csv FILE]\n"
            "  SPEC              DxK:N1,N2,...   default: 2x4:5e3,1e5,1e6,1e7,1e8 8x8:1e6,1e7 16x16:1e6,1e7\n"
            "  --repeats R       timed EM iterations per case (default 20)\n"
            "  --warmup W        untimed EM iterations first (default 3)\n"
            "  --max-n N         skip cases with more points\n"
            "  --cpu-max-n N     also time the CPU reference for cases up to N points (default 0: never)\n"
            "  --seed S          data seed (default 20240601)\n"
            "  --sklearn-max-n N also time scikit-learn (bench/bench_sklearn.py, run by $PYTHON or python3) on the\n"
            "                    same data from the same start for cases up to N points (default 1e6; 0: never)\n"
            "  --sklearn-iters R EM iterations of sklearn's fit and of the CPU reference fit it is checked\n"
            "                    against; the median is over iterations 2..R (default 5)\n"
            "  --sklearn-threads T  threads for sklearn's BLAS / OpenMP and the CPU reference fit\n"
            "                    (default: OpenMP's maximum)\n"
            "  --sklearn-budget S   start no sklearn case once sklearn's cases took S seconds (default 300)\n"
            "  --sklearn-script PATH  bench_sklearn.py (default: next to this source file, else\n"
            "                    bench/bench_sklearn.py under the current folder)\n"
            "  --work DIR        where sklearn's input files go, kept (default: a temporary folder, removed)\n"
            "  --fit-csv FILE    also time whole gmm_fit runs of FILE (CSV or .npy), GPU and CPU, after the CUDA\n"
            "                    context exists: init kmeans, tol 1e-3, seed 0, to convergence\n"
            "  --fit-k K         components of that fit (default 4)\n"
            "  --fit-repeats P   timed fits per backend after one untimed one; median (default 7)\n"
            "  --csv FILE        also write the results as CSV (column kind: iter or fit)\n");
}

static int parse_args(int argc, char **argv, bench_args *a)
{
    memset(a, 0, sizeof *a);
    a->repeats = 20;
    a->warmup = 3;
    a->max_n = INFINITY;
    a->cpu_max_n = 0;
    a->seed = 20240601u;
    a->sk_max_n = 1e6;
    a->sk_iters = 5;
    a->sk_budget = 300;
    a->fit_k = 4;
    a->fit_repeats = 7;
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
        } else if (!strcmp(o, "--sklearn-max-n")) {
            a->sk_max_n = strtod(v, &e);
            if (e == v || *e || !(a->sk_max_n >= 0)) goto bad;
        } else if (!strcmp(o, "--sklearn-iters")) {
            long r = strtol(v, &e, 10);
            if (e == v || *e || r < 2 || r > 10000) goto bad;
            a->sk_iters = (int)r;
        } else if (!strcmp(o, "--sklearn-threads")) {
            long t = strtol(v, &e, 10);
            if (e == v || *e || t < 1 || t > 4096) goto bad;
            a->sk_threads = (int)t;
        } else if (!strcmp(o, "--sklearn-budget")) {
            a->sk_budget = strtod(v, &e);
            if (e == v || *e || !(a->sk_budget >= 0)) goto bad;
        } else if (!strcmp(o, "--sklearn-script")) {
            a->sk_script = v;
        } else if (!strcmp(o, "--work")) {
            a->work = v;
        } else if (!strcmp(o, "--fit-csv")) {
            a->fit_data = v;
        } else if (!strcmp(o, "--fit-k")) {
            long k = strtol(v, &e, 10);
            if (e == v || *e || k < 1 || k > 65536) goto bad;
            a->fit_k = (int)k;
        } else if (!strcmp(o, "--fit-repeats")) {
            long r = strtol(v, &e, 10);
            if (e == v || *e || r < 1 || r > 100000) goto bad;
            a->fit_repeats = (int)r;
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


#define CK(call)                                                                                                     \
    do {                                                                                                             \
        cudaError_t e_ = (call);                                                                                     \
        if (e_ != cudaSuccess) {                                                                                     \
            fprintf(stderr, "bench_gpu: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            goto fail;                                                                                               \
        }                                                                                                            \
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
    printf("device-to-device copy: %zu MiB in %.3f ms: %.1f GB/s (read + write)\n", bytes >> 20,
           bench_median(t, 10) * 1e3, bw * 1e-9);
fail:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (a) cudaFree(a);
    if (b) cudaFree(b);
    return bw;
}

/* ------------------------------------------------------------------------------------------ formatting */

/* v with prec decimals into buf, or "-" when v was not measured (NaN). */
static const char *tf(char *buf, size_t cap, double v, int prec)
{
    if (isfinite(v))
        snprintf(buf, cap, "%.*f", prec, v);
    else
        snprintf(buf, cap, "-");
    return buf;
}

/* ",v" in %e (prec digits) or %f (fixed), or a bare "," (an empty field) when v was not measured. */
static void csv_e(FILE *f, double v, int prec)
{
    fputc(',', f);
    if (isfinite(v)) fprintf(f, "%.*e", prec, v);
}
static void csv_f(FILE *f, double v, int prec)
{
    fputc(',', f);
    if (isfinite(v)) fprintf(f, "%.*f", prec, v);
}

/* ",s" as a quoted CSV field (inner quotes doubled). */
static void csv_s(FILE *f, const char *s)
{
    fputs(",\"", f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Splits one CSV line in place into at most max fields (double-quoted fields may hold commas and doubled
 * quotes); returns the number of fields. */
static int csv_split(char *line, char **field, int max)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    char *p = line;
    while (n < max) {
        char *w = p;
        field[n++] = w;
        if (*p == '"') {
            p++;
            while (*p) {
                if (*p == '"') {
                    if (p[1] != '"') {
                        p++;
                        break;
                    }
                    p++;
                }
                *w++ = *p++;
            }
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',') p++;
            w = p;
        }
        const char c = *p;
        *w = '\0';
        if (c != ',') break;
        p++;
    }
    return n;
}

/* Appends " 's'" (s quoted for sh) to buf of cap bytes; -1 when it does not fit. */
static int sh_append(char *buf, size_t cap, const char *s)
{
    size_t len = strlen(buf);
    const size_t need = 3 + strlen(s) * 4;
    if (len + need >= cap) return -1;
    buf[len++] = ' ';
    buf[len++] = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            memcpy(buf + len, "'\\''", 4);
            len += 4;
        } else {
            buf[len++] = *s;
        }
    }
    buf[len++] = '\'';
    buf[len] = '\0';
    return 0;
}

/* ------------------------------------------------------------------------------------------ scikit-learn */

typedef struct sk_state {
    int enabled; /* python imports numpy, scikit-learn and threadpoolctl, and the script is there */
    const char *python;
    char script[4096];
    char work[4096];
    int temp_work; /* work was made by mkdtemp: its files and itself go at the end */
    int threads;
    double spent; /* seconds taken by sklearn's cases so far (their files, the reference fit, sklearn) */
} sk_state;

typedef struct sk_result {
    double s_iter, s_min; /* sklearn: median and fastest of iterations 2..R (NaN: not measured) */
    double trace_rel;     /* max relative difference of sklearn's log-likelihood trace from the CPU reference's */
    double gpu_trace_rel; /* the same for the GPU's (float32) trace over the timed run's first iterations */
    int iters, threads, fits;
    char log[4096]; /* what bench_sklearn.py printed (versions, BLAS, its row, warnings), cut short */
} sk_result;

/* The env prefix of every python command: the thread counts (read by the BLAS at import) and without the
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides, as bench/run_cpu_bench.sh runs it. */
static void sk_env(char *buf, size_t cap, int threads)
{
    snprintf(buf, cap,
             "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d "
             "MKL_NUM_THREADS=%d",
             threads, threads, threads);
}

/* Decides whether sklearn runs in this invocation and prepares its work folder; prints what it found. */
static void sk_setup(const bench_args *a, sk_state *s)
{
    memset(s, 0, sizeof *s);
    if (!(a->sk_max_n >= 1)) return;
    const char *py = getenv("PYTHON");
    s->python = py && *py ? py : "python3";
    s->threads = a->sk_threads > 0 ? a->sk_threads : omp_get_max_threads();
    if (a->sk_script) {
        snprintf(s->script, sizeof s->script, "%s", a->sk_script);
    } else {
        /* next to this source file (CMake compiles it by its absolute path), else under the current folder */
        const char *here = __FILE__, *slash = strrchr(here, '/');
        snprintf(s->script, sizeof s->script, "%.*s/bench_sklearn.py", slash ? (int)(slash - here) : 1,
                 slash ? here : ".");
        if (access(s->script, R_OK) != 0) snprintf(s->script, sizeof s->script, "bench/bench_sklearn.py");
    }
    if (access(s->script, R_OK) != 0) {
        printf("scikit-learn: skipped: cannot read %s (give --sklearn-script)\n", s->script);
        return;
    }
    char cmd[8192];
    sk_env(cmd, sizeof cmd, 1);
    if (sh_append(cmd, sizeof cmd, s->python) || sh_append(cmd, sizeof cmd, "-c") ||
        sh_append(cmd, sizeof cmd, "import numpy, sklearn, threadpoolctl")) {
        printf("scikit-learn: skipped: command too long\n");
        return;
    }
    strcat(cmd, " > /dev/null 2>&1");
    fflush(stdout);
    int rc = system(cmd);
    if (rc != 0) {
        printf("scikit-learn: skipped: %s cannot import numpy, scikit-learn and threadpoolctl\n", s->python);
        return;
    }
    if (a->work) {
        snprintf(s->work, sizeof s->work, "%s", a->work);
        if (mkdir(s->work, 0777) != 0 && errno != EEXIST) {
            printf("scikit-learn: skipped: cannot create %s: %s\n", s->work, strerror(errno));
            return;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(s->work, sizeof s->work, "%s/bench_gpu.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(s->work)) {
            printf("scikit-learn: skipped: cannot create a temporary folder %s: %s\n", s->work, strerror(errno));
            return;
        }
        s->temp_work = 1;
    }
    s->enabled = 1;
    printf("scikit-learn: %s %s, %d threads (OMP/OPENBLAS/MKL_NUM_THREADS and threadpoolctl), cases up to "
           "n = %.0f, %d iterations from the same start (median of iterations 2..%d), files in %s%s\n",
           s->python, s->script, s->threads, a->sk_max_n, a->sk_iters, a->sk_iters, s->work,
           s->temp_work ? " (removed at the end)" : "");
}

/* Times sklearn on case bc: x (n, d) is the case's data, m0 the start model, gpu_trace[0..n_gpu) the total
 * log-likelihoods the GPU computed in the first iterations from m0. Fills r (NaN where not measured); 0 on
 * success, -1 (message printed) when the case was skipped or failed. */
static int sk_case(const bench_args *a, sk_state *s, const bench_case *bc, const double *x, const gmm_model *m0,
                   const double *gpu_trace, int n_gpu, sk_result *r)
{
    const size_t n = bc->n, d = bc->d, k = bc->k;
    const int iters = a->sk_iters;
    char name[64], data[4200], init[4200], precf[4200], fit[4200], gcsv[4200], scsv[4200], slog[4200];
    char cmd[40000];
    snprintf(name, sizeof name, "d%zuk%zu_n%zu_r%d", d, k, n, iters);
    if (s->spent > a->sk_budget) {
        printf("    scikit-learn: skipped (sklearn's cases took %.0f s, over --sklearn-budget %.0f)\n", s->spent,
               a->sk_budget);
        return -1;
    }
    snprintf(data, sizeof data, "%s/%s.npy", s->work, name);
    snprintf(init, sizeof init, "%s/%s.init.json", s->work, name);
    snprintf(precf, sizeof precf, "%s/%s.prec.npy", s->work, name);
    snprintf(fit, sizeof fit, "%s/%s.gmm.json", s->work, name);
    snprintf(gcsv, sizeof gcsv, "%s/%s.gmm.csv", s->work, name);
    snprintf(scsv, sizeof scsv, "%s/%s.sk.csv", s->work, name);
    snprintf(slog, sizeof slog, "%s/%s.sk.log", s->work, name);
    const double t0 = gmm_now();
    int rc = -1;
    gmm_model *ref = NULL;
    double *prec = malloc(k * d * d * sizeof *prec);
    gmm_status st = GMM_ERR_NOMEM;
    if (!prec) goto done;
    /* the start model's precisions U U^T from its factors: what gmm_fit and sklearn both get, bit for bit */
    for (size_t c = 0; c < k; c++) {
        const double *u = m0->prec_chol + c * d * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                double v = 0.0;
                for (size_t p = 0; p < d; p++) v += u[i * d + p] * u[j * d + p];
                prec[c * d * d + i * d + j] = v;
            }
    }
    if ((st = gmm_write_npy(data, x, n, d)) != GMM_OK || (st = gmm_model_save(m0, init)) != GMM_OK ||
        (st = gmm_write_npy(precf, prec, k, d * d)) != GMM_OK)
        goto done;
    /* the CPU reference (double) on the same iterations: sklearn's log-likelihood trace is checked against it */
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = (int)k;
    o.weights_init = m0->weights;
    o.means_init = m0->means;
    o.precisions_init = prec;
    o.tol = 0.0; /* never met: exactly iters iterations, as sklearn with tol = 0 */
    o.max_iter = iters;
    o.n_threads = s->threads;
    o.backend = GMM_BACKEND_CPU;
    if ((st = gmm_fit(x, n, d, &o, &ref)) != GMM_OK || (st = gmm_model_save(ref, fit)) != GMM_OK) goto done;
    int len = 0;
    const double *trace = gmm_model_loglik_trace(ref, &len);
    r->gpu_trace_rel = n_gpu > 0 ? 0.0 : NAN;
    for (int j = 0; j < len && j < n_gpu; j++) {
        const double rel = fabs(gpu_trace[j] - trace[j]) / fabs(trace[j]);
        if (!(rel <= r->gpu_trace_rel)) r->gpu_trace_rel = rel; /* NaN propagates */
    }
    FILE *f = fopen(gcsv, "w");
    if (!f) {
        printf("    scikit-learn: cannot write %s: %s\n", gcsv, strerror(errno));
        goto done;
    }
    fprintf(f, "case,n,d,k,threads,iters,data,init,prec,fit\n%s,%zu,%zu,%zu,%d,%d", name, n, d, k, s->threads, iters);
    csv_s(f, data);
    csv_s(f, init);
    csv_s(f, precf);
    csv_s(f, fit);
    fputc('\n', f);
    if (fclose(f) != 0) {
        printf("    scikit-learn: error writing %s\n", gcsv);
        goto done;
    }
    char num[32];
    sk_env(cmd, sizeof cmd, s->threads);
    snprintf(num, sizeof num, "%d", s->threads);
    if (sh_append(cmd, sizeof cmd, s->python) || sh_append(cmd, sizeof cmd, s->script) ||
        sh_append(cmd, sizeof cmd, "--gmm-csv") || sh_append(cmd, sizeof cmd, gcsv) ||
        sh_append(cmd, sizeof cmd, "--csv") || sh_append(cmd, sizeof cmd, scsv) ||
        sh_append(cmd, sizeof cmd, "--threads") || sh_append(cmd, sizeof cmd, num) ||
        sh_append(cmd, sizeof cmd, "--repeats") || sh_append(cmd, sizeof cmd, "1") ||
        strlen(cmd) + 16 + 4 * strlen(slog) >= sizeof cmd) {
        printf("    scikit-learn: command too long\n");
        goto done;
    }
    strcat(cmd, " >");
    sh_append(cmd, sizeof cmd, slog);
    strcat(cmd, " 2>&1");
    const int sys = system(cmd);
    f = fopen(slog, "r");
    if (f) {
        const size_t got = fread(r->log, 1, sizeof r->log - 1, f);
        r->log[got] = '\0';
        fclose(f);
    }
    if (sys == -1 || !WIFEXITED(sys) || WEXITSTATUS(sys) != 0)
        printf("    scikit-learn: bench_sklearn.py exited with status %d%s\n",
               sys != -1 && WIFEXITED(sys) ? WEXITSTATUS(sys) : -1,
               sys != -1 && WIFEXITED(sys) && WEXITSTATUS(sys) == 1 ? " (its figures are read if it wrote them)"
                                                                    : "");
    f = fopen(scsv, "r");
    char head[4096], row[16384], *hf[64], *rf[64];
    if (!f || !fgets(head, sizeof head, f) || !fgets(row, sizeof row, f)) {
        printf("    scikit-learn: no result in %s\n", scsv);
        if (f) fclose(f);
        goto done;
    }
    fclose(f);
    const int nh = csv_split(head, hf, 64), nr = csv_split(row, rf, 64);
    for (int i = 0; i < nh && i < nr; i++) {
        if (!strcmp(hf[i], "sk_s_per_iter"))
            r->s_iter = strtod(rf[i], NULL);
        else if (!strcmp(hf[i], "sk_s_min"))
            r->s_min = strtod(rf[i], NULL);
        else if (!strcmp(hf[i], "trace_max_rel_diff"))
            r->trace_rel = strtod(rf[i], NULL);
        else if (!strcmp(hf[i], "iters"))
            r->iters = atoi(rf[i]);
        else if (!strcmp(hf[i], "threads"))
            r->threads = atoi(rf[i]);
        else if (!strcmp(hf[i], "fits"))
            r->fits = atoi(rf[i]);
    }
    rc = isfinite(r->s_iter) ? 0 : -1;
done:
    if (st != GMM_OK) printf("    scikit-learn: preparing %s: %s: %s\n", name, gmm_strerror(st), gmm_last_error());
    if (s->temp_work) {
        const char *files[] = {data, init, precf, fit, gcsv, scsv, slog};
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(files[i]);
    }
    gmm_model_free(ref);
    free(prec);
    s->spent += gmm_now() - t0;
    return rc;
}

/* ------------------------------------------------------------------------------------------- one case */

typedef struct case_result {
    double t_iter, t_iter_min, t_stats, t_stats_min, upload, t_cpu;
    sk_result sk;
    char kernel[256];
} case_result;

/* Times one case; 0 on success, -1 (message printed) on failure. */
static int run_case(const bench_args *a, sk_state *sk, const bench_case *bc, case_result *res)
{
    const size_t d = bc->d, k = bc->k, n = bc->n;
    int rc = -1;
    gmm_model *truth = true_model(d, k, a->seed + 1000 * d + k), *m0 = NULL, *m = NULL;
    double *x = NULL, *ti = malloc((size_t)a->repeats * sizeof *ti), *ts = malloc((size_t)a->repeats * sizeof *ts);
    /* the GPU's total log-likelihood of the first iterations from m0, compared with the CPU reference's */
    const int n_trace_max = a->warmup + a->repeats < a->sk_iters ? a->warmup + a->repeats : a->sk_iters;
    double *gpu_trace = malloc((size_t)n_trace_max * sizeof *gpu_trace);
    int n_trace = 0, trace_ok = 1;
    gmm_backend g = {0}, cpu = {0};
    gmm_stats s = {0};
    cudaEvent_t e0 = NULL, e1 = NULL, e2 = NULL;
    memset(res, 0, sizeof *res);
    res->t_cpu = NAN;
    res->sk.s_iter = res->sk.s_min = res->sk.trace_rel = res->sk.gpu_trace_rel = NAN; /* the rest zeroed above */
    if (!truth || !ti || !ts || !gpu_trace || !(x = draw(truth, n, a->seed + n)) || !(m0 = start_model(truth)) ||
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
        if (n_trace < n_trace_max && trace_ok) gpu_trace[n_trace++] = s.loglik;
        if (gmm_mstep(m, &s, n, 1e-6, 0) != GMM_OK) { /* keep timing from the start model */
            gmm_model_free(m);
            if (!(m = gmm_model_clone(m0))) goto fail;
            trace_ok = 0; /* the trace no longer follows the reference's */
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
    g.release(&g); /* the device memory is not needed any more */
    g.release = NULL;
    res->t_stats = bench_median(ts, (size_t)a->repeats);
    res->t_stats_min = ts[0]; /* sorted by bench_median() */
    res->t_iter = bench_median(ti, (size_t)a->repeats);
    res->t_iter_min = ti[0];
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
    if (sk->enabled && (double)n <= a->sk_max_n)
        sk_case(a, sk, bc, x, m0, gpu_trace, n_trace, &res->sk); /* a failure leaves its columns empty */
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
    free(gpu_trace);
    return rc;
}

/* ------------------------------------------------------------------------------------------- whole fit */

typedef struct fit_result {
    double t_median, t_min, t_first, loglik_mean, iter_median;
    int n_iter, converged;
    char device[400];
} fit_result;

/* Times --fit-repeats whole gmm_fit runs of x (n, d) on backend kind after one untimed run; 0 on success. */
static int time_fit(const bench_args *a, const double *x, size_t n, size_t d, gmm_backend_kind kind, fit_result *r)
{
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = a->fit_k;
    o.init = GMM_INIT_KMEANS; /* scikit-learn's defaults, spelled out, and seed 0 */
    o.tol = 1e-3;
    o.reg_covar = 1e-6;
    o.max_iter = 100;
    o.seed = 0;
    o.backend = kind;
    gmm_model *m = NULL;
    double *t = malloc((size_t)a->fit_repeats * sizeof *t);
    int rc = -1;
    memset(r, 0, sizeof *r);
    if (!t) goto done;
    for (int rep = -1; rep < a->fit_repeats; rep++) {
        gmm_model_free(m);
        m = NULL;
        const double t0 = gmm_now();
        const gmm_status st = gmm_fit(x, n, d, &o, &m);
        const double dt = gmm_now() - t0;
        if (st != GMM_OK) {
            fprintf(stderr, "bench_gpu: gmm_fit on the %s backend: %s: %s\n",
                    kind == GMM_BACKEND_CUDA ? "CUDA" : "CPU", gmm_strerror(st), gmm_last_error());
            goto done;
        }
        if (rep < 0)
            r->t_first = dt;
        else
            t[rep] = dt;
    }
    r->t_median = bench_median(t, (size_t)a->fit_repeats);
    r->t_min = t[0];
    r->n_iter = gmm_model_n_iter(m);
    r->converged = gmm_model_converged(m);
    r->loglik_mean = gmm_model_lower_bound(m);
    int len = 0;
    const double *sec = gmm_model_iter_seconds(m, &len);
    double *tmp = len > 0 ? malloc((size_t)len * sizeof *tmp) : NULL;
    r->iter_median = NAN;
    if (tmp) {
        memcpy(tmp, sec, (size_t)len * sizeof *tmp);
        r->iter_median = bench_median(tmp, (size_t)len);
        free(tmp);
    }
    snprintf(r->device, sizeof r->device, "%s", gmm_model_device(m));
    rc = 0;
done:
    gmm_model_free(m);
    free(t);
    return rc;
}

/* The whole fit of --fit-csv on the GPU and on the CPU: a table, and CSV rows of kind "fit". 0 on success. */
static int run_fits(const bench_args *a, const char *name, FILE *csv)
{
    double *x = NULL;
    size_t n = 0, d = 0;
    gmm_status st = gmm_read_data(a->fit_data, &x, &n, &d);
    if (st != GMM_OK) {
        fprintf(stderr, "bench_gpu: --fit-csv %s: %s: %s\n", a->fit_data, gmm_strerror(st), gmm_last_error());
        return -1;
    }
    printf("\nwhole fit of %s (n = %zu, d = %zu), k = %d, init kmeans, tol 1e-3, reg_covar 1e-6, max_iter 100, "
           "seed 0:\n  wall clock of gmm_fit (upload, init on the device, EM to convergence) after the CUDA context "
           "exists and one untimed fit; median and minimum of %d fits\n",
           a->fit_data, n, d, a->fit_k, a->fit_repeats);
    printf("  %-7s %10s %10s %10s %6s %5s %20s %12s  %s\n", "backend", "median ms", "min ms", "first ms", "n_iter",
           "conv", "mean loglik", "ms/iter", "device");
    const gmm_backend_kind kinds[2] = {GMM_BACKEND_CUDA, GMM_BACKEND_CPU};
    fit_result r[2];
    int ok[2], failures = 0;
    for (int i = 0; i < 2; i++) {
        const char *bname = kinds[i] == GMM_BACKEND_CUDA ? "cuda" : "cpu";
        ok[i] = time_fit(a, x, n, d, kinds[i], &r[i]) == 0;
        if (!ok[i]) {
            failures++;
            continue;
        }
        printf("  %-7s %10.3f %10.3f %10.3f %6d %5s %20.12f %12.4f  %s\n", bname, r[i].t_median * 1e3,
               r[i].t_min * 1e3, r[i].t_first * 1e3, r[i].n_iter, r[i].converged ? "yes" : "no", r[i].loglik_mean,
               r[i].iter_median * 1e3, r[i].device);
        if (csv) {
            fprintf(csv, "fit");
            csv_s(csv, name);
            fprintf(csv, ",%zu,%d,%zu,%d", d, a->fit_k, n, a->fit_repeats);
            for (int c = 0; c < 19; c++) fputc(',', csv); /* t_iter_median_s .. gpu_trace_rel_diff */
            fprintf(csv, ",%s", bname);
            csv_e(csv, r[i].t_median, 6);
            csv_e(csv, r[i].t_min, 6);
            csv_e(csv, r[i].t_first, 6);
            fprintf(csv, ",%d,%d,%.17g", r[i].n_iter, r[i].converged, r[i].loglik_mean);
            csv_e(csv, r[i].iter_median, 6);
            csv_s(csv, r[i].device);
            fputc('\n', csv);
        }
    }
    if (ok[0] && ok[1])
        printf("  cpu / cuda: %.2f (median); n_iter %d vs %d; mean log-likelihood relative difference %.2e\n",
               r[1].t_median / r[0].t_median, r[0].n_iter, r[1].n_iter,
               fabs(r[0].loglik_mean - r[1].loglik_mean) / fabs(r[1].loglik_mean));
    gmm_free(x);
    return failures ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------------ main */

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
    const double bw = copy_bandwidth(); /* also creates the CUDA context */
    if (!(bw > 0)) return 1;
    sk_state sk;
    sk_setup(&a, &sk);
    FILE *csv = NULL;
    if (a.csv) {
        csv = fopen(a.csv, "w");
        if (!csv) {
            fprintf(stderr, "bench_gpu: cannot write %s: %s\n", a.csv, strerror(errno));
            return 1;
        }
        fprintf(csv, "kind,device,d,k,n,repeats,t_iter_median_s,t_iter_min_s,t_stats_median_s,t_stats_min_s,"
                     "floor_s,copy_bw_GBs,iter_over_floor,stats_over_floor,stats_GBs,upload_s,t_cpu_iter_s,"
                     "cpu_over_gpu,sk_iter_s,sk_iter_min_s,sk_over_gpu,sk_threads,sk_iters,sk_trace_rel_diff,"
                     "gpu_trace_rel_diff,fit_backend,fit_s_median,fit_s_min,fit_s_first,fit_n_iter,fit_converged,"
                     "fit_loglik_mean,fit_iter_s_median,kernel\n");
    }
    printf("%3s %3s %11s %12s %12s %11s %7s %7s %8s %9s %12s %8s %12s %8s\n", "d", "k", "n", "iter ms", "stats ms",
           "floor ms", "iter/fl", "stat/fl", "GB/s", "upload s", "cpu iter ms", "cpu/gpu", "sk iter ms", "sk/gpu");
    int failures = 0;
    for (int i = 0; i < a.n_cases; i++) {
        const bench_case *bc = &a.cases[i];
        if ((double)bc->n > a.max_n) continue;
        case_result r;
        if (run_case(&a, &sk, bc, &r)) {
            failures++;
            continue;
        }
        const double bytes = (double)bc->n * (double)bc->d * sizeof(float), floor_s = bytes / bw;
        char b1[32], b2[32], b3[32], b4[32];
        printf("%3zu %3zu %11zu %12.4f %12.4f %11.4f %7.2f %7.2f %8.1f %9.3f %12s %8s %12s %8s\n", bc->d, bc->k,
               bc->n, r.t_iter * 1e3, r.t_stats * 1e3, floor_s * 1e3, r.t_iter / floor_s, r.t_stats / floor_s,
               bytes / r.t_stats * 1e-9, r.upload, tf(b1, sizeof b1, r.t_cpu * 1e3, 3),
               tf(b2, sizeof b2, r.t_cpu / r.t_iter, 1), tf(b3, sizeof b3, r.sk.s_iter * 1e3, 3),
               tf(b4, sizeof b4, r.sk.s_iter / r.t_iter, 1));
        printf("    %s\n", r.kernel);
        if (isfinite(r.sk.s_iter))
            printf("    scikit-learn: %d threads, %d iterations (median of 2..%d); its log-likelihood trace vs the "
                   "CPU reference's: %.1e (relative, max); the GPU's (float32) vs the CPU reference's: %.1e\n",
                   r.sk.threads, r.sk.iters, r.sk.iters, r.sk.trace_rel, r.sk.gpu_trace_rel);
        else if (isfinite(r.sk.gpu_trace_rel))
            printf("    scikit-learn: no figure; the GPU's (float32) log-likelihood trace vs the CPU reference's: "
                   "%.1e\n",
                   r.sk.gpu_trace_rel);
        for (const char *p = r.sk.log; *p;) { /* bench_sklearn.py's own output, indented */
            const size_t len = strcspn(p, "\n");
            printf("      | %.*s\n", (int)len, p);
            p += len + (p[len] == '\n');
        }
        fflush(stdout);
        if (csv) {
            fprintf(csv, "iter");
            csv_s(csv, name);
            fprintf(csv, ",%zu,%zu,%zu,%d", bc->d, bc->k, bc->n, a.repeats);
            csv_e(csv, r.t_iter, 6);
            csv_e(csv, r.t_iter_min, 6);
            csv_e(csv, r.t_stats, 6);
            csv_e(csv, r.t_stats_min, 6);
            csv_e(csv, floor_s, 6);
            csv_f(csv, bw * 1e-9, 2);
            csv_f(csv, r.t_iter / floor_s, 3);
            csv_f(csv, r.t_stats / floor_s, 3);
            csv_f(csv, bytes / r.t_stats * 1e-9, 2);
            csv_f(csv, r.upload, 4);
            csv_e(csv, r.t_cpu, 6);
            csv_f(csv, r.t_cpu / r.t_iter, 2);
            csv_e(csv, r.sk.s_iter, 6);
            csv_e(csv, r.sk.s_min, 6);
            csv_f(csv, r.sk.s_iter / r.t_iter, 2);
            if (isfinite(r.sk.s_iter))
                fprintf(csv, ",%d,%d", r.sk.threads, r.sk.iters);
            else
                fprintf(csv, ",,");
            csv_e(csv, r.sk.trace_rel, 2);
            csv_e(csv, r.sk.gpu_trace_rel, 2);
            fprintf(csv, ",,,,,,,,"); /* fit_backend .. fit_iter_s_median */
            csv_s(csv, r.kernel);
            fputc('\n', csv);
            fflush(csv);
        }
    }
    if (sk.temp_work && rmdir(sk.work) != 0)
        fprintf(stderr, "bench_gpu: could not remove %s: %s\n", sk.work, strerror(errno));
    if (a.fit_data && run_fits(&a, name, csv)) failures++;
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
