#!/usr/bin/env python3
"""bench_python.py — the Python package's cost and speed, in one run on one machine.

Part 1, the Python layer's overhead per fit: on the same data and options (seed 0, --device cpu, the same
threads) it times, alternating, R times each and takes the median of
  - cli:  `gmm fit DATA.npy -k K ...` of the package's own gmm program: the "fit time" it reports in
          report.md (opening the data on the backend + gmm_fit's runs; not reading the file or writing outputs);
  - c:    gmm_fit called straight through the binding (one cffi call: the library's fit and nothing else);
  - py:   gmm.GaussianMixture(...).fit(X), perf_counter around it (validation, options, the call, the
          fitted attributes, precisions_cholesky_ and precisions_);
and reports the Python layer's share: within each timed GaussianMixture.fit, (fit wall time - time inside its
gmm_fit call) / time inside gmm_fit (one fit, so free of the run-to-run noise of a shared CPU), and the
medians' ratios (py - c) / c and py / cli (after one untimed fit of c and py). All three fits give the same model (checked: n_iter and
means bit for bit). Cases: N = 1e6, d = 2, K = 4 with scikit-learn's defaults (it converges), and
N = 1e5, d = 64, K = 64 with --max-iter (default 2) iterations and tol 0 (a full-covariance iteration there
costs seconds on a small CPU).

Part 2, gmm.GaussianMixture against sklearn.mixture.GaussianMixture as a user times them: perf_counter
around fit, the same data (N = 1e6, d = 2, K = 4), both with their defaults and random_state 0, the same
threads (threadpoolctl limits every BLAS and OpenMP pool; OMP_NUM_THREADS is set before numpy loads).
The two start from different k-means seeds (different random generators), so it reports the fit times, the
iteration counts and the time per iteration (fit time / n_iter) of each, and both ratios.

Writes one CSV row per measurement (--csv) and a log with the machine, date and command on stdout.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="fits per path and case (median)")
    p.add_argument("--sklearn-repeats", type=int, default=3)
    p.add_argument("--max-iter", type=int, default=2, help="EM iterations of the d = 64, K = 64 case")
    p.add_argument("--csv", required=True)
    p.add_argument("--cli", default=shutil.which("gmm", path=os.path.dirname(sys.executable)) or "gmm")
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread variables)
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGaussianMixture  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import gmm  # noqa: E402
from gmm._lib import ffi, lib  # noqa: E402


def blobs(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    return centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))


def fit_cli(data, k, extra, tmp):
    out = os.path.join(tmp, "cli-out")
    cmd = [ARGS.cli, "fit", data, "-k", str(k), "--seed", "0", "--device", "cpu", "--threads", str(ARGS.threads),
           "--quiet", "--out", out] + extra
    subprocess.run(cmd, check=True, capture_output=True)
    with open(os.path.join(out, "report.md")) as f:
        line = next(line for line in f if line.startswith("| fit time |"))
    value, unit = line.split("|")[2].split()
    seconds = float(value) * {"s": 1.0, "ms": 1e-3, "us": 1e-6}[unit]
    with open(os.path.join(out, "model.json")) as f:
        model = json.load(f)
    return seconds, model["fit"]["n_iter"], np.array(model["means"])


def fit_c(x, k, max_iter, tol):
    o = ffi.new("gmm_options *")
    lib.gmm_options_init(o)
    o.n_components, o.max_iter, o.tol, o.seed, o.n_threads = k, max_iter, tol, 0, ARGS.threads
    out = ffi.new("gmm_model **")
    xp = ffi.from_buffer("double[]", x)
    t0 = time.perf_counter()
    status = lib.gmm_fit(xp, x.shape[0], x.shape[1], o, out)
    seconds = time.perf_counter() - t0
    assert status == lib.GMM_OK, ffi.string(lib.gmm_last_error())
    means = np.frombuffer(ffi.buffer(lib.gmm_model_means(out[0]), k * x.shape[1] * 8)).reshape(k, -1).copy()
    n_iter = lib.gmm_model_n_iter(out[0])
    lib.gmm_model_free(out[0])
    return seconds, n_iter, means


class _TimedLib:
    """Stands in for the binding's lib inside gmm._mixture: forwards everything, and times gmm_fit, so that
    one GaussianMixture.fit tells how long it spent inside the library and how long around it."""

    def __init__(self, lib):
        self._lib, self.inside = lib, 0.0

    def __getattr__(self, name):
        return getattr(self._lib, name)

    def gmm_fit(self, *args):
        t0 = time.perf_counter()
        try:
            return self._lib.gmm_fit(*args)
        finally:
            self.inside += time.perf_counter() - t0


def fit_py(x, k, max_iter, tol):
    """GaussianMixture.fit's wall time, and the part of it spent inside gmm_fit."""
    est = gmm.GaussianMixture(k, max_iter=max_iter, tol=tol, random_state=0)
    timed = gmm._mixture.lib = _TimedLib(lib)
    try:
        t0 = time.perf_counter()
        est.fit(x)
        seconds = time.perf_counter() - t0
    finally:
        gmm._mixture.lib = lib
    return seconds, est.n_iter_, est.means_, timed.inside


def overhead_case(name, n, d, k, max_iter, tol, rows, tmp):
    x = blobs(n, d, k)
    data = os.path.join(tmp, "%s.npy" % name)
    np.save(data, x)
    extra = ["--max-iter", str(max_iter), "--tol", repr(tol)]
    times = {"cli": [], "c": [], "py": []}
    layer = []  # per Python fit: (fit wall - time inside gmm_fit) / time inside gmm_fit
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_c(x, k, max_iter, tol)  # untimed: first-call costs (page faults of new buffers, lazy imports)
        fit_py(x, k, max_iter, tol)
        for _ in range(ARGS.repeats):
            for path, run in (("cli", lambda: fit_cli(data, k, extra, tmp)), ("c", lambda: fit_c(x, k, max_iter, tol)),
                              ("py", lambda: fit_py(x, k, max_iter, tol))):
                seconds, n_iter, means, *inside = run()
                times[path].append(seconds)
                if inside:
                    layer.append((seconds - inside[0]) / inside[0])
                results[path] = (n_iter, means)
    same = all(results[p][0] == results["c"][0] and np.array_equal(results[p][1], results["c"][1])
               for p in ("cli", "py"))
    med = {p: statistics.median(t) for p, t in times.items()}
    print("%s: N=%d d=%d K=%d, n_iter %d, same model on all three paths: %s" % (name, n, d, k, results["c"][0], same))
    for p in ("cli", "c", "py"):
        print("  %-4s median %.4f s  (all: %s)" % (p, med[p], ", ".join("%.4f" % t for t in times[p])))
        rows.append(dict(part="overhead", case=name, n=n, d=d, k=k, path=p, n_iter=results[p][0], median_s=med[p],
                         all_s=" ".join("%.6f" % t for t in times[p])))
    print("  Python layer within each GaussianMixture.fit, (wall - inside gmm_fit) / inside: median %.3f%%, max "
          "%.3f%% (all: %s)" % (100 * statistics.median(layer), 100 * max(layer),
                                ", ".join("%.3f%%" % (100 * v) for v in layer)))
    print("  medians across runs (shared CPU: noisy): (py - c) / c = %+.2f%%; py / cli = %.4f" %
          (100 * (med["py"] - med["c"]) / med["c"], med["py"] / med["cli"]))
    rows.append(dict(part="overhead", case=name, n=n, d=d, k=k, path="py_layer_fraction", n_iter=results["py"][0],
                     median_s=statistics.median(layer), all_s=" ".join("%.6f" % v for v in layer)))
    return same


def sklearn_case(rows):
    n, d, k = 1_000_000, 2, 4
    x = blobs(n, d, k)
    times = {"gmm": [], "sklearn": []}
    iters = {}
    with threadpool_limits(limits=ARGS.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(ARGS.sklearn_repeats):
            for path, cls in (("gmm", gmm.GaussianMixture), ("sklearn", SkGaussianMixture)):
                est = cls(n_components=k, random_state=0)
                t0 = time.perf_counter()
                est.fit(x)
                times[path].append(time.perf_counter() - t0)
                iters[path] = est.n_iter_
    med = {p: statistics.median(t) for p, t in times.items()}
    print("gmm vs sklearn: N=%d d=%d K=%d, %d threads" % (n, d, k, ARGS.threads))
    for p in ("gmm", "sklearn"):
        print("  %-8s fit median %.4f s, n_iter %d, per iteration %.5f s  (all: %s)" %
              (p, med[p], iters[p], med[p] / iters[p], ", ".join("%.4f" % t for t in times[p])))
        rows.append(dict(part="vs_sklearn", case="1e6x2x4", n=n, d=d, k=k, path=p, n_iter=iters[p], median_s=med[p],
                         all_s=" ".join("%.6f" % t for t in times[p])))
    print("  sklearn / gmm: whole fit %.1fx (medians), %.1fx (fastest of each); per iteration %.1fx (medians)" %
          (med["sklearn"] / med["gmm"], min(times["sklearn"]) / min(times["gmm"]),
           (med["sklearn"] / iters["sklearn"]) / (med["gmm"] / iters["gmm"])))


def main():
    print("bench_python.py — %s" % time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    print("command: %s" % " ".join([os.path.basename(sys.executable)] + sys.argv))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print("machine: %s, %s, %d CPUs; threads used %d" % (platform.node(), cpu, os.cpu_count(), ARGS.threads))
    print("python %s, numpy %s, scikit-learn %s, gmm %s (%s)" % (platform.python_version(), np.__version__,
                                                               sklearn.__version__, gmm.__version__, ARGS.cli))
    print("BLAS/OpenMP pools: %s" % ", ".join("%s %s" % (p.get("internal_api"), p.get("version")) for p in threadpool_info()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        same = overhead_case("1e6x2x4", 1_000_000, 2, 4, 100, 1e-3, rows, tmp)
        same &= overhead_case("1e5x64x64", 100_000, 64, 64, ARGS.max_iter, 0.0, rows, tmp)
    sklearn_case(rows)
    with open(ARGS.csv, "w") as f:
        f.write("part,case,n,d,k,path,n_iter,median_s,all_s\n")
        for r in rows:
            f.write("{part},{case},{n},{d},{k},{path},{n_iter},{median_s:.6f},{all_s}\n".format(**r))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
