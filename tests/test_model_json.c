/*
 * test_model_json.c — gmm_model_save / gmm_model_load: bit-exact round trips (parameters and fit record,
 * including doubles that cJSON's own printer would round), the shipped data/assignment_model.json, the
 * precise messages for malformed files, and saves that fail without leaving a file behind.
 */
#include "check.h"
#include "gmm.h"
#include "gmm_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP GMM_TEST_TMP "/model_json_"

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* The temporary name gmm_atomic_open uses beside path (util.c). */
static int tmp_exists(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    return file_exists(tmp);
}

/* Writes text to path (test helper; aborts the test on failure). */
static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* Reads a whole file into a NUL-terminated malloc'd buffer; NULL if it cannot be read. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int same_bits(const double *a, const double *b, size_t n)
{
    if (n == 0) return 1;
    if (!a || !b) return 0;
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* A random model: k components in d dimensions, covariances A A^T + I (exactly symmetric), awkward doubles
 * in the means, and a fit record whose trace holds n_iter random finite bit patterns. */
static gmm_model *random_model(size_t k, size_t d, int n_iter, uint64_t seed)
{
    gmm_rng rng;
    gmm_rng_seed(&rng, seed);
    double *w = malloc(k * sizeof *w), *mu = malloc(k * d * sizeof *mu), *cov = malloc(k * d * d * sizeof *cov);
    double *a = malloc(d * d * sizeof *a);
    for (size_t c = 0; c < k; c++) {
        w[c] = 0.05 + gmm_rng_uniform(&rng);
        for (size_t i = 0; i < d; i++) mu[c * d + i] = 10.0 * gmm_rng_normal(&rng);
        for (size_t i = 0; i < d * d; i++) a[i] = gmm_rng_normal(&rng);
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) {
                double s = 0.0;
                for (size_t t = 0; t < d; t++) s += a[i * d + t] * a[j * d + t];
                cov[(c * d + i) * d + j] = s + (i == j ? 1.0 : 0.0);
            }
    }
    /* Values that a 15-digit or integer print would damage, or that test the edges of the format. */
    const double awkward[] = {0.1 + 0.2,  -0.0,       4.9406564584124654e-324, DBL_MAX, -DBL_MIN, 1e22,
                              123456789012345678.0, 3.0, -2147483648.0};
    for (size_t i = 0; i < sizeof awkward / sizeof awkward[0] && i < k * d; i++) mu[i] = awkward[i];

    gmm_model *m = NULL;
    gmm_status st = gmm_model_from_params(k, d, w, mu, cov, &m);
    CHECK_INT_EQ(st, GMM_OK);
    free(w);
    free(mu);
    free(cov);
    free(a);
    if (!m) return NULL;
    m->converged = 1;
    m->n_iter = n_iter;
    m->best_run = 2;
    m->lower_bound = -1.2345678901234567;
    m->n_train = 5000;
    m->loglik_trace = malloc((size_t)n_iter * sizeof(double));
    m->iter_seconds = malloc((size_t)n_iter * sizeof(double));
    for (int i = 0; i < n_iter; i++) {
        double x;
        do {
            uint64_t bits = gmm_rng_next(&rng);
            memcpy(&x, &bits, sizeof x);
        } while (!isfinite(x));
        m->loglik_trace[i] = i < 3 ? -9672.0 + 0.1 * i : x; /* a few plain values, then anything finite */
        m->iter_seconds[i] = 1e-3 * gmm_rng_uniform(&rng);
    }
    return m;
}

/* Every field of a and b, bit for bit. */
static void check_models_identical(const gmm_model *a, const gmm_model *b)
{
    CHECK_INT_EQ(gmm_model_n_components(b), gmm_model_n_components(a));
    CHECK_INT_EQ(gmm_model_n_features(b), gmm_model_n_features(a));
    if (a->k != b->k || a->d != b->d) return;
    size_t k = a->k, d = a->d;
    CHECK_INT_EQ(b->cov_type, a->cov_type);
    CHECK(same_bits(a->weights, b->weights, k));
    CHECK(same_bits(a->means, b->means, k * d));
    CHECK(same_bits(a->covariances, b->covariances, k * d * d));
    CHECK(same_bits(a->prec_chol, b->prec_chol, k * d * d));
    CHECK(same_bits(a->log_det_chol, b->log_det_chol, k));
    CHECK_INT_EQ(b->converged, a->converged);
    CHECK_INT_EQ(b->n_iter, a->n_iter);
    CHECK_INT_EQ(b->best_run, a->best_run);
    CHECK_INT_EQ(b->n_train, a->n_train);
    CHECK(same_bits(&a->lower_bound, &b->lower_bound, 1));
    int la = -1, lb = -2;
    const double *ta = gmm_model_loglik_trace(a, &la), *tb = gmm_model_loglik_trace(b, &lb);
    CHECK_INT_EQ(lb, la);
    if (la == lb) CHECK(same_bits(ta, tb, (size_t)la));
    const double *sa = gmm_model_iter_seconds(a, &la), *sb = gmm_model_iter_seconds(b, &lb);
    CHECK_INT_EQ(lb, la);
    if (la == lb) CHECK(same_bits(sa, sb, (size_t)la));
}

static void test_round_trip(void)
{
    const char *path = TMP "round_trip.json", *path2 = TMP "round_trip_again.json";
    gmm_model *m = random_model(5, 3, 20000, 42);
    if (!m) return;
    CHECK_INT_EQ(gmm_model_save(m, path), GMM_OK);
    CHECK(!tmp_exists(path));
    gmm_model *back = NULL;
    gmm_status st = gmm_model_load(path, &back);
    CHECK_INT_EQ(st, GMM_OK);
    if (st != GMM_OK) fprintf(stderr, "load: %s\n", gmm_last_error());
    if (back) {
        check_models_identical(m, back);
        CHECK(back->means[1] == 0.0 && signbit(back->means[1])); /* -0.0 keeps its sign */
        CHECK(back->means[3] == DBL_MAX);
        /* Saving what was loaded gives the same bytes. */
        CHECK_INT_EQ(gmm_model_save(back, path2), GMM_OK);
        char *t1 = read_text(path), *t2 = read_text(path2);
        CHECK(t1 && t2 && strcmp(t1, t2) == 0);
        CHECK(t1 && strstr(t1, "0.30000000000000004") != NULL); /* cJSON's printer would write 0.3 */
        CHECK(t1 && strstr(t1, "\"format\":\t\"gmm-model\"") != NULL);
        free(t1);
        free(t2);
    }
    gmm_model_free(back);

    /* Saving over an existing file replaces it. */
    m->converged = 0;
    m->n_iter = 2;
    CHECK_INT_EQ(gmm_model_save(m, path), GMM_OK);
    back = NULL;
    CHECK_INT_EQ(gmm_model_load(path, &back), GMM_OK);
    if (back) check_models_identical(m, back);
    gmm_model_free(back);
    gmm_model_free(m);
    remove(path);
    remove(path2);
}

/* A model without a fit record: no "fit" in the file, an empty record after loading. */
static void test_round_trip_unfitted(void)
{
    const char *path = TMP "unfitted.json";
    const double w[2] = {0.25, 0.75}, mu[2] = {-1.0, 1.0 / 3.0}, cov[2] = {0.5, 2.0};
    gmm_model *m = NULL, *back = NULL;
    CHECK_INT_EQ(gmm_model_from_params(2, 1, w, mu, cov, &m), GMM_OK);
    if (!m) return;
    CHECK_INT_EQ(gmm_model_save(m, path), GMM_OK);
    char *text = read_text(path);
    CHECK(text && strstr(text, "\"fit\"") == NULL);
    free(text);
    CHECK_INT_EQ(gmm_model_load(path, &back), GMM_OK);
    if (back) {
        check_models_identical(m, back);
        int len = -1;
        CHECK(gmm_model_loglik_trace(back, &len) == NULL);
        CHECK_INT_EQ(len, 0);
        CHECK_INT_EQ(gmm_model_n_iter(back), 0);
    }
    gmm_model_free(back);
    gmm_model_free(m);
    remove(path);
}

static void test_assignment_model(void)
{
    const char *path = GMM_SOURCE_DIR "/data/assignment_model.json";
    gmm_model *m = NULL;
    gmm_status st = gmm_model_load(path, &m);
    CHECK_INT_EQ(st, GMM_OK);
    if (!m) {
        fprintf(stderr, "load: %s\n", gmm_last_error());
        return;
    }
    CHECK_INT_EQ(gmm_model_n_components(m), 4);
    CHECK_INT_EQ(gmm_model_n_features(m), 2);
    CHECK_INT_EQ(gmm_model_covariance_type(m), GMM_COV_FULL);
    const double alpha[4] = {0.23048224536932024, 0.22999999854996792, 0.272826418924052, 0.2666913371566595};
    const double mu[8] = {-0.40658, 0.32248, 1.20354, -1.19686, 0.14435, 0.14614, -0.44149, -0.45088};
    const double sigma[16] = {0.03446, -0.01299, -0.01299, 0.03458, 0.02259, -0.00761, -0.00761, 0.02361,
                              0.00886, 0.00187,  0.00187,  0.00881, 0.07024, 0.03731,  0.03731,  0.06498};
    CHECK(same_bits(gmm_model_weights(m), alpha, 4)); /* kept verbatim: they sum to 1 within 1e-12 */
    CHECK(same_bits(gmm_model_means(m), mu, 8));
    CHECK(same_bits(gmm_model_covariances(m), sigma, 16));
    CHECK_INT_EQ(m->n_train, 0);
    CHECK_INT_EQ(gmm_model_n_iter(m), 0);
    gmm_model_free(m);
}

/* A hand-written file with only the three arrays (k and d inferred, an unknown field, weights that do not
 * sum to 1 and are therefore normalized). */
static void test_minimal_file(void)
{
    const char *path = TMP "minimal.json";
    write_text(path, "{\"comment\": {\"any\": [1, \"thing\"]},\n"
                     " \"weights\": [1, 3], \"means\": [[0, 0], [1, 1]],\n"
                     " \"covariances\": [[[1, 0], [0, 1]], [[2, 0.5], [0.5, 1]]]}\n");
    gmm_model *m = NULL;
    CHECK_INT_EQ(gmm_model_load(path, &m), GMM_OK);
    if (m) {
        CHECK_INT_EQ(gmm_model_n_components(m), 2);
        CHECK_INT_EQ(gmm_model_n_features(m), 2);
        CHECK(m->weights[0] == 0.25 && m->weights[1] == 0.75);
        CHECK(m->covariances[4 + 1] == 0.5);
    }
    gmm_model_free(m);
    remove(path);
}

/* Writes json to a scratch file named after `name`, loads it, and checks the status, that the message
 * starts with the path and that it contains needle. */
static void expect_load_error(const char *name, const char *json, gmm_status want, const char *needle)
{
    char path[256];
    snprintf(path, sizeof path, TMP "bad_%s.json", name);
    write_text(path, json);
    gmm_model *m = (gmm_model *)&m; /* must be reset to NULL */
    gmm_status st = gmm_model_load(path, &m);
    const char *msg = gmm_last_error();
    CHECK_INT_EQ(st, want);
    CHECK(m == NULL);
    CHECK(strncmp(msg, path, strlen(path)) == 0);
    CHECK_STR_CONTAINS(msg, needle);
    if (st == GMM_OK) gmm_model_free(m);
    remove(path);
}

#define COVS2 "\"covariances\": [[[1, 0], [0, 1]], [[1, 0], [0, 1]]]"

static void test_load_errors(void)
{
    /* Syntax: a missing comma; cJSON stops at line 3, column 20 (the second inner array). */
    expect_load_error("syntax",
                      "{\n"
                      "  \"weights\": [0.5, 0.5],\n"
                      "  \"means\": [[0, 0] [1, 1]],\n" COVS2 "\n}\n",
                      GMM_ERR_PARSE, TMP "bad_syntax.json:3:20: invalid JSON near '[1, 1]],'");
    /* Columns count characters, not bytes; the snippet stops at 20 bytes. */
    expect_load_error("syntax_utf8", "{\"source\": \"é\", \"weights\": [0.5 0.5, 0.25, 0.125, 0.0625, 1]}",
                      GMM_ERR_PARSE, ":1:33: invalid JSON near '0.5, 0.25, 0.125, 0.'");
    expect_load_error("truncated", "{\"weights\": [0.5, 0.5],\n \"means\": [[0, 0",
                      GMM_ERR_PARSE, "bad_truncated.json:2:17: invalid JSON: unexpected end of file");
    expect_load_error("trailing", "{\"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]]}\n}",
                      GMM_ERR_PARSE, ":2:1: invalid JSON near '}'");
    expect_load_error("not_object", "[1, 2]", GMM_ERR_PARSE, ": top level is not a JSON object");

    /* Structure. */
    expect_load_error("means_row", "{\"n_features\": 2, \"weights\": [0.2, 0.3, 0.5],\n"
                                   " \"means\": [[0, 0], [1, 1], [2, 2, 2]], \"covariances\": []}",
                      GMM_ERR_PARSE, ": \"means\"[2] has 3 numbers, expected 2 (n_features)");
    expect_load_error("means_row_inferred", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1]], " COVS2 "}",
                      GMM_ERR_PARSE,
                      ": \"means\"[1] has 1 number, expected 2 (n_features, the length of \"means\"[0])");
    expect_load_error("cov_row", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]],"
                                 " \"covariances\": [[[1, 0], [0, 1]], [[1, 0, 0], [0, 1]]]}",
                      GMM_ERR_PARSE, ": \"covariances\"[1][0] has 3 numbers, expected 2 (n_features");
    expect_load_error("cov_rows", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]],"
                                  " \"covariances\": [[[1, 0], [0, 1]], [[1, 0]]]}",
                      GMM_ERR_PARSE, ": \"covariances\"[1] has 1 row, expected 2 (n_features");
    expect_load_error("not_number", "{\"weights\": [0.5, \"0.5\"], \"means\": [[0, 0], [1, 1]], " COVS2 "}",
                      GMM_ERR_PARSE, ": \"weights\"[1] is not a number");
    expect_load_error("overflow", "{\"weights\": [0.5, 0.5], \"means\": [[0, 1e999], [1, 1]], " COVS2 "}",
                      GMM_ERR_PARSE, ": \"means\"[0][1] is not finite");
    expect_load_error("missing", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]]}", GMM_ERR_PARSE,
                      ": missing \"covariances\"");
    expect_load_error("cov_type", "{\"covariance_type\": \"diag\", \"weights\": [1], \"means\": [[0]],"
                                  " \"covariances\": [[[1]]]}",
                      GMM_ERR_PARSE, ": \"covariance_type\" is \"diag\"; this version supports \"full\"");
    expect_load_error("format", "{\"format\": \"other\", \"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]]}",
                      GMM_ERR_PARSE, ": \"format\" is \"other\"; expected \"gmm-model\"");
    expect_load_error("version", "{\"version\": 2, \"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]]}",
                      GMM_ERR_PARSE, ": \"version\" is 2; this version reads version 1");
    expect_load_error("k_declared", "{\"n_components\": 3, \"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]], " COVS2 "}",
                      GMM_ERR_PARSE, ": \"weights\" has 2 numbers, expected 3 (n_components)");
    expect_load_error("k_inferred", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1], [2, 2]], " COVS2 "}",
                      GMM_ERR_PARSE,
                      ": \"means\" has 3 entries, expected 2 (n_components, the length of \"weights\")");
    expect_load_error("k_not_integer", "{\"n_components\": 2.5, \"weights\": [0.5, 0.5], \"means\": [[0], [1]],"
                                       " \"covariances\": [[[1]], [[1]]]}",
                      GMM_ERR_PARSE, ": \"n_components\" is 2.5; expected an integer from 1 to");
    expect_load_error("fit_trace", "{\"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]],\n"
                                   " \"fit\": {\"converged\": true, \"n_iter\": 3, \"lower_bound\": -1,"
                                   " \"n_train\": 10, \"loglik_trace\": [1, 2]}}",
                      GMM_ERR_PARSE, ": \"fit\".\"loglik_trace\" has 2 numbers, expected 3 (\"fit\".\"n_iter\")");
    expect_load_error("fit_missing", "{\"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]],"
                                     " \"fit\": {\"converged\": false, \"n_iter\": 3, \"lower_bound\": -1}}",
                      GMM_ERR_PARSE, ": missing \"fit\".\"n_train\"");

    /* Parameters rejected by gmm_model_from_params, reported as parse errors of the file. */
    expect_load_error("not_symmetric", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]],"
                                       " \"covariances\": [[[1, 0.5], [0.25, 1]], [[1, 0], [0, 1]]]}",
                      GMM_ERR_PARSE, ": covariance 0 is not symmetric");
    expect_load_error("not_pd", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]],"
                                " \"covariances\": [[[1, 0], [0, 1]], [[1, 2], [2, 1]]]}",
                      GMM_ERR_PARSE, ": component 1: covariance is not positive definite");
    expect_load_error("negative_weight", "{\"weights\": [1.5, -0.5], \"means\": [[0], [1]], \"covariances\": [[[1]], [[1]]]}",
                      GMM_ERR_PARSE, ": weight 1 is -0.5");

    /* A file that cannot be opened. */
    gmm_model *m = NULL;
    const char *missing = TMP "does_not_exist.json";
    CHECK_INT_EQ(gmm_model_load(missing, &m), GMM_ERR_IO);
    CHECK(m == NULL);
    CHECK(strncmp(gmm_last_error(), missing, strlen(missing)) == 0);
    CHECK_INT_EQ(gmm_model_load(GMM_TEST_TMP, &m), GMM_ERR_IO); /* a directory */
}

static void test_save_failures(void)
{
    const double w[2] = {0.5, 0.5}, mu[4] = {0, 0, 1, 1}, cov[8] = {1, 0, 0, 1, 2, 0.5, 0.5, 1};
    gmm_model *m = NULL;
    CHECK_INT_EQ(gmm_model_from_params(2, 2, w, mu, cov, &m), GMM_OK);
    if (!m) return;

    /* A directory that does not exist: GMM_ERR_IO, nothing written. */
    const char *nodir = TMP "no_such_dir/model.json";
    CHECK_INT_EQ(gmm_model_save(m, nodir), GMM_ERR_IO);
    CHECK_STR_CONTAINS(gmm_last_error(), nodir);
    CHECK(!file_exists(nodir) && !tmp_exists(nodir));

    /* A NaN weight: refused before any file is created, naming the field. */
    const char *path = TMP "nan.json";
    remove(path);
    m->weights[1] = NAN;
    CHECK_INT_EQ(gmm_model_save(m, path), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "\"weights\"[1] is NaN");
    CHECK(!file_exists(path) && !tmp_exists(path));

    /* ... and an existing file stays as it was. */
    m->weights[1] = 0.5;
    CHECK_INT_EQ(gmm_model_save(m, path), GMM_OK);
    char *before = read_text(path);
    m->covariances[4 + 3] = INFINITY;
    CHECK_INT_EQ(gmm_model_save(m, path), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "\"covariances\"[1][1][1] is inf");
    char *after = read_text(path);
    CHECK(before && after && strcmp(before, after) == 0);
    CHECK(!tmp_exists(path));
    free(before);
    free(after);
    m->covariances[4 + 3] = 1.0;

    /* Non-finite values in the fit record are refused too. */
    m->n_train = 10;
    m->n_iter = 2;
    m->loglik_trace = calloc(2, sizeof(double));
    m->loglik_trace[1] = -INFINITY;
    CHECK_INT_EQ(gmm_model_save(m, path), GMM_ERR_INVALID_ARG);
    CHECK_STR_CONTAINS(gmm_last_error(), "\"fit\".\"loglik_trace\"[1] is -inf");
    gmm_model_free(m);
    remove(path);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (mkdir(GMM_TEST_TMP, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", GMM_TEST_TMP, strerror(errno));
        return 1;
    }
    test_round_trip();
    test_round_trip_unfitted();
    test_assignment_model();
    test_minimal_file();
    test_load_errors();
    test_save_failures();
    return check_exit();
}
