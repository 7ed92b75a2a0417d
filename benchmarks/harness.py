"""The run record and writer every benchmark shares (minimal; the `tooling` branch holds the full
one, with the same API): `record(argv)` says what made a result, `write` puts the JSON and the
Markdown fragment side by side in results/."""

from __future__ import annotations

import json
import os
import platform
import sys
import time


def record(argv=None) -> dict:
    """Command, commit (+dirty flag), library versions, device, load average and start time."""
    from gan_jax import runtime

    commit = runtime.git_commit()
    return {
        "command": " ".join(["python", "-m", _module(), *(sys.argv[1:] if argv is None else argv)]),
        "commit": commit.removesuffix("+dirty"),
        "dirty": commit.endswith("+dirty"),
        "versions": runtime.library_versions(),
        "device": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "machine": platform.machine(),
        },
        "load_average": list(os.getloadavg()),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _module() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else os.path.basename(sys.argv[0])


def write(out_dir: str, name: str, data: dict, markdown: str) -> list[str]:
    """Writes out_dir/name.json and out_dir/name.md; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, f"{name}.json"), os.path.join(out_dir, f"{name}.md")]
    with open(paths[0], "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    with open(paths[1], "w") as f:
        f.write(markdown.rstrip() + "\n")
    return paths
