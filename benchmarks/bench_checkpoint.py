"""How long a training checkpoint takes to save and restore, locally and on object stores.

Saves a training state of an experiment (zeros of the exact shapes and dtypes its training
holds: every run's parameters, optimizer moments and scaler) through the public
`gan_jax.training.checkpoint.TrainCheckpoints`, --repeats times per target, and restores the newest step
with a new instance each time (so a remote restore downloads it). Targets: a local folder with
asynchronous saves (what training blocks on, then the background write), a local folder with
synchronous saves, and S3 and GCS protocol servers on loopback (moto, gcp-storage-emulator:
the dev extra), which measure the client side and the protocol, not a cloud network. Writes
results/checkpoint_timings.json (and .md) with the machine's load average (the machine may be shared).

    python -m benchmarks.bench_checkpoint                      # paper config, 5 repeats
    python -m benchmarks.bench_checkpoint --quick --repeats 2  # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import socket
import sys
import tempfile
import time

import jax
import numpy as np

from benchmarks import harness
from gan_jax.artifacts import storage
from gan_jax.config import load_experiment
from gan_jax.data import load_dataset
from gan_jax.evaluation import evaluate
from gan_jax.training import checkpoint
from gan_jax.training.checkpoint import TrainCheckpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="paper", help="experiment name or .py file (default paper)")
    p.add_argument("--quick", action="store_true", help="the experiment's tiny variant")
    p.add_argument("--repeats", type=int, default=5, help="saves and restores per target (default 5)")
    p.add_argument("--targets", default="local-async,local-sync,s3,gs", help="comma-separated subset")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    unknown = set(args.targets.split(",")) - {"local-async", "local-sync", "s3", "gs"}
    if unknown:
        p.error(f"unknown targets {sorted(unknown)}")
    return args


def training_state(config):
    """A state of zeros shaped like the one training `config` on the bundled data holds."""
    data = load_dataset(config.data.uri)
    masks = evaluate.cv_folds(data.y, config.cv.n_folds, config.cv.n_repeats, config.cv.seed)
    return checkpoint.state_template(config, data.x.shape[1], len(masks)), len(masks)


def time_target(uri: str, state, repeats: int, async_save: bool) -> dict:
    """Seconds per save (the call, then the wait for a background write) and per restore."""
    save_call, save_wait, restore = [], [], []
    with TrainCheckpoints(uri, keep=2, async_save=async_save) as ckpts:
        for i in range(repeats):
            t0 = time.perf_counter()
            ckpts.save(i + 1, state, {"history": []})
            t1 = time.perf_counter()
            ckpts.wait()
            save_call.append(t1 - t0)
            save_wait.append(time.perf_counter() - t1)
    for _ in range(repeats):
        with TrainCheckpoints(uri) as fresh:  # nothing cached: a remote step is downloaded
            t0 = time.perf_counter()
            restored = fresh.restore_latest(state)
            restore.append(time.perf_counter() - t0)
        if restored is None or restored[1]["step"] != repeats:
            raise RuntimeError(f"{uri}: restored {restored and restored[1]['step']}, expected step {repeats}")
    return {
        "save_call_s": _stats(save_call),
        "save_background_s": _stats(save_wait),
        "save_total_s": _stats([a + b for a, b in zip(save_call, save_wait)]),
        "restore_s": _stats(restore),
    }


def _stats(values: list[float]) -> dict:
    # The first save also creates the manager and compiles nothing, but opens files and
    # threads: it is kept in the list and shown apart in `first`.
    return {
        "median": float(np.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "first": values[0],
        "n": len(values),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def environment(**values: str):
    """Sets environment variables, and on exit restores them and drops the cached s3fs/gcsfs
    instances made with them (they would keep pointing at a server that is gone)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for module, cls in (("s3fs", "S3FileSystem"), ("gcsfs", "GCSFileSystem")):
            if module in sys.modules:
                getattr(sys.modules[module], cls).clear_instance_cache()


@contextlib.contextmanager
def loopback_s3():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
    }
    try:
        with environment(**env):
            storage.set_s3_endpoint(env["AWS_ENDPOINT_URL_S3"])  # drops s3fs's cached clients
            fs, _ = storage.filesystem("s3://bench")
            fs.mkdir("bench")
            yield "s3://bench/ckpt"
    finally:
        server.stop()


@contextlib.contextmanager
def loopback_gcs():
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="bench")
    server.start()
    # gcsfs >= 2026 stalls on a bucket-type probe against an emulator unless
    # GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT is off; it is read when gcsfs is first imported.
    env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    try:
        with environment(**env):
            yield "gs://bench/ckpt"
    finally:
        server.stop()


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    rec = harness.record(argv, module="benchmarks.bench_checkpoint")
    config = load_experiment(args.experiment, quick=args.quick)
    state, n_runs = training_state(config)
    leaves = [np.asarray(a) for a in jax.tree.leaves(state)]
    targets = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.targets.split(","):
            if name == "local-async":
                targets[name] = time_target(os.path.join(tmp, "async"), state, args.repeats, True)
            elif name == "local-sync":
                targets[name] = time_target(os.path.join(tmp, "sync"), state, args.repeats, False)
            else:
                with loopback_s3() if name == "s3" else loopback_gcs() as uri:
                    targets[name] = time_target(uri, state, args.repeats, True)
            t = targets[name]
            print(
                f"{name}: save {1e3 * t['save_call_s']['median']:.0f} ms blocking + "
                f"{1e3 * t['save_background_s']['median']:.0f} ms background, restore "
                f"{1e3 * t['restore_s']['median']:.0f} ms (medians of {args.repeats})"
            )
    rec.update(
        {
            "experiment": config.name,
            "state": {"runs": n_runs, "leaves": len(leaves), "bytes": int(sum(a.nbytes for a in leaves))},
            "targets": targets,
            "notes": "s3 and gs are protocol servers on loopback (moto, gcp-storage-emulator) in this "
            "process: client and protocol cost, no network. Remote saves are synchronous (staged "
            "locally, then uploaded), so their save_call_s is the whole save.",
        }
    )
    record = harness.finish(rec)
    load = record["load_average"]
    record["machine"] = {  # what the README's checkpoint block reads
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1m_before_after": [load["before"][0], load["after"][0]],
    }
    json_uri, _ = harness.write(args.out, "checkpoint_timings", record, markdown(record))
    print(f"wrote {json_uri}")
    return record


def markdown(record: dict) -> str:
    """Median seconds per target, from the record only."""
    lines = [
        f"Checkpoint save and restore of `{record['experiment']}` ({record['state']['runs']} runs, "
        f"{record['state']['bytes'] / 1e6:.1f} MB), `{record['command']}`, commit "
        f"{record['git_commit'][:12]}. {record['notes']}",
        "",
        "| target | save call (s) | background write (s) | restore (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, t in record["targets"].items():
        lines.append(
            f"| {name} | {t['save_call_s']['median']:.3f} | {t['save_background_s']['median']:.3f} "
            f"| {t['restore_s']['median']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
