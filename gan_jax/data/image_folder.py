"""A folder of images `root/<split>/<label>/*.png|jpg` as a TFDS dataset (array_record).

The first load decodes every file, resizes it to the configured shape, re-encodes it as PNG
and writes a TFDS array_record dataset (no TensorFlow); later loads of an unchanged folder
reuse it. The dataset's config name fingerprints the file list (paths, sizes, mtimes) and the
shape, so a changed folder or size is written afresh.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from gan_jax.data.images import (
    IMAGE_SUFFIXES,
    DataError,
    TfdsSource,
    decode_image_file,
    import_tfds,
    skip_image_decoding,
)

# Hidden files and OS litter (.DS_Store, Thumbs.db) are skipped, not errors.
_IGNORED_PREFIXES = (".", "_")


def scan_folder(
    root: str, label_names: Sequence[str] | None = None
) -> tuple[dict[str, list[tuple[str, int]]], tuple[str, ...]]:
    """Every image under `root/<split>/<label>/`.

    Returns:
      ({split: [(file path, label index)]}, label names in label order).

    Args:
      label_names: the class folders in label order; default: the sorted union of the label
        folders of all splits (so "benign" < "malignant" gives malignant = 1).
    Raises:
      DataError: no such folder, no splits, an unknown label folder or an empty split.
    """
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder; expected <root>/<split>/<label>/*.png|jpg")
    splits = sorted(d for d in os.listdir(root) if _visible(d) and os.path.isdir(os.path.join(root, d)))
    if not splits:
        raise DataError(f"{root}: no split folders; expected <root>/<split>/<label>/*.png|jpg")
    found = {s: _label_dirs(os.path.join(root, s)) for s in splits}
    names = list(label_names) if label_names else sorted({n for ls in found.values() for n in ls})
    if len(names) < 2:
        raise DataError(f"{root}: label folders {names}; a classifier needs at least two classes")
    files = {}
    for split, labels in found.items():
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise DataError(f"{root}/{split}: label folders {unknown} are not among {names}")
        files[split] = [
            (os.path.join(root, split, label, f), names.index(label))
            for label in labels
            for f in sorted(os.listdir(os.path.join(root, split, label)))
            if _visible(f) and f.lower().endswith(IMAGE_SUFFIXES)
        ]
        if not files[split]:
            raise DataError(f"{root}/{split}: no .png/.jpg/.jpeg files in its label folders")
    return files, tuple(names)


def _visible(name: str) -> bool:
    return not name.startswith(_IGNORED_PREFIXES)


def _label_dirs(split_dir: str) -> list[str]:
    names = os.listdir(split_dir)
    return sorted(d for d in names if _visible(d) and os.path.isdir(os.path.join(split_dir, d)))


def fingerprint(files: dict[str, list[tuple[str, int]]], shape: Sequence[int], names: Sequence[str]) -> str:
    """A short hash of what the written dataset depends on."""
    h = hashlib.sha256(repr((tuple(shape), tuple(names))).encode())
    for split in sorted(files):
        for path, label in files[split]:
            st = os.stat(path)
            h.update(f"{split}\0{os.path.abspath(path)}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def build_folder_dataset(
    root: str | os.PathLike,
    image_shape: Sequence[int] = (64, 64, 3),
    data_dir: str | os.PathLike | None = None,
    label_names: Sequence[str] | None = None,
):
    """Writes (or reuses) the TFDS dataset of the folder `root`; returns the prepared builder.

    Raises:
      DataError: the folder layout is wrong or a file is not a readable PNG/JPEG (named).
    """
    from gan_jax.data import image_tfds

    import_tfds()
    root = os.fspath(root)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise DataError(f"{root}: image_shape {shape}; expected (H, W, 1) or (H, W, 3)")
    files, names = scan_folder(root, label_names)

    def examples(split):
        for path, label in files[split]:
            rel = os.path.relpath(path, root)
            yield rel, image_tfds.encode_png(decode_image_file(path, shape)), label

    config = f"folder_{shape[0]}x{shape[1]}x{shape[2]}_{fingerprint(files, shape, names)}"
    try:
        return image_tfds.write_dataset(
            data_dir or _default_data_dir(),
            config,
            {s: (lambda s=s: examples(s)) for s in files},
            shape,
            names,
            description=f"Images from the folder {os.path.abspath(root)}",
            metadata={"source": os.path.abspath(root)},
        )
    except Exception as e:
        # TFDS re-wraps errors raised inside generators; surface ours unchanged.
        cause = _find_data_error(e)
        if cause is not None:
            raise cause from None
        raise


def load_folder(
    root: str | os.PathLike,
    split: str = "train",
    image_shape: Sequence[int] = (64, 64, 3),
    data_dir: str | os.PathLike | None = None,
    label_names: Sequence[str] | None = None,
) -> TfdsSource:
    """One split of a folder of images, read through the TFDS data source.

    Args:
      root: the folder holding `<split>/<label>/*.png|jpg`.
      image_shape: (H, W, C) every image is resized to (C = 1 grey, 3 RGB).
      data_dir: where the TFDS dataset is written (default ~/tensorflow_datasets or
        $TFDS_DATA_DIR).
      label_names: class folders in label order (default: sorted folder names).
    """
    builder = build_folder_dataset(root, image_shape, data_dir, label_names)
    if split not in builder.info.splits:
        raise DataError(f"{root}: no split {split!r}; found {sorted(builder.info.splits)}")
    names = tuple(builder.info.features["label"].names)
    return TfdsSource(
        builder.as_data_source(split=split),
        image_shape,
        names,
        f"{os.fspath(root)}:{split}",
        metadata={"tfds_dir": os.fspath(builder.data_path)},
        label_source=builder.as_data_source(split=split, decoders=skip_image_decoding()),
    )


def _default_data_dir() -> str:
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def _find_data_error(e: BaseException | None) -> DataError | None:
    seen = 0
    while e is not None and seen < 20:
        if isinstance(e, DataError):
            return e
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None
