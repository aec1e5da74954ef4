/*
 * reg_variants.cu — numbered versions of the register-path stats kernel (d = 2, K = 4, float32), compared on
 * the GPU while they are being tuned (DESIGN.md: numbered kernel versions live in bench/; only the winner goes
 * into kernels/). Each version computes the same statistics as kernels/gmm_cuda_kernels.cuh's
 * stats_reg_kernel; this program checks every version's block-summed statistics against version 0's
 * (relative difference, printed) and times each with CUDA events (warm-up, median of repeats) at N = 1e7 and
 * N = 1e8, printing registers, local memory (spills), resident blocks, time and GB/s of X.
 *
 * Build and run (on a machine with the GPU): nvcc -O3 -std=c++17 -arch=sm_90 -Ikernels bench/reg_variants.cu
 *   -o reg_variants && ./reg_variants
 *
 * Versions (template arguments THREADS, MINB = __launch_bounds__ minimum blocks, BATCH = rows loaded before
 * computing, PF = the next batch's loads issued before the current batch is computed, DSH = the per-thread
 * double sums in shared memory instead of registers, LLRUN = log2 p summed in float over a run like the
 * statistics instead of into a double per point):
 *   v0  256 2 4 - - -   the kernel before this comparison (128 registers, 16 warps per multiprocessor)
 *   v1  128 5 4 - S -   double sums in shared memory, flushed one statistic at a time (96 registers)
 *   v2  128 5 4 P S -   + prefetch: the fastest at N = 1e8 on an H100 (bench/RESULTS.md), now in kernels/
 *   v3  128 6 4 - S -   80 registers (24 warps)
 *   v4  128 6 2 P S -   batch 2 with prefetch
 *   v5  128 6 1 P S -   batch 1 with prefetch
 *   v6  128 6 4 - S L   v3 + log-likelihood run sums
 *   v7  128 6 2 P S L   v4 + log-likelihood run sums
 *   v8  128 8 1 P S L   64 registers (32 warps)
 *   v9  128 8 1 P S -   v8 without the log-likelihood run sums
 *   v10 128 8 2 P S L   v8 with batch 2
 */
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

#include "gmm_cuda_kernels.cuh"

using namespace gmmk;

#define CK(call)                                                                                                 \
    do {                                                                                                       \
        cudaError_t e_ = (call);                                                                               \
        if (e_ != cudaSuccess) {                                                                               \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));              \
            exit(1);                                                                                           \
        }                                                                                                      \
    } while (0)

constexpr int D = 2, K = 4, E = n_entries(D), P = param_stride(D, 4), LEN = K * E + 1;

template <int BATCH>
__device__ __forceinline__ void vload(const float *__restrict__ xa, long long n, long long i0, long long stride,
                                      float (&xb)[BATCH][D])
{
#pragma unroll
    for (int b = 0; b < BATCH; b++) {
        const long long i = i0 + b * stride;
        if (i < n) {
            load_row<float, D>(xa + i * D, xb[b]);
        } else {
            xb[b][0] = 0.f;
            xb[b][1] = 0.f;
        }
    }
}

template <int THREADS, int MINB, int BATCH, bool PF, bool DSH, bool LLRUN>
__global__ void __launch_bounds__(THREADS, MINB)
    vkernel(const float *__restrict__ x, long long n, const __grid_constant__ RegParams<float, D, K> prm,
            double *__restrict__ partials)
{
    static_assert(kRun % BATCH == 0, "runs are whole batches");
    __shared__ double dsum[DSH ? K * E : 1][DSH ? THREADS : 1];
    __shared__ double red[THREADS / 32][LEN];
    const int tid = threadIdx.x;
    float acc[K][E];
    double dacc[DSH ? 1 : K][DSH ? 1 : E];
#pragma unroll
    for (int c = 0; c < K; c++)
#pragma unroll
        for (int e = 0; e < E; e++) {
            acc[c][e] = 0.f;
            if constexpr (DSH)
                dsum[c * E + e][tid] = 0.0;
            else
                dacc[c][e] = 0.0;
        }
    double ll = 0.0;
    float llr = 0.f;
    int run = 0;
    const float *__restrict__ xa = static_cast<const float *>(__builtin_assume_aligned(x, 16));
    const long long stride = (long long)gridDim.x * THREADS, step = BATCH * stride;
    long long i0 = (long long)blockIdx.x * THREADS + tid;
    float xb[BATCH][D];
    if constexpr (PF) vload<BATCH>(xa, n, i0, stride, xb);
#pragma unroll 1
    for (; i0 < n; i0 += step) {
        float xn[BATCH][D];
        if constexpr (PF)
            vload<BATCH>(xa, n, i0 + step, stride, xn);
        else
            vload<BATCH>(xa, n, i0, stride, xb);
#pragma unroll
        for (int b = 0; b < BATCH; b++) {
            if (i0 + b * stride >= n) break;
            float l[K];
            float m = -INFINITY;
#pragma unroll
            for (int c = 0; c < K; c++) {
                l[c] = log_density2<float, D>(xb[b], prm.v + c * P);
                m = l[c] > m ? l[c] : m;
            }
            float s = 0.f;
#pragma unroll
            for (int c = 0; c < K; c++) {
                l[c] = ex2(l[c] - m);
                s += l[c];
            }
            const float inv = rcp(s);
            if constexpr (LLRUN)
                llr += m + lg2(s);
            else
                ll += (double)(m + lg2(s));
#pragma unroll
            for (int c = 0; c < K; c++) {
                const float r = l[c] * inv;
                float dx[D], rd[D];
#pragma unroll
                for (int j = 0; j < D; j++) {
                    dx[j] = xb[b][j] - prm.v[c * P + j];
                    rd[j] = r * dx[j];
                }
                acc_entries<float, D, 0>(acc[c], r, dx, rd, std::make_integer_sequence<int, E>{});
            }
        }
        if constexpr (PF) {
#pragma unroll
            for (int b = 0; b < BATCH; b++)
#pragma unroll
                for (int j = 0; j < D; j++) xb[b][j] = xn[b][j];
        }
        run += BATCH;
        if (run == kRun) {
            run = 0;
#pragma unroll
            for (int c = 0; c < K; c++)
#pragma unroll
                for (int e = 0; e < E; e++) {
                    if constexpr (DSH) {
                        /* volatile: one statistic at a time, so that the flush needs few registers */
                        volatile double *slot = &dsum[c * E + e][tid];
                        *slot = *slot + (double)acc[c][e];
                    } else
                        dacc[c][e] += (double)acc[c][e];
                    acc[c][e] = 0.f;
                }
            if constexpr (LLRUN) {
                ll += (double)llr;
                llr = 0.f;
            }
        }
    }
    if constexpr (LLRUN) ll += (double)llr;
    const int lane = tid % 32, warp = tid / 32;
#pragma unroll
    for (int c = 0; c < K; c++)
#pragma unroll
        for (int e = 0; e < E; e++) {
            double v = (double)acc[c][e];
            if constexpr (DSH)
                v += dsum[c * E + e][tid];
            else
                v += dacc[c][e];
            v = warp_sum(v);
            if (lane == 0) red[warp][c * E + e] = v;
        }
    {
        const double v = warp_sum(ll);
        if (lane == 0) red[warp][K * E] = v;
    }
    __syncthreads();
    double *out = partials + (size_t)blockIdx.x * LEN;
    for (int s = tid; s < LEN; s += THREADS) {
        double t = 0.0;
        for (int w = 0; w < THREADS / 32; w++) t += red[w][s];
        out[s] = t;
    }
}

/* Points from the mixture below (hashed uniforms, Box-Muller), so that the responsibilities are not trivial. */
__global__ void fill(float *x, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const double u1 = gmm_hash_uniform(7, (uint64_t)i, 0), u2 = gmm_hash_uniform(7, (uint64_t)i, 1);
        const int c = (int)(gmm_hash_uniform(7, (uint64_t)i, 2) * 4) & 3;
        const double r = sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)), a = 6.283185307179586 * u2;
        x[i * 2] = (float)((c & 1 ? 1.5 : -1.5) + 0.7 * r * cos(a));
        x[i * 2 + 1] = (float)((c & 2 ? 1.0 : -1.0) + 0.5 * r * sin(a));
    }
}

struct Variant {
    const char *name;
    const void *fn;
    int threads;
    void (*launch)(int blocks, const float *x, long long n, const RegParams<float, D, K> &prm, double *part);
};

template <int THREADS, int MINB, int BATCH, bool PF, bool DSH, bool LLRUN>
Variant make(const char *name)
{
    return Variant{name, (const void *)vkernel<THREADS, MINB, BATCH, PF, DSH, LLRUN>, THREADS,
                   [](int blocks, const float *x, long long n, const RegParams<float, D, K> &prm, double *part) {
                       vkernel<THREADS, MINB, BATCH, PF, DSH, LLRUN><<<blocks, THREADS>>>(x, n, prm, part);
                   }};
}

int main(int argc, char **argv)
{
    const int repeats = argc > 1 ? atoi(argv[1]) : 20;
    const Variant vs[] = {
        make<256, 2, 4, false, false, false>("v0"), make<128, 5, 4, false, true, false>("v1"),
        make<128, 5, 4, true, true, false>("v2"),   make<128, 6, 4, false, true, false>("v3"),
        make<128, 6, 2, true, true, false>("v4"),   make<128, 6, 1, true, true, false>("v5"),
        make<128, 6, 4, false, true, true>("v6"),   make<128, 6, 2, true, true, true>("v7"),
        make<128, 8, 1, true, true, true>("v8"),    make<128, 8, 1, true, true, false>("v9"),
        make<128, 8, 2, true, true, true>("v10"),
    };
    const int nv = (int)(sizeof vs / sizeof vs[0]);
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("reg_variants: %s, %d SMs, d = %d, K = %d, float32, %d repeats (median)\n", prop.name,
           prop.multiProcessorCount, D, K, repeats);

    /* parameters in the layout of gmm_cuda.h: mean, U' (upper, by columns) in log2 units, base */
    RegParams<float, D, K> prm;
    memset(&prm, 0, sizeof prm);
    const double s2 = sqrt(1.0 / (2.0 * log(2.0)));
    for (int c = 0; c < K; c++) {
        float *p = prm.v + c * P;
        const double mx = (c & 1 ? 1.4 : -1.6), my = (c & 2 ? 0.9 : -1.1), sx = 0.75, sy = 0.55, rho = 0.2 * (c - 1.5);
        /* precision Cholesky of [[sx^2, rho sx sy], [rho sx sy, sy^2]]: upper U with U U^T = precision */
        const double det = sx * sx * sy * sy * (1 - rho * rho);
        const double p00 = sy * sy / det, p01 = -rho * sx * sy / det, p11 = sx * sx / det;
        const double u11 = sqrt(p11), u01 = p01 / u11, u00 = sqrt(p00 - u01 * u01);
        p[0] = (float)mx;
        p[1] = (float)my;
        p[param_u(D, 0, 0)] = (float)(u00 * s2);
        p[param_u(D, 0, 1)] = (float)(u01 * s2);
        p[param_u(D, 1, 1)] = (float)(u11 * s2);
        p[param_base(D)] = (float)((log(0.25) + log(u00 * u11) - log(2 * M_PI)) / log(2.0));
    }

    const long long sizes[2] = {10000000LL, 100000000LL};
    float *x = nullptr;
    CK(cudaMalloc(&x, sizeof(float) * D * sizes[1]));
    fill<<<prop.multiProcessorCount * 8, 256>>>(x, sizes[1]);
    CK(cudaGetLastError());
    double *part = nullptr;
    const size_t max_blocks = (size_t)prop.multiProcessorCount * 32;
    CK(cudaMalloc(&part, sizeof(double) * LEN * max_blocks));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));

    printf("%-4s %7s %6s %6s %6s %12s %9s %12s %9s %12s\n", "ver", "threads", "regs", "local", "blocks", "ms 1e7",
           "GB/s", "ms 1e8", "GB/s", "max rel diff");
    std::vector<double> ref[2];
    for (int v = 0; v < nv; v++) {
        cudaFuncAttributes fa;
        CK(cudaFuncGetAttributes(&fa, vs[v].fn));
        int occ = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, vs[v].fn, vs[v].threads, 0));
        const int blocks = prop.multiProcessorCount * occ;
        double ms[2], worst = 0.0;
        for (int si = 0; si < 2; si++) {
            const long long n = sizes[si];
            for (int w = 0; w < 3; w++) vs[v].launch(blocks, x, n, prm, part);
            CK(cudaGetLastError());
            std::vector<float> t(repeats);
            for (int r = 0; r < repeats; r++) {
                CK(cudaEventRecord(e0));
                vs[v].launch(blocks, x, n, prm, part);
                CK(cudaEventRecord(e1));
                CK(cudaEventSynchronize(e1));
                CK(cudaEventElapsedTime(&t[r], e0, e1));
            }
            std::sort(t.begin(), t.end());
            ms[si] = t[repeats / 2];
            std::vector<double> h((size_t)LEN * blocks), tot(LEN, 0.0);
            CK(cudaMemcpy(h.data(), part, sizeof(double) * h.size(), cudaMemcpyDeviceToHost));
            for (int b = 0; b < blocks; b++)
                for (int s = 0; s < LEN; s++) tot[s] += h[(size_t)b * LEN + s];
            if (v == 0) ref[si] = tot;
            for (int s = 0; s < LEN; s++) {
                const double d = fabs(tot[s] - ref[si][s]) / (fabs(ref[si][s]) + 1.0);
                worst = !(d <= worst) ? d : worst; /* NaN propagates */
            }
        }
        printf("%-4s %7d %6d %6zu %6d %12.4f %9.1f %12.4f %9.1f %12.2e\n", vs[v].name, vs[v].threads, fa.numRegs,
               fa.localSizeBytes, blocks, ms[0], sizes[0] * D * 4.0 / (ms[0] * 1e6), ms[1],
               sizes[1] * D * 4.0 / (ms[1] * 1e6), worst);
    }
    printf("N_1 at 1e8 (check): %.1f of %lld points in component 0\n", ref[1][0], sizes[1]);
    CK(cudaFree(x));
    CK(cudaFree(part));
    return 0;
}
