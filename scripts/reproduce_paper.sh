#!/usr/bin/env bash
# Regenerates everything in results/ with one command, one job at a time (so no benchmark
# competes with another for the cores): a model bundle, a short load test (Figure 4), the
# energy benchmark (Figure 5), the training-speed benchmark, and last the study (Figure 3,
# confusion matrix), whose results/README.md gathers the fragments the others wrote.
#
#   scripts/reproduce_paper.sh [OUT]        # OUT defaults to results
#
# The bundle goes to runs/bundle, so the commands recorded in results/ can be rerun one by one.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results}"
bundle=runs/bundle

gan-jax export "$bundle" --force   # replaces an earlier bundle there
python -m benchmarks.load_test --bundle "$bundle" --duration 60 --out "$out"
python -m benchmarks.energy_bench --bundle "$bundle" --out "$out"
python -m benchmarks.bench_train --out "$out"
gan-jax reproduce --out "$out" --no-progress
