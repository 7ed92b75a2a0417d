"""File manifests: the size and SHA-256 of every file in a local folder, written after the files
and checked before anything reads them. One helper for checkpoints and bundles."""

from __future__ import annotations

import hashlib
import os


def local_files(folder: str | os.PathLike) -> list[str]:
    """Every file under `folder`, as sorted '/'-separated relative paths."""
    files = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            files.append(os.path.relpath(os.path.join(dirpath, name), folder).replace(os.sep, "/"))
    return sorted(files)


def file_digest(path: str | os.PathLike) -> dict[str, int | str]:
    with open(path, "rb") as f:
        data = f.read()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def digests(folder: str | os.PathLike, exclude: tuple[str, ...] = ()) -> dict[str, dict]:
    """{relative path: {"bytes", "sha256"}} of every file under `folder` but `exclude`."""
    return {rel: file_digest(os.path.join(folder, rel)) for rel in local_files(folder) if rel not in exclude}


def first_problem(folder: str | os.PathLike, expected: dict[str, dict]) -> str | None:
    """What is wrong with `folder` against the manifest `expected` (a missing, truncated or
    altered file), or None when every listed file matches."""
    for rel, want in expected.items():
        path = os.path.join(folder, *rel.split("/"))
        if not os.path.isfile(path):
            return f"file {rel} is missing"
        got = file_digest(path)
        if got["bytes"] != want["bytes"]:
            return f"file {rel} is truncated or altered ({got['bytes']} bytes, expected {want['bytes']})"
        if got["sha256"] != want["sha256"]:
            return f"file {rel} is corrupt (its SHA-256 does not match the manifest)"
    return None
