"""Which images an image study trains and scores on, and on which runs.

An image experiment's data section (`config.DataConfig`) names the SYNTHETIC nuclei demo set
(drawn in memory, as before) or any set `gan_jax.data.image_sets` reads (a folder, a
MedMNIST `.npz`, a TFDS catalog dataset; local, s3:// or gs://). `study_data` reads it and
lays out the runs:

* a data set with its own train/test split is scored on it: every run trains on the `train`
  split and is scored on the `test` split (other splits, e.g. `val`, are not read: the study
  selects no model); the n_folds × n_repeats runs differ in seed only (initialisation,
  labelled subset, batches), so their intervals describe seed-to-seed variation, not data
  sampling;
* a data set without a split gets repeated stratified k-fold, as the demo set does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from gan_jax.config import Config, DataConfig
from gan_jax.data import image_folder, image_sets, nuclei
from gan_jax.data.images import BINARY_LABELS, DataError
from gan_jax.evaluation import evaluate

OWN_TRAIN, OWN_TEST = "train", "test"
NUCLEI = "nuclei"  # the data URI of the SYNTHETIC demo set, drawn in memory


@dataclasses.dataclass(frozen=True)
class StudyData:
    images: np.ndarray  # [N, H, W, C] uint8
    labels: np.ndarray  # [N] int32, 1 = malignant
    train_masks: np.ndarray  # [R, N] bool; a run's test rows are the complement
    label_names: tuple[str, str]
    description: str  # what the images are, for results and bundles
    evaluation: str  # how the runs split them, for results
    own_split: bool  # the data set's own train/test split (else repeated stratified k-fold)
    synthetic: bool


def load_study_data(config: Config) -> tuple[StudyData, Config]:
    """The images and runs of an image experiment (a `Config` with a conv model), and the
    config with its model's image_shape set to the images' own.

    Raises:
      DataError: unreadable data, or images the models cannot take (with the fix to apply).
    """
    data = study_data(
        config.data,
        model_shape=config.model.image_shape,
        n_images=config.data.n_images,
        data_seed=config.data.data_seed,
        n_folds=config.cv.n_folds,
        n_repeats=config.cv.n_repeats,
        seed=config.cv.seed,
    )
    shape = tuple(int(s) for s in data.images.shape[1:])
    check_model_shape(shape, config.model.features, config.data.pool, config.data.uri)
    return data, config.replace(model=config.model.replace(image_shape=shape))


def study_data(
    data: DataConfig,
    *,
    model_shape: Sequence[int],
    n_images: int | None,
    data_seed: int,
    n_folds: int,
    n_repeats: int,
    seed: int,
) -> StudyData:
    """Reads the study's images and lays out its n_folds × n_repeats runs (module docstring).

    Args:
      model_shape: the model's (H, W, C): the size of the drawn demo set.
      n_images: the demo set's size; for other data at most this many images (a uniform
        random subset, in proportion per split, drawn from `data_seed`); None: all.
    Raises:
      DataError: unreadable data, one class only, or a split without train and test.
    """
    if data.uri is None:  # the image path's default: the SYNTHETIC demo set
        data = data.replace(uri=NUCLEI)
    if not data.uri:
        raise DataError("the experiment names no images: give --data URI (a folder, a .npz or tfds:<name>)")
    if data.uri == NUCLEI:
        return _nuclei(data, model_shape, n_images, data_seed, n_folds, n_repeats, seed)
    opened = image_sets.open_image_set(
        data.uri, image_shape=data.image_shape, data_dir=data.data_dir, malignant=data.malignant or None
    )
    own = sorted(opened.sources)
    if own == [image_folder.UNSPLIT]:
        s = image_sets.read_image_set(opened, max_images=n_images, seed=data_seed)
        return StudyData(
            s.images,
            s.labels,
            evaluate.cv_folds(s.labels, n_folds, n_repeats, seed),
            s.label_names,
            _describe(s),
            f"{n_repeats} × repeated stratified {n_folds}-fold CV over all {len(s.labels)} images "
            "(the data set has no split of its own)",
            own_split=False,
            synthetic=False,
        )
    if OWN_TRAIN not in own or OWN_TEST not in own:
        raise DataError(
            f"{opened.source}: splits {own}; a data set with a split of its own needs "
            f"{OWN_TRAIN!r} and {OWN_TEST!r} (or no split folders at all, for k-fold CV)"
        )
    s = image_sets.read_image_set(opened, (OWN_TRAIN, OWN_TEST), n_images, data_seed)
    train = s.split == OWN_TRAIN
    unused = [x for x in own if x not in (OWN_TRAIN, OWN_TEST)]
    evaluation = (
        f"the data set's own split: every run trains on {OWN_TRAIN!r} ({int(train.sum())} images) and "
        f"is scored on {OWN_TEST!r} ({int((~train).sum())} images)"
        + (f"; {unused} not used (the study selects no model)" if unused else "")
        + f"; the {n_folds * n_repeats} runs differ in seed only, so intervals show seed-to-seed "
        "variation, not data sampling"
    )
    masks = np.tile(train, (n_folds * n_repeats, 1))
    return StudyData(
        s.images, s.labels, masks, s.label_names, _describe(s), evaluation, own_split=True, synthetic=False
    )


def _nuclei(data, model_shape, n_images, data_seed, n_folds, n_repeats, seed) -> StudyData:
    size = (data.image_shape or model_shape)[0]
    if n_images is None:
        raise DataError("nuclei: the demo set is drawn, so n_images must be a number")
    images, labels = nuclei.generate(n_images, data_seed, size)
    return StudyData(
        images,
        labels,
        evaluate.cv_folds(labels, n_folds, n_repeats, seed),
        BINARY_LABELS,
        f"SYNTHETIC nuclei.generate(n={n_images}, seed={data_seed}, size={size}), "
        f"gan_jax.data.nuclei {nuclei.VERSION}",
        f"{n_repeats} × repeated stratified {n_folds}-fold CV",
        own_split=False,
        synthetic=True,
    )


def _describe(s: image_sets.ImageSet) -> str:
    h, w, c = s.image_shape
    counts = np.bincount(s.labels, minlength=2)
    return (
        f"{s.source}: {len(s.labels)} images of {h}×{w}×{c} ({counts[1]} {s.label_names[1]}, "
        f"{counts[0]} {s.label_names[0]}); " + "; ".join(s.notes)
    )


def check_model_shape(shape: Sequence[int], features: Sequence[int], pool: int, where: str) -> None:
    """DataError unless the conv models and the pooled baseline can take images of `shape`:
    square, side divisible by 2^len(features) (the conv strides) and by `pool`."""
    h, w, c = shape
    step = int(np.lcm(2 ** len(features), pool))
    if h != w or h % step or c not in (1, 3):
        side = max(step, round(max(h, w) / step) * step)
        raise DataError(
            f"{where}: images of {h}×{w}×{c}; the models need square images with a side divisible by "
            f"{step} and 1 or 3 channels: resize them, e.g. --set data.image_shape=({side},{side},{c})"
        )
