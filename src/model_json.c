/*
 * model_json.c — gmm_model_save / gmm_model_load: a model as a JSON file (through cJSON), written whole or
 * not at all, read back bit-exactly, and hand-written files checked with messages that say where they are
 * wrong. gmm_init_file_load: initial parameters (`gmm fit --init-model`) from the same kind of file.
 *
 * Format (version 1):
 *
 *   { "format": "gmm-model", "version": 1, "covariance_type": "full" | "tied" | "diag" | "spherical",
 *     "n_components": K, "n_features": D,
 *     "weights": [K numbers],
 *     "means": [[D numbers] x K],
 *     "covariances": in the type's own shape, as scikit-learn's covariances_:
 *                    full      [[[D numbers] x D] x K]
 *                    tied      [[D numbers] x D]          (one matrix shared by all components)
 *                    diag      [[D numbers] x K]          (the diagonals)
 *                    spherical [K numbers]                (one variance per component),
 *     "fit": { "converged": true, "n_iter": N, "best_run": 0, "lower_bound": x, "n_train": n,
 *              "loglik_trace": [N numbers], "iter_seconds": [N numbers] } }
 *
 * Writing:
 *   - "covariance_type" is gmm_covariance_name of the model's type; "covariances" are gmm_cov_compact of
 *     its (k, d, d) matrices (tied: component 0's matrix; diag / spherical: the diagonals / [0][0] entries).
 *   - "fit" is written only when the model has a fit record (n_train > 0); "loglik_trace" and
 *     "iter_seconds" only when the model holds them.
 *   - Every double is written with the fewest of 15, 16 or 17 significant digits that strtod reads back to
 *     the same bits (so 0.1 stays "0.1" and 0.1 + 0.2 becomes "0.30000000000000004"). cJSON's own printer
 *     is not used for doubles: in 1.7.15 it accepts "%1.15g" when the value reads back within one ulp,
 *     which loses about one random double in nine and turns DBL_MAX into a number that reads as inf.
 *   - Non-finite values are never written: saving fails with GMM_ERR_INVALID_ARG naming the field (in the
 *     file's shape, e.g. "covariances"[1][0] for diag), before any file is created. The file goes through
 *     gmm_atomic_open / gmm_atomic_commit.
 *
 * Reading a model:
 *   - Required: "weights", "means", "covariances". Optional: "format" (must be "gmm-model"), "version"
 *     (must be 1), "covariance_type" (one of the four names, default "full"), "n_components" /
 *     "n_features" (inferred when absent; when present the arrays must agree), "fit". Unknown fields (e.g.
 *     "source") are ignored. In "fit": "converged", "n_iter", "lower_bound", "n_train" are required,
 *     "best_run" defaults to 0, the two traces are optional but must hold n_iter numbers.
 *   - k is the length of "weights" (then "means", then "covariances" unless tied); d the length of
 *     "means"[0] (then of the covariances: "covariances"[0] for full and diag, "covariances" for tied;
 *     never from spherical ones). Every array is then checked against k and d before anything is
 *     allocated; a wrong "covariances" says which shape its type expects.
 *   - Every error is GMM_ERR_PARSE (GMM_ERR_IO when the file cannot be opened or read; GMM_ERR_NOMEM when
 *     memory runs out) with a message that starts with the path: JSON syntax errors as
 *     "PATH:LINE:COLUMN: invalid JSON near '<up to 20 chars>'" (columns count UTF-8 characters, 1-based),
 *     structural errors with the JSON path of the offending value and where the expected count came from,
 *     e.g. "PATH: \"means\"[2] has 3 numbers, expected 2 (n_features)" or
 *     "PATH: \"covariances\" has 3 numbers, expected 2 (n_components, the length of \"weights\");
 *     covariance_type \"spherical\" has \"covariances\" of shape [n_components] = [2]".
 *   - The parameters are validated by gmm_model_from_params (weights >= 0, symmetric, positive definite
 *     covariances); its message is kept, prefixed with the path. Weights are normalized by it; when the
 *     file's weights already sum to 1 within 1e-12 they are kept verbatim, so a save/load round trip is
 *     exact.
 *
 * Reading an init file (gmm_init_file_load):
 *   - A JSON object with any non-empty subset of "weights", "means", and either "covariances" or
 *     "precisions" (both is an error), in the shapes above for its "covariance_type" (default "full");
 *     "precisions" has the same shape as "covariances" and holds their inverses (scikit-learn's
 *     precisions_init). "n_components" / "n_features" are optional and checked; every other field
 *     ("format", "version", ...) is ignored, so a model file is an init file; of "fit" only "lower_bound"
 *     is read (what --warm-start continues from; -inf when absent or null). k and d are inferred
 *     as for a model from whatever is present and every array is checked against them, so a mismatch names
 *     both sources; k stays 0 when only a tied matrix is given, d when only weights or spherical values are.
 *   - Weights are checked as scikit-learn checks weights_init: each in [0, 1], the sum 1 within
 *     GMM_WEIGHTS_SUM_TOL; they are used as given, never normalized. Means must be finite.
 *   - Covariances become precisions: full / tied as L^{-T} L^{-1} from the Cholesky factor L (exactly
 *     symmetric), diag / spherical as 1/v. Matrices read (covariances or precisions) must be symmetric
 *     (GMM_ERR_PARSE otherwise, gmm_model_from_params' tolerance) and positive definite, and so must the
 *     resulting precisions: GMM_ERR_NOT_PD naming the JSON path and the component. Other errors are as for
 *     models. On failure *out is zeroed and nothing is left allocated.
 */
#include "gmm_internal.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Largest integer a JSON number (read as a double) holds exactly. */
#define JSON_MAX_EXACT_INT 9007199254740992.0 /* 2^53 */

/* ================================================================================================ save */

/* Writes v into buf (>= 32 bytes) with the fewest of 15, 16, 17 significant digits that read back to the
 * same bits, always with '.' as decimal point. v must be finite. */
static void format_double(char *buf, size_t size, double v)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        double back = strtod(buf, NULL);
        if (memcmp(&back, &v, sizeof v) == 0) break; /* bitwise: keeps -0.0 apart from 0.0 */
    }
    /* %g and strtod follow LC_NUMERIC; JSON wants '.' whatever the program's locale is. */
    char point = localeconv()->decimal_point[0];
    if (point != '.')
        for (char *p = buf; *p; p++)
            if (*p == point) *p = '.';
}

/* A cJSON raw item holding the exact text of v; NULL when out of memory. */
static cJSON *json_double(double v)
{
    char buf[40];
    format_double(buf, sizeof buf, v);
    return cJSON_CreateRaw(buf);
}

/* A cJSON raw item holding the decimal text of an unsigned count; NULL when out of memory. */
static cJSON *json_count(size_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", v);
    return cJSON_CreateRaw(buf);
}

/* A JSON array of n doubles; NULL when out of memory (nothing leaks). */
static cJSON *json_vector(const double *v, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (size_t i = 0; i < n; i++) {
        cJSON *item = json_double(v[i]);
        if (!item || !cJSON_AddItemToArray(arr, item)) {
            cJSON_Delete(item);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* A JSON array of `rows` arrays of `cols` doubles from the row-major v; NULL when out of memory. */
static cJSON *json_matrix(const double *v, size_t rows, size_t cols)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    for (size_t i = 0; i < rows; i++) {
        cJSON *row = json_vector(v + i * cols, cols);
        if (!row || !cJSON_AddItemToArray(arr, row)) {
            cJSON_Delete(row);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* Adds item under the constant key to obj; takes ownership of item (deleted on failure). Returns 0 when
 * item is NULL or cannot be added. */
static int json_add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item) return 0;
    if (!cJSON_AddItemToObjectCS(obj, key, item)) {
        cJSON_Delete(item);
        return 0;
    }
    return 1;
}

static const char *nonfinite_name(double v) { return isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf"); }

/* GMM_ERR_INVALID_ARG naming the first non-finite entry of v (n) as field[i] ("field" alone for n == 1
 * scalars when index_it is 0); GMM_OK when all are finite. */
static gmm_status check_finite(const char *path, const char *field, const double *v, size_t n, int index_it)
{
    for (size_t i = 0; i < n; i++) {
        if (isfinite(v[i])) continue;
        if (index_it)
            return gmm_fail(GMM_ERR_INVALID_ARG, "%s: cannot save: %s[%zu] is %s; only finite numbers can be written",
                            path, field, i, nonfinite_name(v[i]));
        return gmm_fail(GMM_ERR_INVALID_ARG, "%s: cannot save: %s is %s; only finite numbers can be written", path,
                        field, nonfinite_name(v[i]));
    }
    return GMM_OK;
}

/* Like check_finite for the row-major (n0, n1) array v (n2 == 0) or (n0, n1, n2) array v, naming the
 * entry field[a][b] or field[a][b][c]. */
static gmm_status check_finite_nd(const char *path, const char *field, const double *v, size_t n0, size_t n1,
                                  size_t n2)
{
    size_t inner = n2 ? n2 : 1;
    for (size_t a = 0; a < n0; a++)
        for (size_t b = 0; b < n1; b++)
            for (size_t c = 0; c < inner; c++) {
                double x = v[(a * n1 + b) * inner + c];
                if (isfinite(x)) continue;
                if (n2 == 0)
                    return gmm_fail(GMM_ERR_INVALID_ARG,
                                    "%s: cannot save: %s[%zu][%zu] is %s; only finite numbers can be written", path,
                                    field, a, b, nonfinite_name(x));
                return gmm_fail(GMM_ERR_INVALID_ARG,
                                "%s: cannot save: %s[%zu][%zu][%zu] is %s; only finite numbers can be written", path,
                                field, a, b, c, nonfinite_name(x));
            }
    return GMM_OK;
}

/* The JSON value of the covariances in the model's own shape (compact: gmm_covariance_size doubles): full
 * [k][d][d], tied [d][d], diag [k][d], spherical [k], as scikit-learn's covariances_. NULL when out of
 * memory. */
static cJSON *json_covariances(gmm_covariance_type type, const double *compact, size_t k, size_t d)
{
    switch (type) {
    case GMM_COV_TIED: return json_matrix(compact, d, d);
    case GMM_COV_DIAG: return json_matrix(compact, k, d);
    case GMM_COV_SPHERICAL: return json_vector(compact, k);
    case GMM_COV_FULL: break;
    }
    cJSON *covs = cJSON_CreateArray();
    if (!covs) return NULL;
    for (size_t c = 0; c < k; c++) {
        cJSON *cov = json_matrix(compact + c * d * d, d, d);
        if (!cov || !cJSON_AddItemToArray(covs, cov)) {
            cJSON_Delete(cov);
            cJSON_Delete(covs);
            return NULL;
        }
    }
    return covs;
}

/* Builds the JSON tree of m (the format in the top comment), with its covariances already in the type's
 * own shape in compact; NULL when out of memory. */
static cJSON *model_to_json(const gmm_model *m, const double *compact)
{
    size_t k = m->k, d = m->d;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    int ok = json_add(root, "format", cJSON_CreateString("gmm-model")) &&
             json_add(root, "version", cJSON_CreateNumber(1)) &&
             json_add(root, "covariance_type", cJSON_CreateString(gmm_covariance_name(m->cov_type))) &&
             json_add(root, "n_components", json_count(k)) && json_add(root, "n_features", json_count(d)) &&
             json_add(root, "weights", json_vector(m->weights, k)) &&
             json_add(root, "means", json_matrix(m->means, k, d)) &&
             json_add(root, "covariances", json_covariances(m->cov_type, compact, k, d));
    if (ok && m->n_train > 0) {
        cJSON *fit = cJSON_CreateObject();
        size_t n_iter = (size_t)m->n_iter;
        ok = json_add(root, "fit", fit) && json_add(fit, "converged", cJSON_CreateBool(m->converged != 0)) &&
             json_add(fit, "n_iter", cJSON_CreateNumber(m->n_iter)) &&
             json_add(fit, "best_run", cJSON_CreateNumber(m->best_run)) &&
             json_add(fit, "lower_bound", m->n_iter == 0 ? cJSON_CreateNull() : json_double(m->lower_bound)) &&
             json_add(fit, "n_train", json_count(m->n_train));
        if (ok && (m->loglik_trace || n_iter == 0))
            ok = json_add(fit, "loglik_trace", json_vector(m->loglik_trace, m->loglik_trace ? n_iter : 0));
        if (ok && (m->iter_seconds || n_iter == 0))
            ok = json_add(fit, "iter_seconds", json_vector(m->iter_seconds, m->iter_seconds ? n_iter : 0));
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* check_finite / check_finite_nd for covariances in the type's own shape, naming entries in that shape. */
static gmm_status check_finite_covariances(const char *path, gmm_covariance_type type, const double *compact,
                                           size_t k, size_t d)
{
    switch (type) {
    case GMM_COV_FULL: return check_finite_nd(path, "\"covariances\"", compact, k, d, d);
    case GMM_COV_TIED: return check_finite_nd(path, "\"covariances\"", compact, d, d, 0);
    case GMM_COV_DIAG: return check_finite_nd(path, "\"covariances\"", compact, k, d, 0);
    case GMM_COV_SPHERICAL: return check_finite(path, "\"covariances\"", compact, k, 1);
    }
    return GMM_OK;
}

gmm_status gmm_model_save(const gmm_model *m, const char *path)
{
    if (!m || !path || !*path) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_model_save needs a model and a path");
    if ((unsigned)m->cov_type > GMM_COV_SPHERICAL)
        return gmm_fail(GMM_ERR_INVALID_ARG, "%s: cannot save: covariance type %d is not supported", path,
                        (int)m->cov_type);
    size_t k = m->k, d = m->d;
    int has_fit = m->n_train > 0;
    if (has_fit && (m->n_iter < 0 || m->best_run < 0))
        return gmm_fail(GMM_ERR_INVALID_ARG, "%s: cannot save: fit record has n_iter %d, best_run %d", path,
                        m->n_iter, m->best_run);

    /* The covariances as the file holds them: the type's own shape. */
    size_t n_cov = gmm_covariance_size(m->cov_type, k, d);
    double *compact = gmm_xmalloc((n_cov ? n_cov : 1) * sizeof *compact);
    if (!compact) return GMM_ERR_NOMEM;
    gmm_cov_compact(m, compact);

    /* Refuse non-finite values before any file exists. */
    gmm_status st = check_finite(path, "\"weights\"", m->weights, k, 1);
    if (st == GMM_OK) st = check_finite_nd(path, "\"means\"", m->means, k, d, 0);
    if (st == GMM_OK) st = check_finite_covariances(path, m->cov_type, compact, k, d);
    if (st == GMM_OK && has_fit) {
        size_t n_iter = (size_t)m->n_iter;
        if (m->n_iter > 0) st = check_finite(path, "\"fit\".\"lower_bound\"", &m->lower_bound, 1, 0);
        if (st == GMM_OK && m->loglik_trace)
            st = check_finite(path, "\"fit\".\"loglik_trace\"", m->loglik_trace, n_iter, 1);
        if (st == GMM_OK && m->iter_seconds)
            st = check_finite(path, "\"fit\".\"iter_seconds\"", m->iter_seconds, n_iter, 1);
    }
    if (st != GMM_OK) {
        free(compact);
        return st;
    }

    cJSON *root = model_to_json(m, compact);
    free(compact);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return gmm_fail(GMM_ERR_NOMEM, "%s: out of memory building the model's JSON", path);

    gmm_atomic_file af;
    st = gmm_atomic_open(&af, path);
    if (st == GMM_OK) {
        fputs(text, af.f);
        fputc('\n', af.f);
        st = gmm_atomic_commit(&af); /* checks ferror; removes the temporary file on failure */
    }
    cJSON_free(text);
    return st;
}

/* ================================================================================================ load */

/* Records GMM_ERR_PARSE with "PATH: " followed by the formatted message. */
static gmm_status parse_fail(const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static gmm_status parse_fail(const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gmm_fail(GMM_ERR_PARSE, "%s: %s", path, msg);
}

/* The largest model or init file read: beyond it a file is refused with the limit stated, not read until
 * memory runs out (the parsed tree takes several times the text). 1 GiB holds about 40 million numbers. */
#define JSON_MAX_FILE_BYTES ((size_t)1 << 30)

static gmm_status json_too_large(const char *path)
{
    return gmm_fail(GMM_ERR_PARSE, "%s: file larger than the limit of %zu MiB for a model or init file", path,
                    JSON_MAX_FILE_BYTES >> 20);
}

/* Reads the whole file into a NUL-terminated buffer (*len_out bytes before the NUL, owned by the caller).
 * GMM_ERR_IO naming path when it cannot be opened or read. */
static gmm_status read_whole_file(const char *path, char **buf_out, size_t *len_out)
{
    *buf_out = NULL;
    *len_out = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return gmm_fail(GMM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && (unsigned long long)sb.st_size > JSON_MAX_FILE_BYTES) {
        fclose(f);
        return json_too_large(path);
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = gmm_xmalloc(cap);
    if (!buf) {
        fclose(f);
        return GMM_ERR_NOMEM;
    }
    for (;;) {
        if (cap - len < 2) {
            if (len > JSON_MAX_FILE_BYTES) { /* a pipe or device: the size shows only while reading */
                free(buf);
                fclose(f);
                return json_too_large(path);
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                fclose(f);
                return gmm_fail(GMM_ERR_NOMEM, "%s: out of memory reading the file (%zu bytes so far)", path, len);
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int saved = errno;
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return gmm_fail(GMM_ERR_IO, "%s: cannot read: %s", path, strerror(saved));
    }
    fclose(f);
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    return GMM_OK;
}

/* GMM_ERR_PARSE "PATH:LINE:COLUMN: invalid JSON near '...'" for an error at byte pos of text (len bytes,
 * possibly starting with a UTF-8 byte order mark, which does not count as a column). */
static gmm_status syntax_error(const char *path, const char *text, size_t len, size_t pos, const char *why)
{
    size_t start = (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    if (pos > len) pos = len;
    if (pos < start) pos = start;
    size_t line = 1, col = 1;
    for (size_t i = start; i < pos; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            line++;
            col = 1;
        } else if ((c & 0xC0) != 0x80) { /* count UTF-8 lead bytes only */
            col++;
        }
    }
    if (why) return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: invalid JSON: %s", path, line, col, why);
    if (pos >= len)
        return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: invalid JSON: unexpected end of file", path, line, col);

    char near[24];
    size_t n = 0;
    while (n < 20 && pos + n < len && text[pos + n] != '\n' && text[pos + n] != '\r' && text[pos + n] != '\0') n++;
    /* Do not cut a UTF-8 sequence in two. */
    if (n == 20 && pos + n < len)
        while (n > 0 && ((unsigned char)text[pos + n] & 0xC0) == 0x80) n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[pos + i];
        near[i] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
    }
    near[n] = '\0';
    if (n == 0) return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: invalid JSON at end of line", path, line, col);
    return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: invalid JSON near '%s'", path, line, col, near);
}

static const char *plural(size_t n, const char *one, const char *many) { return n == 1 ? one : many; }

/* Checks that item (named `what`, e.g. "\"means\"[2]") is an array of exactly n finite numbers; `n_name`
 * says where n came from. Stores them into out (n) when out is not NULL. */
static gmm_status read_numbers(const char *path, const cJSON *item, const char *what, size_t n, const char *n_name,
                               double *out)
{
    if (!cJSON_IsArray(item)) return parse_fail(path, "%s is not an array", what);
    size_t len = (size_t)cJSON_GetArraySize(item);
    if (len != n)
        return parse_fail(path, "%s has %zu %s, expected %zu (%s)", what, len, plural(len, "number", "numbers"), n,
                          n_name);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, item)
    {
        if (!cJSON_IsNumber(e)) return parse_fail(path, "%s[%zu] is not a number", what, i);
        if (!isfinite(e->valuedouble))
            return parse_fail(path, "%s[%zu] is not finite (out of the range of a double)", what, i);
        if (out) out[i] = e->valuedouble;
        i++;
    }
    return GMM_OK;
}

/* Checks that item (named what) is an array of exactly n entries (`n_name` says where n came from). */
static gmm_status check_entries(const char *path, const cJSON *item, const char *what, size_t n, const char *n_name,
                                const char *one, const char *many)
{
    if (!cJSON_IsArray(item)) return parse_fail(path, "%s is not an array", what);
    size_t len = (size_t)cJSON_GetArraySize(item);
    if (len != n)
        return parse_fail(path, "%s has %zu %s, expected %zu (%s)", what, len, plural(len, one, many), n, n_name);
    return GMM_OK;
}

/* Reads the optional integer field `name` of obj (shown as `what`) into *value when present, checking
 * lo <= value <= hi. *present tells whether it was there. */
static gmm_status read_integer(const char *path, const cJSON *obj, const char *name, const char *what, double lo,
                               double hi, int *present, double *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    *present = item != NULL;
    if (!item) return GMM_OK;
    if (!cJSON_IsNumber(item)) return parse_fail(path, "%s is not a number", what);
    double v = item->valuedouble;
    if (!(v >= lo && v <= hi) || v != floor(v))
        return parse_fail(path, "%s is %.17g; expected an integer from %.0f to %.0f", what, v, lo, hi);
    *value = v;
    return GMM_OK;
}

/* Reads the "fit" object into m's fit record. */
static gmm_status read_fit(const char *path, const cJSON *fit, gmm_model *m)
{
    if (!cJSON_IsObject(fit)) return parse_fail(path, "\"fit\" is not an object");
    const cJSON *conv = cJSON_GetObjectItemCaseSensitive(fit, "converged");
    if (!conv) return parse_fail(path, "missing \"fit\".\"converged\"");
    if (!cJSON_IsBool(conv)) return parse_fail(path, "\"fit\".\"converged\" is not true or false");

    int present;
    double n_iter = 0, best_run = 0, n_train = 0;
    gmm_status st = read_integer(path, fit, "n_iter", "\"fit\".\"n_iter\"", 0, 2147483647.0, &present, &n_iter);
    if (st != GMM_OK) return st;
    if (!present) return parse_fail(path, "missing \"fit\".\"n_iter\"");
    st = read_integer(path, fit, "n_train", "\"fit\".\"n_train\"", 1, JSON_MAX_EXACT_INT, &present, &n_train);
    if (st != GMM_OK) return st;
    if (!present) return parse_fail(path, "missing \"fit\".\"n_train\"");
    st = read_integer(path, fit, "best_run", "\"fit\".\"best_run\"", 0, 2147483647.0, &present, &best_run);
    if (st != GMM_OK) return st;

    /* null exactly when n_iter is 0: scikit-learn's lower_bound_ is then -inf */
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(fit, "lower_bound");
    if (!lb) return parse_fail(path, "missing \"fit\".\"lower_bound\"");
    if (n_iter == 0 && !cJSON_IsNull(lb))
        return parse_fail(path, "\"fit\".\"lower_bound\" is not null; expected null (no iteration: -inf) "
                                "since \"fit\".\"n_iter\" is 0");
    if (n_iter > 0 && !cJSON_IsNumber(lb)) return parse_fail(path, "\"fit\".\"lower_bound\" is not a number");
    if (n_iter > 0 && !isfinite(lb->valuedouble)) return parse_fail(path, "\"fit\".\"lower_bound\" is not finite");

    size_t n = (size_t)n_iter;
    const cJSON *trace = cJSON_GetObjectItemCaseSensitive(fit, "loglik_trace");
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(fit, "iter_seconds");
    if (trace && (st = read_numbers(path, trace, "\"fit\".\"loglik_trace\"", n, "\"fit\".\"n_iter\"", NULL)))
        return st;
    if (secs && (st = read_numbers(path, secs, "\"fit\".\"iter_seconds\"", n, "\"fit\".\"n_iter\"", NULL))) return st;
    if (trace && n > 0) {
        if (!(m->loglik_trace = gmm_xmalloc(n * sizeof(double)))) return GMM_ERR_NOMEM;
        read_numbers(path, trace, "\"fit\".\"loglik_trace\"", n, "\"fit\".\"n_iter\"", m->loglik_trace);
    }
    if (secs && n > 0) {
        if (!(m->iter_seconds = gmm_xmalloc(n * sizeof(double)))) return GMM_ERR_NOMEM;
        read_numbers(path, secs, "\"fit\".\"iter_seconds\"", n, "\"fit\".\"n_iter\"", m->iter_seconds);
    }
    m->converged = cJSON_IsTrue(conv) ? 1 : 0;
    m->n_iter = (int)n_iter;
    m->best_run = (int)best_run;
    m->lower_bound = n_iter > 0 ? lb->valuedouble : -INFINITY;
    m->n_train = (size_t)n_train;
    return GMM_OK;
}

/* ---------------------------------------------------------------- shapes shared by models and init files */

/* The numbers of components and features of a file and where each came from (for messages: "n_components",
 * "n_components, the length of \"weights\"", ...); 0 while unknown. */
typedef struct json_sizes {
    size_t k, d;
    char k_name[128];
    char d_name[128];
} json_sizes;

static const char cov_type_names[] = "\"full\", \"tied\", \"diag\", \"spherical\"";

/* Reads the optional "covariance_type" of root into *type (GMM_COV_FULL when absent). */
static gmm_status read_covariance_type(const char *path, const cJSON *root, gmm_covariance_type *type)
{
    *type = GMM_COV_FULL;
    const cJSON *ctype = cJSON_GetObjectItemCaseSensitive(root, "covariance_type");
    if (!ctype) return GMM_OK;
    if (!cJSON_IsString(ctype))
        return parse_fail(path, "\"covariance_type\" is not a string; expected one of %s", cov_type_names);
    if (gmm_covariance_parse(ctype->valuestring, type) != 0)
        return parse_fail(path, "\"covariance_type\" is \"%.60s\"; expected one of %s", ctype->valuestring,
                          cov_type_names);
    return GMM_OK;
}

/* Reads the optional "n_components" and "n_features" of root into s (both must be integers >= 1). */
static gmm_status read_declared_sizes(const char *path, const cJSON *root, json_sizes *s)
{
    int present;
    double v = 0;
    gmm_status st = read_integer(path, root, "n_components", "\"n_components\"", 1, 2147483647.0, &present, &v);
    if (st != GMM_OK) return st;
    if (present) {
        s->k = (size_t)v;
        snprintf(s->k_name, sizeof s->k_name, "n_components");
    }
    st = read_integer(path, root, "n_features", "\"n_features\"", 1, 2147483647.0, &present, &v);
    if (st != GMM_OK) return st;
    if (present) {
        s->d = (size_t)v;
        snprintf(s->d_name, sizeof s->d_name, "n_features");
    }
    return GMM_OK;
}

/* When k is still unknown and item (named what) is present, takes k from its length (which must not be 0). */
static gmm_status infer_k(const char *path, const cJSON *item, const char *what, json_sizes *s)
{
    if (s->k || !item) return GMM_OK;
    if (!cJSON_IsArray(item)) return parse_fail(path, "%s is not an array", what);
    size_t n = (size_t)cJSON_GetArraySize(item);
    if (n == 0) return parse_fail(path, "%s is empty; a model needs at least one component", what);
    s->k = n;
    snprintf(s->k_name, sizeof s->k_name, "n_components, the length of %s", what);
    return GMM_OK;
}

/* When d is still unknown and item (named what) is present, takes d from the length of item[0] (first != 0)
 * or of item itself (first == 0), which must not be 0. An empty item with first != 0 leaves d unknown: its
 * shape check reports it. */
static gmm_status infer_d(const char *path, const cJSON *item, const char *what, int first, json_sizes *s)
{
    if (s->d || !item) return GMM_OK;
    if (!cJSON_IsArray(item)) return parse_fail(path, "%s is not an array", what);
    char name[64];
    const cJSON *src = item;
    snprintf(name, sizeof name, "%s", what);
    if (first) {
        src = cJSON_GetArrayItem(item, 0);
        if (!src) return GMM_OK;
        snprintf(name, sizeof name, "%s[0]", what);
        if (!cJSON_IsArray(src)) return parse_fail(path, "%s is not an array", name);
    }
    size_t n = (size_t)cJSON_GetArraySize(src);
    if (n == 0) return parse_fail(path, "%s is empty; a model needs at least one feature", name);
    s->d = n;
    snprintf(s->d_name, sizeof s->d_name, "n_features, the length of %s", name);
    return GMM_OK;
}

/* Infers k and d (those not declared) from the arrays present, in this order: k from "weights", "means",
 * then the matrices (not for tied); d from "means"[0], then the matrices (not for spherical). mats is
 * "covariances" or "precisions" (named mats_name), in the shape of type. */
static gmm_status infer_sizes(const char *path, gmm_covariance_type type, const cJSON *weights, const cJSON *means,
                              const cJSON *mats, const char *mats_name, json_sizes *s)
{
    gmm_status st;
    if ((st = infer_k(path, weights, "\"weights\"", s))) return st;
    if ((st = infer_k(path, means, "\"means\"", s))) return st;
    if (type != GMM_COV_TIED && (st = infer_k(path, mats, mats_name, s))) return st;
    if ((st = infer_d(path, means, "\"means\"", 1, s))) return st;
    if (type != GMM_COV_SPHERICAL && (st = infer_d(path, mats, mats_name, type != GMM_COV_TIED, s))) return st;
    return GMM_OK;
}

/* Checks that item (named what) is an array of `rows` arrays of `cols` finite numbers (rows_name and
 * cols_name say where the counts came from; one / many name an entry of item). Stores them row-major into
 * out (rows * cols) when out is not NULL. */
static gmm_status read_rows(const char *path, const cJSON *item, const char *what, size_t rows, const char *rows_name,
                            const char *one, const char *many, size_t cols, const char *cols_name, double *out)
{
    gmm_status st = check_entries(path, item, what, rows, rows_name, one, many);
    if (st != GMM_OK) return st;
    char name[128];
    const cJSON *row;
    size_t i = 0;
    cJSON_ArrayForEach(row, item)
    {
        snprintf(name, sizeof name, "%s[%zu]", what, i);
        if ((st = read_numbers(path, row, name, cols, cols_name, out ? out + i * cols : NULL))) return st;
        i++;
    }
    return GMM_OK;
}

/* Checks that item (named what: "\"covariances\"" or "\"precisions\"") holds matrices of type's own shape
 * for s->k components in s->d dimensions (full [k][d][d], tied [d][d], diag [k][d], spherical [k]);
 * stores them into out (gmm_covariance_size doubles) when out is not NULL. A shape error says which shape
 * the type expects. */
static gmm_status read_matrices(const char *path, const cJSON *item, const char *what, gmm_covariance_type type,
                                const json_sizes *s, double *out)
{
    size_t k = s->k, d = s->d;
    gmm_status st = GMM_OK;
    char shape[96];
    switch (type) {
    case GMM_COV_FULL: {
        snprintf(shape, sizeof shape, "[n_components][n_features][n_features] = [%zu][%zu][%zu]", k, d, d);
        st = check_entries(path, item, what, k, s->k_name, "entry", "entries");
        if (st != GMM_OK) break;
        char name[128];
        const cJSON *mat;
        size_t c = 0;
        cJSON_ArrayForEach(mat, item)
        {
            snprintf(name, sizeof name, "%s[%zu]", what, c);
            st = read_rows(path, mat, name, d, s->d_name, "row", "rows", d, s->d_name, out ? out + c * d * d : NULL);
            if (st != GMM_OK) break;
            c++;
        }
        break;
    }
    case GMM_COV_TIED:
        snprintf(shape, sizeof shape, "[n_features][n_features] = [%zu][%zu]", d, d);
        st = read_rows(path, item, what, d, s->d_name, "row", "rows", d, s->d_name, out);
        break;
    case GMM_COV_DIAG:
        snprintf(shape, sizeof shape, "[n_components][n_features] = [%zu][%zu]", k, d);
        st = read_rows(path, item, what, k, s->k_name, "entry", "entries", d, s->d_name, out);
        break;
    case GMM_COV_SPHERICAL:
        snprintf(shape, sizeof shape, "[n_components] = [%zu]", k);
        st = read_numbers(path, item, what, k, s->k_name, out);
        break;
    }
    if (st != GMM_ERR_PARSE) return st;
    char msg[768];
    snprintf(msg, sizeof msg, "%s", gmm_last_error()); /* gmm_fail writes over gmm_last_error's buffer */
    return gmm_fail(GMM_ERR_PARSE, "%s; covariance_type \"%s\" has %s of shape %s", msg, gmm_covariance_name(type),
                    what, shape);
}

/* Checks (all outputs NULL) or copies the arrays present among weights (k), means (k, d) and mats (type's
 * shape). After a successful check pass, the copy pass cannot fail. */
static gmm_status read_arrays(const char *path, gmm_covariance_type type, const json_sizes *s, const cJSON *weights,
                              const cJSON *means, const cJSON *mats, const char *mats_name, double *w, double *mu,
                              double *mat)
{
    gmm_status st;
    if (weights && (st = read_numbers(path, weights, "\"weights\"", s->k, s->k_name, w))) return st;
    if (means && (st = read_rows(path, means, "\"means\"", s->k, s->k_name, "entry", "entries", s->d, s->d_name, mu)))
        return st;
    if (mats && (st = read_matrices(path, mats, mats_name, type, s, mat))) return st;
    return GMM_OK;
}

static int compare_key_ptrs(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Sorts the members of object obj (n of them) by key into *keys (grown as needed, *cap entries) and
 * returns the first key that occurs twice, or NULL. */
static const char *first_duplicate(const cJSON *obj, size_t n, const cJSON ***keys, size_t *cap, int *nomem)
{
    if (n < 2) return NULL;
    if (n > *cap) {
        const cJSON **bigger = realloc(*keys, n * sizeof **keys);
        if (!bigger) {
            *nomem = 1;
            return NULL;
        }
        *keys = bigger;
        *cap = n;
    }
    size_t i = 0;
    for (const cJSON *c = obj->child; c; c = c->next) (*keys)[i++] = c;
    qsort(*keys, n, sizeof **keys, compare_key_ptrs);
    for (i = 1; i < n; i++)
        if (!strcmp((*keys)[i]->string, (*keys)[i - 1]->string)) return (*keys)[i]->string;
    return NULL;
}

/* GMM_ERR_PARSE naming the key when an object in the tree under item holds a key twice: JSON parsers
 * disagree on which one counts (cJSON the first, Python the last), so gmm takes neither. where names item
 * for the message. Recursion is bounded by cJSON's nesting limit (CJSON_NESTING_LIMIT). */
static gmm_status check_keys_under(const char *path, const cJSON *item, const char *where, const cJSON ***keys,
                                   size_t *cap)
{
    if (cJSON_IsObject(item)) {
        size_t n = 0;
        for (const cJSON *c = item->child; c; c = c->next) n++;
        int nomem = 0;
        const char *dup = first_duplicate(item, n, keys, cap, &nomem);
        if (nomem) return gmm_fail(GMM_ERR_NOMEM, "%s: out of memory checking an object of %zu keys", path, n);
        if (dup) return parse_fail(path, "duplicate key \"%.60s\" in %s; expected each key once", dup, where);
    }
    if (!cJSON_IsObject(item) && !cJSON_IsArray(item)) return GMM_OK;
    for (const cJSON *c = item->child; c; c = c->next) {
        if (!cJSON_IsObject(c) && !cJSON_IsArray(c)) continue;
        char inner[96];
        if (cJSON_IsObject(item))
            snprintf(inner, sizeof inner, "the object \"%.60s\"", c->string);
        else
            snprintf(inner, sizeof inner, "%s", strncmp(where, "an object", 9) ? "an object inside an array" : where);
        gmm_status st = check_keys_under(path, c, inner, keys, cap);
        if (st != GMM_OK) return st;
    }
    return GMM_OK;
}

static gmm_status check_unique_keys(const char *path, const cJSON *root, const char *where)
{
    const cJSON **keys = NULL;
    size_t cap = 0;
    gmm_status st = check_keys_under(path, root, where, &keys, &cap);
    free(keys);
    return st;
}

/* Reads and parses the JSON file at path into *root_out (release with cJSON_Delete). Errors as described
 * in the top comment: GMM_ERR_IO, GMM_ERR_PARSE with PATH:LINE:COLUMN, GMM_ERR_NOMEM. */
static gmm_status parse_json_file(const char *path, cJSON **root_out)
{
    *root_out = NULL;
    char *text;
    size_t len;
    gmm_status st = read_whole_file(path, &text, &len);
    if (st != GMM_OK) return st;

    const char *nul = memchr(text, '\0', len);
    if (nul) {
        st = syntax_error(path, text, len, (size_t)(nul - text), "NUL byte in the file");
        free(text);
        return st;
    }
    /* The length includes the terminating NUL: cJSON then rejects anything after the value. The error
     * position comes from return_parse_end (the same offset as cJSON_GetErrorPtr, without the global). */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (!root) {
        size_t pos = end ? (size_t)(end - text) : 0;
        st = end ? syntax_error(path, text, len, pos, NULL)
                 : gmm_fail(GMM_ERR_NOMEM, "%s: out of memory parsing JSON", path);
        free(text);
        return st;
    }
    free(text);
    st = check_unique_keys(path, root, "the top-level object");
    if (st != GMM_OK) {
        cJSON_Delete(root);
        return st;
    }
    *root_out = root;
    return GMM_OK;
}

/* ----------------------------------------------------------------------------------------------- models */

/* Builds the model described by the parsed document root (format in the top comment) into *out. */
static gmm_status model_from_json(const char *path, const cJSON *root, gmm_model **out)
{
    if (!cJSON_IsObject(root)) return parse_fail(path, "top level is not a JSON object");

    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (format && !(cJSON_IsString(format) && strcmp(format->valuestring, "gmm-model") == 0)) {
        if (cJSON_IsString(format))
            return parse_fail(path, "\"format\" is \"%.60s\"; expected \"gmm-model\"", format->valuestring);
        return parse_fail(path, "\"format\" is not a string; expected \"gmm-model\"");
    }
    int present;
    double version = 1;
    gmm_status st = read_integer(path, root, "version", "\"version\"", 1, 2147483647.0, &present, &version);
    if (st != GMM_OK) return st;
    if (version != 1) return parse_fail(path, "\"version\" is %.0f; this version reads version 1", version);
    gmm_covariance_type type;
    if ((st = read_covariance_type(path, root, &type))) return st;

    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(root, "weights");
    const cJSON *means = cJSON_GetObjectItemCaseSensitive(root, "means");
    const cJSON *covs = cJSON_GetObjectItemCaseSensitive(root, "covariances");
    if (!weights) return parse_fail(path, "missing \"weights\"");
    if (!means) return parse_fail(path, "missing \"means\"");
    if (!covs) return parse_fail(path, "missing \"covariances\"");

    /* k and d: declared, or inferred from "weights" and "means"[0]. First pass: shapes and types only, so
     * that nothing is allocated from sizes the file does not hold. */
    json_sizes s = {0};
    if ((st = read_declared_sizes(path, root, &s))) return st;
    if ((st = infer_sizes(path, type, weights, means, covs, "\"covariances\"", &s))) return st;
    if ((st = read_arrays(path, type, &s, weights, means, covs, "\"covariances\"", NULL, NULL, NULL))) return st;
    size_t k = s.k, d = s.d;

    /* Second pass: copy the numbers (all checks above passed, so this cannot fail). */
    double *w = gmm_xcalloc(k, sizeof *w);
    double *mu = w ? gmm_xcalloc(k * d, sizeof *mu) : NULL;
    double *sigma = mu ? gmm_xcalloc(gmm_covariance_size(type, k, d), sizeof *sigma) : NULL;
    if (!sigma) {
        free(w);
        free(mu);
        return GMM_ERR_NOMEM;
    }
    (void)read_arrays(path, type, &s, weights, means, covs, "\"covariances\"", w, mu, sigma);

    gmm_model *m = NULL;
    st = gmm_model_from_params(k, d, type, w, mu, sigma, &m);
    free(mu);
    free(sigma);
    if (st != GMM_OK) {
        free(w);
        if (st == GMM_ERR_NOMEM) return st;
        char msg[768];
        snprintf(msg, sizeof msg, "%s", gmm_last_error()); /* gmm_fail writes over gmm_last_error's buffer */
        return parse_fail(path, "%s", msg);
    }
    /* from_params normalized the weights; keep the file's own when they already sum to 1 (exact round trip). */
    double wsum = 0.0;
    for (size_t j = 0; j < k; j++) wsum += w[j];
    if (fabs(wsum - 1.0) <= 1e-12) memcpy(m->weights, w, k * sizeof *w);
    free(w);

    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(root, "fit");
    if (fit && (st = read_fit(path, fit, m)) != GMM_OK) {
        gmm_model_free(m);
        return st;
    }
    *out = m;
    return GMM_OK;
}

gmm_status gmm_model_load(const char *path, gmm_model **out)
{
    if (out) *out = NULL;
    if (!path || !out) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_model_load needs a path and an output pointer");
    cJSON *root;
    gmm_status st = parse_json_file(path, &root);
    if (st != GMM_OK) return st;
    st = model_from_json(path, root, out);
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------------------------------------ init files */

/* Names matrix c of mats_name (type full or tied) for messages: "\"precisions\"[1] (component 2, label 1)", or
 * "\"precisions\" (tied: shared by all components)". */
static void matrix_name(char *buf, size_t size, const char *mats_name, gmm_covariance_type type, size_t c)
{
    if (type == GMM_COV_TIED)
        snprintf(buf, size, "%s (tied: shared by all components)", mats_name);
    else
        snprintf(buf, size, "%s[%zu] (component %zu, label %zu)", mats_name, c, c + 1, c);
}

/* Turns the matrices mat (type's own shape, k components in d dimensions, read from mats_name) into
 * precisions in place: covariances (from_cov) are inverted, full/tied as U U^T with U = L^{-T} from the
 * Cholesky factor L (exactly symmetric), diag/spherical as 1/v; given precisions are kept as they are. Checks
 * that what is read is symmetric (GMM_ERR_PARSE, same tolerance as gmm_model_from_params) and positive
 * definite (GMM_ERR_NOT_PD naming the component), and that the resulting precisions are too (a covariance
 * so close to singular that its computed inverse has no Cholesky factor, or 1/v overflows, is
 * GMM_ERR_NOT_PD). */
static gmm_status finish_precisions(const char *path, const char *mats_name, int from_cov, gmm_covariance_type type,
                                    size_t k, size_t d, double *mat)
{
    const char *what = from_cov ? "variances" : "precisions";
    if (type == GMM_COV_DIAG || type == GMM_COV_SPHERICAL) {
        size_t n = type == GMM_COV_DIAG ? k * d : k;
        for (size_t i = 0; i < n; i++) {
            char name[128];
            if (type == GMM_COV_DIAG)
                snprintf(name, sizeof name, "%s[%zu][%zu] (component %zu, label %zu)", mats_name, i / d, i % d,
                         i / d + 1, i / d);
            else
                snprintf(name, sizeof name, "%s[%zu] (component %zu, label %zu)", mats_name, i, i + 1, i);
            double v = mat[i];
            if (!(v > 0.0))
                return gmm_fail(GMM_ERR_NOT_PD, "%s: %s is %.17g; %s %s must be positive", path, name, v,
                                gmm_covariance_name(type), what);
            if (from_cov) {
                double p = 1.0 / v;
                if (!isfinite(p))
                    return gmm_fail(GMM_ERR_NOT_PD, "%s: %s is %.17g, too small to invert (1/v overflows)", path,
                                    name, v);
                mat[i] = p;
            }
        }
        return GMM_OK;
    }

    size_t n_mat = type == GMM_COV_FULL ? k : 1;
    double *l = gmm_xmalloc(2 * d * d * sizeof *l);
    if (!l) return GMM_ERR_NOMEM;
    double *u = l + d * d;
    gmm_status st = GMM_OK;
    char name[128];
    for (size_t c = 0; c < n_mat && st == GMM_OK; c++) {
        double *a = mat + c * d * d;
        matrix_name(name, sizeof name, mats_name, type, c);
        for (size_t i = 0; i < d && st == GMM_OK; i++)
            for (size_t j = 0; j < i; j++) {
                double x = a[i * d + j], y = a[j * d + i];
                if (fabs(x - y) > 1e-10 * (fabs(x) + fabs(y)) + 1e-300) {
                    st = parse_fail(path, "%s is not symmetric: [%zu][%zu] = %.17g but [%zu][%zu] = %.17g", name, i,
                                    j, x, j, i, y);
                    break;
                }
            }
        if (st != GMM_OK) break;
        memcpy(l, a, d * d * sizeof *l);
        int bad = gmm_cholesky_lower(l, d);
        if (bad) {
            st = gmm_fail(GMM_ERR_NOT_PD, "%s: %s is not positive definite (leading minor %d is not positive)", path,
                          name, bad);
            break;
        }
        if (!from_cov) continue;
        /* precision = L^{-T} L^{-1} = U U^T: entry (i, j) sums over t >= max(i, j) (U is upper triangular);
         * computed for j <= i and mirrored, so the result is exactly symmetric. */
        gmm_precision_chol_from_cov_chol(l, u, d);
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j <= i; j++) {
                double sum = 0.0;
                for (size_t t = i; t < d; t++) sum += u[i * d + t] * u[j * d + t];
                a[i * d + j] = a[j * d + i] = sum;
            }
        memcpy(l, a, d * d * sizeof *l);
        bad = gmm_cholesky_lower(l, d);
        if (bad)
            st = gmm_fail(GMM_ERR_NOT_PD,
                          "%s: %s is too close to singular: its computed inverse is not positive definite "
                          "(leading minor %d is not positive)",
                          path, name, bad);
    }
    free(l);
    return st;
}

/* The "fit"."lower_bound" of a saved model, for --warm-start: -INFINITY without a fit record or when it is
 * null (no iteration); 0, or -1 with GMM_ERR_PARSE recorded when it is neither a finite number nor null. */
static int read_fit_lower_bound(const char *path, const cJSON *root, double *out)
{
    *out = -INFINITY;
    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(root, "fit");
    const cJSON *lb = cJSON_IsObject(fit) ? cJSON_GetObjectItemCaseSensitive(fit, "lower_bound") : NULL;
    if (!lb || cJSON_IsNull(lb)) return 0;
    if (!cJSON_IsNumber(lb) || !isfinite(lb->valuedouble)) {
        parse_fail(path, "\"fit\".\"lower_bound\" is not a finite number or null");
        return -1;
    }
    *out = lb->valuedouble;
    return 0;
}

/* Fills *f from the parsed init file root (format in the top comment); on failure the caller frees f. */
static gmm_status init_from_json(const char *path, const cJSON *root, gmm_init_file *f)
{
    if (!cJSON_IsObject(root)) return parse_fail(path, "top level is not a JSON object");
    gmm_status st = read_covariance_type(path, root, &f->type);
    if (st != GMM_OK) return st;

    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(root, "weights");
    const cJSON *means = cJSON_GetObjectItemCaseSensitive(root, "means");
    const cJSON *covs = cJSON_GetObjectItemCaseSensitive(root, "covariances");
    const cJSON *precs = cJSON_GetObjectItemCaseSensitive(root, "precisions");
    if (covs && precs)
        return parse_fail(path, "both \"covariances\" and \"precisions\" are given; expected at most one of them");
    if (!weights && !means && !covs && !precs)
        return parse_fail(path, "no initial parameters: expected at least one of \"weights\", \"means\", "
                                "\"covariances\", \"precisions\"");
    const cJSON *mats = covs ? covs : precs;
    const char *mats_name = covs ? "\"covariances\"" : "\"precisions\"";

    json_sizes s = {0};
    if ((st = read_declared_sizes(path, root, &s))) return st;
    if ((st = infer_sizes(path, f->type, weights, means, mats, mats_name, &s))) return st;
    if ((st = read_arrays(path, f->type, &s, weights, means, mats, mats_name, NULL, NULL, NULL))) return st;
    f->k = s.k;
    f->d = s.d;

    /* Shapes are known to hold: allocate and copy. */
    if (weights && !(f->weights = gmm_xcalloc(s.k, sizeof(double)))) return GMM_ERR_NOMEM;
    if (means && !(f->means = gmm_xcalloc(s.k * s.d, sizeof(double)))) return GMM_ERR_NOMEM;
    if (mats && !(f->precisions = gmm_xcalloc(gmm_covariance_size(f->type, s.k, s.d), sizeof(double))))
        return GMM_ERR_NOMEM;
    (void)read_arrays(path, f->type, &s, weights, means, mats, mats_name, f->weights, f->means, f->precisions);

    /* scikit-learn's _check_weights: each in [0, 1], the sum 1 within 1e-8; used as given (no normalization) */
    if (f->weights) {
        double sum = 0.0;
        for (size_t i = 0; i < s.k; i++) {
            if (!(f->weights[i] >= 0.0 && f->weights[i] <= 1.0))
                return parse_fail(path, "\"weights\"[%zu] is %.17g; initial weights must be in [0, 1]", i,
                                  f->weights[i]);
            sum += f->weights[i];
        }
        if (!(fabs(sum - 1.0) <= GMM_WEIGHTS_SUM_TOL))
            return parse_fail(path,
                              "\"weights\" sum to %.17g; initial weights must sum to 1 within %g (they are "
                              "used as given, not normalized)",
                              sum, GMM_WEIGHTS_SUM_TOL);
    }
    if (read_fit_lower_bound(path, root, &f->lower_bound)) return GMM_ERR_PARSE;
    if (f->precisions) return finish_precisions(path, mats_name, covs != NULL, f->type, s.k, s.d, f->precisions);
    return GMM_OK;
}

gmm_status gmm_init_file_load(const char *path, gmm_init_file *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!path || !out)
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_init_file_load needs a path and an output structure");
    cJSON *root;
    gmm_status st = parse_json_file(path, &root);
    if (st != GMM_OK) return st;
    st = init_from_json(path, root, out);
    cJSON_Delete(root);
    if (st != GMM_OK) gmm_init_file_free(out);
    return st;
}

void gmm_init_file_free(gmm_init_file *f)
{
    if (!f) return;
    free(f->weights);
    free(f->means);
    free(f->precisions);
    memset(f, 0, sizeof *f);
}
