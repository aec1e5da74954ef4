/*
 * infer.c — using a model: predict, predict_proba, score_samples, score, bic, aic (through the CPU
 * backend's predict pass), gmm_infer (the same pass on a chosen backend, through a session of em.c) and
 * sampling from the mixture.
 */
#include "gmm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Row i of a predict pass computed again on the host, one component at a time in double: log p (returned),
 * the label and the responsibilities (each optional). -inf or NaN only when every component's log-density
 * is -inf or NaN (its squared Mahalanobis distance overflows). */
static double infer_row(const gmm_model *m, const double *xi, int *label, double *resp)
{
    const size_t k = m->k, d = m->d;
    double max = -INFINITY, sum = 0.0;
    size_t best = 0;
    for (size_t c = 0; c < k; c++) {
        double lp = log(m->weights[c]) +
                    gmm_log_gauss_point(xi, m->means + c * d, m->prec_chol + c * d * d, m->log_det_chol[c], d);
        if (resp) resp[c] = lp;
        if (lp > max) { /* first maximum, as numpy's argmax */
            max = lp;
            best = c;
        }
    }
    if (label) *label = (int)best;
    if (!isfinite(max)) return max;
    for (size_t c = 0; c < k; c++) {
        double lp = log(m->weights[c]) +
                    gmm_log_gauss_point(xi, m->means + c * d, m->prec_chol + c * d * d, m->log_det_chol[c], d);
        sum += exp(lp - max);
    }
    const double lse = max + log(sum);
    if (resp)
        for (size_t c = 0; c < k; c++) resp[c] = exp(resp[c] - lse);
    return lse;
}

gmm_status gmm_infer_check_rows(const gmm_model *m, gmm_data x, size_t n, double *logp, int *labels, double *resp)
{
    const size_t k = m->k, d = m->d;
    double *row = NULL; /* row i as double, allocated at the first row that needs redoing */
    for (size_t i = 0; i < n; i++) {
        if (isfinite(logp[i])) continue;
        if (!row && !(row = gmm_xmalloc(d * sizeof *row))) return GMM_ERR_NOMEM;
        const double *xi = gmm_data_row(x, i, d, row);
        logp[i] = infer_row(m, xi, labels ? labels + i : NULL, resp ? resp + i * k : NULL);
        if (!isfinite(logp[i])) {
            size_t j = 0, far = 0;
            for (; j < d; j++)
                if (fabs(xi[j]) > fabs(xi[far])) far = j;
            const double v = xi[far];
            free(row);
            return gmm_fail(GMM_ERR_INVALID_ARG,
                            "data row %zu (0-based): its log-density is below the smallest double in every "
                            "component (the point is too far from the model: column %zu is %.17g); remove or "
                            "rescale it",
                            i, far, v);
        }
    }
    free(row);
    return GMM_OK;
}

/* Runs the CPU predict pass over x (n, d) with the model's dimension checked and every row's result finite
 * (gmm_infer_check_rows). */
static gmm_status predict_pass(const gmm_model *m, const double *x, size_t n, double *logp, int *labels, double *resp)
{
    gmm_clear_error();
    if (!m || !x) return gmm_fail(GMM_ERR_INVALID_ARG, "model and data must not be NULL");
    if (n == 0) return gmm_fail(GMM_ERR_INVALID_ARG, "no data points");
    double *lp = logp ? logp : gmm_xmalloc(n * sizeof *lp);
    if (!lp) return GMM_ERR_NOMEM;
    gmm_backend b;
    gmm_status st = gmm_backend_cpu_open(&b, x, n, m->d, 0);
    if (st == GMM_OK) {
        st = b.predict(&b, m, lp, labels, resp);
        b.release(&b);
    }
    if (st == GMM_OK) st = gmm_infer_check_rows(m, gmm_data_double(x), n, lp, labels, resp);
    if (lp != logp) free(lp);
    return st;
}

gmm_status gmm_predict(const gmm_model *m, const double *x, size_t n, int *labels)
{
    return predict_pass(m, x, n, NULL, labels, NULL);
}

gmm_status gmm_predict_proba(const gmm_model *m, const double *x, size_t n, double *proba)
{
    return predict_pass(m, x, n, NULL, NULL, proba);
}

gmm_status gmm_score_samples(const gmm_model *m, const double *x, size_t n, double *logp)
{
    return predict_pass(m, x, n, logp, NULL, NULL);
}

/* gmm_infer on data of either element type. */
static gmm_status infer_data(const gmm_model *m, gmm_data x, size_t n, const gmm_options *o, double *logp,
                             int *labels, double *resp)
{
    gmm_clear_error();
    if (!m || !x.p) return gmm_fail(GMM_ERR_INVALID_ARG, "model and data must not be NULL");
    if (n == 0) return gmm_fail(GMM_ERR_INVALID_ARG, "no data points");
    gmm_options cpu;
    if (!o) {
        gmm_options_init(&cpu); /* the CPU reference, OpenMP's default thread count */
        o = &cpu;
    }
    gmm_session s;
    gmm_status st = gmm_session_open_data(&s, x, n, m->d, o, m->k);
    if (st != GMM_OK) return st;
    st = gmm_session_predict(&s, m, logp, labels, resp);
    gmm_session_close(&s);
    return st;
}

gmm_status gmm_infer(const gmm_model *m, const double *x, size_t n, const gmm_options *o, double *logp, int *labels,
                     double *resp)
{
    return infer_data(m, gmm_data_double(x), n, o, logp, labels, resp);
}

gmm_status gmm_infer_f32(const gmm_model *m, const float *x, size_t n, const gmm_options *o, double *logp,
                         int *labels, double *resp)
{
    return infer_data(m, gmm_data_float(x), n, o, logp, labels, resp);
}

double gmm_mean_logp(const double *logp, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += logp[i];
    return s / (double)n;
}

double gmm_bic_from_mean(const gmm_model *m, double mean_logp, size_t n)
{
    return -2.0 * mean_logp * (double)n + (double)gmm_n_parameters(m) * log((double)n);
}

double gmm_aic_from_mean(const gmm_model *m, double mean_logp, size_t n)
{
    return -2.0 * mean_logp * (double)n + 2.0 * (double)gmm_n_parameters(m);
}

gmm_status gmm_score(const gmm_model *m, const double *x, size_t n, double *mean_logp)
{
    double *logp = gmm_xmalloc((n ? n : 1) * sizeof *logp);
    if (!logp) return GMM_ERR_NOMEM;
    gmm_status st = gmm_score_samples(m, x, n, logp);
    if (st == GMM_OK) *mean_logp = gmm_mean_logp(logp, n);
    free(logp);
    return st;
}

gmm_status gmm_bic(const gmm_model *m, const double *x, size_t n, double *bic)
{
    double mean;
    gmm_status st = gmm_score(m, x, n, &mean);
    if (st == GMM_OK) *bic = gmm_bic_from_mean(m, mean, n);
    return st;
}

gmm_status gmm_aic(const gmm_model *m, const double *x, size_t n, double *aic)
{
    double mean;
    gmm_status st = gmm_score(m, x, n, &mean);
    if (st == GMM_OK) *aic = gmm_aic_from_mean(m, mean, n);
    return st;
}

gmm_status gmm_sample(const gmm_model *m, size_t n, uint64_t seed, double **x_out, int **labels_out)
{
    gmm_clear_error();
    if (!m || !x_out) return gmm_fail(GMM_ERR_INVALID_ARG, "model and output must not be NULL");
    *x_out = NULL;
    if (labels_out) *labels_out = NULL;
    if (n == 0) return gmm_fail(GMM_ERR_INVALID_ARG, "number of samples must be >= 1");
    const size_t k = m->k, d = m->d;
    if (n > SIZE_MAX / sizeof(double) / d) /* n * d * sizeof(double) (and n * sizeof(int)) must not wrap */
        return gmm_fail(GMM_ERR_NOMEM, "%zu samples of %zu features are too many to hold in memory", n, d);
    /* diag and spherical: L = diag(sqrt(v)), stored as k x d (the full route's nonzero terms, same bits) */
    const int diag = m->cov_type == GMM_COV_DIAG || m->cov_type == GMM_COV_SPHERICAL;
    const size_t lsize = diag ? d : d * d;
    double *x = gmm_xmalloc(n * d * sizeof *x);
    int *labels = gmm_xmalloc(n * sizeof *labels);
    double *chol = gmm_xmalloc(k * lsize * sizeof *chol);
    double *z = gmm_xmalloc(d * sizeof *z);
    if (!x || !labels || !chol || !z) {
        free(x);
        free(labels);
        free(chol);
        free(z);
        return GMM_ERR_NOMEM;
    }
    for (size_t c = 0; c < k; c++) {
        int bad = 0;
        if (diag)
            for (size_t j = 0; j < d; j++) {
                const double v = m->covariances[c * d * d + j * d + j];
                bad |= !(v > 0.0) || !isfinite(v);
                chol[c * d + j] = sqrt(v);
            }
        else {
            memcpy(chol + c * d * d, m->covariances + c * d * d, d * d * sizeof *chol);
            bad = gmm_cholesky_lower(chol + c * d * d, d);
        }
        if (bad) {
            free(x);
            free(labels);
            free(chol);
            free(z);
            return gmm_fail(GMM_ERR_NOT_PD, "component %zu (label %zu): covariance is not positive definite", c + 1,
                            c);
        }
    }
    /* Each point: a component by inverse-CDF on the weights, then mean + L z with z standard normal. */
    gmm_rng rng;
    gmm_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        double u = gmm_rng_uniform(&rng), acc = 0.0;
        size_t c = 0;
        for (; c + 1 < k; c++) {
            acc += m->weights[c];
            if (u < acc) break;
        }
        for (size_t j = 0; j < d; j++) z[j] = gmm_rng_normal(&rng);
        const double *l = chol + c * lsize;
        for (size_t a = 0; a < d; a++) {
            double v = m->means[c * d + a];
            if (diag)
                v += l[a] * z[a];
            else
                for (size_t j = 0; j <= a; j++) v += l[a * d + j] * z[j];
            x[i * d + a] = v;
        }
        labels[i] = (int)c;
    }
    free(chol);
    free(z);
    *x_out = x;
    if (labels_out)
        *labels_out = labels;
    else
        free(labels);
    return GMM_OK;
}
