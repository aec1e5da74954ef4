#!/usr/bin/env python3
"""bench_sklearn.py — times scikit-learn's GaussianMixture on exactly the work that bench_cpu timed.

Reads the CSV written by bench_cpu (--gmm-csv): for each case it loads the same data (.npy), the same
initial model (.init.json, and .prec.npy: the precisions gmm_fit was given) and gmm's fitted model
(.gmm.json, with its log-likelihood trace), runs sklearn.mixture.GaussianMixture(covariance_type=the CSV's
cov column (full when absent), weights_init, means_init, precisions_init, tol=0.0, max_iter=R,
reg_covar=1e-6) with the same R and threads,
and writes one CSV row per case (--csv): seconds per iteration, and how far sklearn's log-likelihood trace
and final parameters are from gmm's (the proof that the same work was timed).

How an iteration is timed (the method, and why):
  sklearn exposes no per-iteration times. Its fit loop calls self._e_step(X) then self._m_step(X, log_resp)
  once per iteration, and one extra _e_step after the loop (for fit_predict's labels). We wrap both methods
  on the estimator instance (instance attributes shadow the class's methods; the work done is unchanged)
  and time each iteration from the entry of _e_step to the return of _m_step — the same span that gmm's
  gmm_model_iter_seconds() measures (E-step with statistics + M-step with the precision Cholesky). The
  extra final _e_step is not counted. As for gmm, iteration 1 is warm-up and the reported figure is the
  MEDIAN over iterations 2..R. This is preferred over (t_fit(R) - t_fit(1)) / (R - 1): that difference of
  two whole-fit wall times also carries input validation, the final E-step and any noise of either run on
  a shared machine, and can even come out negative at small N; the wrappers add two clock reads per
  iteration.

Threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS are set to --threads (default: the
threads column of the gmm CSV) before numpy is imported, and threadpoolctl limits BLAS and OpenMP pools
to the same count during the fits. The BLAS libraries that threadpoolctl reports (with the kernel
"architecture" OpenBLAS picked) are written to the CSV's blas column and printed.

Exit status: 0 on success; 3 when numpy / scikit-learn / threadpoolctl cannot be imported (the runner
prints a note and goes on without sklearn); 1 on any other failure.
"""
import argparse
import csv
import json
import os
import statistics
import sys
import time
import warnings


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gmm-csv", required=True, help="the CSV written by bench_cpu --csv")
    p.add_argument("--csv", required=True, help="where to write sklearn's results")
    p.add_argument("--threads", type=int, default=0, help="threads (default: as in the gmm CSV)")
    p.add_argument("--repeats", type=int, default=1,
                   help="at most this many fits per case; the median is over all their iterations 2..R")
    p.add_argument("--max-case-s", type=float, default=30.0,
                   help="start no further repeat of a case once its fits took this many seconds")
    return p.parse_args()


def read_gmm_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    args = parse_args()
    rows = read_gmm_rows(args.gmm_csv)
    if not rows:
        print(f"bench_sklearn: no cases in {args.gmm_csv}", file=sys.stderr)
        return 1
    threads = args.threads or int(rows[0]["threads"])
    # Before numpy loads: its BLAS reads these once, at import.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import numpy as np
        import sklearn
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError as e:
        print(f"bench_sklearn: cannot import numpy/scikit-learn/threadpoolctl ({e})", file=sys.stderr)
        return 3

    blas = sorted(
        "{} {} {} ({})".format(
            i.get("internal_api"), i.get("version"), i.get("architecture", "?"),
            os.path.basename(i.get("filepath", "")),
        )
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )
    blas_desc = "; ".join(blas) if blas else "none found"
    env_desc = ", ".join(
        f"{v}={os.environ[v]}" if v in os.environ else f"{v} unset"
        for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    )
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, {threads} threads")
    print(f"BLAS: {blas_desc}")
    print(f"env: {env_desc}")

    fields = [
        "case", "n", "d", "k", "threads", "iters", "fits", "sk_s_per_iter", "sk_s_min", "sk_fit_s",
        "loglik_gmm", "loglik_sk", "loglik_rel_diff", "trace_max_rel_diff", "means_max_abs_diff",
        "cov_max_rel_diff", "blas", "sklearn_version",
    ]
    out = open(args.csv, "w", newline="")
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    print(f"{'case':<22} {'iters':>5} {'s/iter':>12} {'min s/iter':>12} {'fit s':>8} "
          f"{'loglik rel diff':>16} {'trace max rel':>14} {'max |dmu|':>10} {'max rel dcov':>12}")
    status = 0
    with threadpool_limits(limits=threads):
        for row in rows:
            name, n, d, k, iters = row["case"], int(row["n"]), int(row["d"]), int(row["k"]), int(row["iters"])
            cov_type = row.get("cov") or "full"
            prec_shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[cov_type]
            X = np.load(row["data"], mmap_mode=None)
            assert X.shape == (n, d) and X.dtype == np.float64 and X.flags.c_contiguous
            with open(row["init"]) as f:
                init = json.load(f)
            with open(row["fit"]) as f:
                fit = json.load(f)
            weights = np.asarray(init["weights"], dtype=np.float64)
            means = np.asarray(init["means"], dtype=np.float64)
            if row.get("prec"):  # the precisions gmm_fit was given, bit for bit
                prec = np.load(row["prec"]).reshape(prec_shape)
            elif cov_type in ("diag", "spherical"):
                prec = 1.0 / np.asarray(init["covariances"], dtype=np.float64).reshape(prec_shape)
            else:
                covs = np.asarray(init["covariances"], dtype=np.float64)
                prec = np.linalg.inv(covs)
                prec = 0.5 * (prec + np.transpose(prec, (0, 2, 1)))  # exactly symmetric for sklearn's check

            times = []
            fit_s = []
            gm = None
            for _ in range(args.repeats):
                if sum(fit_s) > args.max_case_s:
                    break
                gm = GaussianMixture(
                    n_components=k, covariance_type=cov_type, tol=0.0, reg_covar=1e-6, max_iter=iters,
                    n_init=1, weights_init=weights, means_init=means, precisions_init=prec,
                    random_state=0,
                )
                marks = []  # [t_e_start, t_m_end] per iteration
                e_step, m_step = gm._e_step, gm._m_step

                def timed_e(X_, *a, _e=e_step, _marks=marks, **kw):
                    _marks.append([time.perf_counter(), None])
                    return _e(X_, *a, **kw)

                def timed_m(X_, log_resp, *a, _m=m_step, _marks=marks, **kw):
                    r = _m(X_, log_resp, *a, **kw)
                    _marks[-1][1] = time.perf_counter()
                    return r

                gm._e_step, gm._m_step = timed_e, timed_m
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 never converges
                    gm.fit(X)
                fit_s.append(time.perf_counter() - t0)
                per_iter = [m_end - e_start for e_start, m_end in marks if m_end is not None]
                if len(per_iter) != iters or gm.n_iter_ != iters:
                    print(f"bench_sklearn: {name}: {len(per_iter)} timed iterations, n_iter_ = {gm.n_iter_}, "
                          f"expected {iters}", file=sys.stderr)
                    status = 1
                times.extend(per_iter[1:])  # iteration 1 is warm-up

            s_iter = statistics.median(times)
            # Same work? sklearn's lower_bounds_[i] and gmm's loglik_trace[i] / n are both the mean
            # log-likelihood of the parameters entering iteration i + 1.
            sk_trace = np.asarray(gm.lower_bounds_, dtype=np.float64)
            gmm_trace = np.asarray(fit["fit"]["loglik_trace"], dtype=np.float64) / n
            rel = np.abs(sk_trace - gmm_trace) / np.abs(gmm_trace)
            ll_gmm, ll_sk = float(gmm_trace[-1]), float(sk_trace[-1])
            gmm_means = np.asarray(fit["means"], dtype=np.float64)
            gmm_covs = np.asarray(fit["covariances"], dtype=np.float64).reshape(np.shape(gm.covariances_))
            dmu = float(np.max(np.abs(gm.means_ - gmm_means)))
            dcov = float(np.max(np.abs(gm.covariances_ - gmm_covs) / np.max(np.abs(gmm_covs))))
            rec = {
                "fits": len(fit_s),
                "case": name, "n": n, "d": d, "k": k, "threads": threads, "iters": iters,
                "sk_s_per_iter": f"{s_iter:.6e}", "sk_s_min": f"{min(times):.6e}",
                "sk_fit_s": f"{statistics.median(fit_s):.4f}",
                "loglik_gmm": repr(ll_gmm), "loglik_sk": repr(ll_sk),
                "loglik_rel_diff": f"{float(rel[-1]):.3e}", "trace_max_rel_diff": f"{float(rel.max()):.3e}",
                "means_max_abs_diff": f"{dmu:.3e}", "cov_max_rel_diff": f"{dcov:.3e}",
                "blas": blas_desc, "sklearn_version": sklearn.__version__,
            }
            writer.writerow(rec)
            out.flush()
            print(f"{name:<22} {iters:>5} {s_iter:>12.4e} {min(times):>12.4e} {rec['sk_fit_s']:>8} "
                  f"{rec['loglik_rel_diff']:>16} {rec['trace_max_rel_diff']:>14} {rec['means_max_abs_diff']:>10} "
                  f"{rec['cov_max_rel_diff']:>12}", flush=True)
            if not float(rel.max()) <= 1e-9:
                print(f"bench_sklearn: WARNING {name}: sklearn's log-likelihood trace differs from gmm's by "
                      f"{float(rel.max()):.3e} (relative): not the same work", file=sys.stderr)
            del X, gm
    out.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
