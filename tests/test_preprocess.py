import jax
import numpy as np
import pytest

from gan_jax.models import preprocess


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (40, 5)).astype(np.float32)
    x[:, 2] = 7.0  # a constant column
    mask = np.zeros(40, bool)
    mask[:30] = True
    return x, mask


def test_minmax_matches_float64_reference(data):
    x, mask = data
    p = preprocess.fit("minmax", x, mask)
    ref = x[mask].astype(np.float64)
    lo, hi = ref.min(0), ref.max(0)
    expected = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    np.testing.assert_allclose(preprocess.apply(p, x), expected, rtol=1e-5, atol=1e-6)
    assert np.asarray(preprocess.apply(p, x[mask])).min() == 0.0


def test_zscore_matches_float64_reference(data):
    x, mask = data
    p = preprocess.fit("zscore", x, mask)
    ref = x[mask].astype(np.float64)
    std = ref.std(0)
    expected = (x - ref.mean(0)) / np.where(std > 0, std, 1.0)
    np.testing.assert_allclose(preprocess.apply(p, x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", preprocess.SCALERS)
def test_fitted_on_training_rows_only(data, kind):
    """Leakage check: changing the held-out rows must not change the fitted scaler."""
    x, mask = data
    leaked = x.copy()
    leaked[~mask] = 1e6
    a, b = preprocess.fit(kind, x, mask), preprocess.fit(kind, leaked, mask)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    # ...while changing a training row does change it.
    moved = x.copy()
    moved[0] += 100.0
    c = preprocess.fit(kind, moved, mask)
    assert not (np.array_equal(c.shift, a.shift) and np.array_equal(c.scale, a.scale))


@pytest.mark.parametrize("kind", preprocess.SCALERS)
def test_constant_column_gives_zeros_not_nan(data, kind):
    x, mask = data
    out = np.asarray(preprocess.apply(preprocess.fit(kind, x, mask), x))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 2], 0.0, atol=1e-5)  # mean rounding only


def test_fit_is_vmappable_over_masks(data):
    x, _ = data
    masks = np.stack([np.arange(40) < 20, np.arange(40) >= 20])
    batched = jax.vmap(lambda m: preprocess.fit("minmax", x, m))(masks)
    np.testing.assert_allclose(batched.shift[1], x[20:].min(0))


def test_unknown_scaler():
    with pytest.raises(ValueError, match="unknown scaler 'robust'"):
        preprocess.fit("robust", np.zeros((2, 2)))
