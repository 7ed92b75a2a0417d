"""The image study and its fused trainer: runs are independent, hidden labels and test-fold
images never reach a run's model, the study writes what its table and figure read, and a
tiny conv SGAN beats chance on the synthetic nuclei under CV (so an inverted one fails)."""

import json

import jax
import numpy as np
import pytest

from gan_jax.artifacts import records
from gan_jax.config import IMAGES, ConvConfig
from gan_jax.data import nuclei
from gan_jax.evaluation import evaluate
from gan_jax.studies import image_study
from gan_jax.training import augment, engine, image

# One small config for every test: 16×16 nuclei, the widths of tests/test_train_images.py, no
# augmentation (its compile dominates on CPU), 2 runs on a 2-device mesh; the leakage tests
# train in chunks of the study's length, so every test shares the study's compiled programs.
LEARNING = IMAGES.replace(
    name="tiny_images",
    model=ConvConfig(
        image_shape=(16, 16, 3),
        features=(8, 16),
        gen_features=(16, 8),
        disc_hidden=16,
        latent_dim=8,
        noise_dim=8,
        augment=augment.NO_AUGMENT,
    ),
    schedule=IMAGES.schedule.replace(batch_size=32, d_lr=2e-3, ae_steps=10, gan_steps=120, log_every=10),
    data=IMAGES.data.replace(n_images=400),
    cv=IMAGES.cv.replace(n_folds=2, n_repeats=1, labeled_fractions=(1.0,)),
    n_samples=4,
)
# The leakage tests' model: the study's, trained 10 + 10 steps.
MODEL = LEARNING.replace(**{"schedule.gan_steps": 10})
MESH = engine.runs_mesh(jax.devices()[:2])


@pytest.fixture(scope="module")
def data():
    images, labels = nuclei.generate(LEARNING.data.n_images, seed=1, size=16)
    masks = evaluate.cv_folds(labels, 2, 1, seed=0)  # 2 runs: one per device
    labeled = evaluate.labeled_masks(labels, masks, 0.25, seed=0)
    return images, labels, masks, labeled


def train(images, labels, masks, labeled, run_ids=None):
    runs = image.make_runs(MODEL, labels, masks, labeled, run_ids)
    return image.train_runs(MODEL, images, labels, runs, mesh=MESH).state


def run_leaves(state, r):
    return [np.asarray(a[r]) for a in jax.tree.leaves(state)]


def assert_same_run(a, b, r=0):
    for x, y in zip(run_leaves(a, r), run_leaves(b, r), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference(data):
    return train(*data)


def test_runs_are_independent(data, reference):
    # Catches runs that share anything in the fused call (a batch statistic over runs, a key
    # or a mask taken from the wrong run): replacing run 1 leaves run 0 bit-identical.
    images, labels, masks, labeled = data
    other = masks.copy()
    other[1] = np.random.default_rng(3).random(len(labels)) < 0.7  # another training set for run 1 ...
    other_labeled = evaluate.labeled_masks(labels, other, 0.5, seed=7)
    other_labeled[0] = labeled[0]
    state = train(images, labels, other, other_labeled, run_ids=np.array([0, 5]))  # ... and key
    assert_same_run(reference, state, 0)
    assert not np.array_equal(run_leaves(reference, 1)[1], run_leaves(state, 1)[1])


def test_hidden_labels_never_matter(data, reference):
    # Catches a loss that reads labels of unlabelled rows (run-level masks): flipping every
    # label outside both runs' labelled rows leaves every parameter bit-identical...
    images, labels, masks, labeled = data
    hidden = ~labeled.any(0)
    assert hidden.sum() > len(labels) // 2
    assert_same_run(reference, train(images, np.where(hidden, 1 - labels, labels), masks, labeled), 0)
    assert_same_run(reference, train(images, np.where(hidden, 1 - labels, labels), masks, labeled), 1)
    # ...while flipping the labelled rows' labels changes the model (the check can fail).
    flipped = train(images, np.where(labeled[0], 1 - labels, labels), masks, labeled)
    assert not all(np.array_equal(x, y) for x, y in zip(run_leaves(reference, 0), run_leaves(flipped, 0)))


def test_test_fold_images_never_matter(data, reference):
    # Catches a sampler or a statistic that sees a run's test rows: replacing run 0's test
    # images by noise and flipping their labels leaves run 0 bit-identical.
    images, labels, masks, labeled = data
    test = ~masks[0]
    noise = np.random.default_rng(0).integers(0, 256, images.shape, dtype=np.uint8)
    changed = np.where(test[:, None, None, None], noise, images)
    assert_same_run(reference, train(changed, np.where(test, 1 - labels, labels), masks, labeled), 0)


def test_bad_images_are_refused(data):
    images, labels, masks, labeled = data
    runs = image.make_runs(MODEL, labels, masks, labeled)
    with pytest.raises(ValueError, match=r"float32 \(400, 16, 16, 3\).*expected uint8 \[N, 16, 16, 3\]"):
        image.train_runs(MODEL, images.astype(np.float32), labels, runs, mesh=MESH)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("image_study")
    bundle_uri = str(tmp_path_factory.mktemp("image_bundle") / "bundle")
    record = image_study.run_image_study(LEARNING, str(out), command="test", mesh=MESH, bundle_uri=bundle_uri)
    return record, out, bundle_uri


def test_study_writes_its_files(study):
    # Catches a results file that the table/figure cannot be rebuilt from, or that lacks
    # its provenance.
    record, out, _ = study
    assert sorted(p.name for p in out.iterdir()) == [
        "image_samples.png",
        "image_study.json",
        "image_study.md",
        "image_study.png",
    ]
    saved = json.loads((out / "image_study.json").read_text())
    assert records.missing_record_keys(saved, allow_dirty=True) == []
    for key in (
        "command",
        "git_commit",
        "versions",
        "load_average_at_end",
        "wall_seconds",
        "cpu_seconds",
        "folds_sha256",
        "synthetic_data",
    ):
        assert key in saved, key
    assert (out / "image_study.md").read_text() == image_study.markdown(saved)
    entry = saved["per_fraction"][0]
    assert set(entry["models"]) == {image_study.SGAN, image_study.SUPERVISED, image_study.POOLED_LR}
    for m in entry["models"].values():
        assert set(m["summary"]) == set(evaluate.METRICS)
        assert len(m["runs"]["accuracy"]) == 2
    assert {(c["b"], c["metric"]) for c in saved["comparisons"]} == {
        (b, k) for b in (image_study.SUPERVISED, image_study.POOLED_LR) for k in image_study.COMPARED
    }
    assert "SYNTHETIC" in (out / "image_study.md").read_text()


def test_tiny_conv_sgan_beats_chance_under_cv(study):
    # Catches an untrained or inverted classifier (e.g. the benign probability served as
    # malignant): on held-out folds the tiny conv SGAN must beat chance (0.5) clearly.
    record, _, _ = study
    summary = record["per_fraction"][0]["models"]
    sgan = summary[image_study.SGAN]["summary"]
    assert sgan["accuracy"]["mean"] > 0.65, sgan["accuracy"]
    assert sgan["roc_auc"]["mean"] > 0.7, sgan["roc_auc"]


def test_exported_bundle_is_run_0_with_its_held_out_accuracy(study):
    # Catches a bundle of another run (or of the supervised model), or metrics measured on
    # rows that run trained on: the bundle's accuracy must be run 0's held-out accuracy.
    from gan_jax.artifacts import bundle

    record, _, uri = study
    b = bundle.load(uri)
    assert b.kind == "image"
    run0 = record["per_fraction"][0]["models"][image_study.SGAN]["runs"]["accuracy"][0]
    assert b.meta["metrics"]["accuracy"] == pytest.approx(run0)
    images, labels = nuclei.generate(LEARNING.data.n_images, LEARNING.data.data_seed, LEARNING.size)
    masks = evaluate.cv_folds(labels, LEARNING.cv.n_folds, LEARNING.cv.n_repeats, LEARNING.cv.seed)
    held_out = ~masks[0]
    accuracy = np.mean((np.asarray(b.predict_proba(images[held_out])) >= 0.5) == labels[held_out])
    assert accuracy == pytest.approx(run0, abs=1e-6)
