/*
 * gmm_cuda.h — the C interface of the CUDA kernels (kernels/gmm_cuda.cu): a launch plan per (data, k), the
 * stats pass (E-step + sufficient statistics, reduced in double on the device) and the predict pass, plus
 * the memory layouts that the host side (src/backend_cuda.c) packs parameters into and unpacks statistics
 * from. Host code stays C; everything here is callable from C.
 *
 * Shapes and layouts (D = gmm_cuda_padded_dim(d) >= d, the dimension the kernels are compiled for; the
 * features d..D-1 are zero padding that contributes nothing):
 *   data     (n, d) row-major, float32 (or float64 with use_double), CENTERED by the column means;
 *   params   (k, P) in the data type, P = gmm_cuda_param_stride(D, use_double); component c's block:
 *              [gmm_cuda_param_mean(i)]      mean_i - colmean_i               (i < D; 0 for i >= d)
 *              [gmm_cuda_param_u(i, j)]      U_ij * sqrt(1/(2 ln 2)), i <= j  (upper precision Cholesky
 *                                            factor, packed by columns; 0 where i or j >= d)
 *              [gmm_cuda_param_base(D)]      (log w_c + log_det_chol_c - d/2 log 2pi) / ln 2
 *            so that log2(w_c N(x | c)) = base - |(x - mean) U'|^2 (everything in log2 units);
 *   stats    (k * E + 1) doubles, E = gmm_cuda_entries(D); component c's block at c * E:
 *              [0] N_c, [1 + i] S_c,i, [gmm_cuda_stat_t(D, i, j)] T_c,ij for i <= j (upper triangle only),
 *            around the means given in params; the last double is the sum over points of log2 p(x).
 */
#ifndef GMM_CUDA_H
#define GMM_CUDA_H

#include <stddef.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GMM_CUDA_MAX_D                                                                                               \
    32                    /* largest number of features the kernels handle (above 16, k is bounded by the
                             tile kernel's shared memory: about 30 components in float32 at d = 32) */
#define GMM_CUDA_MAX_K 64 /* largest number of components the kernels handle */

/* Which stats kernel a plan uses. */
#define GMM_CUDA_PATH_REG 0  /* one thread per point, every statistic in registers (small d * k) */
#define GMM_CUDA_PATH_TILE 1 /* tiles of points in shared memory, statistics split over threads */

/* Sources of the responsibilities of gmm_cuda_resp_stats (the initializations'). */
#define GMM_CUDA_RESP_LABELS 1 /* one-hot on the labels of the last assignment */
#define GMM_CUDA_RESP_RANDOM 2 /* gmm_hash_uniform(seed, i, c) normalized per point (kernels/gmm_hash.h) */

#define GMM_CUDA_DRAW_CHUNK 4096 /* points per sum of gmm_cuda_chunk_sums */

/* A launch plan: fixed for a given (device, n, d, k, data type), so that the partial sums and their
 * reduction order, hence the results, are the same on every call. Filled by gmm_cuda_plan_make. */
typedef struct gmm_cuda_plan {
    long long n;                   /* points */
    int d, D, k;                   /* features, padded features, components */
    int use_double;                /* data, parameters and per-point arithmetic in float64 instead of float32 */
    size_t elem_size;              /* 4 or 8: bytes of one data / parameter element */
    int path;                      /* GMM_CUDA_PATH_REG or GMM_CUDA_PATH_TILE */
    int threads, blocks;           /* stats kernel launch shape; blocks partials are written */
    size_t smem;                   /* stats kernel dynamic shared memory, bytes */
    size_t stats_len;              /* doubles of one (partial or reduced) statistics vector: k * E + 1 */
    size_t params_len;             /* elements of the parameter array: k * P */
    size_t shift_len;              /* elements of the shifts after it for gmm_cuda_stats_shifted: k * D */
    int reduce_blocks;             /* launch shape of the fixed-order reduction (256 threads each) */
    int predict_threads;           /* predict kernel: threads per block, */
    int predict_max_blocks;        /* the most blocks it is launched with, */
    size_t predict_smem;           /* and its dynamic shared memory in bytes */
    int tile_threads, tile_blocks; /* the tile stats kernel's launch shape (the stats pass's when path is */
    size_t tile_smem;              /* GMM_CUDA_PATH_TILE; the initializations' resp_stats use it whatever the path) */
    int flat_blocks;     /* blocks of the initialization kernels (256 threads each, 4 per multiprocessor at most,
                             independent of k; potential, assign, */
                         /* farthest): their partials are flat_blocks doubles (2 * flat_blocks for farthest) */
    size_t assign_smem;  /* the assign kernel's dynamic shared memory: the k parameter blocks */
    size_t partials_len; /* doubles a partials buffer needs for every kernel of this plan */
} gmm_cuda_plan;

/* The dimension the kernels are compiled for that holds d features (1, 2, 3, 4, 6, 8, 12, 16, 24 or 32); 0 when
 * d is 0 or above GMM_CUDA_MAX_D. */
size_t gmm_cuda_padded_dim(size_t d);

/* Parameter layout (see the top of this file): elements per component, and the offsets in a block. */
size_t gmm_cuda_param_stride(size_t D, int use_double);
size_t gmm_cuda_param_mean(size_t i);
size_t gmm_cuda_param_u(size_t D, size_t i, size_t j); /* i <= j < D */
size_t gmm_cuda_param_base(size_t D);

/* Statistics layout: doubles per component, and the offset of T_ij (i <= j < D) in a component's block. */
size_t gmm_cuda_entries(size_t D);
size_t gmm_cuda_stat_t(size_t D, size_t i, size_t j);

/* Builds the plan for n points of d features and k components on `device` (which must be the current
 * device: kernel attributes are set on it). The tile kernel's block size is the one (of 64, 128, 256) that
 * keeps the most threads resident per multiprocessor; the environment variable GMM_CUDA_TILE_THREADS forces
 * one (a benchmarking knob: results stay deterministic for a given value). Returns cudaSuccess, cudaErrorInvalidValue for a shape the
 * kernels do not handle (d outside 1..GMM_CUDA_MAX_D, k outside 1..GMM_CUDA_MAX_K, n < 0) or that does not
 * fit the device's shared memory, or the error of a failing device query; msg (len bytes, may be NULL)
 * then says what went wrong. */
cudaError_t gmm_cuda_plan_make(gmm_cuda_plan *plan, int device, long long n, int d, int k, int use_double, char *msg,
                               size_t len);

/* cudaSuccess when this build has code that runs on the current device, else the error of trying
 * (typically cudaErrorNoKernelImageForDevice). */
cudaError_t gmm_cuda_probe(void);

/* One stats pass, enqueued on stream s (nothing waits): uploads params_host (pinned, plan->params_len
 * elements) to params_dev when the plan's kernel reads parameters from global memory, runs the stats kernel
 * on x_dev ((n, d) centered data) writing plan->blocks partials of plan->stats_len doubles into partials_dev,
 * reduces them in a fixed order into stats_dev (plan->stats_len doubles) and copies that to stats_host
 * (pinned). params_host must stay unchanged until the stream has passed this call. Requires n >= 1.
 * Returns the first launch or copy error. */
cudaError_t gmm_cuda_stats(const gmm_cuda_plan *plan, const void *x_dev, const void *params_host, void *params_dev,
                           double *partials_dev, double *stats_dev, double *stats_host, cudaStream_t s);

/* The stats pass of gmm_cuda_stats with each component's statistics taken around its own center instead of
 * its mean (for a pass after a large move of the means, where sums around the old means would cancel in the
 * M-step): params_host (pinned) holds plan->params_len + plan->shift_len elements, the parameter blocks and
 * then k centers of D elements (centered like the data; zero padding), all uploaded to params_dev, which
 * must have room for them. The responsibilities and the log-likelihood are the E-step's with the
 * parameters; N, S and T are around the centers. Runs on the tile kernel's shape (plan->tile_*) whatever
 * the plan's path. Enqueued on s. Requires n >= 1. */
cudaError_t gmm_cuda_stats_shifted(const gmm_cuda_plan *plan, const void *x_dev, const void *params_host,
                                   void *params_dev, double *partials_dev, double *stats_dev, double *stats_host,
                                   cudaStream_t s);

/* Per-point outputs for the n points at x_dev (a row range of the plan's data; n >= 1), each optional
 * (NULL): logp_dev (n) natural-log density, labels_dev (n) first most responsible component, resp_dev
 * (n, k) responsibilities. params_dev must hold the parameters (plan->params_len elements). Enqueued on s.
 */
cudaError_t gmm_cuda_predict(const gmm_cuda_plan *plan, const void *x_dev, long long n, const void *params_dev,
                             double *logp_dev, int *labels_dev, double *resp_dev, cudaStream_t s);

/* ------------------------------------------------------------------------ initialization passes
 * (their meaning is that of the backend table's pp_potential, pp_draw, lloyd_assign, lloyd_farthest and
 * resp_stats in src/gmm_internal.h; everything is enqueued on s and nothing waits). Per-point state lives in
 * the caller's device arrays: dist_dev (n elements of the data type) and labels_dev (n ints). */

/* k-means++ potential with candidate cand_host (D elements of the data type, centered like the data):
 * dist_dev = min(dist_dev (+inf with reset), |x - cand|^2) stored when update is set; the double sum over
 * the points goes to out_host[0] (through partials_dev and out_dev). */
cudaError_t gmm_cuda_pp_potential(const gmm_cuda_plan *plan, const void *x_dev, const void *cand_host, void *dist_dev,
                                  int reset, int update, double *partials_dev, double *out_dev, double *out_host,
                                  cudaStream_t s);

/* Sums of dist_dev over consecutive chunks of GMM_CUDA_DRAW_CHUNK points (ceil(n / GMM_CUDA_DRAW_CHUNK) of
 * them, each in a fixed order) into sums_dev, copied to sums_host. */
cudaError_t gmm_cuda_chunk_sums(const gmm_cuda_plan *plan, const void *dist_dev, double *sums_dev, double *sums_host,
                                cudaStream_t s);

/* Lloyd assignment to the k centers given as the means of params_host (the parameter layout; uploaded to
 * params_dev): labels_dev, dist_dev for every point; the number of changed labels to out_host[0]. */
cudaError_t gmm_cuda_assign(const gmm_cuda_plan *plan, const void *x_dev, const void *params_host, void *params_dev,
                            int reset, int *labels_dev, void *dist_dev, double *partials_dev, double *out_dev,
                            double *out_host, cudaStream_t s);

/* Per block of plan->flat_blocks, the largest element of dist_dev and its first index: pairs_host (2 *
 * flat_blocks doubles: value, index; index -1 for a block without points). The caller merges them. */
cudaError_t gmm_cuda_farthest(const gmm_cuda_plan *plan, const void *dist_dev, double *partials_dev,
                              double *pairs_host, cudaStream_t s);

/* Statistics as gmm_cuda_stats computes them (log-likelihood slot 0), of the responsibilities `mode`
 * (GMM_CUDA_RESP_LABELS with labels_dev, or GMM_CUDA_RESP_RANDOM with seed) around the means of params_host
 * (uploaded to params_dev). With first_moments set only N and S are guaranteed (the second-moment groups
 * may be skipped and hold 0). Uses the tile kernel's shape (plan->tile_*). */
cudaError_t gmm_cuda_resp_stats(const gmm_cuda_plan *plan, const void *x_dev, int mode, const int *labels_dev,
                                unsigned long long seed, int first_moments, const void *params_host, void *params_dev,
                                double *partials_dev, double *stats_dev, double *stats_host, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif /* GMM_CUDA_H */
