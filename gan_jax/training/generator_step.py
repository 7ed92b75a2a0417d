"""The generator half of a GAN step, shared by the table and image trainers: the generator loss
(feature matching, or eq. 7) on a frozen discriminator, then one Adam update."""

from __future__ import annotations

from collections.abc import Callable

import jax

from gan_jax.models import losses
from gan_jax.training.engine import GAN_ADAM, GANState, adam_update


def generator_update(
    state: GANState,
    disc: Callable,
    gen: Callable,
    noise: jax.Array,
    x_real: jax.Array,
    gen_loss: str,
    g_lr: jax.Array,
) -> tuple[GANState, jax.Array]:
    """(state with the generator updated, the generator's loss).

    Args:
      state: the run's state, its discriminator already updated for this step (and held fixed).
      disc: (params, inputs) -> (logits, features); gen: (params, noise) -> inputs.
      noise: [B, noise_dim] the generator's input.
      x_real: [B, ...] real inputs; feature matching compares their mean discriminator features
        with the fakes' (eq. 7 does not read them).
      gen_loss: "eq7" or "feature_matching".
      g_lr: [] the generator's learning rate (data, per run).
    """
    disc_params = state.disc.params

    def g_loss_fn(gp):
        fake_logits, fake_features = disc(disc_params, gen(gp, noise))
        if gen_loss == "eq7":
            return losses.generator_loss_eq7(fake_logits)
        real_features = jax.lax.stop_gradient(disc(disc_params, x_real)[1])
        return losses.feature_matching_loss(real_features, fake_features)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.gen.params)
    return state._replace(gen=adam_update(GAN_ADAM, state.gen, g_grads, g_lr)), g_loss
