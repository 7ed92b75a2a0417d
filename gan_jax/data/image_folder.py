"""A folder of PNG/JPEG files as a TFDS dataset (array_record), read without TensorFlow.

Two layouts: `root/<split>/<label>/*` (the data set's own split, e.g. train/val/test) or
`root/<label>/*` (no split: one split named `UNSPLIT`). Class folders are sorted by name.

Shape: by default every image must have the size and channel count of the others (the data's
own shape; a file that differs is named); with an `image_shape` every file is converted and
resized to it (`images.resize`). The first load decodes every file, re-encodes it as PNG and
writes a TFDS array_record dataset (no TensorFlow); later loads of an unchanged folder reuse
it. The dataset's config name fingerprints the file list (paths, sizes, mtimes) and the
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
    default_data_dir,
    import_tfds,
    skip_image_decoding,
)

UNSPLIT = "unsplit"  # the one split of a `root/<label>/*` folder
# Hidden files and OS litter (.DS_Store, Thumbs.db) are skipped, not errors.
_IGNORED_PREFIXES = (".", "_")
_GREY_MODES = ("L", "1", "LA", "I;16", "I;16B", "I;16L", "I")

Files = dict[str, list[tuple[str, int]]]  # split -> [(file path, class index)]


def scan_folder(root: str, label_names: Sequence[str] | None = None) -> tuple[Files, tuple[str, ...]]:
    """Every image file under `root/<split>/<label>/` or `root/<label>/`.

    Returns:
      ({split: [(file path, class index)]}, class folder names in class order); a folder with
      no split has the one split `UNSPLIT`.
    Args:
      label_names: the class folders in class order; default: the sorted union of the class
        folders of all splits.
    Raises:
      DataError: no such folder, a layout that is neither, one class only, an unknown class
        folder or an empty split.
    """
    if not os.path.isdir(root):
        raise DataError(
            f"{root}: not a folder; expected <root>/<split>/<label>/*.png|jpg or <root>/<label>/*"
        )
    tops = _subdirs(root)
    if not tops:
        raise DataError(
            f"{root}: no sub-folders; expected <root>/<split>/<label>/*.png|jpg or <root>/<label>/*"
        )
    if any(_image_names(os.path.join(root, d)) for d in tops):
        found = {UNSPLIT: tops}  # root/<label>/*
        class_dir = lambda split, label: os.path.join(root, label)
    else:
        found = {s: _subdirs(os.path.join(root, s)) for s in tops}
        class_dir = lambda split, label: os.path.join(root, split, label)
    names = list(label_names) if label_names else sorted({n for ls in found.values() for n in ls})
    if len(names) < 2:
        raise DataError(f"{root}: class folders {names}; a classifier needs at least two classes")
    files = {}
    for split, labels in found.items():
        where = root if split == UNSPLIT else f"{root}/{split}"
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise DataError(f"{where}: class folders {unknown} are not among {names}")
        files[split] = [
            (os.path.join(class_dir(split, label), f), names.index(label))
            for label in labels
            for f in _image_names(class_dir(split, label))
        ]
        if not files[split]:
            raise DataError(f"{where}: an empty split, no .png/.jpg/.jpeg files in its class folders")
    return files, tuple(names)


def _visible(name: str) -> bool:
    return not name.startswith(_IGNORED_PREFIXES)


def _subdirs(folder: str) -> list[str]:
    names = os.listdir(folder)
    return sorted(d for d in names if _visible(d) and os.path.isdir(os.path.join(folder, d)))


def _image_names(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if _visible(f) and f.lower().endswith(IMAGE_SUFFIXES))


def data_shape(files: Files) -> tuple[int, int, int]:
    """The (H, W, C) every file has, read from the file headers (no decoding); C = 1 for grey
    (8- or 16-bit) files, else 3.

    Raises:
      DataError: a file that is not a readable PNG/JPEG, or two files of different sizes or
        channel counts (both named: give an image_shape to resize them all).
    """
    first, shape = None, None
    for path, _ in (f for split in sorted(files) for f in files[split]):
        this = _header_shape(path)
        if shape is None:
            first, shape = path, this
        elif this != shape:
            what = "sizes" if this[:2] != shape[:2] else "channel counts"
            raise DataError(
                f"{path}: {this[0]}×{this[1]}×{this[2]}, but {first} is {shape[0]}×{shape[1]}×{shape[2]}: "
                f"mixed {what}; give an image_shape (e.g. --set data.image_shape=(64,64,3)) to "
                "convert and resize every image to it"
            )
    return shape


def _header_shape(path: str) -> tuple[int, int, int]:
    from PIL import Image

    try:
        with Image.open(path) as pil:
            if pil.format not in ("PNG", "JPEG"):
                raise DataError(f"{path}: a {pil.format} image; expected PNG or JPEG")
            w, h = pil.size
            return h, w, 1 if pil.mode in _GREY_MODES else 3
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot be read as a PNG or JPEG image ({e})") from e


def fingerprint(files: Files, shape: Sequence[int], names: Sequence[str]) -> str:
    """A short hash of what the written dataset depends on."""
    h = hashlib.sha256(repr((tuple(shape), tuple(names))).encode())
    for split in sorted(files):
        for path, label in files[split]:
            st = os.stat(path)
            h.update(f"{split}\0{os.path.abspath(path)}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def build_folder_dataset(
    root: str | os.PathLike,
    image_shape: Sequence[int] | None = None,
    data_dir: str | os.PathLike | None = None,
    label_names: Sequence[str] | None = None,
):
    """Writes (or reuses) the TFDS dataset of the folder `root`; returns the prepared builder.

    Args:
      image_shape: (H, W, C) to convert and resize every file to; None: the files' own shape,
        which must be the same for all.
    Raises:
      DataError: the folder layout is wrong, or a file is unreadable, truncated or of another
        shape (named).
    """
    from gan_jax.data import image_tfds  # imports tensorflow_datasets: the `images` extra

    import_tfds()
    root = os.fspath(root)
    files, names = scan_folder(root, label_names)
    shape = data_shape(files) if image_shape is None else tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise DataError(f"{root}: image_shape {shape}; expected (H, W, 1) or (H, W, 3)")

    def examples(split):
        for path, label in files[split]:
            rel = os.path.relpath(path, root)
            yield rel, image_tfds.encode_png(decode_image_file(path, shape)), label

    config = f"folder_{shape[0]}x{shape[1]}x{shape[2]}_{fingerprint(files, shape, names)}"
    try:
        return image_tfds.write_dataset(
            data_dir or default_data_dir(),
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
    image_shape: Sequence[int] | None = None,
    data_dir: str | os.PathLike | None = None,
    label_names: Sequence[str] | None = None,
    label_map: Sequence[int] | None = None,
) -> TfdsSource:
    """One split of a folder of images, read through the TFDS data source.

    Args:
      root: the folder holding `<split>/<label>/*.png|jpg` or `<label>/*.png|jpg`.
      split: a split folder's name, or `UNSPLIT` for a folder with no split.
      image_shape: (H, W, C) every image is converted and resized to (C = 1 grey, 3 RGB);
        None: the files' own shape.
      data_dir: where the TFDS dataset is written (default $TFDS_DATA_DIR or
        ~/tensorflow_datasets).
      label_names: class folders in class order (default: sorted folder names).
      label_map: class index → our label (e.g. (0, 1) or (0, 0, 1)); default: the class index.
    """
    builder = build_folder_dataset(root, image_shape, data_dir, label_names)
    return folder_split(builder, os.fspath(root), split, label_map)


def folder_split(builder, root: str, split: str, label_map: Sequence[int] | None = None) -> TfdsSource:
    """One split of a folder's prepared builder (`build_folder_dataset`) as a source."""
    if split not in builder.info.splits:
        raise DataError(f"{root}: no split {split!r}; found {sorted(builder.info.splits)}")
    names = tuple(builder.info.features["label"].names)
    return TfdsSource(
        builder.as_data_source(split=split),
        builder.info.features["image"].shape,
        names,
        f"{root}:{split}",
        label_map=label_map,
        metadata={"tfds_dir": os.fspath(builder.data_path)},
        label_source=builder.as_data_source(split=split, decoders=skip_image_decoding()),
    )


def _find_data_error(e: BaseException | None) -> DataError | None:
    seen = 0
    while e is not None and seen < 20:
        if isinstance(e, DataError):
            return e
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None
