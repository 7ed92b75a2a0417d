#!/usr/bin/env bash
# Issue 15's acceptance: two fresh installs from the lock on the same Python give byte-identical
# results.json summaries. Makes two new venvs, installs requirements/lock-pyX.Y.txt into each
# (then gan_jax itself, without dependencies, and `pip check`), runs `gan-jax train` with the same
# seed in each — each with its own empty JAX compilation cache — and compares the summaries byte
# for byte. Writes results/lock_reproducibility.json.
#
#   scripts/check_lock_reproducible.sh                 # --quick and the paper config (~15 min on 2 cores)
#   CONFIGS=quick scripts/check_lock_reproducible.sh   # --quick only
#   PYTHON=python3.12 scripts/check_lock_reproducible.sh   # another installed Python, its own lock
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
CONFIGS=${CONFIGS:-"quick paper"}
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
LOCK=requirements/lock-py$PYVER.txt
[ -f "$LOCK" ] || { echo "no lock for Python $PYVER ($LOCK): add it to scripts/lock.sh" >&2; exit 1; }
WORK=$(mktemp -d /tmp/gan_jax_lock_repro.XXXXXX)
export RECORD_STARTED=$(date -u +%Y-%m-%dT%H:%M:%S+00:00) RECORD_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
LOG=$WORK/log.txt
echo "work folder $WORK (log: $LOG)"
for v in a b; do
    start=$(date +%s.%N)
    "$PY" -m venv "$WORK/$v"
    {
        "$WORK/$v/bin/python" -m pip install -q -r "$LOCK"
        "$WORK/$v/bin/python" -m pip install -q --no-deps "$ROOT"  # a wheel into the venv, not editable
        "$WORK/$v/bin/python" -m pip check
    } >>"$LOG" 2>&1 || { echo "install $v failed; see $LOG" >&2; exit 1; }
    "$WORK/$v/bin/python" -m pip freeze --all >"$WORK/$v.freeze"
    echo "$(date +%s.%N) - $start" | bc >"$WORK/$v.install_s"
    echo "venv $v installed in $(cat "$WORK/$v.install_s") s"
done
# Experiments are not installed with the wheel (gan_jax looks them up in ./experiments): the runs
# below use this checkout's, copied beside them.
cp -r "$ROOT/experiments" "$WORK/experiments"
for cfg in $CONFIGS; do
    for v in a b; do
        flag=$([ "$cfg" = quick ] && echo --quick || echo --experiment "$cfg")
        echo "venv $v: gan-jax train $flag --seed 0"
        # Outside the checkout, so nothing but the venv's own gan_jax can be imported.
        (cd "$WORK" && GAN_JAX_CACHE_DIR="$WORK/$v.jax_cache" "$WORK/$v/bin/gan-jax" train $flag --seed 0 \
            --no-progress --no-tensorboard --out "$WORK/$v.$cfg" >>"$LOG" 2>&1) \
            || { echo "training in venv $v failed; see $LOG" >&2; exit 1; }
    done
done
# venv a's libraries with this checkout's gan_jax: the run record names the lock's versions and
# this checkout's commit; its start time and load average are the script's.
RECORD_ELAPSED_S=$SECONDS PYTHONPATH="$ROOT" "$WORK/a/bin/python" - "$WORK" "$LOCK" "$CONFIGS" <<'PY'
import hashlib, json, os, platform, sys, time
from gan_jax.artifacts import records

work, lock, configs = sys.argv[1], sys.argv[2], sys.argv[3].split()
sha = lambda b: hashlib.sha256(b).hexdigest()
canon = lambda obj: json.dumps(obj, sort_keys=True).encode()  # the summary, as bytes
freeze = {v: open(f"{work}/{v}.freeze", "rb").read() for v in "ab"}
rec = records.run_record(("" if configs == ["quick", "paper"] else f"CONFIGS='{' '.join(configs)}' ") + "scripts/check_lock_reproducible.sh")
rec.update(started=os.environ["RECORD_STARTED"], _t0=time.perf_counter() - float(os.environ["RECORD_ELAPSED_S"]))
rec["load_average"]["before"] = [float(v) for v in os.environ["RECORD_LOAD_BEFORE"].split()]
out = {
    **records.finish_record(rec),
    "check": "two fresh venvs from the lock, same seed: are the results.json summaries byte-identical?",
    "lock": lock, "lock_sha256": sha(open(lock, "rb").read()),
    "python": platform.python_version(), "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
    "install_s": {v: float(open(f"{work}/{v}.install_s").read()) for v in "ab"},
    "pip_freeze_identical": freeze["a"] == freeze["b"],
    "pip_freeze_sha256": {v: sha(freeze[v]) for v in "ab"},
    "configs": {},
}
for cfg in configs:
    r = {v: json.load(open(f"{work}/{v}.{cfg}/results.json")) for v in "ab"}
    out["configs"][cfg] = {
        "summary_sha256": {v: sha(canon(r[v]["summary"])) for v in "ab"},
        "summary_byte_identical": canon(r["a"]["summary"]) == canon(r["b"]["summary"]),
        "per_run_metrics_identical": canon(r["a"]["runs"]) == canon(r["b"]["runs"]),
        "confusion_total_identical": canon(r["a"]["confusion_total"]) == canon(r["b"]["confusion_total"]),
        "versions": r["a"]["versions"], "versions_identical": r["a"]["versions"] == r["b"]["versions"],
        "device": r["a"]["device"],
        "f1_mean": r["a"]["summary"]["f1"]["mean"],
        "train_seconds": {v: r[v]["train_seconds"] for v in "ab"},
    }
out["versions"] = next(iter(out["configs"].values()))["versions"]  # checked against the lock by tests
out["all_identical"] = out["pip_freeze_identical"] and all(
    c["summary_byte_identical"] and c["per_run_metrics_identical"] for c in out["configs"].values()
)
os.makedirs("results", exist_ok=True)
records.write_json("results/lock_reproducibility.json", out)
print(json.dumps({k: out[k] for k in ("lock", "pip_freeze_identical", "all_identical")}),
      {c: v["summary_byte_identical"] for c, v in out["configs"].items()})
sys.exit(0 if out["all_identical"] else 1)
PY
