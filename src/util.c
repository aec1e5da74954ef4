/*
 * util.c — the small shared services of the library: the thread's last error message, checked allocation,
 * files written whole or not at all, the random number generator and the clock.
 */
#include "gmm_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char gmm_error_buf[1024];

const char *gmm_strerror(gmm_status status)
{
    switch (status) {
    case GMM_OK: return "success";
    case GMM_ERR_INVALID_ARG: return "invalid argument";
    case GMM_ERR_NOMEM: return "out of memory";
    case GMM_ERR_IO: return "input/output error";
    case GMM_ERR_PARSE: return "malformed input";
    case GMM_ERR_NOT_PD: return "covariance not positive definite";
    case GMM_ERR_COLLAPSED: return "component collapsed";
    case GMM_ERR_TOO_FEW_POINTS: return "fewer points than components";
    case GMM_ERR_CUDA: return "CUDA error";
    case GMM_ERR_NO_DEVICE: return "backend not available";
    case GMM_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

const char *gmm_last_error(void) { return gmm_error_buf; }

void gmm_clear_error(void) { gmm_error_buf[0] = '\0'; }

gmm_status gmm_fail(gmm_status status, const char *fmt, ...)
{
    /* Messages quote text from input files: control bytes are shown as \xNN so that a message is one line
     * and cannot drive a terminal, whatever the file held. */
    char raw[sizeof gmm_error_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const char *p = raw; *p && o + 5 < sizeof gmm_error_buf; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) {
            gmm_error_buf[o++] = '\\';
            gmm_error_buf[o++] = 'x';
            gmm_error_buf[o++] = hex[c >> 4];
            gmm_error_buf[o++] = hex[c & 15];
        } else {
            gmm_error_buf[o++] = (char)c;
        }
    }
    gmm_error_buf[o] = '\0';
    return status;
}

void *gmm_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) gmm_fail(GMM_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *gmm_xcalloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) {
        gmm_fail(GMM_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) gmm_fail(GMM_ERR_NOMEM, "out of memory allocating %zu bytes", count * size);
    return p;
}

void gmm_free(void *p) { free(p); }

/* ------------------------------------------------------------------------------------------ safe output */

gmm_status gmm_atomic_open(gmm_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    size_t len = strlen(path);
    af->path = gmm_xmalloc(len + 1);
    af->tmp_path = gmm_xmalloc(len + 32);
    if (!af->path || !af->tmp_path) {
        free(af->path);
        free(af->tmp_path);
        return GMM_ERR_NOMEM;
    }
    memcpy(af->path, path, len + 1);
    snprintf(af->tmp_path, len + 32, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) {
        gmm_status st = gmm_fail(GMM_ERR_IO, "cannot create %s: %s", af->tmp_path, strerror(errno));
        free(af->path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return st;
    }
    return GMM_OK;
}

char *gmm_path_join(const char *dir, const char *name)
{
    size_t ld = strlen(dir), ln = strlen(name);
    int slash = ld > 0 && dir[ld - 1] != '/';
    char *p = gmm_xmalloc(ld + (size_t)slash + ln + 1);
    if (!p) return NULL;
    memcpy(p, dir, ld);
    if (slash) p[ld] = '/';
    memcpy(p + ld + (size_t)slash, name, ln + 1);
    return p;
}

gmm_status gmm_atomic_open_in(gmm_atomic_file *af, const char *dir, const char *name)
{
    char *path = gmm_path_join(dir, name);
    if (!path) return GMM_ERR_NOMEM;
    gmm_status st = gmm_atomic_open(af, path);
    free(path);
    return st;
}

void gmm_atomic_abort(gmm_atomic_file *af)
{
    if (af->f) fclose(af->f);
    if (af->tmp_path) remove(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

gmm_status gmm_atomic_commit(gmm_atomic_file *af)
{
    int write_err = ferror(af->f) || fflush(af->f) != 0;
    int saved = errno;
    int close_err = fclose(af->f) != 0;
    af->f = NULL;
    if (write_err || close_err) {
        gmm_status st = gmm_fail(GMM_ERR_IO, "cannot write %s: %s", af->path,
                                 strerror(write_err ? saved : errno));
        gmm_atomic_abort(af);
        return st;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        gmm_status st = gmm_fail(GMM_ERR_IO, "cannot rename %s to %s: %s", af->tmp_path, af->path,
                                 strerror(errno));
        gmm_atomic_abort(af);
        return st;
    }
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    return GMM_OK;
}

/* ------------------------------------------------------------------------------------------------- rng */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gmm_rng_seed(gmm_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gmm_rng_next(gmm_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double gmm_rng_uniform(gmm_rng *r) { return (double)(gmm_rng_next(r) >> 11) * 0x1.0p-53; }

double gmm_rng_normal(gmm_rng *r)
{
    double u, v, s;
    do {
        u = 2.0 * gmm_rng_uniform(r) - 1.0;
        v = 2.0 * gmm_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

uint64_t gmm_rng_below(gmm_rng *r, uint64_t n)
{
    /* Lemire-style rejection on the low range keeps the draw unbiased. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = gmm_rng_next(r);
        if (x >= threshold) return x % n;
    }
}

double gmm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
