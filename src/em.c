/*
 * em.c — the EM driver: option defaults and validation, n_init runs from derived seeds, the iteration loop
 * with scikit-learn's convergence test, the fit record (trace, timings, converged, n_iter), and the choice
 * of the best run. The pass over the data is the backend's; the M-step is mstep.c's.
 */
#include "gmm_internal.h"
#include "backend_cuda.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gmm_options_init(gmm_options *o)
{
    memset(o, 0, sizeof *o);
    o->n_components = 1;
    o->covariance_type = GMM_COV_FULL;
    o->tol = 1e-3;
    o->reg_covar = 1e-6;
    o->max_iter = 100;
    o->n_init = 1;
    o->init = GMM_INIT_KMEANS;
    o->weights_init = NULL;
    o->means_init = NULL;
    o->precisions_init = NULL;
    o->warm_lower_bound = -INFINITY;
    o->seed = 0;
    o->n_threads = 0;
    o->backend = GMM_BACKEND_CPU;
    o->gpu_dtype = GMM_GPU_DTYPE_AUTO;
    o->verbose = 0;
    o->on_iter = NULL;
    o->on_iter_user = NULL;
    o->should_stop = NULL;
    o->should_stop_user = NULL;
}

/* GMM_ERR_CANCELLED when options.should_stop asks the fit to stop, GMM_OK otherwise. */
static gmm_status check_cancel(const gmm_options *o, int run, int iter)
{
    if (o->should_stop && o->should_stop(o->should_stop_user))
        return gmm_fail(GMM_ERR_CANCELLED, "fit cancelled before run %d, iteration %d", run + 1, iter + 1);
    return GMM_OK;
}

/* The progress line of options.verbose: run, iteration, total log-likelihood, change, time. */
static void print_iter(int run, int iter, double loglik, double change, double seconds)
{
    fprintf(stderr, "gmm: run %d iter %d loglik %.6f change %.3e time %.3f ms\n", run + 1, iter, loglik, change,
            1e3 * seconds);
}

/* Checks options against the data shape (everything but the data's values); the message says which
 * option and what is allowed. */
static gmm_status validate_options(size_t n, size_t d, const gmm_options *o)
{
    if (o->n_components < 1)
        return gmm_fail(GMM_ERR_INVALID_ARG, "n_components must be >= 1 (got %d)", o->n_components);
    if (d < 1) return gmm_fail(GMM_ERR_INVALID_ARG, "data must have at least one feature");
    if (n < (size_t)o->n_components)
        return gmm_fail(GMM_ERR_TOO_FEW_POINTS, "%zu points are fewer than the %d components asked for", n,
                        o->n_components);
    if ((unsigned)o->covariance_type > GMM_COV_SPHERICAL)
        return gmm_fail(GMM_ERR_INVALID_ARG, "unknown covariance type %d", (int)o->covariance_type);
    if (!(o->tol >= 0.0) || !isfinite(o->tol))
        return gmm_fail(GMM_ERR_INVALID_ARG, "tol must be >= 0 (got %g)", o->tol);
    if (!(o->reg_covar >= 0.0) || !isfinite(o->reg_covar))
        return gmm_fail(GMM_ERR_INVALID_ARG, "reg_covar must be >= 0 (got %g)", o->reg_covar);
    if (o->max_iter < 0) return gmm_fail(GMM_ERR_INVALID_ARG, "max_iter must be >= 0 (got %d)", o->max_iter);
    if (isnan(o->warm_lower_bound) || o->warm_lower_bound == INFINITY)
        return gmm_fail(GMM_ERR_INVALID_ARG, "warm_lower_bound must be finite or -INFINITY (got %g)",
                        o->warm_lower_bound);
    if (o->n_init < 1) return gmm_fail(GMM_ERR_INVALID_ARG, "n_init must be >= 1 (got %d)", o->n_init);
    if (o->n_threads < 0) return gmm_fail(GMM_ERR_INVALID_ARG, "n_threads must be >= 0 (got %d)", o->n_threads);
    if ((unsigned)o->backend > GMM_BACKEND_AUTO)
        return gmm_fail(GMM_ERR_INVALID_ARG, "unknown backend %d", (int)o->backend);
    if ((unsigned)o->init > GMM_INIT_BINARY)
        return gmm_fail(GMM_ERR_INVALID_ARG, "unknown init method %d", (int)o->init);
    const size_t k = (size_t)o->n_components;
    if (o->weights_init) { /* scikit-learn's _check_weights; used as given, never normalized */
        double sum = 0.0;
        for (size_t c = 0; c < k; c++) {
            if (!(o->weights_init[c] >= 0.0 && o->weights_init[c] <= 1.0))
                return gmm_fail(GMM_ERR_INVALID_ARG, "weights_init[%zu] is %.17g; initial weights must be in [0, 1]",
                                c, o->weights_init[c]);
            sum += o->weights_init[c];
        }
        if (!(fabs(sum - 1.0) <= GMM_WEIGHTS_SUM_TOL))
            return gmm_fail(GMM_ERR_INVALID_ARG, "weights_init sum to %.17g; initial weights must sum to 1 within %g",
                            sum, GMM_WEIGHTS_SUM_TOL);
    }
    if (o->means_init) {
        for (size_t i = 0; i < k * d; i++)
            if (!isfinite(o->means_init[i]))
                return gmm_fail(GMM_ERR_INVALID_ARG,
                                "means_init of component %zu (label %zu), feature %zu is not finite", i / d + 1,
                                i / d, i % d);
    }
    if (o->precisions_init) {
        size_t np = gmm_covariance_size(o->covariance_type, k, d);
        for (size_t i = 0; i < np; i++)
            if (!isfinite(o->precisions_init[i]))
                return gmm_fail(GMM_ERR_INVALID_ARG, "precisions_init entry %zu is not finite", i);
    }
    return GMM_OK;
}

/* Checks that every value of x (n, d) is finite; the message names the first row and column that is not. */
static gmm_status validate_data(gmm_data x, size_t n, size_t d)
{
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(gmm_data_at(x, i)))
            return gmm_fail(GMM_ERR_INVALID_ARG, "data row %zu, column %zu is not finite", i / d, i % d);
    return GMM_OK;
}

/* gmm_fit's whole check of its arguments: options against the data shape, then the data's values. */
static gmm_status validate(gmm_data x, size_t n, size_t d, const gmm_options *o)
{
    if (!x.p || !o) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_fit: data and options must not be NULL");
    gmm_status st = validate_options(n, d, o);
    return st != GMM_OK ? st : validate_data(x, n, d);
}

/* Opens the backend the options ask for and describes it in device. AUTO takes CUDA when a device is
 * usable and the problem fits the kernels (d <= 32, max_k <= 64 and their plan for max_k, the most components
 * any model used on the backend will have, fits the device's shared memory), and falls back to the CPU when the
 * GPU cannot hold the data. */
static gmm_status open_backend(gmm_backend *b, gmm_data x, size_t n, size_t d, const gmm_options *o, size_t max_k,
                               char *device, size_t len)
{
    const int nt = o->n_threads > 0 ? o->n_threads : omp_get_max_threads();
    gmm_status st = GMM_ERR_NO_DEVICE;
    char note[96] = "";
    int want_cuda = o->backend == GMM_BACKEND_CUDA ||
                    (o->backend == GMM_BACKEND_AUTO && d <= GMM_BACKEND_CUDA_MAX_D &&
                     max_k <= GMM_BACKEND_CUDA_MAX_K && gmm_cuda_available(NULL, 0) > 0);
    if (want_cuda) {
        int model_fits = 1;
        char desc[256] = "";
        st = gmm_backend_cuda_open_data(b, x, n, d, o->gpu_dtype, sqrt(o->reg_covar));
        if (st == GMM_OK) {
            /* described before any plan: the device line is the same whichever k a fit on it has */
            gmm_backend_cuda_describe(b, desc, sizeof desc);
            /* the kernels' plan for the largest model: above 16 features shared memory bounds k */
            st = gmm_backend_cuda_check_k(b, max_k);
            if (st != GMM_OK) {
                model_fits = 0;
                b->release(b);
            }
        }
        if (st == GMM_OK) {
            b->n_threads = o->n_threads; /* for the initialization's fallback to the host copy */
            snprintf(device, len, "CUDA: %s", desc);
            return GMM_OK;
        }
        if (o->backend == GMM_BACKEND_CUDA || (model_fits && st != GMM_ERR_NOMEM && st != GMM_ERR_NO_DEVICE))
            return st;
        if (model_fits)
            snprintf(note, sizeof note, "; the GPU could not take the data (%s)", gmm_strerror(st));
        else
            snprintf(note, sizeof note, "; the GPU kernels cannot take k = %zu at d = %zu", max_k, d);
        gmm_clear_error();
    }
    st = gmm_backend_cpu_open_data(b, x, n, d, o->n_threads);
    if (st == GMM_OK) snprintf(device, len, "CPU (%d thread%s)%s", nt, nt == 1 ? "" : "s", note);
    return st;
}

/* Allocates the fit record of m for up to max_iter iterations: trace, timings, empty_since (zeroed). */
static gmm_status alloc_fit_record(gmm_model *m, int max_iter)
{
    const size_t len = max_iter > 0 ? (size_t)max_iter : 1;
    m->loglik_trace = gmm_xcalloc(len, sizeof(double));
    m->iter_seconds = gmm_xcalloc(len, sizeof(double));
    m->empty_since = gmm_xcalloc(m->k, sizeof(int));
    return m->loglik_trace && m->iter_seconds && m->empty_since ? GMM_OK : GMM_ERR_NOMEM;
}

/* Records in m->empty_since the components that the E-step of iteration it (1-based) left empty. */
static void note_empty(gmm_model *m, const gmm_stats *s, int it)
{
    for (size_t c = 0; c < m->k; c++)
        if (s->nk[c] < GMM_EMPTY_FLOOR && m->empty_since[c] == 0) m->empty_since[c] = it;
}

/* One EM run from the initialization of `run` into *out. The change of the first iteration is measured from
 * o->warm_lower_bound (-inf unless warm-starting, as scikit-learn's warm_start). max_iter 0 leaves the initial
 * parameters with n_iter 0 and lower bound -inf, as scikit-learn. */
static gmm_status fit_run(gmm_backend *b, const gmm_options *o, int run, gmm_stats *s, gmm_model **out)
{
    const size_t k = (size_t)o->n_components, d = b->d, n = b->n;
    *out = NULL;
    gmm_model *m = gmm_model_alloc(k, d);
    if (!m) return GMM_ERR_NOMEM;
    m->cov_type = o->covariance_type;
    if (alloc_fit_record(m, o->max_iter) != GMM_OK) {
        gmm_model_free(m);
        return GMM_ERR_NOMEM;
    }
    gmm_rng rng;
    gmm_rng_seed(&rng, o->seed + 0x9e3779b97f4a7c15ULL * (uint64_t)run);
    gmm_status st = gmm_init_params(m, b, o, &rng);
    double lower_bound = o->warm_lower_bound;
    int it = 0;
    while (st == GMM_OK && it < o->max_iter) {
        if ((st = check_cancel(o, run, it)) != GMM_OK) break;
        double t0 = gmm_now();
        double prev = lower_bound;
        st = b->stats(b, m, s);
        if (st != GMM_OK) break;
        if (!isfinite(s->loglik)) {
            st = gmm_fail(GMM_ERR_NOT_PD,
                          "iteration %d: the log-likelihood is not finite; a component may be degenerate "
                          "(increase reg_covar, use fewer components, or scale the data)",
                          it + 1);
            break;
        }
        lower_bound = s->loglik / (double)n;
        note_empty(m, s, it + 1);
        st = gmm_mstep(m, s, n, o->reg_covar, 0);
        if (st != GMM_OK) break;
        m->loglik_trace[it] = s->loglik;
        m->iter_seconds[it] = gmm_now() - t0;
        it++;
        double change = lower_bound - prev;
        if (o->on_iter)
            o->on_iter(o->on_iter_user, run, it, s->loglik, isfinite(change) ? change : NAN, m->iter_seconds[it - 1]);
        else if (o->verbose > 0)
            print_iter(run, it, s->loglik, isfinite(change) ? change : NAN, m->iter_seconds[it - 1]);
        if (fabs(change) < o->tol) {
            m->converged = 1;
            break;
        }
    }
    if (st != GMM_OK) {
        gmm_model_free(m);
        return st;
    }
    m->n_iter = it;
    m->lower_bound = it > 0 ? lower_bound : -INFINITY;
    m->best_run = run;
    m->n_train = n;
    *out = m;
    return GMM_OK;
}

/* ------------------------------------------------------------------------------------------- sessions */

/* Opens s on x without checking the arguments (the callers have): the backend of o for models of up to
 * max_k components. */
static gmm_status session_open_checked(gmm_session *s, gmm_data x, size_t n, size_t d, const gmm_options *o,
                                       size_t max_k)
{
    memset(s, 0, sizeof *s);
    gmm_status st = open_backend(&s->b, x, n, d, o, max_k, s->device, sizeof s->device);
    if (st != GMM_OK) {
        memset(s, 0, sizeof *s);
        return st;
    }
    s->max_k = max_k;
    s->open = 1;
    return GMM_OK;
}

/* The fit of gmm_session_fit once o has been checked against the session: n_init runs, the best kept. */
static gmm_status session_fit_checked(gmm_session *ses, const gmm_options *o, gmm_model **out)
{
    gmm_stats s;
    gmm_status st = gmm_stats_alloc(&s, (size_t)o->n_components, ses->b.d);
    if (st != GMM_OK) return st;
    gmm_model *best = NULL;
    for (int run = 0; run < o->n_init && st == GMM_OK; run++) {
        gmm_model *m = NULL;
        st = fit_run(&ses->b, o, run, &s, &m);
        if (st != GMM_OK) break;
        /* scikit-learn keeps the first run with the highest lower bound; with max_iter 0 (no lower bound) the
         * last run's initial parameters */
        if (!best || m->lower_bound > best->lower_bound || o->max_iter == 0) {
            gmm_model_free(best);
            best = m;
        } else {
            gmm_model_free(m);
        }
    }
    gmm_stats_free(&s);
    if (st != GMM_OK) {
        gmm_model_free(best);
        return st;
    }
    snprintf(best->device, sizeof best->device, "%s%s%s", ses->device,
             ses->b.init_on_host ? "; initialization on the CPU (no room on the GPU for its per-point state)" : "",
             ses->b.precision_note ? ses->b.precision_note : "");
    *out = best;
    return GMM_OK;
}

gmm_status gmm_session_open(gmm_session *s, const double *x, size_t n, size_t d, const gmm_options *o, size_t max_k)
{
    return gmm_session_open_data(s, gmm_data_double(x), n, d, o, max_k);
}

gmm_status gmm_session_open_data(gmm_session *s, gmm_data x, size_t n, size_t d, const gmm_options *o, size_t max_k)
{
    if (!s) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_session_open: session must not be NULL");
    memset(s, 0, sizeof *s);
    gmm_clear_error();
    if (!x.p || !o) return gmm_fail(GMM_ERR_INVALID_ARG, "data and options must not be NULL");
    if (d < 1) return gmm_fail(GMM_ERR_INVALID_ARG, "data must have at least one feature");
    if (n == 0) return gmm_fail(GMM_ERR_INVALID_ARG, "no data points");
    if (max_k < 1) return gmm_fail(GMM_ERR_INVALID_ARG, "the largest number of components must be >= 1 (got 0)");
    if (o->n_threads < 0) return gmm_fail(GMM_ERR_INVALID_ARG, "n_threads must be >= 0 (got %d)", o->n_threads);
    if ((unsigned)o->backend > GMM_BACKEND_AUTO)
        return gmm_fail(GMM_ERR_INVALID_ARG, "unknown backend %d", (int)o->backend);
    gmm_status st = validate_data(x, n, d);
    return st != GMM_OK ? st : session_open_checked(s, x, n, d, o, max_k);
}

gmm_status gmm_session_fit(gmm_session *s, const gmm_options *o, gmm_model **out)
{
    if (!out) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_session_fit: out must not be NULL");
    *out = NULL;
    gmm_clear_error();
    if (!s || !s->open || !o)
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_session_fit: an open session and options are needed");
    gmm_status st = validate_options(s->b.n, s->b.d, o);
    if (st != GMM_OK) return st;
    if ((size_t)o->n_components > s->max_k)
        return gmm_fail(GMM_ERR_INVALID_ARG, "n_components %d is more than the %zu the session was opened for",
                        o->n_components, s->max_k);
    return session_fit_checked(s, o, out);
}

gmm_status gmm_session_predict(gmm_session *s, const gmm_model *m, double *logp, int *labels, double *resp)
{
    gmm_clear_error();
    if (!s || !s->open || !m)
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_session_predict: an open session and a model are needed");
    if (m->d != s->b.d)
        return gmm_fail(GMM_ERR_INVALID_ARG, "the model has %zu features, the data %zu", m->d, s->b.d);
    /* log p is always computed: a row that is not finite (overflow on the device) is redone on the host */
    double *lp = logp ? logp : gmm_xmalloc((s->b.n ? s->b.n : 1) * sizeof *lp);
    if (!lp) return GMM_ERR_NOMEM;
    gmm_status st = s->b.predict(&s->b, m, lp, labels, resp);
    if (st == GMM_OK) st = gmm_infer_check_rows(m, s->b.x, s->b.n, lp, labels, resp);
    if (lp != logp) free(lp);
    return st;
}

void gmm_session_close(gmm_session *s)
{
    if (!s) return;
    if (s->open) s->b.release(&s->b);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------------------------ public fit */

/* gmm_fit on data of either element type. */
static gmm_status fit_data(gmm_data x, size_t n, size_t d, const gmm_options *o, gmm_model **out)
{
    if (!out) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_fit: out must not be NULL");
    *out = NULL;
    gmm_clear_error();
    gmm_status st = validate(x, n, d, o);
    if (st != GMM_OK) return st;
    gmm_session s;
    st = session_open_checked(&s, x, n, d, o, (size_t)o->n_components);
    if (st != GMM_OK) return st;
    st = session_fit_checked(&s, o, out);
    gmm_session_close(&s);
    return st;
}

/* gmm_fit_predict on data of either element type. */
static gmm_status fit_predict_data(gmm_data x, size_t n, size_t d, const gmm_options *o, gmm_model **out, int *labels)
{
    if (!out) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_fit_predict: out must not be NULL");
    *out = NULL;
    gmm_clear_error();
    if (!labels) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_fit_predict: labels must not be NULL");
    gmm_status st = validate(x, n, d, o);
    if (st != GMM_OK) return st;
    gmm_session s;
    st = session_open_checked(&s, x, n, d, o, (size_t)o->n_components);
    if (st != GMM_OK) return st;
    gmm_model *m = NULL;
    st = session_fit_checked(&s, o, &m);
    if (st == GMM_OK) st = gmm_session_predict(&s, m, NULL, labels, NULL);
    gmm_session_close(&s);
    if (st != GMM_OK) {
        gmm_model_free(m);
        return st;
    }
    *out = m;
    return GMM_OK;
}

gmm_status gmm_fit(const double *x, size_t n, size_t d, const gmm_options *o, gmm_model **out)
{
    return fit_data(gmm_data_double(x), n, d, o, out);
}

gmm_status gmm_fit_f32(const float *x, size_t n, size_t d, const gmm_options *o, gmm_model **out)
{
    return fit_data(gmm_data_float(x), n, d, o, out);
}

gmm_status gmm_fit_predict(const double *x, size_t n, size_t d, const gmm_options *o, gmm_model **out, int *labels)
{
    return fit_predict_data(gmm_data_double(x), n, d, o, out, labels);
}

gmm_status gmm_fit_predict_f32(const float *x, size_t n, size_t d, const gmm_options *o, gmm_model **out, int *labels)
{
    return fit_predict_data(gmm_data_float(x), n, d, o, out, labels);
}
