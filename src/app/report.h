/*
 * report.h — the outputs of `gmm fit` beyond the model file: labels.csv, loglik.csv, the gnuplot pictures
 * (loglik.png, clusters.png, init_study.png) and report.md, which answers the assignment's five questions.
 * Every file is written whole or not at all. Plots are drawn by gnuplot (pngcairo); when gnuplot is
 * missing the data and the .gp scripts are still written and the caller is told how to render them.
 */
#ifndef GMM_REPORT_H
#define GMM_REPORT_H

#include "gmm.h"

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

/* One initialization method's runs in an --init-study. */
typedef struct gmm_study_method {
    const char *name; /* as the CLI spells it: "kmeans", "k-means++", "random", "random_from_data",
                            "binary" (the assignment's scheme) */
    int runs;         /* runs attempted (different seeds) */
    int n_ok;         /* runs that finished; the others stopped with an error (not PD) */
    double *loglik;   /* (n_ok) final total log-likelihood of each finished run, in seed order */
    int *n_iter;      /* (n_ok) EM iterations of each finished run */
    int *converged;   /* (n_ok) 1 if the run met tol */
} gmm_study_method;

/* Everything report.md is written from. Borrowed pointers. */
typedef struct gmm_report {
    const char *data_path;
    const char *shown_dir; /* the result folder's name for the reader (dir may be a staging folder);
                                  NULL: dir itself */
    const double *x;       /* (n, d) the training data */
    size_t n, d;
    const gmm_model *model;        /* the fitted model (fit record included) */
    const int *labels;             /* (n) predicted component of each point */
    const gmm_options *options;    /* options of the fit */
    const char *device;            /* e.g. "CPU (2 threads)" */
    double fit_seconds;            /* wall time of the whole fit (all n_init runs) */
    const gmm_study_method *study; /* NULL when no --init-study */
    int n_study;
    double loglik; /* total log-likelihood of the final model on the data (what BIC and AIC use) */
    double bic, aic;
    int plots_rendered; /* 1 if the PNG files exist, 0 if only the .gp scripts were written */
} gmm_report;

/* Writes DIR/labels.csv: one line per input row (in input order) holding its component index. */
gmm_status gmm_write_labels(const char *dir, const int *labels, size_t n);

/* Writes DIR/loglik.csv: header "iteration,loglik,change,seconds", one row per iteration of the best run;
 * change is the change of the total log-likelihood from the previous iteration (empty on the first row). */
gmm_status gmm_write_loglik(const char *dir, const gmm_model *model);

/* The process id of the gnuplot gmm is running now, 0 when none. Async-signal-safe: for a signal handler
 * that stops it before gmm ends. */
int gmm_plot_child(void);

/* Returns 1 when a gnuplot with the pngcairo terminal can be run, 0 otherwise. */
int gmm_gnuplot_available(void);

/* Each plot writes DIR/<name>.dat (or several .dat files) and DIR/<name>.gp, then, when render is 1, runs
 * gnuplot to produce DIR/<name>.png (written to a temporary name and renamed). */
gmm_status gmm_plot_loglik(const char *dir, const gmm_model *model, int render);
/* n_show points drawn at random (with seed, without replacement) from x, coloured by labels; means marked;
 * 1- and 2-sigma ellipses of every component. Uses the first two features (d == 1: feature vs 0). */
gmm_status gmm_plot_clusters(const char *dir, const double *x, size_t n, size_t d, const int *labels,
                             const gmm_model *model, size_t n_show, uint64_t seed, int render);
/* The converged log-likelihoods of every study run, one column of points per method. */
gmm_status gmm_plot_init_study(const char *dir, const gmm_study_method *study, int n_study, int render);

/* One candidate of `gmm select`. */
typedef struct gmm_selection_row {
    int k;
    gmm_covariance_type type;
    int ok;        /* 1 if the fit finished; 0 if it failed (message in error) */
    double loglik; /* final total log-likelihood of the fitted model on the data */
    double bic, aic;
    int n_iter;
    int converged;
    char error[160]; /* the failure's message when ok == 0 */
} gmm_selection_row;

/* Writes DIR/selection.csv: k,covariance,status,loglik,bic,aic,n_iter,converged (one row per candidate;
 * status "ok" or "failed", empty numbers for failed candidates). */
gmm_status gmm_write_selection(const char *dir, const gmm_selection_row *rows, size_t n_rows);

/* Writes selection.dat and selection.gp: BIC and AIC against k, one line per covariance type, the best
 * (lowest BIC) candidate marked; renders selection.png when render is 1. */
gmm_status gmm_plot_selection(const char *dir, const gmm_selection_row *rows, size_t n_rows, int render);

/* Writes DIR/report.md answering the assignment's five questions in order (see README.md). */
gmm_status gmm_write_report(const char *dir, const gmm_report *r);

/* The number of m's components its fit's E-steps left empty (gmm_model_empty_since > 0). */
size_t gmm_count_emptied(const gmm_model *m);

/* Writes the emptied components of m as " component j (label j-1) at iteration i", comma-separated; nothing
 * when none emptied. */
void gmm_write_emptied(FILE *f, const gmm_model *m);

#endif /* GMM_REPORT_H */
