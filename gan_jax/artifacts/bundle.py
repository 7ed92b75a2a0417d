"""The served model bundle: one trained run, everything needed to score new cases, in one folder.

Two kinds share the format and every check: "table" (the WDBC pipeline, `make_bundle.train_bundle`) and
"image" (the conv SGAN of `gan_jax.training.image`, `make_bundle.image_bundle`). The metadata's `kind` says
which (bundles written before kinds existed are tables); what differs between the kinds lives
in one object per kind (`KINDS`, picked by `kind_of`), so nothing else switches on it.

Layout of a bundle folder (local path, s3:// or gs://):

    bundle.json   manifest: format, model version, checksum, and the size + SHA-256 of every file
    model/        an Orbax checkpoint with two items:
                    params  the inference slice of one run's state: table {scaler, ae,
                            disc, gen}; image {ae, disc, gen}
                    meta    kind, config, feature names and order (table), label names,
                            library versions, training metrics, model version, checksum

`load` checks the manifest before Orbax reads a byte (a missing, truncated or altered file is
named), restores into a template built from the config (a shape mismatch is named), and
recomputes the checksum over the restored arrays and metadata. Every failure is a `BundleError`.
Remote bundles are staged in a local temporary folder and copied with fsspec (Orbax 0.12 cannot
address s3:// or gs:// paths here; see gan_jax/training/checkpoint.py).
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
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from gan_jax.artifacts import manifest, storage
from gan_jax.artifacts.bundle_kinds import KINDS, BundleError, kind_of
from gan_jax.config import Config
from gan_jax.models import preprocess
from gan_jax.training import engine, image, table

FORMAT_NAME = "gan_jax.bundle"  # the name bundles have always carried (not the module path)
# 2: params grouped per network, labelled fraction in the config. Format 1 bundles (flat params)
# are refused with a message saying to re-export; a later format is refused as too new.
FORMAT_VERSION = 2
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"
MANIFEST = "bundle.json"
MODEL_DIR = "model"
_META_KEYS = (
    "format",
    "model_version",
    "config",
    "label_names",
    "versions",
    "metrics",
    "training",
    "created",
)


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: hashed by identity (predict cache)
class Bundle:
    config: Config  # its model section: MLPConfig (table) or ConvConfig (image)
    params: dict[str, Any]  # PARAM_KEYS[kind] -> pytrees of numpy arrays (one run, no runs axis)
    feature_names: tuple[str, ...]  # table: the features in order; image: ()
    label_names: tuple[str, ...]
    model_version: str
    meta: dict[str, Any]  # everything else: kind, versions, metrics, training, created, checksum

    @property
    def kind(self) -> str:
        return kind_of(self.meta).name

    @property
    def format_version(self) -> int:
        return format_version(self.meta["format"])

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images an image bundle scores and draws."""
        self.require("image", "image_shape")
        return tuple(self.config.model.image_shape)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one case the model scores: (F,) feature rows or (H, W, C) images."""
        return kind_of(self.meta).input_shape(self)

    @property
    def input_dtype(self) -> np.dtype:
        """float32 feature rows or uint8 images."""
        return kind_of(self.meta).input_dtype

    def input_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """([F] low, [F] high) that a table model can score (`cases.scaler_bounds`); None for
        images (every uint8 pixel is valid)."""
        return kind_of(self.meta).input_bounds(self)

    @property
    def checksum(self) -> str:
        return self.meta["checksum"]

    def require(self, kind: str, use: str) -> None:
        """BundleError unless this is a `kind` bundle; `use` names what needed it."""
        if self.kind != kind:
            raise BundleError(
                f"model {self.model_version} is {_article(self.kind)} bundle; {use} needs "
                f"{_article(kind)} bundle"
            )

    def model(self) -> table.ModelParams:
        self.require("table", "Bundle.model")
        p = self.params
        scaler = preprocess.ScalerParams(p["scaler"]["shift"], p["scaler"]["scale"])
        return table.ModelParams(scaler, p["ae"], p["disc"], p["gen"])

    def image_state(self):
        """The image bundle's params as an `engine.GANState` (no optimizer states),
        which `image.predict_proba` and the generator take."""
        self.require("image", "Bundle.image_state")
        p = self.params
        net = lambda params: engine.Network(params, None)
        return engine.GANState(step=None, fitted=(), ae=net(p["ae"]), disc=net(p["disc"]), gen=net(p["gen"]))

    def predict_fn(self) -> Callable[[jax.Array], jax.Array]:
        """A jitted x -> malignant probability [B]; x is float32 [B, F] feature rows (table) or
        uint8 images [B, H, W, C] (image). Params are baked in as device constants, so a call
        transfers only the batch."""
        return kind_of(self.meta).predict_fn(self)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Malignant probability [N] for raw feature rows x [N, F] (in `feature_names` order) or,
        for an image bundle, uint8 images [N, H, W, C] of `image_shape`."""
        return np.asarray(_cached_predict(self)(kind_of(self.meta).check_input(self, x)))

    def sample_images(self, n: int, seed: int = 0) -> np.ndarray:
        """n generator samples G(z), z ~ N(0, I) drawn from `seed`, as uint8 images [n, H, W, C]."""
        self.require("image", "sampling images")
        if n < 1:
            raise ValueError(f"the number of samples must be >= 1, got {n}")
        return image.sample_images(self.config, self.params["gen"], n, seed)


@functools.lru_cache(maxsize=8)
def _cached_predict(bundle: Bundle) -> Callable:
    return bundle.predict_fn()


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def format_version(fmt) -> int | None:
    """The version number of a format string "gan_jax.bundle/<n>"; None for another."""
    name, _, version = str(fmt).rpartition("/")
    return int(version) if name == FORMAT_NAME and version.isdigit() else None


def seal(params: dict[str, Any], meta: dict[str, Any], model_version: str | None, name: str) -> Bundle:
    """Adds the model version and checksum to `meta` (JSON round-tripped, so that what `load`
    gives back checksums the same) and returns the bundle."""
    try:
        meta = json.loads(json.dumps(meta))
    except (TypeError, ValueError) as e:
        raise BundleError(f"bundle metadata must be JSON-serialisable ({e})") from None
    meta["model_version"] = model_version or ""
    meta["checksum"] = checksum(params, meta)
    if not model_version:
        meta["model_version"] = f"{name}-{meta['checksum'][:12]}"
        meta["checksum"] = checksum(params, meta)
    return _from_parts(params, meta)


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

    meta = {
        **bundle.meta,
        "config": bundle.config.to_dict(),
        "label_names": list(bundle.label_names),
        "model_version": bundle.model_version,
        **kind_of(bundle.meta).kind_meta(bundle),
    }
    args = ocp.args.Composite(params=ocp.args.StandardSave(bundle.params), meta=ocp.args.JsonSave(meta))
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
        ckptr.save(os.path.join(local, MODEL_DIR), args=args, force=True)
    listing = {
        "format": FORMAT,
        "model_version": bundle.model_version,
        "checksum": bundle.checksum,
        "files": manifest.digests(local, exclude=(MANIFEST,)),
    }
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
    kind, config = _check_meta(meta, listing, where)
    params = _restore_params(local, where, params_template(kind, config, len(meta.get("feature_names", ()))))
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
    got = manifest.get("format") if isinstance(manifest, dict) else None
    version = format_version(got)
    if version is not None and version < FORMAT_VERSION:
        raise BundleError(
            f"{where}: bundle format {got!r} was written by an older gan_jax and is no longer read "
            f"(this version reads {FORMAT!r}); export the model again with gan-jax export"
        )
    if version is not None and version > FORMAT_VERSION:
        raise BundleError(
            f"{where}: bundle format {got!r} is newer than this gan_jax reads ({FORMAT!r}); "
            "upgrade gan_jax to serve it"
        )
    if got != FORMAT:
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


def _check_meta(meta: dict[str, Any], manifest: dict[str, Any], where: str) -> tuple[str, Any]:
    """(kind, config) of valid metadata; BundleError naming the first problem otherwise."""
    if meta.get("kind", "table") not in KINDS:
        raise BundleError(
            f"{where}: bundle kind {meta['kind']!r} is not supported (expected one of {list(KINDS)})"
        )
    kind = kind_of(meta)
    missing = [k for k in (*_META_KEYS, *kind.meta_keys, "checksum") if k not in meta]
    if missing:
        raise BundleError(f"{where}: bundle metadata lacks the fields {missing}")
    if meta["format"] != FORMAT:
        raise BundleError(f"{where}: metadata format {meta['format']!r} is not {FORMAT!r}")
    if meta["checksum"] != manifest.get("checksum"):
        raise BundleError(f"{where}: the manifest and the metadata disagree on the checksum")
    kind.check_meta(meta, where)
    if not (isinstance(meta["label_names"], list) and len(meta["label_names"]) == 2):
        raise BundleError(f"{where}: label_names must name the two classes (benign, malignant)")
    try:
        return kind.name, kind.config_from_dict(meta["config"])
    except (TypeError, ValueError) as e:
        raise BundleError(f"{where}: the bundle's config is not valid here ({e})") from None


def _restore_params(local: str, where: str, template: dict[str, Any]) -> dict[str, Any]:
    import orbax.checkpoint as ocp

    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            args = ocp.args.Composite(params=ocp.args.StandardRestore(template))
            params = ckptr.restore(os.path.join(local, MODEL_DIR), args=args).params
    except Exception as e:  # noqa: BLE001
        raise BundleError(
            f"{where}: the parameters do not match the bundle's config ({_first_line(e)})"
        ) from None
    check_shapes(params, template, where)
    return jax.tree.map(np.asarray, params)


def check_shapes(params: dict[str, Any], template: dict[str, Any], where: str) -> None:
    got_paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
    want_paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(template)]
    if got_paths != want_paths:
        extra, lacking = sorted(set(got_paths) - set(want_paths)), sorted(set(want_paths) - set(got_paths))
        raise BundleError(
            f"{where}: the parameters do not match the config: unexpected {extra[:3]}, missing {lacking[:3]}"
        )
    for (path, want), got in zip(jax.tree_util.tree_leaves_with_path(template), jax.tree.leaves(params)):
        if np.shape(got) != want.shape or np.asarray(got).dtype != want.dtype:
            raise BundleError(
                f"{where}: parameter {jax.tree_util.keystr(path)} has shape "
                f"{np.shape(got)}, expected {want.shape} from the config"
            )


def params_template(kind: str, config, n_features: int = 0) -> dict[str, Any]:
    """Zeros shaped like a `kind` bundle's params for `config` (no compute: shapes only).
    `n_features` is the table's width (unused for images)."""
    shapes = KINDS[kind].template(config, n_features)
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def _from_parts(params: dict[str, Any], meta: dict[str, Any]) -> Bundle:
    config = kind_of(meta).config_from_dict(meta["config"])
    rest = {k: v for k, v in meta.items() if k not in ("config", "feature_names", "label_names")}
    return Bundle(
        config=config,
        params=params,
        feature_names=tuple(meta.get("feature_names", ())),
        label_names=tuple(meta["label_names"]),
        model_version=meta["model_version"],
        meta=rest,
    )


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"
