"""Benchmarks and results tooling, outside the library (`gan_jax` never imports this package).

Each driver runs from the repository root as `python -m benchmarks.<name>` and writes its run
record through `benchmarks.harness` (command, commit, versions, device, load average; JSON and
Markdown side by side): bench_train, bench_scale, bench_images, bench_checkpoint, energy_bench
(with its meter, `energy`), ctgan_bench. Also here: the README generator (`python -m
benchmarks.readme`), the lock-file reader (`lockfile`) and the container install check
(`python -m benchmarks.check_image_install`, run by .ci/run).
"""
