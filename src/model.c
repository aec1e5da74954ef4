/*
 * model.c — the gmm_model object: allocation, copies, precision factors from covariances, construction
 * from explicit parameters, and the public getters.
 */
#include "gmm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gmm_model *gmm_model_alloc(size_t k, size_t d)
{
    gmm_model *m = gmm_xcalloc(1, sizeof *m);
    if (!m) return NULL;
    m->k = k;
    m->d = d;
    m->cov_type = GMM_COV_FULL;
    m->weights = gmm_xcalloc(k, sizeof(double));
    m->means = m->weights ? gmm_xcalloc(k * d, sizeof(double)) : NULL;
    m->covariances = m->means ? gmm_xcalloc(k * d * d, sizeof(double)) : NULL;
    m->prec_chol = m->covariances ? gmm_xcalloc(k * d * d, sizeof(double)) : NULL;
    m->log_det_chol = m->prec_chol ? gmm_xcalloc(k, sizeof(double)) : NULL;
    if (!m->log_det_chol) {
        gmm_model_free(m);
        return NULL;
    }
    return m;
}

void gmm_model_free(gmm_model *m)
{
    if (!m) return;
    free(m->weights);
    free(m->means);
    free(m->covariances);
    free(m->prec_chol);
    free(m->log_det_chol);
    free(m->loglik_trace);
    free(m->iter_seconds);
    free(m->empty_since);
    free(m);
}

static double *dup_array(const double *src, size_t count, int *failed)
{
    if (!src || count == 0) return NULL;
    double *p = gmm_xmalloc(count * sizeof *p);
    if (!p) {
        *failed = 1;
        return NULL;
    }
    memcpy(p, src, count * sizeof *p);
    return p;
}

gmm_model *gmm_model_clone(const gmm_model *src)
{
    gmm_model *m = gmm_model_alloc(src->k, src->d);
    if (!m) return NULL;
    size_t k = src->k, d = src->d;
    memcpy(m->weights, src->weights, k * sizeof(double));
    memcpy(m->means, src->means, k * d * sizeof(double));
    memcpy(m->covariances, src->covariances, k * d * d * sizeof(double));
    memcpy(m->prec_chol, src->prec_chol, k * d * d * sizeof(double));
    memcpy(m->log_det_chol, src->log_det_chol, k * sizeof(double));
    m->cov_type = src->cov_type;
    m->converged = src->converged;
    m->n_iter = src->n_iter;
    m->best_run = src->best_run;
    m->lower_bound = src->lower_bound;
    m->n_train = src->n_train;
    memcpy(m->device, src->device, sizeof m->device);
    int failed = 0;
    m->loglik_trace = dup_array(src->loglik_trace, (size_t)src->n_iter, &failed);
    m->iter_seconds = dup_array(src->iter_seconds, (size_t)src->n_iter, &failed);
    if (!failed && src->empty_since) {
        m->empty_since = gmm_xmalloc(k * sizeof *m->empty_since);
        if (m->empty_since) memcpy(m->empty_since, src->empty_since, k * sizeof *m->empty_since);
        failed = !m->empty_since;
    }
    if (failed) {
        gmm_model_free(m);
        return NULL;
    }
    return m;
}

/* gmm_model_update_precisions for diag and spherical models, whose covariances are diagonal: U = diag(1 /
 * sqrt(v_j)), in O(k d) operations (the zeros aside); the same bits as the Cholesky route, whose sums on a
 * diagonal matrix only add exact zeros. */
static gmm_status update_precisions_diagonal(gmm_model *m)
{
    const size_t d = m->d;
    for (size_t k = 0; k < m->k; k++) {
        const double *cov = m->covariances + k * d * d;
        double *u = m->prec_chol + k * d * d, s = 0.0;
        memset(u, 0, d * d * sizeof *u);
        for (size_t j = 0; j < d; j++) {
            const double v = cov[j * d + j];
            if (!(v > 0.0) || !isfinite(v))
                return gmm_fail(GMM_ERR_NOT_PD,
                                "component %zu (label %zu): covariance is not positive definite (leading minor "
                                "%zu is not positive); increase reg_covar, use fewer components, or scale the data",
                                k + 1, k, j + 1);
            u[j * d + j] = 1.0 / sqrt(v);
        }
        for (size_t j = 0; j < d; j++) s += log(u[j * d + j]);
        m->log_det_chol[k] = s;
    }
    return GMM_OK;
}

gmm_status gmm_model_update_precisions(gmm_model *m)
{
    if (m->cov_type == GMM_COV_DIAG || m->cov_type == GMM_COV_SPHERICAL) return update_precisions_diagonal(m);
    size_t d = m->d;
    double *l = gmm_xmalloc(d * d * sizeof *l);
    if (!l) return GMM_ERR_NOMEM;
    for (size_t k = 0; k < m->k; k++) {
        const double *cov = m->covariances + k * d * d;
        memcpy(l, cov, d * d * sizeof *l);
        int bad = gmm_cholesky_lower(l, d);
        if (bad) {
            free(l);
            return gmm_fail(GMM_ERR_NOT_PD,
                            "component %zu (label %zu): covariance is not positive definite (leading minor "
                            "%d is not positive); increase reg_covar, use fewer components, or scale the data",
                            k + 1, k, bad);
        }
        double *u = m->prec_chol + k * d * d;
        gmm_precision_chol_from_cov_chol(l, u, d);
        double s = 0.0;
        for (size_t j = 0; j < d; j++) s += log(u[j * d + j]);
        m->log_det_chol[k] = s;
    }
    free(l);
    return GMM_OK;
}

const char *gmm_covariance_name(gmm_covariance_type t)
{
    switch (t) {
    case GMM_COV_FULL: return "full";
    case GMM_COV_TIED: return "tied";
    case GMM_COV_DIAG: return "diag";
    case GMM_COV_SPHERICAL: return "spherical";
    }
    return "unknown";
}

int gmm_covariance_parse(const char *s, gmm_covariance_type *t)
{
    for (int i = GMM_COV_FULL; i <= GMM_COV_SPHERICAL; i++)
        if (s && !strcmp(s, gmm_covariance_name((gmm_covariance_type)i))) {
            *t = (gmm_covariance_type)i;
            return 0;
        }
    return -1;
}

size_t gmm_covariance_size(gmm_covariance_type t, size_t k, size_t d)
{
    switch (t) {
    case GMM_COV_FULL: return k * d * d;
    case GMM_COV_TIED: return d * d;
    case GMM_COV_DIAG: return k * d;
    case GMM_COV_SPHERICAL: return k;
    }
    return 0;
}

void gmm_cov_expand(gmm_covariance_type t, size_t k, size_t d, const double *compact, double *full)
{
    for (size_t c = 0; c < k; c++) {
        double *f = full + c * d * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                double v = 0.0;
                switch (t) {
                case GMM_COV_FULL: v = compact[c * d * d + i * d + j]; break;
                case GMM_COV_TIED: v = compact[i * d + j]; break;
                case GMM_COV_DIAG: v = i == j ? compact[c * d + i] : 0.0; break;
                case GMM_COV_SPHERICAL: v = i == j ? compact[c] : 0.0; break;
                }
                f[i * d + j] = v;
            }
    }
}

void gmm_cov_compact(const gmm_model *m, double *compact)
{
    const size_t k = m->k, d = m->d;
    switch (m->cov_type) {
    case GMM_COV_FULL: memcpy(compact, m->covariances, k * d * d * sizeof(double)); break;
    case GMM_COV_TIED: memcpy(compact, m->covariances, d * d * sizeof(double)); break;
    case GMM_COV_DIAG:
        for (size_t c = 0; c < k; c++)
            for (size_t i = 0; i < d; i++) compact[c * d + i] = m->covariances[c * d * d + i * d + i];
        break;
    case GMM_COV_SPHERICAL:
        for (size_t c = 0; c < k; c++) compact[c] = m->covariances[c * d * d];
        break;
    }
}

gmm_status gmm_model_from_params(size_t k, size_t d, gmm_covariance_type type, const double *weights,
                                 const double *means, const double *covariances, gmm_model **out)
{
    *out = NULL;
    if (k == 0 || d == 0 || !weights || !means || !covariances)
        return gmm_fail(GMM_ERR_INVALID_ARG, "model needs k >= 1, d >= 1 and weights, means, covariances");
    if ((unsigned)type > GMM_COV_SPHERICAL)
        return gmm_fail(GMM_ERR_INVALID_ARG, "unknown covariance type %d", (int)type);
    double wsum = 0.0;
    for (size_t i = 0; i < k; i++) {
        if (!(weights[i] >= 0.0) || !isfinite(weights[i]))
            return gmm_fail(GMM_ERR_INVALID_ARG, "weights[%zu] is %g; weights must be finite and >= 0", i,
                            weights[i]);
        wsum += weights[i];
    }
    if (!(wsum > 0.0) || !isfinite(wsum))
        return gmm_fail(GMM_ERR_INVALID_ARG, "weights sum to %g; expected a finite positive sum", wsum);
    for (size_t i = 0; i < k * d; i++)
        if (!isfinite(means[i]))
            return gmm_fail(GMM_ERR_INVALID_ARG, "mean of component %zu (label %zu), feature %zu is not finite",
                            i / d + 1, i / d, i % d);
    size_t nc = gmm_covariance_size(type, k, d);
    for (size_t i = 0; i < nc; i++)
        if (!isfinite(covariances[i]))
            return gmm_fail(GMM_ERR_INVALID_ARG, "%s covariance entry %zu is not finite", gmm_covariance_name(type),
                            i);
    if (type == GMM_COV_DIAG || type == GMM_COV_SPHERICAL) {
        for (size_t i = 0; i < nc; i++)
            if (!(covariances[i] > 0.0)) {
                size_t c = type == GMM_COV_DIAG ? i / d : i;
                return gmm_fail(GMM_ERR_NOT_PD, "component %zu (label %zu): %s variance %g is not positive", c + 1, c,
                                gmm_covariance_name(type), covariances[i]);
            }
    } else {
        size_t nmat = type == GMM_COV_FULL ? k : 1;
        for (size_t c = 0; c < nmat; c++) {
            const double *cov = covariances + c * d * d;
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j < i; j++) {
                    double a = cov[i * d + j], b = cov[j * d + i];
                    if (fabs(a - b) > 1e-10 * (fabs(a) + fabs(b)) + 1e-300)
                        return gmm_fail(GMM_ERR_INVALID_ARG,
                                        "covariance of component %zu (label %zu) is not symmetric: [%zu][%zu] = "
                                        "%.17g but [%zu][%zu] = %.17g",
                                        c + 1, c, i, j, a, j, i, b);
                }
        }
    }
    gmm_model *m = gmm_model_alloc(k, d);
    if (!m) return GMM_ERR_NOMEM;
    m->cov_type = type;
    for (size_t i = 0; i < k; i++) m->weights[i] = weights[i] / wsum;
    memcpy(m->means, means, k * d * sizeof(double));
    gmm_cov_expand(type, k, d, covariances, m->covariances);
    gmm_status st = gmm_model_update_precisions(m);
    if (st != GMM_OK) {
        gmm_model_free(m);
        return st;
    }
    *out = m;
    return GMM_OK;
}

size_t gmm_model_n_components(const gmm_model *m) { return m->k; }
size_t gmm_model_n_features(const gmm_model *m) { return m->d; }
const double *gmm_model_weights(const gmm_model *m) { return m->weights; }
const double *gmm_model_means(const gmm_model *m) { return m->means; }
const double *gmm_model_covariances(const gmm_model *m) { return m->covariances; }
gmm_covariance_type gmm_model_covariance_type(const gmm_model *m) { return m->cov_type; }
int gmm_model_converged(const gmm_model *m) { return m->converged; }
int gmm_model_n_iter(const gmm_model *m) { return m->n_iter; }
double gmm_model_lower_bound(const gmm_model *m) { return m->lower_bound; }
int gmm_model_best_run(const gmm_model *m) { return m->best_run; }
int gmm_model_empty_since(const gmm_model *m, size_t c) { return m->empty_since && c < m->k ? m->empty_since[c] : 0; }
const char *gmm_model_device(const gmm_model *m) { return m->device; }

const double *gmm_model_loglik_trace(const gmm_model *m, int *len)
{
    if (len) *len = m->loglik_trace ? m->n_iter : 0;
    return m->loglik_trace;
}

const double *gmm_model_iter_seconds(const gmm_model *m, int *len)
{
    if (len) *len = m->iter_seconds ? m->n_iter : 0;
    return m->iter_seconds;
}

size_t gmm_n_parameters(const gmm_model *m)
{
    size_t k = m->k, d = m->d, cov = 0;
    switch (m->cov_type) {
    case GMM_COV_FULL: cov = k * d * (d + 1) / 2; break;
    case GMM_COV_TIED: cov = d * (d + 1) / 2; break;
    case GMM_COV_DIAG: cov = k * d; break;
    case GMM_COV_SPHERICAL: cov = k; break;
    }
    return (k - 1) + k * d + cov;
}
