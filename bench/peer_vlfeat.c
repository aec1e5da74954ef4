/*
 * peer_vlfeat.c — times VLFeat's GMM EM (vl_gmm_cluster, diagonal covariances only) for bench_peers.py:
 * reads the data and a custom initial model as raw float64 files, runs EM from it for at most R
 * iterations with T threads (vl_set_num_threads), and prints one line
 *   seconds S iterations I loglik L
 * S: wall time of vl_gmm_cluster; I: the EM iterations it ran (counted from its verbose output, which goes to
 * stderr: "em: iteration" lines, read by the caller); L: VLFeat's final log-likelihood (total).
 *
 * Built by bench/run_cpu_bench.sh with `cc -O2 ... -lvl` when VLFeat (Debian libvlfeat-dev) is installed;
 * not part of the CMake build.
 *
 * Usage: peer_vlfeat DATA.bin N D K R T INIT.bin
 *   DATA.bin: N x D doubles, row-major; INIT.bin: K x D means, K x D variances, K priors (doubles).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <vl/generic.h>
#include <vl/gmm.h>

/* count doubles from path into a new array, or NULL (after a message). */
static double *read_doubles(const char *path, size_t count)
{
    FILE *f = fopen(path, "rb");
    double *p = malloc(count * sizeof *p);
    if (!f || !p || fread(p, sizeof *p, count, f) != count) {
        fprintf(stderr, "peer_vlfeat: cannot read %zu doubles from %s\n", count, path);
        if (f) fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: peer_vlfeat DATA.bin N D K R T INIT.bin\n");
        return 2;
    }
    const size_t n = strtoull(argv[2], NULL, 10), d = strtoull(argv[3], NULL, 10), k = strtoull(argv[4], NULL, 10);
    const size_t iters = strtoull(argv[5], NULL, 10), threads = strtoull(argv[6], NULL, 10);
    double *x = read_doubles(argv[1], n * d), *init = read_doubles(argv[7], k * (2 * d + 1));
    if (!x || !init) return 1;
    vl_set_num_threads(threads);
    VlGMM *gmm = vl_gmm_new(VL_TYPE_DOUBLE, d, k);
    vl_gmm_set_initialization(gmm, VlGMMCustom);
    vl_gmm_set_means(gmm, init);
    vl_gmm_set_covariances(gmm, init + k * d);
    vl_gmm_set_priors(gmm, init + 2 * k * d);
    vl_gmm_set_max_num_iterations(gmm, iters);
    vl_gmm_set_num_repetitions(gmm, 1);
    vl_gmm_set_verbosity(gmm, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double ll = vl_gmm_cluster(gmm, x, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fflush(stdout);
    printf("seconds %.9f loglik %.17g threads %zu\n",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), ll,
           (size_t)vl_get_max_threads());
    vl_gmm_delete(gmm);
    free(x);
    free(init);
    return 0;
}
