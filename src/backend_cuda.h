/*
 * backend_cuda.h — the CUDA backend's entry points (host side in backend_cuda.c, device code in kernels/).
 * Always declared: in a build without CUDA they compile to stubs that report it (GMM_ERR_NO_DEVICE, no
 * device available), so callers need no #ifdef.
 */
#ifndef GMM_BACKEND_CUDA_H
#define GMM_BACKEND_CUDA_H

#include "gmm_internal.h"

/* Opens the CUDA backend on the current CUDA device (device 0 unless the thread chose another with
 * cudaSetDevice; CUDA_VISIBLE_DEVICES applies) for x (n, d) row-major: the data are centered by their column
 * means (computed in double) and copied to the device once, as float32, or as float64 when use_double is
 * set; x itself is not kept (b->x still points at it for callers that want the host copy). Fills b with
 * the same table as the CPU backend (b->name = "cuda"): stats, predict and the initialization passes for
 * models of 1..GMM_CUDA_MAX_K (64) components (fewer above 16 features: gmm_backend_cuda_check_k), release. Errors: GMM_ERR_INVALID_ARG for d outside 1..32 or a value that does not
 * fit float32, GMM_ERR_NO_DEVICE when no usable device is present (or the build has no CUDA),
 * GMM_ERR_NOMEM when the device memory does not hold the data (the message gives the bytes needed and
 * free), GMM_ERR_CUDA for any other CUDA failure (the message names the call, file:line and CUDA's error).
 * On failure b holds nothing to release. */
gmm_status gmm_backend_cuda_open(gmm_backend *b, const double *x, size_t n, size_t d, int use_double);

/* gmm_backend_cuda_open with the data type chosen by dtype: FLOAT32 and FLOAT64 as use_double 0 and 1;
 * AUTO float32 unless float32 cannot resolve the data (then float64 from the start) or, later, a model
 * handed to stats or predict lies too far from the data (then the data are uploaded again as float64 and stay
 * so; b->precision_note says why). The criterion is at the top of backend_cuda.c and in README.md ("GPU");
 * min_sd is the smallest standard deviation a model on these data may have (gmm_fit passes sqrt(reg_covar):
 * finer structure need not be resolved), 0 for none. The description (gmm_backend_cuda_describe) says which
 * type AUTO chose and why. */
gmm_status gmm_backend_cuda_open_dtype(gmm_backend *b, const double *x, size_t n, size_t d, gmm_gpu_dtype dtype,
                                       double min_sd);
/* gmm_backend_cuda_open_dtype on data of either element type: float data are widened to double as they are
 * read (column means, AUTO's criterion and the centering all in double), so the device copy and every result
 * equal those from the data's double copy bit for bit. */
gmm_status gmm_backend_cuda_open_data(gmm_backend *b, gmm_data x, size_t n, size_t d, gmm_gpu_dtype dtype,
                                      double min_sd);

/* The most features and components the CUDA kernels take (GMM_CUDA_MAX_D, GMM_CUDA_MAX_K of gmm_cuda.h), for
 * callers that do not include it. Above 16 features the tile kernel's shared memory bounds k further:
 * gmm_backend_cuda_check_k says whether a k fits. */
#define GMM_BACKEND_CUDA_MAX_D 32
#define GMM_BACKEND_CUDA_MAX_K 64

/* Plans the kernels of the open CUDA backend b for models of k components: GMM_OK when they run on this
 * device, else GMM_ERR_INVALID_ARG with the reason (k above GMM_BACKEND_CUDA_MAX_K, or more shared memory
 * than a block may have). Models of fewer components then fit too. GMM_ERR_NO_DEVICE for a build without
 * CUDA. */
gmm_status gmm_backend_cuda_check_k(gmm_backend *b, size_t k);

/* Number of CUDA devices this build can run on (0 when there is none, no driver, or the build has no
 * CUDA); the first one's name goes into name (len bytes, may be NULL; "" when there is none). Does not
 * change the thread's current device. */
int gmm_cuda_available(char *name, size_t len);

/* The cudaStream_t (as void *) on which an open CUDA backend enqueues its work, for timing with CUDA
 * events; NULL for any other backend or without CUDA. */
void *gmm_backend_cuda_stream(const gmm_backend *b);

/* One line describing an open CUDA backend ("NVIDIA H100 80GB HBM3 (device 0, sm_90), float32"), plus
 * the launch shape once a stats pass has planned one; "" for any other backend. Returns buf. */
const char *gmm_backend_cuda_describe(const gmm_backend *b, char *buf, size_t len);

#endif /* GMM_BACKEND_CUDA_H */
