/*
 * util.c — the small shared services of the library: the thread's last error message, checked allocation,
 * files written whole or not at all (temporary files created exclusively, devices and FIFOs written in
 * place), the random number generator and the clock.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "gmm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Temporary files alive in this process, for gmm_atomic_remove_temporaries (a signal handler's cleanup):
 * a slot is claimed (0 -> 1) by compare-exchange, its path written, then published (1 -> 2); the handler
 * only unlinks published paths. Lock-free atomics and unlink are async-signal-safe. */
#define LIVE_TMP_SLOTS 16
static char live_tmp_path[LIVE_TMP_SLOTS][GMM_PATH_MAX];
static atomic_int live_tmp_state[LIVE_TMP_SLOTS];

/* Publishes path as a live temporary file; returns its slot, or -1 when every slot is taken (the file is
 * then not removed by a signal, nothing else changes). */
static int live_tmp_add(const char *path)
{
    size_t len = strlen(path);
    if (len >= GMM_PATH_MAX) return -1;
    for (int i = 0; i < LIVE_TMP_SLOTS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&live_tmp_state[i], &expected, 1)) {
            memcpy(live_tmp_path[i], path, len + 1);
            atomic_store(&live_tmp_state[i], 2);
            return i;
        }
    }
    return -1;
}

static void live_tmp_drop(int slot)
{
    if (slot >= 0 && slot < LIVE_TMP_SLOTS) atomic_store(&live_tmp_state[slot], 0);
}

void gmm_atomic_remove_temporaries(void)
{
    for (int i = 0; i < LIVE_TMP_SLOTS; i++)
        if (atomic_load(&live_tmp_state[i]) == 2) (void)unlink(live_tmp_path[i]);
}

/* Six characters from [a-z0-9] that differ from call to call and process to process (not a secret: the
 * exclusive creation is what makes the name safe, the randomness only avoids collisions). */
static void random_suffix(char out[7])
{
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmm_rng r;
    gmm_rng_seed(&r, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 12) ^
                         (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ULL));
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < 6; i++) out[i] = alphabet[gmm_rng_below(&r, sizeof alphabet - 1)];
    out[6] = '\0';
}

int gmm_create_exclusive(const char *prefix, const char *suffix, char *path_out, size_t cap)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        char rnd[7];
        random_suffix(rnd);
        int len = snprintf(path_out, cap, "%s%s%s", prefix, rnd, suffix);
        if (len < 0 || (size_t)len >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        /* O_EXCL: never opens an existing file, and never follows a symbolic link planted at the name */
        int fd = open(path_out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    errno = EEXIST;
    return -1;
}

/* 1 when path names something that must be written in place rather than replaced: an existing file that
 * is not a regular file (a device such as /dev/null, a FIFO, a socket), or a path that resolves into /dev
 * or /proc (/dev/stdout, /proc/self/fd/1, whatever they point at). */
static int write_in_place(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if (!S_ISREG(sb.st_mode)) return 1;
    char *real = realpath(path, NULL);
    int special = real && (strncmp(real, "/dev/", 5) == 0 || strncmp(real, "/proc/", 6) == 0);
    free(real);
    return special;
}

static gmm_status atomic_open_in_place(gmm_atomic_file *af, const char *path)
{
    struct stat sb;
    int regular = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC | (regular ? O_TRUNC : 0));
    if (fd < 0 || !(af->f = fdopen(fd, "wb"))) {
        gmm_status st = gmm_fail(GMM_ERR_IO, "cannot open %s for writing: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return st;
    }
    af->in_place = 1;
    return GMM_OK;
}

gmm_status gmm_atomic_open(gmm_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    af->slot = -1;
    size_t len = strlen(path);
    if (len + 16 > GMM_PATH_MAX) return gmm_fail(GMM_ERR_IO, "cannot create %s: path too long", path);
    af->path = gmm_xmalloc(len + 1);
    af->tmp_path = gmm_xmalloc(GMM_PATH_MAX);
    if (!af->path || !af->tmp_path) {
        free(af->path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return GMM_ERR_NOMEM;
    }
    memcpy(af->path, path, len + 1);
    gmm_status st = GMM_OK;
    if (write_in_place(path)) {
        af->tmp_path[0] = '\0';
        st = atomic_open_in_place(af, path);
    } else {
        /* the temporary file beside path: "<path>.tmp.XXXXXX", created exclusively */
        char prefix[GMM_PATH_MAX];
        snprintf(prefix, sizeof prefix, "%s.tmp.", path);
        int fd = gmm_create_exclusive(prefix, "", af->tmp_path, GMM_PATH_MAX);
        if (fd < 0) {
            st = gmm_fail(GMM_ERR_IO, "cannot create a temporary file beside %s: %s", path, strerror(errno));
        } else {
            af->slot = live_tmp_add(af->tmp_path);
            af->f = fdopen(fd, "wb");
            if (!af->f) {
                st = gmm_fail(GMM_ERR_IO, "cannot create %s: %s", af->tmp_path, strerror(errno));
                close(fd);
                unlink(af->tmp_path);
                live_tmp_drop(af->slot);
            }
        }
    }
    if (st != GMM_OK) {
        free(af->path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
    }
    return st;
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
    if (af->tmp_path && af->tmp_path[0]) unlink(af->tmp_path);
    live_tmp_drop(af->slot);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    af->slot = -1;
}

gmm_status gmm_atomic_commit(gmm_atomic_file *af)
{
    /* A write that failed earlier leaves ferror set and (writers stop at the first failure) its errno; else
     * the flush, which writes what is buffered, gives the reason. */
    int saved = ferror(af->f) ? errno : 0;
    errno = 0;
    int write_err = fflush(af->f) != 0 || ferror(af->f);
    if (write_err && !saved) saved = errno ? errno : EIO;
    int close_err = fclose(af->f) != 0;
    if (close_err && !write_err) saved = errno;
    af->f = NULL;
    if (write_err || close_err) {
        gmm_status st = gmm_fail(GMM_ERR_IO, "cannot write %s: %s", af->path, strerror(saved));
        gmm_atomic_abort(af);
        return st;
    }
    if (!af->in_place && rename(af->tmp_path, af->path) != 0) {
        gmm_status st = gmm_fail(GMM_ERR_IO, "cannot rename %s to %s: %s", af->tmp_path, af->path, strerror(errno));
        gmm_atomic_abort(af);
        return st;
    }
    live_tmp_drop(af->slot);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    af->slot = -1;
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
