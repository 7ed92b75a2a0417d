"""One URI scheme for every artifact: a local path (the default), s3://bucket/key or gs://bucket/key.

Local paths need nothing beyond the standard library; cloud schemes go through fsspec
(install the `cloud` extra for s3fs / gcsfs). Credentials come from where the cloud SDKs look
(environment, profiles, workload identity); a URI that carries credentials itself is refused,
so none can end up in logs or results files. An S3-compatible store (MinIO, on-prem) is reached
through the standard AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL variables or `set_s3_endpoint`; a GCS
emulator through STORAGE_EMULATOR_HOST (gcsfs >= 2026 also needs
GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false there, else a bucket-type probe stalls on 60 s time-outs).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import IO, Any
from urllib.parse import urlsplit

import fsspec

# fsspec protocol -> the package that implements it, for a clear "install" message.
_CLOUD_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}


def is_remote(uri: str | os.PathLike) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def redact(uri: str | os.PathLike) -> str:
    """`uri` with any user:password@ part replaced, for messages and logs."""
    return re.sub(r"^([a-zA-Z][\w+.-]*://)[^/@]*@", r"\1***@", str(uri))


def check_uri(uri: str | os.PathLike) -> str:
    """Returns `uri` as a string; raises ValueError if it embeds credentials (user:secret@),
    because URIs are written into results and logs."""
    text = os.fspath(uri)
    if is_remote(text) and "@" in urlsplit(text).netloc:
        raise ValueError(
            f"{redact(text)}: credentials inside a URI are not accepted (they would be logged); "
            "use the environment (AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS), "
            "a profile or workload identity instead"
        )
    return text


def filesystem(uri: str | os.PathLike) -> tuple[fsspec.AbstractFileSystem, str]:
    """(fsspec filesystem, path inside it) for `uri`; a clear error if the scheme's package is
    missing."""
    text = check_uri(uri)
    try:
        return fsspec.core.url_to_fs(text)
    except ImportError as e:
        scheme = text.split("://", 1)[0]
        package = _CLOUD_PACKAGES.get(scheme, f"the fsspec implementation of {scheme}://")
        raise ImportError(
            f"{redact(text)}: {scheme}:// needs {package}; install it with pip install 'gan_jax[cloud]'"
        ) from e


def join(uri: str | os.PathLike, *parts: str) -> str:
    """`uri`/part/...; '/' works for local paths and object stores alike."""
    return "/".join([os.fspath(uri).rstrip("/"), *(p.strip("/") for p in parts)])


@contextlib.contextmanager
def open_uri(uri: str | os.PathLike, mode: str = "r", **kwargs: Any) -> IO:
    """Opens `uri` for reading or writing, whatever its scheme."""
    with fsspec.open(check_uri(uri), mode, **kwargs) as f:
        yield f


def read_text(uri: str | os.PathLike) -> str:
    return read_bytes(uri).decode("utf-8")


def read_bytes(uri: str | os.PathLike) -> bytes:
    fs, path = filesystem(uri)
    return fs.cat_file(path)


def write_text(uri: str | os.PathLike, text: str) -> None:
    """Writes `text` to `uri`; see `write_bytes`."""
    write_bytes(uri, text.encode("utf-8"))


def write_bytes(uri: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `uri`. A local file is written to a temporary name and renamed, so a
    crash never leaves it half-written; an object is sent in one request, and object stores
    publish it only once it is complete."""
    if is_remote(uri):
        fs, path = filesystem(uri)
        fs.pipe_file(path, data)
        return
    path = os.fspath(uri)
    if path.startswith("file://"):
        path = path[len("file://") :]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def exists(uri: str | os.PathLike) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def listdir(uri: str | os.PathLike) -> list[str]:
    """Names (not paths) directly under `uri`; [] if there is nothing there."""
    fs, path = filesystem(uri)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != path.rstrip("/"))


def remove(uri: str | os.PathLike) -> None:
    """Deletes the file or folder at `uri` (recursively); nothing if it does not exist."""
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def upload_dir(local_dir: str | os.PathLike, uri: str | os.PathLike) -> list[str]:
    """Copies every file under `local_dir` to `uri` (any scheme), file by file (fsspec's
    recursive put nests folders differently per backend). Returns the relative paths sent."""
    fs, root = filesystem(uri)
    sent = []
    for rel in _local_files(local_dir):
        fs.makedirs(os.path.dirname(f"{root}/{rel}"), exist_ok=True)
        fs.put_file(os.path.join(local_dir, rel), f"{root}/{rel}")
        sent.append(rel)
    return sent


def download_dir(uri: str | os.PathLike, local_dir: str | os.PathLike) -> list[str]:
    """Copies every file under `uri` into `local_dir`. Returns the relative paths received."""
    fs, root = filesystem(uri)
    root = root.rstrip("/")
    received = []
    for remote in sorted(fs.find(root)):
        rel = remote[len(root) :].lstrip("/")
        target = os.path.join(local_dir, *rel.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.get_file(remote, target)
        received.append(rel)
    if not received:
        raise FileNotFoundError(f"{redact(uri)}: no files to download")
    return received


def _local_files(local_dir: str | os.PathLike) -> list[str]:
    files = []
    for dirpath, _, names in os.walk(local_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), local_dir)
            files.append(rel.replace(os.sep, "/"))
    return sorted(files)


def set_s3_endpoint(url: str | None) -> None:
    """Points every S3 client of this process (s3fs, and the subprocesses it starts) at an
    S3-compatible endpoint, e.g. http://minio:9000. It sets AWS_ENDPOINT_URL_S3, the variable
    botocore reads itself, so other tools in the same environment agree."""
    if not url:
        return
    os.environ["AWS_ENDPOINT_URL_S3"] = url
    try:  # s3fs caches filesystem instances, which hold the old endpoint.
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
    except ImportError:
        pass
