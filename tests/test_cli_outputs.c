/*
 * test_cli_outputs.c — what the `gmm` program (argv[1]) leaves behind, whatever happens: a result folder
 * is replaced whole or not at all (a failed fit, a fit killed by SIGTERM while gnuplot runs, and two fits
 * into one folder leave one complete set, never a mix), a failed run removes every folder it created,
 * the user's own files in a result folder survive, -o onto a FIFO writes into the FIFO, every write error
 * (/dev/full) is an exit status 1 naming the file or standard output, and `predict --proba` holds its
 * responsibilities a chunk at a time (and its chunks give the library's values bit for bit). A fake gnuplot (a shell script put first in PATH) fails, hangs or
 * waits on request, so the tests need no real gnuplot and can stop a fit at a known point.
 */
#define _GNU_SOURCE /* wait4 */
#include "check.h"
#include "gmm_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *GMM;
static char TMP[512];
static char DATA[1024];

/* TMP/name in one of eight rotating buffers. */
static const char *tmp_file(const char *name)
{
    static char paths[8][1024];
    static int next = 0;
    char *p = paths[next++ % 8];
    snprintf(p, 1024, "%s/%s", TMP, name);
    return p;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The fake gnuplot: the availability probe (`gnuplot -e "set terminal pngcairo"`, two arguments) succeeds;
 * a render (`gnuplot -e "outfile='...'" NAME.gp`) writes its pid to $FAKE_GNUPLOT_PIDFILE, then, by
 * $FAKE_GNUPLOT_MODE, fails, hangs, waits for the file $FAKE_GNUPLOT_RELEASE, or writes a small picture. */
static const char *FAKE_GNUPLOT =
    "#!/bin/sh\n"
    "if [ \"$#\" -eq 2 ]; then exit 0; fi\n"
    "eval \"$2\"\n"
    "if [ -n \"$FAKE_GNUPLOT_PIDFILE\" ]; then echo $$ > \"$FAKE_GNUPLOT_PIDFILE.tmp\"; "
    "mv \"$FAKE_GNUPLOT_PIDFILE.tmp\" \"$FAKE_GNUPLOT_PIDFILE\"; fi\n"
    "case \"$FAKE_GNUPLOT_MODE\" in\n"
    "  fail) echo 'fake gnuplot fails on purpose' >&2; exit 3;;\n"
    "  hang) exec sleep 120;;\n"
    "  wait) while [ ! -e \"$FAKE_GNUPLOT_RELEASE\" ]; do sleep 0.05; done;;\n"
    "esac\n"
    "printf '\\211PNG\\r\\n\\032\\nfake picture' > \"$outfile\"\n";

/* Starts `gmm argv...` with the fake gnuplot first in PATH and the environment assignments env ("NAME=value",
 * NULL-terminated), stdout and stderr into TMP/out.txt and TMP/err.txt (or TMP/<tag> and TMP/<tag>.err when
 * tag is set; tag "null": stdout to /dev/null). Returns the child's pid. */
static pid_t spawn_gmm(const char *const *env, const char *tag, char *const *args)
{
    char out[1024], err[1024];
    snprintf(out, sizeof out, "%s/%s", TMP, tag ? tag : "out.txt");
    snprintf(err, sizeof err, "%s/%s%s", TMP, tag ? tag : "err.txt", tag ? ".err" : "");
    if (tag && !strcmp(tag, "null")) snprintf(out, sizeof out, "/dev/null"); /* stdout opened by us, not by gmm */
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) return pid;
    char path[4096];
    snprintf(path, sizeof path, "%s/fakebin:%s", TMP, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    for (const char *const *e = env; e && *e; e++) putenv((char *)*e);
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0) _exit(120);
    dup2(fo, 1);
    dup2(fe, 2);
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)GMM;
    for (char *const *a = args; *a && n < 63; a++) argv[n++] = *a;
    argv[n] = NULL;
    execv(GMM, argv);
    _exit(121);
}

/* Waits for pid; its exit status, 128 + signal when killed; the peak resident set in *maxrss_kb if given. */
static int wait_gmm(pid_t pid, long *maxrss_kb)
{
    int st = 0;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return -1;
    if (maxrss_kb) *maxrss_kb = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* Runs gmm to the end (see spawn_gmm); its exit status. */
static int run_gmm(const char *const *env, char *const *args) { return wait_gmm(spawn_gmm(env, NULL, args), NULL); }

/* Runs `sh -c "'gmm' args"` (for redirections such as > /dev/full); its exit status. */
static int run_shell(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s/err.txt'", GMM, args, TMP);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static void check_stderr_contains(const char *what)
{
    char *err = slurp(tmp_file("err.txt"));
    CHECK_STR_CONTAINS(err, what);
    free(err);
}

/* Counts the entries of dir whose names contain part. */
static int count_entries(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

/* 1 when process pid has ended (gone, or a zombie waiting for its reaper). */
static int process_gone(pid_t pid)
{
    if (kill(pid, 0) != 0) return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

/* Waits up to seconds for path to exist; 1 if it does. */
static int wait_for_file(const char *path, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        if (exists(path)) return 1;
        sleep_ms(50);
    }
    return exists(path);
}

/* The result set in dir is one fit's: model.json's k matches labels.csv's labels and report.md's final
 * log-likelihood is model.json's total log-likelihood of the data (gmm_score). Returns the model's k (0 when
 * unreadable). */
static size_t check_consistent_set(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/model.json", dir);
    gmm_model *m = NULL;
    CHECK(gmm_model_load(path, &m) == GMM_OK);
    if (!m) return 0;
    size_t k = gmm_model_n_components(m);
    double *x = NULL, mean = NAN;
    size_t n = 0, d = 0;
    CHECK(gmm_read_data(DATA, &x, &n, &d) == GMM_OK);
    CHECK(x && gmm_score(m, x, n, &mean) == GMM_OK);
    free(x);
    double last = mean * (double)n;
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    char *labels = slurp(path);
    long max_label = -1, rows = 0;
    for (char *p = labels, *end; p && *p; p = end + 1) {
        long v = strtol(p, &end, 10);
        if (end == p || *end != '\n') break;
        max_label = v > max_label ? v : max_label;
        rows++;
    }
    CHECK_INT_EQ(rows, 5000);
    CHECK_INT_EQ(max_label + 1, k);
    snprintf(path, sizeof path, "%s/report.md", dir);
    char *rep = slurp(path);
    const char *row = rep ? strstr(rep, "| final total log-likelihood | ") : NULL;
    CHECK(row != NULL);
    if (row) CHECK_NEAR(strtod(row + strlen("| final total log-likelihood | "), NULL), last, 1e-4, 1e-9);
    free(rep);
    free(labels);
    gmm_model_free(m);
    return k;
}

/* Fits the bundled data with k components into dir (fake gnuplot, success); exit status. */
static int fit_into(const char *dir, const char *k, const char *const *env)
{
    char *args[] = {"fit", DATA, "-k", (char *)k, "--quiet", "--out", (char *)dir, NULL};
    return run_gmm(env, args);
}

/* A failing fit (gnuplot fails after model.json, labels.csv and loglik.csv were complete) leaves the
 * previous result byte for byte, and no staging folder. */
static void test_failed_fit_keeps_previous_result(void)
{
    const char *dir = tmp_file("keep");
    CHECK_INT_EQ(fit_into(dir, "4", NULL), 0);
    CHECK_INT_EQ(check_consistent_set(dir), 4);
    char model[1024], report[1024];
    snprintf(model, sizeof model, "%s/model.json", dir);
    snprintf(report, sizeof report, "%s/report.md", dir);
    char *model_before = slurp(model), *report_before = slurp(report);
    const char *env[] = {"FAKE_GNUPLOT_MODE=fail", NULL};
    CHECK_INT_EQ(fit_into(dir, "3", env), 1);
    check_stderr_contains("fake gnuplot fails on purpose");
    char *model_after = slurp(model), *report_after = slurp(report);
    CHECK(model_before && model_after && !strcmp(model_before, model_after));
    CHECK(report_before && report_after && !strcmp(report_before, report_after));
    CHECK_INT_EQ(check_consistent_set(dir), 4);
    CHECK_INT_EQ(count_entries(TMP, ".gmm-new"), 0);
    free(model_before);
    free(model_after);
    free(report_before);
    free(report_after);
}

/* SIGTERM while gnuplot runs: gmm stops the gnuplot child, removes its staging folder, and the previous
 * result is left whole. */
static void test_killed_fit_keeps_previous_result(void)
{
    const char *dir = tmp_file("killed");
    CHECK_INT_EQ(fit_into(dir, "4", NULL), 0);
    char model[1024];
    snprintf(model, sizeof model, "%s/model.json", dir);
    char *before = slurp(model);
    char pidfile[1024], pidenv[1100];
    snprintf(pidfile, sizeof pidfile, "%s/hang.pid", TMP);
    snprintf(pidenv, sizeof pidenv, "FAKE_GNUPLOT_PIDFILE=%s", pidfile);
    remove(pidfile);
    const char *env[] = {"FAKE_GNUPLOT_MODE=hang", pidenv, NULL};
    char *args[] = {"fit", DATA, "-k", "3", "--quiet", "--out", (char *)dir, NULL};
    pid_t pid = spawn_gmm(env, NULL, args);
    CHECK(wait_for_file(pidfile, 60));
    char *gp = slurp(pidfile);
    pid_t gnuplot = gp ? (pid_t)strtol(gp, NULL, 10) : 0;
    free(gp);
    kill(pid, SIGTERM);
    int status = wait_gmm(pid, NULL);
    CHECK_INT_EQ(status, 128 + SIGTERM);
    int gone = 0;
    for (int i = 0; i < 100 && gnuplot > 0 && !(gone = process_gone(gnuplot)); i++) sleep_ms(50);
    CHECK(gnuplot > 0 && gone);
    if (gnuplot > 0 && !gone) kill(gnuplot, SIGKILL);
    char *after = slurp(model);
    CHECK(before && after && !strcmp(before, after));
    CHECK_INT_EQ(check_consistent_set(dir), 4);
    CHECK_INT_EQ(count_entries(TMP, ".gmm-new"), 0);
    free(before);
    free(after);
}

/* Two fits into one folder at once: A (k = 3) is held inside gnuplot while B (k = 4) runs to the end, then
 * A finishes. Both succeed, and the folder holds A's complete set (the last swapped in), not A's report
 * beside B's model. */
static void test_concurrent_fits_do_not_mix(void)
{
    const char *dir = tmp_file("both");
    char pidfile[1024], pidenv[1100], release[1024], relenv[1100];
    snprintf(pidfile, sizeof pidfile, "%s/wait.pid", TMP);
    snprintf(pidenv, sizeof pidenv, "FAKE_GNUPLOT_PIDFILE=%s", pidfile);
    snprintf(release, sizeof release, "%s/release", TMP);
    snprintf(relenv, sizeof relenv, "FAKE_GNUPLOT_RELEASE=%s", release);
    remove(pidfile);
    remove(release);
    const char *env_a[] = {"FAKE_GNUPLOT_MODE=wait", pidenv, relenv, NULL};
    char *args_a[] = {"fit", DATA, "-k", "3", "--quiet", "--out", (char *)dir, NULL};
    pid_t a = spawn_gmm(env_a, "a.out", args_a);
    CHECK(wait_for_file(pidfile, 60));
    CHECK_INT_EQ(fit_into(dir, "4", NULL), 0);
    write_text(release, "go\n");
    CHECK_INT_EQ(wait_gmm(a, NULL), 0);
    CHECK_INT_EQ(check_consistent_set(dir), 3);
    CHECK_INT_EQ(count_entries(TMP, ".gmm-new"), 0);
}

/* A run that fails removes every folder it created (--out new/a/b), for fit and select, and a refused
 * k > n; the user's files in an existing result folder survive a new fit; --out . is refused. */
static void test_created_folders_and_user_files(void)
{
    write_text(tmp_file("few.csv"), "1,2\n3,4\n");
    char few[1024];
    snprintf(few, sizeof few, "%s", tmp_file("few.csv"));
    char *fit_args[] = {"fit", few, "-k", "3", "--out", (char *)tmp_file("newfit/a/b"), NULL};
    CHECK_INT_EQ(run_gmm(NULL, fit_args), 1);
    check_stderr_contains("2 points are fewer than the 3 components");
    CHECK(!exists(tmp_file("newfit")));
    char *sel_args[] = {"select", few, "--k", "3..4", "--quiet", "--out", (char *)tmp_file("newsel/a/b"), NULL};
    CHECK_INT_EQ(run_gmm(NULL, sel_args), 1);
    check_stderr_contains("every candidate failed");
    CHECK(!exists(tmp_file("newsel")));
    /* more missing folders than one run may create: refused, and none of them is left behind */
    char deep[1024];
    int len = snprintf(deep, sizeof deep, "%s", tmp_file("deep"));
    for (int i = 0; i < 40; i++) len += snprintf(deep + len, sizeof deep - (size_t)len, "/%d", i);
    snprintf(deep + len, sizeof deep - (size_t)len, "/out");
    char *deep_args[] = {"fit", DATA, "-k", "2", "--quiet", "--out", deep, NULL};
    CHECK_INT_EQ(run_gmm(NULL, deep_args), 1);
    check_stderr_contains("more than 32 missing folders");
    CHECK(!exists(tmp_file("deep")));
    /* a folder that existed before stays */
    mkdir(tmp_file("existing"), 0777);
    char *fit_args2[] = {"fit", few, "-k", "3", "--out", (char *)tmp_file("existing/a"), NULL};
    CHECK_INT_EQ(run_gmm(NULL, fit_args2), 1);
    CHECK(exists(tmp_file("existing")) && !exists(tmp_file("existing/a")));
    /* the user's own file in a result folder is carried into the new result */
    const char *dir = tmp_file("userfile");
    CHECK_INT_EQ(fit_into(dir, "2", NULL), 0);
    char mine[1024];
    snprintf(mine, sizeof mine, "%s/notes.txt", dir);
    write_text(mine, "my notes\n");
    CHECK_INT_EQ(fit_into(dir, "4", NULL), 0);
    char *notes = slurp(mine);
    CHECK(notes && !strcmp(notes, "my notes\n"));
    free(notes);
    CHECK_INT_EQ(check_consistent_set(dir), 4);
    /* the folder keeps its mode (a private result stays private) */
    CHECK(chmod(dir, 0700) == 0);
    CHECK_INT_EQ(fit_into(dir, "3", NULL), 0);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0700);
    /* a folder holding a subfolder is not a result folder (a home folder, /tmp): refused, left as it was */
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/data", dir);
    CHECK(mkdir(sub, 0777) == 0);
    CHECK_INT_EQ(fit_into(dir, "2", NULL), 1);
    check_stderr_contains("holds data/, which gmm does not write");
    CHECK(exists(sub));
    CHECK_INT_EQ(check_consistent_set(dir), 3);
    CHECK_INT_EQ(count_entries(TMP, ".gmm-new"), 0);
    /* the current folder cannot be the result folder (it would be replaced under the caller) */
    char *dot_args[] = {"fit", DATA, "-k", "2", "--quiet", "--out", ".", NULL};
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) && chdir(tmp_file("userfile")) == 0) {
        int st = run_gmm(NULL, dot_args);
        if (chdir(cwd) != 0) perror("chdir");
        CHECK_INT_EQ(st, 1);
        check_stderr_contains("is the current folder or holds it");
    }
}

/* Write errors: standard output on /dev/full is exit 1 naming standard output, for every command that
 * prints; -o /dev/full names the file. -o onto a FIFO writes into the FIFO (it is not replaced). */
static void test_write_errors_and_special_files(void)
{
    char args[4096];
    const char *model = GMM_SOURCE_DIR "/data/assignment_model.json";
    snprintf(args, sizeof args, "score '%s' '%s' > /dev/full", model, DATA);
    CHECK_INT_EQ(run_shell(args), 1);
    check_stderr_contains("gmm score: cannot write standard output: No space left on device");
    snprintf(args, sizeof args, "predict '%s' '%s' > /dev/full", model, DATA);
    CHECK_INT_EQ(run_shell(args), 1);
    check_stderr_contains("gmm predict: cannot write standard output");
    snprintf(args, sizeof args, "predict --proba '%s' '%s' > /dev/full", model, DATA);
    CHECK_INT_EQ(run_shell(args), 1);
    check_stderr_contains("gmm predict: cannot write standard output");
    snprintf(args, sizeof args, "sample '%s' -n 100000 > /dev/full", model);
    CHECK_INT_EQ(run_shell(args), 1);
    check_stderr_contains("gmm sample: cannot write standard output");
    snprintf(args, sizeof args, "fit '%s' -k 4 --quiet --out '%s' > /dev/full", DATA, tmp_file("fullfit"));
    CHECK_INT_EQ(run_shell(args), 1);
    check_stderr_contains("gmm fit: cannot write standard output");
    snprintf(args, sizeof args, "--help > /dev/full");
    CHECK_INT_EQ(run_shell(args), 1);
    check_stderr_contains("cannot write standard output");
    /* -o through a link to /dev/full (never -o /dev/full itself: a gmm that replaced its -o file would
     * replace the device when the tests run as root) */
    const char *full = tmp_file("full");
    remove(full);
    CHECK(symlink("/dev/full", full) == 0);
    snprintf(args, sizeof args, "predict '%s' '%s' -o '%s'", model, DATA, full);
    CHECK_INT_EQ(run_shell(args), 1);
    check_stderr_contains("full: No space left on device");
    snprintf(args, sizeof args, "sample '%s' -n 100000 -o '%s'", model, full);
    CHECK_INT_EQ(run_shell(args), 1);
    check_stderr_contains("gmm sample: cannot write ");
    struct stat lst;
    CHECK(lstat(full, &lst) == 0 && S_ISLNK(lst.st_mode));

    /* -o onto a FIFO: a reader gets every label, and the FIFO is still a FIFO */
    const char *fifo = tmp_file("labels.fifo");
    remove(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "timeout 30 cat '%s' > '%s' &", fifo, tmp_file("fifo.out"));
    CHECK(system(cmd) == 0);
    char *pargs[] = {"predict", (char *)model, DATA, "-o", (char *)fifo, NULL};
    CHECK_INT_EQ(run_gmm(NULL, pargs), 0);
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    size_t lines = 0;
    for (int i = 0; i < 100 && lines < 5000; i++) {
        char *got = slurp(tmp_file("fifo.out"));
        lines = 0;
        for (char *p = got; p && *p; p++) lines += *p == '\n';
        free(got);
        if (lines < 5000) sleep_ms(50);
    }
    CHECK_INT_EQ(lines, 5000);
    CHECK_INT_EQ(count_entries(TMP, "labels.fifo.tmp"), 0);
}

/* predict --proba holds a chunk of responsibilities, not all N x K: with N = 24000 and K = 256 (49 MB of
 * responsibilities) its peak memory is within 32 MB of predict's without --proba. */
static void test_proba_streams(void)
{
    const char *model = tmp_file("k256.json");
    FILE *f = fopen(model, "w");
    CHECK(f != NULL);
    if (!f) return;
    const int k = 256;
    fputs("{\"weights\": [", f);
    for (int c = 0; c < k; c++) fprintf(f, "%s0.00390625", c ? ", " : "");
    fputs("], \"means\": [", f);
    for (int c = 0; c < k; c++) fprintf(f, "%s[%d]", c ? ", " : "", c);
    fputs("], \"covariances\": [", f);
    for (int c = 0; c < k; c++) fprintf(f, "%s[[1]]", c ? ", " : "");
    fputs("]}\n", f);
    fclose(f);
    char *sargs[] = {"sample", (char *)model, "-n", "24000", "-o", (char *)tmp_file("k256.csv"), NULL};
    CHECK_INT_EQ(run_gmm(NULL, sargs), 0);
    long rss_labels = 0, rss_proba = 0;
    char *largs[] = {"predict", (char *)model, (char *)tmp_file("k256.csv"), "--device", "cpu", NULL};
    CHECK_INT_EQ(wait_gmm(spawn_gmm(NULL, "null", largs), &rss_labels), 0);
    char *pargs[] = {"predict", "--proba", (char *)model, (char *)tmp_file("k256.csv"), "--device", "cpu", NULL};
    CHECK_INT_EQ(wait_gmm(spawn_gmm(NULL, "null", pargs), &rss_proba), 0);
    fprintf(stderr, "peak memory: predict %ld kB, predict --proba %ld kB (responsibilities: %d kB)\n", rss_labels,
            rss_proba, 24000 * k * 8 / 1024);
    CHECK(rss_proba - rss_labels < 32 * 1024);

    /* the chunks join up: 8200 rows are two chunks of 8192 and 8, and every responsibility is the library's,
     * bit for bit */
    char *s2args[] = {"sample", (char *)model, "-n", "8200", "--seed", "3", "-o", (char *)tmp_file("k256b.csv"),
                      NULL};
    CHECK_INT_EQ(run_gmm(NULL, s2args), 0);
    char *p2args[] = {"predict", "--proba", (char *)model, (char *)tmp_file("k256b.csv"), "--device", "cpu", NULL};
    CHECK_INT_EQ(wait_gmm(spawn_gmm(NULL, "proba.csv", p2args), NULL), 0);
    gmm_model *m = NULL;
    double *x = NULL, *resp = NULL;
    size_t n = 0, d = 0;
    CHECK(gmm_model_load(model, &m) == GMM_OK);
    CHECK(gmm_read_data(tmp_file("k256b.csv"), &x, &n, &d) == GMM_OK);
    char *text = slurp(tmp_file("proba.csv"));
    if (m && x && text && n == 8200) {
        resp = malloc(n * (size_t)k * sizeof *resp);
        CHECK(gmm_predict_proba(m, x, n, resp) == GMM_OK);
        size_t values = 0, mismatches = 0;
        char *p = text;
        for (size_t i = 0; i < n * (size_t)k && *p; i++) {
            char *end;
            double v = strtod(p, &end);
            if (end == p) break;
            mismatches += v != resp[i] || *end != ((i + 1) % (size_t)k ? ',' : '\n');
            values++;
            p = end + 1;
        }
        CHECK_INT_EQ(values, n * (size_t)k);
        CHECK_INT_EQ(mismatches, 0);
        CHECK(*p == '\0');
    } else {
        CHECK(!"the model, the data or the output could not be read");
    }
    free(text);
    free(resp);
    free(x);
    gmm_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli_outputs PATH-TO-gmm\n");
        return 1;
    }
    static char gmm_abs[4096];
    GMM = realpath(argv[1], gmm_abs) ? gmm_abs : argv[1]; /* a test runs gmm from another folder */
    snprintf(TMP, sizeof TMP, "%s/cli_outputs", GMM_TEST_TMP);
    snprintf(DATA, sizeof DATA, "%s/data/TrainingData_GMM.csv", GMM_SOURCE_DIR);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/fakebin'", TMP, TMP);
    if (system(cmd) != 0) return 1;
    char fake[1024];
    snprintf(fake, sizeof fake, "%s/fakebin/gnuplot", TMP);
    write_text(fake, FAKE_GNUPLOT);
    if (chmod(fake, 0755) != 0) return 1;
    test_failed_fit_keeps_previous_result();
    test_killed_fit_keeps_previous_result();
    test_concurrent_fits_do_not_mix();
    test_created_folders_and_user_files();
    test_write_errors_and_special_files();
    test_proba_streams();
    return check_exit();
}
