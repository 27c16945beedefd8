"""Throughput of vidcluster vs the naive baseline on real and synthetic footage.

Each side runs in its own subprocess, so peak memory (max RSS of the process and its
children) is measured separately. Realtime factor = video seconds / wall seconds.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .common import MissingData, data, run_child, save, synthetic, table, video_seconds

TIMEOUT_S = 900
VIDEO_EXT = (".mp4", ".mkv")


def datasets(quick: bool) -> list[tuple[str, Path | None, str]]:
    """(name, folder or file, note)."""
    out: list[tuple[str, Path | None, str]] = []
    for name, parts in (("crowd-1080p", ("crowd", "arcade_1080p.mp4")), ("cctv-asl", ("cctv-asl",))):
        try:
            out.append((name, data(*parts), ""))
        except MissingData as exc:
            out.append((name, None, str(exc)))
    cams, hours = (2, 3 / 60) if quick else (3, 10 / 60)
    try:
        folder, gen_s = synthetic(cams, hours)
        out.append((f"synth-{cams}x{hours * 60:g}min-320x180", folder, f"generated in {gen_s:.0f} s" if gen_s else "cached"))
    except MissingData as exc:
        out.append(("synthetic", None, str(exc)))
    return out


def run(quick: bool = False) -> list[dict]:
    rows = []
    for name, path, note in datasets(quick):
        if path is None:
            rows.append({"dataset": name, "method": "-", "status": note})
            continue
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXT)
        seconds = video_seconds(files)
        with tempfile.TemporaryDirectory(prefix="vcbench-") as tmp:
            vc = run_child("benchmarks.common:run_vidcluster", {"inputs": [str(path)], "out": str(Path(tmp) / "out")}, TIMEOUT_S)
        base = run_child("benchmarks.baseline:run_videos", {"paths": [str(f) for f in files]}, TIMEOUT_S)
        pair = {}
        for method, r in (("vidcluster", vc), ("baseline", base)):
            if r.get("status") != "ok":
                rows.append({"dataset": name, "method": method, "video_s": seconds, "status": r.get("status", "") + " " + r.get("error", "")})
                continue
            wall = r["wall_s"]
            row = {
                "dataset": name, "method": method, "video_s": seconds, "wall_s": wall, "x_realtime": seconds / wall,
                "decoded_fps": (r.get("frames_decoded") or 0) / wall, "faces": r["faces"], "faces_per_s": r["faces"] / wall,
                "descriptors": r["descriptors"], "peak_rss_mb": r["peak_rss_mb"], "status": "ok",
            }
            pair[method] = row
            rows.append(row)
        if len(pair) == 2:
            rows.append({"dataset": name, "method": "speed-up", "x_realtime": pair["vidcluster"]["x_realtime"] / pair["baseline"]["x_realtime"],
                         "status": f"vidcluster / baseline; {note}".strip("; ")})
    return rows


COLUMNS = ["dataset", "method", "video_s", "wall_s", "x_realtime", "decoded_fps", "faces", "faces_per_s", "descriptors",
           "peak_rss_mb", "status"]


def main(quick: bool = False) -> list[dict]:
    rows = run(quick)
    print(table(f"Throughput (os.cpu_count() = {os.cpu_count()})", rows, COLUMNS))
    save("throughput", {"cpu_count": os.cpu_count(), "rows": rows})
    return rows


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)
