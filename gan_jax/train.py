"""Train steps and the fused trainer.

One run = one (repeat, fold) of the study: fit the scaler on the run's training rows, pretrain
the autoencoder on them (eq. 4), then train the semi-supervised GAN on the encoder's latent
codes (eqs. 5-8). A training phase is one jitted `lax.scan` over steps, `vmap`ped over runs,
with the runs axis sharded over all devices; the host sees metrics every `log_every` steps.

Rows are never dropped: every run sees the full data matrix plus a boolean mask of its
training rows, so folds of unequal size share one compiled program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax import losses, preprocess
from gan_jax.config import Config
from gan_jax.models import AutoEncoder, DiscriminatorClassifier, Generator

Params = Any
PHASES = ("ae", "gan")


class TrainState(NamedTuple):
    step: jax.Array  # [] int32, global step over both phases
    scaler: preprocess.ScalerParams
    ae_params: Params
    ae_opt: optax.OptState
    disc_params: Params
    disc_opt: optax.OptState
    gen_params: Params
    gen_opt: optax.OptState


class RunData(NamedTuple):
    key: jax.Array  # [2] uint32: the run's base key
    train_mask: jax.Array  # [N] bool: the run's training rows


class Models(NamedTuple):
    ae: AutoEncoder
    disc: DiscriminatorClassifier
    gen: Generator
    ae_opt: optax.GradientTransformation
    disc_opt: optax.GradientTransformation
    gen_opt: optax.GradientTransformation


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; names the run and the step."""


def build_models(config: Config, n_features: int) -> Models:
    classifier_dim = config.latent_dim if config.use_autoencoder else n_features
    return Models(
        ae=AutoEncoder(config.ae_hidden, config.latent_dim, n_features),
        disc=DiscriminatorClassifier(config.disc_hidden, num_classes=2),
        gen=Generator(config.gen_hidden, classifier_dim, bounded=config.use_autoencoder),
        ae_opt=optax.adam(config.ae_lr),
        # b1 = 0.5 is the usual GAN choice (Radford et al. 2016; Salimans et al. 2016).
        disc_opt=optax.adam(config.d_lr, b1=0.5),
        gen_opt=optax.adam(config.g_lr, b1=0.5),
    )


def run_keys(seed: int, run_ids: np.ndarray) -> jax.Array:
    """Each run's base key, a function of the seed and the run's index only."""
    base = jax.random.key_data(jax.random.key(seed))
    return jax.vmap(lambda r: jax.random.fold_in(base, r))(jnp.asarray(run_ids, jnp.uint32))


def init_state(config: Config, x: jax.Array, run: RunData) -> TrainState:
    """Initial state of one run; the scaler is fitted on the run's training rows only."""
    models = build_models(config, x.shape[1])
    k_ae, k_d, k_g = jax.random.split(jax.random.fold_in(run.key, 0x1A1), 3)
    classifier_dim = config.latent_dim if config.use_autoencoder else x.shape[1]
    ae_params = models.ae.init(k_ae, jnp.zeros((1, x.shape[1])))["params"]
    disc_params = models.disc.init(k_d, jnp.zeros((1, classifier_dim)))["params"]
    gen_params = models.gen.init(k_g, jnp.zeros((1, config.noise_dim)))["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        scaler=preprocess.fit(config.scaler, x, run.train_mask),
        ae_params=ae_params,
        ae_opt=models.ae_opt.init(ae_params),
        disc_params=disc_params,
        disc_opt=models.disc_opt.init(disc_params),
        gen_params=gen_params,
        gen_opt=models.gen_opt.init(gen_params),
    )


def classifier_inputs(config: Config, state: TrainState, x: jax.Array) -> jax.Array:
    """Raw features [N, F] → what the classifier sees: latent codes [N, L] or scaled features."""
    xs = preprocess.apply(state.scaler, x)
    if not config.use_autoencoder:
        return xs
    ae = build_models(config, x.shape[1]).ae
    return ae.apply({"params": state.ae_params}, xs, method=AutoEncoder.encode)


def predict_proba(config: Config, state: TrainState, x: jax.Array) -> jax.Array:
    """Malignant probability [N] of one run's model for raw feature rows x [N, F]."""
    disc = build_models(config, x.shape[1]).disc
    logits, _ = disc.apply({"params": state.disc_params}, classifier_inputs(config, state, x))
    return jax.nn.softmax(logits, axis=-1)[:, 1]


def _sample(key: jax.Array, train_idx: jax.Array, n_train: jax.Array, size: int) -> jax.Array:
    """`size` training-row indices drawn uniformly with replacement."""
    return train_idx[jax.random.randint(key, (size,), 0, n_train)]


def ae_step(models: Models, config: Config, state: TrainState, key: jax.Array, xs, sample):
    """One autoencoder step on a batch of scaled training rows (eq. 4)."""
    batch = xs[sample(key, config.batch_size)]  # [B, F]

    def loss_fn(params):
        return losses.reconstruction_loss_eq4(models.ae.apply({"params": params}, batch), batch)

    loss, grads = jax.value_and_grad(loss_fn)(state.ae_params)
    updates, ae_opt = models.ae_opt.update(grads, state.ae_opt, state.ae_params)
    state = state._replace(ae_params=optax.apply_updates(state.ae_params, updates), ae_opt=ae_opt)
    return state, {"ae": loss}


def gan_step(models: Models, config: Config, state: TrainState, key: jax.Array, h, y, sample):
    """One semi-supervised GAN step on classifier inputs h [N, D]: discriminator, then generator.

    With `config.use_gan` False, only the supervised part of the discriminator loss is used:
    the same classifier trained as a plain supervised MLP.
    """
    k_lab, k_unl, k_zd, k_zg = jax.random.split(key, 4)
    b = config.batch_size
    lab = sample(k_lab, b)
    h_lab, y_lab = h[lab], y[lab]
    h_real = h[sample(k_unl, b)]
    disc = lambda p, v: models.disc.apply({"params": p}, v)
    gen = lambda p, z: models.gen.apply({"params": p}, z)
    noise = lambda k: jax.random.normal(k, (b, config.noise_dim))

    def d_loss_fn(dp):
        if not config.use_gan:
            return losses.supervised_loss(disc(dp, h_lab)[0], y_lab)
        fake = jax.lax.stop_gradient(gen(state.gen_params, noise(k_zd)))
        return losses.sgan_discriminator_loss(
            disc(dp, h_lab)[0], y_lab, disc(dp, h_real)[0], disc(dp, fake)[0],
            config.unsupervised_weight,
        )  # fmt: skip

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.disc_params)
    updates, disc_opt = models.disc_opt.update(d_grads, state.disc_opt, state.disc_params)
    disc_params = optax.apply_updates(state.disc_params, updates)
    state = state._replace(disc_params=disc_params, disc_opt=disc_opt)
    if not config.use_gan:
        return state, {"d": d_loss}

    def g_loss_fn(gp):
        fake_logits, fake_features = disc(disc_params, gen(gp, noise(k_zg)))
        if config.gen_loss == "eq7":
            return losses.generator_loss_eq7(fake_logits)
        real_features = jax.lax.stop_gradient(disc(disc_params, h_real)[1])
        return losses.feature_matching_loss(real_features, fake_features)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.gen_params)
    updates, gen_opt = models.gen_opt.update(g_grads, state.gen_opt, state.gen_params)
    state = state._replace(gen_params=optax.apply_updates(state.gen_params, updates), gen_opt=gen_opt)
    return state, {"d": d_loss, "g": g_loss}


def train_chunk(config: Config, phase: str, n_steps: int, state: TrainState, run: RunData, x, y):
    """`n_steps` steps of `phase` for one run, fused with `lax.scan`. Returns the new state and
    per-step losses {name: [n_steps]}. The step key is fold_in(run key, global step), so the
    result does not depend on how a training is cut into chunks (which makes resume exact)."""
    models = build_models(config, x.shape[1])
    train_idx = jnp.argsort(~run.train_mask, stable=True)  # training rows first
    n_train = jnp.sum(run.train_mask)
    sample = lambda k, size: _sample(k, train_idx, n_train, size)
    if phase == "ae":
        inputs = preprocess.apply(state.scaler, x)
        step_fn = lambda s, k: ae_step(models, config, s, k, inputs, sample)
    else:
        inputs = classifier_inputs(config, state, x)  # the encoder is frozen in this phase
        step_fn = lambda s, k: gan_step(models, config, s, k, inputs, y, sample)

    def body(s, _):
        s, metrics = step_fn(s, jax.random.fold_in(run.key, s.step))
        return s._replace(step=s.step + 1), metrics

    return jax.lax.scan(body, state, None, length=n_steps)


@functools.lru_cache(maxsize=64)
def fused_chunk_fn(config: Config, phase: str, n_steps: int) -> Callable:
    """The jitted, run-vmapped chunk function: (states, runs, x, y) -> (states, losses [R, n])."""
    fn = functools.partial(train_chunk, config, phase, n_steps)
    vmapped = jax.vmap(fn, in_axes=(0, 0, None, None), out_axes=(0, 1))
    return jax.jit(vmapped, donate_argnums=(0,))


@functools.lru_cache(maxsize=16)
def _init_fn(config: Config) -> Callable:
    return jax.jit(jax.vmap(functools.partial(init_state, config), in_axes=(None, 0)))


def runs_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all) whose single axis carries the runs."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("runs",))


def phase_schedule(config: Config, start_step: int = 0) -> list[tuple[str, int, int]]:
    """(phase, first step, n_steps) chunks from `start_step` to the end of training."""
    bounds = {"ae": (0, config.ae_phase_steps), "gan": (config.ae_phase_steps, config.total_steps)}
    chunks = []
    for phase in PHASES:
        lo, hi = bounds[phase]
        step = max(lo, start_step)
        while step < hi:
            n = min(config.log_every, hi - step)
            chunks.append((phase, step, n))
            step += n
    return chunks


class TrainResult(NamedTuple):
    state: TrainState  # leaves [R, ...] on the host-visible devices
    history: list[dict]  # one entry per chunk: {"step", "phase", <loss>: mean over runs}


def train_runs(
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    train_masks: np.ndarray,
    run_ids: np.ndarray | None = None,
    *,
    state: TrainState | None = None,
    mesh: Mesh | None = None,
    on_chunk: Callable[[TrainState, dict], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Trains R runs at once: x [N, F], y [N], train_masks [R, N] bool.

    Args:
      run_ids: [R] indices that seed each run (default 0..R-1); run r trained alone with
        run_ids=[r] gives the same model as inside the batch.
      state: a state to resume from (e.g. restored from a checkpoint); training continues
        from its step.
      mesh: devices to shard the runs over (default: all devices).
      on_chunk: called after every chunk with the state and the chunk's log entry
        (checkpointing, progress reporting).
    Raises:
      NonFiniteLossError: a loss became NaN/inf; the message names the run and the step.
    """
    train_masks = np.asarray(train_masks, bool)
    n_runs = train_masks.shape[0]
    run_ids = np.arange(n_runs) if run_ids is None else np.asarray(run_ids)
    mesh = mesh or runs_mesh()
    # Pad the runs axis to a multiple of the device count with copies of the last run.
    pad = -n_runs % mesh.size
    take = np.concatenate([np.arange(n_runs), np.full(pad, n_runs - 1)]).astype(int)
    by_run = NamedSharding(mesh, PartitionSpec("runs"))
    replicated = NamedSharding(mesh, PartitionSpec())
    runs = jax.device_put(RunData(run_keys(config.seed, run_ids[take]), train_masks[take]), by_run)
    x = jax.device_put(jnp.asarray(x, jnp.float32), replicated)
    y = jax.device_put(jnp.asarray(y, jnp.int32), replicated)
    if state is None:
        state = _init_fn(config)(x, runs)
    else:
        state = jax.tree.map(lambda a: np.asarray(a)[take] if pad else a, state)
    state = jax.device_put(state, by_run)

    start = int(np.asarray(jax.device_get(state.step)).reshape(-1)[0])
    history = []
    bar = _progress_bar(config, start) if progress else None
    for phase, first_step, n_steps in phase_schedule(config, start):
        state, step_losses = fused_chunk_fn(config, phase, n_steps)(state, runs, x, y)
        step_losses = jax.device_get(step_losses)  # the only host sync per chunk
        _check_finite(step_losses, first_step, n_runs)
        entry = {"step": first_step + n_steps, "phase": phase}
        entry.update({k: float(np.mean(v[:, :n_runs])) for k, v in step_losses.items()})
        history.append(entry)
        if on_chunk is not None:
            on_chunk(_unpad(state, n_runs, pad), entry)
        if bar is not None:
            bar.update(n_steps)
            bar.set_postfix({k: f"{v:.3f}" for k, v in entry.items() if k not in ("step", "phase")})
    if bar is not None:
        bar.close()
    return TrainResult(_unpad(state, n_runs, pad), history)


def _unpad(state: TrainState, n_runs: int, pad: int) -> TrainState:
    return jax.tree.map(lambda a: a[:n_runs], state) if pad else state


def _check_finite(step_losses: dict[str, np.ndarray], first_step: int, n_runs: int) -> None:
    for name, values in step_losses.items():  # values: [n_steps, R]
        bad = ~np.isfinite(values[:, :n_runs])
        if bad.any():
            step, run = np.argwhere(bad)[0]
            raise NonFiniteLossError(
                f"run {run}: the {name!r} loss is {values[step, run]} at step "
                f"{first_step + step}; training stopped (try a lower learning rate)"
            )


def _progress_bar(config: Config, start: int):
    from tqdm.auto import tqdm

    return tqdm(total=config.total_steps, initial=start, desc=config.name, unit="step")


@functools.lru_cache(maxsize=16)
def _predict_fn(config: Config) -> Callable:
    return jax.jit(jax.vmap(functools.partial(predict_proba, config), in_axes=(0, None)))


def predict_runs(config: Config, state: TrainState, x: np.ndarray) -> np.ndarray:
    """Malignant probability [R, N] of every run's model on rows x [N, F]."""
    return np.asarray(_predict_fn(config)(state, jnp.asarray(x, jnp.float32)))
