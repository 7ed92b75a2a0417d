"""The table trainer: the paper's pipeline on feature rows, plugged into `engine`.

One run = fit the scaler on the run's training rows, pretrain the autoencoder on them (eq. 4),
then train the semi-supervised GAN on the encoder's latent codes (eqs. 5-8). This module holds
only the maths (init and steps); keys, placement, blocks, the schedule and the fused chunk are
the engine's.

Labels are data: each run carries a mask of its *labelled* training rows. Everything
unsupervised (scaler, autoencoder, the SGAN's real/fake term, feature matching) uses all of
the run's training rows; only the supervised cross-entropy reads labels, and only those of the
labelled rows. Rows are never dropped: every run sees the full data matrix plus boolean masks,
so folds of unequal size share one compiled program.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import Config
from gan_jax.evaluation import evaluate
from gan_jax.models import AutoEncoder, DiscriminatorClassifier, Generator, losses, preprocess
from gan_jax.training import blocks, engine
from gan_jax.training.engine import AE_ADAM, GAN_ADAM, GANState, Network, RunSpec, adam_update
from gan_jax.training.generator_step import generator_update

Params = Any


class ModelParams(NamedTuple):
    """What inference needs (and a bundle stores): the fitted scaler and every network's params."""

    scaler: preprocess.ScalerParams
    ae: Params
    disc: Params
    gen: Params


class HParams(NamedTuple):
    """The table trainer's numeric hyperparameters of one run ([] float32 each; `PerRun`
    settings of `Config`): data, not compile-time constants."""

    ae_lr: jax.Array
    d_lr: jax.Array
    g_lr: jax.Array
    unsupervised_weight: jax.Array
    entropy_weight: jax.Array
    consistency_weight: jax.Array
    consistency_noise: jax.Array
    ema_decay: jax.Array


class Networks(NamedTuple):
    ae: AutoEncoder
    disc: DiscriminatorClassifier
    gen: Generator


def build_networks(config: Config, n_features: int) -> Networks:
    classifier_dim = config.model.latent_dim if config.model.use_autoencoder else n_features
    return Networks(
        ae=AutoEncoder(config.model.ae_hidden, config.model.latent_dim, n_features),
        disc=DiscriminatorClassifier(config.model.disc_hidden, num_classes=2),
        gen=Generator(config.model.gen_hidden, classifier_dim, bounded=config.model.use_autoencoder),
    )


def hparams_of(config: Config, n_runs: int) -> HParams:
    """The config's numeric hyperparameters, one copy per run: [R] float32 each."""
    return HParams(*(np.full(n_runs, getattr(config.schedule, f), np.float32) for f in HParams._fields))


def schedule(config: Config) -> engine.Schedule:
    """Autoencoder pretraining (none without an autoencoder), then the GAN."""
    return engine.Schedule(
        (("ae", config.ae_phase_steps), ("gan", config.schedule.gan_steps)), config.schedule.log_every
    )


def init_state(config: Config, data: tuple[jax.Array, jax.Array], run: RunSpec) -> GANState:
    """Initial state of one run; the scaler is fitted on the run's training rows only."""
    x = data[0]
    nets = build_networks(config, x.shape[1])
    k_ae, k_d, k_g = jax.random.split(engine.init_and_step_keys(run.key)[0], 3)
    classifier_dim = config.model.latent_dim if config.model.use_autoencoder else x.shape[1]
    ae = nets.ae.init(k_ae, jnp.zeros((1, x.shape[1])))["params"]
    disc = nets.disc.init(k_d, jnp.zeros((1, classifier_dim)))["params"]
    gen = nets.gen.init(k_g, jnp.zeros((1, config.model.noise_dim)))["params"]
    return GANState(
        step=jnp.zeros((), jnp.int32),
        fitted=preprocess.fit(config.data.scaler, x, run.train_mask),
        ae=Network(ae, AE_ADAM.init(ae)),
        disc=Network(disc, GAN_ADAM.init(disc)),
        gen=Network(gen, GAN_ADAM.init(gen)),
        teacher=disc if config.schedule.ssl_extras else None,
    )


def state_shapes(config: Config, n_features: int, n_runs: int | None = None) -> GANState:
    """Shapes and dtypes (jax.ShapeDtypeStruct) of a run's state, or of `n_runs` runs stacked;
    no compute. The one template of checkpoints and bundles."""
    n = 8  # any row count: no parameter's shape depends on it
    scalar = jax.ShapeDtypeStruct((), np.float32)
    run = RunSpec(
        jax.ShapeDtypeStruct((2,), np.uint32),
        jax.ShapeDtypeStruct((n,), bool),
        jax.ShapeDtypeStruct((n,), bool),
        HParams(*[scalar] * len(HParams._fields)),
    )
    init = functools.partial(init_state, config)
    if n_runs is not None:
        init = jax.vmap(init, in_axes=(None, 0))
        run = jax.tree.map(lambda s: jax.ShapeDtypeStruct((n_runs, *s.shape), s.dtype), run)
    data = (jax.ShapeDtypeStruct((n, n_features), np.float32), jax.ShapeDtypeStruct((n,), np.int32))
    return jax.eval_shape(init, data, run)


def model_params(state: GANState) -> ModelParams:
    return ModelParams(state.fitted, state.ae.params, state.disc.params, state.gen.params)


def classifier_inputs(config: Config, model: ModelParams, x: jax.Array) -> jax.Array:
    """Raw features [N, F] → what the classifier sees: latent codes [N, L] or scaled features."""
    xs = preprocess.apply(model.scaler, x)
    if not config.model.use_autoencoder:
        return xs
    ae = build_networks(config, x.shape[1]).ae
    return ae.apply({"params": model.ae}, xs, method=AutoEncoder.encode)


def predict_proba(config: Config, model: ModelParams, x: jax.Array) -> jax.Array:
    """Malignant probability [N] (class 1 of the K-class head) of one run's model for raw
    feature rows x [N, F]."""
    disc = build_networks(config, x.shape[1]).disc
    logits, _ = disc.apply({"params": model.disc}, classifier_inputs(config, model, x))
    return jax.nn.softmax(logits, axis=-1)[:, evaluate.MALIGNANT]


def ae_step(nets: Networks, config: Config, state: GANState, key, hp: HParams, xs, draw_train):
    """One autoencoder step on a batch of the run's scaled training rows (eq. 4): unsupervised,
    so every training row is used, labelled or not."""
    batch = xs[draw_train(key, config.schedule.batch_size)]  # [B, F]

    def loss_fn(params):
        return losses.reconstruction_loss_eq4(nets.ae.apply({"params": params}, batch), batch)

    loss, grads = jax.value_and_grad(loss_fn)(state.ae.params)
    return state._replace(ae=adam_update(AE_ADAM, state.ae, grads, hp.ae_lr)), {"ae": loss}


def gan_step(
    nets: Networks, config: Config, state: GANState, key, hp: HParams, features, y, draw_labeled, draw_train
):
    """One semi-supervised GAN step on classifier inputs features [N, D]: discriminator, then
    generator.

    The supervised cross-entropy sees a batch of *labelled* rows (`draw_labeled`); the
    real/fake term and feature matching see a batch of *all* training rows (`draw_train`), whose
    labels are never read. With `config.model.use_gan` False only the supervised term is
    trained: the same classifier as a plain supervised MLP on the labelled rows. With
    `config.schedule.ssl_extras` the discriminator's loss gains `unlabeled_terms` and the
    teacher follows the student.
    """
    k_lab, k_real, k_zd, k_zg = jax.random.split(key, 4)
    b = config.schedule.batch_size
    lab = draw_labeled(k_lab, b)
    x_lab, y_lab = features[lab], y[lab]
    x_real = features[draw_train(k_real, b)]
    disc = lambda p, v: nets.disc.apply({"params": p}, v)
    gen = lambda p, z: nets.gen.apply({"params": p}, z)
    noise = lambda k: jax.random.normal(k, (b, config.model.noise_dim))

    def d_loss_fn(dp):
        if not config.model.use_gan:
            loss = losses.supervised_loss(disc(dp, x_lab)[0], y_lab)
        else:
            fake = jax.lax.stop_gradient(gen(state.gen.params, noise(k_zd)))
            loss = losses.sgan_discriminator_loss(
                disc(dp, x_lab)[0], y_lab, disc(dp, x_real)[0], disc(dp, fake)[0], hp.unsupervised_weight
            )
        if config.schedule.ssl_extras:
            loss = loss + unlabeled_terms(disc, dp, state.teacher, x_real, hp, key)
        return loss

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.disc.params)
    state = state._replace(disc=adam_update(GAN_ADAM, state.disc, d_grads, hp.d_lr))
    if config.schedule.ssl_extras:
        ema = lambda t, p: hp.ema_decay * t + (1.0 - hp.ema_decay) * p
        state = state._replace(teacher=jax.tree.map(ema, state.teacher, state.disc.params))
    if not config.model.use_gan:
        return state, {"d": d_loss}
    state, g_loss = generator_update(state, disc, gen, noise(k_zg), x_real, config.schedule.gen_loss, hp.g_lr)
    return state, {"d": d_loss, "g": g_loss}


def unlabeled_terms(disc, params, teacher, x_real, hp: HParams, key) -> jax.Array:
    """The semi-supervised extras (`schedule.ssl_extras`) on rows x_real [B, D] whose labels are
    never read: entropy minimisation of the student's predictions, and consistency between the
    student and the EMA teacher under independent input noise. Their keys are folded from the
    step key, so the draws of every other term are those of a run without the extras."""
    k_student, k_teacher = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    noisy = lambda k: x_real + hp.consistency_noise * jax.random.normal(k, x_real.shape)
    student = disc(params, noisy(k_student))[0]
    target = disc(teacher, noisy(k_teacher))[0]
    return hp.entropy_weight * losses.entropy_loss(disc(params, x_real)[0]) + (
        hp.consistency_weight * losses.consistency_loss(student, target)
    )


class Inputs(NamedTuple):
    """What every step of a chunk reads, computed once per chunk."""

    features: jax.Array  # [N, D] the phase's inputs: scaled rows (ae) or classifier inputs (gan)
    y: jax.Array  # [N] int32
    draw_train: engine.RowSampler
    draw_labeled: engine.RowSampler


def prepare(config: Config, phase: str, state: GANState, run: RunSpec, data) -> Inputs:
    x, y = data
    if phase == "ae":
        features = preprocess.apply(state.fitted, x)
    else:
        features = classifier_inputs(config, model_params(state), x)  # the encoder is frozen here
    return Inputs(features, y, engine.row_sampler(run.train_mask), engine.row_sampler(run.labeled_mask))


def step(config: Config, phase: str, state: GANState, key, run: RunSpec, inputs: Inputs):
    nets = build_networks(config, _n_features(state))
    if phase == "ae":
        return ae_step(nets, config, state, key, run.hparams, inputs.features, inputs.draw_train)
    return gan_step(
        nets,
        config,
        state,
        key,
        run.hparams,
        inputs.features,
        inputs.y,
        inputs.draw_labeled,
        inputs.draw_train,
    )


def _n_features(state: GANState) -> int:
    return state.fitted.shift.shape[-1]  # the scaler has one entry per raw feature


TRAINER = engine.Trainer(init=init_state, prepare=prepare, step=step, predict=predict_proba)


def make_runs(
    config: Config,
    y: np.ndarray,
    train_masks: np.ndarray,
    labeled_masks: np.ndarray | None = None,
    run_ids: np.ndarray | None = None,
    hparams: HParams | None = None,
) -> RunSpec:
    """Host-side (numpy) RunSpec of R runs, checked (`engine.make_runs`).

    Args:
      train_masks: [R, N] bool training rows.
      labeled_masks: [R, N] bool labelled rows, each within its run's training rows and holding
        both classes (default: `evaluate.labeled_masks` at `config.cv.labeled_fraction`).
      run_ids: [R] indices that seed each run (default 0..R-1).
      hparams: [R] arrays (default: the config's values for every run).
    """
    train_masks = np.asarray(train_masks, bool)
    run_ids = np.arange(len(train_masks)) if run_ids is None else np.asarray(run_ids)
    if labeled_masks is None:
        labeled_masks = evaluate.labeled_masks(
            y, train_masks, config.cv.labeled_fraction, config.cv.seed, run_ids
        )
    hparams = hparams_of(config, len(train_masks)) if hparams is None else hparams
    return engine.make_runs(y, train_masks, labeled_masks, HParams(*hparams), config.cv.seed, run_ids)


def table_data(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 [N, F], y int32 [N]): the data every run sees."""
    return np.asarray(x, np.float32), np.asarray(y, np.int32)


def train_runs(
    config: Config, x: np.ndarray, y: np.ndarray, runs: RunSpec, *, progress: bool = False, **kwargs
) -> engine.TrainResult:
    """`engine.train_runs` of the table trainer: R runs on x [N, F], y [N]; `kwargs` (state,
    mesh, on_chunk, block_runs) as there; `progress` draws a bar."""
    progress = config.name if progress else None
    return engine.train_runs(
        TRAINER, config, schedule(config), table_data(x, y), runs, progress=progress, **kwargs
    )


def state_bytes(config: Config, n_features: int) -> int:
    """Bytes of one run's state (scaler, params, Adam moments)."""
    return int(sum(s.size * s.dtype.itemsize for s in jax.tree.leaves(state_shapes(config, n_features))))


def run_bytes(config: Config, x: np.ndarray, y: np.ndarray) -> int:
    """Bytes one run keeps hot through a chunk (`blocks.run_bytes`): what CPU blocks are sized by."""
    runs = make_runs(config, y, np.ones((1, len(y)), bool))
    return blocks.run_bytes(TRAINER, config, schedule(config), table_data(x, y), runs)


def predict_runs(config: Config, model: ModelParams, x: np.ndarray) -> np.ndarray:
    """Malignant probability [R, N] of every run's model (leaves [R, ...]) on rows x [N, F]."""
    return engine.predict_runs(TRAINER, config, model, np.asarray(x, np.float32))


def fit_predict(
    config: Config, x: np.ndarray, y: np.ndarray, runs: RunSpec, x_eval: np.ndarray | None = None, **kwargs
) -> tuple[engine.TrainResult, np.ndarray]:
    """`train_runs` then every run's malignant probability [R, N] on x_eval (default x), the one
    train-then-score sequence of the studies; `kwargs` as `train_runs`."""
    x_eval = np.asarray(x if x_eval is None else x_eval, np.float32)
    progress = config.name if kwargs.pop("progress", False) else None
    data = table_data(x, y)
    return engine.fit_predict(
        TRAINER, config, schedule(config), data, runs, x_eval, model_params, progress=progress, **kwargs
    )
