/*
 * plot.c — the gnuplot pictures of report.h: loglik.png, clusters.png and init_study.png.
 *
 * Each plot writes its data (.dat) and a gnuplot script (NAME.gp) into DIR, every file whole or not at all
 * (gmm_atomic_*). Scripts name their data files relative to DIR, so `cd DIR && gnuplot NAME.gp` redraws
 * NAME.png by hand. The script writes to the gnuplot variable `outfile` when it is defined and to NAME.png
 * otherwise; when rendering, gmm creates the temporary picture NAME.tmp.XXXXXX.png exclusively (random
 * name, O_EXCL), runs `gnuplot -e "outfile='NAME.tmp.XXXXXX.png'" NAME.gp` in DIR (fork, chdir, execvp:
 * no shell) and renames the picture to NAME.png only when gnuplot succeeded. The running gnuplot is known
 * to a signal handler (gmm_plot_child) and dies with gmm (PR_SET_PDEATHSIG).
 * A failed render, and a call with render == 0, leave no NAME.png (a stale one from an earlier run is
 * removed, since it would no longer match the data beside it).
 */
#include "gmm_internal.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* Colours of components / methods, cycled; combined with PLOT_SHAPES so that up to 12 * 6 = 72
 * components get distinct (colour, marker) pairs. */
static const char *const PLOT_COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                                          "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#000080", "#b8860b"};
#define N_PLOT_COLORS (sizeof PLOT_COLORS / sizeof PLOT_COLORS[0])
/* gnuplot point types: filled circle, square, up triangle, down triangle, diamond, pentagon. */
static const int PLOT_SHAPES[] = {7, 5, 9, 11, 13, 15};
#define N_PLOT_SHAPES (sizeof PLOT_SHAPES / sizeof PLOT_SHAPES[0])

#define ELLIPSE_POINTS 100
#define PLOT_PI 3.14159265358979323846

/* --------------------------------------------------------------------------------------------- helpers */

/* Formats v with sig significant digits into buf, or "n/a" when v is not finite. Returns buf. */
static const char *fmt_num(char *buf, size_t cap, double v, int sig)
{
    if (!isfinite(v))
        snprintf(buf, cap, "n/a");
    else
        snprintf(buf, cap, "%.*g", sig, v);
    return buf;
}

/* Writes s as a gnuplot double-quoted string literal (backslash and double quote escaped; a '\n' in s
 * becomes gnuplot's newline escape). */
static void gp_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
    fputc('"', f);
}

/* Writes a number for a gnuplot data file: %.10g, or "?" (declared missing in every script) when not
 * finite. */
static void dat_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.10g", v);
    else
        fputs("?", f);
}

/* The first lines of every script: what it draws, how to run it, reset (several scripts may share one
 * gnuplot session), the pngcairo terminal and the output name (the variable outfile when set on the
 * command line, NAME.png otherwise). Every script ends with gp_footer. */
static void gp_header_sized(FILE *f, const char *name, const char *what, int width, int height)
{
    fprintf(f, "# %s.gp -- %s\n", name, what);
    fprintf(f, "# Written by gmm. Redraw by hand from this folder: gnuplot %s.gp   (writes %s.png)\n", name, name);
    fputs("reset\n", f); /* several scripts may run in one gnuplot session: start from the defaults */
    fprintf(f, "if (!exists(\"outfile\")) outfile = \"%s.png\"\n", name);
    fprintf(f, "set terminal pngcairo size %d,%d font \"sans,11\" noenhanced\n", width, height);
    fprintf(f, "set output outfile\n");
    fprintf(f, "set datafile missing \"?\"\n");
}

/* gp_header_sized at the usual 900 x 650 pixels. */
static void gp_header(FILE *f, const char *name, const char *what) { gp_header_sized(f, name, what, 900, 650); }

/* The last lines of every script: close the picture and forget outfile, so that a following script in
 * the same session (`gnuplot loglik.gp clusters.gp`) writes its own NAME.png. */
static void gp_footer(FILE *f) { fputs("unset output\nundefine outfile\n", f); }

/* ------------------------------------------------------------------------------------- running gnuplot */

/* The running gnuplot's process id, 0 when none: read by signal handlers (gmm_plot_child). */
static volatile sig_atomic_t running_child;

int gmm_plot_child(void) { return (int)running_child; }

/* Runs argv[0] (looked up in PATH) with arguments argv, in working directory dir, stdin and stdout on
 * /dev/null. When err is not NULL the child's stderr is captured and the last errcap-1 bytes are left in
 * err (NUL terminated); otherwise stderr goes to /dev/null. Returns the child's exit status (0..255),
 * 128 + signal number when it was killed, 127 when it could not be executed, 126 when dir could not be
 * entered, or -1 when no child could be started (fork or pipe failed; errno describes it). */
static int spawn_wait(const char *dir, char *const argv[], char *err, size_t errcap)
{
    int fds[2] = {-1, -1};
    if (err) {
        err[0] = '\0';
        if (pipe(fds) != 0) return -1;
        fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (err) {
            close(fds[0]);
            close(fds[1]);
        }
        errno = e;
        return -1;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* gnuplot goes when gmm goes, even by SIGKILL */
        if (getppid() == 1) _exit(126);   /* gmm died before that took effect */
#endif
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
            if (!err) dup2(devnull, STDERR_FILENO);
        }
        if (err) {
            dup2(fds[1], STDERR_FILENO);
            close(fds[0]);
            close(fds[1]);
        }
        if (dir && chdir(dir) != 0) {
            static const char msg[] = "cannot enter the output folder\n";
            ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
            (void)w;
            _exit(126);
        }
        execvp(argv[0], argv);
        static const char msg[] = "cannot execute gnuplot (is it installed and in PATH?)\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    running_child = (sig_atomic_t)pid;
    if (err) {
        close(fds[1]);
        size_t len = 0;
        char chunk[512];
        for (;;) {
            ssize_t got = read(fds[0], chunk, sizeof chunk);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;
            size_t g = (size_t)got;
            if (g > errcap - 1) { /* keep only the tail of a huge chunk */
                memcpy(err, chunk + (g - (errcap - 1)), errcap - 1);
                len = errcap - 1;
            } else {
                if (len + g > errcap - 1) { /* drop the oldest bytes */
                    size_t drop = len + g - (errcap - 1);
                    memmove(err, err + drop, len - drop);
                    len -= drop;
                }
                memcpy(err + len, chunk, g);
                len += g;
            }
        }
        err[len] = '\0';
        close(fds[0]);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            running_child = 0;
            return -1;
        }
    }
    running_child = 0;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

/* Cached answer of gmm_gnuplot_available: -1 not yet asked, 0 no, 1 yes. */
static atomic_int gnuplot_state = -1;

int gmm_gnuplot_available(void)
{
    int s = atomic_load(&gnuplot_state);
    if (s >= 0) return s;
    char a0[] = "gnuplot", a1[] = "-e", a2[] = "set terminal pngcairo";
    char *argv[] = {a0, a1, a2, NULL};
    s = spawn_wait(NULL, argv, NULL, 0) == 0 ? 1 : 0;
    atomic_store(&gnuplot_state, s);
    return s;
}

/* Removes path if it exists; a failure is ignored (the caller's status already says what matters). */
static void remove_quietly(const char *path) { (void)remove(path); }

/* Finishes plot NAME in dir: with render == 1 runs gnuplot on NAME.gp (in dir) writing a temporary
 * picture, then renames it to NAME.png; with render == 0, or when gnuplot fails, removes any NAME.png so
 * that no picture disagrees with the data beside it. A gnuplot failure is GMM_ERR_IO with gnuplot's exit
 * status and the tail of its error output. */
static gmm_status finish_plot(const char *dir, const char *name, int render)
{
    char png_name[96], script[96], outarg[160];
    snprintf(png_name, sizeof png_name, "%s.png", name);
    snprintf(script, sizeof script, "%s.gp", name);
    char *png = gmm_path_join(dir, png_name);
    char *tmp = gmm_xmalloc(GMM_PATH_MAX);
    if (!png || !tmp) {
        free(png);
        free(tmp);
        return GMM_ERR_NOMEM;
    }
    tmp[0] = '\0';
    if (render) {
        /* the picture's temporary name, created exclusively so that gnuplot writes into a file of ours */
        char prefix[GMM_PATH_MAX];
        snprintf(prefix, sizeof prefix, "%s/%s.tmp.", dir, name);
        int fd = gmm_create_exclusive(prefix, ".png", tmp, GMM_PATH_MAX);
        if (fd < 0) {
            gmm_status st = gmm_fail(GMM_ERR_IO, "cannot create a temporary picture in %s: %s", dir, strerror(errno));
            free(png);
            free(tmp);
            return st;
        }
        close(fd);
        const char *slash = strrchr(tmp, '/');
        snprintf(outarg, sizeof outarg, "outfile='%s'", slash ? slash + 1 : tmp);
    }
    gmm_status st = GMM_OK;
    if (!render) {
        remove_quietly(png);
    } else {
        char a0[] = "gnuplot", a1[] = "-e";
        char *argv[] = {a0, a1, outarg, script, NULL};
        char err[600];
        int rc = spawn_wait(dir, argv, err, sizeof err);
        /* Keep only the last line of gnuplot's complaint for the message. */
        size_t el = strlen(err);
        while (el > 0 && (err[el - 1] == '\n' || err[el - 1] == '\r' || err[el - 1] == ' ')) err[--el] = '\0';
        const char *last = strrchr(err, '\n');
        last = last ? last + 1 : err;
        struct stat sb;
        if (rc < 0) {
            st = gmm_fail(GMM_ERR_IO, "cannot start gnuplot for %s/%s: %s", dir, script, strerror(errno));
        } else if (rc != 0) {
            st = gmm_fail(GMM_ERR_IO, "gnuplot failed on %s/%s (exit status %d)%s%s", dir, script, rc,
                          *last ? ": " : "", last);
        } else if (stat(tmp, &sb) != 0 || sb.st_size == 0) {
            st = gmm_fail(GMM_ERR_IO, "gnuplot ran %s/%s but wrote no picture to %s", dir, script, tmp);
        } else if (rename(tmp, png) != 0) {
            st = gmm_fail(GMM_ERR_IO, "cannot rename %s to %s: %s", tmp, png, strerror(errno));
        }
        if (st != GMM_OK) {
            remove_quietly(tmp);
            remove_quietly(png);
        }
    }
    free(png);
    free(tmp);
    return st;
}

/* ------------------------------------------------------------------------------------------ loglik.png */

/* Writes loglik.dat (iteration, total log-likelihood) and loglik.gp (lines + points, title with the final
 * value and the iteration count), then renders loglik.png when render is 1. The model must carry a fit
 * record (a trace of at least one iteration), otherwise GMM_ERR_INVALID_ARG. */
gmm_status gmm_plot_loglik(const char *dir, const gmm_model *model, int render)
{
    if (!dir || !model) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_plot_loglik: dir and model are required");
    int len = 0;
    const double *trace = gmm_model_loglik_trace(model, &len);
    if (!trace || len < 1)
        return gmm_fail(GMM_ERR_INVALID_ARG,
                        "gmm_plot_loglik: the model has no log-likelihood trace (it was not produced by a fit)");

    gmm_atomic_file af;
    gmm_status st = gmm_atomic_open_in(&af, dir, "loglik.dat");
    if (st != GMM_OK) return st;
    fprintf(af.f, "# EM iteration (1-based), total log-likelihood over all points\n");
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < len; i++) {
        fprintf(af.f, "%d ", i + 1);
        if (isfinite(trace[i]))
            fprintf(af.f, "%.17g\n", trace[i]);
        else
            fputs("?\n", af.f);
        if (isfinite(trace[i])) {
            if (trace[i] < lo) lo = trace[i];
            if (trace[i] > hi) hi = trace[i];
        }
    }
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;

    if ((st = gmm_atomic_open_in(&af, dir, "loglik.gp")) != GMM_OK) return st;
    FILE *f = af.f;
    gp_header(f, "loglik", "total log-likelihood per EM iteration");
    char title[256], b1[48];
    snprintf(title, sizeof title, "Total log-likelihood per EM iteration: final %s after %d iteration%s%s",
             fmt_num(b1, sizeof b1, trace[len - 1], 10), len, len == 1 ? "" : "s",
             model->converged ? " (converged)" : " (not converged)");
    fputs("set title ", f);
    gp_string(f, title);
    fputs("\nset xlabel \"EM iteration\"\n", f);
    if (model->n_train > 0)
        fprintf(f, "set ylabel \"log-likelihood (sum over %zu points)\"\n", model->n_train);
    else
        fputs("set ylabel \"log-likelihood (sum over all points)\"\n", f);
    fputs("set grid lc rgb \"#dddddd\"\nset key off\n", f);
    if (len == 1)
        fputs("set xrange [0:2]\n", f);
    else
        fprintf(f, "set xrange [0.5:%g]\n", len + 0.5);
    if (len <= 20) fputs("set xtics 1\n", f);
    if (isfinite(lo) && isfinite(hi)) {
        double span = hi - lo;
        double pad = span > 0 ? 0.05 * span : fmax(1.0, 1e-3 * fabs(hi));
        fprintf(f, "set yrange [%.17g:%.17g]\n", lo - pad, hi + pad);
    } else {
        fputs("set yrange [-1:1]\nset label \"no finite log-likelihood\" at graph 0.5,0.5 center\n", f);
    }
    fputs("plot \"loglik.dat\" using 1:2 with linespoints pt 7 ps 0.7 lw 2 lc rgb \"#1f77b4\" notitle\n", f);
    gp_footer(f);
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;
    return finish_plot(dir, "loglik", render);
}

/* ---------------------------------------------------------------------------------------- clusters.png */

/* A small open-addressing map size_t -> size_t: the displaced entries of a virtual index array, so that a
 * partial Fisher-Yates shuffle of 0..n-1 needs memory for the draws only, not for n indices. */
typedef struct idx_map {
    size_t cap; /* power of two */
    size_t *keys, *vals;
    unsigned char *used;
} idx_map;

static size_t idx_map_slot(const idx_map *m, size_t key)
{
    uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ULL;
    size_t i = (size_t)(h >> 17) & (m->cap - 1);
    while (m->used[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    return i;
}

/* The value at position key of the virtual array (key itself when never displaced). */
static size_t idx_map_get(const idx_map *m, size_t key)
{
    size_t i = idx_map_slot(m, key);
    return m->used[i] ? m->vals[i] : key;
}

static void idx_map_set(idx_map *m, size_t key, size_t val)
{
    size_t i = idx_map_slot(m, key);
    m->used[i] = 1;
    m->keys[i] = key;
    m->vals[i] = val;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Chooses m = min(n_show, n) distinct row indices of 0..n-1 into idx (m entries, ascending): all rows when
 * n <= n_show, otherwise the first m draws of a Fisher-Yates shuffle driven by gmm_rng seeded with seed
 * (the same draws as shuffling an explicit index array, in O(m) memory). */
static gmm_status choose_rows(size_t n, size_t n_show, uint64_t seed, size_t *idx, size_t *m_out)
{
    if (n <= n_show) {
        for (size_t i = 0; i < n; i++) idx[i] = i;
        *m_out = n;
        return GMM_OK;
    }
    size_t m = n_show;
    idx_map map = {0};
    map.cap = 16;
    while (map.cap < 4 * m) map.cap <<= 1;
    map.keys = gmm_xmalloc(map.cap * sizeof(size_t));
    map.vals = gmm_xmalloc(map.cap * sizeof(size_t));
    map.used = gmm_xcalloc(map.cap, 1);
    if (!map.keys || !map.vals || !map.used) {
        free(map.keys);
        free(map.vals);
        free(map.used);
        return GMM_ERR_NOMEM;
    }
    gmm_rng rng;
    gmm_rng_seed(&rng, seed);
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)gmm_rng_below(&rng, (uint64_t)(n - i));
        size_t vi = idx_map_get(&map, i), vj = idx_map_get(&map, j);
        idx_map_set(&map, j, vi); /* swap a[i] and a[j]; a[i] is never read again */
        idx[i] = vj;
    }
    free(map.keys);
    free(map.vals);
    free(map.used);
    qsort(idx, m, sizeof *idx, cmp_size);
    *m_out = m;
    return GMM_OK;
}

/* Writes the r-sigma ellipse {mu + r (sqrt(l1) cos t v1 + sqrt(l2) sin t v2)} of the 2x2 covariance
 * [[a, b], [b, c]] centred at (mx, my): l1 >= l2 its eigenvalues and v1, v2 its unit eigenvectors, in
 * closed form. ELLIPSE_POINTS rows "x y", the first point repeated as the last so that the curve closes. */
static void write_ellipse(FILE *f, double mx, double my, double a, double b, double c, double r)
{
    double half_tr = 0.5 * (a + c), diff = 0.5 * (a - c);
    double disc = sqrt(diff * diff + b * b);
    double l1 = half_tr + disc, l2 = half_tr - disc;
    if (l2 < 0) l2 = 0; /* rounding on a nearly singular block */
    if (l1 < 0) l1 = 0;
    double vx, vy;
    if (b != 0.0) {
        vx = l1 - c;
        vy = b;
        double nv = hypot(vx, vy);
        vx /= nv;
        vy /= nv;
    } else if (a >= c) {
        vx = 1.0;
        vy = 0.0;
    } else {
        vx = 0.0;
        vy = 1.0;
    }
    double s1 = r * sqrt(l1), s2 = r * sqrt(l2);
    for (int i = 0; i < ELLIPSE_POINTS; i++) {
        double t = 2.0 * PLOT_PI * (double)(i % (ELLIPSE_POINTS - 1)) / (double)(ELLIPSE_POINTS - 1);
        double u = s1 * cos(t), w = s2 * sin(t);
        dat_num(f, mx + u * vx - w * vy);
        fputc(' ', f);
        dat_num(f, my + u * vy + w * vx);
        fputc('\n', f);
    }
}

/* Writes clusters_points.dat (the shown points: feature 1, feature 2, component 1-based, row 0-based),
 * clusters_ellipses.dat (per component 1-sigma then 2-sigma ellipse, gnuplot index 2k and 2k+1),
 * clusters_means.dat and clusters.gp, then renders clusters.png when render is 1. The first line of
 * clusters_points.dat records "# gmm clusters: shown=M n=N seed=S" (report.md quotes it). */
gmm_status gmm_plot_clusters(const char *dir, const double *x, size_t n, size_t d, const int *labels,
                             const gmm_model *model, size_t n_show, uint64_t seed, int render)
{
    if (!dir || !x || !labels || !model || n == 0 || d == 0)
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_plot_clusters: dir, x (n >= 1, d >= 1), labels and model "
                                             "are required");
    if (model->d != d)
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_plot_clusters: data have %zu features but the model %zu", d,
                        model->d);
    size_t k = model->k;
    size_t m_max = n < n_show ? n : n_show;
    size_t *idx = gmm_xmalloc((m_max ? m_max : 1) * sizeof *idx);
    if (!idx) return GMM_ERR_NOMEM;
    size_t m = 0;
    gmm_status st = choose_rows(n, n_show, seed, idx, &m);
    if (st != GMM_OK) {
        free(idx);
        return st;
    }
    for (size_t i = 0; i < m; i++) {
        int l = labels[idx[i]];
        if (l < 0 || (size_t)l >= k) {
            size_t row = idx[i];
            free(idx);
            return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_plot_clusters: label of row %zu is %d; expected 0..%zu", row, l,
                            k - 1);
        }
    }

    gmm_atomic_file af;
    if ((st = gmm_atomic_open_in(&af, dir, "clusters_points.dat")) != GMM_OK) {
        free(idx);
        return st;
    }
    fprintf(af.f, "# gmm clusters: shown=%zu n=%zu seed=%" PRIu64 "\n", m, n, seed);
    fprintf(af.f, "# columns: feature_1 %s component (1-based) row (0-based, as in labels.csv)\n",
            d >= 2 ? "feature_2" : "0");
    for (size_t i = 0; i < m; i++) {
        const double *p = x + idx[i] * d;
        dat_num(af.f, p[0]);
        fputc(' ', af.f);
        dat_num(af.f, d >= 2 ? p[1] : 0.0);
        fprintf(af.f, " %d %zu\n", labels[idx[i]] + 1, idx[i]);
    }
    free(idx);
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;

    if ((st = gmm_atomic_open_in(&af, dir, "clusters_ellipses.dat")) != GMM_OK) return st;
    fprintf(af.f, "# 1- and 2-sigma ellipses of each component's covariance on features 1-2 "
                  "(gnuplot index 2(k-1) is component k's 1-sigma, 2(k-1)+1 its 2-sigma ellipse)\n");
    for (size_t c = 0; c < k; c++) {
        const double *mu = model->means + c * d, *cov = model->covariances + c * d * d;
        double a = cov[0], b = d >= 2 ? 0.5 * (cov[1] + cov[d]) : 0.0, cc = d >= 2 ? cov[d + 1] : 0.0;
        double my = d >= 2 ? mu[1] : 0.0;
        for (int r = 1; r <= 2; r++) {
            if (c > 0 || r > 1) fputs("\n\n", af.f);
            fprintf(af.f, "# component %zu, %d-sigma\n", c + 1, r);
            write_ellipse(af.f, mu[0], my, a, b, cc, (double)r);
        }
    }
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;

    if ((st = gmm_atomic_open_in(&af, dir, "clusters_means.dat")) != GMM_OK) return st;
    fprintf(af.f, "# component means: feature_1 %s component (1-based)\n", d >= 2 ? "feature_2" : "0");
    for (size_t c = 0; c < k; c++) {
        dat_num(af.f, model->means[c * d]);
        fputc(' ', af.f);
        dat_num(af.f, d >= 2 ? model->means[c * d + 1] : 0.0);
        fprintf(af.f, " %zu\n", c + 1);
    }
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;

    if ((st = gmm_atomic_open_in(&af, dir, "clusters.gp")) != GMM_OK) return st;
    FILE *f = af.f;
    /* Many components need a bigger canvas and a smaller key so that the plot keeps its room. */
    int big = k > 16, huge = k > 32;
    gp_header_sized(f, "clusters", "points coloured by component, means, 1- and 2-sigma ellipses",
                    huge  ? 1500
                    : big ? 1200
                          : 900,
                    huge  ? 950
                    : big ? 800
                          : 650);
    char title[256];
    if (m < n)
        snprintf(title, sizeof title, "%zu of %zu points drawn at random (seed %" PRIu64 "), coloured by component",
                 m, n, seed);
    else
        snprintf(title, sizeof title, "All %zu points, coloured by component", n);
    if (d > 2) strncat(title, " (features 1-2)", sizeof title - strlen(title) - 1);
    /* The title as a label centred on the canvas: with equal axis scaling and a wide key the plot area can
     * be narrower than the title. */
    fputs("set label 1 ", f);
    gp_string(f, title);
    fputs(" at screen 0.5, screen 0.97 center\nset tmargin 3\n", f);
    fputs("set xlabel \"feature 1\"\n", f);
    if (d >= 2) {
        fputs("set ylabel \"feature 2\"\nset size ratio -1\n", f);
    } else {
        fputs("set ylabel \"(one feature: drawn at 0)\"\nset yrange [-1:1]\n", f);
    }
    fputs("set grid lc rgb \"#e5e5e5\"\n", f);
    fprintf(f, "set key outside right top vertical Left reverse samplen 3 spacing 1.05 font \",%d\"\n", big ? 9 : 10);
    fputs("plot \\\n", f);
    for (size_t c = 0; c < k; c++) {
        const char *col = PLOT_COLORS[c % N_PLOT_COLORS];
        int pt = PLOT_SHAPES[(c / N_PLOT_COLORS) % N_PLOT_SHAPES];
        fprintf(f,
                "  \"clusters_points.dat\" using 1:($3 == %zu ? $2 : 1/0) with points pt %d ps 0.6 "
                "lc rgb \"%s\" title \"component %zu\", \\\n",
                c + 1, pt, col, c + 1);
    }
    for (size_t c = 0; c < k; c++) {
        const char *col = PLOT_COLORS[c % N_PLOT_COLORS];
        fprintf(f, "  \"clusters_ellipses.dat\" index %zu using 1:2 with lines lw 2 lc rgb \"%s\" notitle, \\\n",
                2 * c, col);
        fprintf(f,
                "  \"clusters_ellipses.dat\" index %zu using 1:2 with lines lw 1.5 dt 2 lc rgb \"%s\" "
                "notitle, \\\n",
                2 * c + 1, col);
    }
    fprintf(f,
            "  \"clusters_means.dat\" using 1:2 with points pt 3 ps %s lw %s lc rgb \"black\" "
            "title \"component means\", \\\n",
            big ? "1.8" : "3", big ? "1.5" : "2.5");
    fprintf(f,
            "  \"clusters_means.dat\" using 1:2:(sprintf(\"%%d\", int($3))) with labels offset char %s "
            "font \",%d\" tc rgb \"black\" notitle, \\\n",
            big ? "0.9,0.8" : "1.5,1.2", big ? 9 : 12);
    fputs("  NaN with lines lw 2 lc rgb \"black\" title \"1-sigma ellipse\", \\\n", f);
    fputs("  NaN with lines lw 1.5 dt 2 lc rgb \"black\" title \"2-sigma ellipse\"\n", f);
    gp_footer(f);
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;
    return finish_plot(dir, "clusters", render);
}

/* -------------------------------------------------------------------------------------- init_study.png */

/* Writes init_study.dat (per finished run: jittered x, converged total log-likelihood, method 1-based,
 * run 1-based, iterations, converged) and init_study.gp (one column per method, method names and
 * finished/attempted counts as x tics, a dashed line at the best log-likelihood, open markers for runs
 * that stopped at max_iter), then renders init_study.png when render is 1. */
gmm_status gmm_plot_init_study(const char *dir, const gmm_study_method *study, int n_study, int render)
{
    if (!dir || !study || n_study < 1)
        return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_plot_init_study: dir and at least one study method are required");
    double best = -INFINITY, worst = INFINITY;
    int any_unconverged = 0;
    for (int mi = 0; mi < n_study; mi++) {
        const gmm_study_method *sm = &study[mi];
        if (sm->n_ok < 0 || sm->n_ok > sm->runs || (sm->n_ok > 0 && (!sm->loglik || !sm->n_iter || !sm->converged)))
            return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_plot_init_study: method %d (%s) has inconsistent counts", mi,
                            sm->name ? sm->name : "?");
        for (int r = 0; r < sm->n_ok; r++) {
            double v = sm->loglik[r];
            if (!isfinite(v)) continue;
            if (v > best) best = v;
            if (v < worst) worst = v;
            if (!sm->converged[r]) any_unconverged = 1;
        }
    }

    gmm_atomic_file af;
    gmm_status st = gmm_atomic_open_in(&af, dir, "init_study.dat");
    if (st != GMM_OK) return st;
    fprintf(af.f, "# columns: x (method + jitter), converged total log-likelihood, method (1-based), "
                  "run (1-based among finished runs), EM iterations, converged (1/0)\n");
    for (int mi = 0; mi < n_study; mi++) {
        const gmm_study_method *sm = &study[mi];
        fprintf(af.f, "# method %d: %s, %d of %d runs finished\n", mi + 1, sm->name ? sm->name : "?", sm->n_ok,
                sm->runs);
        for (int r = 0; r < sm->n_ok; r++) {
            double jitter = sm->n_ok > 1 ? 0.5 * (((double)r + 0.5) / (double)sm->n_ok - 0.5) : 0.0;
            fprintf(af.f, "%.10g ", (double)(mi + 1) + jitter);
            if (isfinite(sm->loglik[r]))
                fprintf(af.f, "%.17g", sm->loglik[r]);
            else
                fputs("?", af.f);
            fprintf(af.f, " %d %d %d %d\n", mi + 1, r + 1, sm->n_iter[r], sm->converged[r] ? 1 : 0);
        }
    }
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;

    if ((st = gmm_atomic_open_in(&af, dir, "init_study.gp")) != GMM_OK) return st;
    FILE *f = af.f;
    gp_header(f, "init_study", "converged log-likelihood of every run, one column per initialization method");
    fputs("set title \"Converged log-likelihood of every run, by initialization method\"\n", f);
    fputs("set ylabel \"converged total log-likelihood\"\n", f);
    fprintf(f, "set xrange [0.5:%g]\n", n_study + 0.5);
    fputs("set xtics (", f);
    for (int mi = 0; mi < n_study; mi++) {
        char tic[160];
        snprintf(tic, sizeof tic, "%s\n%d/%d finished", study[mi].name ? study[mi].name : "?", study[mi].n_ok,
                 study[mi].runs);
        if (mi) fputs(", ", f);
        gp_string(f, tic);
        fprintf(f, " %d", mi + 1);
    }
    fputs(") scale 0\n", f);
    /* two-line x tic labels: leave room below them for the key, placed by hand */
    fputs("set grid ytics lc rgb \"#dddddd\"\nset bmargin 7\n", f);
    fputs("set key at screen 0.5, screen 0.01 center bottom horizontal\n", f);
    char b1[48];
    if (isfinite(best)) {
        double span = best - worst;
        double pad = span > 0 ? 0.08 * span : fmax(1.0, 1e-6 * fabs(best));
        fprintf(f, "set yrange [%.17g:%.17g]\n", worst - pad, best + pad);
        fprintf(f, "best = %.17g\n", best);
        fputs("set arrow from graph 0, first best to graph 1, first best nohead dt 2 lw 1.5 lc rgb \"#555555\"\n", f);
        fputs("plot \\\n", f);
        for (int mi = 0; mi < n_study; mi++) {
            const char *col = PLOT_COLORS[(size_t)mi % N_PLOT_COLORS];
            fprintf(f,
                    "  \"init_study.dat\" using 1:($3 == %d && $6 == 1 ? $2 : 1/0) with points pt 7 ps 1.3 "
                    "lc rgb \"%s\" notitle, \\\n",
                    mi + 1, col);
            fprintf(f,
                    "  \"init_study.dat\" using 1:($3 == %d && $6 == 0 ? $2 : 1/0) with points pt 6 ps 1.3 "
                    "lw 1.5 lc rgb \"%s\" notitle, \\\n",
                    mi + 1, col);
        }
        fputs("  NaN with points pt 7 ps 1.3 lc rgb \"black\" title \"converged run\", \\\n", f);
        if (any_unconverged)
            fputs("  NaN with points pt 6 ps 1.3 lw 1.5 lc rgb \"black\" title \"stopped at max_iter\", \\\n", f);
        char t[96];
        snprintf(t, sizeof t, "best: %s", fmt_num(b1, sizeof b1, best, 10));
        fputs("  NaN with lines dt 2 lw 1.5 lc rgb \"#555555\" title ", f);
        gp_string(f, t);
        fputs("\n", f);
    } else {
        fputs("set yrange [-1:1]\nset ytics format \"\"\n", f);
        fputs("set label \"no run finished\" at graph 0.5, graph 0.5 center\n", f);
        fputs("plot NaN notitle\n", f);
    }
    gp_footer(f);
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;
    return finish_plot(dir, "init_study", render);
}

/* ----------------------------------------------------------------------------------------- selection.png */

gmm_status gmm_write_selection(const char *dir, const gmm_selection_row *rows, size_t n_rows)
{
    if (!dir || !rows || n_rows == 0) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_write_selection: no candidates");
    gmm_atomic_file af;
    gmm_status st = gmm_atomic_open_in(&af, dir, "selection.csv");
    if (st != GMM_OK) return st;
    fputs("k,covariance,status,loglik,bic,aic,n_iter,converged\n", af.f);
    for (size_t i = 0; i < n_rows; i++) {
        const gmm_selection_row *r = &rows[i];
        if (r->ok && isfinite(r->loglik) && isfinite(r->bic) && isfinite(r->aic))
            fprintf(af.f, "%d,%s,ok,%.17g,%.17g,%.17g,%d,%d\n", r->k, gmm_covariance_name(r->type), r->loglik, r->bic,
                    r->aic, r->n_iter, r->converged);
        else
            fprintf(af.f, "%d,%s,failed,,,,,\n", r->k, gmm_covariance_name(r->type));
    }
    return gmm_atomic_commit(&af);
}

/* Index of the finished candidate with the lowest BIC, or n_rows when none finished. */
static size_t best_by_bic(const gmm_selection_row *rows, size_t n_rows)
{
    size_t best = n_rows;
    for (size_t i = 0; i < n_rows; i++)
        if (rows[i].ok && isfinite(rows[i].bic) && (best == n_rows || rows[i].bic < rows[best].bic)) best = i;
    return best;
}

gmm_status gmm_plot_selection(const char *dir, const gmm_selection_row *rows, size_t n_rows, int render)
{
    if (!dir || !rows || n_rows == 0) return gmm_fail(GMM_ERR_INVALID_ARG, "gmm_plot_selection: no candidates");
    /* selection.dat: one block per covariance type present (gnuplot index), rows k bic aic ('?' if failed) */
    int present[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n_rows; i++) present[rows[i].type] = 1;
    gmm_atomic_file af;
    gmm_status st = gmm_atomic_open_in(&af, dir, "selection.dat");
    if (st != GMM_OK) return st;
    fputs("# gmm select: k, BIC, AIC per covariance type (one block each, in the order of the plot's key)\n", af.f);
    int blocks = 0;
    for (int t = 0; t < 4; t++) {
        if (!present[t]) continue;
        if (blocks++) fputs("\n\n", af.f);
        fprintf(af.f, "# %s\n", gmm_covariance_name((gmm_covariance_type)t));
        for (size_t i = 0; i < n_rows; i++) {
            if ((int)rows[i].type != t) continue;
            fprintf(af.f, "%d ", rows[i].k);
            dat_num(af.f, rows[i].ok ? rows[i].bic : NAN);
            fputc(' ', af.f);
            dat_num(af.f, rows[i].ok ? rows[i].aic : NAN);
            fputc('\n', af.f);
        }
    }
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;

    if ((st = gmm_atomic_open_in(&af, dir, "selection.gp")) != GMM_OK) return st;
    FILE *f = af.f;
    gp_header_sized(f, "selection", "BIC and AIC against the number of components", 1100, 500);
    int kmax = 1;
    for (size_t i = 0; i < n_rows; i++)
        if (rows[i].k > kmax) kmax = rows[i].k;
    fprintf(f, "set xrange [0.5:%g]\nset xtics 1\nset grid lc rgb \"#dddddd\"\nset xlabel \"components k\"\n",
            kmax + 0.5);
    fputs("set key top right\nset multiplot layout 1,2\n", f);
    size_t best = best_by_bic(rows, n_rows);
    for (int panel = 0; panel < 2; panel++) {
        const char *crit = panel == 0 ? "BIC" : "AIC";
        char title[160];
        if (panel == 0 && best < n_rows)
            snprintf(title, sizeof title, "BIC (lower is better): best k = %d, %s", rows[best].k,
                     gmm_covariance_name(rows[best].type));
        else
            snprintf(title, sizeof title, "%s (lower is better)", crit);
        fputs("set title ", f);
        gp_string(f, title);
        fprintf(f, "\nset ylabel \"%s\"\nplot ", crit);
        int b = 0;
        for (int t = 0; t < 4; t++) {
            if (!present[t]) continue;
            fprintf(f,
                    "%s\"selection.dat\" index %d using 1:%d with linespoints pt %d ps 1.0 lw 2 lc rgb \"%s\" title "
                    "\"%s\"",
                    b ? ", \\\n     " : "", b, panel == 0 ? 2 : 3, PLOT_SHAPES[t % 6], PLOT_COLORS[t % 12],
                    gmm_covariance_name((gmm_covariance_type)t));
            b++;
        }
        fputc('\n', f);
    }
    fputs("unset multiplot\n", f);
    gp_footer(f);
    if ((st = gmm_atomic_commit(&af)) != GMM_OK) return st;
    return finish_plot(dir, "selection", render);
}
