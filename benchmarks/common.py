"""Shared helpers: data paths, result files, tables, and running one measurement in a subprocess."""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VIDCLUSTER_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


class MissingData(RuntimeError):
    """Raised when a benchmark needs real data that is not there."""


def data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        raise MissingData(f"benchmark data not found: {path} (set VIDCLUSTER_DATA to the shared data folder)")
    return path


def save(name: str, payload: Any) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def table(title: str, rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A plain text table of dict rows."""
    if not rows:
        return f"{title}\n  (no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [
        title,
        "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def peak_rss_mb() -> float:
    """Peak resident memory (MiB) of this process and of its finished children.

    ru_maxrss of this process survives execve (a child started from a big parent would report
    the parent's peak), so this process's own peak is read from /proc (VmHWM, reset by exec);
    for the children, RUSAGE_CHILDREN holds the largest one.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1])
    except OSError:
        pass
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def run_child(target: str, kwargs: dict, timeout_s: float) -> dict:
    """Run `module:function(**kwargs)` in a fresh interpreter; its dict result gains wall_s, cpu_s
    (interpreter start and imports included) and peak_rss_mb.

    On timeout returns {"status": "timeout"}; on failure {"status": "error", "error": ...}.
    """
    cmd = [sys.executable, "-m", "benchmarks.common", target, json.dumps(kwargs)]
    t0 = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "wall_s": time.monotonic() - t0}
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu_s = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"status": "error", "error": " | ".join(tail), "wall_s": time.monotonic() - t0}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.setdefault("status", "ok")
    result["cpu_s"] = child_cpu_s
    return result


def _child_main(argv: list[str]) -> None:
    module, func = argv[0].split(":")
    kwargs = json.loads(argv[1])
    fn = getattr(importlib.import_module(module), func)
    t0 = time.monotonic()
    result = fn(**kwargs) or {}
    result["wall_s"] = time.monotonic() - t0
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    _child_main(sys.argv[1:])


def run_vidcluster(inputs: list[str], out: str, overrides: dict | None = None, config: str | None = None) -> dict:
    """Analyse `inputs` into `out` with vidcluster (`config`: a YAML file, as --config takes it);
    faces as [file, pts_s, x1, y1, x2, y2] plus labels and counts."""
    import csv
    import sqlite3

    from vidcluster.config import load_config
    from vidcluster.run.pipeline import analyse

    summary = analyse(inputs, out, load_config(config, overrides=overrides or {}))
    with open(Path(out) / "report" / "faces.csv", newline="") as fh:
        faces = list(csv.DictReader(fh))
    faces += _duplicate_faces(Path(out), faces)
    conn = sqlite3.connect(Path(out) / "vidcluster.db")
    try:
        descriptors = conn.execute("SELECT COUNT(*) FROM faces WHERE embedding IS NOT NULL").fetchone()[0]
        cols = {r[1] for r in conn.execute("PRAGMA table_info(footage)")}
        decoded = (
            conn.execute("SELECT SUM(frames_decoded) FROM footage").fetchone()[0] if "frames_decoded" in cols else None
        )
        sampled = (
            conn.execute("SELECT SUM(frames_sampled) FROM footage").fetchone()[0] if "frames_sampled" in cols else None
        )
    finally:
        conn.close()
    return {
        "faces_list": [
            [f["file"], float(f["pts_s"]), int(f["x1"]), int(f["y1"]), int(f["x2"]), int(f["y2"])] for f in faces
        ],
        "labels": [int(f["identity"]) for f in faces],
        "faces": len(faces),
        "descriptors": int(descriptors),
        "frames_decoded": decoded,
        "frames_sampled": sampled,
        "identities": len(summary.identities),
        "analyse_wall_s": summary.wall_s,
    }


def _tail(path: str) -> tuple[str, ...]:
    return Path(path).parts[-2:]


def _duplicate_faces(out: Path, faces: list[dict]) -> list[dict]:
    """The faces of each file analysed once for several equal files, again under each copy's path:
    the report lists a copy as the same content (manifest `duplicates`), so its faces are those."""
    record = json.loads((out / "report" / "manifest.json").read_text())
    by_file: dict[tuple[str, ...], list[dict]] = {}
    for face in faces:
        by_file.setdefault(_tail(face["file"]), []).append(face)
    extra = []
    for dup in record.get("duplicates", []):
        if dup.get("duplicate_of"):
            extra += [{**f, "file": dup["path"]} for f in by_file.get(_tail(dup["duplicate_of"]), [])]
    return extra


def synthetic(cameras: int, hours: float, size=(320, 180), fps: int = 5, seed: int = 0) -> tuple[Path, float]:
    """A cached synthetic multi-camera set under benchmarks/results/synth/; returns (folder, seconds to generate, 0 if cached)."""
    from . import synth

    photos = data("photos-deepface", "images")
    name = f"c{cameras}-h{hours:g}-{size[0]}x{size[1]}-f{fps}-s{seed}"
    out = RESULTS / "synth" / name
    if (out / "truth.csv").exists():
        return out, 0.0
    t0 = time.monotonic()
    tmp = out.with_name(name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    synth.generate(tmp, photos, cameras=cameras, hours=hours, size=size, fps=fps, seed=seed)
    tmp.rename(out)
    return out, time.monotonic() - t0


def video_seconds(paths: Sequence[Path]) -> float:
    """Total duration of video files (container duration, via PyAV)."""
    import av

    total = 0.0
    for p in paths:
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            if s.duration is not None and s.time_base is not None:
                total += float(s.duration * s.time_base)
            elif c.duration is not None:
                total += c.duration / 1e6
    return total


def repeated_clip(path: Path, min_s: float) -> Path:
    """`path` played back to back until it lasts at least `min_s` seconds: packets copied, not
    re-encoded, timestamps shifted. Cached under benchmarks/results/. For benchmarks where a
    short clip would let start-up costs dominate."""
    import math

    import av

    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        clip_ticks = int(stream.duration)
        repeats = max(1, math.ceil(min_s / float(stream.duration * stream.time_base)))
    out = RESULTS / "clips" / f"{path.stem}_x{repeats}{path.suffix}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)
    with av.open(str(tmp), "w") as dst:
        for k in range(repeats):
            with av.open(str(path)) as src:
                stream = src.streams.video[0]
                if k == 0:
                    ostream = dst.add_stream_from_template(stream)
                for packet in src.demux(stream):
                    if packet.dts is None:
                        continue
                    packet.pts = None if packet.pts is None else packet.pts + k * clip_ticks
                    packet.dts += k * clip_ticks
                    packet.stream = ostream
                    dst.mux(packet)
    tmp.rename(out)
    return out
