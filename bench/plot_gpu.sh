#!/usr/bin/env bash
# plot_gpu.sh — the log-log plot of a bench_gpu CSV: seconds per EM iteration against N, one line per (path, d,
# K) — GPU (CUDA events, stats + M-step), CPU reference, scikit-learn, where the CSV has them — and the floor
# of the same run (bytes of X per iteration / device-to-device copy bandwidth) as a dashed line per d. The
# issue's targets are drawn as open triangles, and the whole fits (rows of kind "fit") are written under the
# plot. Needs gnuplot with the pngcairo terminal (as `gmm plot` does) and awk; the GPU machine may lack
# gnuplot, so run it afterwards on the CSV that bench/gpu-check.sh brought back.
#
# Usage: bench/plot_gpu.sh CSV PNG
set -euo pipefail

if [ $# -ne 2 ]; then
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
fi
csv=$1
png=$2
[ -r "$csv" ] || { echo "plot_gpu.sh: cannot read $csv" >&2; exit 1; }
command -v gnuplot > /dev/null || { echo "plot_gpu.sh: gnuplot is not installed" >&2; exit 1; }

# The CSV's columns are found by name; quoted fields (device, kernel) may hold commas.
script=$(awk -v png="$png" '
function splitcsv(line, f,    n, i, c, inq, cur) {
    n = 0; cur = ""; inq = 0
    for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (inq) {
            if (c == "\"") {
                if (substr(line, i + 1, 1) == "\"") { cur = cur "\""; i++ } else inq = 0
            } else cur = cur c
        } else if (c == "\"") inq = 1
        else if (c == ",") { f[++n] = cur; cur = "" }
        else cur = cur c
    }
    f[++n] = cur
    return n
}
function gpq(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
function add(key, title, color, pt, dash, n, v) {
    if (v == "" || v + 0 <= 0) return
    if (!(key in npts)) { order[++nseries] = key; stitle[key] = title; scolor[key] = color; spt[key] = pt; sdash[key] = dash }
    pts[key, ++npts[key]] = n " " v
}
NR == 1 { sub(/\r$/, ""); nh = splitcsv($0, h); for (i = 1; i <= nh; i++) col[h[i]] = i; next }
{
    sub(/\r$/, "")
    splitcsv($0, f)
    if (!("kind" in col)) { print "plot_gpu.sh: no kind column: not a bench_gpu CSV" > "/dev/stderr"; exit 1 }
    if (device == "") device = f[col["device"]]
    d = f[col["d"]]; k = f[col["k"]]; n = f[col["n"]]
    if (f[col["kind"]] == "fit") {
        fits = fits (fits == "" ? "" : ";  ") f[col["fit_backend"]] " " sprintf("%.3f", f[col["fit_s_median"]] * 1e3) " ms (" f[col["fit_n_iter"]] " iterations)"
        fitdesc = "whole gmm_fit, n = " n ", d = " d ", k = " k " (median wall clock, context created): "
        next
    }
    dk = d "x" k
    if (!(dk in pt)) pt[dk] = substr("759461312", ++ndk, 1) + 0
    add("gpu " dk, "GPU d=" d " K=" k, "#1f77b4", pt[dk], 1, n, f[col["t_iter_median_s"]])
    add("cpu " dk, "CPU reference d=" d " K=" k, "#ff7f0e", pt[dk], 1, n, f[col["t_cpu_iter_s"]])
    add("sk " dk, "scikit-learn d=" d " K=" k, "#2ca02c", pt[dk], 1, n, f[col["sk_iter_s"]])
    if (!(("floor " d) in npts)) fpt[d] = pt[dk]
    add("floor " d, "floor (read X once) d=" d, "#7f7f7f", fpt[d], 2, n, f[col["floor_s"]])
}
END {
    if (nseries == 0) { print "plot_gpu.sh: no rows of kind iter with times" > "/dev/stderr"; exit 1 }
    print "set terminal pngcairo size 1000,720 font \"sans,11\" noenhanced"
    print "set output " gpq(png)
    print "set title " gpq("gmm EM: seconds per iteration vs N  (" device ")")
    print "set logscale xy"
    print "set format x \"1e%L\"; set format y \"1e%L\""
    print "set xlabel \"N (points)\"; set ylabel \"seconds per EM iteration (median)\""
    print "set grid xtics ytics mxtics mytics lc rgb \"#dddddd\""
    print "set key outside right top box opaque"
    print "set bmargin 6"
    print "set offsets graph 0.04, graph 0.04, 0, 0"
    if (fits != "") print "set label 1 " gpq(fitdesc fits) " at screen 0.02, screen 0.03 left font \"sans,10\""
    # the issue targets: (N, d, K) -> seconds
    print "$targets << EOD"
    print "1e8 3e-4 2x4"; print "1e7 3e-3 16x16"; print "1e6 5e-5 2x4"
    print "EOD"
    for (s = 1; s <= nseries; s++) {
        key = order[s]
        print "$s" s " << EOD"
        for (i = 1; i <= npts[key]; i++) print pts[key, i]
        print "EOD"
    }
    cmd = "plot "
    for (s = 1; s <= nseries; s++) {
        key = order[s]
        cmd = cmd "$s" s " using 1:2 with linespoints lw 2 dt " sdash[key] " pt " spt[key] " ps 1.2 lc rgb \"" scolor[key] "\" title " gpq(stitle[key]) ", "
    }
    cmd = cmd "$targets using 1:2 with points pt 8 ps 2 lc rgb \"#d62728\" title \"targets of the issue (d x K)\", $targets using 1:2:3 with labels offset 0,-1.3 tc rgb \"#d62728\" notitle"
    print cmd
}' "$csv")
printf '%s\n' "$script" | gnuplot
echo "plot_gpu.sh: wrote $png"
