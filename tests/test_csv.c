/*
 * test_csv.c — the CSV reader and writer (src/data_io.c): every malformed-input case with its exact
 * PATH:LINE:COLUMN message, the accepted variations (header, blank lines, CRLF, no final newline,
 * whitespace, BOM), exact decimal parsing (fast path and strtod agree bit for bit), lines longer than the
 * read block, errors past the first block, hexadecimal floats refused, the line-length cap, a bit-exact
 * write_csv -> read_data round trip, and a writer that never follows a link planted at a temporary name.
 */
#include "check.h"
#include "test_support.h"
#include "gmm_internal.h"

#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_path[4096];

/* Returns GMM_TEST_TMP/name (a static buffer, overwritten by the next call). */
static const char *tmp_file(const char *name)
{
    snprintf(tmp_path, sizeof tmp_path, "%s/%s", GMM_TEST_TMP, name);
    return tmp_path;
}

/* Writes len bytes to GMM_TEST_TMP/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *bytes, size_t len)
{
    const char *path = tmp_file(name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (len) fwrite(bytes, 1, len, f);
    fclose(f);
    return path;
}

/* Reads text (a C string) written to a file named name; expects GMM_ERR_PARSE and a message containing
 * "PATH" + where (e.g. ":2:3: ") and what. */
#define CHECK_PARSE_ERROR(name, text, where, what)                                                                   \
    do {                                                                                                             \
        const char *p_ = write_file((name), (text), strlen(text));                                                   \
        char want_[8192];                                                                                            \
        snprintf(want_, sizeof want_, "%s%s", p_, (where));                                                          \
        double *x_ = NULL;                                                                                           \
        size_t n_ = 99, d_ = 99;                                                                                     \
        gmm_status st_ = gmm_read_data(p_, &x_, &n_, &d_);                                                           \
        CHECK_INT_EQ(st_, GMM_ERR_PARSE);                                                                            \
        CHECK(x_ == NULL);                                                                                           \
        CHECK_STR_CONTAINS(gmm_last_error(), want_);                                                                 \
        CHECK_STR_CONTAINS(gmm_last_error(), (what));                                                                \
        gmm_free(x_);                                                                                                \
    } while (0)

/* Reads text from a file and expects success with shape (n, d) and the given values. */
static void check_reads(const char *name, const char *text, size_t len, size_t n, size_t d, const double *want)
{
    const char *p = write_file(name, text, len);
    double *x = NULL;
    size_t rn = 0, rd = 0;
    gmm_status st = gmm_read_data(p, &x, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    if (st != GMM_OK) {
        fprintf(stderr, "  %s: %s\n", name, gmm_last_error());
        return;
    }
    CHECK_INT_EQ(rn, n);
    CHECK_INT_EQ(rd, d);
    if (rn == n && rd == d) {
        for (size_t i = 0; i < n * d; i++) {
            if (memcmp(&x[i], &want[i], sizeof(double)) != 0) {
                fprintf(stderr, "  %s: value %zu is %.17g, expected %.17g\n", name, i, x[i], want[i]);
                CHECK(!"value mismatch");
            }
        }
    }
    gmm_free(x);
}

static void test_errors(void)
{
    /* empty file, blank-only file */
    CHECK_PARSE_ERROR("csv_empty.csv", "", ": no data: the file is empty", "no data");
    CHECK_PARSE_ERROR("csv_blank.csv", "\n   \n\t\r\n\n", ": no data", "only blank lines");

    /* header only (after blank lines: line number counts them) */
    CHECK_PARSE_ERROR("csv_header_only.csv", "x,y\n", ":1:1: ", "no data rows after the header");
    CHECK_PARSE_ERROR("csv_header_only2.csv", "\n\nx,y\n\n  \n", ":3:1: ", "no data rows after the header");

    /* ragged rows */
    CHECK_PARSE_ERROR("csv_few.csv", "1,2\n3\n", ":2:2: ", "row has 1 field, expected 2 (as in line 1)");
    CHECK_PARSE_ERROR("csv_many.csv", "1,2\n3,4,5\n", ":2:5: ", "row has 3 fields, expected 2 (as in line 1)");
    CHECK_PARSE_ERROR("csv_many2.csv", "a,b\n\n1,2\n\n3,4,5,6\n",
                      ":5:5: ", "row has 4 fields, expected 2 (as in line 3)");
    CHECK_PARSE_ERROR("csv_header_count.csv", "a,b,c\n1,2\n",
                      ":1:1: ", "header has 3 fields, expected 2 (as in the first data row, line 2)");

    /* empty fields and trailing comma */
    CHECK_PARSE_ERROR("csv_empty_mid.csv", "1,,2\n", ":1:3: ", "empty field, expected a number");
    CHECK_PARSE_ERROR("csv_empty_first.csv", ",1\n", ":1:1: ", "empty field, expected a number");
    CHECK_PARSE_ERROR("csv_empty_blank.csv", "1,2,3\n4, ,6\n", ":2:3: ", "empty field, expected a number");
    CHECK_PARSE_ERROR("csv_trailing.csv", "1,2,\n", ":1:5: ", "trailing comma, expected a number after it");
    CHECK_PARSE_ERROR("csv_trailing2.csv", "1,2\n3,4, \n", ":2:5: ", "trailing comma, expected a number after it");

    /* non-numeric tokens */
    CHECK_PARSE_ERROR("csv_abc.csv", "1,2\n1,abc\n", ":2:3: ", "'abc' is not a number");
    CHECK_PARSE_ERROR("csv_abc_first.csv", "1,abc\n2,3\n", ":1:3: ", "'abc' is not a number");
    CHECK_PARSE_ERROR("csv_abc_first.csv", "1,abc\n2,3\n", ":1:3: ", "not taken as a header");
    CHECK_PARSE_ERROR("csv_late_header.csv", "1,2\nx,y\n", ":2:1: ", "'x' is not a number");
    CHECK_PARSE_ERROR("csv_late_header.csv", "1,2\nx,y\n", ":2:1: ", "only allowed as the first non-blank line");
    CHECK_PARSE_ERROR("csv_two_headers.csv", "x,y\nx,y\n1,2\n", ":2:1: ", "'x' is not a number");
    CHECK_PARSE_ERROR("csv_space_in.csv", "1,2\n3,4 5\n", ":2:3: ", "'4 5' is not a number");
    CHECK_PARSE_ERROR("csv_hexjunk.csv", "1,2\n3,0x\n", ":2:3: ", "'0x' is not a number");
    CHECK_PARSE_ERROR("csv_1e.csv", "1,2\n3,1e\n", ":2:3: ", "'1e' is not a number");
    /* hexadecimal floats: strtod reads them, numpy does not, and neither does gmm */
    CHECK_PARSE_ERROR("csv_hex.csv", "1,2\n3,0x1p3\n",
                      ":2:3: ", "'0x1p3' is a hexadecimal number, expected a decimal number");
    CHECK_PARSE_ERROR("csv_hex_neg.csv", "1,2\n-0X.8,4\n", ":2:1: ", "'-0X.8' is a hexadecimal number");
    CHECK_PARSE_ERROR("csv_hex_first.csv", "0x10,1\n", ":1:1: ", "'0x10' is a hexadecimal number");
    CHECK_PARSE_ERROR("csv_semicolon.csv", "x;y\n1;2\n", ":2:1: ", "'1;2' is not a number");
    CHECK_PARSE_ERROR("csv_semicolon.csv", "x;y\n1;2\n", ":2:1: ", "separated by commas, not semicolons");
    CHECK_PARSE_ERROR("csv_garbage.csv", "1,2\n\xff\xfe,3\n", ":2:1: ", "'\\xff\\xfe' is not a number");
    CHECK_PARSE_ERROR("csv_cr_mid.csv", "1,2\n3,\r4\n", ":2:3: ", "'\\r4' is not a number");
    {
        /* a long token is quoted cut short */
        char text[400] = "1\n";
        for (int i = 0; i < 300; i++) strcat(text, "z");
        strcat(text, "\n");
        CHECK_PARSE_ERROR("csv_long_token.csv", text, ":2:1: ", "zzz...' is not a number");
        CHECK(strlen(gmm_last_error()) < 400);
    }

    /* non-finite and out of range */
    CHECK_PARSE_ERROR("csv_nan.csv", "1,2\nnan,1\n", ":2:1: ", "'nan' is not a finite number");
    CHECK_PARSE_ERROR("csv_nan_upper.csv", "1,2\n1,NaN\n", ":2:3: ", "'NaN' is not a finite number");
    CHECK_PARSE_ERROR("csv_inf.csv", "1,2\n1,inf\n", ":2:3: ", "'inf' is not a finite number");
    CHECK_PARSE_ERROR("csv_minf.csv", "1,2\n-inf,2\n", ":2:1: ", "'-inf' is not a finite number");
    CHECK_PARSE_ERROR("csv_infinity.csv", "1, Infinity\n", ":1:4: ", "'Infinity' is not a finite number");
    CHECK_PARSE_ERROR("csv_nan_first.csv", "nan,1\n", ":1:1: ", "'nan' is not a finite number");
    CHECK_PARSE_ERROR("csv_range.csv", "1,2\n3,1e999\n", ":2:3: ", "'1e999' is out of range for a double");
    CHECK_PARSE_ERROR("csv_mrange.csv", "-1e999,2\n", ":1:1: ", "'-1e999' is out of range for a double");

    /* embedded NUL byte */
    {
        const char text[] = "1,2\n3,\0004\n";
        const char *p = write_file("csv_nul.csv", text, sizeof text - 1);
        char want[8192];
        snprintf(want, sizeof want, "%s:2:3: embedded NUL byte", p);
        double *x = NULL;
        size_t n, d;
        CHECK_INT_EQ(gmm_read_data(p, &x, &n, &d), GMM_ERR_PARSE);
        CHECK_STR_CONTAINS(gmm_last_error(), want);
        CHECK(x == NULL);
    }

    /* error line numbers stay right after blank lines and CRLF line ends */
    CHECK_PARSE_ERROR("csv_blank_then_bad.csv", "\n1,2\n\n  \n3,x\n", ":5:3: ", "'x' is not a number");
    CHECK_PARSE_ERROR("csv_crlf_bad.csv", "a,b\r\n1,2\r\n\r\n3,\r\n",
                      ":4:3: ", "trailing comma, expected a number after it");
    CHECK_PARSE_ERROR("csv_nofinal_bad.csv", "1,2\n3", ":2:2: ", "row has 1 field, expected 2 (as in line 1)");

    /* a file that cannot be opened */
    {
        const char *p = tmp_file("csv_does_not_exist.csv");
        remove(p);
        double *x = NULL;
        size_t n, d;
        char want[8192];
        snprintf(want, sizeof want, "cannot open %s: %s", p, strerror(ENOENT));
        CHECK_INT_EQ(gmm_read_data(p, &x, &n, &d), GMM_ERR_IO);
        CHECK_STR_CONTAINS(gmm_last_error(), want);
    }
}

static void test_accepted(void)
{
    static const double v12[] = {1, 2, 3, 4};
    const char header[] = "x,y\n1,2\n3,4\n";
    check_reads("csv_ok_header.csv", header, strlen(header), 2, 2, v12);
    const char header_index[] = ",a,b\n0,1,2\n"; /* pandas' to_csv with its index column */
    static const double v012[] = {0, 1, 2};
    check_reads("csv_ok_header_index.csv", header_index, strlen(header_index), 1, 3, v012);
    const char blanks[] = "\n1,2\n\n  \n\t\n3,4\n\n";
    check_reads("csv_ok_blanks.csv", blanks, strlen(blanks), 2, 2, v12);
    const char crlf[] = "x,y\r\n1,2\r\n\r\n3,4\r\n";
    check_reads("csv_ok_crlf.csv", crlf, strlen(crlf), 2, 2, v12);
    const char nofinal[] = "1,2\n3,4";
    check_reads("csv_ok_nofinal.csv", nofinal, strlen(nofinal), 2, 2, v12);
    const char nofinal_crlf[] = "1,2\r\n3,4\r";
    check_reads("csv_ok_nofinal_crlf.csv", nofinal_crlf, strlen(nofinal_crlf), 2, 2, v12);
    const char spaces[] = "  1 ,\t2\t\n3\t,  4  \n";
    check_reads("csv_ok_spaces.csv", spaces, strlen(spaces), 2, 2, v12);
    const char bom[] = "\xEF\xBB\xBFx,y\n1,2\n3,4\n";
    check_reads("csv_ok_bom.csv", bom, strlen(bom), 2, 2, v12);
    const char bom_data[] = "\xEF\xBB\xBF"
                            "1,2\n3,4\n";
    check_reads("csv_ok_bom_data.csv", bom_data, strlen(bom_data), 2, 2, v12);
    static const double v1[] = {7.25};
    check_reads("csv_ok_single.csv", "7.25", 4, 1, 1, v1);

    /* exact values: decimal literals as the compiler rounds them */
    const char exact[] = "0.1,-1.5e-3,+2\n"
                         "1e-300,4.9406564584124654e-324,1.7976931348623157e308\n"
                         "-0,0.30000000000000004,123456789012345678901234567890\n"
                         "2.2250738585072014e-308,1E22,.5\n"
                         "5.,1e-400,0.125\n"
                         "9007199254740993,0.000001,1.00000000000000000000001\n";
    static const double want[] = {0.1,
                                  -1.5e-3,
                                  2.0,
                                  1e-300,
                                  4.9406564584124654e-324,
                                  1.7976931348623157e308,
                                  -0.0,
                                  0.30000000000000004,
                                  123456789012345678901234567890.0,
                                  2.2250738585072014e-308,
                                  1e22,
                                  0.5,
                                  5.0,
                                  0.0,
                                  0.125,
                                  9007199254740993.0,
                                  0.000001,
                                  1.0};
    check_reads("csv_ok_exact.csv", exact, strlen(exact), 6, 3, want);
}

/* Short decimal strings of many shapes, parsed by the reader (mostly through its fast path) and by strtod:
 * the bits must agree. */
static void test_decimal_agreement(void)
{
    const size_t n = 20000;
    const char *p = tmp_file("csv_decimals.csv");
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f) return;
    gmm_rng rng;
    gmm_rng_seed(&rng, 42);
    char(*texts)[64] = malloc(n * sizeof *texts);
    for (size_t i = 0; i < n; i++) {
        double mag = pow(10.0, (double)gmm_rng_below(&rng, 60) - 30.0);
        double v = (gmm_rng_uniform(&rng) - 0.5) * mag;
        int prec = (int)gmm_rng_below(&rng, 20);
        switch (gmm_rng_below(&rng, 4)) {
        case 0: snprintf(texts[i], 64, "%.*f", prec, v); break;
        case 1: snprintf(texts[i], 64, "%.*e", prec, v); break;
        case 2: snprintf(texts[i], 64, "%.*g", prec, v); break;
        default: snprintf(texts[i], 64, "%lld", (long long)(gmm_rng_next(&rng) >> gmm_rng_below(&rng, 64))); break;
        }
        fprintf(f, "%s\n", texts[i]);
    }
    fclose(f);
    double *x = NULL;
    size_t rn = 0, rd = 0;
    gmm_status st = gmm_read_data(p, &x, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    if (st == GMM_OK) {
        CHECK_INT_EQ(rn, n);
        CHECK_INT_EQ(rd, 1);
        size_t bad = 0;
        for (size_t i = 0; i < n && rn == n; i++) {
            double ref = strtod(texts[i], NULL);
            if (memcmp(&ref, &x[i], sizeof ref) != 0 && bad++ < 5)
                fprintf(stderr, "  '%s' read as %.17g, strtod gives %.17g\n", texts[i], x[i], ref);
        }
        CHECK_INT_EQ(bad, 0);
    } else {
        fprintf(stderr, "  %s\n", gmm_last_error());
    }
    gmm_free(x);
    free(texts);
}

static void test_round_trip(void)
{
    /* small matrix, exact file text */
    const double small[] = {1, 2.5, -3, 0.1};
    const char *p = tmp_file("csv_small_out.csv");
    CHECK_INT_EQ(gmm_write_csv(p, small, 2, 2), GMM_OK);
    FILE *f = fopen(p, "rb");
    char text[256] = {0};
    if (f) {
        size_t got = fread(text, 1, sizeof text - 1, f);
        text[got] = '\0';
        fclose(f);
    }
    CHECK(strcmp(text, "1,2.5\n-3,0.10000000000000001\n") == 0);

    /* random bits (tiny and huge magnitudes), special values; 150k x 7 is > 1 MiB so blocks carry over */
    const size_t n = 150000, d = 7;
    double *x = malloc(n * d * sizeof *x);
    gmm_rng rng;
    gmm_rng_seed(&rng, 7);
    for (size_t i = 0; i < n * d; i++) x[i] = test_random_finite(&rng);
    const double special[] = {
        0.0, -0.0, DBL_MAX, -DBL_MAX, DBL_MIN,   -DBL_MIN, 4.9406564584124654e-324, -4.9406564584124654e-324,
        1.0, 0.1,  1e22,    1e23,     123456.789};
    memcpy(x, special, sizeof special);
    for (size_t i = 100; i < 2000; i++) x[i] = gmm_rng_normal(&rng); /* ordinary magnitudes too */
    p = tmp_file("csv_round_trip.csv");
    CHECK_INT_EQ(gmm_write_csv(p, x, n, d), GMM_OK);
    double *y = NULL;
    size_t rn = 0, rd = 0;
    gmm_status st = gmm_read_data(p, &y, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    if (st != GMM_OK) fprintf(stderr, "  %s\n", gmm_last_error());
    CHECK_INT_EQ(rn, n);
    CHECK_INT_EQ(rd, d);
    if (st == GMM_OK && rn == n && rd == d) CHECK(memcmp(x, y, n * d * sizeof *x) == 0);
    gmm_free(y);

    /* an error far past the first block still has the right line number */
    f = fopen(p, "ab");
    if (f) {
        fputs("1,2,3,4,5,6,oops\n", f);
        fclose(f);
    }
    st = gmm_read_data(p, &y, &rn, &rd);
    CHECK_INT_EQ(st, GMM_ERR_PARSE);
    char want[8192];
    snprintf(want, sizeof want, "%s:150001:13: 'oops' is not a number", p);
    CHECK_STR_CONTAINS(gmm_last_error(), want);

    /* lines longer than the 1 MiB read block: 3 rows x 60000 columns of 17-digit numbers (~1.4 MB each) */
    const size_t wn = 3, wd = 60000;
    double *w = malloc(wn * wd * sizeof *w);
    for (size_t i = 0; i < wn * wd; i++) w[i] = gmm_rng_normal(&rng) * 1e-7;
    p = tmp_file("csv_wide.csv");
    CHECK_INT_EQ(gmm_write_csv(p, w, wn, wd), GMM_OK);
    st = gmm_read_data(p, &y, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    CHECK_INT_EQ(rn, wn);
    CHECK_INT_EQ(rd, wd);
    if (st == GMM_OK && rn == wn && rd == wd) CHECK(memcmp(w, y, wn * wd * sizeof *w) == 0);
    gmm_free(y);
    free(w);

    /* writing into a missing directory fails with GMM_ERR_IO and leaves nothing behind */
    p = tmp_file("no_such_dir/out.csv");
    CHECK_INT_EQ(gmm_write_csv(p, x, 2, 2), GMM_ERR_IO);
    struct stat sb;
    CHECK(stat(p, &sb) != 0);
    /* bad arguments */
    CHECK_INT_EQ(gmm_write_csv(tmp_file("csv_bad_args.csv"), x, 2, 0), GMM_ERR_INVALID_ARG);
    CHECK_INT_EQ(gmm_write_csv(tmp_file("csv_bad_args.csv"), NULL, 2, 2), GMM_ERR_INVALID_ARG);
    CHECK_INT_EQ(gmm_read_data(NULL, &y, &rn, &rd), GMM_ERR_INVALID_ARG);
    free(x);
}

/* A line beyond the reader's cap (64 MiB) is refused with the cap stated, before memory runs out. */
static void test_line_cap(void)
{
    const char *p = tmp_file("csv_long_line.csv");
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs("1\n", f);
    static char block[1 << 16];
    memset(block, '7', sizeof block);
    for (int i = 0; i < 65 * 16; i++) fwrite(block, 1, sizeof block, f); /* 65 MiB, no line end */
    fclose(f);
    double *x = NULL;
    size_t n = 0, d = 0;
    CHECK_INT_EQ(gmm_read_data(p, &x, &n, &d), GMM_ERR_PARSE);
    CHECK_STR_CONTAINS(gmm_last_error(), ":2:1: line longer than the limit of 64 MiB");
    CHECK(x == NULL);
    gmm_free(x);
    remove(p);
}

/* The writer's temporary file is created exclusively: a link planted at the name older versions used
 * ("<path>.tmp.<pid>") is neither followed nor replaced, and the file the link points to is untouched. */
static void test_planted_link(void)
{
    char victim[4096], out[4096], planted[4200];
    snprintf(victim, sizeof victim, "%s", tmp_file("csv_victim.txt"));
    snprintf(out, sizeof out, "%s", tmp_file("csv_linked_out.csv"));
    snprintf(planted, sizeof planted, "%s.tmp.%ld", out, (long)getpid());
    write_file("csv_victim.txt", "precious\n", 9);
    remove(out);
    remove(planted);
    CHECK(symlink(victim, planted) == 0);
    static const double v[] = {1.5, 2.5};
    CHECK_INT_EQ(gmm_write_csv(out, v, 1, 2), GMM_OK);
    FILE *f = fopen(victim, "rb");
    char buf[64] = "";
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[got] = '\0';
    CHECK(!strcmp(buf, "precious\n"));
    struct stat st;
    CHECK(lstat(out, &st) == 0 && S_ISREG(st.st_mode));
    CHECK(lstat(planted, &st) == 0 && S_ISLNK(st.st_mode));
    double *x = NULL;
    size_t n = 0, d = 0;
    CHECK_INT_EQ(gmm_read_data(out, &x, &n, &d), GMM_OK);
    CHECK(x && n == 1 && d == 2 && x[0] == 1.5 && x[1] == 2.5);
    gmm_free(x);
    remove(planted);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (test_make_tmp_dir()) return 1;
    test_errors();
    test_accepted();
    test_decimal_agreement();
    test_round_trip();
    test_line_cap();
    test_planted_link();
    return check_exit();
}
