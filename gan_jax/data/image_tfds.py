"""Writing image sets as TFDS datasets in the array_record format, with no TensorFlow.

TFDS needs TensorFlow to *encode* an image given as a numpy array (`tf.image.encode_png`), to
read the tfrecord format and for `tfds.load` / `as_dataset` (they return `tf.data`). It needs
none of it when a builder yields images already encoded as PNG bytes, writes
`file_format="array_record"`, and the result is read through `tfds.data_source` /
`builder.as_data_source()`, which decodes with PIL. Every image set gan_jax writes (a folder of
images, the synthetic nuclei) goes through `write_dataset` here, so that path is the only one.

This module imports tensorflow_datasets; import it only when TFDS is wanted (`images` extra).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

# (key, PNG/JPEG bytes, label): what a split generator yields. Keys must be unique per split.
Example = tuple[str, bytes, int]


class GanJaxImages(tfds.core.GeneratorBasedBuilder):
    """A labelled image set whose examples come from Python generators of encoded images.

    One class serves every image set: each is a `BuilderConfig` (its name fingerprints the
    content), the splits and the metadata are passed in at construction.
    """

    VERSION = tfds.core.Version("1.0.0")

    def __init__(
        self,
        *,
        splits: Mapping[str, Callable[[], Iterator[Example]]] | None = None,
        image_shape: Sequence[int] = (64, 64, 3),
        label_names: Sequence[str] = ("benign", "malignant"),
        description: str = "",
        metadata: Mapping[str, object] | None = None,
        **kwargs,
    ):
        self._splits = dict(splits or {})
        self._image_shape = tuple(image_shape)
        self._label_names = list(label_names)
        self._description = description
        self._metadata = dict(metadata or {})
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo built directly: `dataset_info_from_configs` reads package files that a
        # builder defined outside a TFDS package does not have.
        return tfds.core.DatasetInfo(
            builder=self,
            description=self._description,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "image": tfds.features.Image(shape=self._image_shape),
                    "label": tfds.features.ClassLabel(names=self._label_names),
                }
            ),
            supervised_keys=("image", "label"),
            # Records keep the generators' order (TFDS would shuffle them by key hash), so
            # record i is the i-th file or drawn image; the input pipeline does the shuffling.
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(self._metadata),
        )

    def _split_generators(self, dl_manager):
        return {name: self._generate_examples(make) for name, make in self._splits.items()}

    def _generate_examples(self, make):
        for key, encoded, label in make():
            yield key, {"id": key, "image": encoded, "label": int(label)}


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [H, W, C] (C = 1 or 3) → PNG bytes, with PIL (no TensorFlow)."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buf = io.BytesIO()
    pil.save(buf, format="png")
    return buf.getvalue()


def write_dataset(
    data_dir: str | os.PathLike,
    config_name: str,
    splits: Mapping[str, Callable[[], Iterator[Example]]],
    image_shape: Sequence[int],
    label_names: Sequence[str],
    description: str,
    metadata: Mapping[str, object] | None = None,
) -> GanJaxImages:
    """Prepares (once; a prepared config is reused) an array_record TFDS dataset.

    Args:
      data_dir: the TFDS data directory; the dataset goes to
        `data_dir/gan_jax_images/<config_name>/1.0.0`.
      config_name: names this image set; it should change whenever the content would.
      splits: split name → a function returning a fresh iterator of `Example`s.
      image_shape: (H, W, C) every encoded image has.
      label_names: class names in label order.
      description, metadata: stored in the dataset's info.
    Returns:
      The prepared builder; `builder.as_data_source(split)` reads it without TensorFlow.
    """
    builder = GanJaxImages(
        splits=splits,
        image_shape=image_shape,
        label_names=label_names,
        description=description,
        metadata=metadata,
        config=tfds.core.BuilderConfig(name=config_name, description=description),
        data_dir=os.fspath(data_dir),
        file_format="array_record",
    )
    builder.download_and_prepare()
    return builder
