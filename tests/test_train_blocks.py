"""Runs trained in blocks inside one compiled call (`train_runs(block_runs=...)`): the same
models, in the same order, as without blocks."""

import functools
import re

import jax
import numpy as np
import pytest

from gan_jax.config import Config, CVConfig, MLPConfig, ScheduleConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate, sweep
from gan_jax.training import blocks, engine, table

TINY = Config(
    name="tiny",
    model=MLPConfig(latent_dim=4, ae_hidden=(8,), disc_hidden=(8, 8), gen_hidden=(8,), noise_dim=4),
    schedule=ScheduleConfig(ae_steps=4, gan_steps=4, batch_size=16, log_every=4),
    cv=CVConfig(n_folds=3, n_repeats=1),
)
N_RUNS = 15  # 5 settings × 3 folds: a multiple of neither 8 devices nor 2 devices × 3 blocks
SPACE = [
    "d_lr=1e-3:3e-2:log",
    "g_lr=1e-3:3e-2:log",
    "unsupervised_weight=0.1:1",
    "labeled_fraction=0.25,0.5,1.0",
]


@pytest.fixture(scope="module")
def sweep_data():
    """(x, y, runs): every run its own setting or fold, so two runs never train alike."""
    ds = load_bundled()
    settings = sweep.random_search(TINY, sweep.parse_space(SPACE), N_RUNS // 3, seed=0)
    return ds.x, ds.y, sweep.sweep_runs(ds.y, settings, evaluate.cv_folds(ds.y, 3, 1, seed=0))


def _leaves(state):
    return [np.asarray(a) for a in jax.tree.leaves(table.model_params(state))]


def _rows(tree, rows):
    return jax.tree.map(lambda a: np.asarray(a)[rows], tree)


def _per_run(result, rows):
    return {k: np.asarray(v)[rows] for e in result.history for k, v in e["per_run"].items()}


@pytest.fixture(scope="module")
def eight_devices(sweep_data):
    """(blocked, unblocked) results of the runs on 8 devices: 1 run per device per block, 2 blocks."""
    x, y, runs = sweep_data
    return tuple(table.train_runs(TINY, x, y, runs, mesh=engine.runs_mesh(), block_runs=b) for b in (1, None))


def test_each_block_is_its_runs_trained_alone_bit_for_bit_in_run_order(sweep_data):
    """Bugs caught: blocks that hand a run another run's parameters or losses (a wrong reshape
    or transpose of the runs axis), padding copies that leak into real runs, a block that does
    not train all its steps. Block j holds runs j, j + n_blocks, ... of the padded runs; each run
    of it must equal, bit for bit, the same run in an unblocked call of just that block's runs
    (same runs per device, so the same kernels: no rounding difference is allowed)."""
    x, y, runs = sweep_data
    n_devices, block_runs, n_blocks = 2, 3, 3  # 9 runs per device in 3 blocks; 3 padding copies
    mesh = engine.runs_mesh(jax.devices()[:n_devices])
    assert blocks.n_run_blocks(0, mesh, N_RUNS, block_runs) == n_blocks
    blocked = table.train_runs(TINY, x, y, runs, mesh=mesh, block_runs=block_runs)
    positions = np.arange(N_RUNS + -N_RUNS % (n_devices * n_blocks))  # padded with copies of the last run
    for j in range(n_blocks):
        members = np.minimum(positions[j::n_blocks], N_RUNS - 1)
        alone = table.train_runs(TINY, x, y, _rows(runs, members), mesh=mesh, block_runs=None)
        real = positions[j::n_blocks] < N_RUNS
        for got, want in zip(
            _leaves(_rows(blocked.state, members[real])), _leaves(_rows(alone.state, real)), strict=True
        ):
            np.testing.assert_array_equal(got, want)
        got, want = _per_run(blocked, members[real]), _per_run(alone, np.flatnonzero(real))
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
    assert all(len(a) == N_RUNS for a in jax.tree.leaves(blocked.state))


def test_blocked_equals_unblocked_up_to_rounding_on_eight_devices(eight_devices):
    """Bug caught: blocks that change what a run learns. Not bit for bit: a block puts 1 run per
    device in each vmapped op where the unblocked call puts 2, and XLA's CPU kernels for another
    batch width may round differently (measured: at most 6e-8 here; with 8 steps it cannot grow
    far). Runs with distinct settings differ by far more than the tolerance, so a permutation
    still fails."""
    blocked, unblocked = eight_devices
    for got, want in zip(_leaves(blocked.state), _leaves(unblocked.state), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    perm = np.roll(np.arange(N_RUNS), 1)  # what a misordered merge would return
    assert any(
        not np.allclose(a[perm], b, rtol=1e-5, atol=1e-6)
        for a, b in zip(_leaves(blocked.state), _leaves(unblocked.state))
    )


def test_blocked_program_moves_no_run_between_devices_and_settings_never_recompile(sweep_data, eight_devices):
    """Bugs caught: a block layout that makes XLA gather runs across devices (a collective in
    the compiled program), and a block size that depends on the settings (a new program per
    setting)."""
    x, y, runs = sweep_data
    mesh = engine.runs_mesh()
    fn = engine.fused_chunk_fn(table.TRAINER, TINY.structure(), "gan", TINY.schedule.log_every, 2)
    placed, data, _ = engine.place_inputs(mesh, runs, table.table_data(x, y), 2)
    state = jax.jit(jax.vmap(functools.partial(table.init_state, TINY.structure()), in_axes=(None, 0)))(
        data, placed
    )
    hlo = fn.lower(state, placed, data).compile().as_text()
    assert not re.findall(r"all-gather|all-to-all|collective-permute|all-reduce|reduce-scatter", hlo)
    n_programs = fn._cache_size()
    other = sweep.sweep_runs(
        y,
        sweep.random_search(TINY, sweep.parse_space(SPACE), N_RUNS // 3, seed=1),
        evaluate.cv_folds(y, 3, 1, seed=0),
    )
    table.train_runs(TINY, x, y, other, mesh=mesh, block_runs=1)
    assert fn._cache_size() == n_programs


def test_auto_blocks_on_cpu_only_and_bad_block_sizes_are_refused():
    """Bugs caught: blocking a GPU/TPU (which wants the widest batch), a CPU default that never
    blocks, and a bad block size accepted silently."""
    config, ds = Config(), load_bundled()  # the paper pipeline on WDBC
    runs = table.make_runs(config, ds.y, evaluate.cv_folds(ds.y, 2, 1, seed=0))
    per_run = blocks.run_bytes(
        table.TRAINER, config, table.schedule(config), table.table_data(ds.x, ds.y), runs
    )
    assert (
        per_run == table.state_bytes(config, 30) + 4 * 569 * 30
    )  # state + the run's scaled float copy of the data
    block = blocks.default_block_runs(per_run, "cpu")
    assert block >= 1 and block * per_run <= blocks.CPU_BLOCK_BYTES < (block + 1) * per_run
    assert blocks.default_block_runs(per_run, "gpu") is None
    assert blocks.default_block_runs(per_run, "tpu") is None
    mesh = engine.runs_mesh(jax.devices()[:2])
    assert blocks.n_run_blocks(per_run, mesh, 10_000, "auto") == -(-5000 // block)
    assert blocks.n_run_blocks(per_run, mesh, 10_000, None) == 1
    for bad in (0, -1, 2.5, "big"):
        with pytest.raises(ValueError, match="block_runs"):
            blocks.n_run_blocks(per_run, mesh, 10, bad)
