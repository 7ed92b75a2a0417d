"""The served model bundle: one trained run, everything needed to score new cases, in one folder.

Layout of a bundle folder (local path, s3:// or gs://):

    bundle.json   manifest: format, model version, checksum, and the size + SHA-256 of every file
    model/        an Orbax checkpoint with two items:
                    params  the inference slice of one run's TrainState (fitted scaler,
                            autoencoder, discriminator-classifier, generator)
                    meta    config, feature names and order, label names, library versions,
                            training metrics, model version, checksum

`load` checks the manifest before Orbax reads a byte (a missing, truncated or altered file is
named), restores into a template built from the config (a shape mismatch is named), and
recomputes the checksum over the restored arrays and metadata. Every failure is a `BundleError`.
Remote bundles are staged in a local temporary folder and copied with fsspec (Orbax 0.12 cannot
address s3:// or gs:// paths here; see gan_jax/checkpoint.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import manifest, runtime, storage, train
from gan_jax.config import Config

FORMAT = "gan_jax.bundle/2"  # 2: params grouped per network, labelled fraction in the config
MANIFEST = "bundle.json"
MODEL_DIR = "model"
PARAM_KEYS = ("scaler", "ae", "disc", "gen")
_META_KEYS = ("format", "model_version", "config", "feature_names", "label_names", "versions",
              "metrics", "training", "created")  # fmt: skip


class BundleError(ValueError):
    """A bundle that cannot be served: missing, corrupt, truncated or of another schema."""


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: hashed by identity (predict cache)
class Bundle:
    config: Config
    params: dict[str, Any]  # PARAM_KEYS -> pytrees of numpy arrays (one run, no runs axis)
    feature_names: tuple[str, ...]
    label_names: tuple[str, ...]
    model_version: str
    meta: dict[str, Any]  # everything else: versions, metrics, training, created, checksum

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def checksum(self) -> str:
        return self.meta["checksum"]

    def model(self) -> train.ModelParams:
        p = self.params
        scaler = train.preprocess.ScalerParams(p["scaler"]["shift"], p["scaler"]["scale"])
        return train.ModelParams(scaler, p["ae"], p["disc"], p["gen"])

    def predict_fn(self) -> Callable[[jax.Array], jax.Array]:
        """A jitted x [B, F] float32 -> malignant probability [B]; params are baked in as
        device constants, so a call transfers only the batch."""
        model = jax.device_put(self.model())
        return jax.jit(lambda x: train.predict_proba(self.config, model, x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Malignant probability [N] for raw feature rows x [N, F] (in `feature_names` order)."""
        return np.asarray(_cached_predict(self)(jnp.asarray(x, jnp.float32)))


@functools.lru_cache(maxsize=8)
def _cached_predict(bundle: Bundle) -> Callable:
    return bundle.predict_fn()


# -- training ---------------------------------------------------------------------------------


def train_bundle(
    config: Config, *, fold: int | None = None, model_version: str | None = None, mesh=None
) -> Bundle:
    """Trains one run of `config` and returns it as a bundle.

    Args:
      fold: None trains on every row; r trains on run r of `evaluate.cv_folds` (repeat
        r // n_folds, fold r % n_folds) and also reports metrics on its held-out rows.
      model_version: the served version string (default: "<config name>-<checksum[:12]>").
      mesh: devices for training (default: all).
    """
    from gan_jax import evaluate
    from gan_jax.data import load_dataset

    data = load_dataset(config.data)
    if fold is None:
        mask, run_id = np.ones(len(data.y), bool), 0
    else:
        if not 0 <= fold < config.n_runs:
            raise ValueError(f"fold must be in [0, {config.n_runs}), got {fold}")
        mask = evaluate.cv_folds(data.y, config.n_folds, config.n_repeats, config.seed)[fold]
        run_id = fold
    t0 = time.perf_counter()
    runs = train.make_runs(config, data.y, mask[None], run_ids=np.asarray([run_id]))
    result = train.train_runs(config, data.x, data.y, runs, mesh=mesh)
    model = jax.tree.map(lambda a: np.asarray(a[0]), jax.device_get(train.model_params(result.state)))
    seconds = time.perf_counter() - t0
    params = _params_dict(model)
    proba = np.asarray(train.predict_proba(config, jax.device_put(model), jnp.asarray(data.x)))
    metrics = {"train": _metrics(data.y, proba, mask)}
    if fold is not None:
        metrics["held_out"] = _metrics(data.y, proba, ~mask)
    meta = {
        "format": FORMAT, "config": config.to_dict(), "feature_names": list(data.feature_names),
        "label_names": list(data.label_names), "versions": runtime.library_versions(),
        "metrics": metrics, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training": {"data": data.source, "fold": fold, "n_train_rows": int(mask.sum()),
                     "n_labeled_rows": int(runs.labeled_mask.sum()),
                     "seed": config.seed, "seconds": round(seconds, 2), "git_commit": runtime.git_commit()},
    }  # fmt: skip
    meta = json.loads(json.dumps(meta))  # exactly what a JSON round trip gives back
    meta["model_version"] = model_version or ""
    meta["checksum"] = checksum(params, meta)
    if not model_version:
        meta["model_version"] = f"{config.name}-{meta['checksum'][:12]}"
        meta["checksum"] = checksum(params, meta)
    return _from_parts(params, meta)


def _params_dict(model: train.ModelParams) -> dict[str, Any]:
    """The bundle's stored form of a model's params (plain dicts, readable without gan_jax)."""
    scaler = {"shift": model.scaler.shift, "scale": model.scaler.scale}
    return {"scaler": scaler, "ae": model.ae, "disc": model.disc, "gen": model.gen}


def _metrics(y: np.ndarray, proba: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    from gan_jax import evaluate

    m = evaluate.classification_metrics(y, proba[None], mask[None])
    return {k: float(m[k][0]) for k in evaluate.METRICS} | {"n_rows": int(mask.sum())}


# -- checksum ---------------------------------------------------------------------------------


def checksum(params: dict[str, Any], meta: dict[str, Any]) -> str:
    """SHA-256 over every array (path, dtype, shape, bytes) and the metadata (sorted-key JSON,
    without the checksum itself): independent of how Orbax lays out its files."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    rest = {k: v for k, v in meta.items() if k != "checksum"}
    h.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


# -- export -----------------------------------------------------------------------------------


def export(bundle: Bundle, uri: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Writes `bundle` to the folder `uri` (local path, s3:// or gs://). Returns the URI."""
    uri = storage.check_uri(uri).rstrip("/")
    if storage.exists(storage.join(uri, MANIFEST)) and not overwrite:
        raise BundleError(f"{storage.redact(uri)} already holds a bundle; pass overwrite=True (--force)")
    with tempfile.TemporaryDirectory(prefix="gan_jax_bundle_") as tmp:
        local = tmp if storage.is_remote(uri) else os.path.abspath(uri)
        if not storage.is_remote(uri):
            # The manifest goes first: an export cut short leaves "not a bundle", never a mix.
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(local, MANIFEST))
            shutil.rmtree(os.path.join(local, MODEL_DIR), ignore_errors=True)
            os.makedirs(local, exist_ok=True)
        _write_local(bundle, local)
        if storage.is_remote(uri):
            for ours in (MANIFEST, MODEL_DIR):  # only what a bundle consists of
                storage.remove(storage.join(uri, ours))
            names = [n for n in manifest.local_files(local) if n != MANIFEST]
            for rel in names:  # the manifest goes last: a bundle without it is incomplete
                storage.write_bytes(storage.join(uri, rel), _read(os.path.join(local, rel)))
            storage.write_bytes(storage.join(uri, MANIFEST), _read(os.path.join(local, MANIFEST)))
    return uri


def _write_local(bundle: Bundle, local: str) -> None:
    import orbax.checkpoint as ocp

    meta = {**bundle.meta, "config": bundle.config.to_dict(), "feature_names": list(bundle.feature_names),
            "label_names": list(bundle.label_names), "model_version": bundle.model_version}  # fmt: skip
    args = ocp.args.Composite(params=ocp.args.StandardSave(bundle.params), meta=ocp.args.JsonSave(meta))
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
        ckptr.save(os.path.join(local, MODEL_DIR), args=args, force=True)
    listing = {"format": FORMAT, "model_version": bundle.model_version, "checksum": bundle.checksum,
               "files": manifest.digests(local, exclude=(MANIFEST,))}  # fmt: skip
    with open(os.path.join(local, MANIFEST), "w") as f:
        json.dump(listing, f, indent=1)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# -- load -------------------------------------------------------------------------------------


def load(uri: str | os.PathLike) -> Bundle:
    """Reads and verifies the bundle in the folder `uri`; raises BundleError saying what is wrong."""
    uri = storage.check_uri(uri).rstrip("/")
    where = storage.redact(uri)
    if not storage.is_remote(uri):
        return _load_local(os.path.abspath(uri), where)
    with tempfile.TemporaryDirectory(prefix="gan_jax_bundle_") as tmp:
        try:
            storage.download_dir(uri, tmp)
        except FileNotFoundError as e:
            raise BundleError(f"{where}: no bundle there ({e})") from None
        return _load_local(tmp, where)


def _load_local(local: str, where: str) -> Bundle:
    listing = _read_manifest(local, where)
    problem = manifest.first_problem(local, listing["files"])
    if problem is not None:
        raise BundleError(f"{where}: {problem}")
    meta = _restore_meta(local, where)
    config = _check_meta(meta, listing, where)
    params = _restore_params(local, where, config, len(meta["feature_names"]))
    if checksum(params, meta) != meta["checksum"]:
        raise BundleError(f"{where}: checksum mismatch: the parameters or metadata were altered")
    return _from_parts(params, meta)


def _read_manifest(local: str, where: str) -> dict[str, Any]:
    path = os.path.join(local, MANIFEST)
    if not os.path.isfile(path):
        raise BundleError(f"{where}: not a gan_jax bundle (no {MANIFEST}); write one with gan-jax export")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{where}: {MANIFEST} is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleError(f"{where}: bundle format {got!r} is not supported (expected {FORMAT!r})")
    if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
        raise BundleError(f"{where}: {MANIFEST} lists no files")
    return manifest


def _restore_meta(local: str, where: str) -> dict[str, Any]:
    import orbax.checkpoint as ocp

    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            args = ocp.args.Composite(meta=ocp.args.JsonRestore())
            return dict(ckptr.restore(os.path.join(local, MODEL_DIR), args=args).meta)
    except Exception as e:  # noqa: BLE001 - Orbax raises many types; the caller needs one
        raise BundleError(f"{where}: cannot read the bundle metadata ({_first_line(e)})") from None


def _check_meta(meta: dict[str, Any], manifest: dict[str, Any], where: str) -> Config:
    missing = [k for k in (*_META_KEYS, "checksum") if k not in meta]
    if missing:
        raise BundleError(f"{where}: bundle metadata lacks the fields {missing}")
    if meta["format"] != FORMAT:
        raise BundleError(f"{where}: metadata format {meta['format']!r} is not {FORMAT!r}")
    if meta["checksum"] != manifest.get("checksum"):
        raise BundleError(f"{where}: the manifest and the metadata disagree on the checksum")
    names = meta["feature_names"]
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise BundleError(f"{where}: feature_names must be a non-empty list of names")
    if len(set(names)) != len(names):
        raise BundleError(f"{where}: feature_names has duplicates")
    if not (isinstance(meta["label_names"], list) and len(meta["label_names"]) == 2):
        raise BundleError(f"{where}: label_names must name the two classes (benign, malignant)")
    try:
        return Config.from_dict(meta["config"])
    except (TypeError, ValueError) as e:
        raise BundleError(f"{where}: the bundle's config is not valid here ({e})") from None


def _restore_params(local: str, where: str, config: Config, n_features: int) -> dict[str, Any]:
    import orbax.checkpoint as ocp

    template = params_template(config, n_features)
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            args = ocp.args.Composite(params=ocp.args.StandardRestore(template))
            params = ckptr.restore(os.path.join(local, MODEL_DIR), args=args).params
    except Exception as e:  # noqa: BLE001
        raise BundleError(
            f"{where}: the parameters do not match the bundle's config ({_first_line(e)})"
        ) from None
    for (path, want), got in zip(jax.tree_util.tree_leaves_with_path(template), jax.tree.leaves(params)):
        if np.shape(got) != want.shape or np.asarray(got).dtype != want.dtype:
            raise BundleError(f"{where}: parameter {jax.tree_util.keystr(path)} has shape "
                              f"{np.shape(got)}, expected {want.shape} from the config")  # fmt: skip
    return jax.tree.map(np.asarray, params)


def params_template(config: Config, n_features: int) -> dict[str, Any]:
    """Zeros shaped like a bundle's params for `config` (no compute: `train.state_shapes`)."""
    shapes = train.model_params(train.state_shapes(config, n_features))
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), _params_dict(shapes))


def _from_parts(params: dict[str, Any], meta: dict[str, Any]) -> Bundle:
    config = Config.from_dict(meta["config"])
    rest = {k: v for k, v in meta.items() if k not in ("config", "feature_names", "label_names")}
    return Bundle(config=config, params=params, feature_names=tuple(meta["feature_names"]),
                  label_names=tuple(meta["label_names"]), model_version=meta["model_version"],
                  meta=rest)  # fmt: skip


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"
