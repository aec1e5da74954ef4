/*
 * cli.c — the `gmm` program: subcommands fit, select, predict, score and sample over the library in
 * include/gmm.h, the report writer in src/app/report.h and the result folders of src/app/outdir.h (replaced whole
 * or not at all). Exit status: 0 success, 1 failure (bad data, a failed fit, an unwritable output,
 * standard output included), 2 usage error (unknown option, bad option value, missing argument).
 */
#include "gmm_internal.h"
#include "outdir.h"
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define EXIT_USAGE 2

/* Limits of the options' values (stated in their messages). */
#define MAX_COMPONENTS 100000
#define MAX_STUDY_RUNS 100000
#define MAX_N_INIT 1000000
#define MAX_ITER 100000000
#define MAX_THREADS 4096
#define MAX_SAMPLES 2000000000L
#define STR_(x) #x
#define STR(x) STR_(x)

static const char *MAIN_USAGE =
    "usage: gmm <command> [options]\n"
    "\n"
    "Gaussian mixture models trained by expectation maximization, with scikit-learn's semantics.\n"
    "\n"
    "commands:\n"
    "  fit DATA -k K [options]       fit a model; write model, labels, log-likelihood trace, plots, report\n"
    "  predict MODEL DATA [--proba]  print the component of each point (or its responsibilities)\n"
    "  score MODEL DATA              print the mean and total log-likelihood of the data\n"
    "  sample MODEL -n N [--seed S]  draw N points from a model, as CSV\n"
    "  select DATA --k A..B          fit every k in A..B for each covariance type; BIC/AIC table and plot\n"
    "\n"
    "DATA is a CSV file (comma separated, optional header row) or a NumPy .npy file (float32/float64,\n"
    "2-D, C order). MODEL is a model.json written by `gmm fit`.\n"
    "Run `gmm <command> --help` for the options of a command.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static const char *FIT_USAGE =
    "usage: gmm fit DATA -k K [options]\n"
    "\n"
    "Fits a K-component Gaussian mixture (full covariances unless --covariance says otherwise) to DATA by\n"
    "EM, as scikit-learn's GaussianMixture does, and writes into --out DIR:\n"
    "  model.json   weights, means, covariances and the fit record\n"
    "  labels.csv   the component (0-based) of every input row, in input order (computed on the fit's\n"
    "               device)\n"
    "  loglik.csv   iteration, total log-likelihood, change, seconds\n"
    "  loglik.png, clusters.png (500 random points by cluster, means, 1- and 2-sigma ellipses),\n"
    "  init_study.png (with --init-study), their .gp/.dat sources, and report.md\n"
    "The folder is replaced as a whole: the new set is written beside it and swapped in only when\n"
    "complete, so a failed or interrupted fit leaves the previous result (and removes the folders it\n"
    "created); your own files in the folder are kept.\n"
    "\n"
    "options:\n"
    "  -k, --components K   number of components (required)\n"
    "  --init METHOD        kmeans (default), k-means++, random, random_from_data, or binary (the\n"
    "                       assignment's scheme: means drawn from {0,1}^d, identity covariances,\n"
    "                       equal weights)\n"
    "  --covariance TYPE    full (default; with --warm-start, the model's), tied, diag or spherical\n"
    "                       (scikit-learn's covariance_type)\n"
    "  --init-model FILE    initial parameters from a JSON file holding any of \"weights\", \"means\",\n"
    "                       \"covariances\" or \"precisions\" (a model.json works): what it holds replaces\n"
    "                       what --init would produce (scikit-learn's weights_init, means_init,\n"
    "                       precisions_init); its covariances must be of the --covariance type\n"
    "  --warm-start MODEL   continue from a saved model (all its parameters and its lower bound, as\n"
    "                       scikit-learn's warm_start; --n-init is then 1)\n"
    "  --n-init N           runs from different seeds; the best lower bound wins (default 1)\n"
    "  --max-iter N         EM iterations per run (default 100); 0 keeps the initial parameters\n"
    "  --tol T              stop when the mean per-point log-likelihood changes by less than T\n"
    "                       (default 1e-3)\n"
    "  --reg-covar R        added to every covariance diagonal (default 1e-6)\n"
    "  --seed S             seed of every random choice (default 0)\n"
    "  --threads N          CPU threads (default: all); results do not depend on it\n"
    "  --device DEV         auto (default: a GPU when one is usable, else the CPU), cpu, or cuda (fails\n"
    "                       when no GPU is usable); the device used is printed and in report.md\n"
    "  --dtype TYPE         auto (default: float32 unless it cannot resolve the data or the model, then\n"
    "                       float64, saying why), float32 or float64: the precision on the GPU\n"
    "  --out DIR            output folder, created if missing, replaced whole (default gmm-out)\n"
    "  --init-study M       also fit M times from different seeds with each init method and report\n"
    "                       how the initialization changes the converged log-likelihood\n"
    "  --quiet              no progress on stderr\n"
    "  --verbose            progress of every iteration of every run, init study included\n"
    "  -h, --help           this help\n";

static const char *SELECT_USAGE =
    "usage: gmm select DATA --k A..B [options]\n"
    "\n"
    "Model selection: fits every number of components k in A..B with each covariance type and writes into\n"
    "--out DIR selection.csv (k, covariance, status, loglik, bic, aic, n_iter, converged), selection.png\n"
    "(BIC and AIC against k, one line per type) and model.json (the candidate with the lowest BIC, which\n"
    "is also named on standard output); loglik is the final model's, as gmm fit and gmm score print it.\n"
    "A candidate that fails (e.g. a covariance that is not positive definite) is reported and skipped;\n"
    "one whose components emptied is noted on stderr. The data are opened on the device once for all\n"
    "candidates (--device auto decides with the largest k); the device is printed on stderr unless --quiet.\n"
    "\n"
    "options:\n"
    "  --k A..B | --k K     the numbers of components to try (required)\n"
    "  --covariance LIST    all (default), or a comma-separated list of full, tied, diag, spherical\n"
    "  --init METHOD, --n-init N, --max-iter N, --tol T, --reg-covar R, --seed S, --threads N,\n"
    "  --device DEV, --dtype TYPE   as for gmm fit\n"
    "  --out DIR            output folder, created if missing, replaced whole (default gmm-select)\n"
    "  --quiet              no progress on stderr\n"
    "  -h, --help           this help\n";

static const char *PREDICT_USAGE =
    "usage: gmm predict MODEL DATA [--proba] [-o FILE] [--device DEV] [--dtype TYPE]\n"
    "\n"
    "Prints the most responsible component (0-based) of each row of DATA, one per line, or with\n"
    "--proba the K responsibilities of each row as CSV.\n"
    "  --proba        responsibilities instead of labels\n"
    "  -o, --output   write to FILE (whole or not at all) instead of standard output\n"
    "  --device DEV   auto (default: a GPU when one is usable and the model fits the kernels, else the\n"
    "                 CPU), cpu, or cuda (fails when no GPU is usable); the device used is printed on\n"
    "                 stderr. On a GPU the outputs carry float32 rounding (labels may differ at near ties)\n"
    "  --dtype TYPE   auto (default: float32 unless it cannot resolve the data or the model), float32 or\n"
    "                 float64: the precision on the GPU\n"
    "  -h, --help     this help\n";

static const char *SCORE_USAGE =
    "usage: gmm score MODEL DATA [--device DEV] [--dtype TYPE]\n"
    "\n"
    "Prints the mean per-point log-likelihood (scikit-learn's score), the total log-likelihood, BIC and\n"
    "AIC of DATA under MODEL.\n"
    "  --device DEV   auto (default: a GPU when one is usable and the model fits the kernels, else the\n"
    "                 CPU), cpu, or cuda (fails when no GPU is usable); the device used is printed on\n"
    "                 stderr. On a GPU each point's log-likelihood carries float32 rounding\n"
    "  --dtype TYPE   auto (default: float32 unless it cannot resolve the data or the model), float32 or\n"
    "                 float64: the precision on the GPU\n"
    "  -h, --help     this help\n";

static const char *SAMPLE_USAGE =
    "usage: gmm sample MODEL -n N [--seed S] [-o FILE]\n"
    "\n"
    "Draws N points from MODEL and prints them as CSV (17 significant digits, no header).\n"
    "  -n, --samples N  number of points (required)\n"
    "  --seed S         random seed (default 0); the same seed gives the same points\n"
    "  -o, --output     write to FILE (whole or not at all) instead of standard output\n"
    "  -h, --help       this help\n";

/* ------------------------------------------------------------------------------------------ arguments */

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "gmm %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun 'gmm %s --help' for usage.\n", cmd);
    return EXIT_USAGE;
}

/* Parses a whole decimal integer in [lo, hi]; 0 on success. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0') return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Parses a whole finite number >= 0; 0 on success. */
static int parse_nonneg(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < 0.0) return -1;
    *out = v;
    return 0;
}

static int fail(const char *cmd, gmm_status st)
{
    const char *msg = gmm_last_error();
    fprintf(stderr, "gmm %s: %s\n", cmd, msg[0] ? msg : gmm_strerror(st));
    return 1;
}

static int parse_init(const char *s, gmm_init_method *m)
{
    for (int i = GMM_INIT_KMEANS; i <= GMM_INIT_BINARY; i++)
        if (!strcmp(s, gmm_init_name((gmm_init_method)i))) {
            *m = (gmm_init_method)i;
            return 0;
        }
    return -1;
}

/* The EM options that fit and select share: --init, --n-init, --max-iter, --tol, --reg-covar, --seed,
 * --threads, --device and --dtype (getopt codes i, N, m, t, r, s, T, D, P). Returns -1 when c is not one of them, 0 when it was parsed
 * into o, EXIT_USAGE (after the message) when its value is bad. */
static int parse_em_option(const char *cmd, int c, const char *arg, gmm_options *o)
{
    long v = 0;
    switch (c) {
    case 'i':
        if (parse_init(arg, &o->init))
            return usage_error(cmd, "--init expects kmeans, k-means++, random, random_from_data or binary, got '%s'",
                               arg);
        return 0;
    case 'N':
        if (parse_long(arg, 1, MAX_N_INIT, &v))
            return usage_error(cmd, "--n-init expects a whole number from 1 to " STR(MAX_N_INIT) ", got '%s'", arg);
        o->n_init = (int)v;
        return 0;
    case 'm':
        if (parse_long(arg, 0, MAX_ITER, &v))
            return usage_error(cmd, "--max-iter expects a whole number from 0 to " STR(MAX_ITER) ", got '%s'", arg);
        o->max_iter = (int)v;
        return 0;
    case 't':
        if (parse_nonneg(arg, &o->tol)) return usage_error(cmd, "--tol expects a number >= 0, got '%s'", arg);
        return 0;
    case 'r':
        if (parse_nonneg(arg, &o->reg_covar))
            return usage_error(cmd, "--reg-covar expects a number >= 0, got '%s'", arg);
        return 0;
    case 's':
        if (parse_u64(arg, &o->seed))
            return usage_error(cmd, "--seed expects a whole number from 0 to 18446744073709551615, got '%s'", arg);
        return 0;
    case 'T':
        if (parse_long(arg, 1, MAX_THREADS, &v))
            return usage_error(cmd, "--threads expects a whole number from 1 to " STR(MAX_THREADS) ", got '%s'", arg);
        o->n_threads = (int)v;
        return 0;
    case 'D':
        if (!strcmp(arg, "auto"))
            o->backend = GMM_BACKEND_AUTO;
        else if (!strcmp(arg, "cpu"))
            o->backend = GMM_BACKEND_CPU;
        else if (!strcmp(arg, "cuda"))
            o->backend = GMM_BACKEND_CUDA;
        else
            return usage_error(cmd, "--device expects auto, cpu or cuda, got '%s'", arg);
        return 0;
    case 'P':
        if (!strcmp(arg, "auto"))
            o->gpu_dtype = GMM_GPU_DTYPE_AUTO;
        else if (!strcmp(arg, "float32"))
            o->gpu_dtype = GMM_GPU_DTYPE_FLOAT32;
        else if (!strcmp(arg, "float64"))
            o->gpu_dtype = GMM_GPU_DTYPE_FLOAT64;
        else
            return usage_error(cmd, "--dtype expects auto, float32 or float64, got '%s'", arg);
        return 0;
    }
    return -1;
}

/* ----------------------------------------------------------------------------------------------- fit */

typedef struct progress {
    int quiet;
    int verbose;
    const char *prefix; /* "" for the main fit, "init study kmeans seed 3: " for study runs */
    int show_iters;
} progress;

static void on_iter(void *user, int run, int iter, double loglik, double change, double seconds)
{
    const progress *p = user;
    if (p->quiet || !p->show_iters) return;
    if (isnan(change))
        fprintf(stderr, "%srun %d iter %3d  loglik %.6f  change        -  %.3f ms\n", p->prefix, run + 1, iter,
                loglik, 1e3 * seconds);
    else
        fprintf(stderr, "%srun %d iter %3d  loglik %.6f  change %+.3e  %.3f ms\n", p->prefix, run + 1, iter, loglik,
                change, 1e3 * seconds);
}

static void print_model(FILE *f, const gmm_model *m)
{
    size_t k = gmm_model_n_components(m), d = gmm_model_n_features(m);
    const double *w = gmm_model_weights(m), *mu = gmm_model_means(m), *cov = gmm_model_covariances(m);
    fprintf(f, "alpha = [");
    for (size_t c = 0; c < k; c++) fprintf(f, "%s%.5f", c ? ", " : "", w[c]);
    fprintf(f, "]\nmu = [");
    for (size_t c = 0; c < k; c++) {
        fprintf(f, "%s[", c ? ", " : "");
        for (size_t j = 0; j < d; j++) fprintf(f, "%s%.5f", j ? ", " : "", mu[c * d + j]);
        fprintf(f, "]");
    }
    fprintf(f, "]\n");
    for (size_t c = 0; c < k; c++) {
        fprintf(f, "Sigma_%zu = [", c + 1);
        for (size_t i = 0; i < d; i++) {
            fprintf(f, "%s[", i ? ", " : "");
            for (size_t j = 0; j < d; j++) fprintf(f, "%s%.5f", j ? ", " : "", cov[c * d * d + i * d + j]);
            fprintf(f, "]");
        }
        fprintf(f, "]\n");
    }
}

/* One warning line naming the components the best run's E-steps left empty (kept as scikit-learn keeps
 * them), with the iteration each emptied; nothing when none did. */
static void print_empty_warning(FILE *f, const gmm_model *m)
{
    size_t k = gmm_model_n_components(m), n_empty = gmm_count_emptied(m);
    if (n_empty == 0) return;
    fprintf(f,
            "gmm fit: warning: %zu of %zu components emptied (total responsibility below %g points) and were "
            "kept as scikit-learn keeps them (weight ~1e-16, covariance reg_covar I); fewer components may "
            "describe the data:",
            n_empty, k, GMM_EMPTY_FLOOR);
    gmm_write_emptied(f, m);
    fputc('\n', f);
}

static const gmm_init_method STUDY_METHODS[] = {GMM_INIT_KMEANS, GMM_INIT_KMEANS_PLUSPLUS, GMM_INIT_RANDOM,
                                                GMM_INIT_RANDOM_FROM_DATA, GMM_INIT_BINARY};
#define N_STUDY_METHODS ((int)(sizeof STUDY_METHODS / sizeof STUDY_METHODS[0]))

static void study_free(gmm_study_method *s, int n)
{
    for (int i = 0; i < n; i++) {
        free(s[i].loglik);
        free(s[i].n_iter);
        free(s[i].converged);
    }
}

/* Fits `runs` times with each init method, seeds seed, seed + 1, ..., on the fit's session (the data are
 * not opened again); failed runs are counted, not fatal. */
static gmm_status init_study(gmm_session *ses, const gmm_options *base, int runs, const progress *p,
                             gmm_study_method *out)
{
    for (int mi = 0; mi < N_STUDY_METHODS; mi++) {
        gmm_study_method *s = &out[mi];
        s->name = gmm_init_name(STUDY_METHODS[mi]);
        s->runs = runs;
        s->loglik = calloc((size_t)runs, sizeof *s->loglik);
        s->n_iter = calloc((size_t)runs, sizeof *s->n_iter);
        s->converged = calloc((size_t)runs, sizeof *s->converged);
        if (!s->loglik || !s->n_iter || !s->converged)
            return gmm_fail(GMM_ERR_NOMEM, "out of memory in the init study");
        for (int r = 0; r < runs; r++) {
            gmm_options o = *base;
            o.init = STUDY_METHODS[mi];
            o.weights_init = o.means_init = o.precisions_init = NULL;
            o.n_init = 1;
            o.seed = base->seed + (uint64_t)r;
            char prefix[96];
            snprintf(prefix, sizeof prefix, "init study %s seed %llu: ", s->name, (unsigned long long)o.seed);
            progress rp = *p;
            rp.prefix = prefix;
            rp.show_iters = p->verbose;
            o.on_iter = on_iter;
            o.on_iter_user = &rp;
            gmm_model *m = NULL;
            gmm_status st = gmm_session_fit(ses, &o, &m);
            if (st == GMM_OK) {
                int len = 0;
                const double *tr = gmm_model_loglik_trace(m, &len);
                s->loglik[s->n_ok] = tr[len - 1];
                s->n_iter[s->n_ok] = gmm_model_n_iter(m);
                s->converged[s->n_ok] = gmm_model_converged(m);
                if (!p->quiet)
                    fprintf(stderr, "%slower bound %.4f (total) after %d iterations%s\n", prefix, tr[len - 1], len,
                            gmm_model_converged(m) ? "" : " (not converged)");
                s->n_ok++;
                gmm_model_free(m);
            } else if (st == GMM_ERR_NOMEM) {
                return st;
            } else if (!p->quiet) {
                fprintf(stderr, "%sfailed: %s\n", prefix, gmm_last_error());
            }
        }
    }
    return GMM_OK;
}


/* What `gmm fit` was asked for. */
typedef struct fit_args {
    gmm_options o;
    const char *data_path, *out_dir, *init_model_path, *warm_path;
    long study_runs;
    int init_given, cov_given, n_init_given;
    progress prog;
} fit_args;

/* Parses fit's command line into a. Returns -1 to go on, or the exit status (0 after --help, EXIT_USAGE
 * after the message). */
static int parse_fit_args(int argc, char **argv, fit_args *a)
{
    static const struct option opts[] = {{"components", required_argument, 0, 'k'},
                                         {"init", required_argument, 0, 'i'},
                                         {"init-model", required_argument, 0, 'I'},
                                         {"n-init", required_argument, 0, 'N'},
                                         {"covariance", required_argument, 0, 'C'},
                                         {"warm-start", required_argument, 0, 'W'},
                                         {"max-iter", required_argument, 0, 'm'},
                                         {"tol", required_argument, 0, 't'},
                                         {"reg-covar", required_argument, 0, 'r'},
                                         {"seed", required_argument, 0, 's'},
                                         {"threads", required_argument, 0, 'T'},
                                         {"out", required_argument, 0, 'o'},
                                         {"init-study", required_argument, 0, 'S'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {"device", required_argument, 0, 'D'},
                                         {"dtype", required_argument, 0, 'P'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    gmm_options_init(&a->o);
    a->o.n_components = 0;
    a->o.backend = GMM_BACKEND_AUTO;
    a->out_dir = "gmm-out";
    a->prog = (progress){0, 0, "", 1};
    long v = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (parse_long(optarg, 1, MAX_COMPONENTS, &v))
                return usage_error("fit", "-k expects a whole number from 1 to " STR(MAX_COMPONENTS) ", got '%s'",
                                   optarg);
            a->o.n_components = (int)v;
            break;
        case 'I': a->init_model_path = optarg; break;
        case 'W': a->warm_path = optarg; break;
        case 'C':
            if (gmm_covariance_parse(optarg, &a->o.covariance_type))
                return usage_error("fit", "--covariance expects full, tied, diag or spherical, got '%s'", optarg);
            a->cov_given = 1;
            break;
        case 'o': a->out_dir = optarg; break;
        case 'S':
            if (parse_long(optarg, 1, MAX_STUDY_RUNS, &v))
                return usage_error(
                    "fit", "--init-study expects a whole number from 1 to " STR(MAX_STUDY_RUNS) ", got '%s'", optarg);
            a->study_runs = v;
            break;
        case 'q': a->prog.quiet = 1; break;
        case 'v': a->prog.verbose = 1; break;
        case 'h': fputs(FIT_USAGE, stdout); return 0;
        case ':': return usage_error("fit", "option '%s' needs a value", argv[optind - 1]);
        default: {
            int rc = parse_em_option("fit", c, optarg, &a->o);
            if (rc > 0) return rc;
            if (rc < 0) return usage_error("fit", "unknown option '%s'", argv[optind - 1]);
            a->init_given |= c == 'i';
            a->n_init_given |= c == 'N';
        }
        }
    }
    if (optind >= argc) return usage_error("fit", "%s", "missing DATA file");
    if (optind + 1 < argc) return usage_error("fit", "unexpected argument '%s'", argv[optind + 1]);
    if (a->o.n_components == 0) return usage_error("fit", "%s", "missing -k K (number of components)");
    if (a->init_model_path && a->warm_path)
        return usage_error("fit", "%s", "--init-model and --warm-start exclude each other");
    if (a->warm_path && (a->init_given || a->n_init_given))
        return usage_error("fit", "%s", "--warm-start starts from the model: it excludes --init and --n-init");
    if (a->study_runs > 0 && a->o.max_iter == 0)
        return usage_error("fit", "%s", "--init-study compares fitted log-likelihoods: it needs --max-iter >= 1");
    a->data_path = argv[optind];
    return -1;
}

/* Reads the --init-model or --warm-start file (if any) into init, checks it against the fit's options and
 * the data's d, and points a->o's initial parameters at it. 0, or 1 after the message. */
static int load_init_file(fit_args *a, size_t d, gmm_init_file *init)
{
    memset(init, 0, sizeof *init);
    const char *init_path = a->init_model_path ? a->init_model_path : a->warm_path;
    if (!init_path) return 0;
    gmm_status st = gmm_init_file_load(init_path, init);
    if (st != GMM_OK) return fail("fit", st);
    gmm_options *o = &a->o;
    /* --warm-start continues the model as it is, type included; --init-model never changes --covariance */
    if (a->warm_path && !a->cov_given && init->type != o->covariance_type) {
        o->covariance_type = init->type;
        if (!a->prog.quiet)
            fprintf(stderr, "gmm fit: --warm-start: %s covariances, as in %s\n", gmm_covariance_name(init->type),
                    a->warm_path);
    }
    char msg[512] = "";
    if (a->warm_path && !(init->weights && init->means && init->precisions))
        snprintf(msg, sizeof msg, "--warm-start needs a model with weights, means and covariances (or precisions)");
    else if (init->precisions && init->type != o->covariance_type)
        snprintf(msg, sizeof msg,
                 "%s holds %s covariances but the fit asks for --covariance %s%s; give "
                 "--covariance %s to use them",
                 init_path, gmm_covariance_name(init->type), gmm_covariance_name(o->covariance_type),
                 a->cov_given ? "" : " (the default)", gmm_covariance_name(init->type));
    else if (init->k && init->k != (size_t)o->n_components)
        snprintf(msg, sizeof msg, "%s has %zu components but the fit asks for -k %d", init_path, init->k,
                 o->n_components);
    else if (init->d && init->d != d)
        snprintf(msg, sizeof msg, "%s has %zu features but %s has %zu", init_path, init->d, a->data_path, d);
    if (msg[0]) {
        fprintf(stderr, "gmm fit: %s\n", msg);
        return 1;
    }
    o->weights_init = init->weights;
    o->means_init = init->means;
    o->precisions_init = init->precisions;
    if (a->warm_path) {
        o->n_init = 1;
        o->warm_lower_bound = init->lower_bound; /* scikit-learn's warm_start keeps lower_bound_ */
    }
    return 0;
}

/* What a fit computed: the model, the init study, and the training points' labels with BIC and AIC. */
typedef struct fit_result {
    gmm_model *m;
    gmm_study_method study[N_STUDY_METHODS];
    int *labels;  /* (n) */
    double *logp; /* (n) */
    double fit_seconds, bic, aic;
    double final_mean; /* mean log p of the training points under the final model (what BIC and AIC use) */
} fit_result;

static void fit_result_free(fit_result *r)
{
    study_free(r->study, N_STUDY_METHODS);
    free(r->labels);
    free(r->logp);
    gmm_model_free(r->m);
    memset(r, 0, sizeof *r);
}

/* The computation of `gmm fit` on one session (the data opened, on a GPU uploaded, once): the fit, the init
 * study, then labels and log p of the training points from the fit's own backend (fit_predict), BIC and AIC
 * from them. Progress on stderr. */
static gmm_status run_fit(fit_args *a, const double *x, size_t n, size_t d, fit_result *r)
{
    memset(r, 0, sizeof *r);
    gmm_options *o = &a->o;
    o->on_iter = on_iter;
    o->on_iter_user = &a->prog;
    double t0 = gmm_now();
    gmm_session ses;
    gmm_status st = gmm_session_open(&ses, x, n, d, o, (size_t)o->n_components);
    if (st == GMM_OK) st = gmm_session_fit(&ses, o, &r->m);
    r->fit_seconds = gmm_now() - t0;
    if (st == GMM_OK) {
        if (!a->prog.quiet) fprintf(stderr, "gmm fit: device: %s\n", gmm_model_device(r->m));
        /* as scikit-learn: no convergence warning for max_iter 0, whose point is the initial parameters */
        if (!gmm_model_converged(r->m) && o->max_iter > 0)
            fprintf(stderr,
                    "gmm fit: warning: did not converge within %d iterations (best run %d); try a larger "
                    "--max-iter or --tol\n",
                    o->max_iter, gmm_model_best_run(r->m) + 1);
        print_empty_warning(stderr, r->m);
    }
    if (st == GMM_OK && a->study_runs > 0) {
        if (!a->prog.quiet)
            fprintf(stderr, "gmm fit: init study: %ld runs x %d methods\n", a->study_runs, N_STUDY_METHODS);
        st = init_study(&ses, o, (int)a->study_runs, &a->prog, r->study);
    }
    if (st == GMM_OK) {
        r->labels = malloc(n * sizeof *r->labels);
        r->logp = malloc(n * sizeof *r->logp);
        if (!r->labels || !r->logp) st = gmm_fail(GMM_ERR_NOMEM, "out of memory for %zu labels and log-densities", n);
    }
    if (st == GMM_OK) st = gmm_session_predict(&ses, r->m, r->logp, r->labels, NULL);
    if (st == GMM_OK) {
        r->final_mean = gmm_mean_logp(r->logp, n);
        r->bic = gmm_bic_from_mean(r->m, r->final_mean, n);
        r->aic = gmm_aic_from_mean(r->m, r->final_mean, n);
    }
    gmm_session_close(&ses);
    return st;
}

/* Writes the whole result set of a fit into dir (the private staging folder; shown_dir is the name the
 * reader knows it by): model.json, labels.csv, loglik.csv, the plots and report.md. report.md reads
 * clusters_points.dat back from dir, which no other process writes. */
static gmm_status write_fit_outputs(const char *dir, const char *shown_dir, const fit_args *a, const double *x,
                                    size_t n, size_t d, const fit_result *r, int render)
{
    gmm_status st;
    char *model_path = gmm_path_join(dir, "model.json");
    st = model_path ? gmm_model_save(r->m, model_path) : GMM_ERR_NOMEM;
    free(model_path);
    if (st != GMM_OK) return st;
    if ((st = gmm_write_labels(dir, r->labels, n)) != GMM_OK) return st;
    if ((st = gmm_write_loglik(dir, r->m)) != GMM_OK) return st;
    const int has_trace = gmm_model_n_iter(r->m) > 0; /* max_iter 0: no iteration, no loglik.png */
    if (has_trace && (st = gmm_plot_loglik(dir, r->m, render)) != GMM_OK) return st;
    if ((st = gmm_plot_clusters(dir, x, n, d, r->labels, r->m, 500, a->o.seed, render)) != GMM_OK) return st;
    if (a->study_runs > 0 && (st = gmm_plot_init_study(dir, r->study, N_STUDY_METHODS, render)) != GMM_OK) return st;
    gmm_report rep;
    memset(&rep, 0, sizeof rep);
    rep.data_path = a->data_path;
    rep.shown_dir = shown_dir;
    rep.x = x;
    rep.n = n;
    rep.d = d;
    rep.model = r->m;
    rep.labels = r->labels;
    rep.options = &a->o;
    rep.device = gmm_model_device(r->m);
    rep.fit_seconds = r->fit_seconds;
    rep.study = a->study_runs > 0 ? r->study : NULL;
    rep.n_study = a->study_runs > 0 ? N_STUDY_METHODS : 0;
    rep.loglik = r->final_mean * (double)n;
    rep.bic = r->bic;
    rep.aic = r->aic;
    rep.plots_rendered = render;
    return gmm_write_report(dir, &rep);
}

/* The summary of a fit on standard output. */
static void print_fit_summary(const fit_args *a, const fit_result *r, size_t n, int render)
{
    const gmm_model *m = r->m;
    const char *out_dir = a->out_dir;
    const int it = gmm_model_n_iter(m);
    printf("converged: %s after %d iteration%s (best of %d run%s)\n", gmm_model_converged(m) ? "yes" : "no", it,
           it == 1 ? "" : "s", a->o.n_init, a->o.n_init == 1 ? "" : "s");
    printf("log-likelihood of the final model: %.4f (mean per point %.6f)\n", r->final_mean * (double)n,
           r->final_mean);
    if (it > 0)
        printf("lower bound (scikit-learn's lower_bound_, parameters entering iteration %d): %.4f (mean per point "
               "%.6f)\n",
               it, gmm_model_lower_bound(m) * (double)n, gmm_model_lower_bound(m));
    else
        printf("lower bound: -inf (no EM iteration, as scikit-learn's lower_bound_ with max_iter 0)\n");
    printf("BIC: %.4f  AIC: %.4f (final model)\n", r->bic, r->aic);
    print_model(stdout, m);
    const int has_trace = it > 0;
    printf("wrote %s/{model.json, labels.csv, loglik.csv, report.md%s%s%s}\n", out_dir,
           render && has_trace ? ", loglik.png" : "", render ? ", clusters.png" : "",
           render && a->study_runs > 0 ? ", init_study.png" : "");
    if (!render)
        printf("gnuplot (with pngcairo) was not found: the plots' scripts are in %s; render them with\n"
               "  cd '%s' && gnuplot%s clusters.gp%s\n",
               out_dir, out_dir, has_trace ? " loglik.gp" : "", a->study_runs > 0 ? " init_study.gp" : "");
}

/* Ends a result folder begun by gmm_outdir_begin: swaps the staging folder in when st is GMM_OK, else
 * removes it and the folders the run created, keeping st's message. Returns the final status. */
static gmm_status finish_outdir(gmm_outdir *out, gmm_status st)
{
    if (st == GMM_OK) return gmm_outdir_commit(out);
    char msg[1024]; /* the removal below must not lose the message */
    snprintf(msg, sizeof msg, "%s", gmm_last_error());
    gmm_outdir_abort(out);
    return gmm_fail(st, "%s", msg);
}

/* gmm fit: the whole result set is written into a staging folder and swapped in as --out DIR only when
 * every file is complete (outdir.h); a failure leaves DIR as it was and removes the folders it created. */
static int cmd_fit(int argc, char **argv)
{
    fit_args a;
    int rc = parse_fit_args(argc, argv, &a);
    if (rc >= 0) return rc;
    double *x = NULL;
    size_t n = 0, d = 0;
    gmm_status st = gmm_read_data(a.data_path, &x, &n, &d);
    if (st != GMM_OK) return fail("fit", st);
    gmm_init_file init;
    if ((rc = load_init_file(&a, d, &init)) != 0) {
        gmm_init_file_free(&init);
        free(x);
        return rc;
    }
    gmm_outdir out;
    if ((st = gmm_outdir_begin(&out, a.out_dir)) != GMM_OK) {
        gmm_init_file_free(&init);
        free(x);
        return fail("fit", st);
    }
    if (!a.prog.quiet)
        fprintf(stderr, "gmm fit: %zu points x %zu features from %s; k = %d, %s covariances, init %s\n", n, d,
                a.data_path, a.o.n_components, gmm_covariance_name(a.o.covariance_type), gmm_init_name(a.o.init));
    fit_result r;
    int render = 0;
    st = run_fit(&a, x, n, d, &r);
    if (st == GMM_OK) {
        render = gmm_gnuplot_available();
        st = write_fit_outputs(out.staging, a.out_dir, &a, x, n, d, &r, render);
    }
    st = finish_outdir(&out, st);
    if (st == GMM_OK) {
        if (out.warning[0]) fprintf(stderr, "gmm fit: warning: %s\n", out.warning);
        print_fit_summary(&a, &r, n, render);
    } else {
        rc = fail("fit", st);
    }
    fit_result_free(&r);
    gmm_init_file_free(&init);
    free(x);
    return rc < 0 ? 0 : rc;
}

/* ---------------------------------------------------------------------------------------- predict etc */

/* Loads MODEL and DATA and checks that their dimensions agree. */
static int load_model_and_data(const char *cmd, const char *model_path, const char *data_path, gmm_model **m,
                               double **x, size_t *n)
{
    size_t d = 0;
    gmm_status st = gmm_model_load(model_path, m);
    if (st != GMM_OK) return fail(cmd, st);
    st = gmm_read_data(data_path, x, n, &d);
    if (st != GMM_OK) {
        gmm_model_free(*m);
        return fail(cmd, st);
    }
    if (d != gmm_model_n_features(*m)) {
        fprintf(stderr, "gmm %s: %s has %zu features per row but the model %s has %zu\n", cmd, data_path, d,
                model_path, gmm_model_n_features(*m));
        gmm_model_free(*m);
        free(*x);
        return 1;
    }
    return 0;
}

/* Opens the output: the atomic file for -o PATH, or stdout. */
static int open_output(const char *cmd, const char *path, gmm_atomic_file *af, FILE **f)
{
    if (!path) {
        *f = stdout;
        return 0;
    }
    gmm_status st = gmm_atomic_open(af, path);
    if (st != GMM_OK) return fail(cmd, st);
    *f = af->f;
    return 0;
}

/* Commits -o PATH (a write error is an error naming PATH); standard output is checked once, at the end of
 * main. */
static int close_output(const char *cmd, const char *path, gmm_atomic_file *af)
{
    if (!path) return 0;
    gmm_status st = gmm_atomic_commit(af);
    return st == GMM_OK ? 0 : fail(cmd, st);
}

/* Opens the session of predict / score on x (n, d = the model's) with the --device / --dtype of o, for
 * models of m's size, and says on stderr which device it uses; 0, or 1 after the message. */
static int open_infer_session(const char *cmd, gmm_session *s, const gmm_model *m, const double *x, size_t n,
                              const gmm_options *o)
{
    gmm_status st = gmm_session_open(s, x, n, gmm_model_n_features(m), o, gmm_model_n_components(m));
    if (st != GMM_OK) return fail(cmd, st);
    fprintf(stderr, "gmm %s: device: %s\n", cmd, s->device);
    return 0;
}

/* Responsibilities of `predict --proba` are computed and written this many bytes at a time, never N x K. */
#define PROBA_CHUNK_BYTES ((size_t)16 << 20)

static void write_proba_rows(FILE *f, const double *resp, size_t rows, size_t k)
{
    for (size_t i = 0; i < rows; i++) {
        const double *p = resp + i * k;
        for (size_t j = 0; j < k; j++) fprintf(f, "%s%.17g", j ? "," : "", p[j]);
        fputc('\n', f);
    }
}

/* predict --proba: one session per chunk of rows (the first chooses the device, the others keep it), each
 * chunk's responsibilities written before the next is computed. */
static int predict_proba_stream(const char *out, const gmm_model *m, const double *x, size_t n, gmm_options o)
{
    const size_t k = gmm_model_n_components(m), d = gmm_model_n_features(m);
    size_t chunk = PROBA_CHUNK_BYTES / (k * sizeof(double));
    if (chunk == 0) chunk = 1;
    if (chunk > n) chunk = n;
    double *resp = malloc(chunk * k * sizeof *resp);
    if (!resp)
        return fail("predict", gmm_fail(GMM_ERR_NOMEM,
                                        "out of memory for the responsibilities of %zu rows x %zu "
                                        "components",
                                        chunk, k));
    gmm_atomic_file af;
    FILE *f = NULL;
    int rc = 0;
    for (size_t start = 0; start < n && !rc; start += chunk) {
        size_t rows = n - start < chunk ? n - start : chunk;
        gmm_session ses;
        if (start == 0) {
            rc = open_infer_session("predict", &ses, m, x, rows, &o);
            if (rc) break;
            o.backend = strncmp(ses.device, "CUDA", 4) == 0 ? GMM_BACKEND_CUDA : GMM_BACKEND_CPU;
        } else {
            gmm_status st = gmm_session_open(&ses, x + start * d, rows, d, &o, k);
            if (st != GMM_OK) {
                rc = fail("predict", st);
                break;
            }
        }
        gmm_status st = gmm_session_predict(&ses, m, NULL, NULL, resp);
        gmm_session_close(&ses);
        if (st != GMM_OK) rc = fail("predict", st);
        if (!rc && !f) rc = open_output("predict", out, &af, &f);
        if (rc) break;
        write_proba_rows(f, resp, rows, k);
        if (ferror(f)) break; /* reported by close_output, or for standard output at the end of main */
    }
    if (f) {
        if (!rc)
            rc = close_output("predict", out, &af);
        else if (out)
            gmm_atomic_abort(&af);
    }
    free(resp);
    return rc;
}

/* predict without --proba: every label (n ints) in one pass, then written. */
static int predict_labels(const char *out, const gmm_model *m, const double *x, size_t n, const gmm_options *o)
{
    gmm_session ses;
    int rc = open_infer_session("predict", &ses, m, x, n, o);
    if (rc) return rc;
    int *labels = malloc(n * sizeof *labels);
    gmm_status st = labels ? gmm_session_predict(&ses, m, NULL, labels, NULL)
                           : gmm_fail(GMM_ERR_NOMEM, "out of memory for %zu labels", n);
    gmm_session_close(&ses);
    if (st != GMM_OK) rc = fail("predict", st);
    gmm_atomic_file af;
    FILE *f = NULL;
    if (!rc) rc = open_output("predict", out, &af, &f);
    if (!rc) {
        for (size_t i = 0; i < n && !ferror(f); i++) fprintf(f, "%d\n", labels[i]);
        rc = close_output("predict", out, &af);
    }
    free(labels);
    return rc;
}

static int cmd_predict(int argc, char **argv)
{
    static const struct option opts[] = {{"proba", no_argument, 0, 'p'},        {"output", required_argument, 0, 'o'},
                                         {"device", required_argument, 0, 'D'}, {"dtype", required_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int proba = 0, c;
    const char *out = NULL;
    gmm_options o;
    gmm_options_init(&o);
    o.backend = GMM_BACKEND_AUTO;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'p': proba = 1; break;
        case 'o': out = optarg; break;
        case 'h': fputs(PREDICT_USAGE, stdout); return 0;
        case ':': return usage_error("predict", "option '%s' needs a value", argv[optind - 1]);
        case 'D':
        case 'P': {
            int rc = parse_em_option("predict", c, optarg, &o);
            if (rc) return rc;
            break;
        }
        default: return usage_error("predict", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return usage_error("predict", "%s", "expected MODEL and DATA");
    gmm_model *m = NULL;
    double *x = NULL;
    size_t n = 0;
    int rc = load_model_and_data("predict", argv[optind], argv[optind + 1], &m, &x, &n);
    if (rc) return rc;
    rc = proba ? predict_proba_stream(out, m, x, n, o) : predict_labels(out, m, x, n, &o);
    free(x);
    gmm_model_free(m);
    return rc;
}


static int cmd_score(int argc, char **argv)
{
    static const struct option opts[] = {{"device", required_argument, 0, 'D'},
                                         {"dtype", required_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    gmm_options o;
    gmm_options_init(&o);
    o.backend = GMM_BACKEND_AUTO;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(SCORE_USAGE, stdout); return 0;
        case ':': return usage_error("score", "option '%s' needs a value", argv[optind - 1]);
        case 'D':
        case 'P': {
            int rc = parse_em_option("score", c, optarg, &o);
            if (rc) return rc;
            break;
        }
        default: return usage_error("score", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return usage_error("score", "%s", "expected MODEL and DATA");
    gmm_model *m = NULL;
    double *x = NULL;
    size_t n = 0;
    int rc = load_model_and_data("score", argv[optind], argv[optind + 1], &m, &x, &n);
    if (rc) return rc;
    gmm_session ses;
    rc = open_infer_session("score", &ses, m, x, n, &o);
    double *logp = rc ? NULL : malloc(n * sizeof *logp);
    gmm_status st = GMM_OK;
    if (!rc) {
        /* one pass for log p; mean, total, BIC and AIC follow from it as gmm_score / gmm_bic / gmm_aic compute them */
        st = logp ? gmm_session_predict(&ses, m, logp, NULL, NULL)
                  : gmm_fail(GMM_ERR_NOMEM, "out of memory for %zu log-densities", n);
        if (st != GMM_OK) {
            rc = fail("score", st);
        } else {
            const double mean = gmm_mean_logp(logp, n);
            printf("points: %zu\nmean log-likelihood: %.17g\ntotal log-likelihood: %.17g\nBIC: %.17g\nAIC: %.17g\n",
                   n, mean, mean * (double)n, gmm_bic_from_mean(m, mean, n), gmm_aic_from_mean(m, mean, n));
        }
    }
    gmm_session_close(&ses);
    free(logp);
    free(x);
    gmm_model_free(m);
    return rc;
}

static int cmd_sample(int argc, char **argv)
{
    static const struct option opts[] = {{"samples", required_argument, 0, 'n'},
                                         {"seed", required_argument, 0, 's'},
                                         {"output", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    long count = 0;
    uint64_t seed = 0;
    const char *out = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_long(optarg, 1, MAX_SAMPLES, &count))
                return usage_error("sample", "-n expects a whole number from 1 to 2000000000, got '%s'", optarg);
            break;
        case 's':
            if (parse_u64(optarg, &seed))
                return usage_error("sample", "--seed expects a whole number from 0 to 18446744073709551615, got '%s'",
                                   optarg);
            break;
        case 'o': out = optarg; break;
        case 'h': fputs(SAMPLE_USAGE, stdout); return 0;
        case ':': return usage_error("sample", "option '%s' needs a value", argv[optind - 1]);
        default: return usage_error("sample", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return usage_error("sample", "%s", "expected one MODEL file");
    if (count == 0) return usage_error("sample", "%s", "missing -n N (number of points)");
    gmm_model *m = NULL;
    gmm_status st = gmm_model_load(argv[optind], &m);
    if (st != GMM_OK) return fail("sample", st);
    double *x = NULL;
    st = gmm_sample(m, (size_t)count, seed, &x, NULL);
    int rc = 0;
    if (st != GMM_OK) {
        rc = fail("sample", st);
    } else if (out) {
        st = gmm_write_csv(out, x, (size_t)count, gmm_model_n_features(m));
        if (st != GMM_OK) rc = fail("sample", st);
    } else {
        size_t d = gmm_model_n_features(m);
        /* a write error is reported for standard output at the end of main */
        for (long i = 0; i < count && !ferror(stdout); i++)
            for (size_t j = 0; j < d; j++) printf("%.17g%c", x[(size_t)i * d + j], j + 1 < d ? ',' : '\n');
    }
    free(x);
    gmm_model_free(m);
    return rc;
}

/* Parses "A..B" or "K" into 1 <= lo <= hi. */


/* Parses "A..B" or "K" into 1 <= lo <= hi <= MAX_COMPONENTS. */
static int parse_k_range(const char *s, long *lo, long *hi)
{
    const char *dots = strstr(s, "..");
    char buf[64];
    if (!dots) {
        if (parse_long(s, 1, MAX_COMPONENTS, lo)) return -1;
        *hi = *lo;
        return 0;
    }
    size_t len = (size_t)(dots - s);
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (parse_long(buf, 1, MAX_COMPONENTS, lo) || parse_long(dots + 2, 1, MAX_COMPONENTS, hi) || *hi < *lo) return -1;
    return 0;
}

/* What `gmm select` was asked for. */
typedef struct select_args {
    gmm_options o;
    const char *data_path, *out_dir;
    long klo, khi;
    int types[4]; /* 1 for each covariance type to try */
    int quiet;
} select_args;

/* Parses select's command line into a. Returns -1 to go on, or the exit status (0 after --help,
 * EXIT_USAGE after the message). */
static int parse_select_args(int argc, char **argv, select_args *a)
{
    static const struct option opts[] = {{"k", required_argument, 0, 'k'},
                                         {"covariance", required_argument, 0, 'C'},
                                         {"init", required_argument, 0, 'i'},
                                         {"n-init", required_argument, 0, 'N'},
                                         {"max-iter", required_argument, 0, 'm'},
                                         {"tol", required_argument, 0, 't'},
                                         {"reg-covar", required_argument, 0, 'r'},
                                         {"seed", required_argument, 0, 's'},
                                         {"threads", required_argument, 0, 'T'},
                                         {"out", required_argument, 0, 'o'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {"device", required_argument, 0, 'D'},
                                         {"dtype", required_argument, 0, 'P'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    gmm_options_init(&a->o);
    a->o.backend = GMM_BACKEND_AUTO;
    a->out_dir = "gmm-select";
    for (int t = 0; t < 4; t++) a->types[t] = 1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (parse_k_range(optarg, &a->klo, &a->khi))
                return usage_error(
                    "select", "--k expects A..B or K with 1 <= A <= B <= " STR(MAX_COMPONENTS) ", got '%s'", optarg);
            break;
        case 'C': {
            if (!strcmp(optarg, "all")) break;
            memset(a->types, 0, sizeof a->types);
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                gmm_covariance_type t;
                if (gmm_covariance_parse(tok, &t))
                    return usage_error("select",
                                       "--covariance expects all or a list of full, tied, diag, spherical, got '%s'",
                                       optarg);
                a->types[t] = 1;
            }
            break;
        }
        case 'o': a->out_dir = optarg; break;
        case 'q': a->quiet = 1; break;
        case 'h': fputs(SELECT_USAGE, stdout); return 0;
        case ':': return usage_error("select", "option '%s' needs a value", argv[optind - 1]);
        default: {
            int rc = parse_em_option("select", c, optarg, &a->o);
            if (rc > 0) return rc;
            if (rc < 0) return usage_error("select", "unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (optind >= argc) return usage_error("select", "%s", "missing DATA file");
    if (optind + 1 < argc) return usage_error("select", "unexpected argument '%s'", argv[optind + 1]);
    if (a->klo == 0) return usage_error("select", "%s", "missing --k A..B (numbers of components to try)");
    a->data_path = argv[optind];
    return -1;
}

/* Fits candidate r (its k and type set) on the session; fills r, and hands the model out in *m (NULL when the
 * fit failed: r->error says why). logp is scratch (n). Only GMM_ERR_NOMEM is returned as a failure. */
static gmm_status fit_candidate(gmm_session *ses, const gmm_options *base, double *logp, size_t n,
                                gmm_selection_row *r, gmm_model **m)
{
    gmm_options oc = *base;
    oc.n_components = r->k;
    oc.covariance_type = r->type;
    *m = NULL;
    gmm_status st = gmm_session_fit(ses, &oc, m);
    double mean = 0;
    if (st == GMM_OK) st = gmm_session_predict(ses, *m, logp, NULL, NULL);
    if (st == GMM_OK) {
        mean = gmm_mean_logp(logp, n);
        r->bic = gmm_bic_from_mean(*m, mean, n);
        r->aic = gmm_aic_from_mean(*m, mean, n);
        r->ok = 1;
        r->loglik = mean * (double)n;
        r->n_iter = gmm_model_n_iter(*m);
        r->converged = gmm_model_converged(*m);
        return GMM_OK;
    }
    gmm_model_free(*m);
    *m = NULL;
    snprintf(r->error, sizeof r->error, "%s", gmm_last_error());
    return st == GMM_ERR_NOMEM ? st : GMM_OK;
}

/* One progress line for candidate r (row of n_rows) on stderr. */
static void print_candidate(const gmm_selection_row *r, size_t row, size_t n_rows, size_t n_empty, double seconds)
{
    if (r->ok)
        fprintf(stderr,
                "gmm select: [%zu/%zu] k = %d, %s: loglik %.4f, BIC %.4f, AIC %.4f, %d iterations%s%s "
                "(%.2f s)\n",
                row + 1, n_rows, r->k, gmm_covariance_name(r->type), r->loglik, r->bic, r->aic, r->n_iter,
                r->converged ? "" : " (not converged)", n_empty ? " (some components emptied)" : "", seconds);
    else
        fprintf(stderr, "gmm select: [%zu/%zu] k = %d, %s: failed: %s\n", row + 1, n_rows, r->k,
                gmm_covariance_name(r->type), r->error);
}

/* Fits every candidate (each requested type, k from klo to khi) on one session, filling rows (n_rows) and
 * keeping the lowest-BIC model in *best (row *best_row; NULL when every candidate failed). */
static gmm_status select_candidates(const select_args *a, gmm_session *ses, size_t n, gmm_selection_row *rows,
                                    size_t n_rows, gmm_model **best, size_t *best_row)
{
    double *logp = malloc(n * sizeof *logp);
    if (!logp) return gmm_fail(GMM_ERR_NOMEM, "out of memory for %zu log-densities", n);
    gmm_status st = GMM_OK;
    size_t row = 0;
    *best = NULL;
    *best_row = n_rows;
    for (int t = 0; t < 4 && st == GMM_OK; t++) {
        if (!a->types[t]) continue;
        for (long k = a->klo; k <= a->khi && st == GMM_OK; k++, row++) {
            gmm_selection_row *r = &rows[row];
            r->k = (int)k;
            r->type = (gmm_covariance_type)t;
            gmm_model *m = NULL;
            double t0 = gmm_now();
            st = fit_candidate(ses, &a->o, logp, n, r, &m);
            const size_t n_empty = m ? gmm_count_emptied(m) : 0;
            if (m && (*best_row == n_rows || r->bic < rows[*best_row].bic)) {
                gmm_model_free(*best);
                *best = m;
                *best_row = row;
                m = NULL;
            }
            gmm_model_free(m);
            if (!a->quiet && st == GMM_OK) print_candidate(r, row, n_rows, n_empty, gmm_now() - t0);
        }
    }
    free(logp);
    return st;
}

/* Writes selection.csv, the selection plot and the best model.json into dir (the staging folder). */
static gmm_status write_select_outputs(const char *dir, const gmm_selection_row *rows, size_t n_rows,
                                       const gmm_model *best, int render)
{
    gmm_status st;
    if ((st = gmm_write_selection(dir, rows, n_rows)) != GMM_OK) return st;
    if ((st = gmm_plot_selection(dir, rows, n_rows, render)) != GMM_OK) return st;
    char *model_path = gmm_path_join(dir, "model.json");
    st = model_path ? gmm_model_save(best, model_path) : GMM_ERR_NOMEM;
    free(model_path);
    return st;
}

/* The table of candidates and the best one on standard output. */
static void print_select_table(const char *out_dir, const gmm_selection_row *rows, size_t n_rows, size_t best_row,
                               int render)
{
    printf("%4s  %-10s  %16s  %16s  %16s  %5s\n", "k", "covariance", "loglik", "BIC", "AIC", "iter");
    for (size_t i = 0; i < n_rows; i++) {
        const gmm_selection_row *r = &rows[i];
        if (r->ok)
            printf("%4d  %-10s  %16.4f  %16.4f  %16.4f  %5d%s\n", r->k, gmm_covariance_name(r->type), r->loglik,
                   r->bic, r->aic, r->n_iter, i == best_row ? "  <- best BIC" : "");
        else
            printf("%4d  %-10s  failed: %s\n", r->k, gmm_covariance_name(r->type), r->error);
    }
    printf("best: k = %d, covariance %s (BIC %.4f); wrote %s/{selection.csv, %s, model.json}\n", rows[best_row].k,
           gmm_covariance_name(rows[best_row].type), rows[best_row].bic, out_dir,
           render ? "selection.png" : "selection.gp (gnuplot not found: run it there to draw selection.png)");
}

/* Runs the candidates on one session (the data opened, on a GPU uploaded, once; --device auto decides with
 * the largest k) and writes the result set into out's staging folder. */
static gmm_status run_select(const select_args *a, const double *x, size_t n, size_t d, gmm_outdir *out,
                             gmm_selection_row *rows, size_t n_rows, size_t *best_row, int *render)
{
    gmm_session ses;
    gmm_status st = gmm_session_open(&ses, x, n, d, &a->o, (size_t)a->khi);
    if (st != GMM_OK) return st;
    if (!a->quiet) fprintf(stderr, "gmm select: device: %s\n", ses.device);
    gmm_model *best = NULL;
    st = select_candidates(a, &ses, n, rows, n_rows, &best, best_row);
    gmm_session_close(&ses);
    if (st == GMM_OK && !best) st = gmm_fail(GMM_ERR_INVALID_ARG, "every candidate failed; nothing written");
    if (st == GMM_OK) {
        *render = gmm_gnuplot_available();
        st = write_select_outputs(out->staging, rows, n_rows, best, *render);
    }
    gmm_model_free(best);
    return st;
}

/* gmm select: like fit, the result set goes through a staging folder and replaces --out DIR whole. */
static int cmd_select(int argc, char **argv)
{
    select_args a;
    int rc = parse_select_args(argc, argv, &a);
    if (rc >= 0) return rc;
    double *x = NULL;
    size_t n = 0, d = 0;
    gmm_status st = gmm_read_data(a.data_path, &x, &n, &d);
    if (st != GMM_OK) return fail("select", st);
    size_t n_types = (size_t)(a.types[0] + a.types[1] + a.types[2] + a.types[3]);
    size_t n_rows = n_types * (size_t)(a.khi - a.klo + 1), best_row = 0;
    gmm_selection_row *rows = calloc(n_rows, sizeof *rows);
    if (!rows) {
        free(x);
        return fail("select", gmm_fail(GMM_ERR_NOMEM, "out of memory for %zu candidates", n_rows));
    }
    gmm_outdir out;
    int render = 0;
    st = gmm_outdir_begin(&out, a.out_dir);
    if (st == GMM_OK) {
        st = run_select(&a, x, n, d, &out, rows, n_rows, &best_row, &render);
        st = finish_outdir(&out, st);
    }
    if (st == GMM_OK) {
        if (out.warning[0]) fprintf(stderr, "gmm select: warning: %s\n", out.warning);
        print_select_table(a.out_dir, rows, n_rows, best_row, render);
        rc = 0;
    } else {
        rc = fail("select", st);
    }
    free(rows);
    free(x);
    return rc;
}


/* Runs the command argv[1]; its exit status. */
static int run_command(int argc, char **argv)
{
    if (argc < 2) {
        fputs(MAIN_USAGE, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        if (argc > 2) {
            char *sub[] = {argv[2], "--help", NULL};
            if (!strcmp(argv[2], "fit")) return cmd_fit(2, sub);
            if (!strcmp(argv[2], "predict")) return cmd_predict(2, sub);
            if (!strcmp(argv[2], "score")) return cmd_score(2, sub);
            if (!strcmp(argv[2], "sample")) return cmd_sample(2, sub);
            if (!strcmp(argv[2], "select")) return cmd_select(2, sub);
        }
        fputs(MAIN_USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("gmm 0.1.0\n");
        return 0;
    }
    if (!strcmp(cmd, "fit")) return cmd_fit(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "score")) return cmd_score(argc - 1, argv + 1);
    if (!strcmp(cmd, "sample")) return cmd_sample(argc - 1, argv + 1);
    if (!strcmp(cmd, "select")) return cmd_select(argc - 1, argv + 1);
    fprintf(stderr, "gmm: unknown command '%s'\n\n%s", cmd, MAIN_USAGE);
    return EXIT_USAGE;
}

/* Flushes and closes standard output: a write that failed at any point (a full disk, /dev/full, a closed
 * pipe) is an error naming standard output, exit status 1 unless the command already failed. */
static int finish_stdout(const char *cmd, int rc)
{
    int failed = ferror(stdout) != 0;
    int err = failed ? errno : 0; /* the failed write's reason, when nothing has overwritten it since */
    errno = 0;
    if (fflush(stdout) != 0) failed = 1;
    if (!err) err = errno;
    if (fclose(stdout) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (!failed) return rc;
    fprintf(stderr, "gmm%s%s: cannot write standard output: %s\n", cmd ? " " : "", cmd ? cmd : "",
            err ? strerror(err) : "a write failed");
    return rc ? rc : 1;
}

int main(int argc, char **argv)
{
    gmm_outdir_install_signal_handlers();
    int rc = run_command(argc, argv);
    const char *cmd = argc >= 2 && argv[1][0] != '-' && strcmp(argv[1], "help") ? argv[1] : NULL;
    return finish_stdout(cmd, rc);
}
