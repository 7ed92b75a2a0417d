"""README.md's numbers come from results/: its results block is what scripts/update_readme.py
writes from the committed results files (a hand-edited or stale number fails here)."""

import os
import re

from gan_jax.report import README_BEGIN, README_END, readme_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_results_block_is_generated_from_results():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    block = re.search(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), readme, re.S)
    assert block, "README.md lost its results block"
    assert block.group(0) == readme_results(os.path.join(ROOT, "results")), (
        "README.md's results block is stale: run `python scripts/update_readme.py`"
    )
