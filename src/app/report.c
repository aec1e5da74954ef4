/*
 * report.c — the text outputs of `gmm fit` beyond the model file: labels.csv (one 0-based component per
 * input row), loglik.csv (the best run's trace) and report.md, which answers the assignment's five
 * questions in order from the fitted model, its fit record, the labels and the optional --init-study.
 * Every file is written whole or not at all (gmm_atomic_*). Every number in report.md comes from the
 * inputs; a non-finite value is printed as "n/a". The pictures themselves are drawn by plot.c.
 */
#include "gmm_internal.h"
#include "report.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Beyond these sizes report.md abbreviates mean vectors and covariance matrices (model.json has all). */
#define REPORT_FULL_MEAN_D 16
#define REPORT_FULL_COV_D 8
/* Components of the pairwise separation matrix printed in full. */
#define REPORT_PAIR_TABLE_K 8
/* Optima closer than this (total log-likelihood) count as the same optimum in the init study. */
#define STUDY_SAME_OPTIMUM 1.0
/* Two components whose means are closer than this (Mahalanobis, average covariance) describe one cluster. */
#define SAME_COMPONENT_DELTA 0.5
/* Work cap (~flops) for the pairwise Mahalanobis distances of question 5. */
#define PAIR_WORK_CAP 4e9

/* ------------------------------------------------------------------------------------- small helpers */

/* A formatted number, returned by value so that several can appear in one printf call. */
typedef struct numstr {
    char s[64];
} numstr;

/* v with sig significant digits (%g), or "n/a" when v is not finite. */
static numstr fg(double v, int sig)
{
    numstr r;
    if (!isfinite(v))
        snprintf(r.s, sizeof r.s, "n/a");
    else
        snprintf(r.s, sizeof r.s, "%.*g", sig, v == 0.0 ? 0.0 : v); /* no "-0" */
    return r;
}

/* A log-likelihood-like value: %.{sig}g, but integral digits in full (no exponent) when |v| >= 10^sig;
 * "n/a" when not finite. */
static numstr fll(double v, int sig)
{
    numstr r;
    if (!isfinite(v))
        snprintf(r.s, sizeof r.s, "n/a");
    else if (fabs(v) >= pow(10.0, sig) && fabs(v) < 1e30)
        snprintf(r.s, sizeof r.s, "%.0f", v);
    else
        snprintf(r.s, sizeof r.s, "%.*g", sig, v == 0.0 ? 0.0 : v);
    return r;
}

/* A fraction as a percentage with one decimal ("23.4%"), "n/a" when not finite. */
static numstr fpct(double frac)
{
    numstr r;
    if (!isfinite(frac))
        snprintf(r.s, sizeof r.s, "n/a");
    else
        snprintf(r.s, sizeof r.s, "%.1f%%", 100.0 * frac);
    return r;
}

/* A duration in seconds in a readable unit ("1.23 s", "4.56 ms", "7.8 us"), "n/a" when not finite. */
static numstr fsec(double s)
{
    numstr r;
    if (!isfinite(s) || s < 0)
        snprintf(r.s, sizeof r.s, "n/a");
    else if (s >= 1.0)
        snprintf(r.s, sizeof r.s, "%.3g s", s);
    else if (s >= 1e-3)
        snprintf(r.s, sizeof r.s, "%.3g ms", s * 1e3);
    else
        snprintf(r.s, sizeof r.s, "%.3g us", s * 1e6);
    return r;
}

/* Writes s as a Markdown code span usable inside a table cell: a backtick fence longer than any run of
 * backticks in s, '|' escaped, control characters replaced by spaces. */
static void md_code(FILE *f, const char *s)
{
    size_t run = 0, longest = 0;
    for (const char *p = s; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    for (size_t i = 0; i <= longest; i++) fputc('`', f);
    if (longest) fputc(' ', f);
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            fputs("\\|", f);
        else if ((unsigned char)*p < 0x20)
            fputc(' ', f);
        else
            fputc(*p, f);
    }
    if (longest) fputc(' ', f);
    for (size_t i = 0; i <= longest; i++) fputc('`', f);
}

/* Writes s quoted for a POSIX shell (single quotes, ' written as '\''). */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

static int cmp_double_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The median of v (n >= 1 finite values), sorting v in place (descending). */
static double median_sorted_desc(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double_desc);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------------------------------ labels.csv */

/* Writes DIR/labels.csv: n lines, line i holding labels[i] (0-based component) — formatted into a buffer
 * by hand, since n may be 10^9. */
gmm_status gmm_write_labels(const char *dir, const int *labels, size_t n)
{
    if (!dir || (!labels && n > 0))
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_write_labels: dir and labels are required");
    gmm_atomic_file af;
    gmm_status st = gmm_atomic_open_in(&af, dir, "labels.csv");
    if (st != GMM_OK) return st;
    char buf[1 << 16];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (used > sizeof buf - 16) {
            fwrite(buf, 1, used, af.f);
            used = 0;
        }
        long long v = labels[i];
        char tmp[24];
        int t = 0;
        int neg = v < 0;
        unsigned long long u = neg ? (unsigned long long)(-v) : (unsigned long long)v;
        do {
            tmp[t++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (neg) buf[used++] = '-';
        while (t) buf[used++] = tmp[--t];
        buf[used++] = '\n';
    }
    if (used) fwrite(buf, 1, used, af.f);
    return gmm_atomic_commit(&af);
}

/* ------------------------------------------------------------------------------------------ loglik.csv */

/* Writes DIR/loglik.csv: "iteration,loglik,change,seconds", one row per iteration of the best run
 * (iteration 1-based; loglik %.17g; change = loglik - previous loglik, empty on the first row; seconds
 * %.10g, empty when unknown). A non-finite value is written as an empty field. A model without a fit
 * record gives the header only. */
gmm_status gmm_write_loglik(const char *dir, const gmm_model *model)
{
    if (!dir || !model) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_write_loglik: dir and model are required");
    int len = 0, slen = 0;
    const double *trace = gmm_model_loglik_trace(model, &len);
    const double *secs = gmm_model_iter_seconds(model, &slen);
    gmm_atomic_file af;
    gmm_status st = gmm_atomic_open_in(&af, dir, "loglik.csv");
    if (st != GMM_OK) return st;
    fputs("iteration,loglik,change,seconds\n", af.f);
    for (int i = 0; i < len; i++) {
        fprintf(af.f, "%d,", i + 1);
        if (isfinite(trace[i])) fprintf(af.f, "%.17g", trace[i]);
        fputc(',', af.f);
        if (i > 0 && isfinite(trace[i] - trace[i - 1])) fprintf(af.f, "%.17g", trace[i] - trace[i - 1]);
        fputc(',', af.f);
        if (secs && i < slen && isfinite(secs[i])) fprintf(af.f, "%.10g", secs[i]);
        fputc('\n', af.f);
    }
    return gmm_atomic_commit(&af);
}

/* ------------------------------------------------------------------------------------------- report.md */

/* What the sections of report.md share. */
typedef struct rep {
    FILE *f;
    const char *dir;
    const gmm_report *r;
    const gmm_model *m;
    size_t k, d, n;
    const double *trace;
    int len;
    const double *secs;
    int slen;
    size_t *counts;  /* (k) points labelled with each component */
    double ll_final; /* total log-likelihood of the final model (gmm_report.loglik) */
    double *logdet;  /* (k) log det Sigma_k */
    int n_decrease;  /* iterations whose log-likelihood was below the previous one */
    double max_drop; /* largest such decrease (> 0), 0 when none */
    int max_drop_iter;
} rep;

/* Writes "[v1, v2, ...]" with 5 significant digits; at most max values, then "..., (N more)". */
static void write_vector(FILE *f, const double *v, size_t n, size_t max)
{
    fputc('[', f);
    size_t shown = n <= max ? n : max;
    for (size_t i = 0; i < shown; i++) fprintf(f, "%s%s", i ? ", " : "", fg(v[i], 5).s);
    if (shown < n) fprintf(f, ", ... (%zu more)", n - shown);
    fputc(']', f);
}

size_t gmm_count_emptied(const gmm_model *m)
{
    size_t n_empty = 0;
    for (size_t c = 0; c < gmm_model_n_components(m); c++) n_empty += gmm_model_empty_since(m, c) > 0;
    return n_empty;
}

void gmm_write_emptied(FILE *f, const gmm_model *m)
{
    for (size_t c = 0, shown = 0; c < gmm_model_n_components(m); c++)
        if (gmm_model_empty_since(m, c) > 0)
            fprintf(f, "%s component %zu (label %zu) at iteration %d", shown++ ? "," : "", c + 1, c,
                    gmm_model_empty_since(m, c));
}

/* The warning block naming the components the fit's E-steps left empty (none: nothing is written). */
static void rep_empty_warning(rep *p)
{
    FILE *f = p->f;
    const size_t n_empty = gmm_count_emptied(p->m);
    if (n_empty == 0) return;
    fprintf(f,
            "> **Warning: %zu of %zu components emptied.** Their total responsibility fell below %g points:", n_empty,
            p->k, GMM_EMPTY_FLOOR);
    gmm_write_emptied(f, p->m);
    fputs(". As scikit-learn does, EM kept them (N_k + 10 eps: a weight of about 1e-16, a covariance of reg_covar "
          "I); they explain no data, so fewer components describe the data as well.\n\n",
          f);
}

/* The summary block before the five questions. */
static void rep_summary(rep *p)
{
    FILE *f = p->f;
    const gmm_report *r = p->r;
    const gmm_options *o = r->options;
    fputs("# Gaussian mixture model: training report\n\n", f);
    fputs("Written by `gmm fit`: a Gaussian mixture model trained by expectation maximization (EM). The five "
          "sections below answer the assignment's questions in order. Components are numbered 1..K in this "
          "report and in the pictures; `labels.csv` holds each point's component as a 0-based index "
          "(component j here is label j-1 there).\n\n",
          f);
    fputs("| quantity | value |\n|---|---|\n", f);
    fputs("| data file | ", f);
    md_code(f, r->data_path ? r->data_path : "(in memory)");
    fputs(" |\n", f);
    fprintf(f, "| points (n) | %zu |\n| features (d) | %zu |\n| components (k) | %zu |\n", p->n, p->d, p->k);
    fprintf(f, "| covariance type | %s |\n", gmm_covariance_name(p->m->cov_type));
    if (o->weights_init && o->means_init && o->precisions_init)
        fputs("| initialization | given weights, means and precisions (--init-model / --warm-start) |\n", f);
    else if (o->weights_init || o->means_init || o->precisions_init)
        fprintf(f, "| initialization | %s, then given%s%s%s (--init-model) |\n", gmm_init_name(o->init),
                o->weights_init ? " weights" : "", o->means_init ? " means" : "",
                o->precisions_init ? " precisions" : "");
    else
        fprintf(f, "| initialization | %s |\n", gmm_init_name(o->init));
    fprintf(f, "| n_init | %d (best run: %d) |\n", o->n_init, p->m->best_run + 1);
    fprintf(f, "| seed | %" PRIu64 " |\n", o->seed);
    fprintf(f, "| tol | %s (on the change of the mean per-point log-likelihood) |\n", fg(o->tol, 6).s);
    fprintf(f, "| reg_covar | %s |\n", fg(o->reg_covar, 6).s);
    fprintf(f, "| max_iter | %d |\n", o->max_iter);
    fputs("| device | ", f);
    md_code(f, r->device ? r->device : "unknown");
    fputs(" |\n", f);
    fprintf(f, "| converged | %s |\n", p->m->converged ? "yes" : "no");
    fprintf(f, "| EM iterations | %d |\n", p->m->n_iter);
    fprintf(f,
            "| final total log-likelihood | %s (of the final model, as `gmm score` computes it; BIC and AIC "
            "use it) |\n",
            fll(p->ll_final, 10).s);
    if (p->m->n_iter > 0)
        fprintf(f,
                "| lower bound (scikit-learn's lower_bound_: mean per-point log-likelihood of the parameters "
                "entering iteration %d) | %s |\n",
                p->m->n_iter, fg(p->m->lower_bound, 10).s);
    else
        fputs("| lower bound | none: no EM iteration (max_iter 0; scikit-learn's lower_bound_ is then -inf) |\n", f);
    fprintf(f, "| BIC | %s |\n| AIC | %s |\n", fll(r->bic, 10).s, fll(r->aic, 10).s);
    fprintf(f, "| free parameters | %zu |\n", gmm_n_parameters(p->m));
    if (o->n_init == 1)
        fprintf(f, "| fit time | %s |\n", fsec(r->fit_seconds).s);
    else
        fprintf(f, "| fit time | %s (all %d runs) |\n", fsec(r->fit_seconds).s, o->n_init);
    double tsum = 0.0;
    for (int i = 0; i < p->slen; i++) tsum += p->secs[i];
    fprintf(f, "| mean time per EM iteration | %s |\n\n", p->slen > 0 ? fsec(tsum / p->slen).s : "n/a");
    rep_empty_warning(p);
    if (!r->plots_rendered) {
        fputs("> **Pictures not rendered.** gnuplot with the pngcairo terminal was not available, so the PNG "
              "files linked below do not exist yet; their data (`.dat`) and gnuplot scripts (`.gp`) are in "
              "this folder. Render them with\n> `",
              f);
        fputs("cd ", f);
        sh_quote(f, r->shown_dir ? r->shown_dir : p->dir);
        fprintf(f, " && gnuplot loglik.gp clusters.gp%s`\n\n", r->study && r->n_study > 0 ? " init_study.gp" : "");
    }
}

/* Question 1: the log-likelihood trace. */
static void rep_q1(rep *p)
{
    FILE *f = p->f;
    const gmm_options *o = p->r->options;
    fputs("## 1. Log-likelihood during training\n\n", f);
    if (p->len < 1 || !p->trace) {
        if (o->max_iter == 0)
            fputs("max_iter is 0: the model is the initialization itself and no EM iteration ran (scikit-learn's "
                  "max_iter = 0), so there is nothing to plot.\n\n",
                  f);
        else
            fputs("The model carries no log-likelihood trace (it was not produced by a fit), so there is nothing "
                  "to plot.\n\n",
                  f);
        return;
    }
    fputs("![Total log-likelihood per EM iteration](loglik.png)\n\n", f);
    const double *t = p->trace;
    int len = p->len;
    fprintf(f,
            "The picture plots the total log-likelihood sum_i log p(x_i) (natural log, summed over all %zu "
            "points) of the parameters entering each EM iteration of the best run, against the iteration "
            "number; `loglik.csv` holds the same values with 17 digits, the change per iteration and the "
            "seconds each iteration took.\n\n",
            p->n);
    fprintf(f, "EM ran **%d iteration%s** and %s. ", len, len == 1 ? "" : "s",
            p->m->converged ? "**converged**" : "**did not converge**");
    fprintf(f,
            "Training stops when the mean per-point log-likelihood changes by less than tol = %s between "
            "iterations (a change of the total below tol x n = %s), or after max_iter = %d iterations. ",
            fg(o->tol, 6).s, fg(o->tol * (double)p->n, 6).s, o->max_iter);
    fprintf(f, "The log-likelihood went from %s at iteration 1 to %s at iteration %d (a gain of %s).",
            fll(t[0], 10).s, fll(t[len - 1], 10).s, len, fll(t[len - 1] - t[0], 8).s);
    if (len > 1) {
        int gi = 1;
        for (int i = 2; i < len; i++)
            if (t[i] - t[i - 1] > t[gi] - t[gi - 1]) gi = i;
        fprintf(f, " The largest single step was %s, from iteration %d to %d.", fll(t[gi] - t[gi - 1], 8).s, gi,
                gi + 1);
    }
    fputs("\n\n", f);

    fputs("| iteration | total log-likelihood | change from previous |\n|---:|---:|---:|\n", f);
    int head = len <= 12 ? len : 5;
    int tail_from = len <= 12 ? len : len - 5;
    for (int i = 0; i < len; i++) {
        if (i == head && i < tail_from) {
            fprintf(f, "| ... | (%d iterations omitted) | |\n", tail_from - head);
            i = tail_from;
        }
        fprintf(f, "| %d | %s | %s |\n", i + 1, fll(t[i], 12).s, i ? fg(t[i] - t[i - 1], 6).s : "");
    }
    fputs("\n", f);
    if (len < 2) {
        fputs("With a single iteration there is no step to check for monotonicity.\n\n", f);
    } else if (p->n_decrease == 0) {
        fputs("The trace is **non-decreasing**: no iteration lowered the log-likelihood, as EM guarantees.\n\n", f);
    } else {
        fprintf(f,
                "The trace is **not non-decreasing**: the log-likelihood fell at %d of %d steps, by at most %s "
                "(iteration %d to %d, %s of the total). EM itself never lowers the likelihood; ",
                p->n_decrease, len - 1, fg(p->max_drop, 6).s, p->max_drop_iter, p->max_drop_iter + 1,
                fg(p->max_drop / fabs(t[p->max_drop_iter]), 3).s);
        double rel = p->max_drop / fabs(t[p->max_drop_iter]);
        if (rel < 1e-6)
            fprintf(f, "a drop this small relative to the total comes from rounding%s.\n\n",
                    o->reg_covar > 0 ? " and from reg_covar (which makes the M-step not an exact maximization)" : "");
        else
            fputs("a drop this large is more than rounding or reg_covar explain and deserves a look (a re-seeded "
                  "component, or a bug).\n\n",
                  f);
    }
}

/* Question 2: the parameters, the formula, the cluster sizes. */
static void rep_q2(rep *p)
{
    FILE *f = p->f;
    const gmm_model *m = p->m;
    size_t k = p->k, d = p->d;
    fputs("## 2. The learned model\n\n", f);
    fprintf(f,
            "The learned density is a mixture of K = %zu Gaussians with %s covariances in d = %zu "
            "dimension%s:\n\n```text\n",
            k, gmm_covariance_name(m->cov_type), d, d == 1 ? "" : "s");
    fprintf(f, "p(x) = sum_{k=1..%zu} alpha_k N(x | mu_k, Sigma_k)\n", k);
    for (size_t c = 0; c < k; c++) {
        if (c % 3 == 0)
            fputs(c == 0 ? "     = " : "\n     + ", f);
        else
            fputs(" + ", f);
        fprintf(f, "%s N(x | mu_%zu, Sigma_%zu)", fg(m->weights[c], 5).s, c + 1, c + 1);
    }
    fprintf(f,
            "\n\nN(x | mu, Sigma) = (2 pi)^(-d/2) det(Sigma)^(-1/2) exp(-(x - mu)^T Sigma^(-1) (x - mu) / 2),"
            "  d = %zu\n```\n\n",
            d);
    fputs("with these parameters (5 significant digits; `model.json` holds every parameter at full "
          "precision):\n\n```text\nalpha = ",
          f);
    write_vector(f, m->weights, k, k);
    fputs("\n\nmu = [", f);
    for (size_t c = 0; c < k; c++) {
        if (c) fputs(",\n      ", f);
        write_vector(f, m->means + c * d, d, REPORT_FULL_MEAN_D);
    }
    fputs("]\n", f);
    for (size_t c = 0; c < k; c++) {
        const double *cov = m->covariances + c * d * d;
        if (d <= REPORT_FULL_COV_D) {
            char lead[48];
            int w = snprintf(lead, sizeof lead, "Sigma_%zu = [", c + 1);
            fprintf(f, "\n%s", lead);
            for (size_t i = 0; i < d; i++) {
                if (i) fprintf(f, ",\n%*s", w, "");
                write_vector(f, cov + i * d, d, d);
            }
            fputs("]\n", f);
        } else {
            double diag[REPORT_FULL_MEAN_D];
            size_t nd = d < REPORT_FULL_MEAN_D ? d : REPORT_FULL_MEAN_D;
            for (size_t i = 0; i < nd; i++) diag[i] = cov[i * d + i];
            fprintf(f, "\ndiag(Sigma_%zu) = ", c + 1);
            write_vector(f, diag, nd, nd);
            if (nd < d) fprintf(f, " (first %zu of %zu)", nd, d);
            fputs("\n", f);
        }
    }
    fputs("```\n\n", f);
    if (d > REPORT_FULL_COV_D)
        fprintf(f,
                "With d = %zu only the variances (diagonals) are printed; the full %zu x %zu matrices are in "
                "`model.json`.\n\n",
                d, d, d);

    fputs("Cluster sizes (Problem 2: every point is assigned to its most responsible component; the weights "
          "alpha_k are the soft shares):\n\n",
          f);
    fputs("| component (label) | alpha_k | mean mu_k | points labelled k | share of points |\n"
          "|---:|---:|---|---:|---:|\n",
          f);
    for (size_t c = 0; c < k; c++) {
        fprintf(f, "| %zu (%zu) | %s | ", c + 1, c, fg(m->weights[c], 5).s);
        write_vector(f, m->means + c * d, d, 4);
        fprintf(f, " | %zu | %s |\n", p->counts[c], fpct(p->n ? (double)p->counts[c] / (double)p->n : NAN).s);
    }
    fprintf(f, "| total | %s | | %zu | %s |\n\n", fg(1.0, 5).s, p->n, fpct(p->n ? 1.0 : NAN).s);
}

/* Reads the header "# gmm clusters: shown=M n=N seed=S" of DIR/clusters_points.dat and counts the shown
 * points per component (third column, 1-based) into shown_per (k). Returns 1 when the file was read. */
static int read_cluster_sample(const rep *p, size_t *shown, size_t *n_all, uint64_t *seed, size_t *shown_per)
{
    char *path = gmm_path_join(p->dir, "clusters_points.dat");
    if (!path) return 0;
    FILE *in = fopen(path, "r");
    free(path);
    if (!in) return 0;
    char line[512];
    int ok = 0;
    if (fgets(line, sizeof line, in) &&
        sscanf(line, "# gmm clusters: shown=%zu n=%zu seed=%" SCNu64, shown, n_all, seed) == 3) {
        ok = 1;
        memset(shown_per, 0, p->k * sizeof *shown_per);
        while (fgets(line, sizeof line, in)) {
            if (line[0] == '#') continue;
            char a[64], b[64];
            long comp = 0;
            if (sscanf(line, "%63s %63s %ld", a, b, &comp) != 3 || comp < 1 || (size_t)comp > p->k) {
                ok = 2; /* header fine, rows not as expected: counts unusable */
                continue;
            }
            shown_per[comp - 1]++;
        }
    }
    fclose(in);
    return ok;
}

/* Question 3: the picture of the random points. */
static void rep_q3(rep *p)
{
    FILE *f = p->f;
    fputs("## 3. 500 random points by cluster\n\n", f);
    fputs("![Random points coloured by component, with means and 1- and 2-sigma ellipses](clusters.png)\n\n", f);
    size_t shown = 0, n_all = 0;
    uint64_t seed = 0;
    size_t *per = gmm_xcalloc(p->k, sizeof *per);
    int got = per ? read_cluster_sample(p, &shown, &n_all, &seed, per) : 0;
    if (got && shown < n_all)
        fprintf(f,
                "%zu of the %zu points were drawn uniformly at random without replacement (a partial "
                "Fisher-Yates shuffle of the row indices driven by gmm's xoshiro256** generator seeded with "
                "%" PRIu64 ", so the same seed draws the same points). ",
                shown, n_all, seed);
    else if (got)
        fprintf(f, "All %zu points are shown (there are no more than the %zu the picture draws). ", n_all, shown);
    else
        fputs("(`clusters_points.dat`, which records how the points were drawn, was not found in this folder, so "
              "the picture has not been drawn for this fit.) ",
              f);
    fputs("Each point has the colour (and, beyond 12 components, the marker shape) of the component it was "
          "assigned to in Problem 2 (`labels.csv`). The black stars mark the component means mu_k and carry "
          "the component number. ",
          f);
    fprintf(f,
            "The solid ellipse of each component is its 1-sigma contour {x : (x - mu_k)^T Sigma_k^(-1) (x - mu_k) "
            "= 1}, the dashed one its 2-sigma contour (Mahalanobis distance 2); a two-dimensional Gaussian "
            "puts %s of its mass inside the first and %s inside the second. The ellipses are computed from the "
            "eigen-decomposition of each covariance's 2 x 2 block (100 points each, `clusters_ellipses.dat`); "
            "both axes have the same scale, so the shapes are true to the data.",
            fpct(1.0 - exp(-0.5)).s, fpct(1.0 - exp(-2.0)).s);
    if (p->d > 2)
        fprintf(f,
                " With d = %zu the picture shows features 1 and 2 only, and the ellipses are those of the "
                "marginal distribution of these two features.",
                p->d);
    if (p->d == 1)
        fputs(" With a single feature the points are drawn on the line y = 0 and the ellipses reduce to "
              "intervals mu_k +- sigma_k and mu_k +- 2 sigma_k.",
              f);
    fputs("\n\n", f);
    if (got == 1 && shown > 0) {
        fputs("Points shown per component:", f);
        for (size_t c = 0; c < p->k; c++)
            fprintf(f, "%s component %zu: %zu (%s)", c ? ";" : "", c + 1, per[c],
                    fpct((double)per[c] / (double)shown).s);
        fputs(".\n\n", f);
    }
    free(per);
}

/* One group of nearly equal optima in the init study: values within STUDY_SAME_OPTIMUM of its top. */
typedef struct optimum_group {
    double top, bottom;
    int count;
    int *per_method; /* (n_study) runs of each method in this group */
} optimum_group;

/* One finished study run's converged log-likelihood and its method, for sorting. */
typedef struct study_value {
    double v;
    int method;
} study_value;

static int cmp_study_value_desc(const void *a, const void *b)
{
    double x = ((const study_value *)a)->v, y = ((const study_value *)b)->v;
    return (x < y) - (x > y);
}

/* One method's finished runs, measured against the best value over all methods. */
typedef struct method_summary {
    int n_fin;               /* finished runs with a finite log-likelihood */
    double share;            /* of those, the share within STUDY_SAME_OPTIMUM of the best (NaN when none) */
    double mean_it;          /* mean EM iterations over the n_ok runs (NaN when none) */
    double gap_mean;         /* mean distance below the best of the runs not within it (0 when none) */
    double gap_max;          /* the largest such distance (0 when none) */
    double min, median, max; /* of the finite log-likelihoods (NaN when none) */
} method_summary;

/* What the init study's section is written from: computed from the study alone. */
typedef struct study_summary {
    double best;           /* the highest finite converged log-likelihood (-inf when none) */
    size_t total_ok;       /* finished runs with a finite log-likelihood, all methods */
    method_summary *per;   /* (n_study) */
    optimum_group *groups; /* (ng) distinct optima, best first */
    size_t ng;
    int *group_counts; /* (total_ok x n_study) storage of the groups' per_method */
} study_summary;

static void study_summary_free(study_summary *ss)
{
    free(ss->per);
    free(ss->groups);
    free(ss->group_counts);
}

/* The best finite converged log-likelihood over all methods and how many runs have one. */
static void study_best(const gmm_study_method *s, int ns, double *best, size_t *total_ok)
{
    *best = -INFINITY;
    *total_ok = 0;
    for (int mi = 0; mi < ns; mi++)
        for (int r = 0; r < s[mi].n_ok; r++) {
            if (isfinite(s[mi].loglik[r])) {
                (*total_ok)++;
                if (s[mi].loglik[r] > *best) *best = s[mi].loglik[r];
            }
        }
}

/* Summarizes one method against best; tmp has room for its n_ok values. */
static method_summary summarize_method(const gmm_study_method *sm, double best, double *tmp)
{
    method_summary ms;
    size_t nf = 0, within = 0;
    double it = 0.0, gsum = 0.0, gmax = 0.0;
    int nworse = 0;
    for (int r = 0; r < sm->n_ok; r++) {
        double v = sm->loglik[r];
        it += sm->n_iter[r];
        if (!isfinite(v)) continue;
        tmp[nf++] = v;
        if (v >= best - STUDY_SAME_OPTIMUM) {
            within++;
        } else {
            nworse++;
            gsum += best - v;
            if (best - v > gmax) gmax = best - v;
        }
    }
    ms.n_fin = (int)nf;
    ms.share = nf ? (double)within / (double)nf : NAN;
    ms.mean_it = sm->n_ok ? it / sm->n_ok : NAN;
    ms.gap_mean = nworse ? gsum / nworse : 0.0;
    ms.gap_max = gmax;
    ms.min = ms.median = ms.max = NAN;
    if (nf) {
        ms.median = median_sorted_desc(tmp, nf);
        ms.max = tmp[0];
        ms.min = tmp[nf - 1];
    }
    return ms;
}

/* Distinct optima: all finished values, sorted descending, grouped greedily within STUDY_SAME_OPTIMUM of a
 * group's top. Needs ss->best, ss->total_ok >= 1 and the groups' storage. */
static gmm_status group_optima(const gmm_study_method *s, int ns, study_summary *ss)
{
    study_value *vals = gmm_xmalloc(ss->total_ok * sizeof *vals);
    if (!vals) return GMM_ERR_NOMEM;
    size_t nv = 0;
    for (int mi = 0; mi < ns; mi++)
        for (int r = 0; r < s[mi].n_ok; r++)
            if (isfinite(s[mi].loglik[r])) vals[nv++] = (study_value){s[mi].loglik[r], mi};
    qsort(vals, nv, sizeof *vals, cmp_study_value_desc);
    size_t ng = 0;
    for (size_t i = 0; i < nv; i++) {
        if (ng == 0 || vals[i].v < ss->groups[ng - 1].top - STUDY_SAME_OPTIMUM) {
            ss->groups[ng].top = vals[i].v;
            ss->groups[ng].per_method = ss->group_counts + ng * (size_t)ns;
            ng++;
        }
        optimum_group *g = &ss->groups[ng - 1];
        g->bottom = vals[i].v;
        g->count++;
        g->per_method[vals[i].method]++;
    }
    free(vals);
    ss->ng = ng;
    return GMM_OK;
}

/* Computes the whole summary of the study s (ns methods); study_summary_free releases it. */
static gmm_status summarize_study(const gmm_study_method *s, int ns, study_summary *ss)
{
    memset(ss, 0, sizeof *ss);
    study_best(s, ns, &ss->best, &ss->total_ok);
    size_t cap = ss->total_ok ? ss->total_ok : 1;
    double *tmp = gmm_xmalloc(cap * sizeof *tmp);
    ss->per = gmm_xcalloc((size_t)ns, sizeof *ss->per);
    ss->groups = gmm_xcalloc(cap, sizeof *ss->groups);
    ss->group_counts = gmm_xcalloc(cap * (size_t)ns, sizeof *ss->group_counts);
    gmm_status st = GMM_OK;
    if (!tmp || !ss->per || !ss->groups || !ss->group_counts) {
        st = GMM_ERR_NOMEM;
    } else {
        for (int mi = 0; mi < ns; mi++) ss->per[mi] = summarize_method(&s[mi], ss->best, tmp);
        if (ss->total_ok > 0) st = group_optima(s, ns, ss);
    }
    free(tmp);
    if (st != GMM_OK) study_summary_free(ss);
    return st;
}

/* The study's introduction, its table (one row per method) and its picture. */
static void rep_study_table(rep *p, const study_summary *ss)
{
    FILE *f = p->f;
    const gmm_study_method *s = p->r->study;
    fputs("To measure the effect of the initialization, the same data were fitted from several seeds with each "
          "initialization method (same k, tol, reg_covar and max_iter). A run *finishes* when EM ends normally "
          "(converged or at max_iter); the others stopped with an error (a covariance that is not positive "
          "definite). \"Within 1.0\" means a converged total log-likelihood at most "
          "1.0 below the best value over all methods' finished runs",
          f);
    fprintf(f, " (best = %s).\n\n", fll(ss->best, 10).s);
    fputs("| method | runs | finished | min | median | max converged log-likelihood | share within 1.0 of the best | "
          "mean iterations |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
          f);
    for (int mi = 0; mi < p->r->n_study; mi++) {
        const gmm_study_method *sm = &s[mi];
        const method_summary *ms = &ss->per[mi];
        fputs("| ", f);
        md_code(f, sm->name ? sm->name : "?");
        fprintf(f, " | %d | %d | %s | %s | %s | %s | %s |\n", sm->runs, sm->n_ok, fll(ms->min, 10).s,
                fll(ms->median, 10).s, fll(ms->max, 10).s, fpct(ms->share).s, fg(ms->mean_it, 4).s);
    }
    fputs("\n![Converged log-likelihood of every run, by initialization method](init_study.png)\n\n", f);
    fputs("In the picture each point is one finished run (spread sideways by its run index), filled when the run "
          "converged and open when it stopped at max_iter; the dashed line marks the best log-likelihood. "
          "The numbers are in `init_study.dat`.\n\n",
          f);
}

/* The list of distinct optima, best first, with the runs of each method in each. */
static void rep_study_optima(rep *p, const study_summary *ss)
{
    FILE *f = p->f;
    const gmm_study_method *s = p->r->study;
    int ns = p->r->n_study;
    size_t ng = ss->ng;
    fprintf(f,
            "**Distinct optima.** Grouping the %zu finished runs' log-likelihoods into values within 1.0 "
            "of each other gives %zu distinct optim%s:\n\n",
            ss->total_ok, ng, ng == 1 ? "um" : "a");
    size_t show = ng <= 12 ? ng : 10;
    for (size_t gi = 0; gi < show; gi++) {
        const optimum_group *g = &ss->groups[gi];
        fprintf(f, "- %s", fll(g->top, 10).s);
        if (strcmp(fll(g->bottom, 10).s, fll(g->top, 10).s) != 0) fprintf(f, " .. %s", fll(g->bottom, 10).s);
        if (gi > 0) fprintf(f, " (%s below the best)", fll(ss->best - g->top, 6).s);
        fprintf(f, ": %d run%s (", g->count, g->count == 1 ? "" : "s");
        int first = 1;
        for (int mi = 0; mi < ns; mi++)
            if (g->per_method[mi]) {
                fprintf(f, "%s%s %d", first ? "" : ", ", s[mi].name ? s[mi].name : "?", g->per_method[mi]);
                first = 0;
            }
        fputs(")\n", f);
    }
    if (show < ng) fprintf(f, "- ... and %zu lower groups\n", ng - show);
    fputs("\n", f);
}

/* The generated analysis paragraph: which methods reach the best optimum, how far the others stop, which
 * failed, which need the most iterations, and where the reported model stands. */
static void rep_study_analysis(rep *p, const study_summary *ss)
{
    FILE *f = p->f;
    const gmm_study_method *s = p->r->study;
    const method_summary *per = ss->per;
    int ns = p->r->n_study;
    fputs("**What the study shows.** ", f);
    int n_always = 0, n_never = 0, n_some = 0;
    for (int mi = 0; mi < ns; mi++) {
        if (per[mi].n_fin == 0) continue;
        if (per[mi].share >= 1.0)
            n_always++;
        else if (per[mi].share <= 0.0)
            n_never++;
        else
            n_some++;
    }
    if (n_always) {
        int first = 1;
        for (int mi = 0; mi < ns; mi++)
            if (per[mi].n_fin && per[mi].share >= 1.0) {
                fprintf(f, "%s%s", first ? "" : ", ", s[mi].name ? s[mi].name : "?");
                first = 0;
            }
        fprintf(f, " reached the best optimum (within 1.0 of %s) in every finished run. ", fll(ss->best, 10).s);
    }
    for (int mi = 0; mi < ns; mi++) {
        const method_summary *ms = &per[mi];
        if (ms->n_fin == 0 || ms->share >= 1.0) continue;
        int reached = (int)lround(ms->share * ms->n_fin);
        if (reached == 0)
            fprintf(f,
                    "%s never reached it: its %d finished run%s stopped in worse local optima, on average %s "
                    "and at worst %s below the best. ",
                    s[mi].name ? s[mi].name : "?", ms->n_fin, ms->n_fin == 1 ? "" : "s", fll(ms->gap_mean, 6).s,
                    fll(ms->gap_max, 6).s);
        else
            fprintf(f,
                    "%s reached it in %d of %d finished runs; its other runs stopped in worse local optima, "
                    "on average %s and at worst %s below the best. ",
                    s[mi].name ? s[mi].name : "?", reached, ms->n_fin, fll(ms->gap_mean, 6).s, fll(ms->gap_max, 6).s);
    }
    for (int mi = 0; mi < ns; mi++) {
        int failed = s[mi].runs - s[mi].n_ok;
        if (failed > 0)
            fprintf(f, "%s: %d of %d runs stopped with an error. ", s[mi].name ? s[mi].name : "?", failed,
                    s[mi].runs);
    }
    int fast = -1, slow = -1;
    for (int mi = 0; mi < ns; mi++) {
        if (!isfinite(per[mi].mean_it)) continue;
        if (fast < 0 || per[mi].mean_it < per[fast].mean_it) fast = mi;
        if (slow < 0 || per[mi].mean_it > per[slow].mean_it) slow = mi;
    }
    if (fast >= 0 && slow >= 0 && fast != slow)
        fprintf(f, "EM needed the fewest iterations from %s (%s on average) and the most from %s (%s). ",
                s[fast].name ? s[fast].name : "?", fg(per[fast].mean_it, 4).s, s[slow].name ? s[slow].name : "?",
                fg(per[slow].mean_it, 4).s);
    if (ss->ng == 1)
        fputs("Every finished run reached the same optimum, so on these data the initialization changed how "
              "long EM took, not where it ended.",
              f);
    else
        fprintf(f,
                "EM only climbs to the nearest local maximum of the likelihood, so the starting point decides "
                "which of the %zu optima a run ends in: the initialization matters%s.",
                ss->ng,
                n_never + n_some > 0 ? ", and several restarts (n_init) or a data-driven start protect "
                                       "against a poor optimum"
                                     : "");
    double gap_fit = ss->best - p->ll_final;
    if (isfinite(gap_fit) && gap_fit <= STUDY_SAME_OPTIMUM)
        fprintf(f, " The model reported above (%s, %s) is at the best optimum the study found.",
                gmm_init_name(p->r->options->init), fll(p->ll_final, 10).s);
    else if (isfinite(gap_fit))
        fprintf(f,
                " The model reported above (%s, %s) is %s below the best optimum the study found: a fit "
                "started the way the best runs were would give a better model.",
                gmm_init_name(p->r->options->init), fll(p->ll_final, 10).s, fll(gap_fit, 6).s);
    fputs("\n\n", f);
}

/* Question 4 with an --init-study: the table, the picture and the generated analysis. */
static gmm_status rep_q4_study(rep *p)
{
    study_summary ss;
    gmm_status st = summarize_study(p->r->study, p->r->n_study, &ss);
    if (st != GMM_OK) return st;
    rep_study_table(p, &ss);
    if (ss.total_ok == 0) {
        fputs("No study run finished, so the study says nothing about the optima EM reaches.\n\n", p->f);
    } else {
        rep_study_optima(p, &ss);
        rep_study_analysis(p, &ss);
    }
    study_summary_free(&ss);
    return GMM_OK;
}

/* Question 4: the effect of the initialization (study or a pointer to --init-study). */
static gmm_status rep_q4(rep *p)
{
    FILE *f = p->f;
    const gmm_options *o = p->r->options;
    fputs("## 4. Effect of initialization\n\n", f);
    if (p->r->study && p->r->n_study > 0) return rep_q4_study(p);
    fprintf(f,
            "This fit started from the **%s** initialization with seed %" PRIu64 " and n_init = %d (%s). EM "
            "converges to a local maximum of the likelihood that depends on where it starts, so a single fit "
            "cannot show how much the initialization matters. Run the fit again with `--init-study M` to fit M "
            "seeds with every initialization method (kmeans, k-means++, random, random_from_data and the "
            "assignment's binary scheme); this section then tabulates the converged log-likelihoods, draws them "
            "(`init_study.png`) and lists the distinct optima EM reached.\n\n",
            gmm_init_name(o->init), o->seed, o->n_init,
            o->n_init > 1 ? "the run with the best final lower bound was kept" : "one run");
    return GMM_OK;
}

/* Mahalanobis distance between means i and j under (Sigma_i + Sigma_j) / 2, via its Cholesky factor;
 * NaN when the average is not positive definite. work is (d*d + d). */
static double pair_distance(const gmm_model *m, size_t i, size_t j, double *work)
{
    size_t d = m->d;
    double *a = work, *z = work + d * d;
    const double *ci = m->covariances + i * d * d, *cj = m->covariances + j * d * d;
    for (size_t t = 0; t < d * d; t++) a[t] = 0.5 * (ci[t] + cj[t]);
    if (gmm_cholesky_lower(a, d) != 0) return NAN;
    double s = 0.0;
    for (size_t r = 0; r < d; r++) { /* forward substitution L z = mu_i - mu_j */
        double v = m->means[i * d + r] - m->means[j * d + r];
        for (size_t c = 0; c < r; c++) v -= a[r * d + c] * z[c];
        z[r] = v / a[r * d + r];
        s += z[r] * z[r];
    }
    return sqrt(s);
}

/* A word for a Mahalanobis separation between two component means. */
static const char *separation_word(double delta)
{
    if (!isfinite(delta)) return "of unknown separation";
    if (delta >= 4.0) return "well separated";
    if (delta >= 2.0) return "partly overlapping";
    return "strongly overlapping";
}

/* Question 5, cluster sizes against weights: the largest and smallest weight and the component whose
 * labelled share differs most from its weight. */
static void rep_q5_sizes(rep *p)
{
    const gmm_model *m = p->m;
    size_t k = p->k, n = p->n;
    size_t big = 0, small = 0, worst = 0;
    double worst_diff = -1.0;
    for (size_t c = 0; c < k; c++) {
        if (m->weights[c] > m->weights[big]) big = c;
        if (m->weights[c] < m->weights[small]) small = c;
        double share = n ? (double)p->counts[c] / (double)n : NAN;
        double diff = fabs(share - m->weights[c]);
        if (diff > worst_diff) {
            worst_diff = diff;
            worst = c;
        }
    }
    fprintf(p->f,
            "**Cluster sizes and weights.** The largest component is %zu (alpha = %s, %zu points labelled), the "
            "smallest %zu (alpha = %s, %zu points). The weights are soft shares (each point counts fractionally "
            "towards every component) while the labels are hard, so the two differ where components overlap; "
            "the largest difference is %s percentage points, for component %zu (alpha = %s, labelled share %s).\n\n",
            big + 1, fg(m->weights[big], 5).s, p->counts[big], small + 1, fg(m->weights[small], 5).s,
            p->counts[small], fg(100.0 * worst_diff, 3).s, worst + 1, fg(m->weights[worst], 5).s,
            fpct(n ? (double)p->counts[worst] / (double)n : NAN).s);
}

/* The pairwise separation of the components' means (Question 5). */
typedef struct separation {
    double *dist;             /* (k x k) Delta_ij, NaN where not computable; NULL when k < 2 or too costly */
    double closest, farthest; /* the extreme finite Delta (NaN when none) */
    size_t ci, cj, fi, fj;    /* their pairs */
    size_t n_same;            /* pairs closer than SAME_COMPONENT_DELTA */
} separation;

/* Computes every pair's Delta when the work is below PAIR_WORK_CAP; free sep->dist afterwards. */
static gmm_status separation_compute(const rep *p, separation *sep)
{
    const gmm_model *m = p->m;
    size_t k = p->k, d = p->d;
    memset(sep, 0, sizeof *sep);
    sep->closest = sep->farthest = NAN;
    if (k < 2) return GMM_OK;
    double pairs = 0.5 * (double)k * (double)(k - 1);
    double work = pairs * ((double)d * d * d / 3.0 + (double)d * d);
    if (work > PAIR_WORK_CAP) return GMM_OK;
    double *dist = gmm_xcalloc(k * k, sizeof *dist);
    double *w = gmm_xmalloc((d * d + d) * sizeof *w);
    if (!dist || !w) {
        free(dist);
        free(w);
        return GMM_ERR_NOMEM;
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++) {
            double v = pair_distance(m, i, j, w);
            dist[i * k + j] = dist[j * k + i] = v;
            if (v < SAME_COMPONENT_DELTA) sep->n_same++;
            if (!isfinite(v)) continue;
            if (!isfinite(sep->closest) || v < sep->closest) {
                sep->closest = v;
                sep->ci = i;
                sep->cj = j;
            }
            if (!isfinite(sep->farthest) || v > sep->farthest) {
                sep->farthest = v;
                sep->fi = i;
                sep->fj = j;
            }
        }
    free(w);
    sep->dist = dist;
    return GMM_OK;
}

/* The table of every pair's Delta (k <= REPORT_PAIR_TABLE_K). */
static void rep_separation_table(rep *p, const double *dist)
{
    FILE *f = p->f;
    size_t k = p->k;
    fputs("| Delta |", f);
    for (size_t j = 0; j < k; j++) fprintf(f, " %zu |", j + 1);
    fputs("\n|---:|", f);
    for (size_t j = 0; j < k; j++) fputs("---:|", f);
    fputs("\n", f);
    for (size_t i = 0; i < k; i++) {
        fprintf(f, "| **%zu** |", i + 1);
        for (size_t j = 0; j < k; j++) fprintf(f, " %s |", i == j ? "" : fg(dist[i * k + j], 4).s);
        fputs("\n", f);
    }
    fputs("\n", f);
}

/* Question 5, separation: the definition of Delta, the closest and farthest pairs, the pairs that
 * coincide, and the table. */
static void rep_q5_separation(rep *p, const separation *sep)
{
    FILE *f = p->f;
    size_t k = p->k, d = p->d;
    fputs("**Separation.** For two components i and j, Delta_ij = sqrt((mu_i - mu_j)^T ((Sigma_i + Sigma_j)/2)^(-1) "
          "(mu_i - mu_j)) is the distance between their means in units of their average spread (about 4 or more: "
          "well separated; 2 to 4: partly overlapping; below 2: strongly overlapping). ",
          f);
    if (k < 2) {
        fputs("With a single component there is nothing to separate.\n\n", f);
        return;
    }
    if (!sep->dist) {
        fprintf(
            f, "With k = %zu and d = %zu the %zu pairwise distances were not computed (too costly for a report).\n\n",
            k, d, k * (k - 1) / 2);
        return;
    }
    if (!isfinite(sep->closest)) {
        fputs("No pair's average covariance was positive definite, so no distance could be computed.\n\n", f);
        return;
    }
    fprintf(f,
            "The closest pair is components %zu and %zu with Delta = %s (%s); the farthest is %zu and %zu "
            "with Delta = %s.",
            sep->ci + 1, sep->cj + 1, fg(sep->closest, 4).s, separation_word(sep->closest), sep->fi + 1, sep->fj + 1,
            fg(sep->farthest, 4).s);
    if (sep->closest >= 4.0)
        fputs(" Every pair is well separated, so the labels of Problem 2 are unambiguous for almost all points.", f);
    else if (sep->closest >= SAME_COMPONENT_DELTA)
        fputs(" Points between the closest components are the ones whose labels are least certain.", f);
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++)
            if (sep->dist[i * k + j] < SAME_COMPONENT_DELTA)
                fprintf(f,
                        " Components %zu and %zu nearly coincide (Delta = %s): two components describe the "
                        "same cluster, so the model has fewer distinct clusters than k, which marks a poor "
                        "local optimum.",
                        i + 1, j + 1, fg(sep->dist[i * k + j], 3).s);
    fputs("\n\n", f);
    if (k <= REPORT_PAIR_TABLE_K) rep_separation_table(p, sep->dist);
}

/* Question 5, components that explain data but win no point (nothing when every component has points). */
static void rep_q5_empty(rep *p)
{
    FILE *f = p->f;
    size_t k = p->k, n_empty = 0;
    for (size_t c = 0; c < k; c++) n_empty += p->counts[c] == 0;
    if (!n_empty) return;
    fputs("**Empty clusters.** No point is labelled with component", f);
    fputs(n_empty > 1 ? "s" : "", f);
    size_t shown = 0;
    for (size_t c = 0; c < k; c++)
        if (p->counts[c] == 0) fprintf(f, "%s %zu", shown++ ? "," : "", c + 1);
    fputs(": every point is more responsible to another component, although the weight", f);
    fputs(n_empty > 1 ? "s are" : " is", f);
    shown = 0;
    for (size_t c = 0; c < k; c++)
        if (p->counts[c] == 0) fprintf(f, "%s %s", shown++ ? "," : "", fg(p->m->weights[c], 5).s);
    fputs(". Problem 2's clustering therefore has fewer than k clusters.\n\n", f);
}

/* Question 5, compactness: the components of smallest and largest det Sigma. */
static void rep_q5_compactness(rep *p)
{
    FILE *f = p->f;
    size_t k = p->k, d = p->d;
    size_t tight = 0, loose = 0;
    for (size_t c = 0; c < k; c++) {
        if (p->logdet[c] < p->logdet[tight]) tight = c;
        if (p->logdet[c] > p->logdet[loose]) loose = c;
    }
    fprintf(f,
            "**Compactness.** det Sigma_k measures the volume a component spreads over. The most compact "
            "component is %zu (det Sigma = %s, i.e. a geometric-mean standard deviation det^(1/(2d)) of %s), the "
            "least compact %zu (det Sigma = %s, standard deviation %s)",
            tight + 1, fg(exp(p->logdet[tight]), 4).s, fg(exp(p->logdet[tight] / (2.0 * (double)d)), 4).s, loose + 1,
            fg(exp(p->logdet[loose]), 4).s, fg(exp(p->logdet[loose] / (2.0 * (double)d)), 4).s);
    if (k > 1)
        fprintf(f, "; the 1-sigma ellipsoid of %zu holds %s times the volume of that of %zu", loose + 1,
                fg(exp(0.5 * (p->logdet[loose] - p->logdet[tight])), 4).s, tight + 1);
    fputs(".\n\n", f);
}

/* Question 5, convergence: the last change against tol, decreases, the time per iteration. */
static void rep_q5_convergence(rep *p)
{
    FILE *f = p->f;
    const gmm_model *m = p->m;
    const gmm_report *r = p->r;
    const gmm_options *o = r->options;
    fputs("**Convergence.** ", f);
    if (p->len < 1 && o->max_iter == 0) {
        fputs("No EM iteration ran (max_iter = 0): as scikit-learn, the model is the initialization, not "
              "converged, with no lower bound.\n\n",
              f);
    } else if (p->len < 1) {
        fputs("The model has no fit record, so nothing can be said about convergence.\n\n", f);
        return;
    }
    double last_change = p->len > 1 ? (p->trace[p->len - 1] - p->trace[p->len - 2]) / (double)p->n : NAN;
    if (m->converged && fabs(last_change) < o->tol)
        fprintf(f,
                "EM converged after %d iterations: the mean per-point log-likelihood last changed by %s, "
                "below tol = %s. ",
                p->len, fg(last_change, 3).s, fg(o->tol, 3).s);
    else if (m->converged)
        fprintf(f,
                "EM converged after %d iterations (the fit met tol = %s; the last change of the mean "
                "per-point log-likelihood in the trace is %s). ",
                p->len, fg(o->tol, 3).s, fg(last_change, 3).s);
    else
        fprintf(f,
                "EM did **not** converge within max_iter = %d iterations: the mean per-point log-likelihood "
                "still changed by %s at the last iteration (tol = %s); more iterations (`--max-iter`) would "
                "move the model further. ",
                o->max_iter, fg(last_change, 3).s, fg(o->tol, 3).s);
    if (p->n_decrease == 0)
        fputs("The log-likelihood never decreased. ", f);
    else
        fprintf(f, "The log-likelihood decreased at %d step%s (largest drop %s). ", p->n_decrease,
                p->n_decrease == 1 ? "" : "s", fg(p->max_drop, 4).s);
    double tsum = 0.0;
    for (int i = 0; i < p->slen; i++) tsum += p->secs[i];
    if (p->slen > 0)
        fprintf(f, "An iteration took %s on average on %s (%s for the whole fit).", fsec(tsum / p->slen).s,
                r->device ? r->device : "this device", fsec(r->fit_seconds).s);
    fputs("\n\n", f);
}

/* Question 5, fit and model size: the mean log-likelihood, the parameter count, BIC and AIC. */
static void rep_q5_model_size(rep *p)
{
    const gmm_model *m = p->m;
    size_t k = p->k, n = p->n;
    double ll_per_point = n ? p->ll_final / (double)n : NAN;
    fprintf(p->f,
            "**Fit and model size.** The final mean log-likelihood is %s per point (total %s). With %zu free "
            "parameters ((k-1) weights + k d means + k d(d+1)/2 covariance entries) and n = %zu, BIC = %s and "
            "AIC = %s; both are lower for a better trade-off between fit and size and mean something only in "
            "comparison, so fit the data again with other k (for example k = %zu and k = %zu) and keep the k with "
            "the lowest BIC.\n\n",
            fg(ll_per_point, 6).s, fll(p->ll_final, 10).s, gmm_n_parameters(m), n, fll(p->r->bic, 10).s,
            fll(p->r->aic, 10).s, k > 1 ? k - 1 : k + 1, k + (k > 1 ? 1 : 2));
}

/* Question 5, the closing sentence. */
static void rep_q5_conclusion(rep *p, const separation *sep)
{
    FILE *f = p->f;
    size_t k = p->k;
    fprintf(f, "**In short.** EM fitted %zu components to the %zu points in %d iteration%s (%s)", k, p->n, p->len,
            p->len == 1 ? "" : "s", p->m->converged ? "converged" : "not converged");
    if (sep->n_same)
        fprintf(f,
                "; %zu pair%s of components coincide, so the data are described by fewer distinct clusters "
                "than k",
                sep->n_same, sep->n_same == 1 ? "" : "s");
    else if (k >= 2 && isfinite(sep->closest))
        fprintf(f, "; the components are %s (smallest Delta = %s)", separation_word(sep->closest),
                fg(sep->closest, 4).s);
    if (p->r->study && p->r->n_study > 0)
        fputs("; as section 4 shows, the optimum EM reaches depends on its start, so the result should be "
              "taken from several starts or a data-driven initialization",
              f);
    fputs(".\n", f);
}

/* Question 5: the analysis of the results. */
static gmm_status rep_q5(rep *p)
{
    separation sep;
    gmm_status st = separation_compute(p, &sep);
    if (st != GMM_OK) return st;
    fputs("## 5. Analysis of the results\n\n", p->f);
    rep_q5_sizes(p);
    rep_q5_separation(p, &sep);
    rep_q5_empty(p);
    rep_q5_compactness(p);
    rep_q5_convergence(p);
    rep_q5_model_size(p);
    rep_q5_conclusion(p, &sep);
    free(sep.dist);
    return GMM_OK;
}

/* Writes DIR/report.md from r (see report.h): the summary block, then the assignment's five questions in
 * order. Requires r->model, r->labels (n entries, each in 0..k-1) and r->options; the study is optional.
 * GMM_ERR_INVALID_ARG for missing or inconsistent inputs, GMM_ERR_IO naming the path. */
gmm_status gmm_write_report(const char *dir, const gmm_report *r)
{
    if (!dir || !r || !r->model || !r->options || (!r->labels && r->n > 0))
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_write_report: dir, model, options and labels are required");
    const gmm_model *m = r->model;
    if (r->d != m->d)
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_write_report: data have %zu features but the model %zu", r->d,
                        m->d);
    if (r->study) {
        for (int mi = 0; mi < r->n_study; mi++) {
            const gmm_study_method *sm = &r->study[mi];
            if (sm->n_ok < 0 || sm->n_ok > sm->runs ||
                (sm->n_ok > 0 && (!sm->loglik || !sm->n_iter || !sm->converged)))
                return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_write_report: study method %d (%s) has inconsistent counts",
                                mi, sm->name ? sm->name : "?");
        }
    }
    rep p;
    memset(&p, 0, sizeof p);
    p.dir = dir;
    p.r = r;
    p.m = m;
    p.k = m->k;
    p.d = m->d;
    p.n = r->n;
    p.trace = gmm_model_loglik_trace(m, &p.len);
    p.secs = gmm_model_iter_seconds(m, &p.slen);
    p.counts = gmm_xcalloc(p.k, sizeof *p.counts);
    p.logdet = gmm_xcalloc(p.k, sizeof *p.logdet);
    if (!p.counts || !p.logdet) {
        free(p.counts);
        free(p.logdet);
        return GMM_ERR_NOMEM;
    }
    for (size_t i = 0; i < r->n; i++) {
        int l = r->labels[i];
        if (l < 0 || (size_t)l >= p.k) {
            free(p.counts);
            free(p.logdet);
            return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_write_report: label of row %zu is %d; expected 0..%zu", i, l,
                            p.k - 1);
        }
        p.counts[l]++;
    }
    for (size_t c = 0; c < p.k; c++) p.logdet[c] = -2.0 * m->log_det_chol[c];
    p.ll_final = r->loglik;
    for (int i = 1; i < p.len; i++) {
        double drop = p.trace[i - 1] - p.trace[i];
        if (drop > 0) {
            p.n_decrease++;
            if (drop > p.max_drop) {
                p.max_drop = drop;
                p.max_drop_iter = i;
            }
        }
    }

    gmm_atomic_file af;
    gmm_status st = gmm_atomic_open_in(&af, dir, "report.md");
    if (st == GMM_OK) {
        p.f = af.f;
        rep_summary(&p);
        rep_q1(&p);
        rep_q2(&p);
        rep_q3(&p);
        st = rep_q4(&p);
        if (st == GMM_OK) st = rep_q5(&p);
        if (st == GMM_OK)
            st = gmm_atomic_commit(&af);
        else
            gmm_atomic_abort(&af);
    }
    free(p.counts);
    free(p.logdet);
    return st;
}
