/*
 * test_fuzz_regress.c — replays every fuzzing input kept in the tree through the readers, with the same
 * reader calls and invariants as the libFuzzer targets (tests/fuzz/fuzz_common.h), so that the seed
 * corpora (tests/fuzz/corpus/{csv,npy,json}/) and the inputs that once broke a reader
 * (tests/fuzz/regress/{csv,npy,json}/) run in every ctest build, sanitizer builds included, without clang.
 * The folder names the reader: csv -> gmm_read_data on a .csv file, npy -> gmm_read_data on a .npy file,
 * json -> gmm_model_load. Files whose names start with '.' are skipped. Fails when no file was found.
 */
#include "check.h"
#include "test_support.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The input being replayed, named in every failure. */
static const char *fuzz_current_input = "";

/* A violated invariant is a failed check of check.h (counted; the replay goes on with the next file). */
#define FUZZ_EXPECT(cond)                                                                                            \
    do {                                                                                                             \
        check_count_++;                                                                                              \
        if (!(cond)) {                                                                                               \
            check_failures_++;                                                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed replaying %s (reader status %d, message \"%s\")\n", __FILE__,   \
                    __LINE__, #cond, fuzz_current_input, fuzz_last_status, fuzz_last_message);                       \
        }                                                                                                            \
    } while (0)

#include "fuzz/fuzz_common.h"

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Reads the whole file at path into *data (malloc'ed, NULL for an empty file) and *size; 0 on success. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 0, len = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (len == cap) {
            size_t new_cap = cap ? cap * 2 : 4096;
            uint8_t *p = realloc(buf, new_cap);
            if (!p) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = p;
            cap = new_cap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    *data = buf;
    *size = len;
    return 0;
}

/* Replays every regular file of dir through the reader of kind, in name order; returns how many. A missing
 * folder counts as empty. */
static size_t replay_dir(const char *dir, fuzz_kind kind)
{
    DIR *dh = opendir(dir);
    if (!dh) return 0;
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(names, cap * sizeof *names);
            if (!p) break;
            names = p;
        }
        names[count] = strdup(e->d_name);
        if (names[count]) count++;
    }
    closedir(dh);
    if (count) qsort(names, count, sizeof *names, compare_names);

    size_t replayed = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CHECK(len > 0 && (size_t)len < sizeof path);
        if (len <= 0 || (size_t)len >= sizeof path) continue;
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        uint8_t *data = NULL;
        size_t size = 0;
        fuzz_current_input = path;
        int read_ok = read_file(path, &data, &size) == 0;
        CHECK(read_ok);
        if (read_ok) {
            fuzz_one(kind, data, size);
            replayed++;
        }
        free(data);
    }
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
    fuzz_current_input = "";
    return replayed;
}

int main(void)
{
    if (test_make_tmp_dir()) return 1;
    fuzz_init(GMM_TEST_TMP);
    fuzz_skip_printable = 0; /* every invariant, whatever GMM_FUZZ_SKIP_PRINTABLE says */

    static const char *const sets[] = {"corpus", "regress"};
    size_t per_set[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        for (int k = 0; k < FUZZ_KINDS; k++) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", GMM_SOURCE_DIR, sets[s], fuzz_kind_name[k]);
            size_t n = replay_dir(dir, (fuzz_kind)k);
            fprintf(stderr, "%s: %zu file%s\n", dir, n, n == 1 ? "" : "s");
            per_set[s] += n;
        }
    }
    size_t total = per_set[0] + per_set[1];
    printf("replayed %zu fuzzing inputs (%zu seed corpus, %zu regression)\n", total, per_set[0], per_set[1]);
    if (total == 0) {
        fprintf(stderr, "no fuzzing inputs found under %s/tests/fuzz/{corpus,regress}\n", GMM_SOURCE_DIR);
        return 1;
    }
    CHECK(per_set[0] > 0); /* the seed corpora are part of the tree */
    return check_exit();
}
