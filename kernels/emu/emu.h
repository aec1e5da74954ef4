/*
 * emu.h — runs gmm's CUDA kernels on the host (force-included when kernels/gmm_cuda.cu is compiled as C++
 * with -DGMM_CUDA_EMULATE): the blocks of a launch one after another, the threads of a block as cooperative
 * fibers on the launching host thread (fibers.cpp), __syncthreads as a barrier over the block, warp shuffles
 * through a per-warp exchange, dynamic and static shared memory filled with 0xff bytes (NaN) before each block
 * (a static array when the block first reaches its declaration) so that reading what nobody wrote shows. A barrier that not every thread of the block (or warp) reaches aborts
 * with a message naming the kernel.
 */
#pragma once
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
#define __shared__ static
#define __align__(n) alignas(n)
#define GMM_DYNAMIC_SHARED(name) unsigned char *name = gmm_emu_ctx.smem
/* A static shared array: the first thread of each block that reaches its declaration fills it with 0xff. */
#define GMM_STATIC_SHARED(type, name, dims)                                                                          \
    static type name dims;                                                                                           \
    gmm_emu_shared_touch(name, sizeof name)
/* fibers.cpp: fills the len bytes at p with 0xff unless that was done already in the current block. */
void gmm_emu_shared_touch(void *p, size_t len);
/* fibers.cpp: counts blocks, so that gmm_emu_shared_touch knows a new one began. */
void gmm_emu_new_block(void);

struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) double2 {
    double x, y;
};
struct gmm_emu_dim {
    unsigned x, y, z;
};

/* Per launching host thread (its fibers see the same values): the block's dynamic shared memory and
 * indices; threadIdx is set by the scheduler for the fiber it resumes. */
struct gmm_emu_thread_ctx {
    unsigned char *smem;
};
extern __thread gmm_emu_thread_ctx gmm_emu_ctx; /* __thread: no dynamic initialization, no wrapper call */
extern __thread gmm_emu_dim threadIdx, blockIdx, blockDim, gridDim;

/* fibers.cpp: out of line, so that the compiler reloads what other fibers may have written meanwhile */
extern "C" void gmm_emu_syncthreads(void);
extern "C" double gmm_emu_shfl_down(double v, int off);
inline void __syncthreads() { gmm_emu_syncthreads(); }
inline double __shfl_down_sync(unsigned, double v, int off) { return gmm_emu_shfl_down(v, off); }

/* A launch as written in gmm_cuda.cu (for messages) and its shape. */
struct gmm_emu_launch_info {
    const char *expr, *file;
    int line;
    const char *type; /* typeid name of the kernel's pointer type */
    int grid, block;
    size_t smem;
};
/* fibers.cpp: runs one block (k.block threads) of body(arg) as fibers, each its CUDA thread. */
void gmm_emu_run_block(const gmm_emu_launch_info &k, int block, void (*body)(void *), void *arg);

extern "C" void gmm_emu_set_error(cudaError_t e);
extern "C" size_t gmm_emu_smem_optin(void);
extern "C" void gmm_emu_count_launch(const char *what, int grid, int block, size_t smem);

/* gmm_cuda.cu's GMM_LAUNCH calls gmm_emu_launch(fn, grid, block, smem, stream, args...): record where. */
#define gmm_emu_launch(fn, ...) gmm_emu_launch_at(#fn, __FILE__, __LINE__, fn, __VA_ARGS__)

template <typename... P, typename... A>
void gmm_emu_launch_at(const char *expr, const char *file, int line, void (*fn)(P...), int grid, int block,
                       size_t smem, cudaStream_t, A &&...args)
{
    gmm_emu_count_launch(expr, grid, block, smem);
    if (grid < 1 || block < 32 || block > 1024 || block % 32 || smem > gmm_emu_smem_optin()) {
        gmm_emu_set_error(cudaErrorInvalidConfiguration);
        return;
    }
    using Args = std::tuple<std::decay_t<P>...>;
    struct Call {
        void (*fn)(P...);
        Args args;
    } call{fn, Args(std::forward<A>(args)...)};
    const gmm_emu_launch_info info{expr, file, line, typeid(fn).name(), grid, block, smem};
    const size_t bytes = (smem + 15) / 16 * 16 + 16;
    unsigned char *buf = static_cast<unsigned char *>(std::aligned_alloc(16, bytes));
    gmm_emu_ctx.smem = buf;
    blockDim = gmm_emu_dim{(unsigned)block, 1, 1};
    gridDim = gmm_emu_dim{(unsigned)grid, 1, 1};
    for (int b = 0; b < grid; b++) {
        memset(buf, 0xff, bytes);
        gmm_emu_new_block();
        blockIdx = gmm_emu_dim{(unsigned)b, 0, 0};
        gmm_emu_run_block(
            info, b,
            [](void *c) {
                Call *k = static_cast<Call *>(c);
                std::apply(k->fn, k->args);
            },
            &call);
    }
    gmm_emu_ctx.smem = nullptr;
    std::free(buf);
}
