#!/usr/bin/env bash
# Regenerates the lock files requirements/lock-py3.X.txt: exact versions of every dependency of
# gan_jax (every extra but those in NOT_LOCKED, so dev/test, cloud, grpc, images and energy are
# covered) for each supported Python, on Linux x86_64 (CI, the container image and the cloud VMs).
# gan_jax itself is not in it.
#
#   scripts/lock.sh              # after a dependency changed in pyproject.toml: adds what is new,
#                                # keeps every version already locked (uv reads the old file first)
#   scripts/lock.sh --upgrade    # move everything to the newest versions the ranges allow
#
# Needs uv (pip install uv); resolves from PyPI for Pythons that need not be installed here.
# Then results made under an older lock no longer match it: tests/test_lock.py says which, and
# the results are regenerated (README "The reproduction study") or the lock change undone.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONS=(3.11 3.12 3.13)
# Extras left out: tfds-build brings TensorFlow, needed only to prepare TFDS catalog datasets once;
# ctgan brings PyTorch, for benchmarks/ctgan_bench.py only.
NOT_LOCKED=(tfds-build ctgan)
command -v uv >/dev/null || { echo "scripts/lock.sh needs uv: pip install uv" >&2; exit 1; }
mkdir -p requirements
# The extras named in pyproject.toml, less NOT_LOCKED, as --extra options.
mapfile -t EXTRAS < <(python3 - "${NOT_LOCKED[@]}" <<'PY'
import sys, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
for name in extras:
    if name not in sys.argv[1:]:
        print(f"--extra={name}")
PY
)
for py in "${PYTHONS[@]}"; do
    uv pip compile pyproject.toml "${EXTRAS[@]}" --python-version "$py" \
        --python-platform x86_64-manylinux_2_28 --custom-compile-command "scripts/lock.sh" \
        --no-emit-package gan-jax --quiet "$@" -o "requirements/lock-py$py.txt"
done
# The lock must not pull a deep-learning framework the project does not use (a stray dependency
# would bring gigabytes into CI and the image); fail here rather than in CI.
if grep -EHn '^(torch|torchvision|tensorflow|tensorflow-cpu|tf-nightly)==' requirements/lock-py*.txt; then
    echo "a framework gan_jax does not use came into the lock (above): find who pulls it" >&2
    exit 1
fi
echo "wrote requirements/lock-py{$(IFS=,; echo "${PYTHONS[*]}")}.txt; commit them, then check the results against them: pytest tests/test_lock.py"
