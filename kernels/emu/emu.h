/*
 * emu.h — runs gmm's CUDA kernels on host threads (force-included when kernels/gmm_cuda.cu is compiled as
 * C++ with -DGMM_CUDA_EMULATE): one std::thread per CUDA thread, blocks one after another, __syncthreads as
 * a std::barrier over the block, warp shuffles through a per-warp exchange, dynamic shared memory filled with
 * 0xff bytes (NaN) so that reading what nobody wrote shows.
 */
#pragma once
#include <cuda_runtime_api.h>

#include <barrier>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <memory>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
#define __shared__ static
#define __align__(n) alignas(n)
#define GMM_DYNAMIC_SHARED(name) unsigned char *name = gmm_emu_ctx.smem

struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
struct gmm_emu_dim { unsigned x, y, z; };

struct gmm_emu_warp {
    std::barrier<> bar{32};
    double vals[32];
};
struct gmm_emu_thread_ctx {
    unsigned char *smem;
    std::barrier<> *block_bar;
    gmm_emu_warp *warp;
};
extern thread_local gmm_emu_thread_ctx gmm_emu_ctx;
extern thread_local gmm_emu_dim threadIdx, blockIdx, blockDim, gridDim;

inline void __syncthreads() { gmm_emu_ctx.block_bar->arrive_and_wait(); }
inline double __shfl_down_sync(unsigned, double v, int off)
{
    gmm_emu_warp *w = gmm_emu_ctx.warp;
    const unsigned lane = threadIdx.x % 32;
    w->vals[lane] = v;
    w->bar.arrive_and_wait();
    const double r = lane + (unsigned)off < 32 ? w->vals[lane + off] : v;
    w->bar.arrive_and_wait();
    return r;
}

extern "C" void gmm_emu_set_error(cudaError_t e);
extern "C" size_t gmm_emu_smem_optin(void);
extern "C" void gmm_emu_count_launch(const char *what, int grid, int block, size_t smem);

template <typename... P, typename... A>
void gmm_emu_launch(void (*fn)(P...), int grid, int block, size_t smem, cudaStream_t, A &&...args)
{
    gmm_emu_count_launch(typeid(fn).name(), grid, block, smem);
    if (grid < 1 || block < 32 || block > 1024 || block % 32 || smem > gmm_emu_smem_optin()) {
        gmm_emu_set_error(cudaErrorInvalidConfiguration);
        return;
    }
    std::tuple<std::decay_t<P>...> targs(std::forward<A>(args)...);
    const size_t bytes = (smem + 15) / 16 * 16 + 16;
    unsigned char *buf = static_cast<unsigned char *>(std::aligned_alloc(16, bytes));
    for (int b = 0; b < grid; b++) {
        memset(buf, 0xff, bytes);
        std::barrier<> bar(block);
        std::vector<std::unique_ptr<gmm_emu_warp>> warps;
        for (int w = 0; w < block / 32; w++) warps.emplace_back(new gmm_emu_warp);
        std::vector<std::thread> th;
        th.reserve(block);
        for (int t = 0; t < block; t++)
            th.emplace_back([&, t] {
                gmm_emu_ctx = gmm_emu_thread_ctx{buf, &bar, warps[t / 32].get()};
                threadIdx = gmm_emu_dim{(unsigned)t, 0, 0};
                blockIdx = gmm_emu_dim{(unsigned)b, 0, 0};
                blockDim = gmm_emu_dim{(unsigned)block, 1, 1};
                gridDim = gmm_emu_dim{(unsigned)grid, 1, 1};
                std::apply(fn, targs);
            });
        for (auto &x : th) x.join();
    }
    std::free(buf);
}
