/*
 * check.h — the test harness: assertion macros that print file:line, the expression and the values, and
 * count failures instead of aborting, so one run reports every broken check. A test's main ends with
 * `return check_exit();`: 0 when all passed, 1 otherwise. CHECK_SKIP returns 77 (ctest's skip code).
 * Closeness checks are written so that NaN fails: !(|a - b| <= tol).
 */
#ifndef GMM_CHECK_H
#define GMM_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures_ = 0;
static int check_count_ = 0;

#define CHECK(cond)                                                                                                  \
    do {                                                                                                             \
        check_count_++;                                                                                              \
        if (!(cond)) {                                                                                               \
            check_failures_++;                                                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                                 \
        }                                                                                                            \
    } while (0)

/* Passes when |a - b| <= atol + rtol * |b| (b is the reference); fails on NaN or Inf in either. */
#define CHECK_NEAR(a, b, atol, rtol)                                                                                 \
    do {                                                                                                             \
        double ca_ = (double)(a), cb_ = (double)(b);                                                                 \
        double ctol_ = (double)(atol) + (double)(rtol)*fabs(cb_);                                                    \
        check_count_++;                                                                                              \
        if (!(fabs(ca_ - cb_) <= ctol_) || !isfinite(ca_) || !isfinite(cb_)) {                                       \
            check_failures_++;                                                                                       \
            fprintf(stderr, "%s:%d: CHECK_NEAR(%s, %s) failed: %.17g vs %.17g (|diff| %.3g > tol %.3g)\n", __FILE__, \
                    __LINE__, #a, #b, ca_, cb_, fabs(ca_ - cb_), ctol_);                                             \
        }                                                                                                            \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                                           \
    do {                                                                                                             \
        long long ca_ = (long long)(a), cb_ = (long long)(b);                                                        \
        check_count_++;                                                                                              \
        if (ca_ != cb_) {                                                                                            \
            check_failures_++;                                                                                       \
            fprintf(stderr, "%s:%d: CHECK_INT_EQ(%s, %s) failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #b, ca_,   \
                    cb_);                                                                                            \
        }                                                                                                            \
    } while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                                                         \
    do {                                                                                                             \
        const char *ch_ = (haystack), *cn_ = (needle);                                                               \
        check_count_++;                                                                                              \
        if (!ch_ || !strstr(ch_, cn_)) {                                                                             \
            check_failures_++;                                                                                       \
            fprintf(stderr, "%s:%d: CHECK_STR_CONTAINS(%s, %s) failed: \"%s\" does not contain \"%s\"\n", __FILE__,  \
                    __LINE__, #haystack, #needle, ch_ ? ch_ : "(null)", cn_);                                        \
        }                                                                                                            \
    } while (0)

/* Stops the test as skipped (ctest SKIP_RETURN_CODE 77) with a reason. */
#define CHECK_SKIP(reason)                                                                                           \
    do {                                                                                                             \
        fprintf(stderr, "SKIP: %s\n", (reason));                                                                     \
        exit(77);                                                                                                    \
    } while (0)

static inline int check_exit(void)
{
    if (check_count_ == 0) {
        fprintf(stderr, "no checks ran\n");
        return 1;
    }
    fprintf(stderr, "%d checks, %d failed\n", check_count_, check_failures_);
    return check_failures_ ? 1 : 0;
}

#endif /* GMM_CHECK_H */
