/*
 * cli.c — the `gmm` program: subcommands fit, predict, score and sample over the library in include/gmm.h
 * and the report writer in src/report.h. Exit status: 0 success, 1 failure (bad data, a failed fit, an
 * unwritable output), 2 usage error (unknown option, bad option value, missing argument).
 */
#include "gmm_internal.h"
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
    "Each file is written whole or not at all.\n"
    "\n"
    "options:\n"
    "  -k, --components K   number of components (required)\n"
    "  --init METHOD        kmeans (default), k-means++, random, random_from_data, or binary (the\n"
    "                       assignment's scheme: means drawn from {0,1}^d, identity covariances,\n"
    "                       equal weights)\n"
    "  --covariance TYPE    full (default), tied, diag or spherical (scikit-learn's covariance_type)\n"
    "  --init-model FILE    initial parameters from a JSON file holding any of \"weights\", \"means\",\n"
    "                       \"covariances\" or \"precisions\" (a model.json works): what it holds replaces\n"
    "                       what --init would produce (scikit-learn's weights_init, means_init,\n"
    "                       precisions_init)\n"
    "  --warm-start MODEL   continue from a saved model (all its parameters; --n-init is then 1)\n"
    "  --n-init N           runs from different seeds; the best lower bound wins (default 1)\n"
    "  --max-iter N         EM iterations per run (default 100)\n"
    "  --tol T              stop when the mean per-point log-likelihood changes by less than T\n"
    "                       (default 1e-3)\n"
    "  --reg-covar R        added to every covariance diagonal (default 1e-6)\n"
    "  --seed S             seed of every random choice (default 0)\n"
    "  --threads N          CPU threads (default: all); results do not depend on it\n"
    "  --device DEV         auto (default: a GPU when one is usable, else the CPU), cpu, or cuda (fails\n"
    "                       when no GPU is usable); the device used is printed and in report.md\n"
    "  --dtype TYPE         auto (default: float32 unless it cannot resolve the data or the model, then\n"
    "                       float64, saying why), float32 or float64: the precision on the GPU\n"
    "  --out DIR            output folder, created if missing (default gmm-out)\n"
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
    "is also named on standard output). A candidate that fails (e.g. a collapsed component) is reported\n"
    "and skipped. The data are opened on the device once for all candidates (--device auto decides with\n"
    "the largest k); the device is printed on stderr unless --quiet.\n"
    "\n"
    "options:\n"
    "  --k A..B | --k K     the numbers of components to try (required)\n"
    "  --covariance LIST    all (default), or a comma-separated list of full, tied, diag, spherical\n"
    "  --init METHOD, --n-init N, --max-iter N, --tol T, --reg-covar R, --seed S, --threads N,\n"
    "  --device DEV, --dtype TYPE   as for gmm fit\n"
    "  --out DIR            output folder, created if missing (default gmm-select)\n"
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
            return usage_error(cmd, "--init expects kmeans, k-means++, random, random_from_data or binary, got '%s'", arg);
        return 0;
    case 'N':
        if (parse_long(arg, 1, 1000000, &v)) return usage_error(cmd, "--n-init expects a whole number >= 1, got '%s'", arg);
        o->n_init = (int)v;
        return 0;
    case 'm':
        if (parse_long(arg, 1, 100000000, &v)) return usage_error(cmd, "--max-iter expects a whole number >= 1, got '%s'", arg);
        o->max_iter = (int)v;
        return 0;
    case 't':
        if (parse_nonneg(arg, &o->tol)) return usage_error(cmd, "--tol expects a number >= 0, got '%s'", arg);
        return 0;
    case 'r':
        if (parse_nonneg(arg, &o->reg_covar)) return usage_error(cmd, "--reg-covar expects a number >= 0, got '%s'", arg);
        return 0;
    case 's':
        if (parse_u64(arg, &o->seed)) return usage_error(cmd, "--seed expects a whole number >= 0, got '%s'", arg);
        return 0;
    case 'T':
        if (parse_long(arg, 1, 4096, &v)) return usage_error(cmd, "--threads expects a whole number >= 1, got '%s'", arg);
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

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            buf[i] = c;
        }
    }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
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
        fprintf(stderr, "%srun %d iter %3d  loglik %.6f  change        -  %.3f ms\n", p->prefix, run + 1, iter, loglik,
                1e3 * seconds);
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
        if (!s->loglik || !s->n_iter || !s->converged) return gmm_fail(GMM_ERR_NOMEM, "out of memory in the init study");
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
                    fprintf(stderr, "%sloglik %.4f after %d iterations%s\n", prefix, tr[len - 1], len,
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

static int cmd_fit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"components", required_argument, 0, 'k'}, {"init", required_argument, 0, 'i'},
        {"init-model", required_argument, 0, 'I'}, {"n-init", required_argument, 0, 'N'},
        {"covariance", required_argument, 0, 'C'}, {"warm-start", required_argument, 0, 'W'},
        {"max-iter", required_argument, 0, 'm'},   {"tol", required_argument, 0, 't'},
        {"reg-covar", required_argument, 0, 'r'},  {"seed", required_argument, 0, 's'},
        {"threads", required_argument, 0, 'T'},    {"out", required_argument, 0, 'o'},
        {"init-study", required_argument, 0, 'S'}, {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},          {"help", no_argument, 0, 'h'},
        {"device", required_argument, 0, 'D'},     {"dtype", required_argument, 0, 'P'},
        {0, 0, 0, 0}};
    gmm_options o;
    gmm_options_init(&o);
    o.n_components = 0;
    o.backend = GMM_BACKEND_AUTO;
    const char *out_dir = "gmm-out", *init_model_path = NULL, *warm_path = NULL;
    long study_runs = 0, v = 0;
    int init_given = 0, cov_given = 0, n_init_given = 0;
    progress prog = {0, 0, "", 1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (parse_long(optarg, 1, 100000, &v)) return usage_error("fit", "-k expects a whole number >= 1, got '%s'", optarg);
            o.n_components = (int)v;
            break;
        case 'I': init_model_path = optarg; break;
        case 'W': warm_path = optarg; break;
        case 'C':
            if (gmm_covariance_parse(optarg, &o.covariance_type))
                return usage_error("fit", "--covariance expects full, tied, diag or spherical, got '%s'", optarg);
            cov_given = 1;
            break;
        case 'o': out_dir = optarg; break;
        case 'S':
            if (parse_long(optarg, 1, 100000, &v)) return usage_error("fit", "--init-study expects a whole number >= 1, got '%s'", optarg);
            study_runs = v;
            break;
        case 'q': prog.quiet = 1; break;
        case 'v': prog.verbose = 1; break;
        case 'h': fputs(FIT_USAGE, stdout); return 0;
        case ':': return usage_error("fit", "option '%s' needs a value", argv[optind - 1]);
        default: {
            int rc = parse_em_option("fit", c, optarg, &o);
            if (rc > 0) return rc;
            if (rc < 0) return usage_error("fit", "unknown option '%s'", argv[optind - 1]);
            init_given |= c == 'i';
            n_init_given |= c == 'N';
        }
        }
    }
    if (optind >= argc) return usage_error("fit", "%s", "missing DATA file");
    if (optind + 1 < argc) return usage_error("fit", "unexpected argument '%s'", argv[optind + 1]);
    if (o.n_components == 0) return usage_error("fit", "%s", "missing -k K (number of components)");
    if (init_model_path && warm_path) return usage_error("fit", "%s", "--init-model and --warm-start exclude each other");
    if (warm_path && (init_given || n_init_given))
        return usage_error("fit", "%s", "--warm-start starts from the model: it excludes --init and --n-init");
    const char *data_path = argv[optind];

    double *x = NULL;
    size_t n = 0, d = 0;
    gmm_status st = gmm_read_data(data_path, &x, &n, &d);
    if (st != GMM_OK) return fail("fit", st);
    gmm_init_file init;
    memset(&init, 0, sizeof init);
    const char *init_path = init_model_path ? init_model_path : warm_path;
    if (init_path) {
        st = gmm_init_file_load(init_path, &init);
        const char *problem = NULL;
        char msg[512];
        if (st == GMM_OK) {
            if (!cov_given) o.covariance_type = init.type;
            if (warm_path && !(init.weights && init.means && init.precisions))
                problem = "--warm-start needs a model with weights, means and covariances (or precisions)";
            else if (init.precisions && init.type != o.covariance_type) {
                snprintf(msg, sizeof msg, "%s holds %s covariances but the fit asks for --covariance %s", init_path,
                         gmm_covariance_name(init.type), gmm_covariance_name(o.covariance_type));
                problem = msg;
            } else if (init.k && init.k != (size_t)o.n_components) {
                snprintf(msg, sizeof msg, "%s has %zu components but the fit asks for -k %d", init_path, init.k,
                         o.n_components);
                problem = msg;
            } else if (init.d && init.d != d) {
                snprintf(msg, sizeof msg, "%s has %zu features but %s has %zu", init_path, init.d, data_path, d);
                problem = msg;
            }
        }
        if (st != GMM_OK || problem) {
            if (problem) fprintf(stderr, "gmm fit: %s\n", problem);
            int rc = problem ? 1 : fail("fit", st);
            gmm_init_file_free(&init);
            free(x);
            return rc;
        }
        o.weights_init = init.weights;
        o.means_init = init.means;
        o.precisions_init = init.precisions;
        if (warm_path) o.n_init = 1;
    }
    struct stat out_st;
    int out_existed = stat(out_dir, &out_st) == 0;
    if (make_dirs(out_dir) != 0) {
        fprintf(stderr, "gmm fit: cannot create output folder %s: %s\n", out_dir, strerror(errno));
        free(x);
        gmm_init_file_free(&init);
        return 1;
    }
    if (!prog.quiet)
        fprintf(stderr, "gmm fit: %zu points x %zu features from %s; k = %d, %s covariances, init %s\n", n, d,
                data_path, o.n_components, gmm_covariance_name(o.covariance_type), gmm_init_name(o.init));

    o.on_iter = on_iter;
    o.on_iter_user = &prog;
    double t0 = gmm_now();
    gmm_model *m = NULL;
    /* one session for the fit, the init study and the labels: the data are opened (on a GPU: uploaded) once */
    gmm_session ses;
    st = gmm_session_open(&ses, x, n, d, &o, (size_t)o.n_components);
    if (st == GMM_OK) st = gmm_session_fit(&ses, &o, &m);
    double fit_seconds = gmm_now() - t0;
    int *labels = NULL;
    double *logp = NULL;
    gmm_study_method study[N_STUDY_METHODS];
    memset(study, 0, sizeof study);
    int rc = 0;
    if (st != GMM_OK) goto failed;
    if (!prog.quiet) fprintf(stderr, "gmm fit: device: %s\n", gmm_model_device(m));
    if (!gmm_model_converged(m))
        fprintf(stderr, "gmm fit: warning: did not converge within %d iterations (best run %d); try a larger "
                        "--max-iter or --tol\n", o.max_iter, gmm_model_best_run(m) + 1);
    if (study_runs > 0) {
        gmm_options so = o;
        if (!prog.quiet)
            fprintf(stderr, "gmm fit: init study: %ld runs x %d methods\n", study_runs, N_STUDY_METHODS);
        st = init_study(&ses, &so, (int)study_runs, &prog, study);
        if (st != GMM_OK) goto failed;
    }
    labels = malloc(n * sizeof *labels);
    logp = malloc(n * sizeof *logp);
    if (!labels || !logp) {
        st = gmm_fail(GMM_ERR_NOMEM, "out of memory for %zu labels and log-densities", n);
        goto failed;
    }
    gmm_report r;
    memset(&r, 0, sizeof r);
    /* labels and log p of the training points from the fit's own backend (fit_predict), BIC and AIC from them */
    if ((st = gmm_session_predict(&ses, m, logp, labels, NULL)) != GMM_OK) goto failed;
    {
        const double mean = gmm_mean_logp(logp, n);
        r.bic = gmm_bic_from_mean(m, mean, n);
        r.aic = gmm_aic_from_mean(m, mean, n);
    }
    char *model_path = gmm_path_join(out_dir, "model.json");
    st = model_path ? gmm_model_save(m, model_path) : GMM_ERR_NOMEM;
    free(model_path);
    if (st != GMM_OK) goto failed;
    if ((st = gmm_write_labels(out_dir, labels, n)) != GMM_OK) goto failed;
    if ((st = gmm_write_loglik(out_dir, m)) != GMM_OK) goto failed;
    int render = gmm_gnuplot_available();
    if ((st = gmm_plot_loglik(out_dir, m, render)) != GMM_OK) goto failed;
    if ((st = gmm_plot_clusters(out_dir, x, n, d, labels, m, 500, o.seed, render)) != GMM_OK) goto failed;
    if (study_runs > 0 && (st = gmm_plot_init_study(out_dir, study, N_STUDY_METHODS, render)) != GMM_OK) goto failed;
    r.data_path = data_path;
    r.x = x;
    r.n = n;
    r.d = d;
    r.model = m;
    r.labels = labels;
    r.options = &o;
    r.device = gmm_model_device(m);
    r.fit_seconds = fit_seconds;
    r.study = study_runs > 0 ? study : NULL;
    r.n_study = study_runs > 0 ? N_STUDY_METHODS : 0;
    r.plots_rendered = render;
    if ((st = gmm_write_report(out_dir, &r)) != GMM_OK) goto failed;

    {
        int len = 0;
        const double *tr = gmm_model_loglik_trace(m, &len);
        printf("converged: %s after %d iterations (best of %d run%s)\n", gmm_model_converged(m) ? "yes" : "no", len,
               o.n_init, o.n_init == 1 ? "" : "s");
        printf("log-likelihood: %.4f (mean per point %.6f)\n", tr[len - 1], tr[len - 1] / (double)n);
        printf("BIC: %.4f  AIC: %.4f\n", r.bic, r.aic);
        print_model(stdout, m);
        printf("wrote %s/{model.json, labels.csv, loglik.csv, report.md%s}\n", out_dir,
               render ? (study_runs > 0 ? ", loglik.png, clusters.png, init_study.png" : ", loglik.png, clusters.png") : "");
        if (!render)
            printf("gnuplot (with pngcairo) was not found: the plots' scripts are in %s; render them with\n"
                   "  cd '%s' && gnuplot loglik.gp clusters.gp%s\n",
                   out_dir, out_dir, study_runs > 0 ? " init_study.gp" : "");
    }
    goto done;
failed:
    rc = fail("fit", st);
    if (!out_existed) rmdir(out_dir); /* a folder this run created and left empty goes again */
done:
    gmm_session_close(&ses);
    study_free(study, N_STUDY_METHODS);
    free(labels);
    free(logp);
    gmm_model_free(m);
    gmm_init_file_free(&init);
    free(x);
    return rc;
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

static int close_output(const char *cmd, const char *path, gmm_atomic_file *af)
{
    if (!path) return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
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

static int cmd_predict(int argc, char **argv)
{
    static const struct option opts[] = {{"proba", no_argument, 0, 'p'},     {"output", required_argument, 0, 'o'},
                                         {"device", required_argument, 0, 'D'}, {"dtype", required_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
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
    size_t k = gmm_model_n_components(m);
    gmm_session ses;
    rc = open_infer_session("predict", &ses, m, x, n, &o);
    if (rc) {
        free(x);
        gmm_model_free(m);
        return rc;
    }
    gmm_status st;
    void *buf = proba ? malloc(n * k * sizeof(double)) : malloc(n * sizeof(int));
    if (!buf) {
        st = gmm_fail(GMM_ERR_NOMEM, "out of memory for the predictions");
    } else {
        st = proba ? gmm_session_predict(&ses, m, NULL, NULL, buf) : gmm_session_predict(&ses, m, NULL, buf, NULL);
    }
    gmm_session_close(&ses);
    if (st != GMM_OK) {
        rc = fail("predict", st);
    } else {
        gmm_atomic_file af;
        FILE *f = stdout;
        rc = open_output("predict", out, &af, &f);
        if (!rc) {
            for (size_t i = 0; i < n; i++) {
                if (proba) {
                    const double *p = (const double *)buf + i * k;
                    for (size_t j = 0; j < k; j++) fprintf(f, "%s%.17g", j ? "," : "", p[j]);
                    fputc('\n', f);
                } else {
                    fprintf(f, "%d\n", ((const int *)buf)[i]);
                }
            }
            rc = close_output("predict", out, &af);
        }
    }
    free(buf);
    free(x);
    gmm_model_free(m);
    return rc;
}

static int cmd_score(int argc, char **argv)
{
    static const struct option opts[] = {{"device", required_argument, 0, 'D'}, {"dtype", required_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
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
            printf("points: %zu\nmean log-likelihood: %.17g\ntotal log-likelihood: %.17g\nBIC: %.17g\nAIC: %.17g\n", n,
                   mean, mean * (double)n, gmm_bic_from_mean(m, mean, n), gmm_aic_from_mean(m, mean, n));
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
    static const struct option opts[] = {{"samples", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
                                         {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'},
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
            if (parse_long(optarg, 1, 2000000000L, &count)) return usage_error("sample", "-n expects a whole number >= 1, got '%s'", optarg);
            break;
        case 's':
            if (parse_u64(optarg, &seed)) return usage_error("sample", "--seed expects a whole number >= 0, got '%s'", optarg);
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
        for (long i = 0; i < count; i++)
            for (size_t j = 0; j < d; j++) printf("%.17g%c", x[(size_t)i * d + j], j + 1 < d ? ',' : '\n');
        rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    }
    free(x);
    gmm_model_free(m);
    return rc;
}

/* Parses "A..B" or "K" into 1 <= lo <= hi. */
static int parse_k_range(const char *s, long *lo, long *hi)
{
    const char *dots = strstr(s, "..");
    char buf[64];
    if (!dots) {
        if (parse_long(s, 1, 100000, lo)) return -1;
        *hi = *lo;
        return 0;
    }
    size_t len = (size_t)(dots - s);
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (parse_long(buf, 1, 100000, lo) || parse_long(dots + 2, 1, 100000, hi) || *hi < *lo) return -1;
    return 0;
}

static int cmd_select(int argc, char **argv)
{
    static const struct option opts[] = {
        {"k", required_argument, 0, 'k'},          {"covariance", required_argument, 0, 'C'},
        {"init", required_argument, 0, 'i'},       {"n-init", required_argument, 0, 'N'},
        {"max-iter", required_argument, 0, 'm'},   {"tol", required_argument, 0, 't'},
        {"reg-covar", required_argument, 0, 'r'},  {"seed", required_argument, 0, 's'},
        {"threads", required_argument, 0, 'T'},    {"out", required_argument, 0, 'o'},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {"device", required_argument, 0, 'D'},     {"dtype", required_argument, 0, 'P'},
        {0, 0, 0, 0}};
    gmm_options o;
    gmm_options_init(&o);
    o.backend = GMM_BACKEND_AUTO;
    const char *out_dir = "gmm-select";
    long klo = 0, khi = 0;
    int types[4] = {1, 1, 1, 1}, quiet = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (parse_k_range(optarg, &klo, &khi))
                return usage_error("select", "--k expects A..B or K with 1 <= A <= B, got '%s'", optarg);
            break;
        case 'C': {
            if (!strcmp(optarg, "all")) break;
            memset(types, 0, sizeof types);
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                gmm_covariance_type t;
                if (gmm_covariance_parse(tok, &t))
                    return usage_error("select", "--covariance expects all or a list of full, tied, diag, spherical, got '%s'", optarg);
                types[t] = 1;
            }
            break;
        }
        case 'o': out_dir = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(SELECT_USAGE, stdout); return 0;
        case ':': return usage_error("select", "option '%s' needs a value", argv[optind - 1]);
        default: {
            int rc = parse_em_option("select", c, optarg, &o);
            if (rc > 0) return rc;
            if (rc < 0) return usage_error("select", "unknown option '%s'", argv[optind - 1]);
        }
        }
    }
    if (optind >= argc) return usage_error("select", "%s", "missing DATA file");
    if (optind + 1 < argc) return usage_error("select", "unexpected argument '%s'", argv[optind + 1]);
    if (klo == 0) return usage_error("select", "%s", "missing --k A..B (numbers of components to try)");
    const char *data_path = argv[optind];
    double *x = NULL;
    size_t n = 0, d = 0;
    gmm_status st = gmm_read_data(data_path, &x, &n, &d);
    if (st != GMM_OK) return fail("select", st);
    /* one session for every candidate: the data are opened (on a GPU: uploaded) once; --device auto decides
     * with the largest k */
    gmm_session ses;
    st = gmm_session_open(&ses, x, n, d, &o, (size_t)khi);
    if (st != GMM_OK) {
        free(x);
        return fail("select", st);
    }
    if (!quiet) fprintf(stderr, "gmm select: device: %s\n", ses.device);
    if (make_dirs(out_dir) != 0) {
        fprintf(stderr, "gmm select: cannot create output folder %s: %s\n", out_dir, strerror(errno));
        gmm_session_close(&ses);
        free(x);
        return 1;
    }
    size_t n_types = (size_t)(types[0] + types[1] + types[2] + types[3]);
    size_t n_rows = n_types * (size_t)(khi - klo + 1), row = 0;
    gmm_selection_row *rows = calloc(n_rows, sizeof *rows);
    gmm_model *best = NULL;
    size_t best_row = n_rows;
    int rc = 0;
    double *logp = malloc(n * sizeof *logp);
    if (!rows || !logp) {
        free(rows);
        free(logp);
        gmm_session_close(&ses);
        free(x);
        return fail("select", gmm_fail(GMM_ERR_NOMEM, "out of memory for %zu candidates", n_rows));
    }
    for (int t = 0; t < 4; t++) {
        if (!types[t]) continue;
        for (long k = klo; k <= khi; k++, row++) {
            gmm_selection_row *r = &rows[row];
            r->k = (int)k;
            r->type = (gmm_covariance_type)t;
            gmm_options oc = o;
            oc.n_components = (int)k;
            oc.covariance_type = r->type;
            gmm_model *m = NULL;
            double t0 = gmm_now();
            st = gmm_session_fit(&ses, &oc, &m);
            double mean = 0;
            if (st == GMM_OK) st = gmm_session_predict(&ses, m, logp, NULL, NULL);
            if (st == GMM_OK) {
                mean = gmm_mean_logp(logp, n);
                r->bic = gmm_bic_from_mean(m, mean, n);
                r->aic = gmm_aic_from_mean(m, mean, n);
            }
            if (st == GMM_ERR_NOMEM) {
                rc = fail("select", st);
                gmm_model_free(m);
                goto done;
            }
            if (st == GMM_OK) {
                r->ok = 1;
                r->loglik = mean * (double)n;
                r->n_iter = gmm_model_n_iter(m);
                r->converged = gmm_model_converged(m);
                if (best_row == n_rows || r->bic < rows[best_row].bic) {
                    gmm_model_free(best);
                    best = m;
                    best_row = row;
                    m = NULL;
                }
            } else {
                snprintf(r->error, sizeof r->error, "%s", gmm_last_error());
            }
            gmm_model_free(m);
            if (!quiet) {
                if (r->ok)
                    fprintf(stderr, "gmm select: [%zu/%zu] k = %ld, %s: loglik %.4f, BIC %.4f, AIC %.4f, %d iterations%s (%.2f s)\n",
                            row + 1, n_rows, k, gmm_covariance_name(r->type), r->loglik, r->bic, r->aic, r->n_iter,
                            r->converged ? "" : " (not converged)", gmm_now() - t0);
                else
                    fprintf(stderr, "gmm select: [%zu/%zu] k = %ld, %s: failed: %s\n", row + 1, n_rows, k,
                            gmm_covariance_name(r->type), r->error);
            }
        }
    }
    if (!best) {
        fprintf(stderr, "gmm select: every candidate failed; nothing written\n");
        rc = 1;
        goto done;
    }
    char *model_path = gmm_path_join(out_dir, "model.json");
    int render = gmm_gnuplot_available();
    if (!model_path) st = GMM_ERR_NOMEM;
    if (!model_path || (st = gmm_write_selection(out_dir, rows, n_rows)) != GMM_OK ||
        (st = gmm_plot_selection(out_dir, rows, n_rows, render)) != GMM_OK ||
        (st = gmm_model_save(best, model_path)) != GMM_OK) {
        free(model_path);
        rc = fail("select", st);
        goto done;
    }
    free(model_path);
    printf("%4s  %-10s  %16s  %16s  %16s  %5s\n", "k", "covariance", "loglik", "BIC", "AIC", "iter");
    for (size_t i = 0; i < n_rows; i++) {
        const gmm_selection_row *r = &rows[i];
        if (r->ok)
            printf("%4d  %-10s  %16.4f  %16.4f  %16.4f  %5d%s\n", r->k, gmm_covariance_name(r->type), r->loglik, r->bic,
                   r->aic, r->n_iter, i == best_row ? "  <- best BIC" : "");
        else
            printf("%4d  %-10s  failed: %s\n", r->k, gmm_covariance_name(r->type), r->error);
    }
    printf("best: k = %d, covariance %s (BIC %.4f); wrote %s/{selection.csv, %s, model.json}\n", rows[best_row].k,
           gmm_covariance_name(rows[best_row].type), rows[best_row].bic, out_dir,
           render ? "selection.png" : "selection.gp (gnuplot not found: run it there to draw selection.png)");
done:
    gmm_session_close(&ses);
    gmm_model_free(best);
    free(rows);
    free(logp);
    free(x);
    return rc;
}

int main(int argc, char **argv)
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
