/*
 * fuzz_common.h — what the libFuzzer targets (tests/fuzz/fuzz_*.c) and the regression replay
 * (tests/test_fuzz_regress.c) share: one input's bytes are written to a temporary file with the reader's
 * suffix (.csv, .npy, .json), the public reader runs on it (gmm_read_data or gmm_model_load), and every
 * documented invariant of the result is checked:
 *   - failure: the status is one the readers document (GMM_ERR_PARSE, _IO, _NOMEM, _NOT_PD, _INVALID_ARG),
 *     gmm_last_error() is a non-empty, printable message, and PARSE / IO messages name the file;
 *   - data: n >= 1, d >= 1, no more values than the input has bytes, every value finite, for CSV every
 *     value exactly what strtod reads from its field, and the array survives an exact round trip through
 *     gmm_write_npy and gmm_write_csv;
 *   - model: k >= 1, d >= 1, a known covariance type, finite weights >= 0 summing to 1, finite means,
 *     finite symmetric covariances with a positive diagonal, a consistent fit record, and a bit-exact round
 *     trip through gmm_model_save / gmm_model_load.
 *
 * The includer decides what a violated invariant does by defining FUZZ_EXPECT(cond) before including this
 * file; the default prints the invariant, the reader's status and message, and calls abort() so that
 * libFuzzer reports the input. The replay test counts it as a failed check instead. fuzz_last_status and
 * fuzz_last_message hold the reader's outcome for such messages.
 *
 * Setting GMM_FUZZ_SKIP_PRINTABLE=1 in the environment turns off the printable-message check only (for a
 * fuzzing campaign that must look past a known, unfixed finding of that kind); the replay test never skips it.
 *
 * Temporary files are named gmm-fuzz-PID-... (one set per process, so parallel fuzzing jobs and ctest runs
 * do not collide) in the directory given to fuzz_init, by default /dev/shm when writable, else $TMPDIR,
 * else /tmp; they are removed at exit.
 */
#ifndef GMM_FUZZ_COMMON_H
#define GMM_FUZZ_COMMON_H

#include "gmm.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reader's outcome for the input being checked, for messages about a violated invariant. */
static int fuzz_last_status = 0;
static char fuzz_last_message[2048];

#ifndef FUZZ_EXPECT
#define FUZZ_EXPECT(cond)                                                                                            \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            fprintf(stderr, "%s:%d: fuzz invariant violated: %s (reader status %d, message \"%s\")\n", __FILE__,     \
                    __LINE__, #cond, fuzz_last_status, fuzz_last_message);                                           \
            abort();                                                                                                 \
        }                                                                                                            \
    } while (0)
#endif

/* Which reader an input goes to; the names are the suffixes and the corpus folder names. */
typedef enum fuzz_kind { FUZZ_CSV = 0, FUZZ_NPY = 1, FUZZ_JSON = 2 } fuzz_kind;
#define FUZZ_KINDS 3
static const char *const fuzz_kind_name[FUZZ_KINDS] = {"csv", "npy", "json"};

/* Paths of the per-process temporary files: the input (one per kind) and the round-trip copies. */
static char fuzz_input_path[FUZZ_KINDS][1024];
static char fuzz_rt_npy[1024], fuzz_rt_csv[1024], fuzz_rt_json[1024];
static int fuzz_ready = 0;
static int fuzz_skip_printable = 0;

static void fuzz_cleanup(void)
{
    for (int i = 0; i < FUZZ_KINDS; i++) unlink(fuzz_input_path[i]);
    unlink(fuzz_rt_npy);
    unlink(fuzz_rt_csv);
    unlink(fuzz_rt_json);
}

/* Chooses the temporary directory (dir, or the default described at the top when dir is NULL) and the
 * file names. Called once; later calls do nothing. */
static void fuzz_init(const char *dir)
{
    if (fuzz_ready) return;
    if (!dir) {
        const char *t = getenv("TMPDIR");
        struct stat sb;
        if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
            dir = "/dev/shm";
        else if (t && *t)
            dir = t;
        else
            dir = "/tmp";
    }
    long pid = (long)getpid();
    for (int i = 0; i < FUZZ_KINDS; i++)
        snprintf(fuzz_input_path[i], sizeof fuzz_input_path[i], "%s/gmm-fuzz-%ld-input.%s", dir, pid,
                 fuzz_kind_name[i]);
    snprintf(fuzz_rt_npy, sizeof fuzz_rt_npy, "%s/gmm-fuzz-%ld-roundtrip.npy", dir, pid);
    snprintf(fuzz_rt_csv, sizeof fuzz_rt_csv, "%s/gmm-fuzz-%ld-roundtrip.csv", dir, pid);
    snprintf(fuzz_rt_json, sizeof fuzz_rt_json, "%s/gmm-fuzz-%ld-roundtrip.json", dir, pid);
    const char *skip = getenv("GMM_FUZZ_SKIP_PRINTABLE");
    fuzz_skip_printable = skip && strcmp(skip, "1") == 0;
    atexit(fuzz_cleanup);
    fuzz_ready = 1;
}

/* Writes size bytes to path; 0 on success. */
static int fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = size ? fwrite(data, 1, size, f) : 0;
    int bad = put != size;
    if (fclose(f) != 0) bad = 1;
    return bad ? -1 : 0;
}

/* Records the reader's outcome (status and a copy of gmm_last_error()) for later messages. */
static void fuzz_note(gmm_status st)
{
    fuzz_last_status = (int)st;
    snprintf(fuzz_last_message, sizeof fuzz_last_message, "%s", gmm_last_error());
}

/* True when the message has no ASCII control character (a message shows offending bytes escaped). */
static int fuzz_printable(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) return 0;
    }
    return 1;
}

/* The invariants of a failed read of path with status st (gmm_last_error() not yet overwritten). */
static void fuzz_check_failure(gmm_status st, const char *path)
{
    fuzz_note(st);
    FUZZ_EXPECT(st == GMM_ERR_PARSE || st == GMM_ERR_IO || st == GMM_ERR_NOMEM || st == GMM_ERR_NOT_PD ||
                st == GMM_ERR_INVALID_ARG);
    FUZZ_EXPECT(fuzz_last_message[0] != '\0');
    if (!fuzz_skip_printable) FUZZ_EXPECT(fuzz_printable(fuzz_last_message));
    if (st == GMM_ERR_PARSE || st == GMM_ERR_IO) FUZZ_EXPECT(strstr(fuzz_last_message, path) != NULL);
}

/* ------------------------------------------------------------------------------------------------- data */

/* Reads back the round-trip file path and checks that it holds exactly x (n, d). */
static void fuzz_data_roundtrip(const char *path, gmm_status written, const double *x, size_t n, size_t d)
{
    FUZZ_EXPECT(written == GMM_OK);
    if (written != GMM_OK) return;
    double *y = NULL;
    size_t n2 = 0, d2 = 0;
    gmm_status st = gmm_read_data(path, &y, &n2, &d2);
    if (st != GMM_OK) fuzz_note(st);
    FUZZ_EXPECT(st == GMM_OK);
    if (st == GMM_OK) {
        FUZZ_EXPECT(n2 == n && d2 == d);
        if (n2 == n && d2 == d) FUZZ_EXPECT(memcmp(x, y, n * d * sizeof *x) == 0);
    }
    gmm_free(y);
}

/* Visits the fields of the non-blank lines of the NUL-terminated CSV text s (a UTF-8 BOM skipped, '\n'
 * line ends with an optional '\r'), the simple way: each field is cut out, NUL-terminated in place and
 * restored. With x == NULL counts the fields of all lines into *fields and of the first line into *first;
 * otherwise checks that strtod reads every field after the first `skip` fields to the same bits as x[i]
 * and counts the mismatches into *fields. */
static void fuzz_csv_fields(char *s, size_t len, const double *x, size_t skip, size_t *fields, size_t *first)
{
    char *p = s, *end = s + len;
    size_t count = 0, bad = 0;
    int first_line = 1;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *ce = (le > p && le[-1] == '\r') ? le - 1 : le;
        char *q = p;
        while (q < ce && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < ce) { /* not blank */
            char *f = p;
            for (;;) {
                char *comma = memchr(f, ',', (size_t)(ce - f));
                char *fe = comma ? comma : ce;
                if (x && count >= skip) {
                    char saved = *fe;
                    *fe = '\0';
                    double v = strtod(f, NULL);
                    *fe = saved;
                    if (memcmp(&v, &x[count - skip], sizeof v) != 0) bad++;
                }
                count++;
                if (!comma) break;
                f = comma + 1;
            }
            if (first_line && first) *first = count;
            first_line = 0;
        }
        p = nl ? nl + 1 : end;
    }
    *fields = x ? bad : count;
}

/* For a CSV input read as x (n, d): the reader's own number parsing (a fast path beside strtod) must give
 * exactly what strtod gives for each field, and the fields must be the n * d values plus, at most, a header
 * line. */
static void fuzz_csv_reference(const uint8_t *data, size_t size, const double *x, size_t n, size_t d)
{
    char *s = malloc(size + 1);
    FUZZ_EXPECT(s != NULL);
    if (!s) return;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t fields = 0, first = 0, bad = 0;
    fuzz_csv_fields(s, size, NULL, 0, &fields, &first);
    int plain = fields == n * d, with_header = fields - first == n * d;
    FUZZ_EXPECT(plain || with_header);
    if (plain || with_header) {
        fuzz_csv_fields(s, size, x, plain ? 0 : first, &bad, NULL);
        FUZZ_EXPECT(bad == 0); /* every value is strtod's reading of its field */
    }
    free(s);
}

/* Reads the CSV or .npy input at path (size bytes) and checks the invariants at the top. */
static void fuzz_check_data(fuzz_kind kind, const char *path, const uint8_t *data, size_t size)
{
    double *x = NULL;
    size_t n = 0, d = 0;
    gmm_status st = gmm_read_data(path, &x, &n, &d);
    if (st != GMM_OK) {
        fuzz_check_failure(st, path);
        FUZZ_EXPECT(x == NULL);
        gmm_free(x);
        return;
    }
    FUZZ_EXPECT(x != NULL);
    FUZZ_EXPECT(n >= 1);
    FUZZ_EXPECT(d >= 1);
    if (!x || n == 0 || d == 0) {
        gmm_free(x);
        return;
    }
    /* Every value takes at least one byte of CSV and four of .npy: more values than bytes are invented. */
    FUZZ_EXPECT(n <= size / d);
    if (n > size / d) {
        gmm_free(x);
        return;
    }
    size_t bad = 0;
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(x[i])) bad++;
    FUZZ_EXPECT(bad == 0);
    if (kind == FUZZ_CSV) fuzz_csv_reference(data, size, x, n, d);
    fuzz_data_roundtrip(fuzz_rt_npy, gmm_write_npy(fuzz_rt_npy, x, n, d), x, n, d);
    fuzz_data_roundtrip(fuzz_rt_csv, gmm_write_csv(fuzz_rt_csv, x, n, d), x, n, d);
    gmm_free(x);
}

/* ---------------------------------------------------------------------------------------------- models */

static int fuzz_all_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* Bitwise equality of two optional arrays of n doubles (both NULL counts as equal). */
static int fuzz_same(const double *a, const double *b, size_t n)
{
    if (!a || !b) return a == b;
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* The invariants of a loaded model m (see the top of the file). Returns 1 when its shapes are sane enough
 * to compare it with another model. */
static int fuzz_check_model_values(const gmm_model *m)
{
    size_t k = gmm_model_n_components(m), d = gmm_model_n_features(m);
    FUZZ_EXPECT(k >= 1);
    FUZZ_EXPECT(d >= 1);
    int type = (int)gmm_model_covariance_type(m);
    FUZZ_EXPECT(type >= (int)GMM_COV_FULL && type <= (int)GMM_COV_SPHERICAL);
    const double *w = gmm_model_weights(m), *mu = gmm_model_means(m), *cov = gmm_model_covariances(m);
    FUZZ_EXPECT(w != NULL && mu != NULL && cov != NULL);
    if (k == 0 || d == 0 || !w || !mu || !cov) return 0;

    double wsum = 0.0;
    int w_ok = 1;
    for (size_t i = 0; i < k; i++) {
        if (!(isfinite(w[i]) && w[i] >= 0.0)) w_ok = 0;
        wsum += w[i];
    }
    FUZZ_EXPECT(w_ok);                     /* finite and >= 0 */
    FUZZ_EXPECT(fabs(wsum - 1.0) <= 1e-9); /* normalized */
    FUZZ_EXPECT(fuzz_all_finite(mu, k * d));
    FUZZ_EXPECT(fuzz_all_finite(cov, k * d * d));
    int diag_ok = 1, sym_ok = 1;
    for (size_t c = 0; c < k; c++) {
        const double *s = cov + c * d * d;
        for (size_t i = 0; i < d; i++) {
            if (!(s[i * d + i] > 0.0)) diag_ok = 0;
            for (size_t j = 0; j < i; j++) {
                double a = s[i * d + j], b = s[j * d + i];
                if (!(fabs(a - b) <= 1e-9 * (fabs(a) + fabs(b)) + 1e-300)) sym_ok = 0;
            }
        }
    }
    FUZZ_EXPECT(diag_ok); /* a positive definite matrix has a positive diagonal */
    FUZZ_EXPECT(sym_ok);
    FUZZ_EXPECT(gmm_n_parameters(m) >= k * d);

    int n_iter = gmm_model_n_iter(m), tlen = -1, slen = -1;
    FUZZ_EXPECT(n_iter >= 0);
    FUZZ_EXPECT(gmm_model_best_run(m) >= 0);
    FUZZ_EXPECT(isfinite(gmm_model_lower_bound(m)));
    const double *trace = gmm_model_loglik_trace(m, &tlen), *secs = gmm_model_iter_seconds(m, &slen);
    FUZZ_EXPECT(tlen == (trace ? n_iter : 0));
    FUZZ_EXPECT(slen == (secs ? n_iter : 0));
    if (trace && tlen > 0) FUZZ_EXPECT(fuzz_all_finite(trace, (size_t)tlen));
    if (secs && slen > 0) FUZZ_EXPECT(fuzz_all_finite(secs, (size_t)slen));
    return 1;
}

/* Saves m, loads it back and checks that the copy is bit-for-bit the same model. */
static void fuzz_model_roundtrip(const gmm_model *m)
{
    gmm_status st = gmm_model_save(m, fuzz_rt_json);
    if (st != GMM_OK) fuzz_note(st);
    FUZZ_EXPECT(st == GMM_OK);
    if (st != GMM_OK) return;
    gmm_model *b = NULL;
    st = gmm_model_load(fuzz_rt_json, &b);
    if (st != GMM_OK) fuzz_note(st);
    FUZZ_EXPECT(st == GMM_OK && b != NULL);
    if (st != GMM_OK || !b) return;
    size_t k = gmm_model_n_components(m), d = gmm_model_n_features(m);
    int same_shape = gmm_model_n_components(b) == k && gmm_model_n_features(b) == d;
    FUZZ_EXPECT(same_shape);
    FUZZ_EXPECT(gmm_model_covariance_type(b) == gmm_model_covariance_type(m));
    if (same_shape) {
        FUZZ_EXPECT(fuzz_same(gmm_model_weights(m), gmm_model_weights(b), k));
        FUZZ_EXPECT(fuzz_same(gmm_model_means(m), gmm_model_means(b), k * d));
        FUZZ_EXPECT(fuzz_same(gmm_model_covariances(m), gmm_model_covariances(b), k * d * d));
    }
    FUZZ_EXPECT(gmm_model_converged(b) == gmm_model_converged(m));
    FUZZ_EXPECT(gmm_model_n_iter(b) == gmm_model_n_iter(m));
    FUZZ_EXPECT(gmm_model_best_run(b) == gmm_model_best_run(m));
    double lb_m = gmm_model_lower_bound(m), lb_b = gmm_model_lower_bound(b);
    FUZZ_EXPECT(memcmp(&lb_m, &lb_b, sizeof lb_m) == 0);
    int la = 0, lb = 0;
    const double *ta = gmm_model_loglik_trace(m, &la), *tb = gmm_model_loglik_trace(b, &lb);
    FUZZ_EXPECT(la == lb && fuzz_same(ta, tb, la > 0 ? (size_t)la : 0));
    ta = gmm_model_iter_seconds(m, &la);
    tb = gmm_model_iter_seconds(b, &lb);
    FUZZ_EXPECT(la == lb && fuzz_same(ta, tb, la > 0 ? (size_t)la : 0));
    gmm_model_free(b);
}

/* Loads the model JSON at path and checks the invariants at the top. */
static void fuzz_check_model(const char *path)
{
    gmm_model *m = NULL;
    gmm_status st = gmm_model_load(path, &m);
    if (st != GMM_OK) {
        fuzz_check_failure(st, path);
        FUZZ_EXPECT(m == NULL);
        gmm_model_free(m);
        return;
    }
    FUZZ_EXPECT(m != NULL);
    if (!m) return;
    if (fuzz_check_model_values(m)) fuzz_model_roundtrip(m);
    gmm_model_free(m);
}

/* ------------------------------------------------------------------------------------------- the input */

/* Runs one input of the given kind through its reader and checks every invariant. */
static void fuzz_one(fuzz_kind kind, const uint8_t *data, size_t size)
{
    fuzz_init(NULL);
    const char *path = fuzz_input_path[kind];
    fuzz_last_status = 0;
    fuzz_last_message[0] = '\0';
    int written = fuzz_write_file(path, data, size) == 0;
    FUZZ_EXPECT(written); /* the temporary directory must be writable */
    if (!written) return;
    if (kind == FUZZ_JSON)
        fuzz_check_model(path);
    else
        fuzz_check_data(kind, path, data, size);
}

#endif /* GMM_FUZZ_COMMON_H */
