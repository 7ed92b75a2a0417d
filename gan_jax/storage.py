"""One URI scheme for every artifact: a local path (the default), s3://bucket/key or gs://bucket/key.

Local paths need nothing beyond the standard library; cloud schemes go through fsspec
(install the `cloud` extra for s3fs / gcsfs).
"""

from __future__ import annotations

import contextlib
import os
from typing import IO, Any

import fsspec


def is_remote(uri: str | os.PathLike) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


@contextlib.contextmanager
def open_uri(uri: str | os.PathLike, mode: str = "r", **kwargs: Any) -> IO:
    """Opens `uri` for reading or writing, whatever its scheme."""
    with fsspec.open(str(uri), mode, **kwargs) as f:
        yield f


def read_text(uri: str | os.PathLike) -> str:
    with open_uri(uri, "r", encoding="utf-8") as f:
        return f.read()


def write_text(uri: str | os.PathLike, text: str) -> None:
    """Writes `text` to `uri`. A local file is written to a temporary name and renamed, so a
    crash never leaves it half-written; object stores publish an object only on close."""
    if is_remote(uri):
        with open_uri(uri, "w", encoding="utf-8") as f:
            f.write(text)
        return
    path = os.fspath(uri)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
