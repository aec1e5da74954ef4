#!/usr/bin/env bash
# gpu-check.sh — every GPU check of gmm in one run, for a machine with an NVIDIA GPU and the CUDA toolkit:
# builds Release for the card, runs the whole ctest suite (test_cuda verbosely), the GPU benchmark (with the
# CPU reference and scikit-learn on the same data up to N = 1e6, and the whole fit of the assignment's data
# data/TrainingData_GMM.csv, k = 4, on the GPU and the CPU), and compute-sanitizer: memcheck (with leak
# check) on test_cuda at reduced sizes, and racecheck, synccheck and initcheck on every kernel instance
# (test_cuda's `instances` part: every padded D in {1, 2, 3, 4, 6, 8, 12, 16, 24, 32} for float and double,
# the tile stats, predict and initialization kernels, every register-path (D, K)), once per tile block size
# (64, 128, 256 threads). Then, with the time left, the tile kernel at each block size in the benchmark,
# Nsight Compute on one stats launch per path and its stall reasons. Writes the logs into OUTDIR. A failing
# step never stops the run: each step's exit status and seconds go to OUTDIR/summary.txt (a step cut short by
# the time budget shows rc=124, one never started rc=skip). Budget: 540 s in all (GMM_GPUCHECK_BUDGET).
#
# Usage: bench/gpu-check.sh OUTDIR
#        bench/gpu-check.sh --fetch-deps    (on a machine with apt and network) downloads the .deb files of cJSON
#                                           and pkg-config into .gpucheck-deps/, for machines that lack them and
#                                           cannot fetch anything (the lent GPU machines): the folder travels with
#                                           the working tree, and a run there unpacks it (dpkg -x) into itself.
# Environment (all optional):
#   GMM_CUDA_ARCH         CMAKE_CUDA_ARCHITECTURES (default 90: H100 / H200)
#   GMM_GPUCHECK_BUILD    build folder (default <repo>/build-gpucheck)
#   GMM_GPUCHECK_DEPS     folder of carried .deb files (default <repo>/.gpucheck-deps)
#   GMM_GPUCHECK_BUDGET   seconds for the whole run (default 540); later steps get what is left
#   GMM_GPUCHECK_ONLY     the steps to run, by name, separated by spaces (default: all of them): configure,
#                         build, resources, ctest, test_cuda, bench_gpu, memcheck, racecheck, synccheck,
#                         initcheck, tile_threads, ncu, stalls (for a short diagnostic run; a name
#                         also selects the steps named NAME_..., e.g. racecheck the three racecheck_BT)
#   GMM_BENCH_ARGS        further arguments for bench_gpu, after --csv, --fit-csv data/TrainingData_GMM.csv,
#                         --fit-k 4 and --sklearn-script bench/bench_sklearn.py (later ones win); default:
#                         --cpu-max-n 1e6 --sklearn-max-n 1e6 --sklearn-iters 5 --sklearn-budget 60
#                         (scikit-learn runs when python3 imports numpy, scikit-learn and threadpoolctl; its
#                         figures, and the whole fit's, go into bench_gpu.csv and bench_gpu.log)
# OUTDIR gets exactly 8 files (the most a device run hands back): device.txt, summary.txt, build.log,
# ctest.log, memcheck.log, racecheck.log, bench_gpu.csv, bench_gpu.log. bench_gpu's scratch files for
# scikit-learn go to a temporary folder that it removes. Plot the CSV afterwards, where gnuplot is:
# bench/plot_gpu.sh OUTDIR/bench_gpu.csv gpu.png.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS=${GMM_GPUCHECK_DEPS:-$ROOT/.gpucheck-deps}

if [ "${1:-}" = "--fetch-deps" ]; then
    mkdir -p "$DEPS" && cd "$DEPS" || exit 1
    apt-get download libcjson1 libcjson-dev pkgconf pkgconf-bin libpkgconf3 || exit 1
    ls -l "$DEPS"
    exit 0
fi
if [ $# -ne 1 ]; then
    sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
fi

mkdir -p "$1" || exit 1
OUT=$(cd "$1" && pwd)
BUILD=${GMM_GPUCHECK_BUILD:-$ROOT/build-gpucheck}
ARCH=${GMM_CUDA_ARCH:-90}
BUDGET=${GMM_GPUCHECK_BUDGET:-540}
BENCH_ARGS=${GMM_BENCH_ARGS:---cpu-max-n 1e6 --sklearn-max-n 1e6 --sklearn-iters 5 --sklearn-budget 60}
JOBS=$(nproc 2>/dev/null || echo 4)
START=$(date +%s)
: > "$OUT/summary.txt"
for f in build.log ctest.log memcheck.log racecheck.log bench_gpu.log; do : > "$OUT/$f"; done

# step NAME LOG MAX_SECONDS CMD...: runs CMD with its output appended to LOG, at most MAX_SECONDS and never
# past the budget; records "NAME rc=.. seconds" in summary.txt and returns CMD's status.
step() {
    local name=$1 log=$2 max=$3
    shift 3
    if [ -n "${GMM_GPUCHECK_ONLY:-}" ]; then
        local w chosen=0
        for w in $GMM_GPUCHECK_ONLY; do [[ $name == "$w" || $name == "$w"_* ]] && chosen=1; done
        [ $chosen = 1 ] || return 0
    fi
    local left=$((START + BUDGET - $(date +%s)))
    [ "$max" -gt "$left" ] && max=$left
    if [ "$max" -lt 5 ]; then
        printf '%-16s rc=skip (no time left in the %ss budget)\n' "$name" "$BUDGET" >> "$OUT/summary.txt"
        return 124
    fi
    local t0
    t0=$(date +%s)
    echo "== $name: $* (at most ${max}s)" >> "$log"
    timeout --kill-after=10 "$max" "$@" >> "$log" 2>&1
    local rc=$?
    printf '%-16s rc=%-4s %4ss  %s\n' "$name" "$rc" "$(($(date +%s) - t0))" "$(basename "$log")" >> "$OUT/summary.txt"
    echo "== $name: exit status $rc" >> "$log"
    return $rc
}

# --------------------------------------------------------------------------------------------- device
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: $(uname -srm), $(nproc) CPUs"
    nvidia-smi -L 2>&1
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1
    nvcc --version 2>&1 | tail -2
    cc --version 2>&1 | head -1
    cmake --version 2>&1 | head -1
    echo "CMAKE_CUDA_ARCHITECTURES=$ARCH"
    changed=$(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l)
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) ($changed paths changed or untracked)"
} > "$OUT/device.txt" 2>&1
nvidia-smi -L > /dev/null 2>&1
printf '%-16s rc=%-4s %4ss  %s\n' device "$?" 0 device.txt >> "$OUT/summary.txt"

# ----------------------------------------------------------------------------------------------- deps
# cJSON through pkg-config is required by the build; without them, unpack the carried .deb files.
deps() {
    if command -v pkg-config > /dev/null && pkg-config --exists libcjson; then
        echo "cJSON: $(pkg-config --modversion libcjson) (system)"
        return 0
    fi
    local debs=("$DEPS"/*.deb)
    if [ ! -e "${debs[0]}" ]; then
        echo "cJSON or pkg-config is missing and $DEPS holds no .deb files: run bench/gpu-check.sh --fetch-deps"
        echo "on a machine with apt first (the folder then travels with the working tree)"
        return 1
    fi
    local root=$DEPS/root
    for f in "${debs[@]}"; do dpkg -x "$f" "$root" || return 1; done
    local lib=$root/usr/lib/x86_64-linux-gnu
    export PATH=$root/usr/bin:$PATH
    export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export PKG_CONFIG_PATH=$lib/pkgconfig:$root/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    export PKG_CONFIG_SYSROOT_DIR=$root
    echo "cJSON: $(pkg-config --modversion libcjson) (unpacked from $DEPS)"
    pkg-config --cflags --libs libcjson
}
echo "== deps" >> "$OUT/build.log"
deps >> "$OUT/build.log" 2>&1
printf '%-16s rc=%-4s %4ss  %s\n' deps "$?" 0 build.log >> "$OUT/summary.txt"

# ---------------------------------------------------------------------------------------------- build
gen=()
command -v ninja > /dev/null && [ ! -f "$BUILD/CMakeCache.txt" ] && gen=(-G Ninja)
step configure "$OUT/build.log" 120 cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DGMM_CUDA=ON -DGMM_WERROR=OFF
step build "$OUT/build.log" 300 cmake --build "$BUILD" --parallel "$JOBS"
if command -v cuobjdump > /dev/null && [ -f "$BUILD/libgmmkernels.a" ]; then
    # registers, stack (spills) and shared memory of every kernel, as the card's toolchain built them
    step resources "$OUT/build.log" 30 cuobjdump -res-usage "$BUILD/libgmmkernels.a"
fi

# ---------------------------------------------------------------------------------------------- tests
step ctest "$OUT/ctest.log" 300 ctest --test-dir "$BUILD" --output-on-failure --parallel 4 -E '^test_cuda$'
step test_cuda "$OUT/ctest.log" 300 ctest --test-dir "$BUILD" -V -R '^test_cuda$'

# ---------------------------------------------------------------------------------------------- bench
# At most 60 s of it for scikit-learn (--sklearn-budget: no sklearn case starts after that).
# shellcheck disable=SC2086
step bench_gpu "$OUT/bench_gpu.log" 240 "$BUILD/bench_gpu" --csv "$OUT/bench_gpu.csv" \
    --fit-csv "$ROOT/data/TrainingData_GMM.csv" --fit-k 4 --sklearn-script "$ROOT/bench/bench_sklearn.py" $BENCH_ARGS
[ -f "$OUT/bench_gpu.csv" ] || echo "bench_gpu wrote no CSV; see bench_gpu.log" > "$OUT/bench_gpu.csv"

# ------------------------------------------------------------------------------------------ sanitizers
# memcheck on the whole of test_cuda at reduced sizes (GMM_TEST_CUDA_QUICK=1). racecheck, synccheck and
# initcheck on every kernel instance: test_cuda's `instances` part alone, once per tile block size forced by
# GMM_CUDA_TILE_THREADS (a shape too large for a forced size is refused by the plan and named in the log);
# the register kernel's cases, which launch no tile kernel, only in the first (64-thread) run.
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$SAN" ]; then
    GMM_TEST_CUDA_QUICK=1 step memcheck "$OUT/memcheck.log" 180 \
        "$SAN" --tool memcheck --leak-check full --error-exitcode 1 "$BUILD/test_cuda"
    # tool, log, at most seconds per block size, further arguments
    for spec in "racecheck racecheck.log 120 --racecheck-report all" "synccheck racecheck.log 60" \
                "initcheck racecheck.log 60"; do
        read -r tool log max extra <<< "$spec"
        for bt in 64 128 256; do
            which=tile
            [ "$bt" = 64 ] && which=all
            # shellcheck disable=SC2086
            GMM_TEST_CUDA_ONLY=instances GMM_TEST_CUDA_INSTANCES=$which GMM_CUDA_TILE_THREADS=$bt \
                step "${tool}_$bt" "$OUT/$log" "$max" "$SAN" --tool "$tool" $extra --error-exitcode 1 "$BUILD/test_cuda"
        done
    done
else
    echo "compute-sanitizer not found" | tee -a "$OUT/memcheck.log" >> "$OUT/racecheck.log"
    printf '%-16s rc=%-4s\n' compute-sanitizer 127 >> "$OUT/summary.txt"
fi

# ------------------------------------------------------------------------------------------ diagnosis
# Only with time left (lowest priority): the tile kernel's block size chosen by the plan against the others
# (GMM_CUDA_TILE_THREADS forces one), and Nsight Compute's view of one stats kernel launch per path (speed of
# light, occupancy, launch statistics): the measured reason behind a missed target. Into bench_gpu.log.
for tt in 64 128 256; do
    GMM_CUDA_TILE_THREADS=$tt step "tile_threads_$tt" "$OUT/bench_gpu.log" 40 "$BUILD/bench_gpu" \
        --cases 16x16:1e7 8x8:1e7 32x8:1e6 --repeats 10 --warmup 2 --sklearn-max-n 0
done
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
if [ -x "$NCU" ]; then
    for c in 16x16:1e6 2x4:1e7; do
        step "ncu_$c" "$OUT/bench_gpu.log" 60 "$NCU" --kernel-name regex:stats_ --launch-skip 3 --launch-count 1 \
            --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
            "$BUILD/bench_gpu" --cases "$c" --repeats 3 --warmup 1 --sklearn-max-n 0
    done
fi

# Why the stats kernels stall: warp states, the scheduler, the instruction mix and the pipes, for one launch
# of each path (the register kernel at N = 1e7 and the tile kernel at d = 16, K = 16, N = 1e6).
if [ -x "$NCU" ]; then
    for c in 2x4:1e7 16x16:1e6; do
        step "stalls_$c" "$OUT/bench_gpu.log" 90 "$NCU" --kernel-name regex:stats_ --launch-skip 3 --launch-count 1 \
            --section WarpStateStats --section SchedulerStats --section InstructionStats \
            --section ComputeWorkloadAnalysis --section SourceCounters \
            "$BUILD/bench_gpu" --cases "$c" --repeats 3 --warmup 1 --sklearn-max-n 0
    done
fi

echo "total            $(($(date +%s) - START))s" >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
grep -E '^ *(d|[0-9]+) |^  (backend|cuda|cpu) ' "$OUT/bench_gpu.log" 2>/dev/null | head -30
grep -E 'checks, [0-9]+ failed|tests passed|log-likelihood GPU' "$OUT/ctest.log" 2>/dev/null
exit 0
