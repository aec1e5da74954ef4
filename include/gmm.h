/*
 * gmm.h — the whole public API of gmm: Gaussian mixture models trained by expectation maximization.
 *
 * Conventions used by every function below:
 *   - data are (n, d) row-major arrays of double: x[i * d + j] is feature j of point i (the _f32 calls take
 *     float arrays of the same layout, read in place and widened to double value by value);
 *   - a model has k components; weights are (k), means (k, d) row-major, covariances (k, d, d) row-major;
 *   - functions return a gmm_status; on failure gmm_last_error() describes what went wrong (thread-local);
 *   - arrays passed in are borrowed, never kept; arrays and models handed out are owned by the caller and
 *     released with gmm_free() / gmm_model_free().
 *
 * Semantics follow scikit-learn's sklearn.mixture.GaussianMixture (full covariances): same defaults, same
 * formulas, same convergence test. README.md lists where and why gmm differs.
 */
#ifndef GMM_H
#define GMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ status */

typedef enum gmm_status {
    GMM_OK = 0,
    GMM_ERR_INVALID_ARG = 1,    /* an argument or option is out of range */
    GMM_ERR_NOMEM = 2,          /* an allocation failed */
    GMM_ERR_IO = 3,             /* a file could not be opened, read or written */
    GMM_ERR_PARSE = 4,          /* a data or model file is malformed (message has file:line:column) */
    GMM_ERR_NOT_PD = 5,         /* a covariance is not positive definite even after reg_covar */
    GMM_ERR_COLLAPSED = 6,      /* reserved: gmm_fit no longer returns it; a component that loses all its
                                responsibility is kept as scikit-learn keeps it (see GMM_EMPTY_FLOOR) */
    GMM_ERR_TOO_FEW_POINTS = 7, /* fewer points than components */
    GMM_ERR_CUDA = 8,           /* a CUDA call failed */
    GMM_ERR_NO_DEVICE = 9,      /* the requested backend is not available */
    GMM_ERR_CANCELLED = 10      /* options.should_stop asked the fit to stop */
} gmm_status;

/* A short, static description of a status code ("covariance not positive definite", ...). */
const char *gmm_strerror(gmm_status status);

/* The message of the last failure in this thread (file, line, component, what was expected); "" if none.
 * The string stays valid until the next gmm call in this thread. */
const char *gmm_last_error(void);

/* ----------------------------------------------------------------------------------------------- options */

/* scikit-learn's covariance types. Whatever the type, a model hands out its covariances as (k, d, d) full
 * matrices (gmm_model_covariances); files and gmm_model_from_params use the type's own shape. */
typedef enum gmm_covariance_type {
    GMM_COV_FULL = 0,     /* each component its own full covariance; shape (k, d, d) ("full") */
    GMM_COV_TIED = 1,     /* one full covariance shared by all components; shape (d, d) ("tied") */
    GMM_COV_DIAG = 2,     /* each component a diagonal covariance; shape (k, d) ("diag") */
    GMM_COV_SPHERICAL = 3 /* each component one variance for every feature; shape (k) ("spherical") */
} gmm_covariance_type;

/* "full", "tied", "diag", "spherical". */
const char *gmm_covariance_name(gmm_covariance_type type);
/* Parses one of the names above into *type; 0 on success, -1 if s is not one of them. */
int gmm_covariance_parse(const char *s, gmm_covariance_type *type);
/* Number of doubles in the type's own shape of k covariances in d dimensions: k*d*d, d*d, k*d or k. */
size_t gmm_covariance_size(gmm_covariance_type type, size_t k, size_t d);

typedef enum gmm_init_method {
    GMM_INIT_KMEANS = 0,           /* k-means++ seeding then Lloyd iterations; hard labels (sklearn "kmeans") */
    GMM_INIT_KMEANS_PLUSPLUS = 1,  /* k-means++ seeds as one-point responsibilities (sklearn "k-means++") */
    GMM_INIT_RANDOM = 2,           /* uniform random responsibilities, rows normalized (sklearn "random") */
    GMM_INIT_RANDOM_FROM_DATA = 3, /* k distinct random points as one-point responsibilities
                                      (sklearn "random_from_data") */
    GMM_INIT_BINARY = 4            /* the assignment's scheme: means drawn uniformly from {0,1}^d,
                                      identity covariances, equal weights */
} gmm_init_method;

/* Where the pass over the data runs. Initialization, the M-step and the convergence test run on the host
 * in double whatever the backend. */
typedef enum gmm_backend_kind {
    GMM_BACKEND_CPU = 0,  /* the double-precision CPU reference (OpenMP) */
    GMM_BACKEND_CUDA = 1, /* an NVIDIA GPU: the data go to the device once, centered, as float32 or float64
                             (options.gpu_dtype); GMM_ERR_NO_DEVICE when no GPU is usable or the build has
                             no CUDA; the kernels handle d <= 32 and k <= 64 (above 16 features fewer
                             components: about 30 at d = 32 in float32), GMM_ERR_INVALID_ARG beyond */
    GMM_BACKEND_AUTO = 2  /* CUDA when a usable GPU is present and the problem fits the kernels, else the CPU;
                             gmm_model_device() says which ran */
} gmm_backend_kind;

/* The precision of the data (and of the per-point arithmetic) on a GPU. */
typedef enum gmm_gpu_dtype {
    GMM_GPU_DTYPE_AUTO = 0,    /* float32 unless float32 cannot resolve the data or the model (then float64, and
                                  the model's device line says why; README.md, "GPU", gives the criterion) */
    GMM_GPU_DTYPE_FLOAT32 = 1, /* float32 whatever the data */
    GMM_GPU_DTYPE_FLOAT64 = 2  /* float64 */
} gmm_gpu_dtype;

typedef struct gmm_model gmm_model;

/* Called after every EM iteration when options.on_iter is set. run is the 0-based n_init run, iter is
 * 1-based; loglik is the total log-likelihood over all points of the parameters entering the iteration;
 * change is the change of the mean per-point log-likelihood (NaN at iter 1 of a fresh start; measured from
 * options.warm_lower_bound when that is finite); seconds is the wall time of
 * the iteration. */
typedef void (*gmm_iter_callback)(void *user, int run, int iter, double loglik, double change, double seconds);

/* How far initial weights may sum from 1 (scikit-learn's atol for float64 weights). */
#define GMM_WEIGHTS_SUM_TOL 1e-8

typedef struct gmm_options {
    int n_components;                    /* k; default 1 (scikit-learn's default; the CLI requires -k) */
    gmm_covariance_type covariance_type; /* default GMM_COV_FULL */
    double tol;                          /* stop when |change of mean per-point log-likelihood| < tol; default 1e-3 */
    double reg_covar;                    /* added to every covariance diagonal; default 1e-6; must be >= 0 */
    int max_iter;                        /* EM iterations per run; default 100. 0, as in scikit-learn: the initial
                                  parameters, n_iter 0, converged 0, lower bound -INFINITY */
    int n_init;                          /* runs from different seeds; the best lower bound wins; default 1 */
    gmm_init_method init;                /* default GMM_INIT_KMEANS */
    /* Optional initial parameters, as scikit-learn's weights_init / means_init / precisions_init: each one
     * given replaces what the init method would produce (borrowed; NULL by default). When all three are
     * given the init method is not run. precisions are inverse covariances in the covariance type's own
     * shape: full (k, d, d), tied (d, d), diag (k, d), spherical (k). */
    const double
        *weights_init;        /* (k), each in [0, 1], summing to 1 within GMM_WEIGHTS_SUM_TOL (scikit-learn's check);
                                      used as given, never renormalized */
    const double *means_init; /* (k, d) */
    const double *precisions_init; /* shape of covariance_type, symmetric positive definite */
    /* The lower bound of the model a run continues from, as scikit-learn's warm_start keeps lower_bound_:
     * the first iteration's change is measured from it, so a chain of max_iter = 1 fits converges where one
     * long fit would. Default -INFINITY (a fresh start); otherwise finite. */
    double warm_lower_bound;
    uint64_t seed;             /* every random choice derives from it; default 0 */
    int n_threads;             /* CPU threads; 0 = OpenMP's default. Results do not depend on it. */
    gmm_backend_kind backend;  /* default GMM_BACKEND_CPU, the reference; GMM_BACKEND_AUTO uses a GPU if any */
    gmm_gpu_dtype gpu_dtype;   /* data type on the GPU; default GMM_GPU_DTYPE_AUTO */
    int verbose;               /* 1: one line per EM iteration on stderr when on_iter is NULL; default 0 */
    gmm_iter_callback on_iter; /* optional progress callback, NULL by default */
    void *on_iter_user;        /* passed to on_iter */
    /* Optional cancellation hook (NULL by default): called before every EM iteration of every n_init run;
     * when it returns non-zero the fit stops there and returns GMM_ERR_CANCELLED with no model
     * (nothing is leaked). A binding checks its interrupt flag (Python: Ctrl-C) in it. */
    int (*should_stop)(void *user);
    void *should_stop_user; /* passed to should_stop */
} gmm_options;

/* Fills *options with the defaults documented above. */
void gmm_options_init(gmm_options *options);

/* ----------------------------------------------------------------------------------------------- fitting */

/* Fits a mixture of options->n_components Gaussians to x (n, d) by EM and returns it in *out (owned by the
 * caller; release with gmm_model_free). Non-convergence within max_iter is not an error: check
 * gmm_model_converged(). A component that loses its responsibility is kept, as scikit-learn keeps it
 * (gmm_model_empty_since names it). Errors: GMM_ERR_TOO_FEW_POINTS when n < k, GMM_ERR_NOT_PD naming the
 * component. Components are named in messages as "component j (label j-1)": numbered from 1, beside the
 * 0-based index that labels and arrays use. */
gmm_status gmm_fit(const double *x, size_t n, size_t d, const gmm_options *options, gmm_model **out);

/* scikit-learn's fit_predict: fits as gmm_fit(x, n, d, options, out) does (same checks, same model bit for
 * bit), then writes into labels (n) the most responsible component of each training point under the final
 * model, computed by the fit's own backend on the data it already holds (on CUDA: no second upload, and the
 * labels can differ from gmm_predict's CPU labels only where two components are within float rounding of a
 * tie). labels equal gmm_infer(*out, x, n, options, NULL, labels, NULL)'s. On failure *out is NULL and
 * labels are unspecified. */
gmm_status gmm_fit_predict(const double *x, size_t n, size_t d, const gmm_options *options, gmm_model **out,
                           int *labels);

/* gmm_fit and gmm_fit_predict on float32 data x (n, d), read in place (no double copy of the array): every
 * value is widened to double as it is read, which is exact, so the model (and the labels) equal, bit for bit,
 * those of gmm_fit / gmm_fit_predict on the same values stored as double, on every backend and gpu_dtype. */
gmm_status gmm_fit_f32(const float *x, size_t n, size_t d, const gmm_options *options, gmm_model **out);
gmm_status gmm_fit_predict_f32(const float *x, size_t n, size_t d, const gmm_options *options, gmm_model **out,
                               int *labels);

/* A component whose total responsibility N_k falls below this many points' worth is empty: it explains no
 * data. As in scikit-learn the fit goes on: the M-step divides by N_k + 10 eps, so the component's mean
 * becomes sum_i r_ik x_i / (N_k + 10 eps) (near the origin when N_k is ~0), its covariance reg_covar I and its
 * weight ~10 eps / n. gmm_model_empty_since records it. */
#define GMM_EMPTY_FLOOR 1e-6

/* Builds a model from explicit parameters: weights (k) (normalized to sum 1), means (k, d), covariances in
 * the type's own shape (full (k, d, d), tied (d, d), diag (k, d), spherical (k)), symmetric positive
 * definite. Arrays are copied. */
gmm_status gmm_model_from_params(size_t k, size_t d, gmm_covariance_type type, const double *weights,
                                 const double *means, const double *covariances, gmm_model **out);

/* Releases a model; NULL is allowed. */
void gmm_model_free(gmm_model *model);

/* Releases an array handed out by gmm (gmm_read_data, gmm_sample); NULL is allowed. */
void gmm_free(void *p);

/* ------------------------------------------------------------------------------------------- inference */

/* The functions below that take no options (gmm_predict ... gmm_aic) run on the CPU reference backend,
 * the library's default; gmm_infer runs the same pass on a chosen backend. Log-densities are computed in log
 * space, so a point far from every component still gets a finite value; a point whose log-density is below
 * the smallest double in every component (its squared Mahalanobis distance overflows, e.g. a value of 1e200)
 * fails with GMM_ERR_INVALID_ARG naming its row (0-based). No output is ever NaN. */

/* labels (n): the most responsible component of each point of x (n, d). */
gmm_status gmm_predict(const gmm_model *model, const double *x, size_t n, int *labels);

/* proba (n, k) row-major: responsibilities of each point; rows sum to 1. */
gmm_status gmm_predict_proba(const gmm_model *model, const double *x, size_t n, double *proba);

/* logp (n): log p(x_i) under the model, natural log. */
gmm_status gmm_score_samples(const gmm_model *model, const double *x, size_t n, double *logp);

/* *mean_logp: mean per-point log-likelihood of x (scikit-learn's score). */
gmm_status gmm_score(const gmm_model *model, const double *x, size_t n, double *mean_logp);

/* The per-point outputs of predict / predict_proba / score_samples in one pass over x (n, d = the model's),
 * on the backend that options chooses: options->backend, gpu_dtype and n_threads are used as gmm_fit uses
 * them (AUTO: CUDA when a GPU is usable and its kernels take the model's d and k, else the CPU;
 * CUDA: GMM_ERR_NO_DEVICE when no GPU is usable), every other field is ignored; options NULL = the CPU
 * reference with OpenMP's default thread count, whose outputs equal gmm_predict's, gmm_predict_proba's and
 * gmm_score_samples' bit for bit. Outputs, each may be NULL: logp (n) log p(x_i), labels (n), resp (n, k)
 * row-major responsibilities. On CUDA the outputs carry the device's float32 (or float64) rounding: log p
 * within about 1e-4 + 1e-5 |log p| of the CPU's, responsibilities within about 1e-4, labels equal except
 * near ties. Every value of x must be finite (GMM_ERR_INVALID_ARG names the first that is not). */
gmm_status gmm_infer(const gmm_model *model, const double *x, size_t n, const gmm_options *options, double *logp,
                     int *labels, double *resp);

/* gmm_infer on float32 data x (n, d), read in place: the outputs equal, bit for bit, gmm_infer's on the same
 * values stored as double. */
gmm_status gmm_infer_f32(const gmm_model *model, const float *x, size_t n, const gmm_options *options, double *logp,
                         int *labels, double *resp);

/* Draws n points from the model into *x_out ((n, d), owned by the caller, release with gmm_free) and their
 * components into *labels_out ((n), may be NULL). Deterministic for a given seed. */
gmm_status gmm_sample(const gmm_model *model, size_t n, uint64_t seed, double **x_out, int **labels_out);

/* Bayesian and Akaike information criteria of the model on x (n, d), scikit-learn's definitions. */
gmm_status gmm_bic(const gmm_model *model, const double *x, size_t n, double *bic);
gmm_status gmm_aic(const gmm_model *model, const double *x, size_t n, double *aic);

/* Number of free parameters, scikit-learn's count: (k-1) + k*d + the covariance type's parameters
 * (full k*d*(d+1)/2, tied d*(d+1)/2, diag k*d, spherical k). */
size_t gmm_n_parameters(const gmm_model *model);

/* ---------------------------------------------------------------------------------------------- getters */

size_t gmm_model_n_components(const gmm_model *model);
size_t gmm_model_n_features(const gmm_model *model);
const double *gmm_model_weights(const gmm_model *model);     /* (k), borrowed */
const double *gmm_model_means(const gmm_model *model);       /* (k, d), borrowed */
const double *gmm_model_covariances(const gmm_model *model); /* (k, d, d) full, whatever the type; borrowed */
gmm_covariance_type gmm_model_covariance_type(const gmm_model *model);

/* Fit record (zero / empty for a model that was not produced by gmm_fit). */
int gmm_model_converged(const gmm_model *model); /* 1 if the best run met tol */
int gmm_model_n_iter(const gmm_model *model);    /* EM iterations of the best run */
/* scikit-learn's lower_bound_: the mean per-point log-likelihood of the parameters entering the best run's
 * last iteration (before its M-step), -INFINITY when max_iter was 0. The final model's own log-likelihood
 * is gmm_score's. */
double gmm_model_lower_bound(const gmm_model *model);
/* The first iteration (1-based) of the best run whose E-step left component c (0-based) empty (N_k below
 * GMM_EMPTY_FLOOR), 0 when it never was (or the model was not fitted). */
int gmm_model_empty_since(const gmm_model *model, size_t c);
/* The best run's total log-likelihood per iteration (*len entries; entry i is iteration i+1), borrowed. */
const double *gmm_model_loglik_trace(const gmm_model *model, int *len);
/* Seconds of wall time per iteration of the best run (*len entries), borrowed. */
const double *gmm_model_iter_seconds(const gmm_model *model, int *len);
int gmm_model_best_run(const gmm_model *model); /* which of the n_init runs won (0-based) */
/* Where the fit's passes ran, e.g. "CPU (16 threads)" or "CUDA: NVIDIA H100 ... float32"; "" if not fitted. */
const char *gmm_model_device(const gmm_model *model);

/* ---------------------------------------------------------------------------------------------------- io */

/* Writes the model as JSON (parameters, covariance type and fit record) to path, whole or not at all
 * (written to a temporary name, then renamed). Doubles are written so that they read back exactly. */
gmm_status gmm_model_save(const gmm_model *model, const char *path);

/* Reads a model written by gmm_model_save, or a hand-written one holding at least "weights", "means" and
 * "covariances". Errors name the file and what was expected. */
gmm_status gmm_model_load(const char *path, gmm_model **out);

/* Reads a data file: CSV (comma separated, optional non-numeric header row) or NumPy .npy (float32 or
 * float64, C order, 2-D), chosen by the ".npy" suffix. *x_out is (n, d) row-major, owned by the caller
 * (release with gmm_free). Malformed input fails with GMM_ERR_PARSE and a file:line:column message. */
gmm_status gmm_read_data(const char *path, double **x_out, size_t *n_out, size_t *d_out);

/* Writes x (n, d) as a float64 C-order .npy file, whole or not at all. */
gmm_status gmm_write_npy(const char *path, const double *x, size_t n, size_t d);

/* Writes x (n, d) as CSV with 17 significant digits (exact round trip), whole or not at all. */
gmm_status gmm_write_csv(const char *path, const double *x, size_t n, size_t d);

#ifdef __cplusplus
}
#endif

#endif /* GMM_H */
