/*
 * init.c — initial parameters of an EM run, scikit-learn's way: responsibilities from k-means labels
 * ("kmeans"), from k-means++ seeds or random points ("k-means++", "random_from_data": one point per
 * component), or random ("random"), turned into parameters by the M-step formulas; plus the assignment's
 * own scheme ("binary"), and given initial weights, means or precisions (scikit-learn's weights_init,
 * means_init, precisions_init). Also k-means++ seeding and Lloyd's k-means themselves.
 *
 * Every pass over the points is cut into chunks that depend only on n, with per-chunk partial sums added in
 * chunk order, so results do not depend on the thread count.
 */
#include "gmm_internal.h"

#include <float.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INIT_CHUNK 16384

static size_t n_chunks_of(size_t n) { return (n + INIT_CHUNK - 1) / INIT_CHUNK; }

/* Threads for a pass: the option's count, or OpenMP's default for 0. */
static int threads_of(int n_threads) { return n_threads > 0 ? n_threads : omp_get_max_threads(); }

const char *gmm_init_name(gmm_init_method m)
{
    switch (m) {
    case GMM_INIT_KMEANS: return "kmeans";
    case GMM_INIT_KMEANS_PLUSPLUS: return "k-means++";
    case GMM_INIT_RANDOM: return "random";
    case GMM_INIT_RANDOM_FROM_DATA: return "random_from_data";
    case GMM_INIT_BINARY: return "binary";
    }
    return "unknown";
}

static double sqdist(const double *a, const double *b, size_t d)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++) {
        double t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

/* ------------------------------------------------------------------------------------------- k-means++ */

/* sum_i min(closest[i], |x_i - cand|^2), in fixed chunk order; when update is set, closest is lowered. */
static double potential_with(const double *x, size_t n, size_t d, const double *cand, double *closest,
                             int update, double *partial, int nt)
{
    const long nch = (long)n_chunks_of(n);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (long ch = 0; ch < nch; ch++) {
        size_t i1 = ((size_t)ch + 1) * INIT_CHUNK;
        if (i1 > n) i1 = n;
        double s = 0.0;
        for (size_t i = (size_t)ch * INIT_CHUNK; i < i1; i++) {
            double dd = sqdist(x + i * d, cand, d);
            double v = dd < closest[i] ? dd : closest[i];
            if (update) closest[i] = v;
            s += v;
        }
        partial[ch] = s;
    }
    double total = 0.0;
    for (long ch = 0; ch < nch; ch++) total += partial[ch];
    return total;
}

/* First index i with cumsum[i] >= target (numpy's searchsorted, side "left"), clipped to n - 1. */
static size_t search_cumsum(const double *cumsum, size_t n, double target)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cumsum[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n ? lo : n - 1;
}

gmm_status gmm_kmeanspp_seeds(const double *x, size_t n, size_t d, size_t k, gmm_rng *rng, size_t *idx,
                              int n_threads)
{
    const int nt = threads_of(n_threads);
    const size_t trials = 2 + (size_t)log((double)k);
    double *closest = gmm_xmalloc(n * sizeof *closest);
    double *cumsum = gmm_xmalloc(n * sizeof *cumsum);
    double *partial = gmm_xmalloc((n_chunks_of(n) + 1) * sizeof *partial);
    if (!closest || !cumsum || !partial) {
        free(closest);
        free(cumsum);
        free(partial);
        return GMM_ERR_NOMEM;
    }
    idx[0] = (size_t)gmm_rng_below(rng, n);
    for (size_t i = 0; i < n; i++) closest[i] = INFINITY;
    double pot = potential_with(x, n, d, x + idx[0] * d, closest, 1, partial, nt);
    for (size_t c = 1; c < k; c++) {
        /* greedy k-means++: draw `trials` candidates with probability proportional to closest, keep the one
         * that lowers the potential most (the first on ties) */
        double run = 0.0;
        for (size_t i = 0; i < n; i++) cumsum[i] = (run += closest[i]);
        size_t best = 0;
        double best_pot = INFINITY;
        for (size_t t = 0; t < trials; t++) {
            size_t cand = search_cumsum(cumsum, n, gmm_rng_uniform(rng) * pot);
            double p = potential_with(x, n, d, x + cand * d, closest, 0, partial, nt);
            if (p < best_pot) {
                best_pot = p;
                best = cand;
            }
        }
        idx[c] = best;
        pot = potential_with(x, n, d, x + best * d, closest, 1, partial, nt);
    }
    free(closest);
    free(cumsum);
    free(partial);
    return GMM_OK;
}

/* ---------------------------------------------------------------------------------------------- Lloyd */

/* Assigns every point to its nearest center (first on ties); accumulates per-chunk sums (k, d) and counts
 * (k), then adds them in chunk order into sums/counts. Writes dist (n) = squared distance to the center.
 * Returns the number of labels that changed. */
static size_t lloyd_assign(const double *x, size_t n, size_t d, size_t k, const double *centers, int *labels,
                           double *dist, double *sums, double *counts, double *partials, int nt)
{
    const long nch = (long)n_chunks_of(n);
    const size_t ps = k * d + k + 1;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (long ch = 0; ch < nch; ch++) {
        double *p = partials + (size_t)ch * ps;
        memset(p, 0, ps * sizeof *p);
        size_t i1 = ((size_t)ch + 1) * INIT_CHUNK;
        if (i1 > n) i1 = n;
        for (size_t i = (size_t)ch * INIT_CHUNK; i < i1; i++) {
            const double *xi = x + i * d;
            size_t best = 0;
            double bd = sqdist(xi, centers, d);
            for (size_t c = 1; c < k; c++) {
                double dd = sqdist(xi, centers + c * d, d);
                if (dd < bd) {
                    bd = dd;
                    best = c;
                }
            }
            if (labels[i] != (int)best) p[ps - 1] += 1.0;
            labels[i] = (int)best;
            dist[i] = bd;
            for (size_t j = 0; j < d; j++) p[best * d + j] += xi[j];
            p[k * d + best] += 1.0;
        }
    }
    memset(sums, 0, k * d * sizeof *sums);
    memset(counts, 0, k * sizeof *counts);
    double changed = 0.0;
    for (long ch = 0; ch < nch; ch++) {
        const double *p = partials + (size_t)ch * ps;
        for (size_t i = 0; i < k * d; i++) sums[i] += p[i];
        for (size_t c = 0; c < k; c++) counts[c] += p[k * d + c];
        changed += p[ps - 1];
    }
    return (size_t)changed;
}

gmm_status gmm_kmeans_lloyd(const double *x, size_t n, size_t d, size_t k, double *centers, int *labels,
                            int max_iter, double tol, int n_threads)
{
    const int nt = threads_of(n_threads);
    double *dist = gmm_xmalloc(n * sizeof *dist);
    double *sums = gmm_xmalloc(k * d * sizeof *sums);
    double *counts = gmm_xmalloc(k * sizeof *counts);
    double *partials = gmm_xmalloc(n_chunks_of(n) * (k * d + k + 1) * sizeof *partials);
    double *old = gmm_xmalloc(k * d * sizeof *old);
    if (!dist || !sums || !counts || !partials || !old) {
        free(dist);
        free(sums);
        free(counts);
        free(partials);
        free(old);
        return GMM_ERR_NOMEM;
    }
    /* scikit-learn's tolerance: tol times the mean of the feature variances */
    double var_mean = 0.0;
    for (size_t j = 0; j < d; j++) {
        double mu = 0.0, v = 0.0;
        for (size_t i = 0; i < n; i++) mu += x[i * d + j];
        mu /= (double)n;
        for (size_t i = 0; i < n; i++) v += (x[i * d + j] - mu) * (x[i * d + j] - mu);
        var_mean += v / (double)n;
    }
    const double tol_scaled = tol * var_mean / (double)d;
    for (size_t i = 0; i < n; i++) labels[i] = -1;
    int strict = 0;
    for (int it = 0; it < max_iter; it++) {
        size_t changed = lloyd_assign(x, n, d, k, centers, labels, dist, sums, counts, partials, nt);
        memcpy(old, centers, k * d * sizeof *old);
        for (size_t c = 0; c < k; c++) {
            if (counts[c] > 0.0) {
                for (size_t j = 0; j < d; j++) centers[c * d + j] = sums[c * d + j] / counts[c];
                continue;
            }
            /* empty cluster: move it to the point farthest from its center (scikit-learn relocates the
             * farthest points too); the point is taken out of its old cluster's distance pool */
            size_t far = 0;
            for (size_t i = 1; i < n; i++)
                if (dist[i] > dist[far]) far = i;
            memcpy(centers + c * d, x + far * d, d * sizeof *centers);
            dist[far] = -1.0;
        }
        if (it > 0 && changed == 0) {
            strict = 1;
            break;
        }
        if (sqdist(old, centers, k * d) <= tol_scaled) break;
    }
    if (!strict) lloyd_assign(x, n, d, k, centers, labels, dist, sums, counts, partials, nt);
    free(dist);
    free(sums);
    free(counts);
    free(partials);
    free(old);
    return GMM_OK;
}

/* ------------------------------------------------------------------------------- responsibilities -> params */

typedef enum { RESP_LABELS, RESP_RANDOM } resp_kind;

/* splitmix64 of (seed, i, c): a counter-based uniform draw in (0, 1], so that random responsibilities need
 * no n x k array and are the same whatever the thread count. */
static double hash_uniform(uint64_t seed, uint64_t i, uint64_t c)
{
    uint64_t z = seed ^ (i * 0x9e3779b97f4a7c15ULL) ^ (c * 0xd1b54a32d192ed03ULL);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 1.0) * 0x1.0p-53;
}

/* Statistics of responsibilities (hard labels, or random rows) around the shift `means` (k, d). */
static gmm_status resp_stats(const double *x, size_t n, size_t d, size_t k, resp_kind kind, const int *labels,
                             uint64_t seed, const double *means, gmm_stats *out, int nt)
{
    const long nch = (long)n_chunks_of(n);
    const size_t ps = k * (1 + d + d * d);
    double *partials = gmm_xmalloc((size_t)nch * ps * sizeof *partials);
    double *rows = gmm_xmalloc((size_t)nch * k * sizeof *rows);
    if (!partials || !rows) {
        free(partials);
        free(rows);
        return GMM_ERR_NOMEM;
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (long ch = 0; ch < nch; ch++) {
        double *p = partials + (size_t)ch * ps, *r = rows + (size_t)ch * k;
        memset(p, 0, ps * sizeof *p);
        size_t i1 = ((size_t)ch + 1) * INIT_CHUNK;
        if (i1 > n) i1 = n;
        for (size_t i = (size_t)ch * INIT_CHUNK; i < i1; i++) {
            if (kind == RESP_LABELS) {
                memset(r, 0, k * sizeof *r);
                r[labels[i]] = 1.0;
            } else {
                double s = 0.0;
                for (size_t c = 0; c < k; c++) s += (r[c] = hash_uniform(seed, i, c));
                for (size_t c = 0; c < k; c++) r[c] /= s;
            }
            for (size_t c = 0; c < k; c++) {
                if (r[c] == 0.0) continue;
                const double *mu = means + c * d, *xi = x + i * d;
                double *sk = p + k + c * d, *tk = p + k + k * d + c * d * d;
                p[c] += r[c];
                for (size_t a = 0; a < d; a++) {
                    double da = xi[a] - mu[a];
                    sk[a] += r[c] * da;
                    for (size_t b = a; b < d; b++) tk[a * d + b] += r[c] * da * (xi[b] - mu[b]);
                }
            }
        }
    }
    gmm_stats_zero(out);
    for (long ch = 0; ch < nch; ch++) {
        const double *p = partials + (size_t)ch * ps;
        for (size_t i = 0; i < k; i++) out->nk[i] += p[i];
        for (size_t i = 0; i < k * d; i++) out->sk[i] += p[k + i];
        for (size_t i = 0; i < k * d * d; i++) out->tk[i] += p[k + k * d + i];
    }
    for (size_t c = 0; c < k; c++)
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < a; b++) out->tk[c * d * d + a * d + b] = out->tk[c * d * d + b * d + a];
    free(partials);
    free(rows);
    return GMM_OK;
}

/* Parameters from responsibilities, two passes: first the means (shift 0), then the second moments around
 * them, then the shared M-step with scikit-learn's initialization weights. */
static gmm_status params_from_resp(gmm_model *m, const double *x, size_t n, resp_kind kind, const int *labels,
                                   uint64_t seed, double reg_covar, int n_threads)
{
    const int nt = threads_of(n_threads);
    const size_t k = m->k, d = m->d;
    gmm_stats s;
    gmm_status st = gmm_stats_alloc(&s, k, d);
    if (st != GMM_OK) return st;
    memset(m->means, 0, k * d * sizeof(double));
    st = resp_stats(x, n, d, k, kind, labels, seed, m->means, &s, nt);
    if (st == GMM_OK) {
        for (size_t c = 0; c < k; c++)
            for (size_t j = 0; j < d; j++) m->means[c * d + j] = s.sk[c * d + j] / (s.nk[c] + 10.0 * DBL_EPSILON);
        st = resp_stats(x, n, d, k, kind, labels, seed, m->means, &s, nt);
    }
    if (st == GMM_OK) st = gmm_mstep(m, &s, n, reg_covar, 1);
    gmm_stats_free(&s);
    return st;
}

/* One-point responsibilities (k-means++ seeds, random_from_data): N_k = 1, mean = the point, covariance =
 * reg_covar I, weight (1 + 10 eps) / n — exactly what the M-step formulas give for them. */
static gmm_status params_from_points(gmm_model *m, const double *x, size_t n, const size_t *idx, double reg_covar)
{
    const size_t k = m->k, d = m->d;
    gmm_stats s;
    gmm_status st = gmm_stats_alloc(&s, k, d);
    if (st != GMM_OK) return st;
    for (size_t c = 0; c < k; c++) {
        memcpy(m->means + c * d, x + idx[c] * d, d * sizeof(double));
        s.nk[c] = 1.0;
    }
    st = gmm_mstep(m, &s, n, reg_covar, 1);
    gmm_stats_free(&s);
    return st;
}

/* Covariances (k, d, d) from precisions given in the type's shape: full and tied through Cholesky,
 * diag and spherical elementwise. GMM_ERR_NOT_PD names the component. */
static gmm_status covariances_from_precisions(gmm_model *m, const double *prec)
{
    const size_t k = m->k, d = m->d;
    const gmm_covariance_type t = m->cov_type;
    double *full = gmm_xmalloc(k * d * d * sizeof *full);
    double *l = gmm_xmalloc(d * d * sizeof *l);
    double *u = gmm_xmalloc(d * d * sizeof *u);
    if (!full || !l || !u) {
        free(full);
        free(l);
        free(u);
        return GMM_ERR_NOMEM;
    }
    gmm_cov_expand(t, k, d, prec, full);
    gmm_status st = GMM_OK;
    for (size_t c = 0; c < k && st == GMM_OK; c++) {
        /* inverse of a precision P = L L^T: P^-1 = U U^T with U = L^-T */
        memcpy(l, full + c * d * d, d * d * sizeof *l);
        if (gmm_cholesky_lower(l, d)) {
            st = gmm_fail(GMM_ERR_NOT_PD, "component %zu: precisions_init is not positive definite", c);
            break;
        }
        gmm_precision_chol_from_cov_chol(l, u, d);
        double *cov = m->covariances + c * d * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                double v = 0.0;
                for (size_t p = 0; p < d; p++) v += u[i * d + p] * u[j * d + p];
                cov[i * d + j] = v;
            }
    }
    free(full);
    free(l);
    free(u);
    return st;
}

/* Replaces what the init method produced by the options' weights_init, means_init, precisions_init. */
static gmm_status apply_user_init(gmm_model *m, const gmm_options *o)
{
    const size_t k = m->k, d = m->d;
    if (o->weights_init) {
        double s = 0.0;
        for (size_t c = 0; c < k; c++) s += o->weights_init[c];
        for (size_t c = 0; c < k; c++) m->weights[c] = o->weights_init[c] / s;
    }
    if (o->means_init) memcpy(m->means, o->means_init, k * d * sizeof(double));
    if (o->precisions_init) {
        gmm_status st = covariances_from_precisions(m, o->precisions_init);
        if (st != GMM_OK) return st;
    }
    return gmm_model_update_precisions(m);
}

/* Runs the init method itself (scikit-learn's _initialize_parameters). */
static gmm_status init_from_method(gmm_model *m, gmm_backend *b, const gmm_options *o, gmm_rng *rng)
{
    const size_t k = m->k, d = m->d, n = b->n;
    const double *x = b->x;
    switch (o->init) {
    case GMM_INIT_KMEANS: {
        size_t *idx = gmm_xmalloc(k * sizeof *idx);
        int *labels = gmm_xmalloc(n * sizeof *labels);
        double *centers = gmm_xmalloc(k * d * sizeof *centers);
        gmm_status st = (idx && labels && centers) ? GMM_OK : GMM_ERR_NOMEM;
        if (st == GMM_OK) st = gmm_kmeanspp_seeds(x, n, d, k, rng, idx, b->n_threads);
        if (st == GMM_OK) {
            for (size_t c = 0; c < k; c++) memcpy(centers + c * d, x + idx[c] * d, d * sizeof *centers);
            /* scikit-learn's KMeans defaults: max_iter 300, tol 1e-4 */
            st = gmm_kmeans_lloyd(x, n, d, k, centers, labels, 300, 1e-4, b->n_threads);
        }
        if (st == GMM_OK) st = params_from_resp(m, x, n, RESP_LABELS, labels, 0, o->reg_covar, b->n_threads);
        free(idx);
        free(labels);
        free(centers);
        return st;
    }
    case GMM_INIT_KMEANS_PLUSPLUS:
    case GMM_INIT_RANDOM_FROM_DATA: {
        size_t *idx = gmm_xmalloc(k * sizeof *idx);
        if (!idx) return GMM_ERR_NOMEM;
        gmm_status st = GMM_OK;
        if (o->init == GMM_INIT_KMEANS_PLUSPLUS) {
            st = gmm_kmeanspp_seeds(x, n, d, k, rng, idx, b->n_threads);
        } else { /* k distinct indices: Floyd's sampling without replacement */
            for (size_t c = 0; c < k; c++) {
                size_t j = n - k + c, t = (size_t)gmm_rng_below(rng, j + 1);
                int seen = 0;
                for (size_t p = 0; p < c; p++) seen |= idx[p] == t;
                idx[c] = seen ? j : t;
            }
        }
        if (st == GMM_OK) st = params_from_points(m, x, n, idx, o->reg_covar);
        free(idx);
        return st;
    }
    case GMM_INIT_RANDOM:
        return params_from_resp(m, x, n, RESP_RANDOM, NULL, gmm_rng_next(rng), o->reg_covar, b->n_threads);
    case GMM_INIT_BINARY:
        for (size_t c = 0; c < k; c++) {
            m->weights[c] = 1.0 / (double)k;
            for (size_t j = 0; j < d; j++) m->means[c * d + j] = (double)(gmm_rng_next(rng) >> 63);
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j < d; j++) m->covariances[c * d * d + i * d + j] = i == j ? 1.0 : 0.0;
        }
        return gmm_model_update_precisions(m);
    }
    return gmm_fail(GMM_ERR_INVALID_ARG, "unknown init method %d", (int)o->init);
}

gmm_status gmm_init_params(gmm_model *m, gmm_backend *b, const gmm_options *o, gmm_rng *rng)
{
    /* with all three given the method's result would be discarded: skip it (scikit-learn runs it anyway) */
    if (!(o->weights_init && o->means_init && o->precisions_init)) {
        gmm_status st = init_from_method(m, b, o, rng);
        if (st != GMM_OK) return st;
    }
    if (!o->weights_init && !o->means_init && !o->precisions_init) return GMM_OK;
    return apply_user_init(m, o);
}
