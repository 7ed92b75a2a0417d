"""The container image's install step, run the way the image runs it, without Docker (base images
cannot be pulled here): reads the Dockerfile, copies what its COPY lines copy into a fresh folder
(the image's WORKDIR), makes a fresh venv of the Python its FROM names, applies its ENV, and runs
the `pip` commands of its RUN lines there, verbatim. Then checks what the image promises: every
installed package at the version of the lock it installs with, `pip check`, the ENTRYPOINT with
`serve --help`, and the default CMD's gRPC port answering beside HTTP (on an echo model).

    python -m benchmarks.check_image_install            # ~2-4 min (.ci/run runs it)
    python -m benchmarks.check_image_install --dry-run  # print what it would run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from benchmarks import lockfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def instructions(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, current = [], ""
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        if line.lstrip().startswith("#") and not current:
            continue
        stripped = line.rstrip("\n")
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        current = ""
    return out


def plan(dockerfile: str) -> dict:
    """What the image does: its Python, ENV, WORKDIR, COPY pairs, pip commands, ENTRYPOINT, CMD, EXPOSE."""
    p = {"env": {}, "copy": [], "pip": [], "skipped": [], "expose": [], "workdir": "/"}
    for word, rest in instructions(dockerfile):
        if word == "FROM":
            match = re.match(r"python:(\d+\.\d+)", rest)
            if not match:
                raise SystemExit(f"{dockerfile}: FROM {rest} is not an official python:X.Y image")
            p["python"] = match[1]
        elif word == "ENV":
            p["env"].update(dict(kv.split("=", 1) for kv in shlex.split(rest)))
        elif word == "WORKDIR":
            p["workdir"] = rest
        elif word == "COPY":
            *sources, dest = shlex.split(rest)
            p["copy"] += [(s, dest) for s in sources]
        elif word == "RUN":
            for part in (s.strip() for s in rest.split("&&")):
                (p["pip"] if part.startswith("pip ") else p["skipped"]).append(part)
        elif word in ("ENTRYPOINT", "CMD"):
            p[word.lower()] = json.loads(rest)
        elif word == "EXPOSE":
            p["expose"] += [int(x) for x in rest.split()]
    if not p["pip"]:
        raise SystemExit(f"{dockerfile}: no `pip ...` command in any RUN line")
    return p


def copy_context(p: dict, app: str) -> None:
    for source, dest in p["copy"]:
        target = os.path.join(app, os.path.relpath(os.path.join(p["workdir"], dest), p["workdir"]))
        src = os.path.join(ROOT, source)
        if os.path.isdir(src):
            shutil.copytree(src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst = os.path.join(target, os.path.basename(source)) if dest.endswith("/") else target
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(src, dst)


def pip_list(cwd: str, env: dict) -> dict[str, str]:
    """{normalized name: version} of what the venv on env's PATH holds."""
    listing = subprocess.run(
        ["pip", "list", "--format", "json"], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout
    return {lockfile.normalize(d["name"]): d["version"] for d in json.loads(listing)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_serving(venv_bin: str, app: str, env: dict, p: dict) -> None:
    """The default CMD's gRPC port with the HTTP one: `serve --echo` on free ports, both ready."""
    http, grpc_port = free_port(), free_port()
    cmd = [os.path.join(venv_bin, p["entrypoint"][0]), *p["cmd"]]
    if "--grpc-port" not in cmd:
        raise SystemExit(f"the default CMD {p['cmd']} does not serve gRPC (--grpc-port)")
    given = int(cmd[cmd.index("--grpc-port") + 1])
    if given not in p["expose"]:
        raise SystemExit(f"the CMD serves gRPC on {given} but the image EXPOSEs only {p['expose']}")
    cmd[cmd.index("--grpc-port") + 1] = str(grpc_port)
    cmd += ["--echo", "--host", "127.0.0.1", "--port", str(http), "--log-level", "warning"]
    server = subprocess.Popen(cmd, cwd=app, env=env)
    ready = f"http://127.0.0.1:{http}/v2/health/ready"
    probe = (
        "import grpc, sys, urllib.request\n"
        f"assert urllib.request.urlopen('{ready}', timeout=5).status == 200\n"
        f"ch = grpc.insecure_channel('127.0.0.1:{grpc_port}')\n"
        "grpc.channel_ready_future(ch).result(timeout=10)\n"
        "print('HTTP and gRPC ports answer')\n"
    )
    try:
        deadline = time.time() + 90
        while True:
            run = subprocess.run(
                [os.path.join(venv_bin, "python"), "-c", probe], capture_output=True, text=True
            )
            if run.returncode == 0:
                print(run.stdout.strip())
                return
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"`{' '.join(cmd)}` did not serve: {run.stderr[-1500:]}")
            time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=20)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dockerfile", default=os.path.join(ROOT, "Dockerfile"))
    ap.add_argument("--python", default=sys.executable, help="interpreter for the venv (the FROM's X.Y)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    p = plan(args.dockerfile)
    version = subprocess.run(
        [args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != p["python"]:
        raise SystemExit(f"the image runs Python {p['python']}, {args.python} is {version}: pass --python")
    print(
        f"FROM python:{p['python']}; ENV {p['env']}; in {p['workdir']}: {p['pip']}; "
        f"not run here: {p['skipped']}"
    )
    if args.dry_run:
        return 0
    tmp = tempfile.mkdtemp(prefix="gan_jax_image_")
    try:
        app, venv = os.path.join(tmp, "app"), os.path.join(tmp, "venv")
        copy_context(p, app)
        subprocess.run([args.python, "-m", "venv", venv], check=True)
        venv_bin = os.path.join(venv, "bin")
        # PIP_NO_CACHE_DIR only keeps the image small; here the pip cache saves CI minutes.
        image_env = {k: v for k, v in p["env"].items() if k != "PIP_NO_CACHE_DIR"}
        env = {
            **os.environ,
            **image_env,
            "PATH": venv_bin + os.pathsep + os.environ["PATH"],
            "VIRTUAL_ENV": venv,
        }
        env.pop("PYTHONPATH", None)
        seed = pip_list(app, env)  # what the fresh venv starts with (pip; setuptools on 3.11)
        t0 = time.time()
        for command in p["pip"]:
            print(f"+ {command}", flush=True)
            subprocess.run(command, shell=True, cwd=app, env=env, check=True)
        print(f"installed in {time.time() - t0:.0f} s")
        subprocess.run(["pip", "check"], cwd=app, env=env, check=True)
        installed = {n: v for n, v in pip_list(app, env).items() if seed.get(n) != v and n != "gan-jax"}
        lock = lockfile.read_lock(lockfile.lock_path(p["python"]))
        off = {n: (v, lock.get(n, "not in the lock")) for n, v in installed.items() if lock.get(n) != v}
        if off:
            raise SystemExit(
                f"the image would install versions other than the lock's (installed, lock): {off}"
            )
        subprocess.run(
            [p["entrypoint"][0], "serve", "--help"], cwd=app, env=env, check=True, stdout=subprocess.DEVNULL
        )
        check_serving(venv_bin, app, env, p)
        print(f"the image's install step works: {len(installed)} packages, all at the lock's versions")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
