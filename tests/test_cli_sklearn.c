/*
 * test_cli_sklearn.c — scikit-learn's behaviours through the `gmm` program (argv[1] is its path), on the
 * bundled data: a chain of `--max-iter 1` warm starts converges at the fit scikit-learn's chain converges
 * at (the 6th) and at the iteration count of one whole fit; `--max-iter 0` gives the initial parameters;
 * initial weights are checked, not normalized; `--init-model` never changes `--covariance`; the printed
 * log-likelihood is the saved model's (what `gmm score` gives) and the lower bound is labelled as such;
 * emptied components are named on stderr and in report.md; predict and score never print NaN.
 */
#include "check.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *GMM;
static char TMP[256];
static char DATA[1024];

/* Runs `gmm ARGS` with stdout and stderr captured into TMP/out.txt and TMP/err.txt; returns the exit status. */
static int run_gmm(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out.txt' 2>'%s/err.txt'", GMM, args, TMP, TMP);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* A whole file, NUL-terminated (caller frees); NULL if missing. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (buf) buf[got] = '\0';
    return buf;
}

static char *out_text(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/out.txt", TMP);
    return slurp(p);
}

static char *err_text(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/err.txt", TMP);
    return slurp(p);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* The number after `key` in text, NAN when key is absent. */
static double number_after(const char *text, const char *key)
{
    const char *p = text ? strstr(text, key) : NULL;
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

/* 1 if `word` occurs in text with no letter right before or after it (case-insensitive). */
static int has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, word, wl) != 0) continue;
        if (!(p > text && isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[wl])) return 1;
    }
    return 0;
}

/* fit -> w1, then --warm-start w(i-1) -> wi, each with --max-iter 1, until one reports convergence. The
 * chain converges at the 6th fit, as scikit-learn 1.9.1's warm_start chain on these data does (random
 * states 0, 1 and 2), and at the iteration count of one whole fit from the same start. */
static void test_warm_start_chain(void)
{
    char args[4096];
    snprintf(args, sizeof args, "fit '%s' -k 4 --device cpu --quiet --out '%s/whole'", DATA, TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    char *out = out_text();
    int whole_iter = (int)number_after(out, "converged: yes after ");
    free(out);
    int converged_at = 0;
    for (int fit = 1; fit <= 20 && !converged_at; fit++) {
        if (fit == 1)
            snprintf(args, sizeof args, "fit '%s' -k 4 --max-iter 1 --device cpu --quiet --out '%s/w1'", DATA, TMP);
        else
            snprintf(
                args, sizeof args,
                "fit '%s' -k 4 --max-iter 1 --device cpu --quiet --warm-start '%s/w%d/model.json' --out '%s/w%d'",
                DATA, TMP, fit - 1, TMP, fit);
        if (run_gmm(args) != 0) {
            CHECK(0);
            break;
        }
        out = out_text();
        if (out && strstr(out, "converged: yes")) converged_at = fit;
        free(out);
    }
    fprintf(stderr, "warm-start chain converged at fit %d; one whole fit: %d iterations\n", converged_at, whole_iter);
    CHECK_INT_EQ(converged_at, 6);
    CHECK_INT_EQ(converged_at, whole_iter);
}

/* --max-iter 0: exit 0, the initialization as the model (n_iter 0, not converged, lower bound null in
 * model.json, -inf on stdout), no convergence warning (scikit-learn gives none for max_iter 0). */
static void test_max_iter_zero(void)
{
    char args[4096], path[512];
    snprintf(args, sizeof args, "fit '%s' -k 4 --max-iter 0 --device cpu --out '%s/zero'", DATA, TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    char *out = out_text(), *err = err_text();
    CHECK_STR_CONTAINS(out, "converged: no after 0 iterations");
    CHECK_STR_CONTAINS(out, "lower bound: -inf (no EM iteration");
    CHECK(err && !strstr(err, "did not converge"));
    free(out);
    free(err);
    snprintf(path, sizeof path, "%s/zero/model.json", TMP);
    char *model = slurp(path);
    CHECK_STR_CONTAINS(model, "\"n_iter\":\t0");
    CHECK_STR_CONTAINS(model, "\"lower_bound\":\tnull");
    free(model);
    snprintf(path, sizeof path, "%s/zero/report.md", TMP);
    char *rep = slurp(path);
    CHECK_STR_CONTAINS(rep, "no EM iteration");
    CHECK(rep && !has_word(rep, "nan"));
    free(rep);
    snprintf(args, sizeof args, "fit '%s' -k 4 --max-iter -1 --out '%s/neg'", DATA, TMP);
    CHECK_INT_EQ(run_gmm(args), 2);
    err = err_text();
    CHECK_STR_CONTAINS(err, "--max-iter expects a whole number from 0 to");
    free(err);
}

/* Initial weights as scikit-learn checks them: the file and the value are named, nothing is normalized. */
static void test_init_weights(void)
{
    char args[4096], path[512];
    snprintf(path, sizeof path, "%s/w_sum.json", TMP);
    write_file(path, "{\"weights\": [0.25, 0.25, 0.25, 0.3]}");
    snprintf(args, sizeof args, "fit '%s' -k 4 --init-model '%s' --out '%s/ws'", DATA, path, TMP);
    CHECK_INT_EQ(run_gmm(args), 1);
    char *err = err_text();
    CHECK_STR_CONTAINS(err, path);
    CHECK_STR_CONTAINS(err, "\"weights\" sum to 1.05; initial weights must sum to 1 within 1e-08");
    free(err);
    snprintf(path, sizeof path, "%s/w_range.json", TMP);
    write_file(path, "{\"weights\": [2, -0.5, -0.25, -0.25]}");
    snprintf(args, sizeof args, "fit '%s' -k 4 --init-model '%s' --out '%s/wr'", DATA, path, TMP);
    CHECK_INT_EQ(run_gmm(args), 1);
    err = err_text();
    CHECK_STR_CONTAINS(err, "\"weights\"[0] is 2; initial weights must be in [0, 1]");
    free(err);
    /* weights within the tolerance are kept as given: --max-iter 0 saves them unchanged */
    snprintf(path, sizeof path, "%s/w_ok.json", TMP);
    write_file(path, "{\"weights\": [0.125, 0.125, 0.25, 0.500000004]}");
    snprintf(args, sizeof args, "fit '%s' -k 4 --max-iter 0 --init-model '%s' --quiet --out '%s/wok'", DATA, path,
             TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    snprintf(path, sizeof path, "%s/wok/model.json", TMP);
    char *model = slurp(path);
    CHECK_STR_CONTAINS(model, "0.500000004");
    free(model);
}

/* --init-model of another covariance type is an error that says how to use it; --help states the rule;
 * --warm-start keeps its model's type and says so. */
static void test_init_model_type(void)
{
    char args[4096];
    snprintf(args, sizeof args, "fit '%s' -k 4 --covariance diag --device cpu --quiet --out '%s/diag'", DATA, TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    snprintf(args, sizeof args, "fit '%s' -k 4 --init-model '%s/diag/model.json' --out '%s/x'", DATA, TMP, TMP);
    CHECK_INT_EQ(run_gmm(args), 1);
    char *err = err_text();
    CHECK_STR_CONTAINS(err, "holds diag covariances but the fit asks for --covariance full (the default)");
    CHECK_STR_CONTAINS(err, "give --covariance diag");
    free(err);
    snprintf(args, sizeof args,
             "fit '%s' -k 4 --covariance diag --init-model '%s/diag/model.json' --quiet --out '%s/x'", DATA, TMP,
             TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    snprintf(args, sizeof args, "fit '%s' -k 4 --warm-start '%s/diag/model.json' --out '%s/x'", DATA, TMP, TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    err = err_text();
    CHECK_STR_CONTAINS(err, "--warm-start: diag covariances, as in");
    free(err);
    CHECK_INT_EQ(run_gmm("fit --help"), 0);
    char *out = out_text();
    CHECK_STR_CONTAINS(out, "full (default; with --warm-start, the model's)");
    CHECK_STR_CONTAINS(out, "its covariances must be of the --covariance type");
    free(out);
}

/* The printed log-likelihood is the saved model's (gmm score's total); the lower bound is labelled and is
 * the model.json's; BIC is the final model's. */
static void test_printed_loglik(void)
{
    char args[4096];
    snprintf(args, sizeof args, "fit '%s' -k 4 --tol 2e-6 --device cpu --quiet --out '%s/ll'", DATA, TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    char *fit = out_text();
    double final_ll = number_after(fit, "log-likelihood of the final model: ");
    double lower = number_after(fit, "(mean per point ");
    const char *lb_line = fit ? strstr(fit,
                                       "lower bound (scikit-learn's lower_bound_, parameters entering iteration ")
                              : NULL;
    CHECK(lb_line != NULL);
    double lb_mean = lb_line ? number_after(strstr(lb_line, "(mean per point "), "(mean per point ") : NAN;
    double bic = number_after(fit, "BIC: ");
    snprintf(args, sizeof args, "score '%s/ll/model.json' '%s' --device cpu", TMP, DATA);
    CHECK_INT_EQ(run_gmm(args), 0);
    char *score = out_text();
    double score_total = number_after(score, "total log-likelihood: ");
    double score_bic = number_after(score, "BIC: ");
    fprintf(stderr, "fit prints %.4f, score gives %.6f; lower bound %.6f per point\n", final_ll, score_total,
            lb_mean);
    CHECK_NEAR(final_ll, score_total, 1e-4, 0);
    CHECK_NEAR(lower * 5000.0, score_total, 5e-3, 0); /* the first "(mean per point" is the final model's */
    CHECK_NEAR(bic, score_bic, 1e-4, 0);
    CHECK(lb_mean < final_ll / 5000.0); /* EM's last step still raised the log-likelihood */
    free(fit);
    free(score);
}

/* k = 10 on 2 distinct points: the fit succeeds (as scikit-learn's) and names the 8 emptied components on
 * stderr and in report.md, "component j (label j-1)". */
static void test_empty_components(void)
{
    char path[512], args[4096];
    snprintf(path, sizeof path, "%s/two.csv", TMP);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    for (int i = 0; i < 100; i++) fputs(i < 50 ? "0,0\n" : "1,2\n", f);
    fclose(f);
    snprintf(args, sizeof args, "fit '%s' -k 10 --device cpu --out '%s/two'", path, TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    char *err = err_text();
    CHECK_STR_CONTAINS(err, "warning: 8 of 10 components emptied");
    CHECK_STR_CONTAINS(err, "component 10 (label 9) at iteration 1");
    free(err);
    snprintf(path, sizeof path, "%s/two/report.md", TMP);
    char *rep = slurp(path);
    CHECK_STR_CONTAINS(rep, "**Warning: 8 of 10 components emptied.**");
    CHECK_STR_CONTAINS(rep, "component 10 (label 9) at iteration 1");
    free(rep);
}

/* A row whose density underflows everywhere: finite in log space (1e10), or exit 1 naming the row (1e200);
 * never NaN. */
static void test_far_rows(void)
{
    char args[4096], path[512], model[512];
    snprintf(args, sizeof args, "fit '%s' -k 4 --device cpu --quiet --out '%s/far'", DATA, TMP);
    CHECK_INT_EQ(run_gmm(args), 0);
    snprintf(model, sizeof model, "%s/far/model.json", TMP);
    snprintf(path, sizeof path, "%s/far.csv", TMP);
    write_file(path, "0,0\n1e10,0\n1e150,-1e150\n");
    snprintf(args, sizeof args, "score '%s' '%s' --device cpu", model, path);
    CHECK_INT_EQ(run_gmm(args), 0);
    char *out = out_text();
    CHECK(out && !has_word(out, "nan") && !has_word(out, "inf"));
    free(out);
    snprintf(args, sizeof args, "predict --proba '%s' '%s' --device cpu", model, path);
    CHECK_INT_EQ(run_gmm(args), 0);
    out = out_text();
    CHECK(out && !has_word(out, "nan"));
    free(out);
    write_file(path, "0,0\n1e200,0\n");
    const char *cmds[3] = {"score", "predict", "predict --proba"};
    for (int c = 0; c < 3; c++) {
        snprintf(args, sizeof args, "%s '%s' '%s' --device cpu", cmds[c], model, path);
        CHECK_INT_EQ(run_gmm(args), 1);
        char *err = err_text();
        CHECK_STR_CONTAINS(err, "data row 1 (0-based)");
        free(err);
        out = out_text();
        CHECK(out && !has_word(out, "nan"));
        free(out);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli_sklearn PATH-TO-gmm\n");
        return 2;
    }
    GMM = argv[1];
    snprintf(TMP, sizeof TMP, "%s/cli_sklearn", GMM_TEST_TMP);
    mkdir(GMM_TEST_TMP, 0777);
    mkdir(TMP, 0777);
    snprintf(DATA, sizeof DATA, "%s/data/TrainingData_GMM.csv", GMM_SOURCE_DIR);
    test_warm_start_chain();
    test_max_iter_zero();
    test_init_weights();
    test_init_model_type();
    test_printed_loglik();
    test_empty_components();
    test_far_rows();
    return check_exit();
}
