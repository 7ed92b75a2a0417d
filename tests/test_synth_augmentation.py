"""The GAN-augmentation study (gan_jax/studies/augmentation_study.py)."""

import json

import numpy as np
import pytest

from gan_jax.artifacts import records
from gan_jax.config import Config, MLPConfig, ScheduleConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate
from gan_jax.studies import augmentation_study as aug

TINY = Config(
    model=MLPConfig(latent_dim=4, ae_hidden=(8,), disc_hidden=(8, 8), gen_hidden=(8,), noise_dim=4),
    schedule=ScheduleConfig(ae_steps=4, gan_steps=4, batch_size=16, log_every=4),
)


def test_every_prefix_of_the_synthetic_labels_is_stratified():
    """Catches ratio 0.5 getting only benign rows (labels sorted by class, prefix taken)."""
    labels = aug.interleaved_labels(np.array([0.37, 0.5]), 200)
    for n in (10, 57, 100, 200):
        np.testing.assert_allclose(labels[:, :n].sum(1), np.floor(np.array([0.37, 0.5]) * n + 0.5), atol=1)


@pytest.fixture(scope="module")
def setup():
    ds = load_bundled()
    masks = evaluate.cv_folds(ds.y, 2, 1, seed=0)
    labeled = evaluate.labeled_masks(ds.y, masks, 0.5, 0)
    rng = np.random.default_rng(0)
    syn_x = rng.uniform(0, 1, (2, 40, 30)).astype(np.float32) * ds.x.max(0)
    syn_y = aug.interleaved_labels(np.array([0.4, 0.4]), 40)
    return ds.x, ds.y, masks, labeled, syn_x, syn_y


@pytest.mark.parametrize("fn", [aug._lr_proba, aug._ours_proba])
def test_a_run_sees_only_its_training_rows_and_its_own_synthetic_rows(setup, fn):
    """Catches augmented classifiers that train on real test rows, on unlabelled rows' labels,
    or on another run's synthetic rows: changing all of those leaves run 0's predictions on its
    training rows bit-identical."""
    x, y, masks, labeled, syn_x, syn_y = setup
    n_syn = np.array([20, 20])
    base = fn(TINY, x, y, masks, labeled, syn_x, syn_y, n_syn)
    x2, y2, sx2, sy2 = x.copy(), y.copy(), syn_x.copy(), syn_y.copy()
    x2[~masks[0]] += 7.0  # run 0's test rows
    y2[~labeled[0]] = 1 - y2[~labeled[0]]  # labels run 0 may not read
    sx2[1] += 3.0  # run 1's synthetic rows
    sx2[0, 20:] += 3.0  # run 0's synthetic rows beyond its ratio
    sy2[0, 20:] = 1 - sy2[0, 20:]
    other = fn(TINY, x2, y2, masks, labeled, sx2, sy2, n_syn)
    np.testing.assert_array_equal(base[0, masks[0]], other[0, masks[0]])
    changed = fn(
        TINY, x, y, masks, labeled, syn_x + np.float32(3.0) * (np.arange(2) == 0)[:, None, None], syn_y, n_syn
    )
    assert not np.array_equal(base[0, masks[0]], changed[0, masks[0]])  # its own rows do count


def test_quick_study_writes_json_markdown_and_figure(tmp_path):
    record = aug.run_augmentation_study(str(tmp_path), quick=True, log=lambda *_: None)
    saved = json.loads((tmp_path / "augmentation.json").read_text())
    assert records.missing_record_keys(saved, allow_dirty=True) == []
    assert (tmp_path / "augmentation.png").stat().st_size > 10_000
    md = (tmp_path / "augmentation.md").read_text()
    assert saved["n_runs"] == 4 and len(saved["comparisons"]) == 2 * 2 * 3 * 3
    s = saved["summary"]["all labels"]["logistic_regression"]["1.0"]["accuracy"]
    assert f"{100 * s['mean']:.2f} [{100 * s['ci95_low']:.2f}, {100 * s['ci95_high']:.2f}]" in md
    assert all(c["p_holm"] >= c["p"] for c in saved["comparisons"])
    assert record["verdict"] and record["verdict"][0] in md
