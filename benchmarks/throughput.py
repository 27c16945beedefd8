"""Throughput of vidcluster vs the naive recipe, side by side in one run, on the same inputs.

Each side runs in its own subprocess, so wall time, CPU seconds (user + system of the process
and its worker processes, interpreter start and imports included) and peak memory are measured
separately. Realtime factor = video seconds / wall seconds. On a shared machine the wall times
move with the load; CPU seconds and the ratio of the two sides measured in one run move less.

Data: cctv-asl with its camera config (as the README's quick start runs it), the 1080p crowd
clip played back to back to >= 60 s (so that start-up does not dominate a 4-s clip), and
synthetic multi-camera footage.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .accuracy import clip_truth, per_face_labels, score
from .common import ROOT, MissingData, data, repeated_clip, run_child, save, synthetic, table, video_seconds

TIMEOUT_S = 1800
VIDEO_EXT = (".mp4", ".mkv")
CROWD_MIN_S = 60.0
# vidcluster variants measured beside the baseline: (method name, config overrides). The baseline
# writes no report, so the second variant shows the analysis without the report's clips (cutting
# and encoding a clip per sighting decodes the footage once more).
VARIANTS: tuple[tuple[str, dict], ...] = (("vidcluster", {}), ("vidcluster-no-clips", {"report": {"clips": False}}))
LEVERS: tuple[tuple[str, dict], ...] = (("vidcluster-hog", {"faces": {"detector": "hog"}}),)


def datasets(quick: bool, names: tuple[str, ...] | None = None) -> list[tuple[str, Path | None, str | None, str]]:
    """(name, folder or file, config file or None, note)."""
    out: list[tuple[str, Path | None, str | None, str]] = []

    def wanted(name: str) -> bool:
        return names is None or any(name.startswith(n) for n in names)

    if wanted("cctv-asl"):
        try:
            out.append(("cctv-asl", data("cctv-asl"), str(ROOT / "configs" / "cctv-asl.yaml"), ""))
        except MissingData as exc:
            out.append(("cctv-asl", None, None, str(exc)))
    if wanted("crowd"):
        try:
            clip = repeated_clip(data("crowd", "arcade_1080p.mp4"), CROWD_MIN_S)
            out.append((f"crowd-1080p-x{clip.stem.rsplit('_x', 1)[-1]}", clip, None, "4.2 s clip back to back"))
        except MissingData as exc:
            out.append(("crowd-1080p", None, None, str(exc)))
    if wanted("synth"):
        cams, hours = (2, 3 / 60) if quick else (3, 10 / 60)
        try:
            folder, gen_s = synthetic(cams, hours)
            out.append(
                (
                    f"synth-{cams}x{hours * 60:g}min-320x180",
                    folder,
                    None,
                    f"generated in {gen_s:.0f} s" if gen_s else "cached",
                )
            )
        except MissingData as exc:
            out.append(("synthetic", None, None, str(exc)))
    return out


def _bcubed_f(name: str, r: dict) -> float | None:
    """BCubed F of the faces against cctv-asl's truth (every face of a clip is that clip's person)."""
    if name != "cctv-asl":
        return None
    t, p = per_face_labels(r, clip_truth())
    return score(t, p)["B3_F"]


def _row(name: str, method: str, seconds: float, r: dict) -> dict:
    if r.get("status") != "ok":
        return {
            "dataset": name,
            "method": method,
            "video_s": seconds,
            "status": r.get("status", "") + " " + r.get("error", ""),
        }
    wall = r["wall_s"]
    return {
        "B3_F": _bcubed_f(name, r),
        "dataset": name,
        "method": method,
        "video_s": seconds,
        "wall_s": wall,
        "cpu_s": r.get("cpu_s"),
        "x_realtime": seconds / wall,
        "x_realtime_cpu": seconds / r["cpu_s"] if r.get("cpu_s") else None,
        "faces": r["faces"],
        "descriptors": r["descriptors"],
        "identities": r.get("identities"),
        "peak_rss_mb": r["peak_rss_mb"],
        "status": "ok",
    }


def run(quick: bool = False, names: tuple[str, ...] | None = None, levers: bool = False) -> list[dict]:
    rows = []
    variants = VARIANTS + (LEVERS if levers else ())
    for name, path, config, note in datasets(quick, names):
        if path is None:
            rows.append({"dataset": name, "method": "-", "status": note})
            continue
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXT)
        seconds = video_seconds(files)
        measured = {}
        for method, overrides in variants:
            with tempfile.TemporaryDirectory(prefix="vcbench-") as tmp:
                kwargs = {
                    "inputs": [str(path)],
                    "out": str(Path(tmp) / "out"),
                    "overrides": overrides,
                    "config": config,
                }
                measured[method] = run_child("benchmarks.common:run_vidcluster", kwargs, TIMEOUT_S)
        measured["baseline"] = run_child(
            "benchmarks.baseline:run_videos", {"paths": [str(f) for f in files]}, TIMEOUT_S
        )
        pair = {}
        for method, r in measured.items():
            row = _row(name, method, seconds, r)
            rows.append(row)
            if row["status"] == "ok":
                pair[method] = row
        base = pair.get("baseline")
        for method, _ in variants:
            if base and method in pair:
                vc = pair[method]
                rows.append(
                    {
                        "dataset": name,
                        "method": f"ratio {method}",
                        "x_realtime": vc["x_realtime"] / base["x_realtime"],
                        "x_realtime_cpu": base["cpu_s"] / vc["cpu_s"]
                        if vc.get("cpu_s") and base.get("cpu_s")
                        else None,
                        "status": f"{method} / baseline; {note}".strip("; "),
                    }
                )
    return rows


COLUMNS = [
    "dataset",
    "method",
    "video_s",
    "wall_s",
    "cpu_s",
    "x_realtime",
    "x_realtime_cpu",
    "faces",
    "descriptors",
    "identities",
    "B3_F",
    "peak_rss_mb",
    "status",
]


def main(quick: bool = False, names: tuple[str, ...] | None = None, levers: bool = False) -> list[dict]:
    rows = run(quick, names, levers)
    title = (
        f"Throughput (os.cpu_count() = {os.cpu_count()}; x_realtime = video s / wall s, x_realtime_cpu = video s / "
        f"CPU s; ratio rows: vidcluster over the baseline, CPU ratio = baseline CPU s / vidcluster CPU s)"
    )
    print(table(title, rows, COLUMNS))
    save("throughput", {"cpu_count": os.cpu_count(), "rows": rows})
    return rows


if __name__ == "__main__":
    import sys

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main("--quick" in sys.argv, tuple(args) or None, "--levers" in sys.argv)
