"""Rewrites README.md's results block (between the results:begin/end markers) from results/.

Run:    python scripts/update_readme.py        (after `gan-jax reproduce` and the benchmarks)
A test checks that README.md's block equals what this would write, so the two never drift.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gan_jax.report import README_BEGIN, README_END, readme_results  # noqa: E402


def updated(readme: str, block: str) -> str:
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {README_BEGIN} … {README_END} block")
    return pattern.sub(lambda _: block, readme)


def main() -> None:
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        readme = f.read()
    with open(path, "w") as f:
        f.write(updated(readme, readme_results(os.path.join(ROOT, "results"))))
    print(f"updated {path}")


if __name__ == "__main__":
    main()
