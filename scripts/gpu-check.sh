#!/usr/bin/env bash
# The GPU check: on a machine with a GPU, run the GPU-vs-CPU agreement
# tests (the dense and the iterative path) and the bench (the CPU backend on
# CPU_THREADS threads against the GPU, on the small and mid-size
# configurations and on the large ones the iterative path takes: bulk-1040,
# 32-128-32, 64-256-64), and print one compact table. Takes a few minutes
# with the small ones, up to about 20 with the large ones.
#
# Usage:
#   scripts/gpu-check.sh                       build with cargo, then run
#   MEMSWEEP=path/to/memsweep GPU_TESTS=path/to/gpu-test-binary \
#     scripts/gpu-check.sh                     run prebuilt binaries only
#
# The test binary is what `cargo test --release --test gpu --no-run` builds
# (target/release/deps/gpu-<hash>). Neither binary needs the source tree.
#
# Environment:
#   GPU_INSTANCES  instances of 2-4-2 and 8-16-8 on the GPU (10000)
#   GPU_MID        instances of 16-64-16 on the GPU (5000)
#   GPU_LARGE      instances of 8-16-8 in a second, larger GPU run (50000)
#   GPU_DEEP       instances of 8-[32,32,32]-8 on the GPU (5000; 0: not run)
#   GPU_BIG        instances of each large configuration on the GPU (10000;
#                  0: the large configurations are not run)
#   CPU_BIG_SCALE  multiplies the CPU's bench instance counts of the large
#                  configurations (1: 4 of bulk-1040, 2 of 32-128-32, 1 of
#                  64-256-64)
#   BIG_TIMEOUT    seconds for each bench run of a large configuration (600)
#   LARGE_SIZE     instances per large agreement configuration
#                  (MEMSWEEP_LARGE_INSTANCES; 300)
#   LARGE_ERAS     eras of the large whole-training agreement test
#                  (MEMSWEEP_LARGE_ERAS; 20, the default max_eras)
#   GROUP_WG_SWEEP workgroup sizes to time 8-16-8 with besides the default
#                  (wg in MEMSWEEP_GPU_PROFILE; "32 128"; empty: none)
#   REUSE_SWEEP    reuse values (MEMSWEEP_GPU_PROFILE) to time 8-16-8 with besides
#                  the default ("0": the greedy split, with the eliminated
#                  nodes' share recomputed every substep; empty: none)
#   CACHE_SWEEP    cache values (MEMSWEEP_GPU_PROFILE) to time 8-16-8 with besides
#                  the default ("0": every read's and normalize pulse's
#                  split computed anew; empty: none)
#   PIVOTS_SWEEP   Cholesky pivots per barrier to time 8-16-8 and 16-64-16
#                  with besides the default 2 (pivots in MEMSWEEP_GPU_PROFILE; "1";
#                  empty: none)
#   ERAS_SWEEP     whole eras per dispatch to time 8-16-8 and 16-64-16 with
#                  besides the default 4 (eras in MEMSWEEP_GPU_PROFILE; "1"; empty:
#                  none)
#   REPEAT_SWEEP   stages of the workgroup kernel to run twice, one at a
#                  time, timing 8-16-8 and 16-64-16 (repeat in MEMSWEEP_GPU_PROFILE:
#                  prepare, sums, solve; "prepare sums solve"; empty: none).
#                  The rows stay the same; the time added is the stage's
#   SCALING_SWEEP  instance counts to time 8-16-8 with, few enough that
#                  the multiprocessors are not full ("132 528 2112": 1, 4 and 16 per multiprocessor of
#                  an H100 or H200; empty: none). The time per era at 1
#                  per multiprocessor is one instance's latency; where the
#                  rate stops growing with the count, the GPU is full
#   CHECKS_SWEEP   runtime checks to time 8-16-8 and 16-64-16 with besides
#                  the default (checks in MEMSWEEP_GPU_PROFILE: all, none; empty: none)
#   CPU_THREADS    worker threads of the CPU backend (2: the baseline)
#   CPU_SCALE      multiplies the CPU's bench instance counts (4)
#   MID_SIZE       instances per mid-size agreement configuration (200)
#   BENCH_TIMEOUT  seconds for each bench run (90; configurations not done by
#                  then are missing from the table)
#   OUT            if set, logs and bench JSON are also written there
set -uo pipefail
cd "$(dirname "$0")/.."

GPU_INSTANCES=${GPU_INSTANCES:-10000}
GPU_MID=${GPU_MID:-5000}
GPU_LARGE=${GPU_LARGE:-50000}
GPU_DEEP=${GPU_DEEP:-5000}
GPU_BIG=${GPU_BIG:-10000}
CPU_BIG_SCALE=${CPU_BIG_SCALE:-1}
BIG_TIMEOUT=${BIG_TIMEOUT:-600}
LARGE_SIZE=${LARGE_SIZE:-300}
LARGE_ERAS=${LARGE_ERAS:-20}
GROUP_WG_SWEEP=${GROUP_WG_SWEEP-32 128}
PIVOTS_SWEEP=${PIVOTS_SWEEP-1}
REUSE_SWEEP=${REUSE_SWEEP-0}
CACHE_SWEEP=${CACHE_SWEEP-0}
ERAS_SWEEP=${ERAS_SWEEP-1}
CHECKS_SWEEP=${CHECKS_SWEEP:-}
SCALING_SWEEP=${SCALING_SWEEP-132 528 2112}
REPEAT_SWEEP=${REPEAT_SWEEP-prepare sums solve}
CPU_THREADS=${CPU_THREADS:-2}
CPU_SCALE=${CPU_SCALE:-4}
MID_SIZE=${MID_SIZE:-200}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-90}
LOG=${OUT:-$(mktemp -d)}
mkdir -p "$LOG"

if [[ -z "${MEMSWEEP:-}" || -z "${GPU_TESTS:-}" ]]; then
    if ! command -v cargo >/dev/null; then
        echo "gpu-check: no cargo here; set MEMSWEEP and GPU_TESTS to prebuilt binaries" >&2
        exit 2
    fi
    cargo build --release --quiet || exit 1
    MEMSWEEP=target/release/memsweep
    GPU_TESTS=$(cargo test --release --test gpu --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\/gpu-[0-9a-f]*\)".*/\1/p' | tail -1)
    [[ -x "$GPU_TESTS" ]] || { echo "gpu-check: could not build the GPU tests" >&2; exit 1; }
fi

MEMSWEEP=$(realpath "$MEMSWEEP")
export MEMSWEEP_BIN=$MEMSWEEP

# Without a Vulkan driver manifest in the usual places, look for NVIDIA's.
if [[ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]] &&
    ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
    icd=$(find /usr/local/nvidia /usr/share /etc -name 'nvidia_icd*.json' 2>/dev/null | head -1)
    [[ -n "$icd" ]] && export VK_DRIVER_FILES=$icd
fi

echo "== adapters"
"$MEMSWEEP" devices 2>/dev/null | tee "$LOG/devices.txt"

echo "== agreement with the CPU (tests/gpu.rs, mid-size included)"
start=$SECONDS
MEMSWEEP_MID_SIZE_INSTANCES=$MID_SIZE MEMSWEEP_LARGE_INSTANCES=$LARGE_SIZE \
    MEMSWEEP_LARGE_ERAS=$LARGE_ERAS timeout 900 "$GPU_TESTS" --include-ignored --nocapture \
    >"$LOG/tests.txt" 2>&1
tests_status=$?
grep -E "running on|identical|worst deviation|^test |test result|panicked" "$LOG/tests.txt" | awk '!seen[$0]++'
echo "(tests: exit $tests_status, $((SECONDS - start)) s)"

echo "== bench: CPU on $CPU_THREADS threads; GPU on $GPU_INSTANCES instances per configuration"
start=$SECONDS
bench_status=0
runs=()
# bench LABEL ARGS...: one `memsweep bench` run, its rows labelled LABEL,
# within BENCH_TIMEOUT seconds (or TIMEOUT, if set).
bench() {
    local label=$1
    shift
    runs+=("$label")
    timeout "${TIMEOUT:-$BENCH_TIMEOUT}" "$MEMSWEEP" bench --json "$@" >>"$LOG/bench-$label.jsonl" \
        2>>"$LOG/bench-$label.err" || { bench_status=1; echo "bench $label: failed or timed out"; }
}
rm -f "$LOG"/bench-*.jsonl "$LOG"/bench-*.err
bench cpu --backend cpu --threads "$CPU_THREADS" --scale "$CPU_SCALE" \
    --config 2-4-2 --config 8-16-8 --config 16-64-16 --config '8-[32,32,32]-8'
bench group --backend gpu --gpu-instances "$GPU_INSTANCES" \
    --config 2-4-2 --config 8-16-8
bench group --backend gpu --gpu-instances "$GPU_MID" --config 16-64-16
MEMSWEEP_GPU_PROFILE=timing bench group-large --backend gpu \
    --gpu-instances "$GPU_LARGE" --config 8-16-8
for wg in $GROUP_WG_SWEEP; do
    MEMSWEEP_GPU_PROFILE=wg=$wg bench "group-wg$wg" --backend gpu \
        --gpu-instances "$GPU_INSTANCES" --config 8-16-8
done
for u in $REUSE_SWEEP; do
    MEMSWEEP_GPU_PROFILE=reuse=$u bench "group-u$u" --backend gpu \
        --gpu-instances "$GPU_INSTANCES" --config 8-16-8
done
for c in $CACHE_SWEEP; do
    MEMSWEEP_GPU_PROFILE=cache=$c bench "group-c$c" --backend gpu \
        --gpu-instances "$GPU_INSTANCES" --config 8-16-8
done
# sweep KNOB LABEL VALUES...: 8-16-8 and 16-64-16 with the item KNOB of
# MEMSWEEP_GPU_PROFILE at each value, labelled LABEL<value>.
sweep() {
    local knob=$1 label=$2 value
    shift 2
    for value in "$@"; do
        export MEMSWEEP_GPU_PROFILE="$knob=$value"
        bench "$label$value" --backend gpu \
            --gpu-instances "$GPU_INSTANCES" --config 8-16-8
        bench "$label$value" --backend gpu \
            --gpu-instances "$GPU_MID" --config 16-64-16
        unset MEMSWEEP_GPU_PROFILE
    done
}
# shellcheck disable=SC2086 # the sweeps are word lists
{
    sweep pivots group-p $PIVOTS_SWEEP
    sweep eras group-e $ERAS_SWEEP
    sweep checks group- $CHECKS_SWEEP
    sweep repeat group-r $REPEAT_SWEEP
}
for n in $SCALING_SWEEP; do
    MEMSWEEP_GPU_PROFILE=timing bench "group-n$n" --backend gpu \
        --gpu-instances "$n" --config 8-16-8
done
if [[ $GPU_DEEP -gt 0 ]]; then
    bench group --backend gpu --gpu-instances "$GPU_DEEP" \
        --config '8-[32,32,32]-8'
fi
# The large configurations, on the iterative path: one CPU run and one GPU
# run each, so that a slow one does not starve the others.
if [[ $GPU_BIG -gt 0 ]]; then
    for config in bulk-1040 32-128-32 64-256-64; do
        TIMEOUT=$BIG_TIMEOUT bench cpu --backend cpu --threads "$CPU_THREADS" \
            --scale "$CPU_BIG_SCALE" --config "$config"
        TIMEOUT=$BIG_TIMEOUT MEMSWEEP_GPU_PROFILE=timing bench big --backend gpu \
            --gpu-instances "$GPU_BIG" --config "$config"
    done
fi
cat "$LOG"/bench-*.err | grep -v "XDG_RUNTIME_DIR" | grep -E "skipped|error|panicked" | sort -u | head -8
grep -h "gpu: " "$LOG/bench-group-large.err" | tail -6
[[ -f "$LOG/bench-big.err" ]] && grep -h "s per era" "$LOG/bench-big.err" | head -6
for n in $SCALING_SWEEP; do
    grep -h "s per era" "$LOG/bench-group-n$n.err" | head -3
done
echo "(bench: exit $bench_status, $((SECONDS - start)) s)"

echo "== table"
python3 - "$LOG" "${runs[@]}" <<'EOF'
import json, sys
log, labels = sys.argv[1], sys.argv[2:]
rows = []
for label in dict.fromkeys(labels):
    for line in open(f"{log}/bench-{label}.jsonl"):
        r = json.loads(line) if line.startswith("{") else {}
        if "backend" in r:
            r["label"] = label if r["backend"] != "cpu" else "cpu"
            rows.append(r)
cpu = {r["config"]: r for r in rows if r["backend"] == "cpu"}
print(f"{'config':<16} {'run':>14} {'instances':>9} {'s':>8} {'build s':>7} {'pipes s':>7} {'inst/s':>10} "
      f"{'updates/s':>10} {'recalled/P':>10} {'Pr[all]':>7} {'x cpu':>7}")
for r in rows:
    c = cpu.get(r["config"])
    x = f"{r['instances_per_s'] / c['instances_per_s']:.1f}" if c and r["backend"] != "cpu" else ""
    print(f"{r['config']:<16} {r['label']:>14} {r['instances']:>9} {r['seconds']:>8.2f} "
          f"{r.get('build_seconds', 0):>7.2f} {r.get('compile_seconds', 0):>7.2f} "
          f"{r['instances_per_s']:>10.1f} {r['updates_per_s']:>10.3e} "
          f"{r['mean_recalled_frac']:>10.3f} {r['p_learned_all']:>7.3f} {x:>7}")
EOF

[[ $tests_status -eq 0 && $bench_status -eq 0 ]]
