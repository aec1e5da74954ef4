/*
 * fake_cudart.cpp — the host implementation of the CUDA runtime subset in include/cuda_runtime_api.h, for the
 * CPU emulation of the kernels (see run.sh): device memory is host memory (filled with 0xff bytes, NaN, when
 * allocated, the first GiB of an allocation; GMM_EMU_MEM_MB, default 16384, of it in all, so that running out
 * can be tested), copies are memcpy, streams and events are synchronous, the "device" has GMM_EMU_SMS (2)
 * multiprocessors and every kernel GMM_EMU_OCC (2) blocks per multiprocessor.
 */
#include "emu.h"
#include <chrono>
#include <cstdio>
#include <mutex>
#include <unordered_map>

static thread_local cudaError_t last_error = cudaSuccess;
static long n_launches = 0;

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v ? atoi(v) : def;
}

/* The fake device's memory: GMM_EMU_MEM_MB (default 16384) in all; live allocations are counted against it. */
static std::mutex mem_mu;
static std::unordered_map<void *, size_t> mem_live;
static size_t mem_used = 0;
static size_t mem_total()
{
    static size_t t = (size_t)env_int("GMM_EMU_MEM_MB", 16384) << 20;
    return t;
}


extern "C" {
void gmm_emu_set_error(cudaError_t e)
{
    if (last_error == cudaSuccess) last_error = e;
}
size_t gmm_emu_smem_optin(void) { return 232448; }
void gmm_emu_count_launch(const char *what, int grid, int block, size_t smem)
{
    n_launches++;
    if (getenv("GMM_EMU_VERBOSE"))
        fprintf(stderr, "emu launch %ld: grid %d block %d smem %zu (%s)\n", n_launches, grid, block, smem, what);
}
cudaError_t cudaGetDeviceCount(int *c)
{
    if (env_int("GMM_EMU_NO_DEVICE", 0)) {
        *c = 0;
        return cudaErrorNoDevice;
    }
    *c = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d)
{
    *d = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int)
{
    memset(p, 0, sizeof *p);
    strcpy(p->name, "gmm host emulation");
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = env_int("GMM_EMU_SMS", 2);
    p->totalGlobalMem = mem_total();
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int)
{
    if (a == cudaDevAttrMultiProcessorCount)
        *v = env_int("GMM_EMU_SMS", 2);
    else if (a == cudaDevAttrMaxSharedMemoryPerBlockOptin)
        *v = (int)gmm_emu_smem_optin();
    else
        return cudaErrorInvalidValue;
    return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *a, const void *)
{
    memset(a, 0, sizeof *a);
    a->sharedSizeBytes = 2048;
    a->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *, enum cudaFuncAttribute, int v)
{
    return v >= 0 && (size_t)v <= gmm_emu_smem_optin() ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, const void *, int, size_t)
{
    *n = env_int("GMM_EMU_OCC", 2);
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t b)
{
    std::lock_guard<std::mutex> lk(mem_mu);
    const size_t r = (b + 255) / 256 * 256;
    if (r > mem_total() - mem_used) {
        *p = nullptr;
        return cudaErrorMemoryAllocation;
    }
    *p = std::aligned_alloc(256, r ? r : 256);
    if (!*p) return cudaErrorMemoryAllocation;
    /* uninitialized device memory reads as NaN; beyond 1 GiB (a test's ballast, never read) the pages are left
     * untouched so that they cost no host memory */
    memset(*p, 0xff, b < ((size_t)1 << 30) ? b : ((size_t)1 << 30));
    mem_live[*p] = r;
    mem_used += r;
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t b)
{
    /* GMM_EMU_HOST_MAX_BYTES (read at each call): pinned allocations above it fail, so that tests reach
     * the paths where pinned memory runs out */
    const char *lim = getenv("GMM_EMU_HOST_MAX_BYTES");
    if (lim && b > (size_t)strtoull(lim, NULL, 10)) {
        *p = nullptr;
        return cudaErrorMemoryAllocation;
    }
    *p = std::aligned_alloc(256, (b + 255) / 256 * 256);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p)
{
    std::lock_guard<std::mutex> lk(mem_mu);
    auto it = mem_live.find(p);
    if (it != mem_live.end()) {
        mem_used -= it->second;
        mem_live.erase(it);
    }
    std::free(p);
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p)
{
    std::free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t b, enum cudaMemcpyKind)
{
    memcpy(d, s, b);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t b, enum cudaMemcpyKind, cudaStream_t)
{
    memcpy(d, s, b);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t b)
{
    memset(p, v, b);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t)
{
    std::lock_guard<std::mutex> lk(mem_mu);
    *f = mem_total() - mem_used;
    *t = mem_total();
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned)
{
    *s = reinterpret_cast<cudaStream_t>(new int(0));
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    delete reinterpret_cast<int *>(s);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
struct gmm_emu_event {
    double t;
};
cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = new gmm_emu_event{0};
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t)
{
    e->t = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = (float)((b->t - a->t) * 1e3);
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }
const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    default: return "cudaErrorUnknown";
    }
}
const char *cudaGetErrorString(cudaError_t e)
{
    return e == cudaErrorNoDevice           ? "no CUDA-capable device is detected"
           : e == cudaErrorMemoryAllocation ? "out of memory"
                                            : cudaGetErrorName(e);
}
}
