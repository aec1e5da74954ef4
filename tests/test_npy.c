/*
 * test_npy.c — the .npy reader and writer (src/data_io.c): bit-exact write_npy -> read_data round trip,
 * the exact NumPy header bytes, hand-built float32 and version 2.0/3.0 files, every rejected header or
 * size with its message, the out-of-memory message naming file, rows and d, and (when python3 with numpy
 * is importable) files written by NumPy read here and files written here loaded by NumPy.
 */
#include "check.h"
#include "test_support.h"
#include "gmm_internal.h"

#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under AddressSanitizer an impossible allocation returns NULL, as malloc does, instead of aborting: the
 * reader's out-of-memory message is what test_out_of_memory checks. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static char tmp_path[4096];
static size_t last_header_bytes; /* preamble + header of the last make_npy file */

/* Returns GMM_TEST_TMP/name (a static buffer, overwritten by the next call). */
static const char *tmp_file(const char *name)
{
    snprintf(tmp_path, sizeof tmp_path, "%s/%s", GMM_TEST_TMP, name);
    return tmp_path;
}

/* Writes a .npy file by hand: magic, version major.0, the header dict built from descr, fortran ("True"/
 * "False") and shape (Python text, e.g. "(2, 3)"), padded with spaces and '\n' to a multiple of 64 bytes,
 * then data_len bytes of data. Returns the path (static buffer). */
static const char *make_npy(const char *name, int major, const char *descr, const char *fortran, const char *shape,
                            const void *data, size_t data_len)
{
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, fortran,
                       shape);
    size_t prelen = major == 1 ? 10 : 12;
    size_t total = prelen + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)len + pad + 1;
    last_header_bytes = prelen + hlen;
    const char *path = tmp_file(name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        exit(1);
    }
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    for (size_t i = 0; i < prelen - 8; i++) pre[8 + i] = (unsigned char)(hlen >> (8 * i));
    fwrite(pre, 1, prelen, f);
    fwrite(dict, 1, (size_t)len, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
    return path;
}

/* Writes raw bytes to GMM_TEST_TMP/name; returns the path (static buffer). */
static const char *write_raw(const char *name, const void *bytes, size_t len)
{
    const char *path = tmp_file(name);
    FILE *f = fopen(path, "wb");
    if (!f) exit(1);
    fwrite(bytes, 1, len, f);
    fclose(f);
    return path;
}

/* Expects gmm_read_data(path) to fail with status and a message containing path and what. */
static void check_read_fails(const char *path, gmm_status status, const char *what)
{
    double *x = NULL;
    size_t n = 7, d = 7;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s: ", path);
    CHECK_INT_EQ(gmm_read_data(path, &x, &n, &d), status);
    CHECK(x == NULL);
    CHECK_STR_CONTAINS(gmm_last_error(), copy);
    CHECK_STR_CONTAINS(gmm_last_error(), what);
    gmm_free(x);
}

static void test_round_trip_and_header(void)
{
    const size_t n = 1000, d = 5;
    double *x = malloc(n * d * sizeof *x);
    gmm_rng rng;
    gmm_rng_seed(&rng, 3);
    for (size_t i = 0; i < n * d; i++) x[i] = test_random_finite(&rng);
    x[0] = -0.0;
    x[1] = DBL_MAX;
    x[2] = 4.9406564584124654e-324;
    const char *p = tmp_file("npy_round_trip.npy");
    CHECK_INT_EQ(gmm_write_npy(p, x, n, d), GMM_OK);

    /* the header is NumPy's, byte for byte */
    FILE *f = fopen(p, "rb");
    unsigned char head[128];
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    CHECK_INT_EQ(got, 128);
    const char want_dict[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 5), }";
    CHECK(memcmp(head, "\x93NUMPY\x01\x00", 8) == 0);
    CHECK_INT_EQ(head[8] | (head[9] << 8), 118); /* 10 + 118 = 128: a multiple of 64 */
    CHECK(memcmp(head + 10, want_dict, sizeof want_dict - 1) == 0);
    int spaces_ok = 1;
    for (size_t i = 10 + sizeof want_dict - 1; i < 127; i++) spaces_ok &= head[i] == ' ';
    CHECK(spaces_ok);
    CHECK_INT_EQ(head[127], '\n');
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (size_t)sb.st_size == 128 + n * d * 8);

    double *y = NULL;
    size_t rn = 0, rd = 0;
    gmm_status st = gmm_read_data(p, &y, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    if (st != GMM_OK) fprintf(stderr, "  %s\n", gmm_last_error());
    CHECK_INT_EQ(rn, n);
    CHECK_INT_EQ(rd, d);
    if (st == GMM_OK && rn == n && rd == d) CHECK(memcmp(x, y, n * d * sizeof *x) == 0);
    gmm_free(y);

    /* the suffix test ignores case */
    p = tmp_file("npy_upper.NPY");
    CHECK_INT_EQ(gmm_write_npy(p, x, 4, 3), GMM_OK);
    st = gmm_read_data(p, &y, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    CHECK(st == GMM_OK && rn == 4 && rd == 3 && memcmp(x, y, 12 * sizeof *x) == 0);
    gmm_free(y);

    /* a failed write leaves nothing behind; bad arguments */
    p = tmp_file("no_such_dir/out.npy");
    CHECK_INT_EQ(gmm_write_npy(p, x, 2, 2), GMM_ERR_IO);
    CHECK(stat(p, &sb) != 0);
    CHECK_INT_EQ(gmm_write_npy(tmp_file("npy_bad_args.npy"), x, 2, 0), GMM_ERR_INVALID_ARG);
    CHECK_INT_EQ(gmm_write_npy(tmp_file("npy_bad_args.npy"), NULL, 2, 2), GMM_ERR_INVALID_ARG);
    free(x);
}

static void test_hand_built(void)
{
    /* float32, converted exactly */
    const float f32[6] = {0.1f, -2.5f, 1e-45f /* subnormal */, 3.4028235e38f, 16777217.0f, -0.0f};
    const char *p = make_npy("npy_f32.npy", 1, "<f4", "False", "(2, 3)", f32, sizeof f32);
    double *y = NULL;
    size_t rn = 0, rd = 0;
    gmm_status st = gmm_read_data(p, &y, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    if (st != GMM_OK) fprintf(stderr, "  %s\n", gmm_last_error());
    CHECK_INT_EQ(rn, 2);
    CHECK_INT_EQ(rd, 3);
    if (st == GMM_OK && rn == 2 && rd == 3) {
        for (int i = 0; i < 6; i++) {
            double want = (double)f32[i];
            CHECK(memcmp(&y[i], &want, sizeof want) == 0);
        }
        CHECK(y[0] != 0.1); /* float32's 0.1, not double's */
    }
    gmm_free(y);

    /* versions 2.0 and 3.0 (4-byte header length), float64 */
    const double f64[4] = {1.5, -2.25, 1e300, 0.1};
    for (int major = 2; major <= 3; major++) {
        p = make_npy(major == 2 ? "npy_v2.npy" : "npy_v3.npy", major, "<f8", "False", "(4, 1)", f64, sizeof f64);
        st = gmm_read_data(p, &y, &rn, &rd);
        CHECK_INT_EQ(st, GMM_OK);
        if (st != GMM_OK) fprintf(stderr, "  %s\n", gmm_last_error());
        CHECK(st == GMM_OK && rn == 4 && rd == 1 && memcmp(y, f64, sizeof f64) == 0);
        gmm_free(y);
    }
    /* Python 2 style 'L' suffixes and a tuple written with extra spaces */
    p = make_npy("npy_py2.npy", 1, "<f8", "False", "(2L, 2L)", f64, sizeof f64);
    st = gmm_read_data(p, &y, &rn, &rd);
    CHECK(st == GMM_OK && rn == 2 && rd == 2);
    gmm_free(y);
}

static void test_errors(void)
{
    const double f64[6] = {1, 2, 3, 4, 5, 6};
    const char *p;

    p = write_raw("npy_bad_magic.npy", "\x93NUMPX\x01\x00\x10\x00{}", 12);
    check_read_fails(p, GMM_ERR_PARSE, "not a .npy file: bad magic bytes");
    p = write_raw("npy_csv_named.npy", "1,2\n3,4\n", 8);
    check_read_fails(p, GMM_ERR_PARSE, "not a .npy file: bad magic bytes");
    p = write_raw("npy_tiny.npy", "\x93NUMPY\x01", 7);
    check_read_fails(p, GMM_ERR_PARSE, "truncated .npy header");
    p = write_raw("npy_empty.npy", "", 0);
    check_read_fails(p, GMM_ERR_PARSE, "bad magic bytes");
    p = write_raw("npy_version.npy", "\x93NUMPY\x04\x00\x10\x00{}", 12);
    check_read_fails(p, GMM_ERR_PARSE, "unsupported .npy version 4.0, expected 1.0, 2.0 or 3.0");
    p = write_raw("npy_short_header.npy", "\x93NUMPY\x01\x00\x40\x00{'descr'", 18);
    check_read_fails(p, GMM_ERR_PARSE, "truncated .npy header: expected 64 header bytes, found 8");

    p = make_npy("npy_big_endian.npy", 1, ">f8", "False", "(2, 3)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "big-endian data ('>f8') is not supported");
    p = make_npy("npy_int.npy", 1, "<i8", "False", "(2, 3)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "unsupported dtype '<i8', expected '<f8' (float64) or '<f4' (float32)");
    p = make_npy("npy_pipe.npy", 1, "|f8", "False", "(2, 3)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "unsupported dtype '|f8'");
    p = make_npy("npy_fortran.npy", 1, "<f8", "True", "(2, 3)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "Fortran order is not supported; save with np.ascontiguousarray");
    p = make_npy("npy_1d.npy", 1, "<f8", "False", "(6,)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "shape (6,) has 1 dimension, expected a 2-D array (n, d)");
    p = make_npy("npy_3d.npy", 1, "<f8", "False", "(1, 2, 3)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "shape (1, 2, 3) has 3 dimensions, expected a 2-D array (n, d)");
    p = make_npy("npy_0d.npy", 1, "<f8", "False", "()", f64, 8);
    check_read_fails(p, GMM_ERR_PARSE, "shape () has 0 dimensions, expected a 2-D array (n, d)");
    p = make_npy("npy_zero_rows.npy", 1, "<f8", "False", "(0, 3)", NULL, 0);
    check_read_fails(p, GMM_ERR_PARSE, "no data: the array has shape (0, 3)");
    p = make_npy("npy_zero_cols.npy", 1, "<f8", "False", "(3, 0)", NULL, 0);
    check_read_fails(p, GMM_ERR_PARSE, "no data: the array has shape (3, 0)");
    p = make_npy("npy_bad_dict.npy", 1, "<f8", "Maybe", "(2, 3)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "malformed .npy header");
    p = make_npy("npy_bad_dict.npy", 1, "<f8", "Maybe", "(2, 3)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "expected True or False for 'fortran_order'");
    p = make_npy("npy_bad_shape.npy", 1, "<f8", "False", "(2, -3)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "expected a tuple of non-negative integers for 'shape'");

    /* sizes must match exactly: header + 48 data bytes */
    char msg[512];
    p = make_npy("npy_truncated.npy", 1, "<f8", "False", "(2, 3)", f64, sizeof f64 - 5);
    check_read_fails(p, GMM_ERR_PARSE, "truncated data");
    snprintf(msg, sizeof msg,
             "needs 48 data bytes after the %zu-byte header (a file of %zu bytes), but the "
             "file has %zu bytes (5 missing)",
             last_header_bytes, last_header_bytes + 48, last_header_bytes + 43);
    check_read_fails(p, GMM_ERR_PARSE, msg);
    p = make_npy("npy_huge_shape.npy", 1, "<f8", "False", "(1000000000, 1000)", f64, sizeof f64);
    check_read_fails(p, GMM_ERR_PARSE, "truncated data");
    double seven[7] = {1, 2, 3, 4, 5, 6, 7};
    p = make_npy("npy_extra.npy", 1, "<f8", "False", "(2, 3)", seven, sizeof seven);
    check_read_fails(p, GMM_ERR_PARSE, "unexpected bytes after the data");
    snprintf(msg, sizeof msg, "but the file has %zu bytes (8 extra)", last_header_bytes + 56);
    check_read_fails(p, GMM_ERR_PARSE, msg);

    /* non-finite values name their row and column */
    double bad[6] = {1, 2, 3, 4, 5, NAN};
    p = make_npy("npy_nan.npy", 1, "<f8", "False", "(2, 3)", bad, sizeof bad);
    check_read_fails(p, GMM_ERR_PARSE, "row 2, column 3: value is not finite (nan; x[1, 2]");
    bad[5] = 6;
    bad[1] = -INFINITY;
    p = make_npy("npy_inf.npy", 1, "<f8", "False", "(3, 2)", bad, sizeof bad);
    check_read_fails(p, GMM_ERR_PARSE, "row 1, column 2: value is not finite (-inf");
    const float bad32[4] = {1, 2, INFINITY, 4};
    p = make_npy("npy_inf32.npy", 1, "<f4", "False", "(2, 2)", bad32, sizeof bad32);
    check_read_fails(p, GMM_ERR_PARSE, "row 2, column 1: value is not finite (inf");

    /* a missing file */
    p = tmp_file("npy_does_not_exist.npy");
    remove(p);
    char want[4200];
    snprintf(want, sizeof want, "cannot open %s: %s", p, strerror(ENOENT));
    double *y = NULL;
    size_t rn, rd;
    CHECK_INT_EQ(gmm_read_data(p, &y, &rn, &rd), GMM_ERR_IO);
    CHECK_STR_CONTAINS(gmm_last_error(), want);
}

/* Runs a shell command; returns its exit status (or -1). */
static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc == -1) return -1;
    return (rc & 0xff00) >> 8; /* WEXITSTATUS without <sys/wait.h> */
}

static void test_with_numpy(void)
{
    if (run("python3 -c 'import numpy' 2>/dev/null") != 0) {
        fprintf(stderr, "note: python3 with numpy is not importable; skipping the NumPy interoperability part\n");
        return;
    }
    char cmd[16384];
    char p64[4096], p32[4096], pf[4096], ours[4096];
    snprintf(p64, sizeof p64, "%s/npy_numpy64.npy", GMM_TEST_TMP);
    snprintf(p32, sizeof p32, "%s/npy_numpy32.npy", GMM_TEST_TMP);
    snprintf(pf, sizeof pf, "%s/npy_numpyF.npy", GMM_TEST_TMP);
    snprintf(ours, sizeof ours, "%s/npy_ours.npy", GMM_TEST_TMP);

    /* NumPy writes float64, float32 and a Fortran-ordered array: x[i, j] = (3 i + j) / 7 */
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import numpy as np; x = np.arange(12).reshape(4, 3) / 7; "
             "np.save('%s', x); np.save('%s', x.astype(np.float32)); np.save('%s', np.asfortranarray(x))\"",
             p64, p32, pf);
    CHECK_INT_EQ(run(cmd), 0);
    double *y = NULL;
    size_t rn = 0, rd = 0;
    gmm_status st = gmm_read_data(p64, &y, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    if (st == GMM_OK && rn == 4 && rd == 3) {
        for (int i = 0; i < 12; i++) CHECK(y[i] == (double)i / 7.0);
    } else {
        CHECK(!"numpy float64 file read with the wrong shape");
    }
    gmm_free(y);
    st = gmm_read_data(p32, &y, &rn, &rd);
    CHECK_INT_EQ(st, GMM_OK);
    if (st == GMM_OK && rn == 4 && rd == 3) {
        for (int i = 0; i < 12; i++) CHECK(y[i] == (double)(float)((double)i / 7.0));
    } else {
        CHECK(!"numpy float32 file read with the wrong shape");
    }
    gmm_free(y);
    check_read_fails(pf, GMM_ERR_PARSE, "Fortran order is not supported");

    /* NumPy loads what we write, values and shape exact; and our file is byte-identical to np.save's */
    double x[12];
    for (int i = 0; i < 12; i++) x[i] = (double)i / 7.0;
    CHECK_INT_EQ(gmm_write_npy(ours, x, 4, 3), GMM_OK);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import numpy as np, sys; a = np.load('%s'); "
             "sys.exit(0 if a.shape == (4, 3) and a.dtype == np.float64 and a.flags.c_contiguous and "
             "(a == np.arange(12).reshape(4, 3) / 7).all() and "
             "open('%s', 'rb').read() == open('%s', 'rb').read() else 1)\"",
             ours, ours, p64);
    CHECK_INT_EQ(run(cmd), 0);
}

/* An allocation that cannot succeed (a FIFO, whose size is not known in advance, announcing 2^60 values)
 * fails with a message naming the file, the rows and d. */
static void test_out_of_memory(void)
{
    const char *hdr = make_npy("npy_oom_header.npy", 1, "<f8", "False", "(1099511627776, 1048576)", NULL, 0);
    char hdr_path[4096], fifo[4096];
    snprintf(hdr_path, sizeof hdr_path, "%s", hdr);
    snprintf(fifo, sizeof fifo, "%s", tmp_file("npy_oom.npy"));
    FILE *hf = fopen(hdr_path, "rb");
    unsigned char bytes[256];
    size_t len = hf ? fread(bytes, 1, sizeof bytes, hf) : 0;
    if (hf) fclose(hf);
    CHECK(len == last_header_bytes);
    remove(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(fifo, O_WRONLY);
        if (fd < 0 || write(fd, bytes, len) != (ssize_t)len) _exit(1);
        close(fd);
        _exit(0);
    }
    double *x = NULL;
    size_t n = 0, d = 0;
    CHECK_INT_EQ(gmm_read_data(fifo, &x, &n, &d), GMM_ERR_NOMEM);
    CHECK(x == NULL);
    CHECK_STR_CONTAINS(gmm_last_error(), fifo);
    CHECK_STR_CONTAINS(gmm_last_error(), "1099511627776 rows x 1048576 columns (d = 1048576)");
    int status = 0;
    waitpid(pid, &status, 0);
    remove(fifo);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (test_make_tmp_dir()) return 1;
    test_round_trip_and_header();
    test_hand_built();
    test_errors();
    test_out_of_memory();
    test_with_numpy();
    return check_exit();
}
