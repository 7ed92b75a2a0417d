"""Each loss against a hand-computed float64 numpy value."""

import numpy as np
import pytest

from gan_jax.models import losses

LOGITS_REAL = np.array([[2.0, -1.0], [0.5, 0.3], [-3.0, 1.0]])
LOGITS_FAKE = np.array([[-2.0, -1.5], [0.0, 4.0]])


def d_of(logits):
    """D(x) = Z / (Z + 1), Z = Σ exp(logits): the paper's eq. 6 for a K-class discriminator."""
    z = np.exp(logits).sum(-1)
    return z / (z + 1)


def test_reconstruction_eq4():
    x, x_hat = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.5, 2.0], [2.0, 5.0]])
    assert float(losses.reconstruction_loss_eq4(x_hat, x)) == pytest.approx((0.25 + 0 + 1 + 1) / 4)


def test_generator_eq7():
    expected = -np.mean(np.log(d_of(LOGITS_FAKE)))
    assert float(losses.generator_loss_eq7(LOGITS_FAKE)) == pytest.approx(expected, rel=1e-6)


def test_discriminator_eq8():
    expected = -np.mean(np.log(d_of(LOGITS_REAL))) - np.mean(np.log(1 - d_of(LOGITS_FAKE)))
    assert float(losses.discriminator_loss_eq8(LOGITS_REAL, LOGITS_FAKE)) == pytest.approx(expected, rel=1e-6)


def test_supervised_cross_entropy():
    labels = np.array([0, 1, 1])
    p = np.exp(LOGITS_REAL) / np.exp(LOGITS_REAL).sum(-1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(3), labels]))
    assert float(losses.supervised_loss(LOGITS_REAL, labels)) == pytest.approx(expected, rel=1e-6)


def test_sgan_discriminator_loss_is_supervised_plus_weighted_eq8():
    labels = np.array([0, 1, 1])
    p = np.exp(LOGITS_REAL) / np.exp(LOGITS_REAL).sum(-1, keepdims=True)
    sup = -np.mean(np.log(p[np.arange(3), labels]))
    unsup = -np.mean(np.log(d_of(LOGITS_REAL))) - np.mean(np.log(1 - d_of(LOGITS_FAKE)))
    got = losses.sgan_discriminator_loss(LOGITS_REAL, labels, LOGITS_REAL, LOGITS_FAKE, 0.5)
    assert float(got) == pytest.approx(sup + 0.5 * unsup, rel=1e-6)


def test_feature_matching():
    real = np.array([[1.0, 2.0], [3.0, 0.0]])
    fake = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    # means: real (2, 1), fake (0, 1) -> squared distance 4
    assert float(losses.feature_matching_loss(real, fake)) == pytest.approx(4.0)


def test_losses_stay_finite_for_extreme_logits():
    big = np.array([[500.0, 400.0], [-500.0, -600.0]])
    assert np.isfinite(float(losses.discriminator_loss_eq8(big, big)))
    assert np.isfinite(float(losses.generator_loss_eq7(-big)))
