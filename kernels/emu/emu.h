/*
 * emu.h — runs gmm's CUDA kernels on host threads (force-included when kernels/gmm_cuda.cu is compiled as
 * C++ with -DGMM_CUDA_EMULATE): one host thread (from a pool) per CUDA thread, blocks one after another,
 * __syncthreads as a std::barrier over the block, warp shuffles through a per-warp exchange, dynamic shared
 * memory filled with 0xff bytes (NaN) so that reading what nobody wrote shows.
 */
#pragma once
#include <cuda_runtime_api.h>

#include <barrier>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
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

/* The CUDA threads of a block run on a pool of host threads created once (creating 256 std::threads per
 * block made the emulation spend most of its time in the kernel): run(n, f) has pool threads 0..n-1 call
 * f(t) and returns when all have. */
struct gmm_emu_pool {
    std::mutex mu;
    std::condition_variable go, done;
    std::vector<std::thread> threads;
    std::function<void(int)> job;
    int active = 0, remaining = 0;
    unsigned long long gen = 0;

    void worker(int t)
    {
        unsigned long long seen = 0;
        std::unique_lock<std::mutex> lk(mu);
        for (;;) {
            go.wait(lk, [&] { return gen != seen; });
            seen = gen;
            if (t < active) {
                lk.unlock();
                job(t);
                lk.lock();
                if (--remaining == 0) done.notify_all();
            }
        }
    }
    void run(int n, std::function<void(int)> f)
    {
        while ((int)threads.size() < n) {
            const int t = (int)threads.size();
            threads.emplace_back([this, t] { worker(t); });
            threads.back().detach(); /* the pool lives until the process exits */
        }
        std::unique_lock<std::mutex> lk(mu);
        job = std::move(f);
        active = remaining = n;
        gen++;
        go.notify_all();
        done.wait(lk, [&] { return remaining == 0; });
    }
};
inline gmm_emu_pool &gmm_emu_the_pool()
{
    static gmm_emu_pool *pool = new gmm_emu_pool; /* never destroyed: its threads wait until exit */
    return *pool;
}

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
        gmm_emu_the_pool().run(block, [&, b](int t) {
            gmm_emu_ctx = gmm_emu_thread_ctx{buf, &bar, warps[t / 32].get()};
            threadIdx = gmm_emu_dim{(unsigned)t, 0, 0};
            blockIdx = gmm_emu_dim{(unsigned)b, 0, 0};
            blockDim = gmm_emu_dim{(unsigned)block, 1, 1};
            gridDim = gmm_emu_dim{(unsigned)grid, 1, 1};
            std::apply(fn, targs);
        });
    }
    std::free(buf);
}
