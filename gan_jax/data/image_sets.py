"""One entry point for labelled image sets: `open_image_set(uri)` gives the data set's splits as
random-access sources, `read_image_set` reads them into memory (images, labels, the split of
each image), `load_image_set` does both.

URI forms (local path, s3:// or gs://):
  * "nuclei": the generated SYNTHETIC demo set (`gan_jax.data.nuclei`), splits train/test;
  * "tfds:<name>" or a bare catalog name ("patch_camelyon", "curated_breast_imaging_ddsm"):
    a TFDS catalog dataset prepared (array_record) under `data_dir`;
  * "<file>.npz": the MedMNIST/BreastMNIST layout (`train_images`, `train_labels`, `val_*`,
    `test_*`), read into memory;
  * anything else: a folder of PNG/JPEG files, `<split>/<label>/*` or `<label>/*` (no split);
    a remote folder is downloaded to a temporary folder first.

Labels: 1 = malignant. A class mapping (`malignant`: the folder names or integer labels that
mean malignant, every other class benign) is needed whenever the data do not say it
themselves: a folder whose classes are not two with one of them named like `MALIGNANT_NAMES`, or
an `.npz` with labels outside {0, 1} (BreastMNIST's coding, 0 = malignant, is the `.npz`
default). Catalog datasets carry their own mapping (`images.CATALOG`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from gan_jax.artifacts import storage
from gan_jax.data import image_folder, nuclei
from gan_jax.data.images import BINARY_LABELS, CATALOG, DataError, ImageSource, load_catalog, load_npz

# A class folder with one of these names (any case) is the malignant class of a two-class folder.
MALIGNANT_NAMES = ("malignant", "malignancy", "cancer", "tumor", "tumour", "positive", "1")
NPZ_SPLITS = ("train", "val", "test")
READ_CHUNK = 1024  # images per read: bounds the temporary memory of decoding


class OpenImageSet(NamedTuple):
    sources: dict[str, ImageSource]  # the data set's own splits; one split `image_folder.UNSPLIT` if none
    label_names: tuple[str, str]  # (not malignant, malignant)
    source: str  # the URI, redacted, for messages and results
    notes: tuple[str, ...]  # how labels and shapes were read, said in results


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """A labelled image set held in memory."""

    images: np.ndarray  # [N, H, W, C] uint8
    labels: np.ndarray  # [N] int32, 1 = malignant
    split: np.ndarray | None  # [N] str: the data set's own split of each image; None: it has none
    label_names: tuple[str, str]
    source: str
    notes: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])


def open_image_set(
    uri: str | os.PathLike,
    *,
    image_shape: Sequence[int] | None = None,
    data_dir: str | os.PathLike | None = None,
    malignant: Sequence[str | int] | None = None,
) -> OpenImageSet:
    """Every split of the image set at `uri` (forms in the module docstring).

    Args:
      image_shape: (H, W, C) to convert and resize every image to (`images.resize`); None: the
        data's own shape (a folder's files must then all have one shape).
      data_dir: the TFDS data directory (catalog datasets, and the cache a folder is written to).
      malignant: the class mapping (folder names or integer labels that mean malignant).
    Raises:
      DataError: the data cannot be read or mapped to two classes; the message names the file.
    """
    uri = storage.check_uri(uri)
    uri = uri if storage.is_remote(uri) else os.path.expanduser(uri)
    shape = None if image_shape is None else tuple(int(s) for s in image_shape)
    malignant = tuple(malignant) if malignant else None
    name = uri[len("tfds:") :] if uri.startswith("tfds:") else uri
    if uri == "nuclei":
        splits = {s: nuclei.load(s, data_dir=data_dir, image_shape=shape) for s in nuclei.SPLIT_SIZES}
        return OpenImageSet(splits, BINARY_LABELS, uri, ("SYNTHETIC images, not patient data",))
    if uri.startswith("tfds:") or (name in CATALOG and not os.path.exists(uri)):
        return _open_catalog(name, shape, data_dir, malignant)
    if uri.lower().endswith(".npz"):
        return _open_npz(uri, shape, malignant)
    if storage.is_remote(uri):
        local = tempfile.mkdtemp(prefix="gan_jax_images_")
        try:
            storage.download_dir(uri, local)
            return _open_folder(local, shape, data_dir, malignant, storage.redact(uri))
        finally:
            shutil.rmtree(local, ignore_errors=True)  # the TFDS dataset written from it stays
    return _open_folder(uri, shape, data_dir, malignant, uri)


def _open_catalog(name, shape, data_dir, malignant) -> OpenImageSet:
    if name not in CATALOG:
        raise DataError(f"tfds:{name}: unknown catalog dataset; expected one of {sorted(CATALOG)}")
    if malignant:
        raise DataError(f"tfds:{name}: catalog datasets carry their own class mapping; drop data.malignant")
    spec = CATALOG[name]
    splits = {s: load_catalog(name, s, data_dir, shape) for s in spec.splits}
    return OpenImageSet(splits, spec.label_names, f"tfds:{spec.tfds_name}", (spec.note,))


def _open_npz(uri, shape, malignant) -> OpenImageSet:
    present = _npz_splits(uri)
    if malignant is not None:
        try:
            malignant = tuple(int(m) for m in malignant)
        except ValueError:
            raise DataError(
                f"{storage.redact(uri)}: data.malignant {malignant}; expected integer labels"
            ) from None
    splits = {s: load_npz(uri, s, malignant, shape) for s in present}
    coding = (
        "BreastMNIST's coding, 0 = malignant"
        if malignant is None
        else f"labels {list(malignant)} = malignant"
    )
    return OpenImageSet(splits, BINARY_LABELS, storage.redact(uri), (f"labels read with {coding}",))


def _npz_splits(uri: str) -> list[str]:
    """The MedMNIST splits the file holds (its keys only; no array is read)."""
    where = storage.redact(uri)
    try:
        with storage.open_uri(uri, "rb") as f, np.load(f, allow_pickle=False) as npz:
            keys = set(npz.files)
    except FileNotFoundError as e:
        raise DataError(f"{where}: file not found") from e
    except (OSError, ValueError) as e:
        raise DataError(f"{where}: not a readable .npz file ({e})") from e
    present = [s for s in NPZ_SPLITS if f"{s}_images" in keys]
    if not present:
        raise DataError(
            f"{where}: no train_/val_/test_images arrays (found {sorted(keys)}); expected the MedMNIST keys"
        )
    return present


def _open_folder(root, shape, data_dir, malignant, where) -> OpenImageSet:
    builder = image_folder.build_folder_dataset(root, shape, data_dir)
    names = tuple(builder.info.features["label"].names)
    label_map, label_names, note = folder_class_map(names, malignant, where)
    splits = {s: image_folder.folder_split(builder, where, s, label_map) for s in sorted(builder.info.splits)}
    return OpenImageSet(splits, label_names, where, (note,))


def folder_class_map(
    names: Sequence[str], malignant: Sequence[str | int] | None, where: str
) -> tuple[tuple[int, ...], tuple[str, str], str]:
    """(class index → 0/1, the two label names, a note) for class folders `names`.

    Raises:
      DataError: no mapping given and the classes are not two with one named malignant, or a
        mapping naming no folder or every folder.
    """
    if malignant is None:
        positive = [n for n in names if n.lower() in MALIGNANT_NAMES]
        if len(names) != 2 or len(positive) != 1:
            raise DataError(
                f"{where}: class folders {list(names)}; which are malignant? Expected two folders, "
                f"one named like {list(MALIGNANT_NAMES)}, or a class mapping, e.g. "
                f"--set data.malignant=({names[-1]!r},)"
            )
        malignant = positive
    chosen = {str(m) for m in malignant}
    unknown = sorted(chosen - set(names))
    if unknown or len(chosen) == len(names):
        raise DataError(
            f"{where}: data.malignant {sorted(chosen)} must name some but not all of the class folders "
            f"{list(names)}" + (f" ({unknown} are not among them)" if unknown else "")
        )
    label_map = tuple(int(n in chosen) for n in names)
    benign = [n for n in names if n not in chosen]
    label_names = ("/".join(benign), "/".join(n for n in names if n in chosen))
    return label_map, label_names, f"class folders {label_names[1]} = malignant, {label_names[0]} = benign"


def read_image_set(
    opened: OpenImageSet,
    splits: Sequence[str] | None = None,
    max_images: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """Reads `splits` (default all) of an opened set into memory.

    Args:
      max_images: at most this many images in all: each split keeps a uniform random subset of
        its images in proportion to its size, drawn from `seed` (None: every image).
    Raises:
      DataError: an unknown or empty split, a split holding one class only, or splits of
        different shapes.
    """
    splits = list(opened.sources) if splits is None else list(splits)
    if not splits:
        raise DataError(f"{opened.source}: no splits to read")
    missing = [s for s in splits if s not in opened.sources]
    if missing:
        raise DataError(f"{opened.source}: no split(s) {missing}; found {sorted(opened.sources)}")
    sizes = {s: len(opened.sources[s]) for s in splits}
    total = sum(sizes.values())
    parts, notes = [], list(opened.notes)
    for i, split in enumerate(splits):
        where = f"{opened.source} split {split!r}"
        if sizes[split] == 0:
            raise DataError(f"{where}: an empty split; expected images")
        rows = np.arange(sizes[split])
        if max_images is not None and total > max_images:
            keep = max(2, round(max_images * sizes[split] / total))
            rows = np.sort(np.random.default_rng([seed, i]).choice(rows, min(keep, len(rows)), replace=False))
        images, labels = _read(opened.sources[split], rows)
        if len(np.unique(labels)) < 2:
            raise DataError(
                f"{where}: every one of its {len(labels)} images is of class "
                f"{opened.label_names[int(labels[0])]!r}; a classifier needs both classes"
            )
        parts.append((split, images, labels))
    shapes = {p[1].shape[1:] for p in parts}
    if len(shapes) > 1:
        raise DataError(f"{opened.source}: splits of different shapes {sorted(shapes)}; give an image_shape")
    if max_images is not None and total > max_images:
        notes.append(
            f"a uniform random subset of {sum(len(p[2]) for p in parts)} of {total} images (seed {seed})"
        )
    no_split = splits == [image_folder.UNSPLIT]
    return ImageSet(
        images=np.concatenate([p[1] for p in parts]),
        labels=np.concatenate([p[2] for p in parts]),
        split=None if no_split else np.concatenate([np.full(len(p[2]), p[0]) for p in parts]),
        label_names=opened.label_names,
        source=opened.source,
        notes=tuple(notes),
    )


def _read(source: ImageSource, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((len(rows), *source.image_shape), np.uint8)
    labels = np.empty(len(rows), np.int32)
    for lo in range(0, len(rows), READ_CHUNK):
        images[lo : lo + READ_CHUNK], labels[lo : lo + READ_CHUNK] = source.read(rows[lo : lo + READ_CHUNK])
    return images, labels


def load_image_set(
    uri: str | os.PathLike,
    *,
    image_shape: Sequence[int] | None = None,
    data_dir: str | os.PathLike | None = None,
    malignant: Sequence[str | int] | None = None,
    splits: Sequence[str] | None = None,
    max_images: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """`read_image_set(open_image_set(uri, ...), splits, max_images, seed)`."""
    opened = open_image_set(uri, image_shape=image_shape, data_dir=data_dir, malignant=malignant)
    return read_image_set(opened, splits, max_images, seed)
