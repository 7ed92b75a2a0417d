"""The synthesiser trainer: a class-conditional generator of synthetic rows (config.synth.model
"cgan", Mirza & Osindero 2014, or "acgan", Odena et al. 2017), plugged into `engine`.

A conditional GAN in the scaled feature space of each run's training rows, on the same per-run
masks as the classifier. Real rows come only from the run's training rows; labels only from
its labelled rows (the cGAN's real pairs, the AC-GAN's class term and the class prior); the
AC-GAN's real/fake term sees every training row.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.config import Config
from gan_jax.evaluation import evaluate
from gan_jax.models import (
    AuxClassifierDiscriminator,
    ConditionalDiscriminator,
    ConditionalGenerator,
    losses,
    preprocess,
)
from gan_jax.training import engine
from gan_jax.training.engine import GANState, Network, RunSpec, adam_update

SYNTH_ADAM = optax.scale_by_adam(b1=0.5)
SYNTH_STREAM = 0x5E17  # the synthesiser's keys: fold_in(run key, this), apart from the classifier's
NUM_CLASSES = 2


class SynthTransform(NamedTuple):
    """Original units ↔ the generator's space, fitted on one run's training rows."""

    scaler: preprocess.ScalerParams  # fitted on log1p(x) (config.synth.log1p) or x
    lo: jax.Array  # [F] each feature's minimum over the training rows (original units, >= 0)
    hi: jax.Array  # [F] each feature's maximum over the training rows


class SynthFit(NamedTuple):
    """What a synthesiser run fits on its own rows before training (its `GANState.fitted`)."""

    transform: SynthTransform
    prior: jax.Array  # [K] class shares among the run's labelled rows


class SynthHParams(NamedTuple):
    synth_g_lr: jax.Array  # [] float32
    synth_d_lr: jax.Array


class SynthNetworks(NamedTuple):
    gen: ConditionalGenerator
    disc: ConditionalDiscriminator | AuxClassifierDiscriminator


def build_synth_networks(config: Config, n_features: int) -> SynthNetworks:
    if config.synth.model not in ("cgan", "acgan"):
        raise ValueError(f"config {config.name!r}: synth.model is {config.synth.model!r}; set cgan or acgan")
    disc_cls = AuxClassifierDiscriminator if config.synth.model == "acgan" else ConditionalDiscriminator
    return SynthNetworks(
        gen=ConditionalGenerator(config.synth.gen_hidden, n_features, NUM_CLASSES),
        disc=disc_cls(config.synth.disc_hidden, NUM_CLASSES),
    )


def schedule(config: Config) -> engine.Schedule:
    return engine.Schedule((("synth", config.synth.steps),), config.schedule.log_every)


def make_synth_runs(
    config: Config,
    y: np.ndarray,
    train_masks: np.ndarray,
    labeled_masks: np.ndarray | None = None,
    run_ids: np.ndarray | None = None,
    hparams: SynthHParams | None = None,
) -> RunSpec:
    """Host-side RunSpec of R synthesiser runs, checked as the classifier's (`engine.make_runs`;
    the labelled rows default to `config.cv.labeled_fraction`). A run's synthesiser key is derived
    from, and independent of, the key its classifier gets from the same seed and run id."""
    train_masks = np.asarray(train_masks, bool)
    n = len(train_masks)
    run_ids = np.arange(n) if run_ids is None else np.asarray(run_ids)
    if labeled_masks is None:
        labeled_masks = evaluate.labeled_masks(
            y, train_masks, config.cv.labeled_fraction, config.cv.seed, run_ids
        )
    if hparams is None:
        hparams = SynthHParams(
            *(
                np.full(n, getattr(config.synth, f.removeprefix("synth_")), np.float32)
                for f in SynthHParams._fields
            )
        )
    runs = engine.make_runs(y, train_masks, labeled_masks, SynthHParams(*hparams), config.cv.seed, run_ids)
    keys = jax.vmap(lambda k: jax.random.fold_in(k, SYNTH_STREAM))(jnp.asarray(runs.key))
    return runs._replace(key=np.asarray(keys))


def fit_synth_transform(config: Config, x: jax.Array, mask: jax.Array) -> SynthTransform:
    """The generator's space, fitted on the rows of x [N, F] where mask [N] only."""
    m = mask.astype(bool)[:, None]
    lo = jnp.maximum(jnp.min(jnp.where(m, x, jnp.inf), axis=0), 0.0)
    hi = jnp.max(jnp.where(m, x, -jnp.inf), axis=0)
    v = jnp.log1p(jnp.maximum(x, 0.0)) if config.synth.log1p else x
    return SynthTransform(preprocess.fit(config.synth.scaler, v, mask), lo, hi)


def synth_forward(config: Config, t: SynthTransform, x: jax.Array) -> jax.Array:
    """Original units [..., F] → the generator's scaled space."""
    v = jnp.log1p(jnp.maximum(x, 0.0)) if config.synth.log1p else x
    return preprocess.apply(t.scaler, v)


def synth_inverse(config: Config, t: SynthTransform, xs: jax.Array) -> jax.Array:
    """The generator's space [..., F] → original units, clipped to each feature's range over
    the run's training rows (SDV's `enforce_min_max_values`), itself within [0, ∞)."""
    v = xs * t.scaler.scale + t.scaler.shift
    x = jnp.expm1(v) if config.synth.log1p else v
    return jnp.clip(x, t.lo, t.hi)


def init_synth_state(config: Config, data, run: RunSpec) -> GANState:
    """Initial synthesiser state of one run; transform and class prior from its own rows."""
    x, y = data
    nets = build_synth_networks(config, x.shape[1])
    k_g, k_d = jax.random.split(engine.init_and_step_keys(run.key)[0])
    z, c = jnp.zeros((1, config.synth.noise_dim)), jnp.zeros((1,), jnp.int32)
    gen = nets.gen.init(k_g, z, c)["params"]
    disc = nets.disc.init(k_d, jnp.zeros((1, x.shape[1])), c)["params"]
    lab = run.labeled_mask.astype(bool)
    counts = jnp.stack([jnp.sum(lab & (y == k)) for k in range(NUM_CLASSES)]).astype(jnp.float32)
    return GANState(
        step=jnp.zeros((), jnp.int32),
        fitted=SynthFit(fit_synth_transform(config, x, run.train_mask), counts / jnp.sum(counts)),
        ae=None,
        disc=Network(disc, SYNTH_ADAM.init(disc)),
        gen=Network(gen, SYNTH_ADAM.init(gen)),
    )


def synth_step(
    nets: SynthNetworks,
    config: Config,
    state: GANState,
    key,
    hp: SynthHParams,
    xs,
    y,
    draw_labeled,
    draw_train,
):
    """One conditional-GAN step on scaled training rows xs [N, F]: discriminator, then generator.
    Fakes are conditioned on labels drawn from the run's labelled class prior."""
    k_lab, k_real, k_zd, k_yd, k_zg, k_yg = jax.random.split(key, 6)
    b = config.synth.batch_size
    lab = draw_labeled(k_lab, b)
    x_lab, y_lab = xs[lab], y[lab]
    x_real = xs[draw_train(k_real, b)]  # AC-GAN's real/fake term: labels never read
    acgan = config.synth.model == "acgan"
    labels = lambda k: jax.random.categorical(k, jnp.log(state.fitted.prior), shape=(b,))
    noise = lambda k: jax.random.normal(k, (b, config.synth.noise_dim))
    gen = lambda p, z, c: nets.gen.apply({"params": p}, z, c)
    disc = lambda p, v, c: nets.disc.apply({"params": p}, v, c)
    y_fd = labels(k_yd)
    fake_d = jax.lax.stop_gradient(gen(state.gen.params, noise(k_zd), y_fd))

    def d_loss_fn(dp):
        fake_src, fake_cls = disc(dp, fake_d, y_fd)
        if not acgan:
            return losses.cgan_discriminator_loss(disc(dp, x_lab, y_lab)[0], fake_src)
        real_src = disc(dp, x_real, None)[0]
        return losses.acgan_discriminator_loss(
            real_src, fake_src, disc(dp, x_lab, None)[1], y_lab, fake_cls, y_fd
        )

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.disc.params)
    state = state._replace(disc=adam_update(SYNTH_ADAM, state.disc, d_grads, hp.synth_d_lr))
    y_fg, disc_params = labels(k_yg), state.disc.params

    def g_loss_fn(gp):
        src, cls = disc(disc_params, gen(gp, noise(k_zg), y_fg), y_fg)
        return losses.acgan_generator_loss(src, cls, y_fg) if acgan else losses.cgan_generator_loss(src)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.gen.params)
    state = state._replace(gen=adam_update(SYNTH_ADAM, state.gen, g_grads, hp.synth_g_lr))
    return state, {"synth_d": d_loss, "synth_g": g_loss}


class Inputs(NamedTuple):
    xs: jax.Array  # [N, F] every row in the run's generator space
    y: jax.Array  # [N] int32
    draw_train: engine.RowSampler
    draw_labeled: engine.RowSampler


def prepare(config: Config, phase: str, state: GANState, run: RunSpec, data) -> Inputs:
    x, y = data
    xs = synth_forward(config, state.fitted.transform, x)
    return Inputs(xs, y, engine.row_sampler(run.train_mask), engine.row_sampler(run.labeled_mask))


def step(config: Config, phase: str, state: GANState, key, run: RunSpec, inputs: Inputs):
    nets = build_synth_networks(config, inputs.xs.shape[1])
    args = (inputs.xs, inputs.y, inputs.draw_labeled, inputs.draw_train)
    return synth_step(nets, config, state, key, run.hparams, *args)


TRAINER = engine.Trainer(init=init_synth_state, prepare=prepare, step=step)


def train_synth_runs(
    config: Config, x: np.ndarray, y: np.ndarray, runs: RunSpec, **kwargs
) -> engine.TrainResult:
    """Trains the class-conditional generator of R runs in one fused, run-vmapped call
    (`engine.train_runs`; `kwargs`: mesh, block_runs, on_chunk), `config.synth.steps` steps in
    chunks of `log_every`.

    Raises:
      NonFiniteLossError: a loss became NaN/inf (names the run and the step).
    """
    data = (np.asarray(x, np.float32), np.asarray(y, np.int32))
    return engine.train_runs(TRAINER, config, schedule(config), data, runs, **kwargs)
