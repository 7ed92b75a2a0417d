"""Image datasets as random-access sources of uint8 numpy arrays.

Every loader returns an `ImageSource`: `len(source)` uint8 images [H, W, C] and int32 labels
(1 = malignant), read in any order with `source.read(indices)`; no JAX here.

Formats (`gan_jax.data.image_sets.open_image_set` picks one by the form of the URI):
  * a folder of PNG/JPEG files `root/<split>/<label>/*` or `root/<label>/*`
    (`gan_jax.data.image_folder`);
  * TFDS catalog datasets prepared in the array_record format (`patch_camelyon`,
    `curated_breast_imaging_ddsm`) → `load_catalog`;
  * the MedMNIST `.npz` format (BreastMNIST) → `load_npz`;
  * the generated synthetic nuclei (`gan_jax.data.nuclei`).

Pixels: every file is decoded by `pil_to_model_input` (training, `predict` and the server's
uploads alike). Grey modes (L, 1, LA) give one channel, everything else three; 16-bit greys are
scaled (not clipped) to 8 bits, palette images are converted through their palette, an alpha
channel is dropped. A size change is one method only, `resize`: PIL's bilinear filter (with
its antialiasing support when shrinking).

TensorFlow is never needed to *read*: TFDS data sources decode with PIL. It is needed to
*prepare* catalog datasets (their builders encode numpy images with `tf.image`), for
`tfds.load`/`as_dataset` (they return `tf.data`) and for the tfrecord format.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from gan_jax.artifacts import storage
from gan_jax.data.wdbc import DataError

BINARY_LABELS: tuple[str, str] = ("benign", "malignant")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageSource:
    """Random access to a labelled image set: `len(source)`, `source.read(indices)`.

    Attributes:
      image_shape: (H, W, C) of every image `read` returns.
      label_names: class names in label order.
      source: where the data came from (a path or URI), for messages and results.
      metadata: free-form facts about the data (e.g. {"synthetic": True}).
    """

    image_shape: tuple[int, int, int]
    label_names: tuple[str, ...]
    source: str
    metadata: dict[str, Any]

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images [n, H, W, C] uint8 and labels [n] int32 at `indices` [n] (any order)."""
        raise NotImplementedError

    def labels(self) -> np.ndarray:
        """All labels [N] int32 (for stratified folds); reads every record by default."""
        return self.read(np.arange(len(self)))[1]


@dataclasses.dataclass
class ArraySource(ImageSource):
    """An image set held in memory."""

    images: np.ndarray  # [N, H, W, C] uint8
    label_array: np.ndarray  # [N] int32
    label_names: tuple[str, ...] = BINARY_LABELS
    source: str = "<memory>"
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.images[indices], self.label_array[indices]

    def labels(self) -> np.ndarray:
        return self.label_array


class TfdsSource(ImageSource):
    """A TFDS data source (array_record, random access) with records {"image", "label"}.

    Images of another size or channel count are resized / converted to `image_shape`; labels
    go through `label_map` (original label → ours) when one is given.
    """

    def __init__(
        self,
        data_source,
        image_shape: Sequence[int],
        label_names: Sequence[str],
        source: str,
        label_map: Sequence[int] | None = None,
        metadata: dict[str, Any] | None = None,
        label_source=None,
    ):
        """`label_source`: the same records opened with image decoding skipped
        (`skip_image_decoding`), so `labels()` need not decode every image."""
        self._data = data_source
        self._label_source = label_source
        self.image_shape = tuple(int(s) for s in image_shape)
        self.label_names = tuple(label_names)
        self.source = source
        self._label_map = None if label_map is None else np.asarray(label_map, np.int32)
        self.metadata = dict(metadata or {})

    def __len__(self) -> int:
        return len(self._data)

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = [int(i) for i in np.asarray(indices).reshape(-1)]
        # One record at a time: as fast as `__getitems__` on array_record files once the OS
        # caches them, and it also works on TFDS's mock data sources.
        records = [self._data[i] for i in indices]
        images = np.stack([self._fit(r["image"], i) for r, i in zip(records, indices)])
        labels = np.asarray([int(r["label"]) for r in records], np.int32)
        if self._label_map is not None:
            labels = self._label_map[labels]
        return images, labels

    def labels(self) -> np.ndarray:
        if self._label_source is None:
            return super().labels()
        labels = np.asarray([int(self._label_source[i]["label"]) for i in range(len(self))], np.int32)
        return labels if self._label_map is None else self._label_map[labels]

    def _fit(self, image: np.ndarray, index: int) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.dtype != np.uint8:
            raise DataError(
                f"{self.source}: record {index} has an image of shape {image.shape} and dtype "
                f"{image.dtype}; expected [H, W, C] uint8"
            )
        if image.shape == self.image_shape:
            return image
        return resize(image, self.image_shape)


def resize(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """uint8 [h, w, c] → uint8 `shape` (H, W, C) with PIL's antialiased bilinear resize; C is
    1 (grey) or 3 (RGB), converted from the image's channels."""
    from PIL import Image

    h, w, c = shape
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image[..., :3])
    pil = pil.convert("L" if c == 1 else "RGB")
    if pil.size != (w, h):
        pil = pil.resize((w, h), Image.BILINEAR)
    out = np.asarray(pil, np.uint8)
    return out[..., None] if c == 1 else out


def decode_image_file(path: str, shape: Sequence[int]) -> np.ndarray:
    """Reads a PNG/JPEG file as uint8 `shape` (H, W, C).

    Raises:
      DataError: the file is unreadable, truncated, not a PNG/JPEG image or a decompression
        bomb (named).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e})") from e
    return decode_image_bytes(data, shape, path)


def decode_image_bytes(data: bytes, shape: Sequence[int], name: str) -> np.ndarray:
    """The encoded PNG/JPEG `data` of the file `name` as uint8 `shape` (H, W, C).

    Raises:
      DataError: not a PNG/JPEG image, truncated, or a decompression bomb; names `name`.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as pil:
            if pil.format not in ("PNG", "JPEG"):
                raise DataError(f"{name}: a {pil.format} image; expected PNG or JPEG")
            pil.load()
            return pil_to_model_input(pil, shape)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{name}: cannot be read as a PNG or JPEG image ({e})") from e


def pil_to_model_input(pil, shape: Sequence[int]) -> np.ndarray:
    """A decoded PIL image → uint8 `shape` (H, W, C), as training reads every image file (the
    server's uploads too, so it sees the pixels the model did). 16-bit greys (mammograms
    exported from DICOM) are scaled, not clipped, to 8 bits."""
    if pil.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(pil).astype(np.float64)
        array = np.round(np.clip(wide, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8)
    else:
        array = np.asarray(pil.convert("L" if pil.mode in ("L", "1", "LA") else "RGB"))
    return resize(array if array.ndim == 3 else array[..., None], shape)


# ---------------------------------------------------------------------------------------- npz


def load_npz(
    path: str | os.PathLike,
    split: str = "train",
    malignant: Sequence[int] | None = None,
    image_shape: Sequence[int] | None = None,
) -> ArraySource:
    """One split of a MedMNIST-style `.npz` (keys `<split>_images`, `<split>_labels`).

    Args:
      path: the `.npz` file (local, s3:// or gs://), e.g. `breastmnist.npz`.
      split: "train", "val" or "test".
      malignant: the class mapping: the file's labels that mean malignant (→ 1; every other
        label → 0). Default (None): BreastMNIST's coding, 0 = malignant and 1 = normal/benign,
        and any label outside {0, 1} is an error.
      image_shape: (H, W, C) to resize to; default: the file's size.
    Raises:
      DataError: a missing file or key, or arrays of the wrong shape, dtype or labels.
    """
    path = os.fspath(path)
    try:
        with np.load(_local_or_bytes(path), allow_pickle=False) as npz:
            keys = set(npz.files)
            ik, lk = f"{split}_images", f"{split}_labels"
            if ik not in keys or lk not in keys:
                raise DataError(
                    f"{path}: no {ik!r}/{lk!r} arrays (found {sorted(keys)}); expected the "
                    "MedMNIST keys train_/val_/test_ images and labels"
                )
            images, labels = npz[ik], npz[lk]
    except (FileNotFoundError, IsADirectoryError) as e:
        raise DataError(f"{path}: file not found") from e
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from e
    images = _check_npz_images(images, path, split)
    labels = _check_npz_labels(labels, len(images), path, split, malignant)
    labels = np.isin(labels, (0,) if malignant is None else malignant).astype(np.int32)
    if image_shape is not None and tuple(image_shape) != images.shape[1:]:
        images = np.stack([resize(im, image_shape) for im in images])
    return ArraySource(images, labels, BINARY_LABELS, f"{path}:{split}", {"format": "medmnist-npz"})


def _check_npz_images(images: np.ndarray, path: str, split: str) -> np.ndarray:
    if images.dtype != np.uint8:
        raise DataError(f"{path}: {split}_images has dtype {images.dtype}; expected uint8")
    if images.ndim == 3:
        images = images[..., None]  # MedMNIST stores grey images as [N, H, W]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise DataError(
            f"{path}: {split}_images has shape {images.shape}; expected [N, H, W] or "
            "[N, H, W, 1|3] with N > 0"
        )
    return images


def _local_or_bytes(path: str):
    """A local path as is; a remote URI (s3://, gs://) read into memory through storage."""
    if not storage.is_remote(path):
        return path
    try:
        return io.BytesIO(storage.read_bytes(path))
    except FileNotFoundError as e:
        raise DataError(f"{storage.redact(path)}: file not found") from e


def _check_npz_labels(
    labels: np.ndarray, n: int, path: str, split: str, malignant: Sequence[int] | None
) -> np.ndarray:
    shape = labels.shape
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]  # MedMNIST stores labels as [N, 1]
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path}: {split}_labels has shape {shape} and dtype {labels.dtype}; "
            f"expected [{n}] or [{n}, 1] integers"
        )
    bad = np.setdiff1d(labels, [0, 1])
    if bad.size and malignant is None:
        raise DataError(
            f"{path}: {split}_labels has values {bad.tolist()} outside {{0, 1}}; expected 0/1 "
            "(BreastMNIST: 0 = malignant) or a class mapping naming the malignant labels "
            "(e.g. --set data.malignant=(3,4))"
        )
    return labels


# ------------------------------------------------------------------------------------ catalog


@dataclasses.dataclass(frozen=True)
class CatalogSpec:
    """How a TFDS catalog dataset maps onto our binary task."""

    tfds_name: str
    image_shape: tuple[int, int, int]  # the size we resize to by default
    label_names: tuple[str, ...]
    label_map: tuple[int, ...] | None  # the dataset's label → ours; None = keep
    note: str
    splits: tuple[str, ...] = ("train", "validation", "test")


CATALOG: dict[str, CatalogSpec] = {
    "patch_camelyon": CatalogSpec(
        "patch_camelyon",
        (96, 96, 3),
        ("no tumour", "tumour"),
        None,
        "96×96 H&E lymph-node patches; 1 = metastatic tissue in the centre 32×32.",
    ),
    "curated_breast_imaging_ddsm": CatalogSpec(
        "curated_breast_imaging_ddsm/patches",
        (224, 224, 1),
        ("not malignant", "malignant"),
        # BACKGROUND, BENIGN_CALCIFICATION, BENIGN_MASS, MALIGNANT_CALCIFICATION, MALIGNANT_MASS
        (0, 0, 0, 1, 1),
        "224×224 mammography patches (config `patches`); background and benign → 0.",
    ),
}


def load_catalog(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    image_shape: Sequence[int] | None = None,
) -> TfdsSource:
    """A TFDS catalog dataset, read through `tfds.data_source` (no TensorFlow needed to read).

    The dataset must already be prepared in the array_record format under `data_dir` (default
    ~/tensorflow_datasets); preparing it needs TensorFlow once (see the README).

    Args:
      name: a key of `CATALOG`.
      split: a TFDS split ("train", "validation", "test", or slices like "train[:10%]").
      image_shape: (H, W, C) to resize to; default the spec's.
    Raises:
      DataError: unknown name, the dataset not prepared, or prepared as tfrecord.
    """
    if name not in CATALOG:
        raise DataError(f"tfds:{name}: unknown catalog dataset; expected one of {sorted(CATALOG)}")
    spec = CATALOG[name]
    tfds = import_tfds()
    try:
        # download=False: never try the network (it would hang offline, and the catalog
        # datasets here need manual downloads or TensorFlow to prepare anyway).
        data = tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=False)
        labels_only = tfds.data_source(
            spec.tfds_name, split=split, data_dir=data_dir, download=False, decoders=skip_image_decoding()
        )
    except Exception as e:  # TFDS raises several unrelated types here; all mean "not usable"
        raise DataError(
            f"tfds:{spec.tfds_name} (data_dir={data_dir or '~/tensorflow_datasets'}), split "
            f"{split!r}: cannot open it as a data source ({type(e).__name__}: {e}). Expected the "
            "dataset prepared with `--file_format=array_record`; preparing it needs TensorFlow "
            "(pip install 'gan_jax[tfds-build]'), see the README"
        ) from e
    return TfdsSource(
        data,
        image_shape or spec.image_shape,
        spec.label_names,
        f"tfds:{spec.tfds_name}:{split}",
        spec.label_map,
        {"note": spec.note},
        labels_only,
    )


def skip_image_decoding() -> dict:
    """TFDS decoders that leave the "image" feature as encoded bytes (for reading labels)."""
    return {"image": import_tfds().decode.SkipDecoding()}


def import_tfds():
    """tensorflow_datasets, or a DataError saying which extra installs it."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError("image datasets need tensorflow-datasets: pip install 'gan_jax[images]'") from e
    return tfds


def default_data_dir() -> str:
    """Where TFDS datasets are read and written: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))
