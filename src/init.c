/*
 * init.c — initial parameters of an EM run, scikit-learn's way: responsibilities from k-means labels
 * ("kmeans"), from k-means++ seeds or random points ("k-means++", "random_from_data": one point per
 * component), or random ("random"), turned into parameters by the M-step formulas; plus the assignment's
 * own scheme ("binary"), and given initial weights, means or precisions (scikit-learn's weights_init,
 * means_init, precisions_init). Also k-means++ seeding and Lloyd's k-means themselves.
 *
 * The algorithms are here, once; their passes over the points are the backend's (pp_potential, pp_draw,
 * lloyd_assign, lloyd_farthest, resp_stats in gmm_internal.h), so on the GPU the data never come back to
 * the host. The host copy b->x is read only for single rows (the chosen seeds, relocated centers).
 */
#include "gmm_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------------------------------- k-means++ */

gmm_status gmm_kmeanspp_seeds(gmm_backend *b, size_t k, gmm_rng *rng, size_t *idx)
{
    const size_t n = b->n, d = b->d;
    const gmm_data x = b->x;
    const size_t trials = 2 + (size_t)log((double)k);
    double *cand_row = gmm_xmalloc(d * sizeof *cand_row); /* the candidate point, as double */
    if (!cand_row) return GMM_ERR_NOMEM;
    idx[0] = (size_t)gmm_rng_below(rng, n);
    double pot;
    gmm_status st = b->pp_potential(b, gmm_data_row(x, idx[0], d, cand_row), 1, 1, &pot);
    for (size_t c = 1; c < k && st == GMM_OK; c++) {
        /* greedy k-means++: draw `trials` candidates with probability proportional to the closest distance,
         * keep the one that lowers the potential most (the first on ties) */
        size_t best = 0;
        double best_pot = INFINITY;
        for (size_t t = 0; t < trials && st == GMM_OK; t++) {
            size_t cand;
            double p;
            st = b->pp_draw(b, gmm_rng_uniform(rng) * pot, &cand);
            if (st == GMM_OK) st = b->pp_potential(b, gmm_data_row(x, cand, d, cand_row), 0, 0, &p);
            if (st == GMM_OK && p < best_pot) {
                best_pot = p;
                best = cand;
            }
        }
        idx[c] = best;
        if (st == GMM_OK) st = b->pp_potential(b, gmm_data_row(x, best, d, cand_row), 0, 1, &pot);
    }
    free(cand_row);
    return st;
}

/* ---------------------------------------------------------------------------------------------- Lloyd */

gmm_status gmm_kmeans_lloyd(gmm_backend *b, size_t k, double *centers, int max_iter, double tol)
{
    const size_t d = b->d;
    double *means = gmm_xmalloc(k * d * sizeof *means);
    double *counts = gmm_xmalloc(k * sizeof *counts);
    double *old = gmm_xmalloc(k * d * sizeof *old);
    if (!means || !counts || !old) {
        free(means);
        free(counts);
        free(old);
        return GMM_ERR_NOMEM;
    }
    double var_mean = 0.0;
    gmm_status st = b->mean_variance(b, &var_mean);
    const double tol_scaled = tol * var_mean;
    int strict = 0;
    for (int it = 0; it < max_iter && st == GMM_OK; it++) {
        size_t changed;
        st = b->lloyd_assign(b, k, centers, it == 0, means, counts, &changed);
        if (st != GMM_OK) break;
        memcpy(old, centers, k * d * sizeof *old);
        for (size_t c = 0; c < k && st == GMM_OK; c++) {
            if (counts[c] > 0.0) {
                memcpy(centers + c * d, means + c * d, d * sizeof *centers);
                continue;
            }
            /* empty cluster: move it to the point farthest from its center (scikit-learn relocates the
             * farthest points too); the point is taken out of its old cluster's distance pool */
            size_t far;
            st = b->lloyd_farthest(b, &far);
            if (st == GMM_OK) gmm_data_copy_row(b->x, far, d, centers + c * d);
        }
        if (st != GMM_OK) break;
        if (it > 0 && changed == 0) {
            strict = 1;
            break;
        }
        if (gmm_sqdist(old, centers, k * d) <= tol_scaled) break;
    }
    if (st == GMM_OK && !strict) {
        size_t changed;
        st = b->lloyd_assign(b, k, centers, 0, means, counts, &changed);
    }
    free(means);
    free(counts);
    free(old);
    return st;
}

/* ------------------------------------------------------------------------------- responsibilities -> params */

/* Parameters from responsibilities (GMM_RESP_LABELS: Lloyd's last labels; GMM_RESP_RANDOM: hashed from
 * seed), two passes: first the means (shift 0), then the second moments around them, then the shared
 * M-step with scikit-learn's initialization weights. */
static gmm_status params_from_resp(gmm_model *m, gmm_backend *b, int kind, uint64_t seed, double reg_covar)
{
    const size_t k = m->k, d = m->d;
    gmm_stats s;
    gmm_status st = gmm_stats_alloc(&s, k, d);
    if (st != GMM_OK) return st;
    s.diag_only = m->cov_type == GMM_COV_DIAG || m->cov_type == GMM_COV_SPHERICAL;
    memset(m->means, 0, k * d * sizeof(double));
    st = b->resp_stats(b, kind, seed, m->means, &s);
    if (st == GMM_OK) {
        for (size_t c = 0; c < k; c++)
            for (size_t j = 0; j < d; j++) m->means[c * d + j] = s.sk[c * d + j] / (s.nk[c] + 10.0 * DBL_EPSILON);
        st = b->resp_stats(b, kind, seed, m->means, &s);
    }
    if (st == GMM_OK) st = gmm_mstep(m, &s, b->n, reg_covar, 1);
    gmm_stats_free(&s);
    return st;
}

/* One-point responsibilities (k-means++ seeds, random_from_data): N_k = 1, mean = the point, covariance =
 * reg_covar I, weight (1 + 10 eps) / n — exactly what the M-step formulas give for them. */
static gmm_status params_from_points(gmm_model *m, gmm_data x, size_t n, const size_t *idx, double reg_covar)
{
    const size_t k = m->k, d = m->d;
    gmm_stats s;
    gmm_status st = gmm_stats_alloc(&s, k, d);
    if (st != GMM_OK) return st;
    for (size_t c = 0; c < k; c++) {
        gmm_data_copy_row(x, idx[c], d, m->means + c * d);
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
            st = gmm_fail(GMM_ERR_NOT_PD, "component %zu (label %zu): precisions_init is not positive definite",
                          c + 1, c);
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
    /* as given: validate_options checked them as scikit-learn does (in [0, 1], summing to 1) */
    if (o->weights_init) memcpy(m->weights, o->weights_init, k * sizeof(double));
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
    const gmm_data x = b->x;
    switch (o->init) {
    case GMM_INIT_KMEANS: {
        size_t *idx = gmm_xmalloc(k * sizeof *idx);
        double *centers = gmm_xmalloc(k * d * sizeof *centers);
        gmm_status st = (idx && centers) ? GMM_OK : GMM_ERR_NOMEM;
        if (st == GMM_OK) st = gmm_kmeanspp_seeds(b, k, rng, idx);
        if (st == GMM_OK) {
            for (size_t c = 0; c < k; c++) gmm_data_copy_row(x, idx[c], d, centers + c * d);
            /* scikit-learn's KMeans defaults: max_iter 300, tol 1e-4 */
            st = gmm_kmeans_lloyd(b, k, centers, 300, 1e-4);
        }
        if (st == GMM_OK) st = params_from_resp(m, b, GMM_RESP_LABELS, 0, o->reg_covar);
        b->init_end(b);
        free(idx);
        free(centers);
        return st;
    }
    case GMM_INIT_KMEANS_PLUSPLUS:
    case GMM_INIT_RANDOM_FROM_DATA: {
        size_t *idx = gmm_xmalloc(k * sizeof *idx);
        if (!idx) return GMM_ERR_NOMEM;
        gmm_status st = GMM_OK;
        if (o->init == GMM_INIT_KMEANS_PLUSPLUS) {
            st = gmm_kmeanspp_seeds(b, k, rng, idx);
            b->init_end(b);
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
    case GMM_INIT_RANDOM: {
        gmm_status st = params_from_resp(m, b, GMM_RESP_RANDOM, gmm_rng_next(rng), o->reg_covar);
        b->init_end(b);
        return st;
    }
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
        const gmm_rng start = *rng;
        gmm_status st = init_from_method(m, b, o, rng);
        if (st == GMM_ERR_NOMEM && strcmp(b->name, "cpu") != 0 && b->x.p) {
            /* the device holds the data but not the passes' per-point state (n distances and labels): run
             * them on the host copy instead, from the same random state */
            gmm_backend h;
            gmm_clear_error();
            *rng = start;
            st = gmm_backend_cpu_open_data(&h, b->x, b->n, b->d, b->n_threads);
            if (st == GMM_OK) {
                st = init_from_method(m, &h, o, rng);
                h.release(&h);
            }
            if (st == GMM_OK) b->init_on_host = 1;
        }
        if (st != GMM_OK) return st;
    }
    if (!o->weights_init && !o->means_init && !o->precisions_init) return GMM_OK;
    return apply_user_init(m, o);
}
