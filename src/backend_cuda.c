/*
 * backend_cuda.c — the CUDA backend's host side: the same backend table as the CPU reference (stats,
 * predict, release) over data that live on the GPU for the backend's whole life.
 *
 * Open: the column means and ranges of x are computed in double; x - colmean is converted to float32 (or
 * kept float64) and copied to the device once, in chunks through a pinned staging buffer. Centering keeps
 * data far from the origin precise in float32; the backend translates every mean by the same colmean when it
 * uploads parameters, and the statistics S_k, T_k (taken around the current means) and the log-likelihood
 * are unchanged by the shift, so nothing is translated back. With GMM_GPU_DTYPE_AUTO the data type is
 * float32 unless float32 cannot resolve the data (criterion (a) below), and a model far from the data
 * (criterion (b)) moves the backend to float64 for good.
 *
 * Stats pass (one per EM iteration): pack the k parameter blocks (translated means, precision Cholesky
 * factors scaled to log2 units, log2 of weight x normalizer) into a pinned buffer, then one call of
 * gmm_cuda_stats enqueues at most: parameter upload, stats kernel, fixed-order reduction kernel, download of
 * the k (1 + D + D(D+1)/2) + 1 reduced doubles; one stream synchronization; the upper triangle of T is
 * mirrored into the full (k, d, d) the M-step expects, as the CPU backend does. When a mean moved far in
 * that pass (the sums around the old means would cancel in the M-step's T/N - (S/N)^2), a second pass takes
 * them around the new means and the host carries them back in double (restats_shifted).
 *
 * Every CUDA call is checked: CUDA_CHECK turns a failure into GMM_ERR_CUDA with file:line, the call's text
 * and CUDA's error string; a device allocation that fails says how many bytes it needed and how many were
 * free. Without CUDA (GMM_HAVE_CUDA undefined) the entry points are stubs that say so.
 */
#include "backend_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef GMM_HAVE_CUDA

#include <cuda_runtime_api.h>
#include <float.h>
#include <math.h>

#include "gmm_cuda.h"

static const double LN2 = 0.69314718055994530941723212145818;
static const double LOG_2PI = 1.8378770664093454835606594728112;

#define STAGING_BYTES ((size_t)8 << 20)  /* pinned staging buffer for the data upload */
#define PREDICT_BYTES ((size_t)64 << 20) /* device memory for one chunk of predict outputs */

/* GMM_GPU_DTYPE_AUTO's criterion (README.md, "GPU"). float32 stores the centered data and computes each point's
 * squared Mahalanobis distances z^2; it is used while
 *   (a) at open: summed over the columns, float32's rounding of the centered values (half an ulp of the
 *       column's largest magnitude) is at most F32_BUDGET of the finest scale the data show in that column
 *       (finest_spread: from the fullest bin of a histogram of a sample; never below min_sd, since every
 *       model's covariance has reg_covar on its diagonal). Rounding that moves points by F32_BUDGET standard
 *       deviations changes a log-density by about |z| F32_BUDGET, inside the GPU-vs-CPU tolerances;
 *   (b) at every pass: the model is not so far from the data that every point's z^2 to every component
 *       exceeds FAR_Z2, where float32's relative rounding of z^2 (2^-24) becomes an absolute error of the
 *       responsibilities above ~1e-5.
 * When (a) fails the data go to the device as float64; when (b) fails the backend re-uploads them as float64
 * and stays so (initial means far from the data: --init-model, --warm-start on shifted data, binary). */
#define F32_BUDGET 6.103515625e-05 /* 2^-14 */
#define FAR_Z2 256.0
#define SAMPLE_ROWS 65536 /* rows of the histogram sample */
#define HIST_BINS 16384
/* A pass after which some mean moved by more than sqrt(MOVE_RATIO) of its new standard deviations in some
 * feature is run again around the new means (restats_shifted). Sums around the old means carry a relative
 * rounding of about kRun eps (1 + move^2 / var) in T (eps of the data type, kRun = 64 terms summed in it before
 * the double flush; half that typically): 4 standard deviations keep float32 within 7e-5 of the variance in the
 * worst case; float64 needs the second pass only beyond 1e4. */
#define MOVE_RATIO_F32 16.0
#define MOVE_RATIO_F64 1e8

typedef struct cuda_impl {
    int device;
    char device_name[256];
    int cc_major, cc_minor;
    int use_double;
    size_t elem;             /* bytes of one element of data / parameters: 4 or 8 */
    size_t D;                /* the padded dimension the kernels run at */
    gmm_gpu_dtype asked;     /* the caller's choice; AUTO may move from float32 to float64 (never back) */
    double min_sd;           /* the smallest standard deviation a model on these data may have (sqrt(reg_covar)) */
    double *colmean;         /* (d) column means the device data are centered by */
    double *colmin, *colmax; /* (d) each column's range */
    double *round32;         /* (d) the most float32 rounding moves a centered value of each column */
    char why64[200];         /* why AUTO runs in float64 ("" otherwise) */
    char note[400];          /* the backend's precision_note after a switch to float64 */
    double mean_var;         /* mean over the features of sum (x - colmean)^2 / n, from the upload */
    void *x_dev;             /* (n, d) centered data on the device */
    cudaStream_t stream;
    int have_stream;
    /* per number of components, rebuilt when k changes */
    size_t plan_k; /* 0: no plan yet */
    gmm_cuda_plan plan;
    void *params_host; /* pinned, plan.params_len elements */
    void *params_dev;
    double *partials_dev; /* (plan.blocks, plan.stats_len) */
    double *stats_dev;    /* (plan.stats_len) */
    double *stats_host;   /* pinned, (plan.stats_len) */
    /* predict outputs for one chunk of points */
    size_t cap_logp, cap_labels, cap_resp; /* bytes allocated */
    double *logp_dev;
    int *labels_dev;
    double *resp_dev;
    /* per-point state of the initialization passes (NULL until used; freed by init_end) */
    void *dist_dev;     /* (n) data type: k-means++ closest distance, or Lloyd's distance to the center */
    int *ilabels_dev;   /* (n) Lloyd's labels */
    double *chunk_dev;  /* (ceil(n / GMM_CUDA_DRAW_CHUNK)) sums of dist_dev for the k-means++ draw, */
    double *chunk_host; /* and their host copy, valid while chunks_ok */
    int chunks_ok;
    void *draw_host; /* GMM_CUDA_DRAW_CHUNK elements: the chunk of dist_dev a draw lands in */
} cuda_impl;

/* Records a failed CUDA call as the thread's error and returns GMM_ERR_CUDA. */
static gmm_status cuda_fail(cudaError_t e, const char *call, const char *file, int line)
{
    return gmm_fail(GMM_ERR_CUDA, "%s:%d: %s failed: %s (%s)", file, line, call, cudaGetErrorString(e),
                    cudaGetErrorName(e));
}

/* Checks a CUDA call; on failure returns GMM_ERR_CUDA from the enclosing function. */
#define CUDA_CHECK(call)                                                                                             \
    do {                                                                                                             \
        cudaError_t e_ = (call);                                                                                     \
        if (e_ != cudaSuccess) return cuda_fail(e_, #call, __FILE__, __LINE__);                                      \
    } while (0)

/* cudaMalloc of bytes into *p; on failure *p is NULL and the error says what it was for, how many bytes it
 * needed and how many were free (GMM_ERR_NOMEM for an out-of-memory, GMM_ERR_CUDA otherwise). */
static gmm_status dev_alloc(void **p, size_t bytes, const char *what)
{
    *p = NULL;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaSuccess) return GMM_OK;
    *p = NULL;
    (void)cudaGetLastError(); /* an out-of-memory is not sticky: clear it */
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
    return gmm_fail(e == cudaErrorMemoryAllocation ? GMM_ERR_NOMEM : GMM_ERR_CUDA,
                    "cudaMalloc for %s failed: %s: %zu bytes needed, %zu of %zu bytes free on the device", what,
                    cudaGetErrorString(e), bytes, free_b, total_b);
}

/* cudaMallocHost (pinned host memory) of bytes into *p, with the same reporting as dev_alloc. */
static gmm_status host_alloc(void **p, size_t bytes, const char *what)
{
    *p = NULL;
    cudaError_t e = cudaMallocHost(p, bytes ? bytes : 1);
    if (e == cudaSuccess) return GMM_OK;
    *p = NULL;
    (void)cudaGetLastError();
    return gmm_fail(e == cudaErrorMemoryAllocation ? GMM_ERR_NOMEM : GMM_ERR_CUDA,
                    "cudaMallocHost for %s failed: %s: %zu bytes of pinned host memory needed", what,
                    cudaGetErrorString(e), bytes);
}

/* Frees the buffers that depend on the number of components. Errors of cudaFree are ignored (they can
 * only repeat an earlier, already reported, failure). */
static void free_plan_buffers(cuda_impl *c)
{
    if (c->params_host) cudaFreeHost(c->params_host);
    if (c->stats_host) cudaFreeHost(c->stats_host);
    if (c->params_dev) cudaFree(c->params_dev);
    if (c->partials_dev) cudaFree(c->partials_dev);
    if (c->stats_dev) cudaFree(c->stats_dev);
    if (c->logp_dev) cudaFree(c->logp_dev);
    if (c->labels_dev) cudaFree(c->labels_dev);
    if (c->resp_dev) cudaFree(c->resp_dev);
    c->params_host = c->params_dev = NULL;
    c->stats_host = c->partials_dev = c->stats_dev = NULL;
    c->logp_dev = c->resp_dev = NULL;
    c->labels_dev = NULL;
    c->cap_logp = c->cap_labels = c->cap_resp = 0;
    c->plan_k = 0;
}

/* The table's init_end: frees the per-point state of the initialization passes. */
static void cuda_init_end(gmm_backend *b)
{
    cuda_impl *c = b->impl;
    if (!c) return;
    (void)cudaSetDevice(c->device);
    if (c->have_stream) (void)cudaStreamSynchronize(c->stream);
    if (c->dist_dev) cudaFree(c->dist_dev);
    if (c->ilabels_dev) cudaFree(c->ilabels_dev);
    if (c->chunk_dev) cudaFree(c->chunk_dev);
    free(c->chunk_host);
    free(c->draw_host);
    c->dist_dev = c->draw_host = NULL;
    c->ilabels_dev = NULL;
    c->chunk_dev = c->chunk_host = NULL;
    c->chunks_ok = 0;
}

/* The table's release: waits for the stream, frees every device and pinned buffer and the stream; b->impl
 * becomes NULL. Safe on a half-opened backend. */
static void cuda_release(gmm_backend *b)
{
    cuda_impl *c = b->impl;
    if (c) {
        cuda_init_end(b);
        (void)cudaSetDevice(c->device);
        if (c->have_stream) (void)cudaStreamSynchronize(c->stream);
        free_plan_buffers(c);
        if (c->x_dev) cudaFree(c->x_dev);
        if (c->have_stream) cudaStreamDestroy(c->stream);
        (void)cudaGetLastError();
        free(c->colmean);
        free(c->colmin);
        free(c->colmax);
        free(c->round32);
        free(c);
    }
    b->impl = NULL;
}

_Static_assert(GMM_BACKEND_CUDA_MAX_D == GMM_CUDA_MAX_D && GMM_BACKEND_CUDA_MAX_K == GMM_CUDA_MAX_K,
               "backend_cuda.h and gmm_cuda.h agree on the kernels' limits");

/* Makes sure the launch plan and its buffers fit k components (built once per k, not per iteration). A shape
 * the kernels do not take is GMM_ERR_INVALID_ARG, any other failure GMM_ERR_CUDA. */
static gmm_status ensure_plan(gmm_backend *b, size_t k)
{
    cuda_impl *c = b->impl;
    if (c->plan_k == k) return GMM_OK;
    free_plan_buffers(c);
    char msg[256] = "";
    cudaError_t e = gmm_cuda_plan_make(&c->plan, c->device, (long long)b->n, (int)b->d, (int)k, c->use_double, msg,
                                       sizeof msg);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return gmm_fail(e == cudaErrorInvalidValue ? GMM_ERR_INVALID_ARG : GMM_ERR_CUDA,
                        "planning the CUDA kernels for d = %zu, k = %zu: %s (%s)", b->d, k,
                        msg[0] ? msg : cudaGetErrorString(e), cudaGetErrorName(e));
    }
    const gmm_cuda_plan *p = &c->plan;
    const size_t par_bytes = (p->params_len + p->shift_len) * p->elem_size; /* the shifted pass's centers too */
    gmm_status st = host_alloc(&c->params_host, par_bytes, "the parameters (host)");
    if (st == GMM_OK) st = dev_alloc(&c->params_dev, par_bytes, "the parameters");
    if (st == GMM_OK)
        st = dev_alloc((void **)&c->partials_dev, p->partials_len * sizeof(double),
                       "the per-block partial statistics");
    if (st == GMM_OK) st = dev_alloc((void **)&c->stats_dev, p->stats_len * sizeof(double), "the statistics");
    if (st == GMM_OK)
        st = host_alloc((void **)&c->stats_host, p->stats_len * sizeof(double), "the statistics (host)");
    if (st != GMM_OK) {
        free_plan_buffers(c);
        return st;
    }
    c->plan_k = k;
    return GMM_OK;
}

/* Writes v into element idx of the pinned parameter buffer, in the data type. */
static void put_param(cuda_impl *c, size_t idx, double v)
{
    if (c->use_double)
        ((double *)c->params_host)[idx] = v;
    else
        ((float *)c->params_host)[idx] = (float)v;
}

/* Packs k means (k, d) into the parameter layout of gmm_cuda.h, translated by -colmean; everything else
 * (and the padding) zero. The initialization passes read only these. */
static void pack_means(cuda_impl *c, size_t k, size_t d, const double *means)
{
    const size_t P = gmm_cuda_param_stride(c->D, c->use_double);
    memset(c->params_host, 0, k * P * c->elem);
    for (size_t q = 0; q < k; q++)
        for (size_t i = 0; i < d; i++) put_param(c, q * P + gmm_cuda_param_mean(i), means[q * d + i] - c->colmean[i]);
}

/* Packs model m into the parameter layout of gmm_cuda.h: means translated by -colmean, U scaled by
 * sqrt(1 / (2 ln 2)), base = (log w + log_det_chol - d/2 log 2pi) / ln 2; padding zero. */
static void pack_params(cuda_impl *c, const gmm_model *m)
{
    const size_t k = m->k, d = m->d, D = c->D, P = gmm_cuda_param_stride(D, c->use_double);
    const double su = sqrt(0.5 / LN2);
    pack_means(c, k, d, m->means);
    for (size_t q = 0; q < k; q++) {
        const size_t o = q * P;
        const double *u = m->prec_chol + q * d * d;
        for (size_t j = 0; j < d; j++)
            for (size_t i = 0; i <= j; i++) put_param(c, o + gmm_cuda_param_u(D, i, j), u[i * d + j] * su);
        put_param(c, o + gmm_cuda_param_base(D),
                  (log(m->weights[q]) + m->log_det_chol[q] - 0.5 * (double)d * LOG_2PI) / LN2);
    }
}

/* Checks that the kernels handle k components. */
static gmm_status check_k(size_t k)
{
    if (k < 1 || k > GMM_CUDA_MAX_K)
        return gmm_fail(GMM_ERR_INVALID_ARG,
                        "the CUDA backend handles 1 to %d components (got %zu); use the CPU backend", GMM_CUDA_MAX_K,
                        k);
    return GMM_OK;
}

/* Checks that model m (and stats out, when given) fit this backend. */
static gmm_status check_model(const gmm_backend *b, const gmm_model *m, const gmm_stats *out)
{
    if (!m || m->d != b->d)
        return gmm_fail(GMM_ERR_INVALID_ARG, "the model has %zu features, the data %zu", m ? m->d : 0, b->d);
    gmm_status st = check_k(m->k);
    if (st != GMM_OK) return st;
    if (out && (out->k != m->k || out->d != m->d))
        return gmm_fail(GMM_ERR_INVALID_ARG,
                        "statistics for k = %zu, d = %zu do not fit a model with k = %zu, d = %zu", out->k, out->d,
                        m->k, m->d);
    return GMM_OK;
}

/* Unpacks the reduced statistics in c->stats_host (gmm_cuda.h's layout) into out (k, d): T's upper
 * triangle mirrored into the full matrix, the log2 log-likelihood converted to natural log. */
static void unpack_stats(const cuda_impl *c, size_t k, size_t d, gmm_stats *out)
{
    const size_t D = c->D, E = gmm_cuda_entries(D);
    const double *v = c->stats_host;
    for (size_t q = 0; q < k; q++) {
        const double *s = v + q * E;
        double *t = out->tk + q * d * d;
        out->nk[q] = s[0];
        for (size_t i = 0; i < d; i++) out->sk[q * d + i] = s[1 + i];
        for (size_t i = 0; i < d; i++)
            for (size_t j = i; j < d; j++) t[i * d + j] = t[j * d + i] = s[gmm_cuda_stat_t(D, i, j)];
    }
    out->loglik = v[k * E] * LN2;
}

static gmm_status upload_data(cuda_impl *c, gmm_data x, size_t n, size_t d);

/* Sets the data type the device copy is (to be) in. */
static void set_type(cuda_impl *c, int use_double)
{
    c->use_double = use_double ? 1 : 0;
    c->elem = use_double ? sizeof(double) : sizeof(float);
}

/* Criterion (b) of AUTO (top of this file): the smallest over the components of a lower bound on every
 * point's squared Mahalanobis distance to the component: the squared distance from its mean to the box of
 * the data's column ranges over the trace of its covariance (no direction has a larger variance). */
static double model_min_z2(const cuda_impl *c, const gmm_model *m)
{
    const size_t k = m->k, d = m->d;
    double best = INFINITY;
    for (size_t q = 0; q < k; q++) {
        double dist2 = 0.0, trace = 0.0;
        for (size_t j = 0; j < d; j++) {
            const double mu = m->means[q * d + j];
            const double out = mu < c->colmin[j] ? c->colmin[j] - mu : (mu > c->colmax[j] ? mu - c->colmax[j] : 0.0);
            dist2 += out * out;
            trace += m->covariances[q * d * d + j * d + j];
        }
        const double z2 = trace > 0.0 ? dist2 / trace : (dist2 > 0.0 ? INFINITY : 0.0);
        if (z2 < best) best = z2;
    }
    return best;
}

/* Re-uploads the data as float64 for the rest of the backend's life (AUTO only), saying why in
 * b->precision_note; the plan and the initializations' state are rebuilt on their next use. When the device
 * has no room for float64 the data stay float32 and the note says so. */
static gmm_status switch_to_float64(gmm_backend *b, const char *why)
{
    cuda_impl *c = b->impl;
    cuda_init_end(b);
    free_plan_buffers(c);
    if (c->x_dev) cudaFree(c->x_dev);
    c->x_dev = NULL;
    set_type(c, 1);
    gmm_status st = upload_data(c, b->x, b->n, b->d);
    if (st == GMM_ERR_NOMEM) {
        char err[128];
        snprintf(err, sizeof err, "%s", gmm_last_error());
        gmm_clear_error();
        set_type(c, 0);
        st = upload_data(c, b->x, b->n, b->d);
        snprintf(c->note, sizeof c->note, "; float32 kept although %s: no room for float64 (%s)", why, err);
    } else {
        snprintf(c->why64, sizeof c->why64, "switched from float32: %s", why);
        snprintf(c->note, sizeof c->note, "; switched to float64: %s", why);
    }
    b->precision_note = c->note;
    return st;
}

/* Criterion (b) before a pass with model m: an AUTO backend in float32 whose model lies too far from the data
 * switches to float64. */
static gmm_status ensure_precision(gmm_backend *b, const gmm_model *m)
{
    cuda_impl *c = b->impl;
    if (c->asked != GMM_GPU_DTYPE_AUTO || c->use_double || b->n == 0 || c->note[0]) return GMM_OK;
    const double z2 = model_min_z2(c, m);
    if (!(z2 > FAR_Z2)) return GMM_OK;
    char why[120];
    snprintf(why, sizeof why, "the model's means lie more than %.3g of their standard deviations from every point",
             sqrt(z2));
    return switch_to_float64(b, why);
}

/* Whether, in the pass that gave s (around the model's means), some component's mean moved by more than
 * sqrt(ratio) of its new standard deviation in some feature: (S/N)^2 > ratio (T/N - (S/N)^2), that is
 * (1 + ratio) S^2 > ratio N T. */
static int means_moved_far(const gmm_stats *s, double ratio)
{
    const size_t k = s->k, d = s->d;
    for (size_t q = 0; q < k; q++) {
        const double nq = s->nk[q];
        if (!(nq > 0.0)) continue;
        for (size_t j = 0; j < d; j++) {
            const double sj = s->sk[q * d + j], tjj = s->tk[q * d * d + j * d + j];
            if ((1.0 + ratio) * sj * sj > ratio * nq * tjj) return 1;
        }
    }
    return 0;
}

/* The pass of cuda_stats again after a large move of the means (means_moved_far): each component's
 * statistics around its new mean, center = mean + S/N rounded to the data type, then carried back around the
 * model's mean in double with delta = center - mean: S = S' + N delta, T = T' + delta S'^T + S' delta^T +
 * N delta delta^T. The kernel then sums small deviations, and what is left of the M-step's cancellation in
 * T/N - (S/N)^2 is in double. params_host must still hold m's packed parameters; out->loglik is kept. */
static gmm_status restats_shifted(gmm_backend *b, const gmm_model *m, gmm_stats *out)
{
    cuda_impl *c = b->impl;
    const gmm_cuda_plan *p = &c->plan;
    const size_t k = m->k, d = m->d, D = c->D;
    double *delta = gmm_xmalloc(k * d * sizeof *delta);
    if (!delta) return GMM_ERR_NOMEM;
    for (size_t q = 0; q < k; q++)
        for (size_t j = 0; j < D; j++) {
            double v = 0.0;
            if (j < d) {
                const double mean = m->means[q * d + j] - c->colmean[j];
                const double move = out->nk[q] > 0.0 ? out->sk[q * d + j] / out->nk[q] : 0.0;
                v = mean + move;
                double stored = c->use_double ? v : (double)(float)v;
                if (!isfinite(stored)) v = stored = mean; /* a near-empty component's S / N: stay put */
                delta[q * d + j] = stored - mean;
            }
            put_param(c, p->params_len + q * D + j, v);
        }
    const double loglik = out->loglik;
    cudaError_t e = gmm_cuda_stats_shifted(p, c->x_dev, c->params_host, c->params_dev, c->partials_dev, c->stats_dev,
                                           c->stats_host, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        free(delta);
        return cuda_fail(e, "gmm_cuda_stats_shifted + cudaStreamSynchronize", __FILE__, __LINE__);
    }
    unpack_stats(c, k, d, out);
    out->loglik = loglik;
    for (size_t q = 0; q < k; q++) {
        const double nq = out->nk[q], *dl = delta + q * d;
        double *sq = out->sk + q * d, *tq = out->tk + q * d * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) tq[i * d + j] += dl[i] * sq[j] + sq[i] * dl[j] + nq * dl[i] * dl[j];
        for (size_t i = 0; i < d; i++) sq[i] += nq * dl[i];
    }
    free(delta);
    return GMM_OK;
}

/* The table's stats: one E-step pass over the device data with m's parameters into out (k, d as m), the
 * same quantities as the CPU backend (T full and symmetric, loglik the natural-log total), and a second pass
 * around the new means when the means moved far (restats_shifted). Blocks until the statistics are on the
 * host. */
static gmm_status cuda_stats(gmm_backend *b, const gmm_model *m, gmm_stats *out)
{
    cuda_impl *c = b->impl;
    gmm_status st = check_model(b, m, out);
    if (st != GMM_OK) return st;
    const size_t k = m->k, d = m->d;
    CUDA_CHECK(cudaSetDevice(c->device));
    st = ensure_precision(b, m);
    if (st == GMM_OK) st = ensure_plan(b, k);
    if (st != GMM_OK) return st;
    if (b->n == 0) {
        gmm_stats_zero(out);
        return GMM_OK;
    }
    pack_params(c, m);
    CUDA_CHECK(gmm_cuda_stats(&c->plan, c->x_dev, c->params_host, c->params_dev, c->partials_dev, c->stats_dev,
                              c->stats_host, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    unpack_stats(c, k, d, out);
    return means_moved_far(out, c->use_double ? MOVE_RATIO_F64 : MOVE_RATIO_F32) ? restats_shifted(b, m, out)
                                                                                 : GMM_OK;
}

/* Makes sure the device buffer *p holds at least bytes (grows it, dropping the old contents). */
static gmm_status ensure_dev(void **p, size_t *cap, size_t bytes, const char *what)
{
    if (*cap >= bytes) return GMM_OK;
    if (*p) cudaFree(*p);
    *p = NULL;
    *cap = 0;
    gmm_status st = dev_alloc(p, bytes, what);
    if (st == GMM_OK) *cap = bytes;
    return st;
}

/* The table's predict: per-point outputs into host arrays, each optional: logp (n), labels (n), resp (n, k).
 * Computed on the device in chunks of at most PREDICT_BYTES of outputs and copied back chunk by chunk. */
static gmm_status cuda_predict(gmm_backend *b, const gmm_model *m, double *logp, int *labels, double *resp)
{
    cuda_impl *c = b->impl;
    gmm_status st = check_model(b, m, NULL);
    if (st != GMM_OK) return st;
    if (b->n == 0 || (!logp && !labels && !resp)) return GMM_OK;
    const size_t k = m->k, d = b->d, n = b->n;
    CUDA_CHECK(cudaSetDevice(c->device));
    st = ensure_precision(b, m);
    if (st == GMM_OK) st = ensure_plan(b, k);
    if (st != GMM_OK) return st;
    const gmm_cuda_plan *p = &c->plan;
    pack_params(c, m);
    CUDA_CHECK(cudaMemcpyAsync(c->params_dev, c->params_host, p->params_len * p->elem_size, cudaMemcpyHostToDevice,
                               c->stream));
    const size_t per_point = (logp ? sizeof(double) : 0) + (labels ? sizeof(int) : 0) +
                             (resp ? k * sizeof(double) : 0);
    size_t chunk = PREDICT_BYTES / per_point;
    if (chunk < 1) chunk = 1;
    if (chunk > n) chunk = n;
    if (logp) st = ensure_dev((void **)&c->logp_dev, &c->cap_logp, chunk * sizeof(double), "log-densities");
    if (st == GMM_OK && labels)
        st = ensure_dev((void **)&c->labels_dev, &c->cap_labels, chunk * sizeof(int), "labels");
    if (st == GMM_OK && resp)
        st = ensure_dev((void **)&c->resp_dev, &c->cap_resp, chunk * k * sizeof(double), "responsibilities");
    if (st != GMM_OK) return st;
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        const size_t cn = n - i0 < chunk ? n - i0 : chunk;
        const char *xc = (const char *)c->x_dev + i0 * d * c->elem;
        CUDA_CHECK(gmm_cuda_predict(p, xc, (long long)cn, c->params_dev, logp ? c->logp_dev : NULL,
                                    labels ? c->labels_dev : NULL, resp ? c->resp_dev : NULL, c->stream));
        if (logp)
            CUDA_CHECK(
                cudaMemcpyAsync(logp + i0, c->logp_dev, cn * sizeof(double), cudaMemcpyDeviceToHost, c->stream));
        if (labels)
            CUDA_CHECK(
                cudaMemcpyAsync(labels + i0, c->labels_dev, cn * sizeof(int), cudaMemcpyDeviceToHost, c->stream));
        if (resp)
            CUDA_CHECK(cudaMemcpyAsync(resp + i0 * k, c->resp_dev, cn * k * sizeof(double), cudaMemcpyDeviceToHost,
                                       c->stream));
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
    }
    return GMM_OK;
}

gmm_status gmm_backend_cuda_check_k(gmm_backend *b, size_t k)
{
    if (!b || !b->impl || b->release != cuda_release) return gmm_fail(GMM_ERR_INVALID_ARG, "not a CUDA backend");
    gmm_status st = check_k(k);
    if (st != GMM_OK) return st;
    CUDA_CHECK(cudaSetDevice(((cuda_impl *)b->impl)->device));
    return ensure_plan(b, k);
}

/* ------------------------------------------------------------------------- initialization passes */

/* Makes sure a plan exists (for the passes that do not depend on k, whichever k was planned last, else
 * k = 1) and the per-point distance array (and the labels when want_labels) are allocated. */
static gmm_status init_state(gmm_backend *b, size_t k, int want_labels)
{
    cuda_impl *c = b->impl;
    CUDA_CHECK(cudaSetDevice(c->device));
    gmm_status st = ensure_plan(b, k ? k : (c->plan_k ? c->plan_k : 1));
    if (st == GMM_OK && !c->dist_dev) st = dev_alloc(&c->dist_dev, b->n * c->elem, "the per-point distances");
    if (st == GMM_OK && want_labels && !c->ilabels_dev)
        st = dev_alloc((void **)&c->ilabels_dev, b->n * sizeof(int), "the k-means labels");
    return st;
}

static gmm_status cuda_pp_potential(gmm_backend *b, const double *cand, int reset, int update, double *potential)
{
    cuda_impl *c = b->impl;
    if (!reset && !c->dist_dev) return gmm_fail(GMM_ERR_INVALID_ARG, "pp_potential without reset before any reset");
    gmm_status st = init_state(b, 0, 0);
    if (st != GMM_OK) return st;
    double cd[GMM_CUDA_MAX_D] = {0};
    float cf[GMM_CUDA_MAX_D] = {0};
    for (size_t j = 0; j < b->d; j++) {
        cd[j] = cand[j] - c->colmean[j];
        cf[j] = (float)cd[j];
    }
    CUDA_CHECK(gmm_cuda_pp_potential(&c->plan, c->x_dev, c->use_double ? (const void *)cd : (const void *)cf,
                                     c->dist_dev, reset, update, c->partials_dev, c->stats_dev, c->stats_host,
                                     c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    *potential = c->stats_host[0];
    if (update) c->chunks_ok = 0;
    return GMM_OK;
}

static gmm_status cuda_pp_draw(gmm_backend *b, double target, size_t *index)
{
    cuda_impl *c = b->impl;
    const size_t n = b->n, nch = (n + GMM_CUDA_DRAW_CHUNK - 1) / GMM_CUDA_DRAW_CHUNK;
    if (!c->dist_dev) return gmm_fail(GMM_ERR_INVALID_ARG, "pp_draw before pp_potential");
    CUDA_CHECK(cudaSetDevice(c->device));
    gmm_status st = GMM_OK;
    if (!c->chunk_dev) st = dev_alloc((void **)&c->chunk_dev, nch * sizeof(double), "the k-means++ chunk sums");
    if (st == GMM_OK && !c->chunk_host && !(c->chunk_host = gmm_xmalloc(nch * sizeof(double)))) st = GMM_ERR_NOMEM;
    if (st == GMM_OK && !c->draw_host && !(c->draw_host = gmm_xmalloc(GMM_CUDA_DRAW_CHUNK * c->elem)))
        st = GMM_ERR_NOMEM;
    if (st != GMM_OK) return st;
    if (!c->chunks_ok) {
        CUDA_CHECK(gmm_cuda_chunk_sums(&c->plan, c->dist_dev, c->chunk_dev, c->chunk_host, c->stream));
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
        c->chunks_ok = 1;
    }
    /* the first point whose running sum reaches target: first the chunk, then the point within it */
    double run = 0.0;
    size_t ch = 0;
    while (ch < nch && run + c->chunk_host[ch] < target) run += c->chunk_host[ch++];
    if (ch == nch) {
        *index = n - 1;
        return GMM_OK;
    }
    const size_t i0 = ch * GMM_CUDA_DRAW_CHUNK, cnt = n - i0 < GMM_CUDA_DRAW_CHUNK ? n - i0 : GMM_CUDA_DRAW_CHUNK;
    CUDA_CHECK(cudaMemcpyAsync(c->draw_host, (const char *)c->dist_dev + i0 * c->elem, cnt * c->elem,
                               cudaMemcpyDeviceToHost, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    size_t q = 0;
    for (; q + 1 < cnt; q++) {
        run += c->use_double ? ((const double *)c->draw_host)[q] : (double)((const float *)c->draw_host)[q];
        if (run >= target) break;
    }
    *index = i0 + q;
    return GMM_OK;
}

static gmm_status cuda_lloyd_assign(gmm_backend *b, size_t k, const double *centers, int reset, double *means,
                                    double *counts, size_t *changed)
{
    cuda_impl *c = b->impl;
    const size_t d = b->d;
    if (!reset && !c->ilabels_dev)
        return gmm_fail(GMM_ERR_INVALID_ARG, "lloyd_assign without reset before any reset");
    gmm_status st = check_k(k);
    if (st == GMM_OK) st = init_state(b, k, 1);
    if (st != GMM_OK) return st;
    const gmm_cuda_plan *p = &c->plan;
    pack_means(c, k, d, centers);
    CUDA_CHECK(gmm_cuda_assign(p, c->x_dev, c->params_host, c->params_dev, reset, c->ilabels_dev, c->dist_dev,
                               c->partials_dev, c->stats_dev, c->stats_host, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    *changed = (size_t)c->stats_host[0];
    c->chunks_ok = 0;
    /* the new means: N and S of the one-hot responsibilities around the current centers */
    CUDA_CHECK(gmm_cuda_resp_stats(p, c->x_dev, GMM_CUDA_RESP_LABELS, c->ilabels_dev, 0, 1, c->params_host,
                                   c->params_dev, c->partials_dev, c->stats_dev, c->stats_host, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    const size_t E = gmm_cuda_entries(c->D);
    for (size_t q = 0; q < k; q++) {
        const double *v = c->stats_host + q * E;
        counts[q] = v[0];
        if (v[0] > 0.0)
            for (size_t j = 0; j < d; j++) means[q * d + j] = centers[q * d + j] + v[1 + j] / v[0];
    }
    return GMM_OK;
}

static gmm_status cuda_lloyd_farthest(gmm_backend *b, size_t *index)
{
    cuda_impl *c = b->impl;
    if (!c->ilabels_dev || !c->plan_k) return gmm_fail(GMM_ERR_INVALID_ARG, "lloyd_farthest before lloyd_assign");
    CUDA_CHECK(cudaSetDevice(c->device));
    const gmm_cuda_plan *p = &c->plan;
    double *pairs = gmm_xmalloc(2 * (size_t)p->flat_blocks * sizeof *pairs);
    if (!pairs) return GMM_ERR_NOMEM;
    cudaError_t e = gmm_cuda_farthest(p, c->dist_dev, c->partials_dev, pairs, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        free(pairs);
        return cuda_fail(e, "gmm_cuda_farthest + cudaStreamSynchronize", __FILE__, __LINE__);
    }
    /* the blocks in order: the larger distance, or the smaller index on equal distances */
    double best = -INFINITY, bi = -1.0;
    for (int q = 0; q < p->flat_blocks; q++) {
        const double v = pairs[2 * q], i = pairs[2 * q + 1];
        if (i >= 0.0 && (bi < 0.0 || v > best || (v == best && i < bi))) {
            best = v;
            bi = i;
        }
    }
    free(pairs);
    if (bi < 0.0) return gmm_fail(GMM_ERR_CUDA, "lloyd_farthest found no point");
    const size_t far = (size_t)bi;
    const double taken_d = -1.0;
    const float taken_f = -1.0f;
    CUDA_CHECK(cudaMemcpyAsync((char *)c->dist_dev + far * c->elem,
                               c->use_double ? (const void *)&taken_d : (const void *)&taken_f, c->elem,
                               cudaMemcpyHostToDevice, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    c->chunks_ok = 0;
    *index = far;
    return GMM_OK;
}

static gmm_status cuda_resp_stats(gmm_backend *b, int kind, uint64_t seed, const double *shift, gmm_stats *out)
{
    cuda_impl *c = b->impl;
    const size_t k = out->k, d = b->d;
    if (out->d != d) return gmm_fail(GMM_ERR_INVALID_ARG, "statistics for d = %zu, data d = %zu", out->d, d);
    gmm_status st = check_k(k);
    if (st == GMM_OK) st = init_state(b, k, 0);
    if (st != GMM_OK) return st;
    if (kind == GMM_RESP_LABELS && !c->ilabels_dev)
        return gmm_fail(GMM_ERR_INVALID_ARG, "resp_stats before lloyd_assign");
    pack_means(c, k, d, shift);
    CUDA_CHECK(gmm_cuda_resp_stats(&c->plan, c->x_dev,
                                   kind == GMM_RESP_LABELS ? GMM_CUDA_RESP_LABELS : GMM_CUDA_RESP_RANDOM,
                                   c->ilabels_dev, (unsigned long long)seed, 0, c->params_host, c->params_dev,
                                   c->partials_dev, c->stats_dev, c->stats_host, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    unpack_stats(c, k, d, out);
    out->loglik = 0.0;
    return GMM_OK;
}

static gmm_status cuda_mean_variance(gmm_backend *b, double *out)
{
    *out = ((const cuda_impl *)b->impl)->mean_var;
    return GMM_OK;
}

/* Half a float32 ulp at magnitude a >= 0: the most that rounding a value of magnitude at most a to float32
 * moves it (below float32's normal range, half the subnormal spacing). */
static double f32_half_ulp(double a)
{
    if (!(a > 0.0)) return 0.0;
    int e;
    frexp(a, &e); /* a = f 2^e, f in [0.5, 1): float32's spacing there is 2^(e - 24) */
    if (e < -125) e = -125;
    return ldexp(1.0, e - 25);
}

/* One pass over x (n, d) for each column's mean (in double), range, and the bound of float32's rounding of
 * its centered values. */
static gmm_status column_ranges(cuda_impl *c, gmm_data x, size_t n, size_t d)
{
    c->colmean = gmm_xcalloc(d, sizeof(double));
    c->colmin = gmm_xcalloc(d, sizeof(double));
    c->colmax = gmm_xcalloc(d, sizeof(double));
    c->round32 = gmm_xcalloc(d, sizeof(double));
    if (!c->colmean || !c->colmin || !c->colmax || !c->round32) return GMM_ERR_NOMEM;
    for (size_t j = 0; j < d && n; j++) c->colmin[j] = c->colmax[j] = gmm_data_at(x, j);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const double v = gmm_data_at(x, i * d + j);
            c->colmean[j] += v;
            if (v < c->colmin[j]) c->colmin[j] = v;
            if (v > c->colmax[j]) c->colmax[j] = v;
        }
    for (size_t j = 0; j < d; j++) {
        c->colmean[j] = n ? c->colmean[j] / (double)n : 0.0;
        const double lo = fabs(c->colmin[j] - c->colmean[j]), hi = fabs(c->colmax[j] - c->colmean[j]);
        c->round32[j] = f32_half_ulp(lo > hi ? lo : hi);
    }
    return GMM_OK;
}

/* The finest scale column j of x (n, d) shows, from a histogram of HIST_BINS bins over [lo, hi] of the rows
 * i = floor(t n / S), t < S = min(n, SAMPLE_ROWS): the standard deviation of a normal density whose peak is the
 * fullest bin's density, S w / (count sqrt(2 pi)) for bins of width w. A cluster of weight pi and spread s shows
 * about s / pi; one narrower than a bin, w / (2.5 pi). 0 for a constant column (or a range beyond double's).
 * counts holds HIST_BINS. */
static double finest_spread(gmm_data x, size_t n, size_t d, size_t j, double lo, double hi, unsigned *counts)
{
    if (!(hi > lo) || !isfinite(hi - lo) || n == 0) return 0.0;
    const size_t S = n < SAMPLE_ROWS ? n : SAMPLE_ROWS;
    const double w = (hi - lo) / HIST_BINS, step = (double)n / (double)S;
    memset(counts, 0, HIST_BINS * sizeof *counts);
    unsigned top = 0;
    for (size_t t = 0; t < S; t++) {
        size_t i = (size_t)((double)t * step);
        if (i >= n) i = n - 1;
        const double v = (gmm_data_at(x, i * d + j) - lo) / w;
        const size_t bin = v >= (double)HIST_BINS ? HIST_BINS - 1 : (v > 0.0 ? (size_t)v : 0);
        if (++counts[bin] > top) top = counts[bin];
    }
    return (double)S * w / ((double)top * 2.5066282746310002);
}

/* Criterion (a) of AUTO (top of this file) on x (n, d): 1 when float32 cannot resolve the data (the reason,
 * naming the column that needs float64 most, goes into why), 0 when it can; -1 when out of memory. */
static int data_need_float64(const cuda_impl *c, gmm_data x, size_t n, size_t d, char *why, size_t len)
{
    unsigned *counts = gmm_xmalloc(HIST_BINS * sizeof *counts);
    if (!counts) return -1;
    double total = 0.0, worst = -1.0, worst_scale = 0.0;
    size_t worst_j = 0;
    for (size_t j = 0; j < d; j++) {
        if (c->round32[j] == 0.0) continue;
        double scale = finest_spread(x, n, d, j, c->colmin[j], c->colmax[j], counts);
        if (scale < c->min_sd) scale = c->min_sd;
        const double q = scale > 0.0 ? c->round32[j] / scale : INFINITY;
        total += q;
        if (q > worst) {
            worst = q;
            worst_j = j;
            worst_scale = scale;
        }
    }
    free(counts);
    if (total <= F32_BUDGET) return 0;
    snprintf(why, len,
             "float32 would round column %zu by up to %.2g against a finest spread of %.2g (it is kept up "
             "to %.2g of it)",
             worst_j, c->round32[worst_j], worst_scale, F32_BUDGET);
    return 1;
}

/* Copies x - colmean to the device in the backend's data type, in chunks of whole rows through a pinned
 * staging buffer; the same pass sums the squares of the centered values for the mean feature variance
 * (Lloyd's tolerance scale). */
static gmm_status upload_data(cuda_impl *c, gmm_data x, size_t n, size_t d)
{
    if (n == 0) return GMM_OK;
    gmm_status st = dev_alloc(&c->x_dev, n * d * c->elem, "the data");
    if (st != GMM_OK) return st;
    size_t rows = STAGING_BYTES / (d * c->elem);
    if (rows < 1) rows = 1;
    if (rows > n) rows = n;
    void *stage = NULL;
    st = host_alloc(&stage, rows * d * c->elem, "the upload staging buffer");
    if (st != GMM_OK) { /* no device copy either: a retry (switch_to_float64) allocates its own */
        cudaFree(c->x_dev);
        c->x_dev = NULL;
        return st;
    }
    double ss = 0.0; /* sum of squares of the centered values, for the mean variance */
    for (size_t r0 = 0; r0 < n && st == GMM_OK; r0 += rows) {
        const size_t nr = n - r0 < rows ? n - r0 : rows;
        for (size_t i = 0; i < nr && st == GMM_OK; i++)
            for (size_t j = 0; j < d; j++) {
                const double xv = gmm_data_at(x, (r0 + i) * d + j), v = xv - c->colmean[j];
                ss += v * v;
                if (!isfinite(v) || (!c->use_double && !(fabs(v) <= FLT_MAX))) {
                    st = gmm_fail(GMM_ERR_INVALID_ARG, "data row %zu, column %zu (%g) is not finite%s", r0 + i, j, xv,
                                  isfinite(v) ? " in float32 once centered; use float64 on the GPU or the CPU backend"
                                              : "");
                    break;
                }
                if (c->use_double)
                    ((double *)stage)[i * d + j] = v;
                else
                    ((float *)stage)[i * d + j] = (float)v;
            }
        if (st != GMM_OK) break;
        cudaError_t e = cudaMemcpyAsync((char *)c->x_dev + r0 * d * c->elem, stage, nr * d * c->elem,
                                        cudaMemcpyHostToDevice, c->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
        if (e != cudaSuccess)
            st = cuda_fail(e, "cudaMemcpyAsync(data chunk) + cudaStreamSynchronize", __FILE__, __LINE__);
    }
    cudaFreeHost(stage);
    c->mean_var = ss / (double)n / (double)d;
    return st;
}

/* Column statistics, the data type (AUTO: criterion (a)) and the upload of x (n, d). */
static gmm_status upload_centered(cuda_impl *c, gmm_data x, size_t n, size_t d)
{
    gmm_status st = column_ranges(c, x, n, d);
    if (st != GMM_OK) return st;
    if (c->asked == GMM_GPU_DTYPE_AUTO && n) {
        const int need = data_need_float64(c, x, n, d, c->why64, sizeof c->why64);
        if (need < 0) return GMM_ERR_NOMEM;
        set_type(c, need);
    }
    return upload_data(c, x, n, d);
}

gmm_status gmm_backend_cuda_open_data(gmm_backend *b, gmm_data x, size_t n, size_t d, gmm_gpu_dtype dtype,
                                      double min_sd)
{
    memset(b, 0, sizeof *b);
    if ((unsigned)dtype > GMM_GPU_DTYPE_FLOAT64)
        return gmm_fail(GMM_ERR_INVALID_ARG, "unknown GPU data type %d", (int)dtype);
    if (!x.p && n) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_backend_cuda_open: x must not be NULL");
    if (d < 1 || d > GMM_CUDA_MAX_D)
        return gmm_fail(GMM_ERR_INVALID_ARG,
                        "the CUDA backend handles 1 to %d features (the data have %zu); use the "
                        "CPU backend",
                        GMM_CUDA_MAX_D, d);
    if (n > (size_t)0x3fffffffffffffffULL / (d * sizeof(double)))
        return gmm_fail(GMM_ERR_INVALID_ARG, "%zu points of %zu features are too many", n, d);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count < 1) {
        (void)cudaGetLastError();
        return gmm_fail(GMM_ERR_NO_DEVICE, "no CUDA device: %s",
                        e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none");
    }
    cuda_impl *c = gmm_xcalloc(1, sizeof *c);
    if (!c) return GMM_ERR_NOMEM;
    b->name = "cuda";
    b->stats = cuda_stats;
    b->predict = cuda_predict;
    b->release = cuda_release;
    b->pp_potential = cuda_pp_potential;
    b->pp_draw = cuda_pp_draw;
    b->lloyd_assign = cuda_lloyd_assign;
    b->lloyd_farthest = cuda_lloyd_farthest;
    b->resp_stats = cuda_resp_stats;
    b->mean_variance = cuda_mean_variance;
    b->init_end = cuda_init_end;
    b->x = x;
    b->n = n;
    b->d = d;
    b->impl = c;
    c->asked = dtype;
    c->min_sd = min_sd > 0.0 && isfinite(min_sd) ? min_sd : 0.0;
    set_type(c, dtype == GMM_GPU_DTYPE_FLOAT64);
    c->D = gmm_cuda_padded_dim(d);
    gmm_status st = GMM_OK;
    struct cudaDeviceProp prop;
    if ((e = cudaGetDevice(&c->device)) != cudaSuccess || (e = cudaSetDevice(c->device)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&prop, c->device)) != cudaSuccess) {
        st = cuda_fail(e, "cudaGetDevice / cudaSetDevice / cudaGetDeviceProperties", __FILE__, __LINE__);
        goto fail;
    }
    snprintf(c->device_name, sizeof c->device_name, "%s", prop.name);
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
    if ((e = gmm_cuda_probe()) != cudaSuccess) {
        (void)cudaGetLastError();
        st = gmm_fail(GMM_ERR_NO_DEVICE,
                      "CUDA device %d (%s, compute capability %d.%d) cannot run the kernels of this build: %s; "
                      "rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d",
                      c->device, c->device_name, c->cc_major, c->cc_minor, cudaGetErrorString(e), c->cc_major,
                      c->cc_minor);
        goto fail;
    }
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        st = cuda_fail(e, "cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)", __FILE__, __LINE__);
        goto fail;
    }
    c->have_stream = 1;
    st = upload_centered(c, x, n, d);
    if (st != GMM_OK) goto fail;
    return GMM_OK;
fail:
    cuda_release(b);
    memset(b, 0, sizeof *b);
    return st;
}

int gmm_cuda_available(char *name, size_t len)
{
    if (name && len) name[0] = '\0';
    int count = 0, prev = 0, usable = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) {
        (void)cudaGetLastError();
        return 0;
    }
    if (cudaGetDevice(&prev) != cudaSuccess) prev = 0;
    for (int dev = 0; dev < count; dev++) {
        if (cudaSetDevice(dev) != cudaSuccess || gmm_cuda_probe() != cudaSuccess) {
            (void)cudaGetLastError();
            continue;
        }
        if (usable++ == 0 && name && len) {
            struct cudaDeviceProp prop;
            if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
                snprintf(name, len, "%s", prop.name);
            else
                (void)cudaGetLastError();
        }
    }
    if (cudaSetDevice(prev) != cudaSuccess) (void)cudaGetLastError();
    return usable;
}

void *gmm_backend_cuda_stream(const gmm_backend *b)
{
    if (!b || !b->impl || b->release != cuda_release) return NULL;
    return (void *)((const cuda_impl *)b->impl)->stream;
}

const char *gmm_backend_cuda_describe(const gmm_backend *b, char *buf, size_t len)
{
    if (!buf || !len) return buf;
    buf[0] = '\0';
    if (!b || !b->impl || b->release != cuda_release) return buf;
    const cuda_impl *c = b->impl;
    int w = snprintf(buf, len, "%s (device %d, sm_%d%d), %s%s%s%s", c->device_name, c->device, c->cc_major,
                     c->cc_minor, c->use_double ? "float64" : "float32",
                     c->asked == GMM_GPU_DTYPE_AUTO ? " (auto" : "",
                     c->asked == GMM_GPU_DTYPE_AUTO && c->why64[0] ? ": " : "",
                     c->asked != GMM_GPU_DTYPE_AUTO ? ""
                     : c->why64[0]                  ? c->why64
                                                    : "");
    if (c->asked == GMM_GPU_DTYPE_AUTO && w >= 0 && (size_t)w < len) w += snprintf(buf + w, len - (size_t)w, ")");
    if (c->plan_k && w >= 0 && (size_t)w < len) {
        const gmm_cuda_plan *p = &c->plan;
        snprintf(buf + w, len - (size_t)w, ", %s kernel for d = %d (as %d), k = %d: %d blocks x %d threads",
                 p->path == GMM_CUDA_PATH_REG ? "register" : "tile", p->d, p->D, p->k, p->blocks, p->threads);
    }
    return buf;
}

#else /* !GMM_HAVE_CUDA: stubs */

gmm_status gmm_backend_cuda_open_data(gmm_backend *b, gmm_data x, size_t n, size_t d, gmm_gpu_dtype dtype,
                                      double min_sd)
{
    (void)x;
    (void)n;
    (void)d;
    (void)dtype;
    (void)min_sd;
    memset(b, 0, sizeof *b);
    return gmm_fail(GMM_ERR_NO_DEVICE, "this gmm was built without CUDA");
}

gmm_status gmm_backend_cuda_check_k(gmm_backend *b, size_t k)
{
    (void)b;
    (void)k;
    return gmm_fail(GMM_ERR_NO_DEVICE, "this build of gmm has no CUDA backend");
}

int gmm_cuda_available(char *name, size_t len)
{
    if (name && len) name[0] = '\0';
    return 0;
}

void *gmm_backend_cuda_stream(const gmm_backend *b)
{
    (void)b;
    return NULL;
}

const char *gmm_backend_cuda_describe(const gmm_backend *b, char *buf, size_t len)
{
    (void)b;
    if (buf && len) buf[0] = '\0';
    return buf;
}

#endif /* GMM_HAVE_CUDA */

/* The double-data entry points of both builds: wrappers of gmm_backend_cuda_open_data. */
gmm_status gmm_backend_cuda_open(gmm_backend *b, const double *x, size_t n, size_t d, int use_double)
{
    return gmm_backend_cuda_open_dtype(b, x, n, d, use_double ? GMM_GPU_DTYPE_FLOAT64 : GMM_GPU_DTYPE_FLOAT32, 0.0);
}

gmm_status gmm_backend_cuda_open_dtype(gmm_backend *b, const double *x, size_t n, size_t d, gmm_gpu_dtype dtype,
                                       double min_sd)
{
    return gmm_backend_cuda_open_data(b, gmm_data_double(x), n, d, dtype, min_sd);
}
