/*
 * test_cancel.c — the cancellation hook (gmm_options.should_stop): a hook that asks to stop before
 * iteration j stops the fit there with GMM_ERR_CANCELLED, no model and a message; one that never asks
 * leaves the fit bit for bit what it is without a hook; it is consulted once per EM iteration of every run.
 */
#include "check.h"
#include "gmm_internal.h"

#include <string.h>

/* The hook's state: how often it was called and from which call on it asks to stop (0 = never). */
typedef struct stop_after {
    int calls;
    int stop_at;
} stop_after;

static int should_stop(void *user)
{
    stop_after *s = user;
    s->calls++;
    return s->stop_at > 0 && s->calls >= s->stop_at;
}

static double *two_blobs(size_t n)
{
    static const double w[2] = {0.5, 0.5}, mu[4] = {0.0, 0.0, 3.0, 3.0}, cov[8] = {1, 0, 0, 1, 1, 0.5, 0.5, 1};
    gmm_model *m = NULL;
    CHECK(gmm_model_from_params(2, 2, GMM_COV_FULL, w, mu, cov, &m) == GMM_OK);
    double *x = NULL;
    CHECK(gmm_sample(m, n, 3, &x, NULL) == GMM_OK);
    gmm_model_free(m);
    return x;
}

static void test_stop_midway(double *x, size_t n)
{
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 2;
    o.tol = 0.0; /* never converges: only max_iter or the hook end it */
    o.max_iter = 50;
    stop_after s = {0, 5};
    o.should_stop = should_stop;
    o.should_stop_user = &s;
    gmm_model *m = (gmm_model *)&s; /* must be reset to NULL */
    CHECK_INT_EQ(gmm_fit(x, n, 2, &o, &m), GMM_ERR_CANCELLED);
    CHECK(m == NULL);
    CHECK_INT_EQ(s.calls, 5);
    CHECK_STR_CONTAINS(gmm_last_error(), "cancelled before run 1, iteration 5");
    CHECK(strcmp(gmm_strerror(GMM_ERR_CANCELLED), "cancelled") == 0);
}

static void test_never_stop(double *x, size_t n)
{
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 2;
    o.tol = 0.0;
    o.max_iter = 7;
    o.n_init = 3;
    gmm_model *plain = NULL, *hooked = NULL;
    CHECK(gmm_fit(x, n, 2, &o, &plain) == GMM_OK);
    stop_after s = {0, 0};
    o.should_stop = should_stop;
    o.should_stop_user = &s;
    CHECK(gmm_fit(x, n, 2, &o, &hooked) == GMM_OK);
    CHECK_INT_EQ(s.calls, 3 * 7); /* once per iteration of each of the three runs */
    if (plain && hooked) {
        CHECK(memcmp(plain->means, hooked->means, 4 * sizeof(double)) == 0);
        CHECK(memcmp(plain->covariances, hooked->covariances, 8 * sizeof(double)) == 0);
        CHECK(memcmp(plain->weights, hooked->weights, 2 * sizeof(double)) == 0);
    }
    gmm_model_free(plain);
    gmm_model_free(hooked);
}

int main(void)
{
    const size_t n = 2000;
    double *x = two_blobs(n);
    test_stop_midway(x, n);
    test_never_stop(x, n);
    gmm_free(x);
    return check_exit();
}
