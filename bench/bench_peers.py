#!/usr/bin/env python3
"""bench_peers.py — times the other CPU GMM trainers that install from Debian or PyPI on the data bench_cpu wrote.

Reads the CSV written by bench_cpu (--gmm-csv) and, for each case and each peer that is installed and fits
the case's covariance type, runs the peer's EM on the same data (.npy) with --threads threads:
  vlfeat  VLFeat's vl_gmm_cluster (Debian libvlfeat-dev; diag only), through the bench/peer_vlfeat.c
          program (--vlfeat-bin), from gmm's initial model (means, variances, weights);
  mclust  R mclust's me() (Debian r-cran-mclust; VVI for diag, VVV for full), through bench/peer_mclust.R,
          from responsibilities that put each point on its nearest initial mean; Fortran, one thread
          whatever --threads says;
  mlpack  mlpack's gmm_train (PyPI mlpack; diagonal_covariance for diag), tolerance 0, from the model of one
          untimed EM iteration after its own k-means start (kmeans_max_iterations=1) given as input_model,
          so that the timed runs do no k-means; every call also carries about a second of set-up, so its R
          is raised (up to 400) until R - 1 iterations take at least 4 s in an untimed trial.
Each peer runs in its own process with OMP_NUM_THREADS / OPENBLAS_NUM_THREADS set to --threads.

How an iteration is timed: none of these exposes per-iteration times, so each peer runs with R (--iters)
and with 1 iteration, --repeats times each, alternating, and seconds per iteration = (min t_R - min t_1) /
(iterations_R - iterations_1): the set-up (data copies, initialization, output) cancels. The iteration counts are the peers' own where
they report them (VLFeat's verbose output, mclust's info attribute), R and 1 for mlpack (whose process
does the untimed start once, then its timed runs of both lengths). One CSV row per
case and peer (--csv), with the peer's final mean log-likelihood where it reports one (a sanity check only:
the peers start elsewhere, so it is not gmm's).

Exit status: 0 on success (peers that are missing are listed, not an error); 1 on a failure.
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

MLPACK_SNIPPET = """
import sys, time
import numpy as np
import mlpack
x = np.load(sys.argv[1])
k, iters, diag, repeats = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "diag", int(sys.argv[5])
# no_force_positive skips mlpack's positive-definiteness repair of the covariances; with full ones its k-means
# start then fails ("Cholesky decomposition failed"), so it is asked for diagonal ones only
opts = dict(input_=x, gaussians=k, diagonal_covariance=diag, tolerance=0.0, trials=1, seed=1,
            no_force_positive=diag)
start = mlpack.gmm_train(kmeans_max_iterations=1, max_iterations=1, **opts)["output_model"]
def timed(r):
    t0 = time.perf_counter()
    mlpack.gmm_train(input_model=start, max_iterations=r, **opts)
    return time.perf_counter() - t0
# each call carries about a second of set-up: R grows until the R - 1 iterations take 4 s or more
per = (timed(iters) - timed(1)) / (iters - 1)
if per * (iters - 1) < 4.0:
    iters = min(400, iters + int(4.0 / max(per, 1e-3)))
for _ in range(repeats):
    for r in (iters, 1):
        t0 = time.perf_counter()
        mlpack.gmm_train(input_model=start, max_iterations=r, **opts)
        print(f"{'long' if r == iters else 'short'} seconds {time.perf_counter() - t0:.6f} iterations {r} loglik nan")
"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gmm-csv", required=True, help="the CSV written by bench_cpu --csv")
    p.add_argument("--csv", required=True, help="where to write the peers' results")
    p.add_argument("--threads", type=int, default=0, help="threads (default: as in the gmm CSV)")
    p.add_argument("--iters", type=int, default=0, help="R of the long run (default: the case's iters)")
    p.add_argument("--repeats", type=int, default=2, help="runs of each length; the fastest counts")
    p.add_argument("--peers", default="vlfeat,mclust,mlpack", help="comma-separated subset to run")
    p.add_argument("--vlfeat-bin", default="", help="the compiled bench/peer_vlfeat.c")
    p.add_argument("--work", default="", help="folder for the raw copies of the data (default: beside it)")
    return p.parse_args()


def available(peers, vlfeat_bin, py):
    """{peer: (available, why not / version)}."""
    out = {}
    if "vlfeat" in peers:
        ok = bool(vlfeat_bin) and os.access(vlfeat_bin, os.X_OK)
        out["vlfeat"] = (ok, "libvlfeat-dev" if ok else "peer_vlfeat not built (libvlfeat-dev missing?)")
    if "mclust" in peers:
        ok = shutil.which("Rscript") is not None
        ver = ""
        if ok:
            r = subprocess.run(["Rscript", "-e", "cat(as.character(packageVersion('mclust')))"],
                               capture_output=True, text=True)
            ok, ver = r.returncode == 0, r.stdout.strip()
        out["mclust"] = (ok, f"mclust {ver}" if ok else "Rscript or the R package mclust missing")
    if "mlpack" in peers:
        r = subprocess.run([py, "-c", "import mlpack, importlib.metadata as m; print(m.version('mlpack'))"],
                           capture_output=True, text=True)
        ok = r.returncode == 0
        out["mlpack"] = (ok, f"mlpack {r.stdout.strip()}" if ok else "python package mlpack missing")
    return out


def run_raw(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}...: status {r.returncode}: {r.stderr[-2000:]}")
    return r


def run_mlpack(cmd, env):
    """mlpack's process times both lengths: ([long runs], [short runs]) as (seconds, iterations, loglik)."""
    r = run_raw(cmd, env)
    runs = {"long": [], "short": []}
    for line in r.stdout.splitlines():
        m = re.match(r"(long|short) seconds (\S+) iterations (\S+) loglik (\S+)", line)
        if m:
            runs[m.group(1)].append((float(m.group(2)), int(m.group(3)), float(m.group(4))))
    if not runs["long"] or not runs["short"]:
        raise RuntimeError(f"mlpack: no timing lines in {r.stdout[-2000:]!r}")
    return runs["long"], runs["short"]


def run_once(cmd, env):
    """Runs cmd; (seconds, iterations, loglik) from its last 'seconds S iterations I loglik L' line."""
    r = run_raw(cmd, env)
    m = None
    for line in r.stdout.splitlines():
        m = re.match(r"seconds (\S+) (?:iterations (\S+) )?loglik (\S+)", line) or m
    if not m:
        raise RuntimeError(f"{' '.join(cmd[:3])}...: no timing line in {r.stdout[-2000:]!r}")
    iters = m.group(2)
    if iters is None:  # VLFeat: its verbose "em: iteration I" lines, I from 0 (the first E-step)
        iters = sum(1 for line in r.stdout.splitlines() if "em: iteration" in line) - 1
    return float(m.group(1)), int(iters), float(m.group(3))


def peer_command(peer, row, files, iters, threads, vlfeat_bin, py, repeats=1):
    n, d, k, cov = row["n"], row["d"], row["k"], row.get("cov") or "full"
    if peer == "vlfeat":
        return [vlfeat_bin, files["x"], n, d, k, str(iters), str(threads), files["init"]]
    if peer == "mclust":
        return ["Rscript", os.path.join(HERE, "peer_mclust.R"), files["x"], n, d, k, str(iters), files["init"], cov]
    return [py, "-c", MLPACK_SNIPPET, row["data"], k, str(iters), cov, str(repeats)]


def raw_files(row, work):
    """The data and the initial model as raw float64 (for the C and R peers)."""
    import numpy as np

    base = os.path.join(work, row["case"])
    x = np.load(row["data"])
    with open(row["init"]) as f:
        init = json.load(f)
    k, d = int(row["k"]), int(row["d"])
    cov = np.asarray(init["covariances"], dtype=np.float64)
    cov_type = row.get("cov") or "full"
    variances = {"diag": lambda: cov.reshape(k, d), "spherical": lambda: np.repeat(cov.reshape(k, 1), d, 1),
                 "full": lambda: np.stack([np.diag(c) for c in cov.reshape(k, d, d)]),
                 "tied": lambda: np.tile(np.diag(cov.reshape(d, d)), (k, 1))}[cov_type]()
    np.ascontiguousarray(x, dtype=np.float64).tofile(base + ".x.bin")
    np.concatenate([np.ravel(init["means"]), np.ravel(variances), np.ravel(init["weights"])]).astype(
        np.float64).tofile(base + ".init.bin")
    return {"x": base + ".x.bin", "init": base + ".init.bin"}


def main():
    a = parse_args()
    with open(a.gmm_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        print(f"bench_peers: no cases in {a.gmm_csv}", file=sys.stderr)
        return 1
    threads = a.threads or int(rows[0]["threads"])
    py = sys.executable
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    peers = [p for p in a.peers.split(",") if p]
    have = available(peers, a.vlfeat_bin, py)
    for p in peers:
        print(f"bench_peers: {p}: {'found, ' if have[p][0] else 'skipped: '}{have[p][1]}")
    fields = ["case", "peer", "cov", "n", "d", "k", "threads", "iters", "peer_s_per_iter", "t_long_s", "t_short_s",
              "peer_loglik_mean", "version", "note"]
    out = open(a.csv, "w", newline="")
    w = csv.DictWriter(out, fieldnames=fields)
    w.writeheader()
    status = 0
    for row in rows:
        cov = row.get("cov") or "full"
        iters = a.iters or int(row["iters"])
        files = None
        for p in peers:
            if not have[p][0]:
                continue
            if p == "vlfeat" and cov != "diag":
                continue  # VLFeat's GMM has diagonal covariances only
            if cov not in ("diag", "full"):
                continue
            if files is None and p in ("vlfeat", "mclust"):
                files = raw_files(row, a.work or os.path.dirname(row["data"]))
            cmd_long = peer_command(p, row, files or {}, iters, threads, a.vlfeat_bin, py)
            cmd_short = peer_command(p, row, files or {}, 1, threads, a.vlfeat_bin, py)
            try:
                t0 = time.perf_counter()
                longs, shorts = [], []
                if p == "mlpack":
                    longs, shorts = run_mlpack(
                        peer_command(p, row, {}, iters, threads, a.vlfeat_bin, py, max(1, a.repeats)), env)
                for _ in range(max(1, a.repeats) if p != "mlpack" else 0):
                    longs.append(run_once(cmd_long, env))
                    shorts.append(run_once(cmd_short, env))
                tl, il, ll = min(longs)
                ts, is_, _ = min(shorts)
                wall = time.perf_counter() - t0
            except RuntimeError as e:
                print(f"bench_peers: {row['case']}: {p} failed: {e}", file=sys.stderr)
                status = 1
                continue
            per = (tl - ts) / (il - is_) if il > is_ else float("nan")
            note = {"mclust": "one thread (Fortran)", "mlpack": "from its own start; iterations assumed = max",
                    "vlfeat": "gmm's initial model"}[p]
            rec = {"case": row["case"], "peer": p, "cov": cov, "n": row["n"], "d": row["d"], "k": row["k"],
                   "threads": 1 if p == "mclust" else threads, "iters": f"{il}-{is_}",
                   "peer_s_per_iter": f"{per:.6e}", "t_long_s": f"{tl:.4f}", "t_short_s": f"{ts:.4f}",
                   "peer_loglik_mean": repr(ll / int(row["n"])), "version": have[p][1], "note": note}
            w.writerow(rec)
            out.flush()
            print(f"{row['case']:<26} {p:<7} {per:>12.4e} s/iter  (R runs {tl:.3f} s / {il} it, "
                  f"{ts:.3f} s / {is_} it; {wall:.1f} s wall)", flush=True)
        if files:
            for path in files.values():
                os.remove(path)
    out.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
