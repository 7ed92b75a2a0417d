"""Rewrites every generated block of README.md from results/ (see benchmarks/readme.py).

Run:    python scripts/update_readme.py        (after `gan-jax reproduce` and the benchmarks)
A test checks that each block equals what this would write, so the two never drift.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.readme import MissingResults, render  # noqa: E402


def main() -> None:
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        readme = f.read()
    try:
        text = render(readme, os.path.join(ROOT, "results"))
    except (MissingResults, ValueError) as exc:
        raise SystemExit(str(exc)) from None
    with open(path, "w") as f:
        f.write(text)
    print(f"updated {path}")


if __name__ == "__main__":
    main()
