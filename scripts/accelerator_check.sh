#!/usr/bin/env bash
# One prepared command for a machine with an NVIDIA GPU: runs the GPU-relevant tests,
# bench_train with large run counts, bench_scale at the paper's full step counts, the energy
# benchmark with NVML (real joules), the image benchmark (images/s, MFU, bf16 vs f32) and the
# serving load test, and writes every result under one folder named after the card:
#
#   scripts/accelerator_check.sh                 # -> results/accelerator/<nvidia-smi name>/
#   scripts/accelerator_check.sh --out DIR       # -> DIR/<card>/
#   scripts/accelerator_check.sh --dry-run       # everything tiny on CPU (what CI runs)
#
# Each step's command, exit code and seconds go to <folder>/summary.json; a failing step is
# recorded and the next one still runs (the script then exits 1), so one broken benchmark
# never costs the others' results. Needs: pip install -e ".[dev,energy]" and jax[cuda12].
set -uo pipefail

DRY_RUN=0
OUT_ROOT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --out) OUT_ROOT="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "accelerator_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # `-m benchmarks.*` from the checkout
PY="${PYTHON:-python}"

if [[ $DRY_RUN == 1 ]]; then
  export JAX_PLATFORMS=cpu
  # A dry run checks that every step runs, not how fast: reuse the persistent compilation cache.
  export GAN_JAX_BENCH_CACHE="${GAN_JAX_CACHE_DIR:-$ROOT/.jax_cache}"
  CARD="dry-run-cpu"
  OUT_ROOT="${OUT_ROOT:-$ROOT/runs/accelerator}"
else
  if ! command -v nvidia-smi > /dev/null; then
    echo "accelerator_check.sh: nvidia-smi not found; on a machine without a GPU use --dry-run" >&2
    exit 2
  fi
  # "NVIDIA H100 80GB HBM3" -> NVIDIA_H100_80GB_HBM3 (one folder per card model)
  CARD="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1 | tr -c 'A-Za-z0-9.\n-' '_' | tr -d '\n')"
  OUT_ROOT="${OUT_ROOT:-$ROOT/results/accelerator}"
fi
OUT="$OUT_ROOT/$CARD"
mkdir -p "$OUT"
STEPS="$OUT/steps.jsonl"
: > "$STEPS"
FAILED=0

# step NAME COMMAND...: runs COMMAND with its output in $OUT/NAME.log, records rc and seconds.
step() {
  local name="$1"; shift
  local t0 rc
  t0=$(date +%s.%N)
  echo "== $name: $*"
  "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  [[ $rc == 0 ]] || { FAILED=1; echo "   failed (rc $rc), see $OUT/$name.log"; }
  "$PY" - "$name" "$rc" "$t0" "$*" >> "$STEPS" <<'EOF'
import json, sys, time
name, rc, t0, cmd = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(json.dumps({"step": name, "rc": rc, "seconds": round(time.time() - t0, 1), "command": cmd}))
EOF
}

# The machine, as the results must name it.
if [[ $DRY_RUN == 0 ]]; then
  nvidia-smi -q > "$OUT/nvidia-smi.txt" 2>&1
fi
step devices "$PY" -c "import jax, json; print(json.dumps({'devices': [str(d) for d in jax.devices()], 'jax': jax.__version__}))"

if [[ $DRY_RUN == 1 ]]; then
  step tests "$PY" -m pytest -q -p no:cacheprovider tests/test_sweep.py -k "grid or random or refuse" \
    --junitxml="$OUT/tests.xml"
  step bench_scale "$PY" -m benchmarks.bench_scale --quick --devices 1 --sizes 10 --device-runs 10 \
    --loop-settings 1 --out "$OUT/bench_scale"
  step energy "$PY" -m benchmarks.energy_bench --quick --only training --tasks 1,2 --train-repeats 1 \
    --backend estimate --out "$OUT/energy"
  # The GPU-only vendor-peak lookup, exercised with an assumed card (the output says so).
  step bench_images "$PY" -m benchmarks.bench_images --quick --cache-dir "$GAN_JAX_BENCH_CACHE" \
    --vendor-peak-kind "NVIDIA H200" --out "$OUT/bench_images"
else
  # GPU-relevant tests: the trainer, sweeps, nested CV, sharding/multi-process, energy, serving.
  step tests "$PY" -m pytest -q -p no:cacheprovider tests/test_train.py tests/test_sweep.py \
    tests/test_nested.py tests/test_distributed.py tests/test_energy.py tests/test_model_quality.py \
    tests/test_serve.py --junitxml="$OUT/tests.xml"
  # bench_train on 1,000 runs (paper config, 100 repeats × 10 folds).
  mkdir -p "$OUT/experiments"
  printf 'from gan_jax.config import Config\n\n\ndef get_config():\n    return Config(name="paper_1000_runs", n_repeats=100)\n' \
    > "$OUT/experiments/paper_1000_runs.py"
  step bench_train "$PY" -m benchmarks.bench_train --experiment "$OUT/experiments/paper_1000_runs.py" \
    --out "$OUT/bench_train"
  # Full paper step counts; the issue's goal: 10,000 runs in <= 30 s including compilation.
  step bench_scale "$PY" -m benchmarks.bench_scale --steps-scale 1 --sizes 10,100,1000,10000,100000 \
    --devices 1 --out "$OUT/bench_scale"
  step energy "$PY" -m benchmarks.energy_bench --backend nvml --out "$OUT/energy"
  # Image path: fit vs a per-step loop, MFU against a measured matmul, the input pipeline, f32 and bf16.
  step bench_images "$PY" -m benchmarks.bench_images --out "$OUT/bench_images"
  step export "$PY" -m gan_jax.cli export "$OUT/bundle" --force
  step load_test "$PY" -m benchmarks.load_test --bundle "$OUT/bundle" --out "$OUT/load_test"
fi

"$PY" - "$OUT" "$CARD" "$DRY_RUN" <<'EOF'
import json, os, sys, time
out, card, dry = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
steps = [json.loads(line) for line in open(os.path.join(out, "steps.jsonl"))]
summary = {"card": card, "dry_run": dry, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_average_end": os.getloadavg(), "steps": steps}
with open(os.path.join(out, "summary.json"), "w") as fh:
    json.dump(summary, fh, indent=1)
print(f"results: {out}/summary.json")
EOF
exit $FAILED
