#!/usr/bin/env bash
# run_cpu_bench.sh — the CPU benchmark end to end: builds bench_cpu (Release) if needed, times gmm_fit on
# deterministic synthetic cases (bench_cpu), times scikit-learn's GaussianMixture on the same files with
# the same initial model, iteration count and threads (bench_sklearn.py; skipped with a note when it cannot
# be imported), then the other CPU trainers that are installed (bench_peers.py: VLFeat, R mclust, mlpack),
# case by case, and joins all into OUTDIR/cpu_bench.csv and OUTDIR/cpu_bench.md. Also kept in OUTDIR:
# gmm_cpu.csv, sklearn_cpu.csv, peers_cpu.csv (each tool's own columns), work/ (initial and fitted models).
#
# Usage: bench/run_cpu_bench.sh [OUTDIR]        (default OUTDIR: build-bench/cpu_bench)
# Environment (all optional):
#   GMM_BENCH_BUILD      build folder (default build-bench)
#   GMM_BENCH_CASES      bench_cpu case specs (default below); DxK:N1,N2@R,... or DxK+TYPE:N1,... for
#                        covariance TYPE (full, tied, diag, spherical; default full)
#   GMM_BENCH_INIT_MEANS bench_cpu --init-means: random (default) or clusters
#   GMM_BENCH_WAIT       OMP_WAIT_POLICY for every tool (default passive: on a shared, oversubscribed machine
#                        OpenMP's spinning threads take the cores from the working ones)
#   GMM_BENCH_PEERS      peers for bench_peers.py (default vlfeat,mclust,mlpack; empty: none)
#   GMM_BENCH_PEER_ITERS R of the peers' long runs (default: the case's R)
#   GMM_BENCH_PEER_REPEATS  runs of each length per peer and case (default 2; the fastest counts)
#   GMM_BENCH_MAX_N      skip cases with more points (default 1e7)
#   GMM_BENCH_ITERS      EM iterations per fit where a case does not say (default 10)
#   GMM_BENCH_THREADS    threads for gmm and for sklearn's BLAS/OpenMP (default: nproc)
#   GMM_BENCH_REPEATS    fits per case, gmm and sklearn (default 3; sklearn stops repeating a case after 30 s)
#   GMM_BENCH_KEEP_DATA  1 keeps the .npy files in OUTDIR/work (default: removed at the end)
# The largest default case (1e7 points, d = 2) runs 6 iterations. bench/RESULTS.md says how long a run took.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/build-bench/cpu_bench}
BUILD=${GMM_BENCH_BUILD:-$ROOT/build-bench}
# 2x4:1e6@40 is the 1e6 case run on to convergence: late iterations cost gmm more (see bench/RESULTS.md).
CASES=${GMM_BENCH_CASES:-"2x4:5000,100000,1000000,10000000@6,1000000@40 16x16:100000,1000000"}
MAX_N=${GMM_BENCH_MAX_N:-1e7}
ITERS=${GMM_BENCH_ITERS:-10}
THREADS=${GMM_BENCH_THREADS:-$(nproc)}
REPEATS=${GMM_BENCH_REPEATS:-3}
PEERS=${GMM_BENCH_PEERS-vlfeat,mclust,mlpack}
INIT_MEANS=${GMM_BENCH_INIT_MEANS:-random}
WAIT=${GMM_BENCH_WAIT:-passive}
PEER_ITERS=${GMM_BENCH_PEER_ITERS:-0}
PEER_REPEATS=${GMM_BENCH_PEER_REPEATS:-2}
PY=${PYTHON:-python3}
start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2> /dev/null || echo "?")

mkdir -p "$OUT/work"
OUT=$(cd "$OUT" && pwd)

# ------------------------------------------------------------------------------------------------ build
build_type=""
if [ -f "$BUILD/CMakeCache.txt" ]; then
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
fi
if [ ! -f "$BUILD/CMakeCache.txt" ] || [ "$build_type" != "Release" ]; then
    gen=()
    if [ ! -f "$BUILD/CMakeCache.txt" ] && command -v ninja > /dev/null; then gen=(-G Ninja); fi
    echo "== configuring $BUILD (Release)"
    cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release > "$OUT/cmake.log" \
        || { cat "$OUT/cmake.log"; exit 1; }
fi
echo "== building bench_cpu"
cmake --build "$BUILD" --target bench_cpu > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }

# VLFeat's EM through bench/peer_vlfeat.c, where its headers are installed (Debian libvlfeat-dev)
vlfeat_bin=""
if [ -n "$PEERS" ] && [ -f /usr/include/vl/gmm.h ] && command -v cc > /dev/null; then
    if cc -O2 -o "$OUT/peer_vlfeat" "$ROOT/bench/peer_vlfeat.c" -lvl 2> "$OUT/peer_vlfeat.log"; then
        vlfeat_bin="$OUT/peer_vlfeat"
    else
        echo "== VLFeat: peer_vlfeat did not build (see $OUT/peer_vlfeat.log)"
    fi
fi

# ------------------------------------------------------------------------------------- gmm and sklearn
# Case by case, gmm then sklearn on the same files, so that both see the same load on a shared machine.
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this workplace's machines for old OpenBLAS builds; they
# slow a current numpy and gmm's own OpenBLAS products (full and tied from d = 64), so they are unset for
# every tool's command. bench_sklearn.py reports the kernel that then runs (threadpoolctl).
sk_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS"
        MKL_NUM_THREADS="$THREADS" OMP_WAIT_POLICY="$WAIT")
gmm_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY="$WAIT")
run_sklearn=1
if ! command -v "$PY" > /dev/null; then
    echo "== sklearn: skipped ($PY not found)"
    run_sklearn=0
elif ! "${sk_env[@]}" "$PY" -c 'import numpy, sklearn, threadpoolctl' 2> /dev/null; then
    echo "== sklearn: skipped (numpy, scikit-learn or threadpoolctl is not importable by $PY)"
    run_sklearn=0
fi
rm -f "$OUT/gmm_cpu.csv" "$OUT/sklearn_cpu.csv" "$OUT/peers_cpu.csv" "$OUT"/work/case_*.csv
i=0
for spec in $CASES; do
    dk=${spec%%:*}
    cov=full
    if [[ $dk == *+* ]]; then cov=${dk#*+}; dk=${dk%%+*}; fi
    IFS=',' read -r -a ns <<< "${spec#*:}"
    for n in "${ns[@]}"; do
        if awk -v n="${n%@*}" -v m="$MAX_N" 'BEGIN { exit !(n + 0 > m + 0) }'; then
            echo "== case $dk:$n — skipped (more than GMM_BENCH_MAX_N = $MAX_N points)"
            continue
        fi
        i=$((i + 1))
        one="$OUT/work/case_${i}"
        echo "== case $dk:$n $cov — gmm (bench_cpu, $THREADS threads)"
        "${gmm_env[@]}" "$BUILD/bench_cpu" --cases "$dk:$n" --covariance "$cov" --init-means "$INIT_MEANS" --max-n "$MAX_N" --iters "$ITERS" \
            --threads "$THREADS" --repeats "$REPEATS" --work "$OUT/work" --csv "$one.gmm.csv" \
            || { echo "bench_cpu failed"; exit 1; }
        if [ -f "$OUT/gmm_cpu.csv" ]; then tail -n +2 "$one.gmm.csv" >> "$OUT/gmm_cpu.csv"
        else cp "$one.gmm.csv" "$OUT/gmm_cpu.csv"; fi
        if [ "$run_sklearn" = 1 ]; then
            echo "== case $dk:$n — sklearn (bench_sklearn.py, $THREADS threads)"
            if "${sk_env[@]}" "$PY" "$ROOT/bench/bench_sklearn.py" --gmm-csv "$one.gmm.csv" --csv "$one.sk.csv" \
                --threads "$THREADS" --repeats "$REPEATS"; then
                if [ -f "$OUT/sklearn_cpu.csv" ]; then tail -n +2 "$one.sk.csv" >> "$OUT/sklearn_cpu.csv"
                else cp "$one.sk.csv" "$OUT/sklearn_cpu.csv"; fi
            else
                echo "== sklearn failed on this case (status $?); its row will read n/a"
            fi
        fi
        if [ -n "$PEERS" ] && command -v "$PY" > /dev/null; then
            echo "== case $dk:$n $cov — peers (bench_peers.py: $PEERS)"
            if "${sk_env[@]}" "$PY" "$ROOT/bench/bench_peers.py" --gmm-csv "$one.gmm.csv" --csv "$one.peers.csv" \
                --threads "$THREADS" --iters "$PEER_ITERS" --repeats "$PEER_REPEATS" --peers "$PEERS" \
                --vlfeat-bin "$vlfeat_bin"; then
                :
            else
                echo "== a peer failed on this case (status $?); its row is missing"
            fi
            if [ -f "$one.peers.csv" ]; then
                if [ -f "$OUT/peers_cpu.csv" ]; then tail -n +2 "$one.peers.csv" >> "$OUT/peers_cpu.csv"
                else cp "$one.peers.csv" "$OUT/peers_cpu.csv"; fi
            fi
        fi
    done
done
[ -f "$OUT/gmm_cpu.csv" ] || { echo "no case ran (check GMM_BENCH_CASES / GMM_BENCH_MAX_N)"; exit 1; }

# ------------------------------------------------------------------------------------------------ join
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2> /dev/null | head -1)
cores=$(grep -c '^processor' /proc/cpuinfo 2> /dev/null || echo "?")
header=(--header="# CPU benchmark: gmm vs scikit-learn and other CPU trainers"
        --header=""
        --header="- machine: ${cpu:-unknown CPU}, $cores logical CPUs, nproc $(nproc); threads used: $THREADS"
        --header="- date: $(date -u); load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg 2> /dev/null || echo "?") (this run's own load is about $THREADS; more means other work shared the cores)"
        --header="- command: bench/run_cpu_bench.sh $*  (cases: $CASES; default R: $ITERS; repeats: $REPEATS; init means: $INIT_MEANS; OMP_WAIT_POLICY=$WAIT for every tool; peers: ${PEERS:-none}, their R: $PEER_ITERS (0: the case R), repeats: $PEER_REPEATS)")
if command -v "$PY" > /dev/null; then
    "$PY" "$ROOT/bench/join_cpu_bench.py" --gmm-csv "$OUT/gmm_cpu.csv" --sk-csv "$OUT/sklearn_cpu.csv" \
        --peers-csv "$OUT/peers_cpu.csv" \
        --csv "$OUT/cpu_bench.csv" --md "$OUT/cpu_bench.md" "${header[@]}"
else
    cp "$OUT/gmm_cpu.csv" "$OUT/cpu_bench.csv"
    { printf '%s\n' "# CPU benchmark (gmm only: no $PY to join sklearn's results)" ""; cat "$OUT/gmm_cpu.csv"; } \
        > "$OUT/cpu_bench.md"
fi

if [ "${GMM_BENCH_KEEP_DATA:-0}" != 1 ]; then rm -f "$OUT"/work/*.npy; fi
echo "== wrote $OUT/cpu_bench.csv and $OUT/cpu_bench.md in $(( $(date +%s) - start )) s"
