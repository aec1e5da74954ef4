/*
 * backend_cpu.c — the CPU reference backend: the E-step with sufficient statistics (one read of the data
 * per EM iteration), the predict pass and the initializations' passes (k-means++, Lloyd, initial
 * responsibilities), in double precision.
 *
 * Layout of the work: the points are cut into fixed chunks whose size depends only on n (never on the
 * thread count); OpenMP threads take chunks, each chunk accumulates its statistics in double into its
 * thread's own accumulator, and the accumulators are added to the total in chunk order (an OpenMP ordered
 * region: chunk c is added only after chunks 0..c-1). The same input therefore gives bit-identical
 * statistics with 1 thread or 64, and the live partial statistics are one per thread, never one per chunk.
 *
 * Inside a chunk, points are processed in blocks of GMM_CPU_BLOCK, transposed to feature-major scratch so
 * that every inner loop runs over the points of the block and vectorizes (the exp calls go to glibc's
 * vector exp, libmvec, where the compiler supports it).
 *
 * Numerics (docs/DESIGN.md): log N(x | mu_k, Sigma_k) = -1/2 (d log 2pi + ||(x - mu_k) U_k||^2) + sum log diag U_k
 * with the precision Cholesky factor U_k; responsibilities by log-sum-exp with the per-point maximum
 * subtracted; second moments around the current means. Diag and spherical models read only the diagonal of
 * U_k and accumulate only the diagonal second moments (O(k d) work per point): the same floating-point
 * operations the full formulas perform on their nonzero terms, so the same bits.
 *
 * Full and tied models from GMM_BLAS_MIN_D features on, in builds with OpenBLAS (GMM_HAVE_OPENBLAS), do a
 * block's products through it: the Mahalanobis terms as U_k^T (x - mu_k) (dtrmm), the second moments as
 * W W^T with W = sqrt(r_k) (x - mu_k) (dsyrk). OpenBLAS runs single-threaded inside our threads during a
 * pass (its thread count is set to 1 and restored after), and every thread's buffers have the same
 * alignment, so a block's products do not depend on which thread computes them: the statistics stay
 * bit-identical for any thread count.
 */
#include "gmm_internal.h"
#include "gmm_hash.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(GMM_HAVE_OPENBLAS)
#include <cblas.h>
#endif

#if defined(GMM_HAVE_LIBMVEC) && defined(__GNUC__) && !defined(__clang__)
/* Let GCC call libmvec's vector exp and log from `omp simd` loops (glibc declares them only under
 * -ffast-math). */
__attribute__((simd("notinbranch"))) double exp(double);
__attribute__((simd("notinbranch"))) double log(double);
#endif

#define GMM_CPU_BLOCK 64
#define GMM_CPU_MIN_CHUNK 4096
#define GMM_CPU_MAX_CHUNKS 512
#define GMM_BLAS_MIN_D 64
#define GMM_ALIGN 64 /* bytes: the alignment of every scratch buffer */

static const double LOG_2PI = 1.8378770664093454835606594728112;
static const double EXP_ARG_MIN = -708.0; /* exp(-708) = 3.3e-308, the smallest normal double's range */

/* Per-thread scratch, sized for k components in d dimensions. */
typedef struct cpu_scratch {
    double *xt;   /* (d, B) the block, feature-major */
    double *dx;   /* (d, B) x - mean_k */
    double *rd;   /* (d, B) r_k * (x - mean_k) */
    double *logp; /* (k, B) weighted log-densities, then responsibilities */
    double *lse;  /* (B) per-point log-normalizer */
    double *acc;  /* (acc_size) the statistics of the chunk this thread works on */
} cpu_scratch;

typedef struct cpu_impl {
    size_t chunk; /* points per chunk */
    size_t n_chunks;
    size_t scratch_k; /* k the scratch was sized for (0: none) */
    size_t acc_len;   /* doubles in each scratch's acc */
    int n_scratch;
    cpu_scratch *scratch;
    /* state of the initialization passes (NULL until used, freed by init_end) */
    double *pt;     /* (n) k-means++: squared distance to the closest seed; Lloyd: to the own center */
    double *cumsum; /* (n) running sums of pt for the k-means++ draw, valid while cumsum_ok */
    int cumsum_ok;
    int *labels;      /* (n) Lloyd's labels */
    double *ipart;    /* per-chunk partial sums of the initialization passes */
    size_t ipart_len; /* doubles in ipart */
} cpu_impl;

static void scratch_free(cpu_impl *c)
{
    for (int t = 0; t < c->n_scratch; t++) {
        free(c->scratch[t].xt);
        free(c->scratch[t].dx);
        free(c->scratch[t].rd);
        free(c->scratch[t].logp);
        free(c->scratch[t].lse);
        free(c->scratch[t].acc);
    }
    free(c->scratch);
    c->scratch = NULL;
    c->n_scratch = 0;
    c->scratch_k = 0;
    c->acc_len = 0;
}

/* Whether a covariance type needs only the diagonal second moments (and the diagonal of U_k). */
static int diag_only(gmm_covariance_type t) { return t == GMM_COV_DIAG || t == GMM_COV_SPHERICAL; }

/* Whether model m's products go through OpenBLAS (depends on the model only, never on the threads). */
static int use_blas(const gmm_model *m)
{
#if defined(GMM_HAVE_OPENBLAS)
    return !diag_only(m->cov_type) && m->d >= GMM_BLAS_MIN_D;
#else
    (void)m;
    return 0;
#endif
}

/* count doubles aligned to GMM_ALIGN bytes (free() them), or NULL with GMM_ERR_NOMEM recorded. */
static double *aligned_doubles(size_t count)
{
    void *p = NULL;
    size_t bytes = (count ? count : 1) * sizeof(double);
    bytes = (bytes + GMM_ALIGN - 1) / GMM_ALIGN * GMM_ALIGN;
    if (posix_memalign(&p, GMM_ALIGN, bytes) != 0) {
        gmm_fail(GMM_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    return p;
}

/* Doubles of one chunk's statistics: nk (k), sk (k, d), the second moments (k, d, d) (upper triangle
 * filled) or, when diag, their diagonals (k, d), and the log-likelihood. */
static size_t acc_size(size_t k, size_t d, int diag) { return k * (1 + d + (diag ? d : d * d)) + 1; }

static int scratch_threads(const gmm_backend *b) { return b->n_threads > 0 ? b->n_threads : omp_get_max_threads(); }

/* Makes sure every thread's scratch fits k components and an accumulator of acc_len doubles (allocated
 * once per model size, not per iteration). */
static gmm_status ensure_buffers(gmm_backend *b, size_t k, size_t acc_len)
{
    cpu_impl *c = b->impl;
    if (c->scratch_k == k && c->acc_len >= acc_len) return GMM_OK;
    scratch_free(c);
    size_t d = b->d;
    int nt = scratch_threads(b);
    c->scratch = gmm_xcalloc((size_t)nt, sizeof *c->scratch);
    if (!c->scratch) return GMM_ERR_NOMEM;
    c->n_scratch = nt;
    for (int t = 0; t < nt; t++) {
        cpu_scratch *s = &c->scratch[t];
        s->xt = aligned_doubles(d * GMM_CPU_BLOCK);
        s->dx = aligned_doubles(d * GMM_CPU_BLOCK);
        s->rd = aligned_doubles(d * GMM_CPU_BLOCK);
        s->logp = aligned_doubles(k * GMM_CPU_BLOCK);
        s->lse = aligned_doubles(GMM_CPU_BLOCK);
        s->acc = aligned_doubles(acc_len);
        if (!s->xt || !s->dx || !s->rd || !s->logp || !s->lse || !s->acc) {
            scratch_free(c);
            return GMM_ERR_NOMEM;
        }
    }
    c->scratch_k = k;
    c->acc_len = acc_len;
    return GMM_OK;
}

/* Loads points [i0, i0 + nb) of x (n, d) into xt (d, B), feature-major, as doubles (float data are widened
 * here, exactly). */
static void load_block(gmm_data x, size_t d, size_t i0, size_t nb, double *xt)
{
    if (x.type == GMM_ELEM_FLOAT) {
        const float *xf = x.p;
        for (size_t b = 0; b < nb; b++)
            for (size_t j = 0; j < d; j++) xt[j * GMM_CPU_BLOCK + b] = (double)xf[(i0 + b) * d + j];
        return;
    }
    const double *xd = x.p;
    for (size_t b = 0; b < nb; b++)
        for (size_t j = 0; j < d; j++) xt[j * GMM_CPU_BLOCK + b] = xd[(i0 + b) * d + j];
}

/* dx (d, B) = xt - mean. */
static void block_diff(const double *xt, const double *mean, size_t d, size_t nb, double *dx)
{
    for (size_t j = 0; j < d; j++) {
        const double mj = mean[j];
        const double *xr = xt + j * GMM_CPU_BLOCK;
        double *dr = dx + j * GMM_CPU_BLOCK;
#pragma omp simd
        for (size_t b = 0; b < nb; b++) dr[b] = xr[b] - mj;
    }
}

/* lp (B) = ||(x_b - mean) U||^2 for a full (upper-triangular) U: y_j = sum_{i <= j} dx_i U[i][j]. */
static void maha_full(const double *xt, const double *mean, const double *u, size_t d, size_t nb, cpu_scratch *s,
                      double *lp)
{
    block_diff(xt, mean, d, nb, s->dx);
#pragma omp simd
    for (size_t b = 0; b < nb; b++) lp[b] = 0.0;
    double *y = s->rd; /* reuse rd's first row as y */
    for (size_t j = 0; j < d; j++) {
#pragma omp simd
        for (size_t b = 0; b < nb; b++) y[b] = 0.0;
        for (size_t i = 0; i <= j; i++) {
            const double uij = u[i * d + j];
            const double *dr = s->dx + i * GMM_CPU_BLOCK;
#pragma omp simd
            for (size_t b = 0; b < nb; b++) y[b] += dr[b] * uij;
        }
#pragma omp simd
        for (size_t b = 0; b < nb; b++) lp[b] += y[b] * y[b];
    }
}

/* lp (B) = ||(x_b - mean) U||^2 for a diagonal U with diagonal udiag (d): y_j = dx_j U[j][j], the one
 * nonzero term of maha_full's sum (its zero terms add exact zeros), added in the same order j = 0, 1, ...,
 * so both give the same bits on a diagonal U. */
static void maha_diag(const double *xt, const double *mean, const double *udiag, size_t d, size_t nb, double *lp)
{
    enum { G = 16 }; /* points whose sums stay in registers while the features stream by */
    size_t b0 = 0;
    for (; b0 + G <= nb; b0 += G) {
        double q[G] = {0.0};
        for (size_t j = 0; j < d; j++) {
            const double mj = mean[j], uj = udiag[j], *xr = xt + j * GMM_CPU_BLOCK + b0;
#pragma omp simd
            for (size_t b = 0; b < G; b++) {
                const double y = (xr[b] - mj) * uj;
                q[b] += y * y;
            }
        }
        memcpy(lp + b0, q, sizeof q);
    }
    for (size_t b = b0; b < nb; b++) { /* the block's last points */
        double q = 0.0;
        for (size_t j = 0; j < d; j++) {
            const double y = (xt[j * GMM_CPU_BLOCK + b] - mean[j]) * udiag[j];
            q += y * y;
        }
        lp[b] = q;
    }
}

#if defined(GMM_HAVE_OPENBLAS)
/* maha_full through OpenBLAS: Y (d, nb) = U^T (x - mean) in place of dx (dtrmm), lp = column sums of Y^2. */
static void maha_blas(const double *xt, const double *mean, const double *u, size_t d, size_t nb, cpu_scratch *s,
                      double *lp)
{
    block_diff(xt, mean, d, nb, s->dx);
    cblas_dtrmm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, (int)d, (int)nb, 1.0, u, (int)d,
                s->dx, GMM_CPU_BLOCK);
#pragma omp simd
    for (size_t b = 0; b < nb; b++) lp[b] = 0.0;
    for (size_t j = 0; j < d; j++) {
        const double *y = s->dx + j * GMM_CPU_BLOCK;
#pragma omp simd
        for (size_t b = 0; b < nb; b++) lp[b] += y[b] * y[b];
    }
}
#endif

/* What a pass computes once from the model: log w (k) and, for diag and spherical models, the diagonals of
 * the precision factors (k, d) (NULL otherwise). */
typedef struct pass_const {
    double *log_w;
    double *udiag;
} pass_const;

/* logp (k, B): log w_k + log N(x_b | mu_k, Sigma_k) for the block in xt; lse (B): log sum_k exp(logp).
 * On return logp holds the responsibilities when want_resp is set, the weighted log-densities otherwise. */
static void block_estep(const gmm_model *m, const pass_const *pc, const double *xt, size_t nb, cpu_scratch *s,
                        int want_resp)
{
    const double *log_w = pc->log_w;
    const size_t d = m->d, k = m->k;
    const int diag = diag_only(m->cov_type), blas = use_blas(m);
    (void)blas; /* unused without OpenBLAS */
    double *logp = s->logp;
    for (size_t c = 0; c < k; c++) {
        const double *u = m->prec_chol + c * d * d;
        double *lp = logp + c * GMM_CPU_BLOCK;
        const double base = log_w[c] + m->log_det_chol[c] - 0.5 * (double)d * LOG_2PI;
        if (diag) maha_diag(xt, m->means + c * d, pc->udiag + c * d, d, nb, lp);
#if defined(GMM_HAVE_OPENBLAS)
        else if (blas)
            maha_blas(xt, m->means + c * d, u, d, nb, s, lp);
#endif
        else
            maha_full(xt, m->means + c * d, u, d, nb, s, lp);
#pragma omp simd
        for (size_t b = 0; b < nb; b++) lp[b] = base - 0.5 * lp[b];
    }
    double *lse = s->lse;
#pragma omp simd
    for (size_t b = 0; b < nb; b++) lse[b] = logp[b];
    for (size_t c = 1; c < k; c++) {
        const double *lp = logp + c * GMM_CPU_BLOCK;
#pragma omp simd
        for (size_t b = 0; b < nb; b++) lse[b] = lp[b] > lse[b] ? lp[b] : lse[b];
    }
    /* sum of exp(logp - max) in rd's first row, then lse = max + log(sum). Exponents are clamped at
     * EXP_ARG_MIN (exp = 3.3e-308, nothing next to the maximum's term of 1): below it the vector exp leaves its fast
     * path for a scalar underflow path per lane (bench/RESULTS.md, CPU "Observations"). */
    double *sum = s->rd, *arg = s->dx;
#pragma omp simd
    for (size_t b = 0; b < nb; b++) sum[b] = 0.0;
    for (size_t c = 0; c < k; c++) {
        const double *lp = logp + c * GMM_CPU_BLOCK;
#pragma omp simd
        for (size_t b = 0; b < nb; b++) arg[b] = lp[b] - lse[b] < EXP_ARG_MIN ? EXP_ARG_MIN : lp[b] - lse[b];
#pragma omp simd
        for (size_t b = 0; b < nb; b++) sum[b] += exp(arg[b]);
    }
#pragma omp simd
    for (size_t b = 0; b < nb; b++) lse[b] += log(sum[b]);
    if (!want_resp) return;
    /* Responsibilities below exp(EXP_ARG_MIN) are 0 (exp underflows to 0 a little further down anyway), so
     * a component with none of the block's points adds exact zeros to the statistics and is skipped. */
    for (size_t c = 0; c < k; c++) {
        double *lp = logp + c * GMM_CPU_BLOCK;
#pragma omp simd
        for (size_t b = 0; b < nb; b++) arg[b] = lp[b] - lse[b] < EXP_ARG_MIN ? EXP_ARG_MIN : lp[b] - lse[b];
#pragma omp simd
        for (size_t b = 0; b < nb; b++) lp[b] = exp(arg[b]);
#pragma omp simd
        for (size_t b = 0; b < nb; b++) lp[b] = arg[b] <= EXP_ARG_MIN ? 0.0 : lp[b];
    }
}

/* Adds the block's statistics (responsibilities in s->logp) into acc (acc_size(k, d, diag) doubles): nk,
 * sk, the second moments (upper triangles, or diagonals when diag), loglik. */
static void block_accumulate(const gmm_model *m, const double *xt, size_t nb, cpu_scratch *s, int diag, double *acc)
{
    const size_t d = m->d, k = m->k, tlen = diag ? d : d * d;
    const int blas = use_blas(m);
    (void)blas; /* unused without OpenBLAS */
    double *nk = acc, *sk = acc + k, *tk = acc + k + k * d, *ll = acc + k * (1 + d + tlen);
    double l = 0.0;
#pragma omp simd reduction(+ : l)
    for (size_t b = 0; b < nb; b++) l += s->lse[b];
    *ll += l;
    for (size_t c = 0; c < k; c++) {
        const double *r = s->logp + c * GMM_CPU_BLOCK;
        double rs = 0.0;
#pragma omp simd reduction(+ : rs)
        for (size_t b = 0; b < nb; b++) rs += r[b];
        nk[c] += rs;
        if (rs == 0.0) continue; /* every r is 0 (r >= 0): the block adds exact zeros to S_k and T_k */
        if (diag) { /* one read of the block per component: S_k and the diagonal of T_k, summed as the full
                     * path sums them (same bits) */
            const double *mean = m->means + c * d;
            for (size_t i = 0; i < d; i++) {
                const double *xr = xt + i * GMM_CPU_BLOCK, mi = mean[i];
                double si = 0.0, ti = 0.0;
#pragma omp simd reduction(+ : si, ti)
                for (size_t b = 0; b < nb; b++) {
                    const double dv = xr[b] - mi, rdv = r[b] * dv;
                    si += rdv;
                    ti += rdv * dv;
                }
                sk[c * d + i] += si;
                tk[c * d + i] += ti;
            }
            continue;
        }
        block_diff(xt, m->means + c * d, d, nb, s->dx);
        for (size_t i = 0; i < d; i++) {
            const double *dr = s->dx + i * GMM_CPU_BLOCK;
            double *rdr = s->rd + i * GMM_CPU_BLOCK;
            double si = 0.0;
#pragma omp simd reduction(+ : si)
            for (size_t b = 0; b < nb; b++) {
                rdr[b] = r[b] * dr[b];
                si += rdr[b];
            }
            sk[c * d + i] += si;
        }
        double *t = tk + c * tlen;
#if defined(GMM_HAVE_OPENBLAS)
        if (blas) { /* the upper triangle of t += W W^T, W = sqrt(r) dx (d, nb), in place of rd */
            for (size_t i = 0; i < d; i++) {
                const double *dr = s->dx + i * GMM_CPU_BLOCK;
                double *w = s->rd + i * GMM_CPU_BLOCK;
#pragma omp simd
                for (size_t b = 0; b < nb; b++) w[b] = sqrt(r[b]) * dr[b];
            }
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)d, (int)nb, 1.0, s->rd, GMM_CPU_BLOCK, 1.0, t,
                        (int)d);
            continue;
        }
#endif
        for (size_t i = 0; i < d; i++) {
            const double *rdr = s->rd + i * GMM_CPU_BLOCK;
            for (size_t j = i; j < d; j++) {
                const double *dr = s->dx + j * GMM_CPU_BLOCK;
                double tij = 0.0;
#pragma omp simd reduction(+ : tij)
                for (size_t b = 0; b < nb; b++) tij += rdr[b] * dr[b];
                t[i * d + j] += tij;
            }
        }
    }
}

/* What one pass does with each block after its E-step: ch is the block's chunk, i0 its first point, nb
 * its size; the block's weighted log-densities (or responsibilities) are in s->logp, its log-normalizers
 * in s->lse. */
typedef void (*block_fn)(void *ctx, const gmm_model *m, size_t ch, size_t i0, size_t nb, cpu_scratch *s);
/* What a pass does once a chunk's blocks are all done, called for chunk 0, 1, 2, ... in that order. */
typedef void (*chunk_fn)(void *ctx, const gmm_model *m, cpu_scratch *s);

/* The blocks of chunk ch in order: each loaded, E-stepped and handed to fn. */
static void pass_chunk(const gmm_backend *b, const gmm_model *m, const pass_const *pc, size_t ch, int want_resp,
                       block_fn fn, void *ctx, cpu_scratch *s)
{
    const cpu_impl *c = b->impl;
    size_t i_end = (ch + 1) * c->chunk;
    if (i_end > b->n) i_end = b->n;
    for (size_t i0 = ch * c->chunk; i0 < i_end; i0 += GMM_CPU_BLOCK) {
        size_t nb = i_end - i0 < GMM_CPU_BLOCK ? i_end - i0 : GMM_CPU_BLOCK;
        load_block(b->x, m->d, i0, nb, s->xt);
        block_estep(m, pc, s->xt, nb, s, want_resp);
        fn(ctx, m, ch, i0, nb, s);
    }
}

/* One parallel pass over the data with model m: chunks to threads (pass_chunk), then, when done is given,
 * done for each chunk in chunk order (a thread whose chunk is done waits for the chunks before it).
 * acc_len: the doubles of each thread's accumulator. */
static gmm_status run_pass(gmm_backend *b, const gmm_model *m, int want_resp, size_t acc_len, block_fn fn,
                           chunk_fn done, void *ctx)
{
    cpu_impl *c = b->impl;
    const size_t k = m->k;
    gmm_status st = ensure_buffers(b, k, acc_len);
    if (st != GMM_OK) return st;
    const size_t d = m->d;
    const int diag = diag_only(m->cov_type);
    pass_const pc = {gmm_xmalloc(k * sizeof(double)), diag ? gmm_xmalloc(k * d * sizeof(double)) : NULL};
    if (!pc.log_w || (diag && !pc.udiag)) {
        free(pc.log_w);
        free(pc.udiag);
        return GMM_ERR_NOMEM;
    }
    for (size_t cc = 0; cc < k; cc++) pc.log_w[cc] = log(m->weights[cc]);
    for (size_t cc = 0; diag && cc < k; cc++)
        for (size_t j = 0; j < d; j++) pc.udiag[cc * d + j] = m->prec_chol[cc * d * d + j * d + j];
    const long n_chunks = (long)c->n_chunks;
#if defined(GMM_HAVE_OPENBLAS)
    const int blas_threads = openblas_get_num_threads();
    if (use_blas(m)) openblas_set_num_threads(1);
#endif
    if (done) {
#pragma omp parallel for ordered schedule(dynamic, 1) num_threads(c->n_scratch)
        for (long ch = 0; ch < n_chunks; ch++) {
            cpu_scratch *s = &c->scratch[omp_get_thread_num()];
            pass_chunk(b, m, &pc, (size_t)ch, want_resp, fn, ctx, s);
#pragma omp ordered
            done(ctx, m, s);
        }
    } else {
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->n_scratch)
        for (long ch = 0; ch < n_chunks; ch++)
            pass_chunk(b, m, &pc, (size_t)ch, want_resp, fn, ctx, &c->scratch[omp_get_thread_num()]);
    }
#if defined(GMM_HAVE_OPENBLAS)
    if (use_blas(m)) openblas_set_num_threads(blas_threads);
#endif
    free(pc.log_w);
    free(pc.udiag);
    return GMM_OK;
}

/* The stats pass's state: the chunk size and the statistics' shape. */
typedef struct stats_pass {
    const cpu_impl *c;
    int diag;
    gmm_stats *out;
} stats_pass;

/* stats pass, per block: accumulates into the thread's acc (zeroed at its chunk's first block). */
static void stats_block(void *ctx, const gmm_model *m, size_t ch, size_t i0, size_t nb, cpu_scratch *s)
{
    const stats_pass *p = ctx;
    if (i0 == ch * p->c->chunk) memset(s->acc, 0, acc_size(m->k, m->d, p->diag) * sizeof *s->acc);
    block_accumulate(m, s->xt, nb, s, p->diag, s->acc);
}

/* Adds one chunk's statistics acc (acc_size(k, d, diag) doubles) into out. */
static void add_chunk_stats(const double *acc, int diag, gmm_stats *out)
{
    const size_t k = out->k, d = out->d, tlen = diag ? d : d * d;
    for (size_t i = 0; i < k; i++) out->nk[i] += acc[i];
    for (size_t i = 0; i < k * d; i++) out->sk[i] += acc[k + i];
    const double *t = acc + k + k * d;
    if (diag) {
        for (size_t c = 0; c < k; c++)
            for (size_t i = 0; i < d; i++) out->tk[c * d * d + i * d + i] += t[c * d + i];
    } else {
        for (size_t i = 0; i < k * d * d; i++) out->tk[i] += t[i];
    }
    out->loglik += acc[k * (1 + d + tlen)];
}

/* stats pass, per chunk in chunk order: the chunk's statistics into the total. */
static void stats_chunk_done(void *ctx, const gmm_model *m, cpu_scratch *s)
{
    stats_pass *p = ctx;
    (void)m;
    add_chunk_stats(s->acc, p->diag, p->out);
}

/* Mirrors the upper triangles of the second moments into the lower ones. */
static void mirror_moments(gmm_stats *out)
{
    const size_t k = out->k, d = out->d;
    for (size_t cc = 0; cc < k; cc++) {
        double *t = out->tk + cc * d * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < i; j++) t[i * d + j] = t[j * d + i];
    }
}

static gmm_status cpu_stats(gmm_backend *b, const gmm_model *m, gmm_stats *out)
{
    cpu_impl *c = b->impl;
    stats_pass p = {c, diag_only(m->cov_type), out};
    gmm_stats_zero(out);
    gmm_status st = run_pass(b, m, 1, acc_size(m->k, m->d, p.diag), stats_block, stats_chunk_done, &p);
    if (st != GMM_OK) return st;
    if (!p.diag) mirror_moments(out); /* diag: the off-diagonal moments stay 0 */
    return GMM_OK;
}

/* Outputs of the predict pass, each optional. */
typedef struct predict_out {
    double *logp;
    int *labels;
    double *resp;
} predict_out;

static void predict_block(void *ctx, const gmm_model *m, size_t ch, size_t i0, size_t nb, cpu_scratch *s)
{
    const predict_out *o = ctx;
    const size_t k = m->k;
    (void)ch;
    for (size_t bb = 0; bb < nb; bb++) {
        if (o->logp) o->logp[i0 + bb] = s->lse[bb];
        if (o->labels) { /* first maximum, as numpy's argmax */
            size_t best = 0;
            double bv = s->logp[bb];
            for (size_t cc = 1; cc < k; cc++) {
                double v = s->logp[cc * GMM_CPU_BLOCK + bb];
                if (v > bv) {
                    bv = v;
                    best = cc;
                }
            }
            o->labels[i0 + bb] = (int)best;
        }
        if (o->resp)
            for (size_t cc = 0; cc < k; cc++)
                o->resp[(i0 + bb) * k + cc] = exp(s->logp[cc * GMM_CPU_BLOCK + bb] - s->lse[bb]);
    }
}

static gmm_status cpu_predict(gmm_backend *b, const gmm_model *m, double *logp, int *labels, double *resp)
{
    predict_out o = {logp, labels, resp};
    return run_pass(b, m, 0, 1, predict_block, NULL, &o);
}

/* --------------------------------------------------------------------------- initialization passes */

/* These keep their own chunking (INIT_CHUNK points, depending on n only) and add per-chunk partials in
 * chunk order, so their results do not depend on the thread count either. */
#define INIT_CHUNK 16384

static size_t init_chunks(size_t n) { return (n + INIT_CHUNK - 1) / INIT_CHUNK; }
static int init_threads(const gmm_backend *b) { return scratch_threads(b); }

/* Makes sure the per-point distance array and `per_chunk` partial doubles per chunk exist. */
static gmm_status init_buffers(gmm_backend *b, size_t per_chunk)
{
    cpu_impl *c = b->impl;
    if (!c->pt && !(c->pt = gmm_xmalloc((b->n ? b->n : 1) * sizeof *c->pt))) return GMM_ERR_NOMEM;
    const size_t len = init_chunks(b->n) * per_chunk + 1;
    if (c->ipart_len < len) {
        free(c->ipart);
        c->ipart_len = 0;
        if (!(c->ipart = gmm_xmalloc(len * sizeof *c->ipart))) return GMM_ERR_NOMEM;
        c->ipart_len = len;
    }
    return GMM_OK;
}

static gmm_status cpu_pp_potential(gmm_backend *b, const double *cand, int reset, int update, double *potential)
{
    cpu_impl *c = b->impl;
    if (!reset && !c->pt) return gmm_fail(GMM_ERR_INVALID_ARG, "pp_potential without reset before any reset");
    gmm_status st = init_buffers(b, 1);
    if (st != GMM_OK) return st;
    const size_t n = b->n, d = b->d;
    const gmm_data x = b->x;
    double *closest = c->pt, *partial = c->ipart;
    double *rows = gmm_xmalloc((size_t)init_threads(b) * d * sizeof *rows); /* a row buffer per thread */
    if (!rows) return GMM_ERR_NOMEM;
    if (reset)
        for (size_t i = 0; i < n; i++) closest[i] = INFINITY;
    if (update) c->cumsum_ok = 0;
    const long nch = (long)init_chunks(n);
#pragma omp parallel for schedule(static) num_threads(init_threads(b))
    for (long ch = 0; ch < nch; ch++) {
        size_t i1 = ((size_t)ch + 1) * INIT_CHUNK;
        if (i1 > n) i1 = n;
        double s = 0.0, *row = rows + (size_t)omp_get_thread_num() * d;
        for (size_t i = (size_t)ch * INIT_CHUNK; i < i1; i++) {
            double dd = gmm_sqdist(gmm_data_row(x, i, d, row), cand, d);
            double v = dd < closest[i] ? dd : closest[i];
            if (update) closest[i] = v;
            s += v;
        }
        partial[ch] = s;
    }
    free(rows);
    double total = 0.0;
    for (long ch = 0; ch < nch; ch++) total += partial[ch];
    *potential = total;
    return GMM_OK;
}

static gmm_status cpu_pp_draw(gmm_backend *b, double target, size_t *index)
{
    cpu_impl *c = b->impl;
    const size_t n = b->n;
    if (!c->pt) return gmm_fail(GMM_ERR_INVALID_ARG, "pp_draw before pp_potential");
    if (!c->cumsum && !(c->cumsum = gmm_xmalloc((n ? n : 1) * sizeof *c->cumsum))) return GMM_ERR_NOMEM;
    if (!c->cumsum_ok) {
        double run = 0.0;
        for (size_t i = 0; i < n; i++) c->cumsum[i] = (run += c->pt[i]);
        c->cumsum_ok = 1;
    }
    /* binary search for the first cumsum[i] >= target, clipped to n - 1 */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->cumsum[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    *index = lo < n ? lo : n - 1;
    return GMM_OK;
}

static gmm_status cpu_lloyd_assign(gmm_backend *b, size_t k, const double *centers, int reset, double *means,
                                   double *counts, size_t *changed)
{
    cpu_impl *c = b->impl;
    const size_t n = b->n, d = b->d, ps = k * d + k + 1;
    if (!reset && !c->labels) return gmm_fail(GMM_ERR_INVALID_ARG, "lloyd_assign without reset before any reset");
    gmm_status st = init_buffers(b, ps);
    if (st != GMM_OK) return st;
    if (!c->labels && !(c->labels = gmm_xmalloc((n ? n : 1) * sizeof *c->labels))) return GMM_ERR_NOMEM;
    int *labels = c->labels;
    double *dist = c->pt, *partials = c->ipart;
    const gmm_data x = b->x;
    double *rows = gmm_xmalloc((size_t)init_threads(b) * d * sizeof *rows); /* a row buffer per thread */
    if (!rows) return GMM_ERR_NOMEM;
    if (reset)
        for (size_t i = 0; i < n; i++) labels[i] = -1;
    c->cumsum_ok = 0;
    const long nch = (long)init_chunks(n);
#pragma omp parallel for schedule(static) num_threads(init_threads(b))
    for (long ch = 0; ch < nch; ch++) {
        double *p = partials + (size_t)ch * ps, *row = rows + (size_t)omp_get_thread_num() * d;
        memset(p, 0, ps * sizeof *p);
        size_t i1 = ((size_t)ch + 1) * INIT_CHUNK;
        if (i1 > n) i1 = n;
        for (size_t i = (size_t)ch * INIT_CHUNK; i < i1; i++) {
            const double *xi = gmm_data_row(x, i, d, row);
            size_t best = 0;
            double bd = gmm_sqdist(xi, centers, d);
            for (size_t cc = 1; cc < k; cc++) {
                double dd = gmm_sqdist(xi, centers + cc * d, d);
                if (dd < bd) {
                    bd = dd;
                    best = cc;
                }
            }
            if (labels[i] != (int)best) p[ps - 1] += 1.0;
            labels[i] = (int)best;
            dist[i] = bd;
            for (size_t j = 0; j < d; j++) p[best * d + j] += xi[j];
            p[k * d + best] += 1.0;
        }
    }
    free(rows);
    double *sums = gmm_xcalloc(k * d, sizeof *sums);
    if (!sums) return GMM_ERR_NOMEM;
    memset(counts, 0, k * sizeof *counts);
    double ch_total = 0.0;
    for (long ch = 0; ch < nch; ch++) {
        const double *p = partials + (size_t)ch * ps;
        for (size_t i = 0; i < k * d; i++) sums[i] += p[i];
        for (size_t cc = 0; cc < k; cc++) counts[cc] += p[k * d + cc];
        ch_total += p[ps - 1];
    }
    for (size_t cc = 0; cc < k; cc++)
        if (counts[cc] > 0.0)
            for (size_t j = 0; j < d; j++) means[cc * d + j] = sums[cc * d + j] / counts[cc];
    free(sums);
    *changed = (size_t)ch_total;
    return GMM_OK;
}

static gmm_status cpu_lloyd_farthest(gmm_backend *b, size_t *index)
{
    cpu_impl *c = b->impl;
    if (!c->labels) return gmm_fail(GMM_ERR_INVALID_ARG, "lloyd_farthest before lloyd_assign");
    double *dist = c->pt;
    size_t far = 0;
    for (size_t i = 1; i < b->n; i++)
        if (dist[i] > dist[far]) far = i;
    dist[far] = -1.0;
    *index = far;
    return GMM_OK;
}

/* Adds point i's statistics under responsibilities r (k) around shift (k, d) into the partial p
 * (acc_size(k, d, diag) doubles, the log-likelihood slot unused). */
static void add_point_resp(const double *xi, const double *r, const double *shift, size_t k, size_t d, int diag,
                           double *p)
{
    const size_t tlen = diag ? d : d * d;
    for (size_t cc = 0; cc < k; cc++) {
        if (r[cc] == 0.0) continue;
        const double *mu = shift + cc * d;
        double *sk = p + k + cc * d, *tk = p + k + k * d + cc * tlen;
        p[cc] += r[cc];
        for (size_t a = 0; a < d; a++) {
            double da = xi[a] - mu[a];
            sk[a] += r[cc] * da;
            if (diag)
                tk[a] += r[cc] * da * da;
            else
                for (size_t bb = a; bb < d; bb++) tk[a * d + bb] += r[cc] * da * (xi[bb] - mu[bb]);
        }
    }
}

/* Point i's initial responsibilities r (k) of the given kind (see resp_stats in gmm_internal.h). */
static void init_resp(int kind, uint64_t seed, const int *labels, size_t i, size_t k, double *r)
{
    if (kind == GMM_RESP_LABELS) {
        memset(r, 0, k * sizeof *r);
        r[labels[i]] = 1.0;
    } else {
        double s = 0.0;
        for (size_t cc = 0; cc < k; cc++) s += (r[cc] = gmm_hash_uniform(seed, i, cc));
        for (size_t cc = 0; cc < k; cc++) r[cc] /= s;
    }
}

static gmm_status cpu_resp_stats(gmm_backend *b, int kind, uint64_t seed, const double *shift, gmm_stats *out)
{
    cpu_impl *c = b->impl;
    const size_t n = b->n, d = b->d, k = out->k;
    const int diag = out->diag_only;
    const gmm_data x = b->x;
    const int *labels = c->labels;
    if (kind == GMM_RESP_LABELS && !labels) return gmm_fail(GMM_ERR_INVALID_ARG, "resp_stats before lloyd_assign");
    const long nch = (long)init_chunks(n);
    const int nt = init_threads(b);
    const size_t ps = acc_size(k, d, diag);
    /* one partial and one row of responsibilities per thread; chunk partials join the total in chunk order */
    double *partials = gmm_xmalloc((size_t)nt * ps * sizeof *partials);
    double *rows = gmm_xmalloc((size_t)nt * k * sizeof *rows);
    double *xrows = gmm_xmalloc((size_t)nt * d * sizeof *xrows); /* a data row buffer per thread */
    if (!partials || !rows || !xrows) {
        free(partials);
        free(rows);
        free(xrows);
        return GMM_ERR_NOMEM;
    }
    gmm_stats_zero(out);
#pragma omp parallel for ordered schedule(dynamic, 1) num_threads(nt)
    for (long ch = 0; ch < nch; ch++) {
        const int t = omp_get_thread_num();
        double *p = partials + (size_t)t * ps, *r = rows + (size_t)t * k, *xr = xrows + (size_t)t * d;
        memset(p, 0, ps * sizeof *p);
        size_t i1 = ((size_t)ch + 1) * INIT_CHUNK;
        if (i1 > n) i1 = n;
        for (size_t i = (size_t)ch * INIT_CHUNK; i < i1; i++) {
            init_resp(kind, seed, labels, i, k, r);
            add_point_resp(gmm_data_row(x, i, d, xr), r, shift, k, d, diag, p);
        }
#pragma omp ordered
        add_chunk_stats(p, diag, out);
    }
    out->loglik = 0.0;
    if (!diag) mirror_moments(out);
    free(partials);
    free(rows);
    free(xrows);
    return GMM_OK;
}

static gmm_status cpu_mean_variance(gmm_backend *b, double *out)
{
    const size_t n = b->n, d = b->d;
    const gmm_data x = b->x;
    double var_mean = 0.0;
    for (size_t j = 0; j < d; j++) {
        double mu = 0.0, v = 0.0;
        for (size_t i = 0; i < n; i++) mu += gmm_data_at(x, i * d + j);
        mu /= (double)n;
        for (size_t i = 0; i < n; i++) v += (gmm_data_at(x, i * d + j) - mu) * (gmm_data_at(x, i * d + j) - mu);
        var_mean += v / (double)n;
    }
    *out = var_mean / (double)d;
    return GMM_OK;
}

static void cpu_init_end(gmm_backend *b)
{
    cpu_impl *c = b->impl;
    free(c->pt);
    free(c->cumsum);
    free(c->labels);
    free(c->ipart);
    c->pt = c->cumsum = c->ipart = NULL;
    c->labels = NULL;
    c->cumsum_ok = 0;
    c->ipart_len = 0;
}

/* ---------------------------------------------------------------------------------------------- table */

static void cpu_release(gmm_backend *b)
{
    cpu_impl *c = b->impl;
    if (c) {
        cpu_init_end(b);
        scratch_free(c);
        free(c);
    }
    b->impl = NULL;
}

gmm_status gmm_backend_cpu_open(gmm_backend *b, const double *x, size_t n, size_t d, int n_threads)
{
    return gmm_backend_cpu_open_data(b, gmm_data_double(x), n, d, n_threads);
}

gmm_status gmm_backend_cpu_open_data(gmm_backend *b, gmm_data x, size_t n, size_t d, int n_threads)
{
    memset(b, 0, sizeof *b);
    cpu_impl *c = gmm_xcalloc(1, sizeof *c);
    if (!c) return GMM_ERR_NOMEM;
    /* Chunk size depends on n only: at least GMM_CPU_MIN_CHUNK points, at most GMM_CPU_MAX_CHUNKS chunks,
     * a multiple of the block size. */
    size_t chunk = (n + GMM_CPU_MAX_CHUNKS - 1) / GMM_CPU_MAX_CHUNKS;
    if (chunk < GMM_CPU_MIN_CHUNK) chunk = GMM_CPU_MIN_CHUNK;
    chunk = (chunk + GMM_CPU_BLOCK - 1) / GMM_CPU_BLOCK * GMM_CPU_BLOCK;
    c->chunk = chunk;
    c->n_chunks = n ? (n + chunk - 1) / chunk : 0;
    b->name = "cpu";
    b->stats = cpu_stats;
    b->predict = cpu_predict;
    b->release = cpu_release;
    b->pp_potential = cpu_pp_potential;
    b->pp_draw = cpu_pp_draw;
    b->lloyd_assign = cpu_lloyd_assign;
    b->lloyd_farthest = cpu_lloyd_farthest;
    b->resp_stats = cpu_resp_stats;
    b->mean_variance = cpu_mean_variance;
    b->init_end = cpu_init_end;
    b->x = x;
    b->n = n;
    b->d = d;
    b->n_threads = n_threads;
    b->impl = c;
    return GMM_OK;
}

double gmm_log_gauss_point(const double *x, const double *mean, const double *prec_chol, double log_det_chol,
                           size_t d)
{
    double maha = 0.0;
    for (size_t j = 0; j < d; j++) {
        double y = 0.0;
        for (size_t i = 0; i <= j; i++) y += (x[i] - mean[i]) * prec_chol[i * d + j];
        maha += y * y;
    }
    return -0.5 * ((double)d * LOG_2PI + maha) + log_det_chol;
}
