/*
 * bench_read.c — how fast and how lean the data readers are: reads FILE (CSV or .npy) with gmm_read_data
 * REPEAT times and prints the best time, the throughput in MB/s of file, and the peak resident memory of
 * the process against the size of the final (n, d) double array. Usage: bench_read FILE [REPEAT]
 */
#include "gmm.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_read FILE [REPEAT]\n");
        return 2;
    }
    int repeat = argc > 2 ? atoi(argv[2]) : 3;
    if (repeat < 1) repeat = 1;
    struct stat sb;
    if (stat(argv[1], &sb) != 0) {
        perror(argv[1]);
        return 1;
    }
    double best = 1e300;
    size_t n = 0, d = 0;
    for (int r = 0; r < repeat; r++) {
        double *x = NULL;
        double t0 = now();
        gmm_status st = gmm_read_data(argv[1], &x, &n, &d);
        double t = now() - t0;
        if (st != GMM_OK) {
            fprintf(stderr, "bench_read: %s\n", gmm_last_error());
            return 1;
        }
        gmm_free(x);
        if (t < best) best = t;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double file_mb = (double)sb.st_size / 1e6, array_mb = (double)(n * d * sizeof(double)) / 1e6;
    double peak_mb = (double)ru.ru_maxrss * 1024.0 / 1e6; /* ru_maxrss is in KiB on Linux */
    printf("file %s: %zu x %zu, %.1f MB\n", argv[1], n, d, file_mb);
    printf("best of %d: %.3f s, %.1f MB/s\n", repeat, best, file_mb / best);
    printf("peak resident memory %.1f MB for a %.1f MB array (%.1f MB beyond it)\n", peak_mb, array_mb,
           peak_mb - array_mb);
    return 0;
}
