/*
 * gmm_hash.h — the counter-based uniform draw behind the "random" initialization, one definition for the
 * CPU backend (C, src/backend_cpu.c) and the CUDA kernels (kernels/gmm_cuda_kernels.cuh): the
 * responsibility of component c for point i depends only on (seed, i, c), so no (n, k) array is stored and
 * every backend and thread count draws the same values.
 */
#ifndef GMM_HASH_H
#define GMM_HASH_H

#include <stdint.h>

#if defined(__CUDACC__) || defined(GMM_CUDA_EMULATE)
#define GMM_HASH_HD __host__ __device__
#else
#define GMM_HASH_HD
#endif

/* splitmix64's finalizer of (seed, i, c): a uniform double in (0, 1] with 53 random bits. */
static inline GMM_HASH_HD double gmm_hash_uniform(uint64_t seed, uint64_t i, uint64_t c)
{
    uint64_t z = seed ^ (i * 0x9e3779b97f4a7c15ULL) ^ (c * 0xd1b54a32d192ed03ULL);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 1.0) * 0x1.0p-53;
}

#endif /* GMM_HASH_H */
