/*
 * data_io.c — reading and writing data sets: CSV (streamed in 1 MiB blocks, strict, every malformed input
 * reported as PATH:LINE:COLUMN) and NumPy .npy (versions 1.0/2.0/3.0, '<f8' or '<f4', C order, 2-D).
 * Writers produce NumPy-identical .npy headers and exact-round-trip CSV, whole or not at all.
 *
 * Message formats (other code and the tests rely on them):
 *   CSV   "PATH:LINE:COL: <offending text in quotes, if any> <what was expected>"; LINE and COL are 1-based,
 *         COL counts bytes from the start of the line (after a UTF-8 BOM on line 1);
 *   .npy  "PATH: <what is wrong>"; data positions as "row R, column C" (1-based, with the 0-based NumPy
 *         index beside them).
 */
#include "gmm_internal.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Bytes read per block; lines longer than this grow the buffer. The fuzz build sets a tiny value so that
 * short inputs exercise the block boundaries (partial lines carried over, buffer growth). */
#ifndef CSV_BLOCK_BYTES
#define CSV_BLOCK_BYTES ((size_t)1 << 20)
#endif
/* The longest CSV line read (a multiple of CSV_BLOCK_BYTES by a power of two): a line beyond it is refused
 * rather than read until memory runs out. */
#ifndef CSV_MAX_LINE_BYTES
#define CSV_MAX_LINE_BYTES ((size_t)64 << 20)
#endif
#define NPY_MAX_HEADER ((size_t)1 << 20) /* refuse absurd .npy header lengths before allocating */
#define NPY_ALIGN 64                     /* NumPy's ARRAY_ALIGN */
#define NPY_GROWTH_DIGITS 21             /* NumPy's GROWTH_AXIS_MAX_DIGITS */
#define TOKEN_SHOW_MAX 48                /* bytes of an offending token quoted in a message */

/* ---------------------------------------------------------------------------------------------- helpers */

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static void swap_bytes(unsigned char *p, size_t width)
{
    for (size_t i = 0; i < width / 2; i++) {
        unsigned char t = p[i];
        p[i] = p[width - 1 - i];
        p[width - 1 - i] = t;
    }
}

/* True when path ends in ".npy", compared without regard to ASCII case (and independent of the locale). */
static int has_npy_suffix(const char *path)
{
    size_t len = strlen(path);
    if (len < 4) return 0;
    const char *s = path + len - 4;
    const char *want = ".npy";
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != want[i]) return 0;
    }
    return 1;
}

/* Writes a printable rendering of s[0..len) into out (at least 4 * TOKEN_SHOW_MAX + 8 bytes): control
 * bytes and bytes >= 0x7f as \xNN (\t, \r as such), cut after TOKEN_SHOW_MAX input bytes with "...".
 * Returns out. */
static const char *show_text(char *out, const char *s, size_t len)
{
    size_t o = 0;
    size_t shown = len < TOKEN_SHOW_MAX ? len : TOKEN_SHOW_MAX;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (len > shown) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

#define SHOW_BUF_BYTES (4 * TOKEN_SHOW_MAX + 8)

/* Switches this thread to the C locale for number formatting and parsing (so that a program that called
 * setlocale() still reads "0.5"); restore with locale_leave. Falls back silently to the current locale if
 * a C locale object cannot be made. */
typedef struct c_locale_scope {
    locale_t c_loc;
    locale_t saved;
} c_locale_scope;

static void locale_enter(c_locale_scope *s)
{
    s->c_loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    s->saved = s->c_loc ? uselocale(s->c_loc) : (locale_t)0;
}

static void locale_leave(c_locale_scope *s)
{
    if (s->c_loc) {
        uselocale(s->saved);
        freelocale(s->c_loc);
    }
}

/* ------------------------------------------------------------------------------------------- CSV reader */

typedef struct csv_reader {
    const char *path;
    double *x;         /* values so far, row-major */
    size_t count, cap; /* values stored / allocated */
    size_t d;          /* fields per row; 0 until the first data row is complete */
    size_t first_data_line;
    size_t header_line; /* 0 when there is no header */
    size_t header_fields;
    size_t lineno;     /* 1-based number of the line being processed */
    int seen_nonblank; /* a non-blank line (header or data) has been seen */
    int nul_seen;      /* a NUL byte was read somewhere: lines must be checked for it */
} csv_reader;

static int is_blank_char(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Grows r->x geometrically so that at least one more value fits. */
static gmm_status csv_grow(csv_reader *r)
{
    size_t new_cap = r->cap ? r->cap * 2 : 4096;
    size_t row = (r->d ? r->count / r->d : 0) + 1;
    if (new_cap < r->cap || new_cap > SIZE_MAX / sizeof(double))
        return gmm_fail(GMM_ERR_NOMEM, "%s:%zu: too many values to hold in memory (row %zu, d = %zu)", r->path,
                        r->lineno, row, r->d);
    double *p = realloc(r->x, new_cap * sizeof(double));
    if (!p)
        return gmm_fail(GMM_ERR_NOMEM, "%s:%zu: out of memory at row %zu (d = %zu) growing the data to %zu bytes",
                        r->path, r->lineno, row, r->d, new_cap * sizeof(double));
    r->x = p;
    r->cap = new_cap;
    return GMM_OK;
}

/* Trims spaces and tabs around the field [*a, *b). */
static void trim_field(const char **a, const char **b)
{
    const char *s = *a, *e = *b;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *a = s;
    *b = e;
}

/* Counts the fields of line [line, end) and how many of its non-empty fields strtod consumes whole
 * ("numeric", finite or not) or not at all ("non-numeric"). Used to detect the header and to explain
 * errors. */
static void csv_classify(const char *line, const char *end, size_t *fields, size_t *numeric, size_t *non_numeric)
{
    size_t nf = 0, num = 0, non = 0;
    const char *p = line;
    for (;;) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        const char *a = p, *b = q ? q : end;
        trim_field(&a, &b);
        nf++;
        if (a < b) {
            char *e = NULL;
            int lead_space = (*a == '\v' || *a == '\f' || *a == '\r');
            (void)strtod(a, &e);
            if (!lead_space && e == b)
                num++;
            else
                non++;
        }
        if (!q) break;
        p = q + 1;
    }
    *fields = nf;
    *numeric = num;
    *non_numeric = non;
}

/* Clinger's fast path: parses a plain decimal [a, b) ("-12.5", "3e-4") whose significand has at most 19
 * digits, fits in 53 bits, and whose decimal exponent is within +-22. Then significand and power of ten
 * are both exact doubles and one IEEE multiplication or division gives the correctly rounded result, the
 * same bits as strtod. Returns 0 (the caller then uses strtod) for anything else, valid or not. */
static int csv_fast_number(const char *a, const char *b, double *out)
{
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = a;
    int neg = 0;
    if (p < b && (*p == '-' || *p == '+')) neg = *p++ == '-';
    uint64_t m = 0;
    int sig = 0, digits = 0, exp10 = 0;
    while (p < b && *p >= '0' && *p <= '9') {
        if (m || *p != '0') {
            if (++sig > 19) return 0;
            m = m * 10 + (uint64_t)(*p - '0');
        }
        digits++;
        p++;
    }
    if (p < b && *p == '.') {
        p++;
        while (p < b && *p >= '0' && *p <= '9') {
            if (m || *p != '0') {
                if (++sig > 19) return 0;
                m = m * 10 + (uint64_t)(*p - '0');
            }
            exp10--;
            digits++;
            p++;
        }
    }
    if (digits == 0) return 0;
    if (p < b && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, e = 0, edigits = 0;
        if (p < b && (*p == '-' || *p == '+')) eneg = *p++ == '-';
        while (p < b && *p >= '0' && *p <= '9') {
            if (++edigits > 4) return 0;
            e = e * 10 + (*p - '0');
            p++;
        }
        if (edigits == 0) return 0;
        exp10 += eneg ? -e : e;
    }
    if (p != b) return 0;
    if (m > ((uint64_t)1 << 53)) return 0;
    double v;
    if (m == 0)
        v = 0.0;
    else if (exp10 >= 0 && exp10 <= 22)
        v = (double)m * pow10[exp10];
    else if (exp10 < 0 && exp10 >= -22)
        v = (double)m / pow10[-exp10];
    else
        return 0;
    *out = neg ? -v : v;
    return 1;
}

/* 1 when the field [a, b) is a C hexadecimal number ("0x1p3", "-0X.8"), which strtod reads but numpy
 * refuses. */
static int is_hex_number(const char *a, const char *b)
{
    if (a < b && (*a == '+' || *a == '-')) a++;
    return b - a >= 2 && a[0] == '0' && (a[1] == 'x' || a[1] == 'X');
}

/* Fails for the field [a, b) of the line starting at line: it is not a number, not finite, out of range or
 * hexadecimal (err_kind 0, 1, 2, 3). Adds a hint when the row looks like a misplaced or mixed header. */
static gmm_status csv_bad_number(csv_reader *r, const char *line, const char *end, const char *a, const char *b,
                                 int err_kind)
{
    char shown[SHOW_BUF_BYTES];
    show_text(shown, a, (size_t)(b - a));
    size_t col = (size_t)(a - line) + 1;
    if (err_kind == 1)
        return gmm_fail(GMM_ERR_PARSE,
                        "%s:%zu:%zu: '%s' is not a finite number, expected a finite value (NaN and "
                        "infinities are not accepted)",
                        r->path, r->lineno, col, shown);
    if (err_kind == 2)
        return gmm_fail(GMM_ERR_PARSE,
                        "%s:%zu:%zu: '%s' is out of range for a double, expected a number "
                        "of magnitude below 1.8e308",
                        r->path, r->lineno, col, shown);
    if (err_kind == 3)
        return gmm_fail(GMM_ERR_PARSE,
                        "%s:%zu:%zu: '%s' is a hexadecimal number, expected a decimal number (as "
                        "numpy reads them)",
                        r->path, r->lineno, col, shown);
    size_t nf, num, non;
    csv_classify(line, end, &nf, &num, &non);
    const char *hint = "";
    if (memchr(a, ';', (size_t)(b - a)))
        hint = " (fields must be separated by commas, not semicolons)";
    else if (r->d == 0 && r->header_line == 0)
        hint = " (this first row was not taken as a header because some of its fields are numbers)";
    else if (num == 0 && nf == (r->d ? r->d : r->header_fields))
        hint = " (a header is only allowed as the first non-blank line)";
    return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: '%s' is not a number%s", r->path, r->lineno, col, shown, hint);
}

static const char *plural(size_t n) { return n == 1 ? "" : "s"; }

/* Parses one data row [line, end) (end excludes the line's '\n' and a final '\r'; *end is a byte that
 * stops strtod) and appends its values to r->x. The first data row fixes r->d. */
static gmm_status csv_parse_row(csv_reader *r, const char *line, const char *end)
{
    const char *p = line;
    const char *last_end = line;
    size_t j = 0;
    for (;;) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        const char *a = p, *b = q ? q : end;
        trim_field(&a, &b);
        size_t col = (size_t)(p - line) + 1;
        if (a == b) {
            if (!q && j > 0)
                return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: trailing comma, expected a number after it", r->path,
                                r->lineno, col);
            return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: empty field, expected a number", r->path, r->lineno, col);
        }
        if (r->d && j >= r->d) {
            size_t total = j + 1;
            for (const char *s = q; s; s = memchr(s + 1, ',', (size_t)(end - s - 1))) total++;
            return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: row has %zu field%s, expected %zu (as in line %zu)", r->path,
                            r->lineno, (size_t)(a - line) + 1, total, plural(total), r->d, r->first_data_line);
        }
        double v;
        if (!csv_fast_number(a, b, &v)) {
            if (*a == '\v' || *a == '\f' || *a == '\r') return csv_bad_number(r, line, end, a, b, 0);
            char *e;
            errno = 0;
            v = strtod(a, &e);
            if (e != b) return csv_bad_number(r, line, end, a, b, 0);
            if (is_hex_number(a, b)) return csv_bad_number(r, line, end, a, b, 3);
            if (!isfinite(v)) return csv_bad_number(r, line, end, a, b, errno == ERANGE ? 2 : 1);
            /* Underflow (ERANGE with a finite result) is accepted: the value is the correctly rounded
             * subnormal or zero, which is what a round trip of a tiny double needs. */
        }
        if (r->count == r->cap) {
            gmm_status st = csv_grow(r);
            if (st != GMM_OK) return st;
        }
        r->x[r->count++] = v;
        j++;
        last_end = b;
        if (!q) break;
        p = q + 1;
    }
    if (r->d == 0) {
        r->d = j;
        r->first_data_line = r->lineno;
        if (r->header_line && r->header_fields != j)
            return gmm_fail(GMM_ERR_PARSE,
                            "%s:%zu:1: header has %zu field%s, expected %zu (as in the first "
                            "data row, line %zu)",
                            r->path, r->header_line, r->header_fields, plural(r->header_fields), j, r->lineno);
    } else if (j < r->d) {
        return gmm_fail(GMM_ERR_PARSE, "%s:%zu:%zu: row has %zu field%s, expected %zu (as in line %zu)", r->path,
                        r->lineno, (size_t)(last_end - line) + 1, j, plural(j), r->d, r->first_data_line);
    }
    return GMM_OK;
}

/* Handles one line [line, line + len) without its '\n'; line[len] is a byte that stops strtod ('\n' or the
 * buffer's terminating NUL). Skips blank lines, detects the header on the first non-blank line. */
static gmm_status csv_line(csv_reader *r, const char *line, size_t len)
{
    if (r->nul_seen) {
        const char *z = memchr(line, '\0', len);
        if (z)
            return gmm_fail(GMM_ERR_PARSE,
                            "%s:%zu:%zu: embedded NUL byte, expected text (is this a binary "
                            "file? a .npy file needs the .npy suffix)",
                            r->path, r->lineno, (size_t)(z - line) + 1);
    }
    const char *end = line + len;
    if (end > line && end[-1] == '\r') end--;
    const char *s = line;
    while (s < end && is_blank_char(*s)) s++;
    if (s == end) return GMM_OK; /* blank line */
    if (!r->seen_nonblank) {
        r->seen_nonblank = 1;
        size_t nf, num, non;
        csv_classify(line, end, &nf, &num, &non);
        if (non > 0 && num == 0) { /* a header: text only, no field that is a number */
            r->header_line = r->lineno;
            r->header_fields = nf;
            return GMM_OK;
        }
    }
    return csv_parse_row(r, line, end);
}

/* The read buffer of the CSV reader: unprocessed bytes are buf[start, end), buf[end] is '\0'. */
typedef struct csv_block {
    char *buf;
    size_t cap, start, end, total_bytes;
    int eof, first_block;
} csv_block;

/* Carries the partial last line to the front of the buffer, grows the buffer when that line fills it (up to
 * CSV_MAX_LINE_BYTES), and reads the next block. */
static gmm_status csv_fill(csv_reader *r, FILE *f, csv_block *b)
{
    if (b->start > 0) {
        memmove(b->buf, b->buf + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    if (b->end == b->cap) {
        if (b->cap >= CSV_MAX_LINE_BYTES)
            return gmm_fail(GMM_ERR_PARSE,
                            "%s:%zu:1: line longer than the limit of %zu MiB, expected lines of at "
                            "most that length",
                            r->path, r->lineno + 1, CSV_MAX_LINE_BYTES >> 20);
        char *nb = realloc(b->buf, b->cap * 2 + 1);
        if (!nb)
            return gmm_fail(GMM_ERR_NOMEM, "%s:%zu: out of memory holding a line of %zu bytes (row %zu, d = %zu)",
                            r->path, r->lineno + 1, b->end, (r->d ? r->count / r->d : 0) + 1, r->d);
        b->buf = nb;
        b->cap *= 2;
    }
    size_t got = fread(b->buf + b->end, 1, b->cap - b->end, f);
    if (got < b->cap - b->end) {
        if (ferror(f)) return gmm_fail(GMM_ERR_IO, "cannot read %s: %s", r->path, strerror(errno));
        b->eof = 1;
    }
    if (!r->nul_seen && memchr(b->buf + b->end, '\0', got)) r->nul_seen = 1;
    b->end += got;
    b->total_bytes += got;
    b->buf[b->end] = '\0'; /* stops strtod on a last line without '\n' */
    if (b->first_block && b->end >= 3) {
        b->first_block = 0;
        if (memcmp(b->buf, "\xEF\xBB\xBF", 3) == 0) b->start = 3; /* UTF-8 byte order mark */
    } else if (b->eof) {
        b->first_block = 0;
    }
    return GMM_OK;
}

/* Hands every complete line of the buffer to csv_line (and, at the end of the file, a last line without a
 * final newline). */
static gmm_status csv_take_lines(csv_reader *r, csv_block *b)
{
    for (;;) {
        char *line = b->buf + b->start;
        char *nl = memchr(line, '\n', b->end - b->start);
        if (!nl) break;
        r->lineno++;
        gmm_status st = csv_line(r, line, (size_t)(nl - line));
        if (st != GMM_OK) return st;
        b->start = (size_t)(nl + 1 - b->buf);
    }
    if (b->eof && b->start < b->end) {
        r->lineno++;
        gmm_status st = csv_line(r, b->buf + b->start, b->end - b->start);
        if (st != GMM_OK) return st;
        b->start = b->end;
    }
    return GMM_OK;
}

/* The whole file has been read: it must have held data rows. */
static gmm_status csv_check_complete(const csv_reader *r, size_t total_bytes)
{
    if (!r->seen_nonblank)
        return total_bytes == 0 ? gmm_fail(GMM_ERR_PARSE, "%s: no data: the file is empty", r->path)
                                : gmm_fail(GMM_ERR_PARSE, "%s: no data: the file has only blank lines (%zu lines)",
                                           r->path, r->lineno);
    if (r->d == 0) return gmm_fail(GMM_ERR_PARSE, "%s:%zu:1: no data rows after the header", r->path, r->header_line);
    return GMM_OK;
}

/* Streams the CSV file at path through a block buffer (1 MiB, grown only for longer lines) and returns
 * its values as a freshly allocated (n, d) array. */
static gmm_status read_csv(const char *path, double **x_out, size_t *n_out, size_t *d_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return gmm_fail(GMM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    setvbuf(f, NULL, _IONBF, 0); /* we read in large blocks ourselves */
    csv_reader r;
    memset(&r, 0, sizeof r);
    r.path = path;
    csv_block b = {malloc(CSV_BLOCK_BYTES + 1), CSV_BLOCK_BYTES, 0, 0, 0, 0, 1};
    if (!b.buf) {
        fclose(f);
        return gmm_fail(GMM_ERR_NOMEM, "%s: out of memory for a read buffer of %zu bytes", path, b.cap + 1);
    }
    c_locale_scope loc;
    locale_enter(&loc);
    gmm_status st = GMM_OK;
    while (!b.eof && st == GMM_OK) {
        st = csv_fill(&r, f, &b);
        if (st == GMM_OK) st = csv_take_lines(&r, &b);
    }
    locale_leave(&loc);
    free(b.buf);
    fclose(f);
    if (st == GMM_OK) st = csv_check_complete(&r, b.total_bytes);
    if (st != GMM_OK) {
        free(r.x);
        return st;
    }
    double *shrunk = realloc(r.x, r.count * sizeof(double));
    *x_out = shrunk ? shrunk : r.x;
    *n_out = r.count / r.d;
    *d_out = r.d;
    return GMM_OK;
}

/* ------------------------------------------------------------------------------------------- .npy reader */

typedef struct npy_header {
    char descr[32];
    int fortran_order;
    size_t shape[8];
    int ndim;
} npy_header;

typedef struct npy_cursor {
    const char *p, *end;
} npy_cursor;

static void npy_skip_ws(npy_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Parses a Python string literal ('...' or "...", no escapes) into out (cap bytes); 0 on failure. */
static int npy_string(npy_cursor *c, char *out, size_t cap)
{
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char quote = *c->p++;
    const char *s = c->p;
    while (c->p < c->end && *c->p != quote) c->p++;
    if (c->p >= c->end) return 0;
    size_t len = (size_t)(c->p - s);
    c->p++;
    if (len + 1 > cap) return 0;
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
}

static int npy_word(npy_cursor *c, const char *w)
{
    size_t len = strlen(w);
    if ((size_t)(c->end - c->p) < len || memcmp(c->p, w, len) != 0) return 0;
    c->p += len;
    return 1;
}

/* Parses the shape tuple "(a, b, ...)" (trailing comma allowed, Python 2 'L' suffixes accepted). */
static int npy_shape(npy_cursor *c, npy_header *h)
{
    if (c->p >= c->end || *c->p != '(') return 0;
    c->p++;
    h->ndim = 0;
    for (;;) {
        npy_skip_ws(c);
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            return 1;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
        size_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            size_t digit = (size_t)(*c->p - '0');
            if (v > (SIZE_MAX - digit) / 10) return 0;
            v = v * 10 + digit;
            c->p++;
        }
        if (c->p < c->end && *c->p == 'L') c->p++;
        if (h->ndim >= 8) return 0;
        h->shape[h->ndim++] = v;
        npy_skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            return 1;
        }
        return 0;
    }
}

/* Parses the header dictionary text [text, text + len) into h. Fails with a message naming path. */
static gmm_status npy_parse_header(const char *path, const char *text, size_t len, npy_header *h)
{
    char shown[SHOW_BUF_BYTES];
    npy_cursor c = {text, text + len};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    const char *what = NULL;
    memset(h, 0, sizeof *h);
    npy_skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') {
        what = "expected '{'";
        goto bad;
    }
    c.p++;
    for (;;) {
        npy_skip_ws(&c);
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            break;
        }
        char key[32];
        if (!npy_string(&c, key, sizeof key)) {
            what = "expected a quoted key";
            goto bad;
        }
        npy_skip_ws(&c);
        if (c.p >= c.end || *c.p != ':') {
            what = "expected ':' after a key";
            goto bad;
        }
        c.p++;
        npy_skip_ws(&c);
        if (strcmp(key, "descr") == 0) {
            if (c.p < c.end && *c.p == '[')
                return gmm_fail(GMM_ERR_PARSE,
                                "%s: structured dtypes are not supported, expected '<f8' or "
                                "'<f4'; save a plain float array",
                                path);
            if (!npy_string(&c, h->descr, sizeof h->descr)) {
                what = "expected a dtype string for 'descr'";
                goto bad;
            }
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (npy_word(&c, "True"))
                h->fortran_order = 1;
            else if (npy_word(&c, "False"))
                h->fortran_order = 0;
            else {
                what = "expected True or False for 'fortran_order'";
                goto bad;
            }
            have_fortran = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!npy_shape(&c, h)) {
                what = "expected a tuple of non-negative integers for 'shape'";
                goto bad;
            }
            have_shape = 1;
        } else {
            what = "unexpected key (expected only 'descr', 'fortran_order' and 'shape')";
            goto bad;
        }
        npy_skip_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            break;
        }
        what = "expected ',' or '}'";
        goto bad;
    }
    npy_skip_ws(&c);
    if (c.p != c.end) {
        what = "unexpected text after the dictionary";
        goto bad;
    }
    if (!have_descr || !have_fortran || !have_shape) {
        what = "missing one of the keys 'descr', 'fortran_order', 'shape'";
        goto bad;
    }
    return GMM_OK;
bad:
    return gmm_fail(GMM_ERR_PARSE, "%s: malformed .npy header at byte %zu of the header text: %s (header: '%s')",
                    path, (size_t)(c.p - text), what, show_text(shown, text, len));
}

static uint64_t read_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* The layout of a .npy file as its preamble and header describe it. */
typedef struct npy_layout {
    size_t prelen, hlen; /* preamble bytes (magic, version, header length), header text bytes */
    npy_header h;
    size_t item; /* 8 ('<f8') or 4 ('<f4') */
    size_t n, d;
} npy_layout;

/* Reads the magic, the version and the header length. */
static gmm_status npy_read_preamble(const char *path, FILE *f, npy_layout *L)
{
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (got < 6 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return gmm_fail(GMM_ERR_PARSE, "%s: not a .npy file: bad magic bytes, expected \\x93NUMPY", path);
    if (got < 10) return gmm_fail(GMM_ERR_PARSE, "%s: truncated .npy header: the file has only %zu bytes", path, got);
    int major = pre[6], minor = pre[7];
    if (major == 1 && minor == 0) {
        L->prelen = 10;
        L->hlen = (size_t)read_le(pre + 8, 2);
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (fread(pre + 10, 1, 2, f) != 2)
            return gmm_fail(GMM_ERR_PARSE, "%s: truncated .npy header: the file ends inside the header length", path);
        L->prelen = 12;
        L->hlen = (size_t)read_le(pre + 8, 4);
    } else {
        return gmm_fail(GMM_ERR_PARSE, "%s: unsupported .npy version %d.%d, expected 1.0, 2.0 or 3.0", path, major,
                        minor);
    }
    if (L->hlen > NPY_MAX_HEADER)
        return gmm_fail(GMM_ERR_PARSE, "%s: .npy header length %zu is implausibly large (limit %zu)", path, L->hlen,
                        NPY_MAX_HEADER);
    return GMM_OK;
}

/* Reads the header text (L->hlen bytes) and parses it into L->h. */
static gmm_status npy_read_header(const char *path, FILE *f, npy_layout *L)
{
    char *htext = malloc(L->hlen + 1);
    if (!htext)
        return gmm_fail(GMM_ERR_NOMEM, "%s: out of memory for the .npy header (%zu bytes)", path, L->hlen + 1);
    size_t got = fread(htext, 1, L->hlen, f);
    gmm_status st;
    if (got != L->hlen) {
        st = gmm_fail(GMM_ERR_PARSE, "%s: truncated .npy header: expected %zu header bytes, found %zu", path, L->hlen,
                      got);
    } else {
        htext[L->hlen] = '\0';
        st = npy_parse_header(path, htext, L->hlen, &L->h);
    }
    free(htext);
    return st;
}

/* Checks dtype, order and shape of L->h and sets L->item, L->n, L->d. */
static gmm_status npy_check_layout(const char *path, npy_layout *L)
{
    const npy_header *h = &L->h;
    if (strcmp(h->descr, "<f8") == 0) {
        L->item = 8;
    } else if (strcmp(h->descr, "<f4") == 0) {
        L->item = 4;
    } else if (h->descr[0] == '>') {
        return gmm_fail(GMM_ERR_PARSE,
                        "%s: big-endian data ('%s') is not supported, expected '<f8' or '<f4'; "
                        "save with x.astype('<f8')",
                        path, h->descr);
    } else {
        return gmm_fail(GMM_ERR_PARSE,
                        "%s: unsupported dtype '%s', expected '<f8' (float64) or '<f4' (float32); "
                        "save with x.astype(np.float64)",
                        path, h->descr);
    }
    if (h->fortran_order)
        return gmm_fail(GMM_ERR_PARSE, "%s: Fortran order is not supported; save with np.ascontiguousarray(x)", path);
    if (h->ndim != 2) {
        char shape_text[200];
        size_t o = 0;
        o += (size_t)snprintf(shape_text + o, sizeof shape_text - o, "(");
        for (int i = 0; i < h->ndim && o < sizeof shape_text - 40; i++)
            o += (size_t)snprintf(shape_text + o, sizeof shape_text - o, "%s%zu", i ? ", " : "", h->shape[i]);
        snprintf(shape_text + o, sizeof shape_text - o, "%s)", h->ndim == 1 ? "," : "");
        return gmm_fail(GMM_ERR_PARSE, "%s: shape %s has %d dimension%s, expected a 2-D array (n, d)%s", path,
                        shape_text, h->ndim, plural((size_t)h->ndim),
                        h->ndim == 1 ? "; save x.reshape(-1, 1) for one feature" : "");
    }
    size_t n = h->shape[0], d = h->shape[1];
    if (d == 0)
        return gmm_fail(GMM_ERR_PARSE, "%s: no data: the array has shape (%zu, 0), expected at least one column",
                        path, n);
    if (n == 0)
        return gmm_fail(GMM_ERR_PARSE, "%s: no data: the array has shape (0, %zu), expected at least one row", path,
                        d);
    if (n > SIZE_MAX / d || n * d > SIZE_MAX / 8)
        return gmm_fail(GMM_ERR_PARSE, "%s: shape (%zu, %zu) is too large to hold in memory", path, n, d);
    L->n = n;
    L->d = d;
    return GMM_OK;
}

/* For a regular file: checks that its size is exactly header + data, before anything is allocated. */
static gmm_status npy_check_file_size(const char *path, FILE *f, const npy_layout *L)
{
    unsigned long long data_bytes = (unsigned long long)L->n * L->d * L->item;
    unsigned long long head_bytes = (unsigned long long)(L->prelen + L->hlen);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) return GMM_OK;
    unsigned long long file_bytes = (unsigned long long)sb.st_size;
    if (file_bytes == head_bytes + data_bytes) return GMM_OK;
    int short_file = file_bytes < head_bytes + data_bytes;
    return gmm_fail(GMM_ERR_PARSE,
                    "%s: %s: shape (%zu, %zu) of '%s' needs %llu data bytes after the "
                    "%llu-byte header (a file of %llu bytes), but the file has %llu bytes (%llu %s)",
                    path, short_file ? "truncated data" : "unexpected bytes after the data", L->n, L->d, L->h.descr,
                    data_bytes, head_bytes, head_bytes + data_bytes, file_bytes,
                    short_file ? head_bytes + data_bytes - file_bytes : file_bytes - head_bytes - data_bytes,
                    short_file ? "missing" : "extra");
}

/* Reads up to count values of L->item bytes into x (float32 widened exactly); returns how many it read. */
static size_t npy_read_values(FILE *f, const npy_layout *L, double *x, size_t count, gmm_status *st)
{
    int swap = !host_is_little_endian();
    size_t done_vals = 0;
    if (L->item == 8) {
        done_vals = fread(x, 8, count, f);
        if (swap)
            for (size_t i = 0; i < done_vals; i++) swap_bytes((unsigned char *)(x + i), 8);
        return done_vals;
    }
    size_t block_vals = CSV_BLOCK_BYTES / 4;
    unsigned char *block = malloc(block_vals * 4);
    if (!block) {
        *st = gmm_fail(GMM_ERR_NOMEM, "out of memory for a read buffer of %zu bytes", block_vals * 4);
        return 0;
    }
    while (done_vals < count) {
        size_t want = count - done_vals < block_vals ? count - done_vals : block_vals;
        size_t g = fread(block, 4, want, f);
        for (size_t i = 0; i < g; i++) {
            float v;
            if (swap) swap_bytes(block + 4 * i, 4);
            memcpy(&v, block + 4 * i, 4);
            x[done_vals + i] = (double)v; /* exact: every float is a double */
        }
        done_vals += g;
        if (g < want) break;
    }
    free(block);
    return done_vals;
}

/* Reads the data that follow the header into *x_out (n * d doubles): every byte present, nothing after
 * them, every value finite. */
static gmm_status npy_read_data(const char *path, FILE *f, const npy_layout *L, double **x_out)
{
    size_t count = L->n * L->d;
    unsigned long long data_bytes = (unsigned long long)count * L->item;
    unsigned long long head_bytes = (unsigned long long)(L->prelen + L->hlen);
    double *x = malloc(count * sizeof(double));
    if (!x)
        return gmm_fail(GMM_ERR_NOMEM,
                        "%s: out of memory for the data: %zu rows x %zu columns (d = %zu) need %zu "
                        "bytes",
                        path, L->n, L->d, L->d, count * sizeof(double));
    gmm_status st = GMM_OK;
    size_t done_vals = npy_read_values(f, L, x, count, &st);
    if (st == GMM_OK && done_vals < count) {
        if (ferror(f))
            st = gmm_fail(GMM_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        else
            st = gmm_fail(GMM_ERR_PARSE,
                          "%s: truncated data: shape (%zu, %zu) of '%s' needs %llu data bytes "
                          "after the %llu-byte header, but only %llu follow",
                          path, L->n, L->d, L->h.descr, data_bytes, head_bytes,
                          (unsigned long long)done_vals * L->item);
    }
    if (st == GMM_OK && fgetc(f) != EOF)
        st = gmm_fail(GMM_ERR_PARSE,
                      "%s: unexpected bytes after the data: shape (%zu, %zu) of '%s' needs %llu "
                      "data bytes after the %llu-byte header",
                      path, L->n, L->d, L->h.descr, data_bytes, head_bytes);
    for (size_t i = 0; st == GMM_OK && i < count; i++) {
        if (!isfinite(x[i])) {
            size_t row = i / L->d, col = i % L->d;
            st = gmm_fail(GMM_ERR_PARSE,
                          "%s: row %zu, column %zu: value is not finite (%s; x[%zu, %zu] in "
                          "NumPy's 0-based indexing), expected finite numbers",
                          path, row + 1, col + 1, isnan(x[i]) ? "nan" : (x[i] > 0 ? "inf" : "-inf"), row, col);
        }
    }
    if (st != GMM_OK) {
        free(x);
        return st;
    }
    *x_out = x;
    return GMM_OK;
}

/* Reads a .npy file: checks magic, version, header, dtype, order, shape and exact size before allocating,
 * then reads the data (float32 converted exactly to double) and rejects non-finite values. */
static gmm_status read_npy(const char *path, double **x_out, size_t *n_out, size_t *d_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return gmm_fail(GMM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    npy_layout L;
    memset(&L, 0, sizeof L);
    gmm_status st = npy_read_preamble(path, f, &L);
    if (st == GMM_OK) st = npy_read_header(path, f, &L);
    if (st == GMM_OK) st = npy_check_layout(path, &L);
    if (st == GMM_OK) st = npy_check_file_size(path, f, &L);
    if (st == GMM_OK) st = npy_read_data(path, f, &L, x_out);
    fclose(f);
    if (st != GMM_OK) return st;
    *n_out = L.n;
    *d_out = L.d;
    return GMM_OK;
}

/* ------------------------------------------------------------------------------------------ public API */

gmm_status gmm_read_data(const char *path, double **x_out, size_t *n_out, size_t *d_out)
{
    if (!path || !x_out || !n_out || !d_out)
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_read_data: path and the three outputs must not be NULL");
    *x_out = NULL;
    *n_out = 0;
    *d_out = 0;
    return has_npy_suffix(path) ? read_npy(path, x_out, n_out, d_out) : read_csv(path, x_out, n_out, d_out);
}

/* Checks the arguments shared by the writers: d >= 1, x non-NULL when there are values, no overflow. */
static gmm_status check_write_args(const char *who, const char *path, const double *x, size_t n, size_t d)
{
    if (!path) return gmm_fail(GMM_ERR_INVALID_ARG, "%s: path is NULL", who);
    if (d == 0) return gmm_fail(GMM_ERR_INVALID_ARG, "%s: %s: d must be at least 1", who, path);
    if (n > SIZE_MAX / d / sizeof(double))
        return gmm_fail(GMM_ERR_INVALID_ARG, "%s: %s: shape (%zu, %zu) is too large", who, path, n, d);
    if (!x && n > 0) return gmm_fail(GMM_ERR_INVALID_ARG, "%s: %s: x is NULL", who, path);
    return GMM_OK;
}

gmm_status gmm_write_npy(const char *path, const double *x, size_t n, size_t d)
{
    gmm_status st = check_write_args("gmm_write_npy", path, x, n, d);
    if (st != GMM_OK) return st;

    /* NumPy's _write_array_header: the sorted dict's repr, spare spaces so the first axis can grow to
     * 21 digits in place, then spaces and '\n' so that magic + length + header is a multiple of 64. */
    char header[512];
    int len = snprintf(header, sizeof header, "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu, %zu), }", n,
                       d);
    char ndigits[32];
    int nlen = snprintf(ndigits, sizeof ndigits, "%zu", n);
    for (int i = nlen; i < NPY_GROWTH_DIGITS; i++) header[len++] = ' ';
    size_t hlen = (size_t)len + 1;
    size_t pad = NPY_ALIGN - ((6 + 2 + 2 + hlen) % NPY_ALIGN);
    memset(header + len, ' ', pad);
    header[(size_t)len + pad] = '\n';
    size_t total = hlen + pad; /* header bytes after the 10-byte preamble */
    unsigned char pre[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(total & 0xff), (unsigned char)(total >> 8)};

    gmm_atomic_file af;
    st = gmm_atomic_open(&af, path);
    if (st != GMM_OK) return st;
    setvbuf(af.f, NULL, _IOFBF, (size_t)1 << 20);
    fwrite(pre, 1, sizeof pre, af.f);
    fwrite(header, 1, total, af.f);
    size_t count = n * d;
    if (host_is_little_endian()) {
        fwrite(x, sizeof(double), count, af.f);
    } else {
        for (size_t i = 0; i < count && !ferror(af.f); i++) {
            unsigned char b[8];
            memcpy(b, x + i, 8);
            swap_bytes(b, 8);
            fwrite(b, 1, 8, af.f);
        }
    }
    return gmm_atomic_commit(&af);
}

gmm_status gmm_write_csv(const char *path, const double *x, size_t n, size_t d)
{
    gmm_status st = check_write_args("gmm_write_csv", path, x, n, d);
    if (st != GMM_OK) return st;
    gmm_atomic_file af;
    st = gmm_atomic_open(&af, path);
    if (st != GMM_OK) return st;
    setvbuf(af.f, NULL, _IOFBF, (size_t)1 << 20);
    c_locale_scope loc;
    locale_enter(&loc);

    char out[1 << 16];
    size_t o = 0;
    for (size_t i = 0; i < n && !ferror(af.f); i++) {
        for (size_t j = 0; j < d; j++) {
            if (o > sizeof out - 40) {
                fwrite(out, 1, o, af.f);
                o = 0;
            }
            double v = x[i * d + j];
            if (isnan(v)) /* one spelling for every NaN (glibc prints "-nan" for a negative one) */
                o += (size_t)snprintf(out + o, sizeof out - o, "nan");
            else
                o += (size_t)snprintf(out + o, sizeof out - o, "%.17g", v);
            out[o++] = j + 1 < d ? ',' : '\n';
        }
    }
    if (o) fwrite(out, 1, o, af.f);
    locale_leave(&loc);
    return gmm_atomic_commit(&af);
}
