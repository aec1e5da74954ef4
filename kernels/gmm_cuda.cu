/*
 * gmm_cuda.cu — the host-side launchers of the CUDA kernels (device code in gmm_cuda_kernels.cuh), behind
 * the C interface of gmm_cuda.h: launch plans (kernel choice, block and grid sizes fixed per device and
 * problem shape), the stats pass (stats kernel + fixed-order reduction + copy of the reduced statistics to
 * the host) and the predict pass. Every launch is followed by cudaGetLastError; the first error is returned
 * to the caller (src/backend_cuda.c), which turns it into a gmm status with the call's text.
 *
 * Template instances: the tile and predict kernels for D in {1, 2, 3, 4, 6, 8, 12, 16}, for float and double;
 * the register kernel for (D, K) in {(1, 1..8), (2, 1..4), (3, 1..2), (4, 1)} for float and in
 * {(1, 1..4), (2, 1..2), (3, 1), (4, 1)} for double (K exactly the number of components); the tile body
 * once for the E-step (stats_tile_kernel) and once for the initializations and the E-step's shifted pass
 * (stats_tile_init_kernel).
 */
#include "gmm_cuda.h"

#ifndef GMM_CUDA_EMULATE
#include <cuda_runtime.h>
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmm_cuda_kernels.cuh"

#ifdef GMM_CUDA_EMULATE
/* kernels/emu: runs the same kernels on host threads to check the code without a GPU */
#define GMM_LAUNCH(fn, grid, block, smem, stream, ...) gmm_emu_launch(fn, grid, block, smem, stream, __VA_ARGS__)
#else
#define GMM_LAUNCH(fn, grid, block, smem, stream, ...) fn<<<grid, block, smem, stream>>>(__VA_ARGS__)
#endif

using namespace gmmk;

namespace {

/* Writes a formatted message into msg (len bytes) when msg is not NULL. */
void say(char *msg, size_t len, const char *fmt, ...)
{
    if (!msg || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
}

/* A compile-time (type, padded dimension) or (type, dimension, component bound) for the dispatchers. */
template <typename T, int D> struct TD {
    using type = T;
    static constexpr int dim = D;
};
template <typename T, int D, int K> struct TDK {
    using type = T;
    static constexpr int dim = D;
    static constexpr int k = K;
};

/* Calls f(TD<T, D>{}) for the runtime D (one of the compiled dimensions); cudaErrorInvalidValue otherwise. */
template <typename T, typename F> cudaError_t with_dim(int D, F &&f)
{
    switch (D) {
    case 1: return f(TD<T, 1>{});
    case 2: return f(TD<T, 2>{});
    case 3: return f(TD<T, 3>{});
    case 4: return f(TD<T, 4>{});
    case 6: return f(TD<T, 6>{});
    case 8: return f(TD<T, 8>{});
    case 12: return f(TD<T, 12>{});
    case 16: return f(TD<T, 16>{});
    case 24: return f(TD<T, 24>{});
    case 32: return f(TD<T, 32>{});
    default: return cudaErrorInvalidValue;
    }
}
template <typename F> cudaError_t with_type_dim(int use_double, int D, F &&f)
{
    return use_double ? with_dim<double>(D, f) : with_dim<float>(D, f);
}

/* The register path holds K * E run sums per thread in T (their double sums are in shared memory): kept to
 * at most 24 (float) or 15 (double) statistics per thread so that nothing spills within the registers that
 * reg_min_blocks allows (see nvcc --resource-usage). */
__host__ __device__ constexpr int reg_max_sums(bool dbl) { return dbl ? 15 : 24; }
template <typename T, int D, int K> constexpr bool reg_fits()
{
    constexpr bool dbl = sizeof(T) == sizeof(double);
    return K * n_entries(D) <= reg_max_sums(dbl) && (!dbl || K <= 4);
}

/* Calls f(TDK<T, D, K>{}) for a register-path instance; cudaErrorInvalidValue for any other pair (those are
 * never instantiated). */
template <typename T, int D, int K, typename F> cudaError_t reg_call(F &&f)
{
    if constexpr (reg_fits<T, D, K>())
        return f(TDK<T, D, K>{});
    else
        return cudaErrorInvalidValue;
}
template <typename T, typename F> cudaError_t with_reg(int D, int k, F &&f)
{
    switch (D * 100 + k) {
    case 101: return reg_call<T, 1, 1>(f);
    case 102: return reg_call<T, 1, 2>(f);
    case 103: return reg_call<T, 1, 3>(f);
    case 104: return reg_call<T, 1, 4>(f);
    case 105: return reg_call<T, 1, 5>(f);
    case 106: return reg_call<T, 1, 6>(f);
    case 107: return reg_call<T, 1, 7>(f);
    case 108: return reg_call<T, 1, 8>(f);
    case 201: return reg_call<T, 2, 1>(f);
    case 202: return reg_call<T, 2, 2>(f);
    case 203: return reg_call<T, 2, 3>(f);
    case 204: return reg_call<T, 2, 4>(f);
    case 301: return reg_call<T, 3, 1>(f);
    case 302: return reg_call<T, 3, 2>(f);
    case 401: return reg_call<T, 4, 1>(f);
    default: return cudaErrorInvalidValue;
    }
}
template <typename F> cudaError_t with_type_reg(int use_double, int D, int k, F &&f)
{
    return use_double ? with_reg<double>(D, k, f) : with_reg<float>(D, k, f);
}

/* Whether the register path handles (D, k): its k * E sums must fit reg_max_sums, D <= 4, and for double
 * k <= 4 (at (1, 5) the double sums spill). Must agree with reg_fits. */
bool reg_path_fits(int D, int k, int use_double)
{
    return D >= 1 && D <= 4 && k >= 1 && k * n_entries(D) <= reg_max_sums(use_double != 0) && (!use_double || k <= 4);
}

/* Raises fn's dynamic shared memory limit to all the device allows next to its static shared memory, and
 * returns that limit in *max_dyn. */
cudaError_t allow_smem(const void *fn, int optin, size_t *max_dyn)
{
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(&fa, fn);
    if (e != cudaSuccess) return e;
    const size_t lim = (size_t)optin > fa.sharedSizeBytes ? (size_t)optin - fa.sharedSizeBytes : 0;
    e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)lim);
    *max_dyn = lim;
    return e;
}

long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

} // namespace

/* ---------------------------------------------------------------------------------------- layouts */

extern "C" size_t gmm_cuda_padded_dim(size_t d)
{
    if (d == 0 || d > GMM_CUDA_MAX_D) return 0;
    if (d <= 4) return d;
    if (d <= 6) return 6;
    if (d <= 8) return 8;
    if (d <= 12) return 12;
    if (d <= 16) return 16;
    if (d <= 24) return 24;
    return 32;
}

extern "C" size_t gmm_cuda_param_stride(size_t D, int use_double)
{
    return (size_t)param_stride((int)D, use_double ? Vec16<double>::n : Vec16<float>::n);
}
extern "C" size_t gmm_cuda_param_mean(size_t i) { return i; }
extern "C" size_t gmm_cuda_param_u(size_t D, size_t i, size_t j) { return (size_t)param_u((int)D, (int)i, (int)j); }
extern "C" size_t gmm_cuda_param_base(size_t D) { return (size_t)param_base((int)D); }
extern "C" size_t gmm_cuda_entries(size_t D) { return (size_t)n_entries((int)D); }
extern "C" size_t gmm_cuda_stat_t(size_t D, size_t i, size_t j) { return (size_t)stat_t((int)D, (int)i, (int)j); }

/* The most statistics groups of the tile kernel's phase 2 that one warp of a block of bt threads spans
 * (threads t * tpg .. t * tpg + tpg - 1 hold group t, tpg = bt / R; threads past R * tpg idle). */
static int tile_warp_spread(int R, int bt)
{
    const int tpg = bt / R;
    int most = 1;
    for (int w = 0; w < bt / 32; w++) {
        int first = 32 * w / tpg, last = (32 * w + 31) / tpg;
        if (last > R - 1) last = R - 1;
        if (last - first + 1 > most) most = last - first + 1;
    }
    return most;
}

/* ------------------------------------------------------------------------------------------ plans */

namespace {

/* The limits of the device a plan is made for. */
struct DeviceLimits {
    int n_sm;  /* multiprocessors */
    int optin; /* the most shared memory a block may opt in to, bytes */
};

/* Blocks of a grid-stride launch over n items with `per_block` items per block round: enough to cover n
 * once, at most cap, at least 1. */
int grid_blocks(long long n, int per_block, long long cap)
{
    const long long want = ceil_div(n, per_block);
    return (int)(want < 1 ? 1 : (want < cap ? want : cap));
}

/* The end of every planning phase that asks for a kernel's occupancy: cudaSuccess when e is and the kernel
 * has at least one resident block (occ); else the error, with msg saying which kernel (unless a more precise
 * message is already there). */
cudaError_t occupancy_verdict(cudaError_t e, int occ, const char *kernel, int d, int k, char *msg, size_t len)
{
    if (e == cudaSuccess && occ < 1) {
        if (msg && !msg[0]) say(msg, len, "the %s kernel (d = %d, k = %d) cannot run on this device", kernel, d, k);
        return cudaErrorInvalidConfiguration;
    }
    if (e != cudaSuccess && msg && !msg[0])
        say(msg, len, "setting up the %s kernel: %s", kernel, cudaGetErrorString(e));
    return e;
}

/* Phase 1: the shape and the lengths of the parameter and statistics vectors. */
void plan_shape(gmm_cuda_plan *p, long long n, int d, int k, int use_double)
{
    p->n = n;
    p->d = d;
    p->D = (int)gmm_cuda_padded_dim((size_t)d);
    p->k = k;
    p->use_double = use_double ? 1 : 0;
    p->elem_size = use_double ? sizeof(double) : sizeof(float);
    p->stats_len = (size_t)k * gmm_cuda_entries((size_t)p->D) + 1;
    p->params_len = (size_t)k * gmm_cuda_param_stride((size_t)p->D, p->use_double);
    p->shift_len = (size_t)k * (size_t)p->D;
    p->reduce_blocks = (int)ceil_div((long long)p->stats_len, kReduceCols);
}

/* Phase 2: the tile stats kernel's shape, planned whatever the path (the initializations' resp_stats and
 * the shifted E-step pass run on it). The block size with the most threads resident per multiprocessor (the
 * shared memory per block shrinks with it: its statistics slots, responsibilities and tile scale with the
 * threads) divided by the statistics groups a warp of phase 2 spans (each is a branch of its own), the
 * larger block on ties. GMM_CUDA_TILE_THREADS (64, 128 or 256) forces one, for benchmarking. */
cudaError_t plan_tile(gmm_cuda_plan *p, const DeviceLimits &lim, char *msg, size_t len)
{
    const int d = p->d, k = p->k;
    int occ = 0;
    cudaError_t e = with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        using S = TileShape<T, Tg::dim>;
        const void *fn = (const void *)stats_tile_kernel<T, Tg::dim>;
        size_t max_dyn = 0, max_dyn_init = 0;
        cudaError_t e2 = allow_smem(fn, lim.optin, &max_dyn);
        if (e2 == cudaSuccess)
            e2 = allow_smem((const void *)stats_tile_init_kernel<T, Tg::dim>, lim.optin, &max_dyn_init);
        if (e2 != cudaSuccess) return e2;
        if (max_dyn_init < max_dyn) max_dyn = max_dyn_init; /* both instances run with the same shape */
        /* The block size with the most threads resident per multiprocessor (the shared memory per block
         * shrinks with it: its statistics slots, responsibilities and tile scale with the threads) divided
         * by the statistics groups a warp of phase 2 spans (each is a branch of its own; bench/RESULTS.md,
         * "Tile kernel's block size", compares the sizes on an H100), the larger block on ties.
         * GMM_CUDA_TILE_THREADS (64, 128 or 256) forces one, for benchmarking. */
        const char *force_env = getenv("GMM_CUDA_TILE_THREADS");
        const int force = force_env ? atoi(force_env) : 0;
        long long best_resident = 0, best_spread = 1;
        for (int bt = kMaxThreads; bt >= 64; bt /= 2) {
            if (force && bt != force) continue;
            const TileGeom g = tile_geom(Tg::dim, S::R, S::EI, S::P, (int)sizeof(T), bt, k);
            if (g.bytes > max_dyn) continue;
            int o = 0;
            e2 = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o, fn, bt, g.bytes);
            if (e2 != cudaSuccess) return e2;
            const int spread = tile_warp_spread(S::R, bt);
            if ((long long)o * bt * best_spread > best_resident * spread) {
                best_resident = (long long)o * bt;
                best_spread = spread;
                p->tile_threads = bt;
                p->tile_smem = g.bytes;
                occ = o;
            }
        }
        if (!p->tile_threads) {
            if (force)
                say(msg, len,
                    "GMM_CUDA_TILE_THREADS=%s: the tile stats kernel for d = %d, k = %d cannot run with "
                    "that block size (64, 128 or 256 threads, within %zu bytes of shared memory)",
                    force_env, d, k, max_dyn);
            else
                say(msg, len,
                    "the tile stats kernel for d = %d, k = %d needs more shared memory than the %zu "
                    "bytes a block may have on this device",
                    d, k, max_dyn);
            return cudaErrorInvalidValue;
        }
        return cudaSuccess;
    });
    if (e == cudaSuccess && occ < 1)
        say(msg, len,
            "the tile stats kernel (d = %d, k = %d, %d threads, %zu bytes of shared memory) cannot run on "
            "this device",
            d, k, p->tile_threads, p->tile_smem);
    e = occupancy_verdict(e, occ, "tile stats", d, k, msg, len);
    if (e == cudaSuccess) p->tile_blocks = grid_blocks(p->n, p->tile_threads, (long long)lim.n_sm * occ);
    return e;
}

/* Phase 3: the E-step's stats kernel: the register path where it fits (D <= 4 and few statistics), else
 * the tile kernel's shape. */
cudaError_t plan_stats_path(gmm_cuda_plan *p, const DeviceLimits &lim, char *msg, size_t len)
{
    if (!reg_path_fits(p->D, p->k, p->use_double)) {
        p->path = GMM_CUDA_PATH_TILE;
        p->threads = p->tile_threads;
        p->smem = p->tile_smem;
        p->blocks = p->tile_blocks;
        return cudaSuccess;
    }
    p->path = GMM_CUDA_PATH_REG;
    p->threads = kRegThreads;
    p->smem = 0;
    int occ = 0;
    cudaError_t e = with_type_reg(p->use_double, p->D, p->k, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        const void *fn = (const void *)stats_reg_kernel<T, Tg::dim, Tg::k>;
        return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fn, kRegThreads, 0);
    });
    e = occupancy_verdict(e, occ, "register stats", p->d, p->k, msg, len);
    if (e == cudaSuccess) p->blocks = grid_blocks(p->n, p->threads, (long long)lim.n_sm * occ);
    return e;
}

/* Phase 4: the initializations' flat kernels. The assign kernel (the k parameter blocks in shared memory)
 * must fit; their grid is independent of k (and of the assign kernel's occupancy), so that the k-means++
 * potentials, summed in this many blocks, are the same bits whichever k the backend planned for last. */
cudaError_t plan_flat(gmm_cuda_plan *p, const DeviceLimits &lim, char *msg, size_t len)
{
    const int d = p->d, k = p->k;
    int occ = 0;
    cudaError_t e = with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        constexpr int P = TileShape<T, Tg::dim>::P;
        const void *fn = (const void *)assign_kernel<T, Tg::dim>;
        size_t max_dyn = 0;
        cudaError_t e2 = allow_smem(fn, lim.optin, &max_dyn);
        if (e2 != cudaSuccess) return e2;
        p->assign_smem = predict_rs_offset(k, P, (int)sizeof(T));
        if (p->assign_smem > max_dyn) {
            say(msg, len,
                "the assign kernel for d = %d, k = %d needs more shared memory than the %zu bytes a block "
                "may have on this device",
                d, k, max_dyn);
            return cudaErrorInvalidValue;
        }
        return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fn, kFlatThreads, p->assign_smem);
    });
    e = occupancy_verdict(e, occ, "assign", d, k, msg, len);
    if (e == cudaSuccess) p->flat_blocks = grid_blocks(p->n, kFlatThreads, (long long)lim.n_sm * kFlatBlocksPerSM);
    return e;
}

/* Phase 5: the doubles a partials buffer needs for every kernel of the plan. */
void plan_partials(gmm_cuda_plan *p)
{
    size_t need = (size_t)p->blocks * p->stats_len;
    if ((size_t)p->tile_blocks * p->stats_len > need) need = (size_t)p->tile_blocks * p->stats_len;
    if (2 * (size_t)p->flat_blocks > need) need = 2 * (size_t)p->flat_blocks;
    p->partials_len = need;
}

/* Phase 6: the predict kernel: the largest block (256 down to 64 threads) whose parameters and scratch fit
 * the shared memory, and the grid that keeps the device full. */
cudaError_t plan_predict(gmm_cuda_plan *p, const DeviceLimits &lim, char *msg, size_t len)
{
    const int d = p->d, k = p->k;
    int occ = 0;
    cudaError_t e = with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        constexpr int P = TileShape<T, Tg::dim>::P;
        const void *fn = (const void *)predict_kernel<T, Tg::dim>;
        size_t max_dyn = 0;
        cudaError_t e2 = allow_smem(fn, lim.optin, &max_dyn);
        if (e2 != cudaSuccess) return e2;
        for (int bt = kMaxThreads; bt >= 64; bt /= 2)
            if (predict_smem(k, P, (int)sizeof(T), bt) <= max_dyn) {
                p->predict_threads = bt;
                p->predict_smem = predict_smem(k, P, (int)sizeof(T), bt);
                break;
            }
        if (!p->predict_threads) {
            say(msg, len,
                "the predict kernel for d = %d, k = %d needs more shared memory than the %zu bytes a block "
                "may have on this device",
                d, k, max_dyn);
            return cudaErrorInvalidValue;
        }
        return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fn, p->predict_threads, p->predict_smem);
    });
    e = occupancy_verdict(e, occ, "predict", d, k, msg, len);
    if (e == cudaSuccess) p->predict_max_blocks = lim.n_sm * occ;
    return e;
}

} // namespace

extern "C" cudaError_t gmm_cuda_plan_make(gmm_cuda_plan *p, int device, long long n, int d, int k, int use_double,
                                          char *msg, size_t len)
{
    memset(p, 0, sizeof *p);
    if (msg && len) msg[0] = '\0';
    if (d < 1 || d > GMM_CUDA_MAX_D || k < 1 || k > GMM_CUDA_MAX_K || n < 0) {
        say(msg, len, "the CUDA kernels handle 1..%d features and 1..%d components (got d = %d, k = %d, n = %lld)",
            GMM_CUDA_MAX_D, GMM_CUDA_MAX_K, d, k, n);
        return cudaErrorInvalidValue;
    }
    DeviceLimits lim = {0, 0};
    cudaError_t e = cudaDeviceGetAttribute(&lim.n_sm, cudaDevAttrMultiProcessorCount, device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&lim.optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (e != cudaSuccess) {
        say(msg, len, "cudaDeviceGetAttribute(device %d): %s", device, cudaGetErrorString(e));
        return e;
    }
    plan_shape(p, n, d, k, use_double);
    e = plan_tile(p, lim, msg, len);
    if (e == cudaSuccess) e = plan_stats_path(p, lim, msg, len);
    if (e == cudaSuccess) e = plan_flat(p, lim, msg, len);
    if (e == cudaSuccess) e = plan_predict(p, lim, msg, len);
    if (e == cudaSuccess) plan_partials(p);
    return e;
}

extern "C" cudaError_t gmm_cuda_probe(void)
{
    cudaFuncAttributes fa;
    return cudaFuncGetAttributes(&fa, (const void *)reduce_partials_kernel);
}

/* ------------------------------------------------------------------------------------------ passes */

extern "C" cudaError_t gmm_cuda_stats(const gmm_cuda_plan *p, const void *x_dev, const void *params_host,
                                      void *params_dev, double *partials_dev, double *stats_dev, double *stats_host,
                                      cudaStream_t s)
{
    if (p->n < 1) return cudaErrorInvalidValue;
    cudaError_t e;
    if (p->path == GMM_CUDA_PATH_REG) {
        e = with_type_reg(p->use_double, p->D, p->k, [&](auto tag) -> cudaError_t {
            using Tg = decltype(tag);
            using T = typename Tg::type;
            RegParams<T, Tg::dim, Tg::k> prm;
            static_assert(sizeof prm.v == sizeof(T) * Tg::k * TileShape<T, Tg::dim>::P, "one block per component");
            memcpy(prm.v, params_host, sizeof prm.v);
            auto fn = stats_reg_kernel<T, Tg::dim, Tg::k>;
            GMM_LAUNCH(fn, p->blocks, kRegThreads, 0, s, static_cast<const T *>(x_dev), p->n, prm, (int)p->stats_len,
                       partials_dev);
            return cudaGetLastError();
        });
    } else {
        e = cudaMemcpyAsync(params_dev, params_host, p->params_len * p->elem_size, cudaMemcpyHostToDevice, s);
        if (e != cudaSuccess) return e;
        e = with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
            using Tg = decltype(tag);
            using T = typename Tg::type;
            auto fn = stats_tile_kernel<T, Tg::dim>;
            GMM_LAUNCH(fn, p->blocks, p->threads, p->smem, s, static_cast<const T *>(x_dev), p->n, p->d, p->k,
                       static_cast<const T *>(params_dev), (int)p->stats_len, partials_dev);
            return cudaGetLastError();
        });
    }
    if (e != cudaSuccess) return e;
    GMM_LAUNCH(reduce_partials_kernel, p->reduce_blocks, kReduceCols * kReduceRows, 0, s,
               static_cast<const double *>(partials_dev), p->blocks, (int)p->stats_len, stats_dev);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    return cudaMemcpyAsync(stats_host, stats_dev, p->stats_len * sizeof(double), cudaMemcpyDeviceToHost, s);
}

extern "C" cudaError_t gmm_cuda_predict(const gmm_cuda_plan *p, const void *x_dev, long long n,
                                        const void *params_dev, double *logp_dev, int *labels_dev, double *resp_dev,
                                        cudaStream_t s)
{
    if (n < 1) return cudaErrorInvalidValue;
    const long long want = ceil_div(n, p->predict_threads);
    const int blocks = (int)(want < p->predict_max_blocks ? want : p->predict_max_blocks);
    return with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        auto fn = predict_kernel<T, Tg::dim>;
        GMM_LAUNCH(fn, blocks, p->predict_threads, p->predict_smem, s, static_cast<const T *>(x_dev), n, p->d, p->k,
                   static_cast<const T *>(params_dev), logp_dev, labels_dev, resp_dev);
        return cudaGetLastError();
    });
}

/* ---------------------------------------------------------------------------- initialization passes */

namespace {

/* Sums the first `len` doubles of nblocks partials in fixed order into out_dev and copies them to out_host. */
cudaError_t reduce_and_fetch(const double *partials_dev, int nblocks, int len, double *out_dev, double *out_host,
                             cudaStream_t s)
{
    GMM_LAUNCH(reduce_partials_kernel, (int)ceil_div(len, kReduceCols), kReduceCols * kReduceRows, 0, s, partials_dev,
               nblocks, len, out_dev);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    return cudaMemcpyAsync(out_host, out_dev, (size_t)len * sizeof(double), cudaMemcpyDeviceToHost, s);
}

} // namespace

extern "C" cudaError_t gmm_cuda_pp_potential(const gmm_cuda_plan *p, const void *x_dev, const void *cand_host,
                                             void *dist_dev, int reset, int update, double *partials_dev,
                                             double *out_dev, double *out_host, cudaStream_t s)
{
    if (p->n < 1) return cudaErrorInvalidValue;
    cudaError_t e = with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        PointArg<T, Tg::dim> cand;
        memcpy(cand.v, cand_host, sizeof cand.v);
        auto fn = pp_potential_kernel<T, Tg::dim>;
        GMM_LAUNCH(fn, p->flat_blocks, kFlatThreads, 0, s, static_cast<const T *>(x_dev), p->n, p->d, cand,
                   static_cast<T *>(dist_dev), reset, update, partials_dev);
        return cudaGetLastError();
    });
    if (e != cudaSuccess) return e;
    return reduce_and_fetch(partials_dev, p->flat_blocks, 1, out_dev, out_host, s);
}

extern "C" cudaError_t gmm_cuda_chunk_sums(const gmm_cuda_plan *p, const void *dist_dev, double *sums_dev,
                                           double *sums_host, cudaStream_t s)
{
    if (p->n < 1) return cudaErrorInvalidValue;
    const long long nch = ceil_div(p->n, kDrawChunk);
    if (p->use_double)
        GMM_LAUNCH(chunk_sums_kernel<double>, (int)nch, kFlatThreads, 0, s, static_cast<const double *>(dist_dev),
                   p->n, sums_dev);
    else
        GMM_LAUNCH(chunk_sums_kernel<float>, (int)nch, kFlatThreads, 0, s, static_cast<const float *>(dist_dev), p->n,
                   sums_dev);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    return cudaMemcpyAsync(sums_host, sums_dev, (size_t)nch * sizeof(double), cudaMemcpyDeviceToHost, s);
}

extern "C" cudaError_t gmm_cuda_assign(const gmm_cuda_plan *p, const void *x_dev, const void *params_host,
                                       void *params_dev, int reset, int *labels_dev, void *dist_dev,
                                       double *partials_dev, double *out_dev, double *out_host, cudaStream_t s)
{
    if (p->n < 1) return cudaErrorInvalidValue;
    cudaError_t e = cudaMemcpyAsync(params_dev, params_host, p->params_len * p->elem_size, cudaMemcpyHostToDevice, s);
    if (e != cudaSuccess) return e;
    e = with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        auto fn = assign_kernel<T, Tg::dim>;
        GMM_LAUNCH(fn, p->flat_blocks, kFlatThreads, p->assign_smem, s, static_cast<const T *>(x_dev), p->n, p->d,
                   p->k, static_cast<const T *>(params_dev), reset, labels_dev, static_cast<T *>(dist_dev),
                   partials_dev);
        return cudaGetLastError();
    });
    if (e != cudaSuccess) return e;
    return reduce_and_fetch(partials_dev, p->flat_blocks, 1, out_dev, out_host, s);
}

extern "C" cudaError_t gmm_cuda_farthest(const gmm_cuda_plan *p, const void *dist_dev, double *partials_dev,
                                         double *pairs_host, cudaStream_t s)
{
    if (p->n < 1) return cudaErrorInvalidValue;
    if (p->use_double)
        GMM_LAUNCH(farthest_kernel<double>, p->flat_blocks, kFlatThreads, 0, s, static_cast<const double *>(dist_dev),
                   p->n, partials_dev);
    else
        GMM_LAUNCH(farthest_kernel<float>, p->flat_blocks, kFlatThreads, 0, s, static_cast<const float *>(dist_dev),
                   p->n, partials_dev);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    return cudaMemcpyAsync(pairs_host, partials_dev, 2 * (size_t)p->flat_blocks * sizeof(double),
                           cudaMemcpyDeviceToHost, s);
}

extern "C" cudaError_t gmm_cuda_resp_stats(const gmm_cuda_plan *p, const void *x_dev, int mode, const int *labels_dev,
                                           unsigned long long seed, int first_moments, const void *params_host,
                                           void *params_dev, double *partials_dev, double *stats_dev,
                                           double *stats_host, cudaStream_t s)
{
    if (p->n < 1 || (mode != GMM_CUDA_RESP_LABELS && mode != GMM_CUDA_RESP_RANDOM)) return cudaErrorInvalidValue;
    cudaError_t e = cudaMemcpyAsync(params_dev, params_host, p->params_len * p->elem_size, cudaMemcpyHostToDevice, s);
    if (e != cudaSuccess) return e;
    e = with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        auto fn = stats_tile_init_kernel<T, Tg::dim>;
        const int groups = first_moments ? 1 : TileShape<T, Tg::dim>::R;
        GMM_LAUNCH(fn, p->tile_blocks, p->tile_threads, p->tile_smem, s, static_cast<const T *>(x_dev), p->n, p->d,
                   p->k, static_cast<const T *>(params_dev), (int)p->stats_len, partials_dev,
                   mode == GMM_CUDA_RESP_LABELS ? kRespLabels : kRespRandom, labels_dev, seed, groups,
                   static_cast<const T *>(nullptr));
        return cudaGetLastError();
    });
    if (e != cudaSuccess) return e;
    return reduce_and_fetch(partials_dev, p->tile_blocks, (int)p->stats_len, stats_dev, stats_host, s);
}

extern "C" cudaError_t gmm_cuda_stats_shifted(const gmm_cuda_plan *p, const void *x_dev, const void *params_host,
                                              void *params_dev, double *partials_dev, double *stats_dev,
                                              double *stats_host, cudaStream_t s)
{
    if (p->n < 1) return cudaErrorInvalidValue;
    cudaError_t e = cudaMemcpyAsync(params_dev, params_host, (p->params_len + p->shift_len) * p->elem_size,
                                    cudaMemcpyHostToDevice, s);
    if (e != cudaSuccess) return e;
    e = with_type_dim(p->use_double, p->D, [&](auto tag) -> cudaError_t {
        using Tg = decltype(tag);
        using T = typename Tg::type;
        auto fn = stats_tile_init_kernel<T, Tg::dim>;
        const T *par = static_cast<const T *>(params_dev);
        GMM_LAUNCH(fn, p->tile_blocks, p->tile_threads, p->tile_smem, s, static_cast<const T *>(x_dev), p->n, p->d,
                   p->k, par, (int)p->stats_len, partials_dev, kRespEM, static_cast<const int *>(nullptr), 0ULL,
                   TileShape<T, Tg::dim>::R, par + p->params_len);
        return cudaGetLastError();
    });
    if (e != cudaSuccess) return e;
    return reduce_and_fetch(partials_dev, p->tile_blocks, (int)p->stats_len, stats_dev, stats_host, s);
}
