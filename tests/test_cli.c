/*
 * test_cli.c — the `gmm` program end to end (argv[1] is its path): the bundled data set is regenerated
 * byte for byte by `gmm sample`; `gmm fit` on it writes every output (PNGs checked as PNG when gnuplot is
 * present), recovers the generating model's four means (within 0.02, one to one) and reaches at least the
 * generating model's log-likelihood on the same points;
 * the same seed gives the same results; predict / score / sample work, on the device --device names (cuda:
 * exit 1 where no GPU is usable); bad input and bad usage give the documented messages and exit status (1
 * failure, 2 usage).
 */
#include "backend_cuda.h"
#include "check.h"
#include "gmm_internal.h"
#include "report.h"

#include <ctype.h>
#include <math.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *GMM;
static char TMP[256];

/* Runs `gmm ARGS` with stdout and stderr captured into TMP/out.txt and TMP/err.txt; returns the exit status. */
static int run_gmm(const char *args)
{
    char cmd[8192 + 1024]; /* args (up to 8192) plus the program and the two redirections */
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out.txt' 2>'%s/err.txt'", GMM, args, TMP, TMP);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* Reads a whole file into a NUL-terminated buffer (caller frees); NULL if missing. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len) *len = got;
    return buf;
}

/* TMP/name in one of four rotating buffers, so that one call may use several. */
static char *tmp_file(const char *name)
{
    static char paths[4][512];
    static int next = 0;
    char *path = paths[next++ % 4];
    snprintf(path, 512, "%s/%s", TMP, name);
    return path;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* 1 if `word` occurs in text with no letter right before or after it (case-insensitive). */
static int has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, word, wl) != 0) continue;
        int before = p > text && isalpha((unsigned char)p[-1]);
        int after = isalpha((unsigned char)p[wl]);
        if (!before && !after) return 1;
    }
    return 0;
}

static void check_png(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len = 0;
    char *buf = slurp(path, &len);
    CHECK(buf != NULL);
    if (!buf) {
        fprintf(stderr, "  missing %s\n", path);
        return;
    }
    CHECK(len > 1000);
    CHECK(memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0);
    free(buf);
}

static void test_bundled_data_regenerates(void)
{
    char args[8192];
    snprintf(args, sizeof args, "sample '%s/data/assignment_model.json' -n 5000 --seed 2024 -o '%s'", GMM_SOURCE_DIR,
             tmp_file("regen.csv"));
    CHECK_INT_EQ(run_gmm(args), 0);
    size_t la = 0, lb = 0;
    char *a = slurp(tmp_file("regen.csv"), &la);
    char path[1024];
    snprintf(path, sizeof path, "%s/data/TrainingData_GMM.csv", GMM_SOURCE_DIR);
    char *b = slurp(path, &lb);
    CHECK(a && b);
    if (a && b) {
        CHECK_INT_EQ(la, lb);
        CHECK(la == lb && memcmp(a, b, la) == 0);
    }
    free(a);
    free(b);
}

/* Loads out_dir/model.json (a fit with the assignment's stopping rule, --tol 2e-6) and checks its means and
 * likelihood against the generating model's. */
static void check_assignment_fit(const char *out_dir)
{
    static const char *files[] = {"model.json", "labels.csv",  "loglik.csv",   "report.md",
                                  "loglik.gp",  "clusters.gp", "init_study.gp"};
    char path[1024];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, files[i]);
        if (!file_exists(path)) fprintf(stderr, "  missing %s\n", path);
        CHECK(file_exists(path));
    }
    if (gmm_gnuplot_available()) {
        check_png(out_dir, "loglik.png");
        check_png(out_dir, "clusters.png");
        check_png(out_dir, "init_study.png");
    } else {
        fprintf(stderr, "note: gnuplot with pngcairo is not available; PNG checks skipped\n");
    }
    gmm_model *fit = NULL, *gen = NULL;
    snprintf(path, sizeof path, "%s/model.json", out_dir);
    CHECK(gmm_model_load(path, &fit) == GMM_OK);
    snprintf(path, sizeof path, "%s/data/assignment_model.json", GMM_SOURCE_DIR);
    CHECK(gmm_model_load(path, &gen) == GMM_OK);
    snprintf(path, sizeof path, "%s/data/TrainingData_GMM.csv", GMM_SOURCE_DIR);
    double *x = NULL;
    size_t n = 0, d = 0;
    CHECK(gmm_read_data(path, &x, &n, &d) == GMM_OK);
    if (!fit || !gen || !x) return;
    CHECK_INT_EQ(n, 5000);
    CHECK_INT_EQ(d, 2);
    CHECK_INT_EQ(gmm_model_n_components(fit), 4);
    double ll_fit = 0, ll_gen = 0;
    CHECK(gmm_score(fit, x, n, &ll_fit) == GMM_OK);
    CHECK(gmm_score(gen, x, n, &ll_gen) == GMM_OK);
    ll_fit *= (double)n;
    ll_gen *= (double)n;
    fprintf(stderr, "fit log-likelihood %.4f, generating model %.4f\n", ll_fit, ll_gen);
    /* the data were drawn from the generating model: a maximum of the likelihood can only be higher */
    CHECK(ll_fit >= ll_gen);
    /* each generating mean has its own fitted mean (one to one) within 0.02 */
    const double *mu = gmm_model_means(fit), *mu_gen = gmm_model_means(gen);
    int taken[4] = {0, 0, 0, 0};
    for (int c = 0; c < 4; c++) {
        int nearest = -1;
        double best = INFINITY;
        for (int j = 0; j < 4; j++) {
            double dist = hypot(mu[j * 2] - mu_gen[c * 2], mu[j * 2 + 1] - mu_gen[c * 2 + 1]);
            if (dist < best) {
                best = dist;
                nearest = j;
            }
        }
        CHECK(nearest >= 0 && !taken[nearest]);
        if (nearest >= 0) taken[nearest] = 1;
        CHECK_NEAR(best, 0.0, 0.02, 0);
    }
    /* labels.csv: one label per input row, each in 0..3, equal to the CPU's predict; labels computed on a GPU
     * (the fit's device) may differ only where the CPU's two best responsibilities are within 1e-4 */
    snprintf(path, sizeof path, "%s/labels.csv", out_dir);
    char *lab = slurp(path, NULL);
    CHECK(lab != NULL);
    int *pred = malloc(n * sizeof *pred);
    double *proba = malloc(n * 4 * sizeof *proba);
    CHECK(gmm_predict(fit, x, n, pred) == GMM_OK);
    CHECK(gmm_predict_proba(fit, x, n, proba) == GMM_OK);
    const int on_gpu = strncmp(gmm_model_device(fit), "CUDA", 4) == 0;
    if (lab) {
        size_t rows = 0, mismatch = 0;
        for (char *p = lab; *p;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || *end != '\n') break;
            if (rows < n && v != pred[rows] &&
                !(on_gpu && v >= 0 && v < 4 &&
                  fabs(proba[rows * 4 + (size_t)v] - proba[rows * 4 + (size_t)pred[rows]]) <= 1e-4))
                mismatch++;
            rows++;
            p = end + 1;
        }
        CHECK_INT_EQ(rows, n);
        CHECK_INT_EQ(mismatch, 0);
    }
    /* the report answers the five questions, in order, with real numbers */
    snprintf(path, sizeof path, "%s/report.md", out_dir);
    char *rep = slurp(path, NULL);
    CHECK(rep != NULL);
    if (rep) {
        const char *h[] = {"## 1.", "## 2.", "## 3.", "## 4.", "## 5."};
        const char *prev = rep;
        for (int i = 0; i < 5; i++) {
            const char *p = strstr(prev, h[i]);
            CHECK(p != NULL);
            if (p) prev = p;
        }
        CHECK_STR_CONTAINS(rep, "loglik.png");
        CHECK_STR_CONTAINS(rep, "clusters.png");
        CHECK_STR_CONTAINS(rep, "init_study.png");
        CHECK_STR_CONTAINS(rep, "binary");
        /* the report's final log-likelihood is at least the generating model's */
        const char *row = strstr(rep, "| final total log-likelihood | ");
        CHECK(row != NULL);
        if (row) {
            double reported = strtod(row + strlen("| final total log-likelihood | "), NULL);
            fprintf(stderr, "report.md final log-likelihood %.6f\n", reported);
            CHECK(reported >= ll_gen);
            /* the final model's, as gmm_score computes it (10 significant digits in the report); computed on the
             * fit's device, so on a GPU within the float32 tolerance of log p, summed over the n points */
            const int fit_on_gpu = strstr(rep, "| device | `CUDA") != NULL; /* model.json does not say */
            CHECK_NEAR(reported, ll_fit, fit_on_gpu ? 1e-4 * (double)n + 1e-5 * fabs(ll_fit) : 0.0, 1e-9);
        }
        CHECK(!has_word(rep, "nan") && !has_word(rep, "inf") && !has_word(rep, "infinity"));
    }
    free(rep);
    free(lab);
    free(pred);
    free(proba);
    free(x);
    gmm_model_free(fit);
    gmm_model_free(gen);
}

/* The same seed gives the same model parameters, labels and trace (timings aside). */
static void test_fit_outputs_and_determinism(void)
{
    char args[8192], dir1[512], dir2[512];
    snprintf(dir1, sizeof dir1, "%s/fit1", TMP);
    snprintf(dir2, sizeof dir2, "%s/fit2", TMP);
    snprintf(args, sizeof args,
             "fit '%s/data/TrainingData_GMM.csv' -k 4 --init-study 3 --seed 0 --tol 2e-6 --quiet --out '%s'",
             GMM_SOURCE_DIR, dir1);
    CHECK_INT_EQ(run_gmm(args), 0);
    char *out = slurp(tmp_file("out.txt"), NULL);
    CHECK_STR_CONTAINS(out, "converged: yes");
    CHECK_STR_CONTAINS(out, "alpha = [");
    free(out);
    check_assignment_fit(dir1);
    snprintf(
        args, sizeof args,
        "fit '%s/data/TrainingData_GMM.csv' -k 4 --init-study 3 --seed 0 --tol 2e-6 --quiet --threads 1 --out '%s'",
        GMM_SOURCE_DIR, dir2);
    CHECK_INT_EQ(run_gmm(args), 0);
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/labels.csv", dir1);
    snprintf(p2, sizeof p2, "%s/labels.csv", dir2);
    char *a = slurp(p1, NULL), *b = slurp(p2, NULL);
    CHECK(a && b && strcmp(a, b) == 0);
    free(a);
    free(b);
    gmm_model *m1 = NULL, *m2 = NULL;
    snprintf(p1, sizeof p1, "%s/model.json", dir1);
    snprintf(p2, sizeof p2, "%s/model.json", dir2);
    CHECK(gmm_model_load(p1, &m1) == GMM_OK);
    CHECK(gmm_model_load(p2, &m2) == GMM_OK);
    if (m1 && m2) {
        CHECK(memcmp(m1->weights, m2->weights, 4 * sizeof(double)) == 0);
        CHECK(memcmp(m1->means, m2->means, 8 * sizeof(double)) == 0);
        CHECK(memcmp(m1->covariances, m2->covariances, 16 * sizeof(double)) == 0);
        CHECK_INT_EQ(m1->n_iter, m2->n_iter);
        CHECK(m1->n_iter == m2->n_iter &&
              memcmp(m1->loglik_trace, m2->loglik_trace, (size_t)m1->n_iter * sizeof(double)) == 0);
    }
    gmm_model_free(m1);
    gmm_model_free(m2);
}

static void test_predict_score_sample(void)
{
    char args[8192];
    snprintf(args, sizeof args, "score '%s/data/assignment_model.json' '%s/data/TrainingData_GMM.csv'",
             GMM_SOURCE_DIR, GMM_SOURCE_DIR);
    CHECK_INT_EQ(run_gmm(args), 0);
    char *out = slurp(tmp_file("out.txt"), NULL);
    CHECK_STR_CONTAINS(out, "points: 5000");
    CHECK_STR_CONTAINS(out, "total log-likelihood: ");
    free(out);
    snprintf(args, sizeof args, "predict '%s/data/assignment_model.json' '%s/data/TrainingData_GMM.csv' -o '%s'",
             GMM_SOURCE_DIR, GMM_SOURCE_DIR, tmp_file("pred.txt"));
    CHECK_INT_EQ(run_gmm(args), 0);
    char *pred = slurp(tmp_file("pred.txt"), NULL);
    size_t lines = 0;
    for (char *p = pred; p && *p; p++) lines += *p == '\n';
    CHECK_INT_EQ(lines, 5000);
    free(pred);
    snprintf(args, sizeof args,
             "predict --proba '%s/data/assignment_model.json' '%s/data/TrainingData_GMM.csv' --device cpu",
             GMM_SOURCE_DIR, GMM_SOURCE_DIR);
    CHECK_INT_EQ(run_gmm(args), 0);
    /* each row's responsibilities sum to 1 (on the CPU, in double) */
    FILE *f = fopen(tmp_file("out.txt"), "r");
    double r[4], worst = 0;
    size_t rows = 0;
    while (f && fscanf(f, "%lf,%lf,%lf,%lf", &r[0], &r[1], &r[2], &r[3]) == 4) {
        worst = fmax(worst, fabs(r[0] + r[1] + r[2] + r[3] - 1.0));
        rows++;
    }
    if (f) fclose(f);
    CHECK_INT_EQ(rows, 5000);
    CHECK_NEAR(worst, 0.0, 1e-12, 0);
    snprintf(args, sizeof args, "sample '%s/data/assignment_model.json' -n 7 --seed 5", GMM_SOURCE_DIR);
    CHECK_INT_EQ(run_gmm(args), 0);
    out = slurp(tmp_file("out.txt"), NULL);
    lines = 0;
    for (char *p = out; p && *p; p++) lines += *p == '\n';
    CHECK_INT_EQ(lines, 7);
    free(out);
}

/* Exit status and message for a command; `expect` must appear on stderr. */
static void expect_failure(const char *args, int status, const char *expect)
{
    int st = run_gmm(args);
    if (st != status) fprintf(stderr, "  `gmm %s` exited %d, expected %d\n", args, st, status);
    CHECK_INT_EQ(st, status);
    char *err = slurp(tmp_file("err.txt"), NULL);
    CHECK_STR_CONTAINS(err, expect);
    free(err);
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(tmp_file(name), "wb");
    fputs(text, f);
    fclose(f);
}

/* gmm select, --covariance, --init-model and --warm-start through the program. */
static void test_select_and_init_files(void)
{
    char args[8192];
    snprintf(args, sizeof args,
             "select '%s/data/TrainingData_GMM.csv' --k 3..5 --covariance full,diag --quiet --out '%s'",
             GMM_SOURCE_DIR, tmp_file("select"));
    CHECK_INT_EQ(run_gmm(args), 0);
    char *out = slurp(tmp_file("out.txt"), NULL);
    CHECK_STR_CONTAINS(out, "best: k = 4, covariance full");
    free(out);
    char *csv = slurp(tmp_file("select/selection.csv"), NULL);
    CHECK_STR_CONTAINS(csv, "k,covariance,status,loglik,bic,aic,n_iter,converged\n");
    CHECK_STR_CONTAINS(csv, "\n5,diag,ok,");
    size_t lines = 0;
    for (char *p = csv; p && *p; p++) lines += *p == '\n';
    CHECK_INT_EQ(lines, 7);
    free(csv);
    CHECK(file_exists(tmp_file("select/model.json")));
    if (gmm_gnuplot_available()) check_png(tmp_file("select"), "selection.png");

    /* --covariance diag: the model file records the type and diag-shaped covariances */
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --covariance diag --quiet --out '%s'",
             GMM_SOURCE_DIR, tmp_file("diag"));
    CHECK_INT_EQ(run_gmm(args), 0);
    gmm_model *m = NULL;
    CHECK(gmm_model_load(tmp_file("diag/model.json"), &m) == GMM_OK);
    if (m) CHECK(gmm_model_covariance_type(m) == GMM_COV_DIAG);
    double first_ll = m ? m->lower_bound : 0;
    gmm_model_free(m);
    m = NULL;
    /* --warm-start continues from that model (its type is taken from the file) and can only go up */
    snprintf(args, sizeof args,
             "fit '%s/data/TrainingData_GMM.csv' -k 4 --warm-start '%s' --tol 1e-8 --quiet --out '%s'",
             GMM_SOURCE_DIR, tmp_file("diag/model.json"), tmp_file("warm"));
    CHECK_INT_EQ(run_gmm(args), 0);
    CHECK(gmm_model_load(tmp_file("warm/model.json"), &m) == GMM_OK);
    if (m) {
        CHECK(gmm_model_covariance_type(m) == GMM_COV_DIAG);
        CHECK(m->lower_bound >= first_ll);
    }
    gmm_model_free(m);
    /* --init-model with means only: the rest comes from --init */
    write_file("means.json", "{\"means\": [[-0.4, 0.3], [1.2, -1.2], [0.1, 0.1], [-0.4, -0.5]]}");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --init-model '%s' --quiet --out '%s'",
             GMM_SOURCE_DIR, tmp_file("means.json"), tmp_file("means-out"));
    CHECK_INT_EQ(run_gmm(args), 0);
    /* mismatches and exclusions */
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 3 --init-model '%s'", GMM_SOURCE_DIR,
             tmp_file("means.json"));
    expect_failure(args, 1, "has 4 components but the fit asks for -k 3");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --warm-start '%s'", GMM_SOURCE_DIR,
             tmp_file("means.json"));
    expect_failure(args, 1, "--warm-start needs a model with weights, means and covariances");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --warm-start '%s' --covariance full",
             GMM_SOURCE_DIR, tmp_file("diag/model.json"));
    expect_failure(args, 1, "holds diag covariances but the fit asks for --covariance full");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --warm-start '%s' --init random",
             GMM_SOURCE_DIR, tmp_file("diag/model.json"));
    expect_failure(args, 2, "--warm-start starts from the model: it excludes --init and --n-init");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --covariance round", GMM_SOURCE_DIR);
    expect_failure(args, 2, "--covariance expects full, tied, diag or spherical, got 'round'");
    snprintf(args, sizeof args, "select '%s/data/TrainingData_GMM.csv' --k 5..3", GMM_SOURCE_DIR);
    expect_failure(args, 2, "--k expects A..B or K with 1 <= A <= B <= 100000, got '5..3'");
}

/* Copies TMP/out.txt to TMP/name (to compare runs). */
static void keep_out(const char *name)
{
    size_t len = 0;
    char *text = slurp(tmp_file("out.txt"), &len);
    FILE *f = fopen(tmp_file(name), "wb");
    if (text && f) fwrite(text, 1, len, f);
    if (f) fclose(f);
    free(text);
}

/* predict, score and select on the device --device names: cpu gives the CPU reference's bits and says so on
 * stderr; auto says which device it took; cuda fails with exit 1 and writes nothing where no GPU is
 * usable, and works where one is; bad values are usage errors. */
static void test_device_flags(void)
{
    char args[8192];
    const int have_gpu = gmm_cuda_available(NULL, 0) > 0;
    const char *model = "data/assignment_model.json", *data = "data/TrainingData_GMM.csv";
    /* --device cpu: labels, responsibilities and scores as the library's CPU functions compute them */
    snprintf(args, sizeof args, "predict '%s/%s' '%s/%s' --device cpu -o '%s'", GMM_SOURCE_DIR, model, GMM_SOURCE_DIR,
             data, tmp_file("pred-cpu.txt"));
    CHECK_INT_EQ(run_gmm(args), 0);
    char *err = slurp(tmp_file("err.txt"), NULL);
    CHECK_STR_CONTAINS(err, "gmm predict: device: CPU (");
    free(err);
    gmm_model *m = NULL;
    double *x = NULL;
    size_t n = 0, d = 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", GMM_SOURCE_DIR, model);
    CHECK(gmm_model_load(path, &m) == GMM_OK);
    snprintf(path, sizeof path, "%s/%s", GMM_SOURCE_DIR, data);
    CHECK(gmm_read_data(path, &x, &n, &d) == GMM_OK);
    if (m && x) {
        int *pred = malloc(n * sizeof *pred);
        CHECK(pred && gmm_predict(m, x, n, pred) == GMM_OK);
        char *text = slurp(tmp_file("pred-cpu.txt"), NULL);
        size_t rows = 0, mismatch = 0;
        for (char *p = text; p && *p && pred;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || *end != '\n') break;
            if (rows < n && v != pred[rows]) mismatch++;
            rows++;
            p = end + 1;
        }
        CHECK_INT_EQ(rows, n);
        CHECK_INT_EQ(mismatch, 0);
        free(text);
        free(pred);
        double mean = 0, bic = 0, aic = 0;
        CHECK(gmm_score(m, x, n, &mean) == GMM_OK && gmm_bic(m, x, n, &bic) == GMM_OK &&
              gmm_aic(m, x, n, &aic) == GMM_OK);
        snprintf(args, sizeof args, "score '%s/%s' '%s/%s' --device cpu", GMM_SOURCE_DIR, model, GMM_SOURCE_DIR,
                 data);
        CHECK_INT_EQ(run_gmm(args), 0);
        char expect[512];
        snprintf(expect, sizeof expect,
                 "points: %zu\nmean log-likelihood: %.17g\ntotal log-likelihood: %.17g\nBIC: %.17g\nAIC: %.17g\n", n,
                 mean, mean * (double)n, bic, aic);
        char *out = slurp(tmp_file("out.txt"), NULL);
        CHECK(out && !strcmp(out, expect));
        free(out);
        err = slurp(tmp_file("err.txt"), NULL);
        CHECK_STR_CONTAINS(err, "gmm score: device: CPU (");
        free(err);
        keep_out("score-cpu.txt");
    }
    gmm_model_free(m);
    free(x);
    /* --device auto (the default): says which device it took; without a GPU that is the CPU, same bits */
    snprintf(args, sizeof args, "score '%s/%s' '%s/%s'", GMM_SOURCE_DIR, model, GMM_SOURCE_DIR, data);
    CHECK_INT_EQ(run_gmm(args), 0);
    err = slurp(tmp_file("err.txt"), NULL);
    CHECK_STR_CONTAINS(err, have_gpu ? "gmm score: device: CUDA: " : "gmm score: device: CPU (");
    free(err);
    if (!have_gpu) {
        char *a = slurp(tmp_file("out.txt"), NULL), *b = slurp(tmp_file("score-cpu.txt"), NULL);
        CHECK(a && b && !strcmp(a, b));
        free(a);
        free(b);
    }
    snprintf(args, sizeof args, "predict '%s/%s' '%s/%s' --device auto --dtype float64 -o '%s'", GMM_SOURCE_DIR,
             model, GMM_SOURCE_DIR, data, tmp_file("pred-auto.txt"));
    CHECK_INT_EQ(run_gmm(args), 0);
    err = slurp(tmp_file("err.txt"), NULL);
    CHECK_STR_CONTAINS(err, have_gpu ? "gmm predict: device: CUDA: " : "gmm predict: device: CPU (");
    free(err);
    if (!have_gpu) {
        char *a = slurp(tmp_file("pred-auto.txt"), NULL), *b = slurp(tmp_file("pred-cpu.txt"), NULL);
        CHECK(a && b && !strcmp(a, b));
        free(a);
        free(b);
    }
    /* --dtype auto (the default) is accepted; on a GPU the bundled data keep float32, and the device line says
     * that auto chose it */
    snprintf(args, sizeof args, "score '%s/%s' '%s/%s' --dtype auto", GMM_SOURCE_DIR, model, GMM_SOURCE_DIR, data);
    CHECK_INT_EQ(run_gmm(args), 0);
    err = slurp(tmp_file("err.txt"), NULL);
    CHECK_STR_CONTAINS(err, have_gpu ? "float32 (auto)" : "gmm score: device: CPU (");
    free(err);
    /* --device cuda: exit 1 and nothing written where no GPU is usable; where one is, it runs there */
    static const char *const cuda_cmds[] = {"predict '%s/%s' '%s/%s' --device cuda -o '%s'",
                                            "predict --proba '%s/%s' '%s/%s' --device cuda -o '%s'",
                                            "score '%s/%s' '%s/%s' --device cuda --dtype float32%.0s"};
    for (size_t i = 0; i < sizeof cuda_cmds / sizeof cuda_cmds[0]; i++) {
        remove(tmp_file("pred-cuda.txt"));
        snprintf(args, sizeof args, cuda_cmds[i], GMM_SOURCE_DIR, model, GMM_SOURCE_DIR, data,
                 tmp_file("pred-cuda.txt"));
        const char *cmd = i < 2 ? "gmm predict: " : "gmm score: ";
        if (!have_gpu) {
            expect_failure(args, 1, cmd);
            CHECK(!file_exists(tmp_file("pred-cuda.txt")));
            char *out = slurp(tmp_file("out.txt"), NULL);
            CHECK(out && out[0] == '\0');
            free(out);
        } else {
            CHECK_INT_EQ(run_gmm(args), 0);
            err = slurp(tmp_file("err.txt"), NULL);
            char expect[64];
            snprintf(expect, sizeof expect, "%sdevice: CUDA: ", cmd);
            CHECK_STR_CONTAINS(err, expect);
            free(err);
            if (i < 2) CHECK(file_exists(tmp_file("pred-cuda.txt")));
        }
    }
    /* gmm select --device cuda: one session for all candidates; without a GPU it fails before writing */
    snprintf(args, sizeof args, "select '%s/%s' --k 3..4 --covariance diag --device cuda --out '%s'", GMM_SOURCE_DIR,
             data, tmp_file("select-cuda"));
    if (!have_gpu) {
        expect_failure(args, 1, "gmm select: ");
        CHECK(!file_exists(tmp_file("select-cuda")));
    } else {
        CHECK_INT_EQ(run_gmm(args), 0);
        err = slurp(tmp_file("err.txt"), NULL);
        CHECK_STR_CONTAINS(err, "gmm select: device: CUDA: ");
        free(err);
    }
    /* select without --quiet names its device once */
    snprintf(args, sizeof args, "select '%s/%s' --k 2..3 --covariance spherical --device cpu --out '%s'",
             GMM_SOURCE_DIR, data, tmp_file("select-cpu"));
    CHECK_INT_EQ(run_gmm(args), 0);
    err = slurp(tmp_file("err.txt"), NULL);
    CHECK_STR_CONTAINS(err, "gmm select: device: CPU (");
    free(err);
    /* usage errors */
    snprintf(args, sizeof args, "predict '%s/%s' '%s/%s' --device gpu", GMM_SOURCE_DIR, model, GMM_SOURCE_DIR, data);
    expect_failure(args, 2, "gmm predict: --device expects auto, cpu or cuda, got 'gpu'");
    snprintf(args, sizeof args, "score '%s/%s' '%s/%s' --dtype float16", GMM_SOURCE_DIR, model, GMM_SOURCE_DIR, data);
    expect_failure(args, 2, "gmm score: --dtype expects auto, float32 or float64, got 'float16'");
    snprintf(args, sizeof args, "score '%s/%s' '%s/%s' --device", GMM_SOURCE_DIR, model, GMM_SOURCE_DIR, data);
    expect_failure(args, 2, "gmm score: option '--device' needs a value");
    snprintf(args, sizeof args, "predict '%s/%s' '%s/%s' --threads 2", GMM_SOURCE_DIR, model, GMM_SOURCE_DIR, data);
    expect_failure(args, 2, "gmm predict: unknown option '--threads'");
}

static void test_errors(void)
{
    char args[8192];
    expect_failure("", 2, "usage: gmm <command>");
    expect_failure("frobnicate", 2, "unknown command 'frobnicate'");
    expect_failure("fit", 2, "missing DATA file");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv'", GMM_SOURCE_DIR);
    expect_failure(args, 2, "missing -k K");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 0", GMM_SOURCE_DIR);
    expect_failure(args, 2, "-k expects a whole number from 1 to 100000, got '0'");
    /* the limits are stated where they are hit */
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 100001", GMM_SOURCE_DIR);
    expect_failure(args, 2, "-k expects a whole number from 1 to 100000, got '100001'");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --n-init 1000001", GMM_SOURCE_DIR);
    expect_failure(args, 2, "--n-init expects a whole number from 1 to 1000000, got '1000001'");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --threads 5000", GMM_SOURCE_DIR);
    expect_failure(args, 2, "--threads expects a whole number from 1 to 4096, got '5000'");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --max-iter 100000001", GMM_SOURCE_DIR);
    expect_failure(args, 2, "--max-iter expects a whole number from 0 to 100000000, got '100000001'");
    snprintf(args, sizeof args, "sample '%s/data/assignment_model.json' -n 2000000001", GMM_SOURCE_DIR);
    expect_failure(args, 2, "-n expects a whole number from 1 to 2000000000, got '2000000001'");
    snprintf(args, sizeof args, "select '%s/data/TrainingData_GMM.csv' --k 1..100001", GMM_SOURCE_DIR);
    expect_failure(args, 2, "1 <= A <= B <= 100000, got '1..100001'");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --tol abc", GMM_SOURCE_DIR);
    expect_failure(args, 2, "--tol expects a number >= 0, got 'abc'");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --init foo", GMM_SOURCE_DIR);
    expect_failure(args, 2, "--init expects kmeans, k-means++, random, random_from_data or binary, got 'foo'");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --bogus", GMM_SOURCE_DIR);
    expect_failure(args, 2, "unknown option '--bogus'");
    expect_failure("sample", 2, "expected one MODEL file");
    snprintf(args, sizeof args, "fit '%s/data/TrainingData_GMM.csv' -k 4 --device gpu", GMM_SOURCE_DIR);
    expect_failure(args, 2, "--device expects auto, cpu or cuda, got 'gpu'");
    /* --device cuda: fails with exit 1 and no output where no GPU is usable, works where one is */
    snprintf(
        args, sizeof args,
        "fit '%s/data/TrainingData_GMM.csv' -k 4 --init-study 3 --seed 0 --tol 2e-6 --device cuda --quiet --out '%s'",
        GMM_SOURCE_DIR, tmp_file("cuda-out"));
    if (gmm_cuda_available(NULL, 0) == 0) {
        expect_failure(args, 1, "gmm fit: ");
        CHECK(!file_exists(tmp_file("cuda-out")));
    } else {
        CHECK_INT_EQ(run_gmm(args), 0);
        check_assignment_fit(tmp_file("cuda-out"));
    }

    /* every kind of bad data: exit 1 with file:line:column and what was expected; nothing is written */
    static const struct {
        const char *name, *text, *expect;
    } bad[] = {
        {"empty.csv", "", "empty.csv: no data: the file is empty"},
        {"blank.csv", "\n  \n\n", "blank.csv: no data: the file has only blank lines"},
        {"header.csv", "x,y\n", "header.csv:1:1: no data rows after the header"},
        {"ragged.csv", "1,2\n3,4\n5\n", "ragged.csv:3:2: row has 1 field, expected 2 (as in line 1)"},
        {"emptyfield.csv", "1,2\n3,,4\n", "emptyfield.csv:2:3: empty field, expected a number"},
        {"trailing.csv", "1,2\n3,4,\n", "trailing.csv:2:5: trailing comma, expected a number after it"},
        {"word.csv", "1,2\n3,abc\n", "word.csv:2:3: 'abc' is not a number"},
        {"nan.csv", "1,2\n3,nan\n", "nan.csv:2:3: 'nan' is not a finite number"},
        {"inf.csv", "1,2\n-inf,4\n", "inf.csv:2:1: '-inf' is not a finite number"},
        {"range.csv", "1,2\n1e999,4\n", "range.csv:2:1: '1e999' is out of range for a double"},
        {"hex.csv", "1,2\n3, 0x1p3\n", "hex.csv:2:4: '0x1p3' is a hexadecimal number, expected a decimal number"},
        {"blanklines.csv", "1,2\n\n\n3,x\n", "blanklines.csv:4:3: 'x' is not a number"},
        {"crlf.csv", "1,2\r\n3,4\r\n5,6,7\r\n", "crlf.csv:3:5: row has 3 fields, expected 2 (as in line 1)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(bad[i].name, bad[i].text);
        snprintf(args, sizeof args, "fit '%s' -k 1 --quiet --out '%s'", tmp_file(bad[i].name), tmp_file("bad-out"));
        expect_failure(args, 1, bad[i].expect);
        CHECK(!file_exists(tmp_file("bad-out/model.json")));
        CHECK(!file_exists(tmp_file("bad-out/labels.csv")));
    }
    /* an embedded NUL byte (written by hand: the table's strings stop at NUL) */
    FILE *nul = fopen(tmp_file("nul.csv"), "wb");
    fwrite("1,2\n3,\0004\n", 1, 10, nul);
    fclose(nul);
    snprintf(args, sizeof args, "fit '%s' -k 1 --quiet --out '%s'", tmp_file("nul.csv"), tmp_file("bad-out"));
    expect_failure(args, 1, "nul.csv:2:3: embedded NUL byte");
    write_file("few.csv", "1,2\n3,4\n");
    snprintf(args, sizeof args, "fit '%s' -k 3 --out '%s'", tmp_file("few.csv"), tmp_file("few-out"));
    expect_failure(args, 1, "2 points are fewer than the 3 components");
    CHECK(!file_exists(tmp_file("few-out/model.json")));
    snprintf(args, sizeof args, "fit '%s' -k 1", tmp_file("does-not-exist.csv"));
    expect_failure(args, 1, "cannot open");
    /* a 3-feature file against a 2-feature model */
    write_file("three.csv", "1,2,3\n4,5,6\n");
    snprintf(args, sizeof args, "predict '%s/data/assignment_model.json' '%s'", GMM_SOURCE_DIR,
             tmp_file("three.csv"));
    expect_failure(args, 1, "has 3 features per row but the model");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli PATH-TO-gmm\n");
        return 1;
    }
    GMM = argv[1];
    snprintf(TMP, sizeof TMP, "%s/cli", GMM_TEST_TMP);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", TMP, TMP);
    if (system(cmd) != 0) return 1;
    test_bundled_data_regenerates();
    test_fit_outputs_and_determinism();
    test_predict_score_sample();
    test_select_and_init_files();
    test_errors();
    test_device_flags();
    return check_exit();
}
