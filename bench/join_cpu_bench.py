#!/usr/bin/env python3
"""join_cpu_bench.py — joins bench_cpu's CSV, bench_sklearn.py's and bench_peers.py's (when there are) into one table:
OUTDIR/cpu_bench.csv and OUTDIR/cpu_bench.md. Standard library only, so that the table is written even
where numpy / scikit-learn are missing (the sklearn columns then read "n/a").

Peers (VLFeat, mclust, mlpack): their seconds per iteration and the ratio peer / gmm (above 1: gmm is
faster), in a second table.

speedup = sklearn s/iter / gmm s/iter, both the median over iterations 2..R of the same fits (same data,
same initial model, same R, same threads), measured in the same run of run_cpu_bench.sh. speedup_min is
the same ratio of the fastest iterations, less sensitive to other load on a shared machine.
"""
import argparse
import csv
import os
import sys


def read(path):
    if not path or not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def short_count(n):
    """100000 -> 1e5, 5000 -> 5e3; other counts as they are."""
    s = f"{n:.0e}"
    return s.replace("e+0", "e").replace("e+", "e") if float(s) == n else str(n)


def ratio(a, b):
    try:
        return float(a) / float(b)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gmm-csv", required=True)
    p.add_argument("--sk-csv", default="")
    p.add_argument("--peers-csv", default="")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--header", action="append", default=[], help="a line to put above the table (repeatable)")
    a = p.parse_args()
    gmm = read(a.gmm_csv)
    sk = {r["case"]: r for r in read(a.sk_csv)}
    peer_rows = read(a.peers_csv)
    peer_names = [p for p in ("vlfeat", "mclust", "mlpack") if any(r["peer"] == p for r in peer_rows)]
    peers = {(r["case"], r["peer"]): r for r in peer_rows}
    if not gmm:
        print(f"join_cpu_bench: no gmm results in {a.gmm_csv}", file=sys.stderr)
        return 1
    cols = ["case", "n", "d", "k", "threads", "iters", "gmm_s_per_iter", "sklearn_s_per_iter", "speedup",
            "gmm_s_min", "sklearn_s_min", "speedup_min", "gmm_gbps", "read_floor_s", "gmm_over_floor",
            "loglik_gmm", "loglik_sklearn", "loglik_rel_diff", "trace_max_rel_diff", "blas", "cov"]
    for p in peer_names:
        cols += [f"{p}_s_per_iter", f"{p}_over_gmm"]
    rows = []
    for g in gmm:
        s = sk.get(g["case"], {})
        sp, spm = ratio(s.get("sk_s_per_iter"), g["gmm_s_per_iter"]), ratio(s.get("sk_s_min"), g["gmm_s_min"])
        rows.append({
            "case": g["case"], "n": g["n"], "d": g["d"], "k": g["k"], "threads": g["threads"],
            "iters": g["iters"], "gmm_s_per_iter": g["gmm_s_per_iter"],
            "sklearn_s_per_iter": s.get("sk_s_per_iter", "n/a"),
            "speedup": f"{sp:.2f}" if sp else "n/a",
            "gmm_s_min": g["gmm_s_min"], "sklearn_s_min": s.get("sk_s_min", "n/a"),
            "speedup_min": f"{spm:.2f}" if spm else "n/a",
            "gmm_gbps": g["gmm_gbps"], "read_floor_s": g["read_floor_s"], "gmm_over_floor": g["gmm_over_floor"],
            "loglik_gmm": g["gmm_loglik_mean"], "loglik_sklearn": s.get("loglik_sk", "n/a"),
            "loglik_rel_diff": s.get("loglik_rel_diff", "n/a"),
            "trace_max_rel_diff": s.get("trace_max_rel_diff", "n/a"), "blas": s.get("blas", "n/a"),
            "cov": g.get("cov", "full"),
        })
        for p in peer_names:
            pr = peers.get((g["case"], p), {})
            rp = ratio(pr.get("peer_s_per_iter"), g["gmm_s_per_iter"])
            rows[-1][f"{p}_s_per_iter"] = pr.get("peer_s_per_iter", "n/a")
            rows[-1][f"{p}_over_gmm"] = f"{rp:.2f}" if rp else "n/a"
    with open(a.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)

    def fmt(v):
        try:
            return f"{float(v):.4g}"
        except ValueError:
            return v

    lines = list(a.header)
    if lines:
        lines.append("")
    lines.append("| case | N | d | K | R | threads | gmm s/iter | sklearn s/iter | speedup | speedup (fastest iter) "
                 "| gmm GB/s | loglik rel diff |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lines.append(
            f"| {r['case']} | {short_count(int(r['n']))} | {r['d']} | {r['k']} | {r['iters']} | {r['threads']} "
            f"| {fmt(r['gmm_s_per_iter'])} | {fmt(r['sklearn_s_per_iter'])} | {r['speedup']} | {r['speedup_min']} "
            f"| {fmt(r['gmm_gbps'])} | {r['loglik_rel_diff']} |"
        )
    blas = sorted({r["blas"] for r in rows if r["blas"] != "n/a"})
    lines.append("")
    lines.append("s/iter: median over iterations 2..R of the same fit (iteration 1 is warm-up); speedup = "
                 "sklearn / gmm. loglik rel diff: |sklearn - gmm| / |gmm| of the mean log-likelihood after R "
                 "iterations (the same work was timed when it is ~1e-12 or below).")
    lines.append("")
    lines.append("sklearn BLAS (threadpoolctl): " + ("; ".join(blas) if blas else "n/a (sklearn not run)"))
    if peer_names:
        lines.append("")
        lines.append("Seconds per EM iteration of every trainer, and each one's time over gmm's (above 1: gmm is "
                     "faster). Peers: (t_R - t_1) / (R - 1) of their own runs (bench_peers.py).")
        lines.append("")
        head = "| case | cov | gmm | sklearn | " + " | ".join(peer_names) + " | sklearn / gmm | " + \
            " | ".join(f"{p} / gmm" for p in peer_names) + " |"
        lines.append(head)
        lines.append("|---|---|" + "---:|" * (2 * len(peer_names) + 3))
        for r in rows:
            lines.append(
                f"| {r['case']} | {r['cov']} | {fmt(r['gmm_s_per_iter'])} | {fmt(r['sklearn_s_per_iter'])} | "
                + " | ".join(fmt(r[f"{p}_s_per_iter"]) for p in peer_names)
                + f" | {r['speedup']} | " + " | ".join(r[f"{p}_over_gmm"] for p in peer_names) + " |")
        versions = sorted({f"{r['peer']}: {r['version']} ({r['note']})" for r in peer_rows})
        lines.append("")
        lines.append("Peers: " + "; ".join(versions))
    with open(a.md, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
