/*
 * gmm_cuda_kernels.cuh — the device code of the CUDA backend: the fused E-step + sufficient-statistics
 * kernels (a register path for small d * k, a shared-memory tile path for the rest), the fixed-order
 * reduction of their per-block partials, and the predict kernel. Included by gmm_cuda.cu only; the C
 * interface and the memory layouts are documented in gmm_cuda.h.
 *
 * Numerics (docs/DESIGN.md): per point, in the data type T (float32, or float64),
 *   l_c = log2(w_c N(x | c)) = base_c - |(x - mu_c) U'_c|^2     (U' = U sqrt(1/(2 ln 2)): log2 units)
 *   m = max_c l_c,  s = sum_c 2^(l_c - m),  log2 p(x) = m + log2 s,  r_c = 2^(l_c - m) / s,
 * and the statistics N_c = sum r, S_c = sum r (x - mu_c), T_c = sum r (x - mu_c)(x - mu_c)^T (upper
 * triangle) around the current means. float32 uses the hardware 2^x (relative error < 2^-22) and a fast
 * reciprocal for 1/s (2 ulp), and the accurate log2f. Accumulation: every sum over points is a per-thread sum in T over
 * at most kRun points (float32: relative error below kRun * 2^-24 ~ 4e-6 in the worst case, ~1e-7
 * typically), flushed into double; everything above that level (per thread, per block, across blocks) is
 * double, and log2 p(x) goes into a double accumulator point by point. No floating-point atomics: every sum
 * has a fixed order for a given launch shape, so results are bit-identical run to run. Sums around means
 * far from their points would cancel in the M-step's T/N - (S/N)^2; the host then runs the pass again with
 * the sums around the new means (stats_tile_body's shift).
 */
#ifndef GMM_CUDA_KERNELS_CUH
#define GMM_CUDA_KERNELS_CUH

#include <math.h>
#include <stddef.h>
#include <utility>

#include "gmm_hash.h"

/* Declares the kernel's dynamic shared memory, and a static shared array `type name dims` (the CPU emulation
 * in kernels/emu/ replaces both: it fills them with NaN bytes before every block). */
#ifndef GMM_DYNAMIC_SHARED
#define GMM_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif
#ifndef GMM_STATIC_SHARED
#define GMM_STATIC_SHARED(type, name, dims) __shared__ type name dims
#endif

namespace gmmk {

constexpr int kRun = 64;         /* points summed in T before a flush into double */
constexpr int kRegThreads = 128; /* threads per block of the register path, and the blocks per multiprocessor */
/* its registers must allow: 5 for float (96 registers; bench/RESULTS.md, version 2), 4 for double (128:
 * with 96 the double instances spill) */
template <typename T> constexpr int reg_min_blocks() { return sizeof(T) == 4 ? 5 : 4; }
constexpr int kRegBatch = 4;        /* points a register-path thread loads before computing (bytes in flight) */
constexpr int kMaxThreads = 256;    /* largest block of any kernel here */
constexpr int kReduceCols = 32;     /* reduction: statistics per block, */
constexpr int kReduceRows = 8;      /* and threads summing one statistic (kReduceCols * kReduceRows threads) */
constexpr int kFlatThreads = 256;   /* threads per block of the initialization kernels, */
constexpr int kFlatBlocksPerSM = 4; /* and their blocks per multiprocessor (at most) */
constexpr int kDrawChunk = 4096;    /* points per chunk sum of the k-means++ draw (GMM_CUDA_DRAW_CHUNK) */

/* Where the tile kernel's responsibilities come from (GMM_CUDA_RESP_*). */
constexpr int kRespEM = 0;     /* the E-step with the parameters */
constexpr int kRespLabels = 1; /* one-hot on labels[i] */
constexpr int kRespRandom = 2; /* gmm_hash_uniform(seed, i, c), normalized per point */

/* ------------------------------------------------------------------------------------------- layouts */

__host__ __device__ constexpr int tri(int D) { return D * (D + 1) / 2; }
/* doubles of one component's statistics: N, S (D), T upper (tri(D)) */
__host__ __device__ constexpr int n_entries(int D) { return 1 + D + tri(D); }
/* elements of one component's parameters, rounded up to whole 16-byte vectors of vec elements */
__host__ __device__ constexpr int param_stride(int D, int vec) { return (D + tri(D) + 1 + vec - 1) / vec * vec; }
/* offset of U'_ij (i <= j) in a parameter block: after the mean, packed by columns */
__host__ __device__ constexpr int param_u(int D, int i, int j) { return D + j * (j + 1) / 2 + i; }
__host__ __device__ constexpr int param_base(int D) { return D + tri(D); }
/* offset of T_ij (i <= j) in a component's statistics: after N and S, upper triangle packed by rows */
__host__ __device__ constexpr int stat_t(int D, int i, int j) { return 1 + D + i * (2 * D - i + 1) / 2 + (j - i); }
/* row and column of the t-th element of a row-packed upper triangle */
__host__ __device__ constexpr int upper_row(int D, int t)
{
    int i = 0;
    while (t >= D - i) {
        t -= D - i;
        i++;
    }
    return i;
}
__host__ __device__ constexpr int upper_col(int D, int t)
{
    int i = 0;
    while (t >= D - i) {
        t -= D - i;
        i++;
    }
    return i + t;
}

/* 16-byte vector of T, for parameter copies. */
template <typename T> struct Vec16;
template <> struct Vec16<float> {
    using type = float4;
    static constexpr int n = 4;
};
template <> struct Vec16<double> {
    using type = double2;
    static constexpr int n = 2;
};

/* Tile path: the statistics of a component are split into R contiguous groups of EI entries; a thread
 * accumulates one group of one component (an "item") at a time, holding its EI sums in registers. */
template <typename T, int D> struct TileShape {
    static constexpr int E = n_entries(D);
    static constexpr int R = D <= 8 ? 1 : (D <= 12 ? 2 : (D <= 16 ? 4 : (D <= 24 ? 8 : 14)));
    static constexpr int EI = (E + R - 1) / R;
    static constexpr int P = param_stride(D, Vec16<T>::n);
};

/* Shared-memory carve-up of the tile kernel for block size bt and k components (host and device agree by
 * calling this one function). Threads are split into R groups of tpg; within a group, `lanes` threads
 * share a component (each takes every lanes-th point of a tile) and own one double slot of EI sums. */
struct TileGeom {
    int tpg, lanes, slots, rs_stride;
    size_t off_par, off_rs, off_xs, bytes;
};
__host__ __device__ inline size_t align16(size_t v) { return (v + 15) / 16 * 16; }
__host__ __device__ inline TileGeom tile_geom(int D, int R, int EI, int P, int elem, int bt, int k)
{
    TileGeom g;
    g.tpg = bt / R;
    g.lanes = k <= g.tpg ? g.tpg / k : 1;
    g.slots = R * k * g.lanes;
    g.rs_stride = bt + g.lanes; /* lanes of the consecutive components in a warp hit distinct banks */
    g.off_par = align16((size_t)g.slots * (size_t)EI * sizeof(double));
    g.off_rs = align16(g.off_par + (size_t)k * (size_t)P * (size_t)elem);
    g.off_xs = align16(g.off_rs + (size_t)k * (size_t)g.rs_stride * (size_t)elem);
    g.bytes = g.off_xs + (size_t)D * (size_t)bt * (size_t)elem;
    return g;
}

/* Predict kernel's shared memory: parameters, then (k, bt) log-densities. */
__host__ __device__ inline size_t predict_rs_offset(int k, int P, int elem) { return align16((size_t)k * P * elem); }
__host__ __device__ inline size_t predict_smem(int k, int P, int elem, int bt)
{
    return predict_rs_offset(k, P, elem) + (size_t)k * bt * elem;
}

/* ------------------------------------------------------------------------------------ per-point math */

__device__ __forceinline__ void unpack(const float4 &w, float *o)
{
    o[0] = w.x;
    o[1] = w.y;
    o[2] = w.z;
    o[3] = w.w;
}
__device__ __forceinline__ void unpack(const double2 &w, double *o)
{
    o[0] = w.x;
    o[1] = w.y;
}

/* Loads one row of D elements into registers, as 16- or 8-byte vectors where its size allows. row must be
 * aligned to its size's largest power-of-two divisor up to 16 bytes (true for row i of an aligned (n, D)
 * array). */
template <typename T, int D> __device__ __forceinline__ void load_row(const T *__restrict__ row, T (&v)[D])
{
    constexpr int bytes = D * (int)sizeof(T);
    if constexpr (bytes % 16 == 0) {
        using V = typename Vec16<T>::type;
#pragma unroll
        for (int c = 0; c < D / Vec16<T>::n; c++) unpack(reinterpret_cast<const V *>(row)[c], v + c * Vec16<T>::n);
    } else if constexpr (bytes == 8 && sizeof(T) == 4) {
        const float2 w = *reinterpret_cast<const float2 *>(row);
        v[0] = w.x;
        v[1] = w.y;
    } else {
#pragma unroll
        for (int j = 0; j < D; j++) v[j] = row[j];
    }
}

/* 2^v. float: the hardware approximation (relative error below 2^-22, subnormal results flushed to 0; the
 * arguments here are l - max <= 0, and a responsibility below 1e-38 is 0 either way). */
__device__ __forceinline__ float ex2(float v)
{
#if defined(__CUDA_ARCH__)
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(v));
    return y;
#else
    return exp2f(v);
#endif
}
__device__ __forceinline__ double ex2(double v) { return exp2(v); }
/* 1 / v for the normalizer v in [1, k]. float: the fast reciprocal (2 ulp). */
__device__ __forceinline__ float rcp(float v)
{
#if defined(__CUDA_ARCH__)
    return __fdividef(1.0f, v);
#else
    return 1.0f / v;
#endif
}
__device__ __forceinline__ double rcp(double v) { return 1.0 / v; }
/* log2 of the normalizer v in [1, k]. float: the hardware approximation (absolute error below 2^-21 there,
 * far inside the float rounding of the log-densities themselves). */
__device__ __forceinline__ float lg2(float v)
{
#if defined(__CUDA_ARCH__)
    float y;
    asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(v));
    return y;
#else
    return log2f(v);
#endif
}
__device__ __forceinline__ double lg2(double v) { return log2(v); }
__device__ __forceinline__ float fmat(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fmat(double a, double b, double c) { return fma(a, b, c); }

/* log2 of the weighted density of one component at x: base - |(x - mean) U'|^2, with p the component's
 * parameter block (layout in gmm_cuda.h). y_j = sum_{i <= j} (x_i - mean_i) U'_ij, as the CPU reference. */
template <typename T, int D> __device__ __forceinline__ T log_density2(const T (&x)[D], const T *__restrict__ p)
{
    T dx[D];
#pragma unroll
    for (int i = 0; i < D; i++) dx[i] = x[i] - p[i];
    T l = p[param_base(D)]; /* base - sum_j y_j^2, one fused multiply-add per term */
#pragma unroll
    for (int j = 0; j < D; j++) {
        T y = dx[0] * p[param_u(D, 0, j)];
#pragma unroll
        for (int i = 1; i <= j; i++) y = fmat(dx[i], p[param_u(D, i, j)], y);
        l = fmat(-y, y, l);
    }
    return l;
}

/* Adds one point's contribution to statistic number IDX of a component (0: N, 1..D: S, then T upper by
 * rows; IDX >= n_entries(D) is padding and adds nothing). r is the responsibility, dx = x - mean, rd = r dx.
 * IDX is a template argument so that every register index below is a compile-time constant. */
template <typename T, int D, int IDX>
__device__ __forceinline__ void acc_entry(T &a, T r, const T (&dx)[D], const T (&rd)[D])
{
    if constexpr (IDX == 0) {
        a += r;
    } else if constexpr (IDX <= D) {
        a += rd[IDX - 1];
    } else if constexpr (IDX < n_entries(D)) {
        constexpr int t = IDX - 1 - D;
        a = fmat(rd[upper_row(D, t)], dx[upper_col(D, t)], a);
    }
}

/* Adds one point's contribution to statistics FIRST, FIRST + 1, ..., FIRST + n - 1 into a (n sums). */
template <typename T, int D, int FIRST, int... L>
__device__ __forceinline__ void acc_entries(T (&a)[sizeof...(L)], T r, const T (&dx)[D], const T (&rd)[D],
                                            std::integer_sequence<int, L...>)
{
    (acc_entry<T, D, FIRST + L>(a[L], r, dx, rd), ...);
}

/* Sum of v over a warp in a fixed tree order (lane 0 gets the total); all 32 lanes must take part. */
__device__ __forceinline__ double warp_sum(double v)
{
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

/* Sum of one double per thread over the block, in a fixed order; the result is returned to thread 0 (other
 * threads get an unspecified value). red holds blockDim.x / 32 doubles of shared memory. Every thread of the
 * block must call it. */
__device__ __forceinline__ double block_sum(double v, double *red)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double t = 0.0;
    if (threadIdx.x == 0)
        for (int w = 0; w < nw; w++) t += red[w];
    __syncthreads(); /* red may be reused right after */
    return t;
}

/* ------------------------------------------------------------------------------------ register path */

/* The register path's parameters, passed by value (they live in the kernel's constant bank, so the
 * arithmetic reads them as operands): K blocks of P elements. */
template <typename T, int D, int K> struct RegParams {
    T v[K * param_stride(D, Vec16<T>::n)];
};

/* The register path's per-point work: adds point xv's contributions to the K * E run sums acc (T) and returns
 * log2 p(x). */
template <typename T, int D, int K>
__device__ __forceinline__ T reg_point(const T (&xv)[D], const RegParams<T, D, K> &prm, T (&acc)[K][n_entries(D)])
{
    constexpr int E = n_entries(D), P = param_stride(D, Vec16<T>::n);
    T l[K];
    T m = T(-INFINITY);
#pragma unroll
    for (int c = 0; c < K; c++) {
        l[c] = log_density2<T, D>(xv, prm.v + c * P);
        m = l[c] > m ? l[c] : m;
    }
    T s = T(0);
#pragma unroll
    for (int c = 0; c < K; c++) {
        l[c] = ex2(l[c] - m);
        s += l[c];
    }
    const T inv = rcp(s);
#pragma unroll
    for (int c = 0; c < K; c++) {
        const T r = l[c] * inv;
        T dx[D], rd[D];
#pragma unroll
        for (int j = 0; j < D; j++) {
            dx[j] = xv[j] - prm.v[c * P + j];
            rd[j] = r * dx[j];
        }
        acc_entries<T, D, 0>(acc[c], r, dx, rd, std::make_integer_sequence<int, E>{});
    }
    return m + lg2(s);
}

/* Loads the kRegBatch rows i0, i0 + stride, ... of x into xb (zeros past n). */
template <typename T, int D>
__device__ __forceinline__ void reg_load(const T *__restrict__ xa, long long n, long long i0, long long stride,
                                         T (&xb)[kRegBatch][D])
{
#pragma unroll
    for (int b = 0; b < kRegBatch; b++) {
        const long long i = i0 + b * stride;
        if (i < n) {
            load_row<T, D>(xa + i * D, xb[b]);
        } else {
#pragma unroll
            for (int j = 0; j < D; j++) xb[b][j] = T(0);
        }
    }
}

/* Stats pass, register path: for d = D <= 4 and exactly K components with K * E small (K is a compile-time
 * constant, so the per-component loops are straight-line code). Each thread walks its points in batches of
 * kRegBatch rows (grid stride; the next batch's loads are issued before the current batch is computed),
 * keeps its K * E run sums in registers (T, flushed every kRun points into its own column of double sums in
 * shared memory, so that the registers stay few enough for reg_min_blocks<T>() resident blocks), and the block
 * sums its threads in a fixed order into partials[blockIdx.x] (stats_len doubles: K * E statistics, then
 * the sum of log2 p). Requires blockDim.x == kRegThreads and x 16-byte aligned (the start of a cudaMalloc'd
 * array). */
template <typename T, int D, int K>
__global__ void __launch_bounds__(kRegThreads, reg_min_blocks<T>())
    stats_reg_kernel(const T *__restrict__ x, long long n, const __grid_constant__ RegParams<T, D, K> prm,
                     int stats_len, double *__restrict__ partials)
{
    constexpr int E = n_entries(D);
    static_assert(kRun % kRegBatch == 0, "runs are whole batches");
    /* dsum[s][thread]: a warp's 32 doubles of one statistic are contiguous (no bank conflicts) */
    GMM_STATIC_SHARED(double, dsum, [K * E][kRegThreads]);
    GMM_STATIC_SHARED(double, red, [kRegThreads / 32][K * E + 1]);
    const int tid = threadIdx.x;
    T acc[K][E];
#pragma unroll
    for (int c = 0; c < K; c++)
#pragma unroll
        for (int e = 0; e < E; e++) {
            acc[c][e] = T(0);
            dsum[c * E + e][tid] = 0.0;
        }
    double ll = 0.0;
    int run = 0;
    /* x comes straight from cudaMalloc: 16-byte aligned, so rows of 2 or 4 elements load as vectors */
    const T *__restrict__ xa = static_cast<const T *>(__builtin_assume_aligned(x, 16));
    const long long stride = (long long)gridDim.x * blockDim.x, step = kRegBatch * stride;
    long long i0 = (long long)blockIdx.x * blockDim.x + tid;
    T xb[kRegBatch][D];
    if (i0 < n) reg_load<T, D>(xa, n, i0, stride, xb);
#pragma unroll 1 /* unrolled, the loop would hold two batches' temporaries */
    for (; i0 < n; i0 += step) {
        T xn[kRegBatch][D];
        reg_load<T, D>(xa, n, i0 + step, stride, xn);
#pragma unroll
        for (int b = 0; b < kRegBatch; b++) {
            if (i0 + b * stride >= n) break;
            ll += (double)reg_point<T, D, K>(xb[b], prm, acc);
        }
#pragma unroll
        for (int b = 0; b < kRegBatch; b++)
#pragma unroll
            for (int j = 0; j < D; j++) xb[b][j] = xn[b][j];
        run += kRegBatch;
        if (run == kRun) {
            run = 0;
#pragma unroll
            for (int c = 0; c < K; c++)
#pragma unroll
                for (int e = 0; e < E; e++) {
                    /* volatile: one statistic at a time (24 doubles loaded at once would need more
                     * registers than the whole loop) */
                    volatile double *slot = &dsum[c * E + e][tid];
                    *slot = *slot + (double)acc[c][e];
                    acc[c][e] = T(0);
                }
        }
    }

    /* Block sum in a fixed order: warp trees, then the warps in order. */
    const int lane = tid % 32, warp = tid / 32;
#pragma unroll
    for (int c = 0; c < K; c++)
#pragma unroll
        for (int e = 0; e < E; e++) {
            const double v = warp_sum(dsum[c * E + e][tid] + (double)acc[c][e]);
            if (lane == 0) red[warp][c * E + e] = v;
        }
    {
        const double v = warp_sum(ll);
        if (lane == 0) red[warp][K * E] = v;
    }
    __syncthreads();
    double *out = partials + (size_t)blockIdx.x * (size_t)stats_len;
    const int nw = blockDim.x / 32;
    for (int s = tid; s < K * E + 1; s += blockDim.x) {
        double t = 0.0;
        for (int w = 0; w < nw; w++) t += red[w][s];
        out[s] = t;
    }
}

/* --------------------------------------------------------------------------------------- tile path */

/* Phase 1 for one point: writes the k responsibilities into rcol[c * rs_stride] and returns log2 p(x). */
template <typename T, int D>
__device__ __forceinline__ T point_resp(const T (&x)[D], const T *__restrict__ par, int k, T *__restrict__ rcol,
                                        int rs_stride)
{
    constexpr int P = TileShape<T, D>::P;
    T m = T(-INFINITY);
    for (int c = 0; c < k; c++) {
        const T l = log_density2<T, D>(x, static_cast<const T *>(__builtin_assume_aligned(par + c * P, 16)));
        rcol[c * rs_stride] = l;
        m = l > m ? l : m;
    }
    T s = T(0);
    for (int c = 0; c < k; c++) {
        const T e = ex2(rcol[c * rs_stride] - m);
        rcol[c * rs_stride] = e;
        s += e;
    }
    const T inv = rcp(s);
    for (int c = 0; c < k; c++) rcol[c * rs_stride] *= inv;
    return m + lg2(s);
}

/* Phase 2 for one item (statistics FIRST .. FIRST + EI - 1 of one component) over the tile in shared
 * memory: this thread takes points lane, lane + lanes, ... < bt, sums in T over runs of kRun points and adds
 * each run into its own double slot (EI doubles of shared memory that no other thread touches). rk is the
 * component's responsibility row, xs the tile's points (D, bt) feature-major, mean the component's mean.
 * Points of the tile past n have r = 0 and x = 0, so they add exact zeros. */
template <typename T, int D, int FIRST>
__device__ __forceinline__ void tile_item(const T *__restrict__ rk, const T *__restrict__ xs, int bt,
                                          const T *__restrict__ mean, int lane, int lanes, double *__restrict__ slot)
{
    constexpr int EI = TileShape<T, D>::EI;
    T mu[D];
#pragma unroll
    for (int j = 0; j < D; j++) mu[j] = mean[j];
    for (int p0 = lane; p0 < bt; p0 += lanes * kRun) {
        T a[EI];
#pragma unroll
        for (int e = 0; e < EI; e++) a[e] = T(0);
        const int pend = p0 + lanes * kRun < bt ? p0 + lanes * kRun : bt;
        for (int p = p0; p < pend; p += lanes) {
            const T r = rk[p];
            T dx[D], rd[D];
#pragma unroll
            for (int j = 0; j < D; j++) {
                dx[j] = xs[j * bt + p] - mu[j];
                rd[j] = r * dx[j];
            }
            acc_entries<T, D, FIRST>(a, r, dx, rd, std::make_integer_sequence<int, EI>{});
        }
#pragma unroll
        for (int e = 0; e < EI; e++) slot[e] += (double)a[e];
    }
}

/* Runs tile_item for group `grp` (warp-uniform where tpg >= 32), resolving it to a compile-time FIRST. */
template <typename T, int D, int G = 0>
__device__ __forceinline__ void tile_group(int grp, const T *__restrict__ rk, const T *__restrict__ xs, int bt,
                                           const T *__restrict__ mean, int lane, int lanes, double *__restrict__ slot)
{
    if constexpr (G < TileShape<T, D>::R) {
        if (grp == G)
            tile_item<T, D, G * TileShape<T, D>::EI>(rk, xs, bt, mean, lane, lanes, slot);
        else
            tile_group<T, D, G + 1>(grp, rk, xs, bt, mean, lane, lanes, slot);
    }
}

/* Stats pass, tile path (the body of stats_tile_kernel and stats_tile_init_kernel below): any
 * k <= GMM_CUDA_MAX_K, d <= D. Per tile of blockDim.x points: phase 1, one thread
 * per point, computes the responsibilities into shared memory (and log2 p into a per-thread double);
 * phase 2 spreads the (component, statistics group) items over the threads (see TileGeom). At the end the
 * block writes partials[blockIdx.x] (stats_len doubles) in a fixed order. params (k * P elements) are
 * copied into shared memory once per block. Dynamic shared memory: tile_geom(...).bytes.
 * The initializations use the same body, instantiated with INIT (so that the E-step's instance carries
 * none of it), with other responsibilities (mode kRespLabels: one-hot on labels; kRespRandom: hashed from
 * seed; the log-likelihood slot is then 0 and only the means of params are read, as the shift), and with
 * groups < R to skip the second-moment groups that Lloyd's centers do not need (group 0 always holds N and
 * S). The INIT instance also runs the E-step's responsibilities (mode kRespEM) around other centers: with
 * shift non-null, component c's statistics are taken around shift[c * D .. c * D + D) (global memory, the
 * data's type) instead of its mean, so that a pass after a large move of the means sums small deviations.
 * Without INIT, mode, labels, seed, groups and shift are ignored. */
template <typename T, int D, bool INIT>
__device__ __forceinline__ void
stats_tile_body(const T *__restrict__ x, long long n, int d, int k, const T *__restrict__ params, int stats_len,
                double *__restrict__ partials, int mode, const int *__restrict__ labels, unsigned long long seed,
                int groups, const T *__restrict__ shift)
{
    using S = TileShape<T, D>;
    using V = typename Vec16<T>::type;
    GMM_DYNAMIC_SHARED(smem);
    GMM_STATIC_SHARED(double, red, [kMaxThreads / 32]);
    const int bt = blockDim.x, tid = threadIdx.x;
    const TileGeom g = tile_geom(D, S::R, S::EI, S::P, (int)sizeof(T), bt, k);
    double *acc = reinterpret_cast<double *>(smem);
    T *par = reinterpret_cast<T *>(smem + g.off_par);
    T *rs = reinterpret_cast<T *>(smem + g.off_rs);
    T *xs = reinterpret_cast<T *>(smem + g.off_xs);

    for (int i = tid; i < g.slots * S::EI; i += bt) acc[i] = 0.0;
    for (int i = tid; i < k * S::P / Vec16<T>::n; i += bt)
        reinterpret_cast<V *>(par)[i] = reinterpret_cast<const V *>(params)[i];
    __syncthreads();

    const int grp = tid / g.tpg, t = tid % g.tpg;
    double ll = 0.0;
    for (long long base = (long long)blockIdx.x * bt; base < n; base += (long long)gridDim.x * bt) {
        /* phase 1: this thread's point */
        const long long i = base + tid;
        T xv[D];
        if (i < n) {
#pragma unroll
            for (int j = 0; j < D; j++) xv[j] = j < d ? x[i * d + j] : T(0);
            if constexpr (!INIT) {
                ll += (double)point_resp<T, D>(xv, par, k, rs + tid, g.rs_stride);
            } else if (mode == kRespEM) {
                ll += (double)point_resp<T, D>(xv, par, k, rs + tid, g.rs_stride);
            } else if (mode == kRespLabels) {
                const int lab = labels[i];
                for (int c = 0; c < k; c++) rs[c * g.rs_stride + tid] = c == lab ? T(1) : T(0);
            } else { /* as the CPU backend: u_c / sum u in double */
                double su = 0.0;
                for (int c = 0; c < k; c++) su += gmm_hash_uniform(seed, (uint64_t)i, (uint64_t)c);
                for (int c = 0; c < k; c++)
                    rs[c * g.rs_stride + tid] = (T)(gmm_hash_uniform(seed, (uint64_t)i, (uint64_t)c) / su);
            }
        } else {
#pragma unroll
            for (int j = 0; j < D; j++) xv[j] = T(0);
            for (int c = 0; c < k; c++) rs[c * g.rs_stride + tid] = T(0);
        }
#pragma unroll
        for (int j = 0; j < D; j++) xs[j * bt + tid] = xv[j];
        __syncthreads();
        /* phase 2: this thread's items (statistics groups >= groups are skipped and stay 0) */
        if (INIT && grp >= groups) {
        } else if (k <= g.tpg) {
            const int c = t / g.lanes, lane = t % g.lanes;
            if (c < k)
                tile_group<T, D>(grp, rs + c * g.rs_stride, xs, bt, INIT && shift ? shift + c * D : par + c * S::P,
                                 lane, g.lanes, acc + (size_t)((grp * k + c) * g.lanes + lane) * S::EI);
        } else {
            for (int c = t; c < k; c += g.tpg)
                tile_group<T, D>(grp, rs + c * g.rs_stride, xs, bt, INIT && shift ? shift + c * D : par + c * S::P, 0,
                                 1, acc + (size_t)(grp * k + c) * S::EI);
        }
        __syncthreads();
    }

    /* This block's partial: each statistic is its lanes' slots summed in lane order. */
    double *out = partials + (size_t)blockIdx.x * (size_t)stats_len;
    for (int s = tid; s < k * S::E; s += bt) {
        const int c = s / S::E, e = s % S::E, gi = e / S::EI, el = e % S::EI;
        const double *a = acc + (size_t)((gi * k + c) * g.lanes) * S::EI + el;
        double v = 0.0;
        for (int l = 0; l < g.lanes; l++) v += a[(size_t)l * S::EI];
        out[s] = v;
    }
    const double tot = block_sum(ll, red);
    if (tid == 0) out[k * S::E] = tot;
}

/* The E-step's instance (mode, labels, seed, groups and shift unused) and the initializations' (also the
 * E-step's shifted pass, kRespEM with a shift). Their launch bounds
 * differ: with a minimum of one block per multiprocessor ptxas gives the INIT instance the registers it
 * needs (without it, two instances spilled), while the E-step's keeps its lower register count (more
 * resident blocks). */
template <typename T, int D>
__global__ void __launch_bounds__(kMaxThreads)
    stats_tile_kernel(const T *__restrict__ x, long long n, int d, int k, const T *__restrict__ params, int stats_len,
                      double *__restrict__ partials)
{
    stats_tile_body<T, D, false>(x, n, d, k, params, stats_len, partials, kRespEM, nullptr, 0ULL, TileShape<T, D>::R,
                                 nullptr);
}
template <typename T, int D>
__global__ void __launch_bounds__(kMaxThreads, 1)
    stats_tile_init_kernel(const T *__restrict__ x, long long n, int d, int k, const T *__restrict__ params,
                           int stats_len, double *__restrict__ partials, int mode, const int *__restrict__ labels,
                           unsigned long long seed, int groups, const T *__restrict__ shift)
{
    stats_tile_body<T, D, true>(x, n, d, k, params, stats_len, partials, mode, labels, seed, groups, shift);
}

/* ---------------------------------------------------------------------------- initialization passes */

/* A point of D coordinates passed by value (the k-means++ candidate). */
template <typename T, int D> struct PointArg {
    T v[D];
};

/* k-means++ potential: for every point, closest = min(closest (+inf with reset), |x - cand|^2) in T, stored
 * when update is set; each block writes the double sum of its points' minima to partials[blockIdx.x] (grid
 * stride, per-thread double sums, block_sum: a fixed order). */
template <typename T, int D>
__global__ void __launch_bounds__(kFlatThreads)
    pp_potential_kernel(const T *__restrict__ x, long long n, int d, const PointArg<T, D> cand,
                        T *__restrict__ closest, int reset, int update, double *__restrict__ partials)
{
    GMM_STATIC_SHARED(double, red, [kFlatThreads / 32]);
    double s = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        T dd = T(0);
#pragma unroll
        for (int j = 0; j < D; j++)
            if (j < d) {
                const T t = x[i * d + j] - cand.v[j];
                dd = fmat(t, t, dd);
            }
        const T old = reset ? T(INFINITY) : closest[i];
        const T v = dd < old ? dd : old;
        if (update) closest[i] = v;
        s += (double)v;
    }
    const double tot = block_sum(s, red);
    if (threadIdx.x == 0) partials[blockIdx.x] = tot;
}

/* sums[b] = the double sum of v[b * kDrawChunk .. (b + 1) * kDrawChunk) (the tail chunk is short): thread t
 * adds its kDrawChunk / blockDim.x consecutive values in order, then block_sum. One block per chunk of
 * kFlatThreads threads. */
template <typename T>
__global__ void __launch_bounds__(kFlatThreads)
    chunk_sums_kernel(const T *__restrict__ v, long long n, double *__restrict__ sums)
{
    GMM_STATIC_SHARED(double, red, [kFlatThreads / 32]);
    constexpr int per = kDrawChunk / kFlatThreads;
    const long long i0 = (long long)blockIdx.x * kDrawChunk + (long long)threadIdx.x * per;
    double s = 0.0;
    for (int q = 0; q < per; q++)
        if (i0 + q < n) s += (double)v[i0 + q];
    const double tot = block_sum(s, red);
    if (threadIdx.x == 0) sums[blockIdx.x] = tot;
}

/* Lloyd assignment: each point gets the nearest of the k centers (the means of the parameter blocks in
 * params, copied to shared memory; the first on ties) as its label, and its squared distance in dist; each
 * block writes the number of labels that changed (all, with reset) to partials[blockIdx.x]. Dynamic shared
 * memory: k * P elements. */
template <typename T, int D>
__global__ void __launch_bounds__(kFlatThreads)
    assign_kernel(const T *__restrict__ x, long long n, int d, int k, const T *__restrict__ params, int reset,
                  int *__restrict__ labels, T *__restrict__ dist, double *__restrict__ partials)
{
    using V = typename Vec16<T>::type;
    constexpr int P = TileShape<T, D>::P;
    GMM_DYNAMIC_SHARED(smem);
    GMM_STATIC_SHARED(double, red, [kFlatThreads / 32]);
    T *par = reinterpret_cast<T *>(smem);
    for (int i = threadIdx.x; i < k * P / Vec16<T>::n; i += blockDim.x)
        reinterpret_cast<V *>(par)[i] = reinterpret_cast<const V *>(params)[i];
    __syncthreads();
    double changed = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        T xv[D];
#pragma unroll
        for (int j = 0; j < D; j++) xv[j] = j < d ? x[i * d + j] : T(0);
        int best = 0;
        T bd = T(0);
        for (int c = 0; c < k; c++) {
            const T *mu = par + c * P;
            T dd = T(0);
#pragma unroll
            for (int j = 0; j < D; j++) {
                const T t = xv[j] - mu[j];
                dd = fmat(t, t, dd);
            }
            if (c == 0 || dd < bd) {
                bd = dd;
                best = c;
            }
        }
        if (reset || labels[i] != best) changed += 1.0;
        labels[i] = best;
        dist[i] = bd;
    }
    const double tot = block_sum(changed, red);
    if (threadIdx.x == 0) partials[blockIdx.x] = tot;
}

/* The largest dist and its first index, per block: partials[2 b] = the value, partials[2 b + 1] = the index
 * (exact in a double below 2^53; -1 when the block saw no point). Each thread scans its points in increasing
 * order keeping the first maximum; thread 0 merges the threads in order (larger value, or equal value and
 * smaller index). */
template <typename T>
__global__ void __launch_bounds__(kFlatThreads)
    farthest_kernel(const T *__restrict__ dist, long long n, double *__restrict__ partials)
{
    GMM_STATIC_SHARED(double, val, [kFlatThreads]);
    GMM_STATIC_SHARED(long long, idx, [kFlatThreads]);
    double best = -INFINITY;
    long long bi = -1;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        if ((double)dist[i] > best) {
            best = (double)dist[i];
            bi = i;
        }
    val[threadIdx.x] = best;
    idx[threadIdx.x] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int t = 1; t < (int)blockDim.x; t++)
            if (idx[t] >= 0 && (bi < 0 || val[t] > best || (val[t] == best && idx[t] < bi))) {
                best = val[t];
                bi = idx[t];
            }
        partials[2 * blockIdx.x] = best;
        partials[2 * blockIdx.x + 1] = (double)bi;
    }
}

/* --------------------------------------------------------------------------------------- reduction */

/* out[s] = sum over b = 0 .. nblocks-1 of partials[b * len + s], for s < len, in a fixed order: thread row
 * r sums the blocks r, r + kReduceRows, ... in order, then the rows are added in order. Launch with
 * ceil(len / kReduceCols) blocks of kReduceCols * kReduceRows threads. */
__global__ void __launch_bounds__(kReduceCols *kReduceRows)
    reduce_partials_kernel(const double *__restrict__ partials, int nblocks, int len, double *__restrict__ out)
{
    GMM_STATIC_SHARED(double, part, [kReduceRows][kReduceCols]);
    const int lc = threadIdx.x % kReduceCols, row = threadIdx.x / kReduceCols;
    const int col = blockIdx.x * kReduceCols + lc;
    double v = 0.0;
    if (col < len)
        for (int b = row; b < nblocks; b += kReduceRows) v += partials[(size_t)b * (size_t)len + col];
    part[row][lc] = v;
    __syncthreads();
    if (row == 0 && col < len) {
        double t = part[0][lc];
        for (int r = 1; r < kReduceRows; r++) t += part[r][lc];
        out[col] = t;
    }
}

/* ------------------------------------------------------------------------------------------ predict */

/* Per-point outputs for x (n, d), each optional: logp (n) natural log of p(x), labels (n) the first
 * component of largest weighted density (numpy's argmax, as the CPU reference), resp (n, k) row-major
 * responsibilities. One thread per point (grid stride); parameters and a (k, blockDim.x) scratch of
 * log-densities in dynamic shared memory (predict_smem bytes). The ", 1" in the launch bounds keeps ptxas
 * from spilling a few bytes, which it did at 48-64 registers without it. */
template <typename T, int D>
__global__ void __launch_bounds__(kMaxThreads, 1)
    predict_kernel(const T *__restrict__ x, long long n, int d, int k, const T *__restrict__ params,
                   double *__restrict__ logp, int *__restrict__ labels, double *__restrict__ resp)
{
    using V = typename Vec16<T>::type;
    constexpr int P = TileShape<T, D>::P;
    GMM_DYNAMIC_SHARED(smem);
    const int bt = blockDim.x, tid = threadIdx.x;
    T *par = reinterpret_cast<T *>(smem);
    T *rcol = reinterpret_cast<T *>(smem + predict_rs_offset(k, P, (int)sizeof(T))) + tid;
    for (int i = tid; i < k * P / Vec16<T>::n; i += bt)
        reinterpret_cast<V *>(par)[i] = reinterpret_cast<const V *>(params)[i];
    __syncthreads();
    for (long long i = (long long)blockIdx.x * bt + tid; i < n; i += (long long)gridDim.x * bt) {
        T xv[D];
#pragma unroll
        for (int j = 0; j < D; j++) xv[j] = j < d ? x[i * d + j] : T(0);
        T m = T(-INFINITY);
        int best = 0;
        for (int c = 0; c < k; c++) {
            const T l = log_density2<T, D>(xv, static_cast<const T *>(__builtin_assume_aligned(par + c * P, 16)));
            rcol[c * bt] = l;
            if (l > m) {
                m = l;
                best = c;
            }
        }
        T s = T(0);
        for (int c = 0; c < k; c++) {
            const T e = ex2(rcol[c * bt] - m);
            rcol[c * bt] = e;
            s += e;
        }
        if (logp) logp[i] = (double)(m + lg2(s)) * 0.69314718055994530941723212145818;
        if (labels) labels[i] = best;
        if (resp) {
            const T inv = rcp(s);
            for (int c = 0; c < k; c++) resp[i * k + c] = (double)(rcol[c * bt] * inv);
        }
    }
}

} // namespace gmmk

#endif /* GMM_CUDA_KERNELS_CUH */
