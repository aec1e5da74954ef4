/*
 * gmm_internal.h — what the library's source files share and nothing outside src/ may use: the model's
 * layout, the backend table, sufficient statistics, error reporting, the random number generator and the
 * small dense linear algebra of the M-step.
 */
#ifndef GMM_INTERNAL_H
#define GMM_INTERNAL_H

#include "gmm.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------ init files */

/* Initial parameters read from a JSON file (`gmm fit --init-model` / `--warm-start`): any subset of
 * "weights", "means" and "covariances" or "precisions" (not both), in the shapes of the file's
 * "covariance_type" (default "full"). Arrays are owned by the struct. */
typedef struct gmm_init_file {
    size_t k, d;              /* from the arrays present (and "n_components" / "n_features" if given) */
    gmm_covariance_type type; /* the file's "covariance_type", default full */
    double *weights;          /* (k), or NULL when absent */
    double *means;            /* (k, d), or NULL; d is 0 when neither means nor matrices say it */
    double *precisions;       /* the type's shape, or NULL: "precisions", or "covariances" inverted */
    double lower_bound;       /* "fit"."lower_bound" of a saved model (what --warm-start continues from);
                                 -INFINITY when the file has no fit record or the fit had no iteration */
} gmm_init_file;

/* Reads an init file; GMM_ERR_PARSE with path and JSON location for malformed content, GMM_ERR_NOT_PD for
 * covariances or precisions that are not positive definite. */
gmm_status gmm_init_file_load(const char *path, gmm_init_file *out);
void gmm_init_file_free(gmm_init_file *f);

/* ------------------------------------------------------------------------------------------------ model */

struct gmm_model {
    size_t k, d;
    gmm_covariance_type cov_type;
    double *weights;      /* (k), sum 1 */
    double *means;        /* (k, d) */
    double *covariances;  /* (k, d, d) full matrices whatever the type: diagonal for diag and spherical (equal
                            entries for spherical), the same matrix k times for tied */
    double *prec_chol;    /* (k, d, d): upper-triangular U_k with precision = U_k U_k^T (zeros below) */
    double *log_det_chol; /* (k): sum_j log U_k[j][j] = -1/2 log det covariance_k */

    /* fit record (empty unless produced by gmm_fit) */
    int converged;
    int n_iter;
    int best_run;
    double lower_bound;   /* mean per-point log-likelihood at the last iteration of the best run (of the
                            parameters entering it); -INFINITY when max_iter was 0 */
    int *empty_since;     /* (k) first iteration whose E-step left the component empty, 0 never; NULL if
                            not fitted */
    double *loglik_trace; /* (n_iter) total log-likelihood per iteration */
    double *iter_seconds; /* (n_iter) */
    size_t n_train;       /* points the model was fitted on, 0 if not fitted */
    char device[400];     /* where the fit's passes ran ("" if not fitted) */
};

/* Allocates a model with k components in d dimensions, all arrays zeroed; NULL when out of memory
 * (the error message is set). */
gmm_model *gmm_model_alloc(size_t k, size_t d);

/* Recomputes prec_chol and log_det_chol from covariances. GMM_ERR_NOT_PD names the first component whose
 * covariance has no Cholesky factor. */
gmm_status gmm_model_update_precisions(gmm_model *m);

/* Expands covariances given in the type's own shape (see gmm.h) into k full (d, d) matrices. */
void gmm_cov_expand(gmm_covariance_type type, size_t k, size_t d, const double *compact, double *full);

/* Writes the model's covariances in its type's own shape (gmm_covariance_size doubles). */
void gmm_cov_compact(const gmm_model *m, double *compact);

/* Deep copy (parameters and fit record); NULL when out of memory. */
gmm_model *gmm_model_clone(const gmm_model *m);

/* --------------------------------------------------------------------------------------------- errors */

/* Records a formatted message as the thread's last error and returns status, so that callers write
 * `return gmm_fail(GMM_ERR_IO, "cannot open %s: %s", path, strerror(errno));`. */
gmm_status gmm_fail(gmm_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears the thread's last error. */
void gmm_clear_error(void);

/* Allocation helpers that record GMM_ERR_NOMEM with the byte count on failure (return NULL). */
void *gmm_xmalloc(size_t bytes);
void *gmm_xcalloc(size_t count, size_t size);

/* ------------------------------------------------------------------------------------------ safe output */

/* Longest path the safe-output helpers handle (Linux's PATH_MAX). */
#define GMM_PATH_MAX 4096

/* A file written whole or not at all: opened under a temporary name "<path>.tmp.XXXXXX" beside path,
 * created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW: a link planted there is never followed), renamed
 * over path by gmm_atomic_commit, removed by gmm_atomic_abort (and by a failed commit). A path naming an
 * existing non-regular file (a device such as /dev/null, a FIFO) or resolving into /dev or /proc
 * (/dev/stdout) is written in place instead (in_place), never replaced. */
typedef struct gmm_atomic_file {
    FILE *f;
    char *path;
    char *tmp_path; /* "" when in_place */
    int in_place;
    int slot; /* registration for gmm_atomic_remove_temporaries, -1 if none */
} gmm_atomic_file;

gmm_status gmm_atomic_open(gmm_atomic_file *af, const char *path);
/* gmm_atomic_open of dir/name. */
gmm_status gmm_atomic_open_in(gmm_atomic_file *af, const char *dir, const char *name);
/* A newly allocated "dir/name" (free() it), or NULL with GMM_ERR_NOMEM set. */
char *gmm_path_join(const char *dir, const char *name);
/* Checks every write (ferror), flushes, closes and renames; on any failure removes the temporary file and
 * returns GMM_ERR_IO naming path. */
gmm_status gmm_atomic_commit(gmm_atomic_file *af);
void gmm_atomic_abort(gmm_atomic_file *af);
/* Unlinks the temporary file of every gmm_atomic_file open in the process. Async-signal-safe: for a
 * program's SIGINT / SIGTERM handler, which then ends the process. */
void gmm_atomic_remove_temporaries(void);
/* Creates and opens (write only) a new file "<prefix>XXXXXX<suffix>" with six random characters, with
 * O_CREAT | O_EXCL | O_NOFOLLOW and mode 0666 (less the umask), retrying on a name collision; writes
 * the name into path_out (cap bytes). Returns the descriptor, or -1 with errno set. */
int gmm_create_exclusive(const char *prefix, const char *suffix, char *path_out, size_t cap);

/* ------------------------------------------------------------------------------------------------- rng */

/* xoshiro256** seeded through splitmix64: fast, 2^256-1 period, reproducible on every platform. */
typedef struct gmm_rng {
    uint64_t s[4];
} gmm_rng;

void gmm_rng_seed(gmm_rng *r, uint64_t seed);
uint64_t gmm_rng_next(gmm_rng *r);
double gmm_rng_uniform(gmm_rng *r);             /* in [0, 1), 53 random bits */
double gmm_rng_normal(gmm_rng *r);              /* standard normal (polar Box-Muller, no cache) */
uint64_t gmm_rng_below(gmm_rng *r, uint64_t n); /* uniform in [0, n), unbiased */

/* --------------------------------------------------------------------------------------- linear algebra */

/* In place Cholesky of the symmetric positive definite a (d, d): on success the lower triangle holds L with
 * a = L L^T and the strict upper triangle is zeroed. Returns 0, or j+1 when the leading minor of order j+1
 * is not positive definite (a is then unspecified). */
int gmm_cholesky_lower(double *a, size_t d);

/* Given the lower Cholesky factor L (d, d) of a covariance, writes the upper-triangular precision factor
 * U = L^{-T} (so that precision = U U^T) into u (d, d), zeros below the diagonal. */
void gmm_precision_chol_from_cov_chol(const double *l, double *u, size_t d);

/* Squared Euclidean distance of a and b (d), summed in feature order. */
double gmm_sqdist(const double *a, const double *b, size_t d);

/* ------------------------------------------------------------------------------------------ statistics */

/* Sufficient statistics of one pass over the data, shifted by the current means c_k:
 *   nk[k]      = sum_n r_nk
 *   sk[k][i]   = sum_n r_nk (x_ni - c_ki)
 *   tk[k][i][j]= sum_n r_nk (x_ni - c_ki)(x_nj - c_kj)   (full d x d, symmetric)
 *   loglik     = sum_n log p(x_n)                         (total, natural log)
 */
typedef struct gmm_stats {
    size_t k, d;
    double *nk; /* (k) */
    double *sk; /* (k, d) */
    double *tk; /* (k, d, d) */
    double loglik;
    int diag_only; /* set by the caller when the model is diag or spherical: a backend's resp_stats may then
                      leave tk's off-diagonal entries 0 (the M-step reads only the diagonal); 0 after alloc */
} gmm_stats;

gmm_status gmm_stats_alloc(gmm_stats *s, size_t k, size_t d);
void gmm_stats_free(gmm_stats *s);
void gmm_stats_zero(gmm_stats *s);

/* The M-step, one implementation for every backend: from stats computed around the means of `m` (the
 * model that produced them), writes new weights, means, covariances (+ reg_covar on the diagonal) and
 * precision factors into m. n is the number of points. Follows scikit-learn: N_k + 10*eps; weights
 * normalized to sum 1, except for initialization (init = 1), where they are (N_k + 10 eps) / n as
 * scikit-learn's _initialize leaves them. The new mean is scikit-learn's sum_i r_ik x_i / (N_k + 10 eps)
 * exactly, also for an empty component (N_k ~ 0: mean ~ 0, covariance reg_covar I). GMM_ERR_NOT_PD naming
 * the component when responsibilities are not finite or a covariance has no Cholesky factor. */
gmm_status gmm_mstep(gmm_model *m, const gmm_stats *s, size_t n, double reg_covar, int init);

/* ------------------------------------------------------------------------------------------------ data */

/* The element type of the data a backend reads. */
typedef enum gmm_elem_type {
    GMM_ELEM_DOUBLE = 0, /* const double * */
    GMM_ELEM_FLOAT = 1   /* const float *: every reader widens each value to double as it reads it (exact), so a
                            fit or pass on float data equals, bit for bit, the same on their double copy */
} gmm_elem_type;

/* The data (n, d) row-major, borrowed: a pointer and its element type. Every reader of the points (the
 * backends' passes, the initializations' row reads, the host re-check of a predict pass) goes through the
 * accessors below, which hand out doubles. */
typedef struct gmm_data {
    const void *p; /* NULL for no data */
    gmm_elem_type type;
} gmm_data;

static inline gmm_data gmm_data_double(const double *x)
{
    gmm_data v = {x, GMM_ELEM_DOUBLE};
    return v;
}

static inline gmm_data gmm_data_float(const float *x)
{
    gmm_data v = {x, GMM_ELEM_FLOAT};
    return v;
}

/* Element idx (row-major index i * d + j) of x, as double. */
static inline double gmm_data_at(gmm_data x, size_t idx)
{
    return x.type == GMM_ELEM_FLOAT ? (double)((const float *)x.p)[idx] : ((const double *)x.p)[idx];
}

/* Copies row i of x (d values) into out (d) as doubles. */
static inline void gmm_data_copy_row(gmm_data x, size_t i, size_t d, double *out)
{
    if (x.type == GMM_ELEM_FLOAT) {
        const float *r = (const float *)x.p + i * d;
        for (size_t j = 0; j < d; j++) out[j] = (double)r[j];
    } else {
        const double *r = (const double *)x.p + i * d;
        for (size_t j = 0; j < d; j++) out[j] = r[j];
    }
}

/* Row i of x (d values) as doubles: a pointer into x itself when x holds doubles, else buf (d) filled with
 * the row widened to double. Valid until buf is reused. */
static inline const double *gmm_data_row(gmm_data x, size_t i, size_t d, double *buf)
{
    if (x.type == GMM_ELEM_DOUBLE) return (const double *)x.p + i * d;
    gmm_data_copy_row(x, i, d, buf);
    return buf;
}

/* ------------------------------------------------------------------------------------------- backends */

/* A backend is the pass over the data; everything else (init logic, M-step, convergence, I/O) exists
 * once. The CPU backend is the reference every other one is tested against. */
typedef struct gmm_backend gmm_backend;
struct gmm_backend {
    const char *name;
    /* E-step and statistics: one read of the data with model m's parameters. */
    gmm_status (*stats)(gmm_backend *b, const gmm_model *m, gmm_stats *out);
    /* Per-point outputs, each may be NULL: logp (n), labels (n), resp (n, k). */
    gmm_status (*predict)(gmm_backend *b, const gmm_model *m, double *logp, int *labels, double *resp);
    void (*release)(gmm_backend *b);

    /* The initializations' passes over the data (init.c holds the algorithms: k-means++, Lloyd, the
     * responsibilities of "kmeans" and "random"; these are their reads of the points). Between calls the
     * backend keeps per-point state: a squared distance per point (k-means++: to the closest seed chosen
     * so far; Lloyd: to the point's center) and Lloyd's labels, until init_end frees it. Coordinates passed
     * in and out are the data's own (the CUDA backend shifts them to its centered copy). */
    /* k-means++ potential: with reset, every point's closest distance starts at +inf; then
     * closest_i = min(closest_i, |x_i - cand|^2) is formed for every point, stored only when update is set,
     * and its sum over the points written to *potential. cand is (d). */
    gmm_status (*pp_potential)(gmm_backend *b, const double *cand, int reset, int update, double *potential);
    /* k-means++ draw: the first point i with closest_0 + ... + closest_i >= target (numpy's searchsorted),
     * n - 1 when there is none. */
    gmm_status (*pp_draw)(gmm_backend *b, double target, size_t *index);
    /* Lloyd assignment: labels every point with its nearest center of centers (k, d) (the first on ties) and
     * keeps its squared distance; writes counts (k) and means (k, d) of the points now in each cluster
     * (means of an empty cluster are left as they are) and *changed, the number of labels that changed
     * (with reset, the labels start unset, so every point counts). */
    gmm_status (*lloyd_assign)(gmm_backend *b, size_t k, const double *centers, int reset, double *means,
                               double *counts, size_t *changed);
    /* The point farthest from its center in the last assignment (the first on ties), which is then taken
     * (its distance becomes -1, so the next call returns another point). */
    gmm_status (*lloyd_farthest)(gmm_backend *b, size_t *index);
    /* Statistics (as stats fills them, loglik 0) of initial responsibilities around shift (k, d): one-hot
     * on the labels of the last lloyd_assign (GMM_RESP_LABELS) or random (GMM_RESP_RANDOM: component c of
     * point i gets gmm_hash_uniform(seed, i, c), each row normalized to sum 1). */
    gmm_status (*resp_stats)(gmm_backend *b, int kind, uint64_t seed, const double *shift, gmm_stats *out);
    /* The mean over the features of the data's variances (two-pass, in double): the scale of Lloyd's
     * tolerance, as scikit-learn's KMeans takes it. */
    gmm_status (*mean_variance)(gmm_backend *b, double *out);
    /* Frees the per-point state of the passes above (they may be used again afterwards). */
    void (*init_end)(gmm_backend *b);

    int init_on_host; /* set when an initialization had to run its passes on the host copy (the device had no
                         room for their per-point state) */
    const char *precision_note; /* NULL, or why the backend changed its precision after opening (a CUDA backend
                                   that went from float32 to float64); owned by the backend */
    gmm_data x;                 /* (n, d) borrowed host data */
    size_t n, d;
    int n_threads;
    void *impl;
};

/* Kinds of initial responsibilities for the backends' resp_stats. */
#define GMM_RESP_LABELS 0
#define GMM_RESP_RANDOM 1

/* Opens the CPU backend on borrowed x (n, d). */
gmm_status gmm_backend_cpu_open(gmm_backend *b, const double *x, size_t n, size_t d, int n_threads);
/* The same on data of either element type. */
gmm_status gmm_backend_cpu_open_data(gmm_backend *b, gmm_data x, size_t n, size_t d, int n_threads);

/* Log-density terms of one component for the CPU path:
 * log N(x | mu, Sigma) = -1/2 (d log 2pi + ||(x - mu) U||^2) + log_det_chol. */
double gmm_log_gauss_point(const double *x, const double *mean, const double *prec_chol, double log_det_chol,
                           size_t d);

/* ----------------------------------------------------------------------------------------------- init */

/* Computes the initial parameters of one run into m (allocated for k, d) following options->init, drawing
 * from rng. k-means style initializations use backend b for their passes over the data. */
gmm_status gmm_init_params(gmm_model *m, gmm_backend *b, const gmm_options *options, gmm_rng *rng);

/* Chooses k seeds by greedy k-means++ (scikit-learn's: 2 + floor(ln k) local trials) through backend b's
 * passes; writes their row indices into idx (k). */
gmm_status gmm_kmeanspp_seeds(gmm_backend *b, size_t k, gmm_rng *rng, size_t *idx);

/* Lloyd's k-means through backend b's passes from the given centers (k, d), updated in place, at most
 * max_iter iterations, stopping when no label changes or the squared center shift is below tol * mean
 * feature variance (scikit-learn's rule). The backend keeps the final labels (for resp_stats). */
gmm_status gmm_kmeans_lloyd(gmm_backend *b, size_t k, double *centers, int max_iter, double tol);

/* Seconds from a monotonic clock. */
double gmm_now(void);

/* The name of an init method as the CLI spells it ("kmeans", "k-means++", ...). */
const char *gmm_init_name(gmm_init_method m);

/* ------------------------------------------------------------------------------------------- sessions */

/* Data opened once on a backend for any number of fits and predict passes (gmm fit's labels and init
 * study, gmm select's candidates, gmm_fit_predict, gmm_infer): on CUDA the data are uploaded once. The
 * data x are borrowed and must outlive the session. */
typedef struct gmm_session {
    gmm_backend b;    /* the open backend (b.x, b.n, b.d: the data) */
    size_t max_k;     /* the most components a fit on this session may ask for */
    int open;         /* 1 between a successful gmm_session_open and gmm_session_close */
    char device[320]; /* where the passes run, as gmm_model_device() words it */
} gmm_session;

/* Checks x (n, d) (n >= 1, d >= 1, every value finite), then opens the backend that options->backend (with
 * gpu_dtype and n_threads) names, exactly as gmm_fit does: AUTO takes CUDA when a GPU is usable, and its
 * kernels take d and max_k, else the CPU, and the CPU when the GPU cannot hold the data. max_k (>= 1) is the
 * largest n_components any later gmm_session_fit will ask for. On failure s holds nothing to close (closing it
 * anyway is allowed). */
gmm_status gmm_session_open(gmm_session *s, const double *x, size_t n, size_t d, const gmm_options *options,
                            size_t max_k);
/* gmm_session_open on data of either element type (float data: every pass reads them widened to double, so
 * results equal those on their double copy bit for bit). */
gmm_status gmm_session_open_data(gmm_session *s, gmm_data x, size_t n, size_t d, const gmm_options *options,
                                 size_t max_k);

/* Fits as gmm_fit(x, n, d, options, out) would, on the session's data and backend: the same checks of the
 * options (n_components at most s->max_k, or GMM_ERR_INVALID_ARG), the same runs, the same model bit for
 * bit (unless an earlier fit on a CUDA session with GMM_GPU_DTYPE_AUTO moved it to float64: b.precision_note).
 * options->backend, gpu_dtype and n_threads are ignored: the session's, from gmm_session_open, hold.
 * The model's device is s->device, followed by the notes of what changed during the fit. */
gmm_status gmm_session_fit(gmm_session *s, const gmm_options *options, gmm_model **out);

/* The backend's predict pass of model m (m's d must be the data's) over the session's data: logp (n),
 * labels (n), resp (n, k), each may be NULL. On CUDA, m may have at most 64 components. */
gmm_status gmm_session_predict(gmm_session *s, const gmm_model *m, double *logp, int *labels, double *resp);

/* Releases the backend (the device data on CUDA); s can be opened again. NULL and a closed session are
 * allowed. */
void gmm_session_close(gmm_session *s);

/* Checks a predict pass's outputs over x (n, d): a row whose log-density is not finite (the backend's
 * arithmetic overflowed, e.g. a float32 GPU far from the model) is computed again on the host in double,
 * one component at a time in log space; a row still not finite there (its squared Mahalanobis distance
 * overflows in every component, e.g. a value of 1e200) is GMM_ERR_INVALID_ARG naming the row (0-based) and
 * its first value. logp (n) is required; labels (n) and resp (n, k) are fixed where given. */
gmm_status gmm_infer_check_rows(const gmm_model *m, gmm_data x, size_t n, double *logp, int *labels, double *resp);

/* The sum of logp (n) in index order divided by n: the mean per-point log-likelihood as gmm_score
 * computes it (scikit-learn's score). n >= 1. */
double gmm_mean_logp(const double *logp, size_t n);

/* BIC and AIC of model m from the mean per-point log-likelihood of n points (scikit-learn's
 * definitions, as gmm_bic / gmm_aic). */
double gmm_bic_from_mean(const gmm_model *m, double mean_logp, size_t n);
double gmm_aic_from_mean(const gmm_model *m, double mean_logp, size_t n);

#endif /* GMM_INTERNAL_H */
