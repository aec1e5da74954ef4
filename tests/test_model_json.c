/*
 * test_model_json.c — gmm_model_save / gmm_model_load: bit-exact round trips (parameters and fit record,
 * including doubles that cJSON's own printer would round) for every covariance type with the covariances
 * in the type's own shape in the file, the shipped data/assignment_model.json, the precise messages for
 * malformed files, and saves that fail without leaving a file behind. gmm_init_file_load: every subset of
 * initial parameters, covariances turned into precisions, a saved model read as an init file, and errors.
 */
#include "check.h"
#include "test_support.h"
#include "gmm.h"
#include "gmm_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP GMM_TEST_TMP "/model_json_"

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* 1 when a temporary file of gmm_atomic_open ("<path>.tmp.XXXXXX", util.c) is left beside path. */
static int tmp_exists(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[512], prefix[512];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    snprintf(prefix, sizeof prefix, "%s.tmp.", slash ? slash + 1 : path);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) found = strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return found;
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

/* A random model of the given covariance type: k components in d dimensions, covariances A A^T + I (exactly
 * symmetric; tied keeps component 0's, diag the diagonals, spherical the [0][0] entries), awkward doubles in
 * the means and in the first covariance entry of diag and spherical, and a fit record whose trace holds
 * n_iter random finite bit patterns. */
static gmm_model *random_model_typed(size_t k, size_t d, gmm_covariance_type type, int n_iter, uint64_t seed)
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
    const double awkward[] = {
        0.1 + 0.2, -0.0, 4.9406564584124654e-324, DBL_MAX, -DBL_MIN, 1e22, 123456789012345678.0, 3.0, -2147483648.0};
    for (size_t i = 0; i < sizeof awkward / sizeof awkward[0] && i < k * d; i++) mu[i] = awkward[i];

    /* The covariances in the type's own shape (full: as built). */
    switch (type) {
    case GMM_COV_FULL:
    case GMM_COV_TIED: break; /* tied: the first d*d entries are component 0's matrix */
    case GMM_COV_DIAG:
        for (size_t c = 0; c < k; c++)
            for (size_t i = 0; i < d; i++) cov[c * d + i] = cov[(c * d + i) * d + i];
        cov[0] = 0.1 + 0.2;
        break;
    case GMM_COV_SPHERICAL:
        for (size_t c = 0; c < k; c++) cov[c] = cov[c * d * d];
        cov[0] = 0.1 + 0.2;
        break;
    }

    gmm_model *m = NULL;
    gmm_status st = gmm_model_from_params(k, d, type, w, mu, cov, &m);
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

/* A random full-covariance model (random_model_typed). */
static gmm_model *random_model(size_t k, size_t d, int n_iter, uint64_t seed)
{
    return random_model_typed(k, d, GMM_COV_FULL, n_iter, seed);
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
    CHECK_INT_EQ(gmm_model_from_params(2, 1, GMM_COV_FULL, w, mu, cov, &m), GMM_OK);
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
    expect_load_error("truncated", "{\"weights\": [0.5, 0.5],\n \"means\": [[0, 0", GMM_ERR_PARSE,
                      "bad_truncated.json:2:17: invalid JSON: unexpected end of file");
    expect_load_error("trailing", "{\"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]]}\n}", GMM_ERR_PARSE,
                      ":2:1: invalid JSON near '}'");
    expect_load_error("not_object", "[1, 2]", GMM_ERR_PARSE, ": top level is not a JSON object");
    /* A key given twice is an error naming it (parsers disagree on which one counts). */
    expect_load_error("dup_top", "{\"weights\": [1], \"means\": [[0]], \"weights\": [1], \"covariances\": [[[1]]]}",
                      GMM_ERR_PARSE, ": duplicate key \"weights\" in the top-level object; expected each key once");
    expect_load_error("dup_fit",
                      "{\"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]],"
                      " \"fit\": {\"n_iter\": 1, \"converged\": true, \"n_iter\": 2}}",
                      GMM_ERR_PARSE, ": duplicate key \"n_iter\" in the object \"fit\"");
    expect_load_error("dup_unused",
                      "{\"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]],"
                      " \"notes\": [{\"a\": 1, \"a\": 2}]}",
                      GMM_ERR_PARSE, ": duplicate key \"a\" in an object inside an array");
    {
        /* a file beyond the cap (1 GiB, sparse here) is refused before it is read */
        const char *big = TMP "too_large.json";
        int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CHECK(fd >= 0 && ftruncate(fd, ((off_t)1 << 30) + 1) == 0);
        if (fd >= 0) close(fd);
        gmm_model *m = NULL;
        CHECK_INT_EQ(gmm_model_load(big, &m), GMM_ERR_PARSE);
        CHECK_STR_CONTAINS(gmm_last_error(), "too_large.json: file larger than the limit of 1024 MiB");
        gmm_init_file f;
        CHECK_INT_EQ(gmm_init_file_load(big, &f), GMM_ERR_PARSE);
        CHECK_STR_CONTAINS(gmm_last_error(), "file larger than the limit of 1024 MiB");
        remove(big);
    }

    /* Structure. */
    expect_load_error("means_row",
                      "{\"n_features\": 2, \"weights\": [0.2, 0.3, 0.5],\n"
                      " \"means\": [[0, 0], [1, 1], [2, 2, 2]], \"covariances\": []}",
                      GMM_ERR_PARSE, ": \"means\"[2] has 3 numbers, expected 2 (n_features)");
    expect_load_error("means_row_inferred", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1]], " COVS2 "}",
                      GMM_ERR_PARSE,
                      ": \"means\"[1] has 1 number, expected 2 (n_features, the length of \"means\"[0])");
    expect_load_error("cov_row",
                      "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]],"
                      " \"covariances\": [[[1, 0], [0, 1]], [[1, 0, 0], [0, 1]]]}",
                      GMM_ERR_PARSE, ": \"covariances\"[1][0] has 3 numbers, expected 2 (n_features");
    expect_load_error("cov_rows",
                      "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]],"
                      " \"covariances\": [[[1, 0], [0, 1]], [[1, 0]]]}",
                      GMM_ERR_PARSE, ": \"covariances\"[1] has 1 row, expected 2 (n_features");
    expect_load_error("not_number", "{\"weights\": [0.5, \"0.5\"], \"means\": [[0, 0], [1, 1]], " COVS2 "}",
                      GMM_ERR_PARSE, ": \"weights\"[1] is not a number");
    expect_load_error("overflow", "{\"weights\": [0.5, 0.5], \"means\": [[0, 1e999], [1, 1]], " COVS2 "}",
                      GMM_ERR_PARSE, ": \"means\"[0][1] is not finite");
    expect_load_error("missing", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]]}", GMM_ERR_PARSE,
                      ": missing \"covariances\"");
    expect_load_error(
        "cov_type",
        "{\"covariance_type\": \"banana\", \"weights\": [1], \"means\": [[0]],"
        " \"covariances\": [[[1]]]}",
        GMM_ERR_PARSE,
        ": \"covariance_type\" is \"banana\"; expected one of \"full\", \"tied\", \"diag\", \"spherical\"");
    expect_load_error("cov_type_number",
                      "{\"covariance_type\": 2, \"weights\": [1], \"means\": [[0]],"
                      " \"covariances\": [[[1]]]}",
                      GMM_ERR_PARSE, ": \"covariance_type\" is not a string; expected one of \"full\"");
    expect_load_error("format",
                      "{\"format\": \"other\", \"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]]}",
                      GMM_ERR_PARSE, ": \"format\" is \"other\"; expected \"gmm-model\"");
    expect_load_error("version", "{\"version\": 2, \"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]]}",
                      GMM_ERR_PARSE, ": \"version\" is 2; this version reads version 1");
    expect_load_error("k_declared",
                      "{\"n_components\": 3, \"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]], " COVS2 "}",
                      GMM_ERR_PARSE, ": \"weights\" has 2 numbers, expected 3 (n_components)");
    expect_load_error("k_inferred", "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1], [2, 2]], " COVS2 "}",
                      GMM_ERR_PARSE,
                      ": \"means\" has 3 entries, expected 2 (n_components, the length of \"weights\")");
    expect_load_error("k_not_integer",
                      "{\"n_components\": 2.5, \"weights\": [0.5, 0.5], \"means\": [[0], [1]],"
                      " \"covariances\": [[[1]], [[1]]]}",
                      GMM_ERR_PARSE, ": \"n_components\" is 2.5; expected an integer from 1 to");
    expect_load_error("fit_trace",
                      "{\"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]],\n"
                      " \"fit\": {\"converged\": true, \"n_iter\": 3, \"lower_bound\": -1,"
                      " \"n_train\": 10, \"loglik_trace\": [1, 2]}}",
                      GMM_ERR_PARSE, ": \"fit\".\"loglik_trace\" has 2 numbers, expected 3 (\"fit\".\"n_iter\")");
    expect_load_error("fit_missing",
                      "{\"weights\": [1], \"means\": [[0]], \"covariances\": [[[1]]],"
                      " \"fit\": {\"converged\": false, \"n_iter\": 3, \"lower_bound\": -1}}",
                      GMM_ERR_PARSE, ": missing \"fit\".\"n_train\"");

    /* Parameters rejected by gmm_model_from_params, reported as parse errors of the file. */
    expect_load_error("not_symmetric",
                      "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]],"
                      " \"covariances\": [[[1, 0.5], [0.25, 1]], [[1, 0], [0, 1]]]}",
                      GMM_ERR_PARSE, ": covariance of component 1 (label 0) is not symmetric");
    expect_load_error("not_pd",
                      "{\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]],"
                      " \"covariances\": [[[1, 0], [0, 1]], [[1, 2], [2, 1]]]}",
                      GMM_ERR_PARSE, ": component 2 (label 1): covariance is not positive definite");
    expect_load_error("negative_weight",
                      "{\"weights\": [1.5, -0.5], \"means\": [[0], [1]], \"covariances\": [[[1]], [[1]]]}",
                      GMM_ERR_PARSE, ": weights[1] is -0.5");

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
    CHECK_INT_EQ(gmm_model_from_params(2, 2, GMM_COV_FULL, w, mu, cov, &m), GMM_OK);
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

/* Every covariance type: save then load is bit-exact (fit record included), saving again gives the same
 * bytes, and the file holds "covariance_type" and the covariances in the type's own shape. */
static void test_round_trip_types(void)
{
    const char *path = TMP "types.json", *path2 = TMP "types_again.json";
    for (int t = GMM_COV_FULL; t <= GMM_COV_SPHERICAL; t++) {
        gmm_covariance_type type = (gmm_covariance_type)t;
        gmm_model *m = random_model_typed(4, 3, type, 7, 100 + (uint64_t)t);
        if (!m) continue;
        CHECK_INT_EQ(gmm_model_save(m, path), GMM_OK);
        gmm_model *back = NULL;
        gmm_status st = gmm_model_load(path, &back);
        CHECK_INT_EQ(st, GMM_OK);
        if (st != GMM_OK) fprintf(stderr, "load (%s): %s\n", gmm_covariance_name(type), gmm_last_error());
        if (back) {
            CHECK_INT_EQ(gmm_model_covariance_type(back), type);
            check_models_identical(m, back);
            CHECK_INT_EQ(gmm_model_save(back, path2), GMM_OK);
            char *t1 = read_text(path), *t2 = read_text(path2);
            CHECK(t1 && t2 && strcmp(t1, t2) == 0);
            char want[64];
            snprintf(want, sizeof want, "\"covariance_type\":\t\"%s\"", gmm_covariance_name(type));
            CHECK_STR_CONTAINS(t1, want);
            /* The nesting depth of "covariances": 3 for full, 2 for tied and diag, 1 for spherical. */
            const char *covs = t1 ? strstr(t1, "\"covariances\":\t") : NULL;
            CHECK(covs != NULL);
            if (covs) {
                covs += strlen("\"covariances\":\t");
                size_t depth = strspn(covs, "[");
                CHECK_INT_EQ(depth, type == GMM_COV_FULL ? 3 : type == GMM_COV_SPHERICAL ? 1 : 2);
            }
            if (type == GMM_COV_DIAG) CHECK_STR_CONTAINS(t1, "\"covariances\":\t[[0.30000000000000004, ");
            if (type == GMM_COV_SPHERICAL) CHECK_STR_CONTAINS(t1, "\"covariances\":\t[0.30000000000000004, ");
            free(t1);
            free(t2);
        }
        gmm_model_free(back);
        gmm_model_free(m);
    }
    remove(path);
    remove(path2);
}

/* Builds a model of the given type from the compact covariances, saves it, checks that the file contains
 * `expect` and that it loads back bit for bit. */
static void check_saved_shape(gmm_covariance_type type, size_t k, size_t d, const double *w, const double *mu,
                              const double *cov, const char *expect)
{
    const char *path = TMP "shape.json";
    gmm_model *m = NULL, *back = NULL;
    CHECK_INT_EQ(gmm_model_from_params(k, d, type, w, mu, cov, &m), GMM_OK);
    if (!m) return;
    CHECK_INT_EQ(gmm_model_save(m, path), GMM_OK);
    char *text = read_text(path);
    CHECK_STR_CONTAINS(text, expect);
    free(text);
    CHECK_INT_EQ(gmm_model_load(path, &back), GMM_OK);
    if (back) check_models_identical(m, back);
    gmm_model_free(back);
    gmm_model_free(m);
    remove(path);
}

/* The exact text of "covariances" for each type: scikit-learn's covariances_ shapes. */
static void test_saved_shapes(void)
{
    const double w2[2] = {0.25, 0.75}, mu2[4] = {0, 0, 1, 1};
    const double full[8] = {1, 0, 0, 1, 2, 0.5, 0.5, 1};
    check_saved_shape(GMM_COV_FULL, 2, 2, w2, mu2, full,
                      "\"covariances\":\t[[[1, 0], [0, 1]], [[2, 0.5], [0.5, 1]]]");
    const double tied[4] = {2, 0.5, 0.5, 1};
    check_saved_shape(GMM_COV_TIED, 2, 2, w2, mu2, tied, "\"covariances\":\t[[2, 0.5], [0.5, 1]]\n");
    const double diag[4] = {1, 2, 0.5, 0.25};
    check_saved_shape(GMM_COV_DIAG, 2, 2, w2, mu2, diag, "\"covariances\":\t[[1, 2], [0.5, 0.25]]\n");
    const double w3[3] = {0.5, 0.25, 0.25}, mu3[6] = {0, 0, 1, 1, 2, 2};
    const double sph[3] = {0.1 + 0.2, 2, 0.5};
    check_saved_shape(GMM_COV_SPHERICAL, 3, 2, w3, mu3, sph, "\"covariances\":\t[0.30000000000000004, 2, 0.5]\n");
}

/* Hand-written files of every type: k and d inferred (spherical: d from "means"; tied: k from "weights"),
 * covariances expanded to full matrices. */
static void test_load_types(void)
{
    const char *path = TMP "load_types.json";
    gmm_model *m = NULL;
    write_text(path, "{\"covariance_type\": \"spherical\", \"weights\": [1, 1],"
                     " \"means\": [[0, 0, 0], [1, 1, 1]], \"covariances\": [1, 4]}");
    CHECK_INT_EQ(gmm_model_load(path, &m), GMM_OK);
    if (m) {
        CHECK_INT_EQ(gmm_model_covariance_type(m), GMM_COV_SPHERICAL);
        CHECK_INT_EQ(gmm_model_n_components(m), 2);
        CHECK_INT_EQ(gmm_model_n_features(m), 3);
        CHECK(m->weights[0] == 0.5 && m->weights[1] == 0.5);
        const double *c = gmm_model_covariances(m);
        CHECK(c[0] == 1 && c[4] == 1 && c[8] == 1 && c[1] == 0 && c[9] == 4 && c[13] == 4 && c[17] == 4);
    }
    gmm_model_free(m);
    m = NULL;

    write_text(path, "{\"covariance_type\": \"tied\", \"weights\": [0.2, 0.3, 0.5],"
                     " \"means\": [[0, 0], [1, 1], [2, 2]], \"covariances\": [[2, 0.5], [0.5, 1]]}");
    CHECK_INT_EQ(gmm_model_load(path, &m), GMM_OK);
    if (m) {
        CHECK_INT_EQ(gmm_model_covariance_type(m), GMM_COV_TIED);
        CHECK_INT_EQ(gmm_model_n_components(m), 3);
        CHECK_INT_EQ(gmm_model_n_features(m), 2);
        const double want[4] = {2, 0.5, 0.5, 1};
        for (size_t c = 0; c < 3; c++) CHECK(same_bits(gmm_model_covariances(m) + 4 * c, want, 4));
        CHECK_INT_EQ(gmm_n_parameters(m), 2 + 6 + 3);
    }
    gmm_model_free(m);
    m = NULL;

    write_text(path, "{\"covariance_type\": \"diag\", \"weights\": [0.5, 0.5],"
                     " \"means\": [[0, 0], [1, 1]], \"covariances\": [[1, 2], [3, 4]]}");
    CHECK_INT_EQ(gmm_model_load(path, &m), GMM_OK);
    if (m) {
        CHECK_INT_EQ(gmm_model_covariance_type(m), GMM_COV_DIAG);
        const double want[8] = {1, 0, 0, 2, 3, 0, 0, 4};
        CHECK(same_bits(gmm_model_covariances(m), want, 8));
    }
    gmm_model_free(m);
    remove(path);
}

#define W2M2 "\"weights\": [0.5, 0.5], \"means\": [[0, 0], [1, 1]], "

/* Covariances of the wrong shape for their type, and parameters that the type's checks refuse. */
static void test_load_type_errors(void)
{
    expect_load_error("tied_full_shape", "{\"covariance_type\": \"tied\", " W2M2 COVS2 "}", GMM_ERR_PARSE,
                      ": \"covariances\"[0][0] is not a number; covariance_type \"tied\" has \"covariances\" of "
                      "shape [n_features][n_features] = [2][2]");
    expect_load_error("tied_rows",
                      "{\"covariance_type\": \"tied\", " W2M2 "\"covariances\": [[1, 0], [0, 1], [0, 0]]}",
                      GMM_ERR_PARSE,
                      ": \"covariances\" has 3 rows, expected 2 (n_features, the length of \"means\"[0]); "
                      "covariance_type \"tied\"");
    expect_load_error("tied_cols",
                      "{\"covariance_type\": \"tied\", \"n_features\": 2, " W2M2
                      "\"covariances\": [[1, 0], [0, 1, 0]]}",
                      GMM_ERR_PARSE, ": \"covariances\"[1] has 3 numbers, expected 2 (n_features); covariance_type");
    expect_load_error("diag_flat", "{\"covariance_type\": \"diag\", " W2M2 "\"covariances\": [1, 1]}", GMM_ERR_PARSE,
                      ": \"covariances\"[0] is not an array; covariance_type \"diag\" has \"covariances\" of shape "
                      "[n_components][n_features] = [2][2]");
    expect_load_error("diag_row", "{\"covariance_type\": \"diag\", " W2M2 "\"covariances\": [[1, 1], [1]]}",
                      GMM_ERR_PARSE,
                      ": \"covariances\"[1] has 1 number, expected 2 (n_features, the length of \"means\"[0])");
    expect_load_error("diag_k", "{\"covariance_type\": \"diag\", " W2M2 "\"covariances\": [[1, 1]]}", GMM_ERR_PARSE,
                      ": \"covariances\" has 1 entry, expected 2 (n_components, the length of \"weights\")");
    expect_load_error("diag_full_shape", "{\"covariance_type\": \"diag\", " W2M2 COVS2 "}", GMM_ERR_PARSE,
                      ": \"covariances\"[0][0] is not a number; covariance_type \"diag\"");
    expect_load_error("spherical_nested", "{\"covariance_type\": \"spherical\", " W2M2 "\"covariances\": [[1], [1]]}",
                      GMM_ERR_PARSE,
                      ": \"covariances\"[0] is not a number; covariance_type \"spherical\" has \"covariances\" of "
                      "shape [n_components] = [2]");
    expect_load_error("spherical_k", "{\"covariance_type\": \"spherical\", " W2M2 "\"covariances\": [1, 1, 1]}",
                      GMM_ERR_PARSE,
                      ": \"covariances\" has 3 numbers, expected 2 (n_components, the length of \"weights\")");
    expect_load_error("spherical_scalar", "{\"covariance_type\": \"spherical\", " W2M2 "\"covariances\": 1}",
                      GMM_ERR_PARSE, ": \"covariances\" is not an array; covariance_type \"spherical\"");
    expect_load_error("full_as_tied", "{" W2M2 "\"covariances\": [[1, 0], [0, 1]]}", GMM_ERR_PARSE,
                      ": \"covariances\"[0][0] is not an array; covariance_type \"full\" has \"covariances\" of "
                      "shape [n_components][n_features][n_features] = [2][2][2]");
    expect_load_error("diag_negative", "{\"covariance_type\": \"diag\", " W2M2 "\"covariances\": [[1, 1], [1, -1]]}",
                      GMM_ERR_PARSE, ": component 2 (label 1): diag variance -1 is not positive");
    expect_load_error("spherical_zero", "{\"covariance_type\": \"spherical\", " W2M2 "\"covariances\": [1, 0]}",
                      GMM_ERR_PARSE, ": component 2 (label 1): spherical variance 0 is not positive");
    expect_load_error("tied_not_symmetric",
                      "{\"covariance_type\": \"tied\", " W2M2 "\"covariances\": [[1, 0.5], [0.25, 1]]}",
                      GMM_ERR_PARSE, ": covariance of component 1 (label 0) is not symmetric");
    expect_load_error("tied_not_pd", "{\"covariance_type\": \"tied\", " W2M2 "\"covariances\": [[1, 2], [2, 1]]}",
                      GMM_ERR_PARSE, "is not positive definite");
}

/* A non-finite covariance is named in the file's shape for each type. */
static void test_save_failures_types(void)
{
    const char *path = TMP "nan_types.json";
    const char *want[4] = {"\"covariances\"[1][1][0] is NaN", "\"covariances\"[1][0] is NaN",
                           "\"covariances\"[1][1] is NaN", "\"covariances\"[1] is NaN"};
    for (int t = GMM_COV_FULL; t <= GMM_COV_SPHERICAL; t++) {
        gmm_covariance_type type = (gmm_covariance_type)t;
        gmm_model *m = random_model_typed(2, 2, type, 1, 300 + (uint64_t)t);
        if (!m) continue;
        remove(path);
        /* full: entry [1][0] of component 1; tied: entry [1][0] of the shared matrix (component 0's copy is
         * the one saved); diag: variance 1 of component 1; spherical: component 1. */
        switch (type) {
        case GMM_COV_FULL: m->covariances[4 + 2] = NAN; break;
        case GMM_COV_TIED: m->covariances[2] = NAN; break;
        case GMM_COV_DIAG: m->covariances[4 + 3] = NAN; break;
        case GMM_COV_SPHERICAL: m->covariances[4] = NAN; break;
        }
        CHECK_INT_EQ(gmm_model_save(m, path), GMM_ERR_INVALID_ARG);
        CHECK_STR_CONTAINS(gmm_last_error(), want[t]);
        CHECK(!file_exists(path) && !tmp_exists(path));
        gmm_model_free(m);
    }
}

/* ------------------------------------------------------------------------------------------ init files */

/* Loads json (written to a scratch file named after name) as an init file into *f; returns the status and
 * prints the message on failure. */
static gmm_status load_init(const char *name, const char *json, gmm_init_file *f)
{
    char path[256];
    snprintf(path, sizeof path, TMP "init_%s.json", name);
    write_text(path, json);
    gmm_status st = gmm_init_file_load(path, f);
    if (st != GMM_OK) fprintf(stderr, "init file %s: %s\n", name, gmm_last_error());
    remove(path);
    return st;
}

static int init_is_zeroed(const gmm_init_file *f)
{
    return f->k == 0 && f->d == 0 && f->type == GMM_COV_FULL && !f->weights && !f->means && !f->precisions;
}

/* Like expect_load_error for gmm_init_file_load: also checks that *out is zeroed. */
static void expect_init_error(const char *name, const char *json, gmm_status want, const char *needle)
{
    char path[256];
    snprintf(path, sizeof path, TMP "init_bad_%s.json", name);
    write_text(path, json);
    gmm_init_file f;
    memset(&f, 0xA5, sizeof f); /* must be zeroed */
    gmm_status st = gmm_init_file_load(path, &f);
    const char *msg = gmm_last_error();
    CHECK_INT_EQ(st, want);
    CHECK(init_is_zeroed(&f));
    CHECK(strncmp(msg, path, strlen(path)) == 0);
    CHECK_STR_CONTAINS(msg, needle);
    if (st == GMM_OK) gmm_init_file_free(&f);
    remove(path);
}

/* Each subset of the parameters, with the values it should give. */
static void test_init_subsets(void)
{
    gmm_init_file f;

    /* Weights only, used as given (never normalized); d unknown. */
    CHECK_INT_EQ(load_init("weights", "{\"weights\": [0.25, 0.75]}", &f), GMM_OK);
    CHECK_INT_EQ(f.k, 2);
    CHECK_INT_EQ(f.d, 0);
    CHECK_INT_EQ(f.type, GMM_COV_FULL);
    CHECK(f.weights && f.weights[0] == 0.25 && f.weights[1] == 0.75);
    CHECK(!f.means && !f.precisions);
    gmm_init_file_free(&f);
    CHECK(init_is_zeroed(&f));

    /* Weights that sum to 1 within scikit-learn's 1e-8 are kept verbatim. */
    CHECK_INT_EQ(load_init("weights_exact", "{\"weights\": [0.1, 0.2, 0.7]}", &f), GMM_OK);
    const double w3[3] = {0.1, 0.2, 0.7};
    CHECK(f.weights && same_bits(f.weights, w3, 3));
    gmm_init_file_free(&f);

    CHECK_INT_EQ(load_init("weights_zero", "{\"weights\": [0, 1]}", &f),
                 GMM_OK); /* 0 is allowed, as in scikit-learn */
    CHECK(f.weights && f.weights[0] == 0.0 && f.weights[1] == 1.0);
    gmm_init_file_free(&f);
    CHECK_INT_EQ(load_init("weights_near", "{\"weights\": [0.5, 0.500000005]}", &f), GMM_OK);
    CHECK(f.weights && f.weights[0] == 0.5 && f.weights[1] == 0.500000005);
    gmm_init_file_free(&f);

    /* Means only. */
    CHECK_INT_EQ(load_init("means", "{\"means\": [[0, 1], [2, 3], [4, -5.5]]}", &f), GMM_OK);
    CHECK_INT_EQ(f.k, 3);
    CHECK_INT_EQ(f.d, 2);
    const double mu[6] = {0, 1, 2, 3, 4, -5.5};
    CHECK(f.means && same_bits(f.means, mu, 6));
    CHECK(!f.weights && !f.precisions);
    gmm_init_file_free(&f);

    /* Full covariances only: inverted. [[2, 1], [1, 3]]^-1 = [[3, -1], [-1, 2]] / 5. */
    CHECK_INT_EQ(load_init("cov_full", "{\"covariances\": [[[2, 1], [1, 3]], [[4, 0], [0, 0.5]]]}", &f), GMM_OK);
    CHECK_INT_EQ(f.k, 2);
    CHECK_INT_EQ(f.d, 2);
    CHECK(!f.weights && !f.means && f.precisions);
    if (f.precisions) {
        const double want[8] = {0.6, -0.2, -0.2, 0.4, 0.25, 0, 0, 2};
        for (int i = 0; i < 8; i++) CHECK_NEAR(f.precisions[i], want[i], 1e-15, 1e-14);
        CHECK(f.precisions[1] == f.precisions[2]); /* exactly symmetric */
    }
    gmm_init_file_free(&f);

    /* Tied covariance only: one inverse; k unknown. */
    CHECK_INT_EQ(load_init("cov_tied", "{\"covariance_type\": \"tied\", \"covariances\": [[2, 1], [1, 3]]}", &f),
                 GMM_OK);
    CHECK_INT_EQ(f.type, GMM_COV_TIED);
    CHECK_INT_EQ(f.k, 0);
    CHECK_INT_EQ(f.d, 2);
    if (f.precisions) {
        const double want[4] = {0.6, -0.2, -0.2, 0.4};
        for (int i = 0; i < 4; i++) CHECK_NEAR(f.precisions[i], want[i], 1e-15, 1e-14);
    }
    gmm_init_file_free(&f);

    /* Diag and spherical: 1/v. */
    CHECK_INT_EQ(load_init("cov_diag", "{\"covariance_type\": \"diag\", \"covariances\": [[2, 4], [0.5, 3]]}", &f),
                 GMM_OK);
    CHECK_INT_EQ(f.type, GMM_COV_DIAG);
    CHECK_INT_EQ(f.k, 2);
    CHECK_INT_EQ(f.d, 2);
    if (f.precisions) {
        CHECK(f.precisions[0] == 0.5 && f.precisions[1] == 0.25 && f.precisions[2] == 2.0);
        CHECK(f.precisions[3] == 1.0 / 3.0);
    }
    gmm_init_file_free(&f);
    CHECK_INT_EQ(
        load_init("cov_spherical", "{\"covariance_type\": \"spherical\", \"covariances\": [4, 0.25, 3]}", &f),
        GMM_OK);
    CHECK_INT_EQ(f.type, GMM_COV_SPHERICAL);
    CHECK_INT_EQ(f.k, 3);
    CHECK_INT_EQ(f.d, 0);
    if (f.precisions) CHECK(f.precisions[0] == 0.25 && f.precisions[1] == 4.0 && f.precisions[2] == 1.0 / 3.0);
    gmm_init_file_free(&f);

    /* Precisions only: kept as given. */
    CHECK_INT_EQ(load_init("prec_full", "{\"precisions\": [[[2, 0.1], [0.1, 3]]]}", &f), GMM_OK);
    CHECK_INT_EQ(f.k, 1);
    CHECK_INT_EQ(f.d, 2);
    const double p4[4] = {2, 0.1, 0.1, 3};
    CHECK(f.precisions && same_bits(f.precisions, p4, 4));
    gmm_init_file_free(&f);
    CHECK_INT_EQ(load_init("prec_spherical",
                           "{\"covariance_type\": \"spherical\", \"precisions\": [2, 0.30000000000000004]}", &f),
                 GMM_OK);
    const double p2[2] = {2, 0.1 + 0.2};
    CHECK(f.precisions && same_bits(f.precisions, p2, 2));
    gmm_init_file_free(&f);

    /* All three (with declared sizes and unknown fields). */
    CHECK_INT_EQ(load_init("all",
                           "{\"n_components\": 2, \"n_features\": 2, \"note\": [1, {}], \"weights\": [0.5, 0.5],"
                           " \"means\": [[0, 0], [1, 1]], \"covariances\": [[[1, 0], [0, 1]], [[2, 1], [1, 3]]]}",
                           &f),
                 GMM_OK);
    CHECK_INT_EQ(f.k, 2);
    CHECK_INT_EQ(f.d, 2);
    CHECK(f.weights && f.weights[0] == 0.5 && f.weights[1] == 0.5);
    const double mu4[4] = {0, 0, 1, 1};
    CHECK(f.means && same_bits(f.means, mu4, 4));
    if (f.precisions) {
        const double want[8] = {1, 0, 0, 1, 0.6, -0.2, -0.2, 0.4};
        for (int i = 0; i < 8; i++) CHECK_NEAR(f.precisions[i], want[i], 1e-15, 1e-14);
    }
    gmm_init_file_free(&f);

    /* All three, diag precisions, spherical-style d from means. */
    CHECK_INT_EQ(
        load_init("all_diag",
                  "{\"covariance_type\": \"diag\", \"weights\": [0.25, 0.25, 0.5], \"means\": [[0], [1], [2]],"
                  " \"precisions\": [[1], [2], [3]]}",
                  &f),
        GMM_OK);
    CHECK_INT_EQ(f.k, 3);
    CHECK_INT_EQ(f.d, 1);
    CHECK(f.weights && f.weights[0] == 0.25 && f.weights[2] == 0.5);
    CHECK(f.precisions && f.precisions[2] == 3.0);
    gmm_init_file_free(&f);

    gmm_init_file_free(NULL); /* allowed */
}

static void test_init_errors(void)
{
    expect_init_error("dup_means", "{\"means\": [[0], [1]], \"weights\": [0.5, 0.5], \"means\": [[2], [3]]}",
                      GMM_ERR_PARSE, ": duplicate key \"means\" in the top-level object");
    expect_init_error("both", "{\"covariances\": [[[1]]], \"precisions\": [[[1]]]}", GMM_ERR_PARSE,
                      ": both \"covariances\" and \"precisions\" are given; expected at most one of them");
    expect_init_error("empty", "{}", GMM_ERR_PARSE,
                      ": no initial parameters: expected at least one of \"weights\", \"means\", \"covariances\", "
                      "\"precisions\"");
    expect_init_error("sizes_only", "{\"n_components\": 2, \"n_features\": 3, \"covariance_type\": \"diag\"}",
                      GMM_ERR_PARSE, ": no initial parameters");
    expect_init_error("k_mismatch", "{\"weights\": [0.5, 0.5], \"means\": [[0], [1], [2]]}", GMM_ERR_PARSE,
                      ": \"means\" has 3 entries, expected 2 (n_components, the length of \"weights\")");
    expect_init_error("k_mismatch_cov",
                      "{\"means\": [[0], [1]], \"covariance_type\": \"spherical\","
                      " \"covariances\": [1, 1, 1]}",
                      GMM_ERR_PARSE,
                      ": \"covariances\" has 3 numbers, expected 2 (n_components, the length of \"means\")");
    expect_init_error("k_declared",
                      "{\"n_components\": 3, \"covariance_type\": \"spherical\", \"precisions\": [1, 2]}",
                      GMM_ERR_PARSE, ": \"precisions\" has 2 numbers, expected 3 (n_components)");
    expect_init_error("d_mismatch", "{\"means\": [[0, 0]], \"covariances\": [[[1]]]}", GMM_ERR_PARSE,
                      ": \"covariances\"[0] has 1 row, expected 2 (n_features, the length of \"means\"[0])");
    expect_init_error("d_mismatch_tied",
                      "{\"covariance_type\": \"tied\", \"precisions\": [[1, 0], [0, 1]],"
                      " \"means\": [[0, 0, 0]]}",
                      GMM_ERR_PARSE,
                      ": \"precisions\" has 2 rows, expected 3 (n_features, the length of \"means\"[0])");
    expect_init_error("weights_empty", "{\"weights\": []}", GMM_ERR_PARSE,
                      ": \"weights\" is empty; a model needs at least one component");
    /* scikit-learn's _check_weights: each in [0, 1], the sum 1 within 1e-8, no normalization */
    expect_init_error("weights_sum", "{\"weights\": [0.5, 0.6]}", GMM_ERR_PARSE,
                      ": \"weights\" sum to 1.1000000000000001; initial weights must sum to 1 within 1e-08");
    expect_init_error("weights_unnormalized", "{\"weights\": [1, 3]}", GMM_ERR_PARSE, ": \"weights\"[1] is 3;");
    expect_init_error("weights_sum_far", "{\"weights\": [0.5, 0.50000002]}", GMM_ERR_PARSE, ": \"weights\" sum to");
    expect_init_error("weights_negative", "{\"weights\": [1.5, -0.5]}", GMM_ERR_PARSE,
                      ": \"weights\"[0] is 1.5; initial weights must be in [0, 1]");
    expect_init_error("means_inf", "{\"means\": [[0, 1e999]]}", GMM_ERR_PARSE, ": \"means\"[0][1] is not finite");
    expect_init_error(
        "prec_not_pd", "{\"precisions\": [[[1, 0], [0, 1]], [[1, 2], [2, 1]]]}", GMM_ERR_NOT_PD,
        ": \"precisions\"[1] (component 2, label 1) is not positive definite (leading minor 2 is not positive)");
    expect_init_error("prec_not_symmetric", "{\"precisions\": [[[1, 0.5], [0.25, 1]]]}", GMM_ERR_PARSE,
                      ": \"precisions\"[0] (component 1, label 0) is not symmetric: [1][0] = 0.25 but [0][1] = 0.5");
    expect_init_error("prec_tied_not_pd", "{\"covariance_type\": \"tied\", \"precisions\": [[0, 0], [0, 1]]}",
                      GMM_ERR_NOT_PD,
                      ": \"precisions\" (tied: shared by all components) is not positive definite (leading minor 1");
    expect_init_error("prec_diag_zero", "{\"covariance_type\": \"diag\", \"precisions\": [[1, 1], [1, 0]]}",
                      GMM_ERR_NOT_PD,
                      ": \"precisions\"[1][1] (component 2, label 1) is 0; diag precisions must be positive");
    expect_init_error("prec_spherical_negative", "{\"covariance_type\": \"spherical\", \"precisions\": [1, -2]}",
                      GMM_ERR_NOT_PD,
                      ": \"precisions\"[1] (component 2, label 1) is -2; spherical precisions must be positive");
    expect_init_error("cov_not_pd", "{\"covariances\": [[[1, 0], [0, -1]]]}", GMM_ERR_NOT_PD,
                      ": \"covariances\"[0] (component 1, label 0) is not positive definite");
    expect_init_error("cov_spherical_zero", "{\"covariance_type\": \"spherical\", \"covariances\": [0]}",
                      GMM_ERR_NOT_PD,
                      ": \"covariances\"[0] (component 1, label 0) is 0; spherical variances must be positive");
    expect_init_error(
        "cov_tiny", "{\"covariance_type\": \"diag\", \"covariances\": [[1e-310]]}", GMM_ERR_NOT_PD,
        ": \"covariances\"[0][0] (component 1, label 0) is 9.9999999999999694e-311, too small to invert");
    expect_init_error(
        "cov_near_singular", "{\"covariances\": [[[1, 1], [1, 1.0000000000000002]]]}", GMM_ERR_NOT_PD,
        ": \"covariances\"[0] (component 1, label 0) is too close to singular: its computed inverse is not "
        "positive definite");
    expect_init_error(
        "cov_type", "{\"covariance_type\": \"Full\", \"weights\": [1]}", GMM_ERR_PARSE,
        ": \"covariance_type\" is \"Full\"; expected one of \"full\", \"tied\", \"diag\", \"spherical\"");
    expect_init_error("wrong_shape", "{\"covariance_type\": \"diag\", \"precisions\": [[[1]]]}", GMM_ERR_PARSE,
                      ": \"precisions\"[0][0] is not a number; covariance_type \"diag\" has \"precisions\" of shape");
    expect_init_error("syntax", "{\"weights\": [1,\n 2,, 3]}", GMM_ERR_PARSE,
                      "init_bad_syntax.json:2:4: invalid JSON");
    expect_init_error("not_object", "[1]", GMM_ERR_PARSE, ": top level is not a JSON object");

    gmm_init_file f;
    memset(&f, 0xA5, sizeof f);
    const char *missing = TMP "init_does_not_exist.json";
    CHECK_INT_EQ(gmm_init_file_load(missing, &f), GMM_ERR_IO);
    CHECK(init_is_zeroed(&f));
    CHECK(strncmp(gmm_last_error(), missing, strlen(missing)) == 0);
}

/* The inverse of the symmetric positive definite a (d, d) by Gauss-Jordan in long double (an independent
 * reference for the Cholesky-based inversion). */
static void reference_inverse(const double *a, double *inv, size_t d)
{
    long double *m = malloc(2 * d * d * sizeof *m);
    size_t w = 2 * d;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < w; j++) m[i * w + j] = j < d ? a[i * d + j] : (j - d == i ? 1.0L : 0.0L);
    for (size_t c = 0; c < d; c++) {
        size_t p = c;
        for (size_t r = c + 1; r < d; r++)
            if (fabsl(m[r * w + c]) > fabsl(m[p * w + c])) p = r;
        for (size_t j = 0; j < w; j++) {
            long double t = m[c * w + j];
            m[c * w + j] = m[p * w + j];
            m[p * w + j] = t;
        }
        long double piv = m[c * w + c];
        for (size_t j = 0; j < w; j++) m[c * w + j] /= piv;
        for (size_t r = 0; r < d; r++) {
            if (r == c) continue;
            long double f = m[r * w + c];
            for (size_t j = 0; j < w; j++) m[r * w + j] -= f * m[c * w + j];
        }
    }
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) inv[i * d + j] = (double)m[i * w + d + j];
    free(m);
}

/* A model.json written by gmm_model_save (fit record and all) is a valid init file: same weights and means,
 * precisions the inverses of the covariances. */
static void test_init_from_saved_model(void)
{
    const char *path = TMP "init_from_model.json";
    for (int t = GMM_COV_FULL; t <= GMM_COV_SPHERICAL; t++) {
        gmm_covariance_type type = (gmm_covariance_type)t;
        gmm_model *m = random_model_typed(4, 3, type, 5, 200 + (uint64_t)t);
        if (!m) continue;
        /* Plain means: the awkward ones (DBL_MAX, ...) are for the round trip, not for inversion. */
        for (size_t i = 0; i < 12; i++) m->means[i] = 0.5 * (double)i - 1.0;
        CHECK_INT_EQ(gmm_model_save(m, path), GMM_OK);
        gmm_init_file f;
        gmm_status st = gmm_init_file_load(path, &f);
        CHECK_INT_EQ(st, GMM_OK);
        if (st != GMM_OK) {
            fprintf(stderr, "init from model (%s): %s\n", gmm_covariance_name(type), gmm_last_error());
            gmm_model_free(m);
            continue;
        }
        CHECK_INT_EQ(f.type, type);
        CHECK_INT_EQ(f.k, 4);
        CHECK_INT_EQ(f.d, 3);
        CHECK(same_bits(f.weights, m->weights, 4));
        CHECK(same_bits(f.means, m->means, 12));
        CHECK(f.precisions != NULL);
        size_t d = 3, n_mat = type == GMM_COV_TIED ? 1 : 4;
        for (size_t c = 0; f.precisions && c < n_mat; c++) {
            const double *cov = m->covariances + c * d * d;
            if (type == GMM_COV_FULL || type == GMM_COV_TIED) {
                double inv[9], scale = 0.0;
                reference_inverse(cov, inv, d);
                for (int i = 0; i < 9; i++) scale = fmax(scale, fabs(inv[i]));
                for (int i = 0; i < 9; i++) CHECK_NEAR(f.precisions[c * 9 + i], inv[i], 1e-12 * scale, 1e-12);
            } else if (type == GMM_COV_DIAG) {
                for (size_t i = 0; i < d; i++) CHECK(f.precisions[c * d + i] == 1.0 / cov[i * d + i]);
            } else {
                CHECK(f.precisions[c] == 1.0 / cov[0]);
            }
        }
        gmm_init_file_free(&f);
        gmm_model_free(m);
    }
    remove(path);

    /* The shipped assignment model too. */
    gmm_init_file f;
    CHECK_INT_EQ(gmm_init_file_load(GMM_SOURCE_DIR "/data/assignment_model.json", &f), GMM_OK);
    CHECK_INT_EQ(f.k, 4);
    CHECK_INT_EQ(f.d, 2);
    if (f.precisions) {
        /* Component 0: [[0.03446, -0.01299], [-0.01299, 0.03458]]. */
        double det = 0.03446 * 0.03458 - 0.01299 * 0.01299;
        CHECK_NEAR(f.precisions[0], 0.03458 / det, 0, 1e-12);
        CHECK_NEAR(f.precisions[1], 0.01299 / det, 0, 1e-12);
        CHECK_NEAR(f.precisions[3], 0.03446 / det, 0, 1e-12);
    }
    gmm_init_file_free(&f);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (test_make_tmp_dir()) return 1;
    test_round_trip();
    test_round_trip_unfitted();
    test_assignment_model();
    test_minimal_file();
    test_load_errors();
    test_save_failures();
    test_round_trip_types();
    test_saved_shapes();
    test_load_types();
    test_load_type_errors();
    test_save_failures_types();
    test_init_subsets();
    test_init_errors();
    test_init_from_saved_model();
    return check_exit();
}
