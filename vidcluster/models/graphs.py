"""Where the models' graphs come from: data files of installed packages, and the graphs vidcluster
builds from them, kept in an on-disk cache.

Building a graph needs the `onnx` package, whose import costs ~0.5 CPU s (ml_dtypes with it); a
cached graph does not. So the builders (`dlib_graph`, `onnx_float`, which import nothing of
vidcluster) are imported only when a graph has to be built, and a run with a warm cache never
loads `onnx`. A cache entry is named by the source's SHA-256 and the builder's version, with a
checksum file beside it: a truncated or altered entry is rebuilt, never trusted; a cache that
cannot be written costs a rebuild next time, nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

# Bump a builder's version whenever the graph it writes for the same source could change.
GRAPH_VERSIONS = {"dlib_face_resnet": 1, "yunet_float": 1, "sface_float": 1}


def packaged_path(package: str, relative: str) -> Path:
    """Where a data file shipped inside an installed package lies, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package '{package}' is not installed")
    return Path(next(iter(spec.submodule_search_locations)), relative)


def packaged_file(package: str, relative: str) -> bytes:
    """Bytes of a data file shipped inside an installed package, found without importing it."""
    return packaged_path(package, relative).read_bytes()


def default_cache_dir() -> Path:
    """$VIDCLUSTER_CACHE, else $XDG_CACHE_HOME/vidcluster, else ~/.cache/vidcluster."""
    if os.environ.get("VIDCLUSTER_CACHE"):
        return Path(os.environ["VIDCLUSTER_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "vidcluster"
    return Path.home() / ".cache" / "vidcluster"


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) for this process."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _entry(name: str, source_digest: str, cache_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    model = folder / f"{name}-{source_digest[:16]}-g{GRAPH_VERSIONS[name]}.onnx"
    return model, model.with_name(model.name + ".sha256")


def _read_intact(model: Path, sidecar: Path) -> bytes | None:
    """The cached graph's bytes when they match the checksum stored beside them, else None."""
    try:
        data, expected = model.read_bytes(), sidecar.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return data if hashlib.sha256(data).hexdigest() == expected else None


def _write_atomic(target: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _store(model: Path, sidecar: Path, data: bytes) -> None:
    model.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(model, data)  # the graph first: a crash in between leaves a mismatch, rebuilt later
    _write_atomic(sidecar, hashlib.sha256(data).hexdigest().encode("ascii"))


def cached_graph_path(
    name: str, source_digest: str, build: Callable[[], bytes], cache_dir: str | os.PathLike | None = None
) -> Path:
    """Path of the cached graph `name` for a source, built with `build()` when missing or damaged.
    Raises OSError when the cache cannot be written."""
    model, sidecar = _entry(name, source_digest, cache_dir)
    if _read_intact(model, sidecar) is None:
        _store(model, sidecar, build())
    return model


def cached_graph(
    name: str, source_digest: str, build: Callable[[], bytes], cache_dir: str | os.PathLike | None = None
) -> bytes:
    """The serialised graph `name` for a source: from the cache when intact, else `build()` (stored
    when the cache can be written)."""
    model, sidecar = _entry(name, source_digest, cache_dir)
    data = _read_intact(model, sidecar)
    if data is None:
        data = build()
        with contextlib.suppress(OSError):
            _store(model, sidecar, data)
    return data
