/*
 * test_report.c — the outputs of src/app/report.h: labels.csv, loglik.csv, the gnuplot data/scripts/pictures
 * and report.md. Builds a small model (k = 3, d = 2) with a hand-made fit record, samples data from it,
 * labels points by the nearest mean (no gmm_fit / gmm_predict needed) and writes everything into fresh
 * folders under GMM_TEST_TMP: one rendered when gnuplot is available, one with render = 0, one where
 * gnuplot cannot be found, plus a d = 1 picture and the error paths.
 */
#include "check.h"
#include "gmm_internal.h"
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define K 3
#define D 2
#define N 800
#define N_ITER 9

/* ----------------------------------------------------------------------------------------- file helpers */

static void path_of(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Whole file as a NUL-terminated string (NULL when unreadable); *len_out its size. */
static char *slurp(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    if (len_out) *len_out = len;
    return buf;
}

static int file_exists(const char *dir, const char *name)
{
    char p[1024];
    path_of(p, sizeof p, dir, name);
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Creates dir (and GMM_TEST_TMP) and removes every plain file in it, so each run starts fresh. */
static void fresh_dir(const char *dir)
{
    mkdir(GMM_TEST_TMP, 0777);
    mkdir(dir, 0777);
    DIR *dd = opendir(dir);
    if (!dd) return;
    struct dirent *e;
    while ((e = readdir(dd)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[1024];
        path_of(p, sizeof p, dir, e->d_name);
        remove(p);
    }
    closedir(dd);
}

/* Number of directory entries whose name contains needle. */
static int count_names_containing(const char *dir, const char *needle)
{
    DIR *dd = opendir(dir);
    if (!dd) return -1;
    int c = 0;
    struct dirent *e;
    while ((e = readdir(dd)) != NULL)
        if (strstr(e->d_name, needle)) c++;
    closedir(dd);
    return c;
}

/* 1 when the file is a PNG (8-byte signature) larger than 1000 bytes. */
static int is_png(const char *dir, const char *name)
{
    char p[1024];
    path_of(p, sizeof p, dir, name);
    size_t len = 0;
    char *b = slurp(p, &len);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int ok = b && len > 1000 && memcmp(b, sig, 8) == 0;
    free(b);
    return ok;
}

/* 1 when text contains "nan" or "inf" (any case) as a word, i.e. not inside a longer word such as
 * "information". */
static int has_nonfinite_word(const char *text)
{
    static const char *const bad[] = {"nan", "inf", "infinity"};
    for (const char *p = text; *p; p++) {
        if (p != text && ((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z'))) continue;
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            size_t l = strlen(bad[b]), i = 0;
            while (i < l && p[i] && (p[i] | 0x20) == bad[b][i]) i++;
            if (i < l) continue;
            char next = p[l];
            if (!((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z'))) {
                fprintf(stderr, "non-finite word at: \"%.40s\"\n", p);
                return 1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- fixtures */

static const double W[K] = {0.52, 0.3, 0.18};
static const double MU[K * D] = {0.0, 0.0, 4.0, 1.0, -2.0, 5.0};
static const double COV[K * D * D] = {1.0, 0.3, 0.3, 0.5, /**/ 0.4, -0.1, -0.1, 0.8, /**/ 0.2, 0.0, 0.0, 0.2};

/* Samples N points from the mixture (W, MU, COV) with gmm_rng, 2x2 Cholesky by hand. */
static void make_data(double *x)
{
    gmm_rng rng;
    gmm_rng_seed(&rng, 12345);
    for (size_t i = 0; i < N; i++) {
        double u = gmm_rng_uniform(&rng);
        size_t c = u < W[0] ? 0 : (u < W[0] + W[1] ? 1 : 2);
        const double *s = COV + c * 4;
        double l00 = sqrt(s[0]), l10 = s[2] / l00, l11 = sqrt(s[3] - l10 * l10);
        double z0 = gmm_rng_normal(&rng), z1 = gmm_rng_normal(&rng);
        x[i * D] = MU[c * D] + l00 * z0;
        x[i * D + 1] = MU[c * D + 1] + l10 * z0 + l11 * z1;
    }
}

/* Nearest mean (Euclidean) of each point. */
static void make_labels(const double *x, int *labels)
{
    for (size_t i = 0; i < N; i++) {
        int best = 0;
        double bd = INFINITY;
        for (int c = 0; c < K; c++) {
            double a = x[i * D] - MU[c * D], b = x[i * D + 1] - MU[c * D + 1];
            if (a * a + b * b < bd) {
                bd = a * a + b * b;
                best = c;
            }
        }
        labels[i] = best;
    }
}

/* The model with a fit record: an increasing trace (or one with a dip when dip is set). */
static gmm_model *make_model(int dip)
{
    gmm_model *m = NULL;
    if (gmm_model_from_params(K, D, GMM_COV_FULL, W, MU, COV, &m) != GMM_OK) return NULL;
    m->n_iter = N_ITER;
    m->loglik_trace = malloc(N_ITER * sizeof(double));
    m->iter_seconds = malloc(N_ITER * sizeof(double));
    for (int i = 0; i < N_ITER; i++) {
        m->loglik_trace[i] = -2345.678 + 900.0 * (1.0 - exp(-0.7 * i)) + 0.123456789 * i;
        m->iter_seconds[i] = 0.0012 + 1e-5 * i;
    }
    if (dip) m->loglik_trace[5] = m->loglik_trace[4] - 3.25;
    m->converged = 1;
    m->best_run = 0;
    m->n_train = N;
    m->lower_bound = m->loglik_trace[N_ITER - 1] / N;
    return m;
}

/* A study of three methods: kmeans always at the best optimum, random sometimes worse, binary with a
 * failed run, a non-converged run and two worse optima. */
static double KM_LL[5] = {-1450.1, -1450.3, -1449.9, -1450.05, -1450.2};
static int KM_IT[5] = {8, 9, 7, 8, 10};
static int KM_CV[5] = {1, 1, 1, 1, 1};
static double RA_LL[4] = {-1450.0, -1720.5, -1449.95, -1721.0};
static int RA_IT[4] = {20, 31, 18, 25};
static int RA_CV[4] = {1, 1, 1, 1};
static double BI_LL[3] = {-2100.25, -1720.75, -1450.4};
static int BI_IT[3] = {100, 44, 52};
static int BI_CV[3] = {0, 1, 1};

static void make_study(gmm_study_method *s)
{
    s[0] = (gmm_study_method){"kmeans", 5, 5, KM_LL, KM_IT, KM_CV};
    s[1] = (gmm_study_method){"random", 5, 4, RA_LL, RA_IT, RA_CV};
    s[2] = (gmm_study_method){"binary", 4, 3, BI_LL, BI_IT, BI_CV};
}

static void make_options(gmm_options *o)
{
    memset(o, 0, sizeof *o);
    o->n_components = K;
    o->covariance_type = GMM_COV_FULL;
    o->tol = 1e-3;
    o->reg_covar = 1e-6;
    o->max_iter = 100;
    o->n_init = 1;
    o->init = GMM_INIT_BINARY;
    o->seed = 42;
}

/* ------------------------------------------------------------------------------------------------ checks */

static void check_labels_csv(const char *dir, const int *labels)
{
    CHECK_INT_EQ(gmm_write_labels(dir, labels, N), GMM_OK);
    char p[1024];
    path_of(p, sizeof p, dir, "labels.csv");
    char *text = slurp(p, NULL);
    CHECK(text != NULL);
    if (!text) return;
    size_t lines = 0, bad = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
        if (lines < N && atoi(tok) != labels[lines]) bad++;
        lines++;
    }
    CHECK_INT_EQ(lines, N);
    CHECK_INT_EQ(bad, 0);
    free(text);
}

static void check_loglik_csv(const char *dir, const gmm_model *m)
{
    CHECK_INT_EQ(gmm_write_loglik(dir, m), GMM_OK);
    char p[1024];
    path_of(p, sizeof p, dir, "loglik.csv");
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[512];
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK(strcmp(line, "iteration,loglik,change,seconds\n") == 0);
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        char *fields[4] = {0};
        char *q = line;
        for (int c = 0; c < 4; c++) {
            fields[c] = q;
            char *comma = strpbrk(q, ",\n");
            if (!comma) break;
            *comma = '\0';
            q = comma + 1;
        }
        CHECK(fields[3] != NULL);
        if (!fields[3]) break;
        CHECK_INT_EQ(atoi(fields[0]), rows + 1);
        CHECK(strtod(fields[1], NULL) == m->loglik_trace[rows]); /* %.17g reads back exactly */
        if (rows == 0)
            CHECK(fields[2][0] == '\0');
        else
            CHECK(strtod(fields[2], NULL) == m->loglik_trace[rows] - m->loglik_trace[rows - 1]);
        CHECK_NEAR(strtod(fields[3], NULL), m->iter_seconds[rows], 0, 1e-9);
        rows++;
    }
    CHECK_INT_EQ(rows, N_ITER);
    fclose(f);
}

/* clusters_points.dat: min(500, N) distinct rows, component column = label + 1, coordinates of the row;
 * clusters_ellipses.dat: 2K blocks of 100 points, closed, at Mahalanobis distance 1 or 2. */
static void check_cluster_data(const char *dir, const double *x, const int *labels, const gmm_model *m)
{
    char p[1024];
    path_of(p, sizeof p, dir, "clusters_points.dat");
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    if (f) {
        char line[512];
        size_t rows = 0, bad = 0;
        unsigned char *seen = calloc(N, 1);
        while (fgets(line, sizeof line, f)) {
            if (line[0] == '#') continue;
            double a, b;
            int comp;
            size_t row;
            if (sscanf(line, "%lf %lf %d %zu", &a, &b, &comp, &row) != 4 || row >= N || seen[row]) {
                bad++;
                continue;
            }
            seen[row] = 1;
            if (comp != labels[row] + 1) bad++;
            if (fabs(a - x[row * D]) > 1e-9 * (1 + fabs(a)) || fabs(b - x[row * D + 1]) > 1e-9 * (1 + fabs(b))) bad++;
            rows++;
        }
        CHECK_INT_EQ(rows, 500);
        CHECK_INT_EQ(bad, 0);
        free(seen);
        fclose(f);
    }
    path_of(p, sizeof p, dir, "clusters_ellipses.dat");
    f = fopen(p, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[512];
    int block = 0, in_block = 0, pts = 0, bad = 0, blank = 0;
    double first[2] = {0, 0}, last[2] = {0, 0};
    int counts[2 * K] = {0};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (line[0] == '\n') {
            blank++;
            continue;
        }
        if (blank >= 2 && in_block) block++;
        blank = 0;
        double a, b;
        if (sscanf(line, "%lf %lf", &a, &b) != 2 || block >= 2 * K) {
            bad++;
            continue;
        }
        int c = block / 2, r = block % 2 + 1;
        const double *mu = m->means + c * D, *s = m->covariances + c * D * D;
        double det = s[0] * s[3] - s[1] * s[2];
        double dx = a - mu[0], dy = b - mu[1];
        double q = (s[3] * dx * dx - 2 * s[1] * dx * dy + s[0] * dy * dy) / det;
        if (fabs(sqrt(q) - r) > 1e-6) bad++;
        if (counts[block] == 0) first[0] = a, first[1] = b;
        last[0] = a, last[1] = b;
        counts[block]++;
        in_block = 1;
        if (counts[block] == 100 && (fabs(first[0] - last[0]) > 1e-9 || fabs(first[1] - last[1]) > 1e-9)) bad++;
        pts++;
    }
    fclose(f);
    CHECK_INT_EQ(block, 2 * K - 1);
    CHECK_INT_EQ(pts, 2 * K * 100);
    for (int b = 0; b < 2 * K; b++) CHECK_INT_EQ(counts[b], 100);
    CHECK_INT_EQ(bad, 0);
}

/* The five headings in order, every alpha printed with 5 digits, no nan/inf. Returns the text (free). */
static char *check_report_common(const char *dir, const gmm_model *m)
{
    char p[1024];
    path_of(p, sizeof p, dir, "report.md");
    char *text = slurp(p, NULL);
    CHECK(text != NULL);
    if (!text) return NULL;
    static const char *const heads[5] = {"## 1. Log-likelihood during training", "## 2. The learned model",
                                         "## 3. 500 random points by cluster", "## 4. Effect of initialization",
                                         "## 5. Analysis of the results"};
    const char *prev = text;
    for (int h = 0; h < 5; h++) {
        const char *at = strstr(text, heads[h]);
        CHECK_STR_CONTAINS(text, heads[h]);
        CHECK(at == NULL || at >= prev);
        if (at) prev = at;
    }
    char alpha[256] = "alpha = [";
    for (int c = 0; c < K; c++) {
        char v[32];
        snprintf(v, sizeof v, "%s%.5g", c ? ", " : "", m->weights[c]);
        strcat(alpha, v);
    }
    strcat(alpha, "]");
    CHECK_STR_CONTAINS(text, alpha);
    CHECK_STR_CONTAINS(text, "p(x) = sum_{k=1..3} alpha_k N(x | mu_k, Sigma_k)");
    CHECK_STR_CONTAINS(text, "Sigma_1 = [[1, 0.3],");
    CHECK_STR_CONTAINS(text, "![Total log-likelihood per EM iteration](loglik.png)");
    CHECK_STR_CONTAINS(text, "clusters.png)");
    CHECK_STR_CONTAINS(text, "0-based");
    CHECK(!has_nonfinite_word(text));
    return text;
}

/* gmm_gnuplot_available's answer agrees with running gnuplot from this process, and is cached: with gnuplot
 * out of PATH it is still the first answer. Where GMM_REQUIRE_GNUPLOT=1 (scripts/test.sh, whose deps.sh
 * installs gnuplot) it must be yes, so that CI runs the rendering branches instead of passing without them. */
static void check_gnuplot_probe(int avail)
{
    int probe = system("gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1") == 0;
    CHECK_INT_EQ(avail, probe);
    const char *require = getenv("GMM_REQUIRE_GNUPLOT");
    if (require && strcmp(require, "1") == 0) CHECK_INT_EQ(avail, 1);
    if (!avail) return;
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("PATH", "/nonexistent-gmm-test", 1);
    CHECK_INT_EQ(gmm_gnuplot_available(), 1);
    if (saved) setenv("PATH", saved, 1);
    free(saved);
}

int main(void)
{
    double *x = malloc(N * D * sizeof *x);
    int *labels = malloc(N * sizeof *labels);
    CHECK(x && labels);
    if (!x || !labels) return check_exit();
    make_data(x);
    make_labels(x, labels);
    gmm_model *m = make_model(0);
    CHECK(m != NULL);
    if (!m) return check_exit();
    gmm_options o;
    make_options(&o);
    gmm_study_method study[3];
    make_study(study);
    int avail = gmm_gnuplot_available();
    fprintf(stderr, "gnuplot with pngcairo available: %s\n", avail ? "yes" : "no");
    check_gnuplot_probe(avail);

    /* ---- everything, rendered when gnuplot is available */
    const char *dir = GMM_TEST_TMP "/report_render";
    fresh_dir(dir);
    check_labels_csv(dir, labels);
    check_loglik_csv(dir, m);
    CHECK_INT_EQ(gmm_plot_loglik(dir, m, avail), GMM_OK);
    CHECK_INT_EQ(gmm_plot_clusters(dir, x, N, D, labels, m, 500, 7, avail), GMM_OK);
    CHECK_INT_EQ(gmm_plot_init_study(dir, study, 3, avail), GMM_OK);
    static const char *const made[] = {
        "loglik.gp",          "loglik.dat",    "clusters.gp",   "clusters_points.dat", "clusters_ellipses.dat",
        "clusters_means.dat", "init_study.gp", "init_study.dat"};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        CHECK(file_exists(dir, made[i]));
        if (!file_exists(dir, made[i])) fprintf(stderr, "  missing %s\n", made[i]);
    }
    check_cluster_data(dir, x, labels, m);
    static const char *const pngs[] = {"loglik.png", "clusters.png", "init_study.png"};
    for (size_t i = 0; i < 3; i++) CHECK(avail ? is_png(dir, pngs[i]) : !file_exists(dir, pngs[i]));
    CHECK_INT_EQ(count_names_containing(dir, ".tmp."), 0);
    {
        char p[1024];
        path_of(p, sizeof p, dir, "clusters.gp");
        char *gp = slurp(p, NULL);
        CHECK_STR_CONTAINS(gp, "set terminal pngcairo");
        CHECK_STR_CONTAINS(gp, "set size ratio -1");
        CHECK_STR_CONTAINS(gp, "title \"component 3\"");
        CHECK_STR_CONTAINS(gp, "\"clusters_ellipses.dat\" index 5");
        free(gp);
        path_of(p, sizeof p, dir, "init_study.gp");
        gp = slurp(p, NULL);
        CHECK_STR_CONTAINS(gp, "\"kmeans\\n5/5 finished\" 1");
        CHECK_STR_CONTAINS(gp, "\"binary\\n3/4 finished\" 3");
        CHECK_STR_CONTAINS(gp, "best = -1449.9");
        free(gp);
    }

    gmm_report r;
    memset(&r, 0, sizeof r);
    r.data_path = "data/train|ing.csv";
    r.x = x;
    r.n = N;
    r.d = D;
    r.model = m;
    r.labels = labels;
    r.options = &o;
    r.device = "CPU (2 threads)";
    r.fit_seconds = 0.25;
    r.study = study;
    r.n_study = 3;
    r.bic = -2.0 * m->loglik_trace[N_ITER - 1] + (double)gmm_n_parameters(m) * log((double)N);
    r.aic = -2.0 * m->loglik_trace[N_ITER - 1] + 2.0 * (double)gmm_n_parameters(m);
    r.loglik = m->loglik_trace[N_ITER - 1];
    r.plots_rendered = avail;
    CHECK_INT_EQ(gmm_write_report(dir, &r), GMM_OK);
    char *text = check_report_common(dir, m);
    if (text) {
        CHECK_STR_CONTAINS(text, "| `kmeans` | 5 | 5 |");
        CHECK_STR_CONTAINS(text, "| `random` | 5 | 4 |");
        CHECK_STR_CONTAINS(text, "| `binary` | 4 | 3 |");
        CHECK_STR_CONTAINS(text,
                           "![Converged log-likelihood of every run, by initialization method](init_study.png)");
        CHECK_STR_CONTAINS(text, "3 distinct optima");
        CHECK_STR_CONTAINS(text, "kmeans reached the best optimum (within 1.0 of -1449.9)");
        CHECK_STR_CONTAINS(text, "binary: 1 of 4 runs stopped with an error");
        CHECK_STR_CONTAINS(text, "non-decreasing");
        CHECK_STR_CONTAINS(text, "| BIC |");
        CHECK_STR_CONTAINS(text, "`data/train\\|ing.csv`");
        CHECK_STR_CONTAINS(text, "500 of the 800 points were drawn");
        CHECK_STR_CONTAINS(text, "seeded with 7");
        if (avail)
            CHECK(strstr(text, "gnuplot loglik.gp") == NULL);
        else
            CHECK_STR_CONTAINS(text, "gnuplot loglik.gp clusters.gp init_study.gp");
        /* The cluster sizes: labelled counts appear in the table. */
        size_t cnt[K] = {0};
        for (size_t i = 0; i < N; i++) cnt[labels[i]]++;
        char row[128];
        snprintf(row, sizeof row, "| 1 (0) | %.5g | [0, 0] | %zu |", m->weights[0], cnt[0]);
        CHECK_STR_CONTAINS(text, row);
        free(text);
    }

    /* ---- render = 0: scripts and data only, a stale PNG removed, report says how to render, no study */
    const char *dir0 = GMM_TEST_TMP "/report_norender";
    fresh_dir(dir0);
    {
        char p[1024];
        path_of(p, sizeof p, dir0, "loglik.png");
        FILE *stale = fopen(p, "wb");
        if (stale) {
            fputs("stale", stale);
            fclose(stale);
        }
    }
    gmm_model *md = make_model(1);
    CHECK(md != NULL);
    CHECK_INT_EQ(gmm_plot_loglik(dir0, md, 0), GMM_OK);
    CHECK_INT_EQ(gmm_plot_clusters(dir0, x, N, D, labels, md, 5000, 7, 0), GMM_OK); /* n <= n_show: all */
    CHECK_INT_EQ(gmm_plot_init_study(dir0, study, 3, 0), GMM_OK);
    for (size_t i = 0; i < 3; i++) CHECK(!file_exists(dir0, pngs[i]));
    CHECK(file_exists(dir0, "loglik.gp") && file_exists(dir0, "clusters.gp") && file_exists(dir0, "init_study.gp"));
    r.model = md;
    r.study = NULL;
    r.n_study = 0;
    r.plots_rendered = 0;
    r.aic = NAN;
    r.fit_seconds = INFINITY;
    CHECK_INT_EQ(gmm_write_report(dir0, &r), GMM_OK);
    text = check_report_common(dir0, md);
    if (text) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot loglik.gp clusters.gp`", dir0);
        CHECK_STR_CONTAINS(text, cmd);
        CHECK_STR_CONTAINS(text, "--init-study M");
        CHECK_STR_CONTAINS(text, "| AIC | n/a |");
        CHECK_STR_CONTAINS(text, "not non-decreasing");
        CHECK_STR_CONTAINS(text, "All 800 points are shown");
        CHECK(strstr(text, "| `kmeans` |") == NULL);
        free(text);
    }
    /* The scripts run by hand from inside the folder (the way the report tells the user). */
    if (avail) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot loglik.gp clusters.gp init_study.gp", dir0);
        CHECK_INT_EQ(system(cmd), 0);
        for (size_t i = 0; i < 3; i++) CHECK(is_png(dir0, pngs[i]));
    }

    /* ---- a gnuplot that cannot be run: GMM_ERR_IO with its exit status, no PNG left */
    if (avail) {
        const char *dirf = GMM_TEST_TMP "/report_fail";
        fresh_dir(dirf);
        const char *old = getenv("PATH");
        char *saved = old ? strdup(old) : NULL;
        setenv("PATH", "/nonexistent-gmm-test", 1);
        gmm_status st = gmm_plot_loglik(dirf, m, 1);
        if (saved) setenv("PATH", saved, 1);
        free(saved);
        CHECK_INT_EQ(st, GMM_ERR_IO);
        CHECK_STR_CONTAINS(gmm_last_error(), "exit status 127");
        CHECK_STR_CONTAINS(gmm_last_error(), "loglik.gp");
        CHECK(!file_exists(dirf, "loglik.png"));
        CHECK_INT_EQ(count_names_containing(dirf, ".png"), 0);
    }

    /* ---- one feature: the points on a line, ellipses as intervals */
    {
        const char *dir1 = GMM_TEST_TMP "/report_d1";
        fresh_dir(dir1);
        double w1[2] = {0.5, 0.5}, mu1[2] = {-1.0, 2.0}, c1[2] = {0.25, 0.5};
        gmm_model *m1 = NULL;
        CHECK_INT_EQ(gmm_model_from_params(2, 1, GMM_COV_FULL, w1, mu1, c1, &m1), GMM_OK);
        double x1[40];
        int l1[40];
        for (int i = 0; i < 40; i++) {
            x1[i] = i < 20 ? -1.0 + 0.05 * i : 2.0 - 0.05 * (i - 20);
            l1[i] = i < 20 ? 0 : 1;
        }
        if (m1) {
            CHECK_INT_EQ(gmm_plot_clusters(dir1, x1, 40, 1, l1, m1, 500, 1, avail), GMM_OK);
            CHECK(avail ? is_png(dir1, "clusters.png") : !file_exists(dir1, "clusters.png"));
        }
        gmm_model_free(m1);
    }

    /* ---- error paths */
    CHECK_INT_EQ(gmm_write_labels(GMM_TEST_TMP "/no/such/dir", labels, N), GMM_ERR_IO);
    CHECK_STR_CONTAINS(gmm_last_error(), GMM_TEST_TMP "/no/such/dir/labels.csv");
    {
        int saved = labels[3];
        labels[3] = K; /* out of range */
        r.model = m;
        CHECK_INT_EQ(gmm_write_report(dir0, &r), GMM_ERR_INVALID_ARG);
        CHECK_INT_EQ(gmm_plot_clusters(dir0, x, N, D, labels, m, 5000, 7, 0), GMM_ERR_INVALID_ARG);
        labels[3] = saved;
    }
    {
        gmm_model *bare = NULL; /* no fit record: no trace to plot */
        CHECK_INT_EQ(gmm_model_from_params(K, D, GMM_COV_FULL, W, MU, COV, &bare), GMM_OK);
        if (bare) CHECK_INT_EQ(gmm_plot_loglik(dir0, bare, 0), GMM_ERR_INVALID_ARG);
        gmm_model_free(bare);
    }

    gmm_model_free(m);
    gmm_model_free(md);
    free(x);
    free(labels);
    return check_exit();
}
