/*
 * mstep.c — sufficient statistics containers and the M-step: the one implementation of the parameter
 * update that every backend's statistics feed (docs/DESIGN.md, "Data flow").
 */
#include "gmm_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

gmm_status gmm_stats_alloc(gmm_stats *s, size_t k, size_t d)
{
    memset(s, 0, sizeof *s);
    s->k = k;
    s->d = d;
    s->nk = gmm_xcalloc(k, sizeof(double));
    s->sk = gmm_xcalloc(k * d, sizeof(double));
    s->tk = gmm_xcalloc(k * d * d, sizeof(double));
    if (!s->nk || !s->sk || !s->tk) {
        gmm_stats_free(s);
        return GMM_ERR_NOMEM;
    }
    return GMM_OK;
}

void gmm_stats_free(gmm_stats *s)
{
    free(s->nk);
    free(s->sk);
    free(s->tk);
    memset(s, 0, sizeof *s);
}

void gmm_stats_zero(gmm_stats *s)
{
    memset(s->nk, 0, s->k * sizeof(double));
    memset(s->sk, 0, s->k * s->d * sizeof(double));
    memset(s->tk, 0, s->k * s->d * s->d * sizeof(double));
    s->loglik = 0.0;
}

/* One component's mean and full covariance (reg_covar not yet added) from its statistics around the old
 * mean c (in: mean, out: the new mean), as scikit-learn computes them with nk = N_k + 10 eps:
 *   mean' = sum_i r_i x_i / nk = c + delta, delta = (S - 10 eps c) / nk,
 *   cov   = sum_i r_i (x_i - mean')(x_i - mean')^T / nk = (T - delta S^T - S delta^T + N_k delta delta^T) / nk.
 * For an ordinary component delta = S / nk to within 10 eps |c| / nk; for an empty one (N_k = S = T = 0)
 * mean' = c - 10 eps c / (10 eps) ~ 0 and cov = 0, as scikit-learn's. delta is (d) scratch. */
static void component_update(size_t d, double n_k, const double *sk, const double *tk, double *mean, double *cov,
                             double *delta)
{
    const double nk = n_k + 10.0 * DBL_EPSILON;
    /* delta is the move the stored mean really makes (c + delta rounded, minus c): the covariance identity
     * holds for any delta, and so it is the spread around the mean the model keeps (a constant feature keeps
     * variance exactly 0, as in scikit-learn) */
    for (size_t i = 0; i < d; i++) delta[i] = (mean[i] + (sk[i] - 10.0 * DBL_EPSILON * mean[i]) / nk) - mean[i];
    for (size_t i = 0; i < d; i++)
        for (size_t j = i; j < d; j++) {
            double v = (tk[i * d + j] - delta[i] * sk[j] - sk[i] * delta[j] + n_k * delta[i] * delta[j]) / nk;
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
    for (size_t i = 0; i < d; i++) mean[i] += delta[i];
}

gmm_status gmm_mstep(gmm_model *m, const gmm_stats *s, size_t n, double reg_covar, int init)
{
    const size_t k = m->k, d = m->d;
    for (size_t c = 0; c < k; c++)
        if (!isfinite(s->nk[c]))
            return gmm_fail(GMM_ERR_NOT_PD,
                            "component %zu (label %zu): its responsibilities are not finite; the data or the "
                            "model overflowed (scale the data or increase reg_covar)",
                            c + 1, c);
    double *delta = gmm_xmalloc(d * sizeof *delta);
    if (!delta) return GMM_ERR_NOMEM;
    /* Per component, with N_k + 10 eps as scikit-learn (an empty component is kept, as there). */
    double wsum = 0.0;
    for (size_t c = 0; c < k; c++) {
        component_update(d, s->nk[c], s->sk + c * d, s->tk + c * d * d, m->means + c * d, m->covariances + c * d * d,
                         delta);
        m->weights[c] = s->nk[c] + 10.0 * DBL_EPSILON;
        wsum += m->weights[c];
    }
    free(delta);
    /* The covariance type's estimator from the full ones (scikit-learn's formulas), then + reg_covar. */
    switch (m->cov_type) {
    case GMM_COV_FULL: break;
    case GMM_COV_TIED: {               /* sum_k N_k Sigma_k / sum_k N_k, shared by every component */
        double *tied = m->covariances; /* component 0's slot accumulates */
        for (size_t i = 0; i < d * d; i++) {
            double v = 0.0;
            for (size_t c = 0; c < k; c++) v += m->weights[c] * m->covariances[c * d * d + i];
            tied[i] = v / wsum;
        }
        for (size_t c = 1; c < k; c++) memcpy(m->covariances + c * d * d, tied, d * d * sizeof(double));
        break;
    }
    case GMM_COV_DIAG:
    case GMM_COV_SPHERICAL:
        for (size_t c = 0; c < k; c++) {
            double *cov = m->covariances + c * d * d, mean_var = 0.0;
            for (size_t i = 0; i < d; i++) mean_var += cov[i * d + i];
            mean_var /= (double)d;
            for (size_t i = 0; i < d; i++)
                for (size_t j = 0; j < d; j++)
                    if (i != j)
                        cov[i * d + j] = 0.0;
                    else if (m->cov_type == GMM_COV_SPHERICAL)
                        cov[i * d + j] = mean_var;
        }
        break;
    }
    for (size_t c = 0; c < k; c++)
        for (size_t i = 0; i < d; i++) m->covariances[c * d * d + i * d + i] += reg_covar;
    const double divisor = init ? (double)n : wsum;
    for (size_t c = 0; c < k; c++) m->weights[c] /= divisor;
    return gmm_model_update_precisions(m);
}
