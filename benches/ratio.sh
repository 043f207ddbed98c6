#!/usr/bin/env bash
# Per-instance speed of memsweep's CPU backend against the batched NumPy
# baseline (benches/numpy_baseline.py), on the same cores, for one network.
# Usage: benches/ratio.sh [N_IN HIDDEN N_OUT [NUMPY_INSTANCES MEMSWEEP_SCALE]]
# Needs numpy (pip install numpy) and a release build (cargo build --release).
# The defaults time 64 NumPy instances (its best batch size for 8-16-8; 1,024
# run slower) and memsweep bench at --scale 4 (1,600 8-16-8 instances, about
# a second, which evens out the run-to-run noise of a short run).
set -euo pipefail
cd "$(dirname "$0")/.."
n_in=${1:-8} hidden=${2:-16} n_out=${3:-8} np_instances=${4:-64} scale=${5:-4}
# Current numpy is slowed by the OpenBLAS core-type override some machines set.
numpy=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
  python3 benches/numpy_baseline.py --n-in "$n_in" --hidden $hidden --n-out "$n_out" \
  --instances "$np_instances" --json)
config="$n_in-$hidden-$n_out"
ours=$(./target/release/memsweep bench --json --scale "$scale" --backend cpu | grep "\"config\":\"$config\"" || true)
if [ -z "$ours" ]; then
  echo "memsweep bench has no configuration $config" >&2
  exit 2
fi
python3 - "$numpy" "$ours" <<'PY'
import json, sys
numpy, ours = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{ours['config']}: memsweep {ours['instances_per_s']:.1f} instances/s, "
      f"NumPy {numpy['instances_per_s']:.1f} instances/s, "
      f"ratio {ours['instances_per_s'] / numpy['instances_per_s']:.1f}x")
PY
