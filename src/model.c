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
    int failed = 0;
    m->loglik_trace = dup_array(src->loglik_trace, (size_t)src->n_iter, &failed);
    m->iter_seconds = dup_array(src->iter_seconds, (size_t)src->n_iter, &failed);
    if (failed) {
        gmm_model_free(m);
        return NULL;
    }
    return m;
}

gmm_status gmm_model_update_precisions(gmm_model *m)
{
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
                            "component %zu: covariance is not positive definite (leading minor %d is "
                            "not positive); increase reg_covar, use fewer components, or scale the data",
                            k, bad);
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

gmm_status gmm_model_from_params(size_t k, size_t d, const double *weights, const double *means,
                                 const double *covariances, gmm_model **out)
{
    *out = NULL;
    if (k == 0 || d == 0 || !weights || !means || !covariances)
        return gmm_fail(GMM_ERR_INVALID_ARG, "model needs k >= 1, d >= 1 and weights, means, covariances");
    double wsum = 0.0;
    for (size_t i = 0; i < k; i++) {
        if (!(weights[i] >= 0.0) || !isfinite(weights[i]))
            return gmm_fail(GMM_ERR_INVALID_ARG, "weight %zu is %g; weights must be finite and >= 0", i,
                            weights[i]);
        wsum += weights[i];
    }
    if (!(wsum > 0.0)) return gmm_fail(GMM_ERR_INVALID_ARG, "weights sum to %g; expected a positive sum", wsum);
    for (size_t i = 0; i < k * d; i++)
        if (!isfinite(means[i]))
            return gmm_fail(GMM_ERR_INVALID_ARG, "mean of component %zu, feature %zu is not finite", i / d,
                            i % d);
    for (size_t c = 0; c < k; c++) {
        const double *cov = covariances + c * d * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                double a = cov[i * d + j], b = cov[j * d + i];
                if (!isfinite(a))
                    return gmm_fail(GMM_ERR_INVALID_ARG, "covariance %zu [%zu][%zu] is not finite", c, i, j);
                if (fabs(a - b) > 1e-10 * (fabs(a) + fabs(b)) + 1e-300)
                    return gmm_fail(GMM_ERR_INVALID_ARG,
                                    "covariance %zu is not symmetric: [%zu][%zu] = %.17g but [%zu][%zu] = %.17g",
                                    c, i, j, a, j, i, b);
            }
    }
    gmm_model *m = gmm_model_alloc(k, d);
    if (!m) return GMM_ERR_NOMEM;
    for (size_t i = 0; i < k; i++) m->weights[i] = weights[i] / wsum;
    memcpy(m->means, means, k * d * sizeof(double));
    memcpy(m->covariances, covariances, k * d * d * sizeof(double));
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
    size_t k = m->k, d = m->d;
    return (k - 1) + k * d + k * d * (d + 1) / 2;
}
