"""The tuned study (issue 22): SGAN vs tuned baselines at 1, 2, 5, 10 and 100 % labels, nested CV.

Run:    python -m benchmarks.tuned_study --experiment tuned          (writes results/tuned_study.*)
        python -m benchmarks.tuned_study --experiment tuned:full     (accelerator size)
        python -m benchmarks.tuned_study --experiment tuned --quick  (seconds; tests)
Result: results/tuned_study.md and the headline of README.md; nothing here is a claim.

Default (the 2-core CPU size; estimated 20-30 min on a quiet 2-core machine from one fraction
timed alone, far longer when other jobs share the cores: the record states the load):
5-fold × 2 repeats outer CV (10 outer folds), up to 3 inner folds on the labelled rows, 2
compiled SGAN structures × 32 numeric settings = 64 SGAN settings; each baseline its own grid
(`nested_scarce.SCARCE_BASELINES`, 4 to 18 settings). "full": 10 × 10 outer, 5 inner, 4
structures × 162 settings = 648 (an accelerator's job; not run on CPU).
"""

from gan_jax.config import Config, MLPConfig, ScheduleConfig, split_quick
from gan_jax.studies.tuned_study import TunedStudyConfig

PAPER = Config(name="tuned")
# Structures (one compiled program each): the paper's, and a smaller, shorter eq. 7 one. All
# with ssl_extras on: its weights at 0 are the plain SGAN, searched per run.
EXTRAS = {"schedule.ssl_extras": True}
STRUCTURES = (
    ("paper-fm-l16-s600-b64", EXTRAS),
    (
        "eq7-l8-s300-b32",
        {
            **EXTRAS,
            "schedule.gen_loss": "eq7",
            "model.latent_dim": 8,
            "schedule.gan_steps": 300,
            "schedule.batch_size": 32,
        },
    ),
)
# First values are the paper's (ties go to them); ema_decay 0.99: consistency is mean teacher.
SPACE = (
    ("d_lr", (1e-3, 3e-3)),
    ("g_lr", (1e-3, 3e-3)),
    ("unsupervised_weight", (1.0, 0.3)),
    ("entropy_weight", (0.0, 0.3)),
    ("consistency_weight", (0.0, 1.0)),
    ("ema_decay", (0.99,)),
)
FULL_STRUCTURES = (
    *STRUCTURES,
    ("fm-l8-s1200-b64", {**EXTRAS, "model.latent_dim": 8, "schedule.gan_steps": 1200}),
    (
        "eq7-l32-s600-b128",
        {**EXTRAS, "schedule.gen_loss": "eq7", "model.latent_dim": 32, "schedule.batch_size": 128},
    ),
)
FULL_SPACE = (
    ("d_lr", (1e-3, 3e-4, 3e-3)),
    ("g_lr", (1e-3, 3e-4, 3e-3)),
    ("unsupervised_weight", (1.0, 0.3)),
    ("entropy_weight", (0.0, 0.1, 0.3)),
    ("consistency_weight", (0.0, 0.3, 1.0)),
    ("ema_decay", (0.99,)),
)


def get_config(arg: str = "") -> TunedStudyConfig:
    """The 2-core study; "full": the accelerator size; "quick": a tiny smoke version."""
    variant, quick = split_quick(arg)
    if variant not in ("", "full"):
        raise ValueError(f"tuned has no variant {variant!r} (only 'full' and 'quick')")
    if quick:
        tiny = Config(
            name="tuned",
            model=MLPConfig(latent_dim=4, ae_hidden=(8,), disc_hidden=(8, 8), gen_hidden=(8,), noise_dim=4),
            schedule=ScheduleConfig(
                ae_steps=10, gan_steps=30, batch_size=16, log_every=10, ae_lr=3e-2, d_lr=3e-2
            ),
        )
        return TunedStudyConfig(
            name="tuned-quick",
            base=tiny,
            structures=(("tiny", EXTRAS),),
            space=(("d_lr", (3e-2, 3e-3)), ("entropy_weight", (0.0, 0.3))),
            fractions=(0.05, 1.0),
            n_folds=2,
            n_repeats=1,
            n_inner=2,
            baselines=("logistic_regression", "label_spreading"),
        )
    if variant == "full":
        return TunedStudyConfig(
            "tuned-full", PAPER, FULL_STRUCTURES, FULL_SPACE, n_folds=10, n_repeats=10, n_inner=5
        )
    return TunedStudyConfig("tuned", PAPER, STRUCTURES, SPACE)
