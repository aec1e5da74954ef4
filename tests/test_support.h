/*
 * test_support.h — helpers that several tests share beyond the assertions of check.h: the scratch folder
 * GMM_TEST_TMP and random finite doubles of every magnitude. Header-only (static inline).
 */
#ifndef GMM_TEST_SUPPORT_H
#define GMM_TEST_SUPPORT_H

#include "gmm_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Creates GMM_TEST_TMP if it does not exist; 0 on success, 1 (after a message) otherwise. */
static inline int test_make_tmp_dir(void)
{
    if (mkdir(GMM_TEST_TMP, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", GMM_TEST_TMP, strerror(errno));
        return 1;
    }
    return 0;
}

/* A random finite double from raw bits: every exponent, subnormals and signs included. */
static inline double test_random_finite(gmm_rng *rng)
{
    for (;;) {
        uint64_t bits = gmm_rng_next(rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (isfinite(v)) return v;
    }
}

#endif /* GMM_TEST_SUPPORT_H */
