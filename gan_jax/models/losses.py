"""Every loss as a pure function, named after the equation it implements.

Logits-based forms are used throughout for numerical stability: with l = logsumexp(logits),
D(x) = σ(l), so log D(x) = -softplus(-l) and log(1 - D(x)) = -softplus(l).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def reconstruction_loss_eq4(x_hat: jax.Array, x: jax.Array) -> jax.Array:
    """Eq. 4: mean squared reconstruction error ‖x - g_φ(f_θ(x))‖², averaged over entries."""
    return jnp.mean((x_hat - x) ** 2)


def real_logit(logits: jax.Array) -> jax.Array:
    """The pre-sigmoid real/fake score of a K-class discriminator: D(x) = σ(logsumexp(logits))."""
    return jax.nn.logsumexp(logits, axis=-1)


def generator_loss_eq7(fake_logits: jax.Array) -> jax.Array:
    """Eq. 7, non-saturating: L_G = -E_z[log D(G(z))]."""
    return jnp.mean(jax.nn.softplus(-real_logit(fake_logits)))


def discriminator_loss_eq8(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Eq. 8: L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]."""
    return jnp.mean(jax.nn.softplus(-real_logit(real_logits))) + jnp.mean(
        jax.nn.softplus(real_logit(fake_logits))
    )


def supervised_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """K-class cross-entropy on labelled rows."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def sgan_discriminator_loss(
    labeled_logits: jax.Array,
    labels: jax.Array,
    real_logits: jax.Array,
    fake_logits: jax.Array,
    unsupervised_weight: float = 1.0,
) -> jax.Array:
    """Semi-supervised GAN discriminator loss (Salimans et al. 2016): supervised K-class
    cross-entropy plus the unsupervised real/fake loss of eq. 8."""
    return supervised_loss(labeled_logits, labels) + unsupervised_weight * discriminator_loss_eq8(
        real_logits, fake_logits
    )


def feature_matching_loss(real_features: jax.Array, fake_features: jax.Array) -> jax.Array:
    """Generator feature matching: ‖E_x f(x) - E_z f(G(z))‖² on the discriminator's last
    hidden layer (Salimans et al. 2016, §3.1)."""
    return jnp.sum((jnp.mean(real_features, 0) - jnp.mean(fake_features, 0)) ** 2)


def entropy_loss(logits: jax.Array) -> jax.Array:
    """Mean entropy of the class prediction p(y|x) (Grandvalet & Bengio 2005): minimised on
    unlabelled rows, it pushes the decision boundary away from them."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.sum(jnp.exp(logp) * logp, axis=-1))


def consistency_loss(student_logits: jax.Array, target_logits: jax.Array) -> jax.Array:
    """Mean squared distance of class probabilities (Laine & Aila 2017; Tarvainen & Valpola
    2017); the target is a constant (no gradient flows into it)."""
    target = jax.lax.stop_gradient(jax.nn.softmax(target_logits, axis=-1))
    return jnp.mean(jnp.sum((jax.nn.softmax(student_logits, axis=-1) - target) ** 2, axis=-1))


# Class-conditional GANs for synthetic rows (gan_jax.studies.synth). Single-logit D(x) = σ(logit).


def cgan_discriminator_loss(real_logit: jax.Array, fake_logit: jax.Array) -> jax.Array:
    """Eq. 8 with a single real/fake logit per row (conditional GAN: D sees (x, y)):
    -E[log D(x, y)] - E[log(1 - D(G(z, y), y))]."""
    return jnp.mean(jax.nn.softplus(-real_logit)) + jnp.mean(jax.nn.softplus(fake_logit))


def cgan_generator_loss(fake_logit: jax.Array) -> jax.Array:
    """Eq. 7, non-saturating, single logit: -E[log D(G(z, y), y)]."""
    return jnp.mean(jax.nn.softplus(-fake_logit))


def acgan_discriminator_loss(
    real_logit: jax.Array,
    fake_logit: jax.Array,
    labeled_class_logits: jax.Array,
    labels: jax.Array,
    fake_class_logits: jax.Array,
    fake_labels: jax.Array,
) -> jax.Array:
    """AC-GAN discriminator (Odena et al. 2017): eq. 8 on the source (real rows: all training
    rows, labelled or not) plus the class cross-entropy on labelled real rows and on fakes
    (with the labels they were generated for)."""
    return (
        cgan_discriminator_loss(real_logit, fake_logit)
        + supervised_loss(labeled_class_logits, labels)
        + supervised_loss(fake_class_logits, fake_labels)
    )


def acgan_generator_loss(
    fake_logit: jax.Array, fake_class_logits: jax.Array, fake_labels: jax.Array
) -> jax.Array:
    """AC-GAN generator: eq. 7 (non-saturating) plus the class cross-entropy of its fakes."""
    return cgan_generator_loss(fake_logit) + supervised_loss(fake_class_logits, fake_labels)
