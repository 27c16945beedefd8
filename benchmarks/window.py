"""Full analysis of a long synthetic multi-camera feed vs a 5-minute wall-clock window of it.

With the window, files outside it are skipped and files inside are entered by a seek, so the
wall time should shrink roughly with the share of video time inside the window.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from .common import MissingData, run_child, save, synthetic, table

TIMEOUT_S = 1200
WINDOW_MIN = 5


def run(quick: bool = False) -> list[dict]:
    from .synth import START_UTC

    cams, hours = (2, 0.25) if quick else (3, 1.0)
    try:
        folder, gen_s = synthetic(cams, hours)
    except MissingData as exc:
        return [{"run": "-", "status": str(exc)}]
    since = START_UTC + timedelta(hours=hours / 2)
    until = since + timedelta(minutes=WINDOW_MIN)

    def iso(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    # the full run decodes every frame of every camera; in the full benchmark, sampling 1 frame/s
    # (both runs alike) keeps it within the time budget of `python -m benchmarks`
    sampler = {} if quick else {"fps": 1.0}
    rows = []
    with tempfile.TemporaryDirectory(prefix="vcbench-") as tmp:
        full = run_child(
            "benchmarks.common:run_vidcluster",
            {"inputs": [str(folder)], "out": str(Path(tmp) / "full"), "overrides": {"sampler": sampler}},
            TIMEOUT_S,
        )
        win = run_child(
            "benchmarks.common:run_vidcluster",
            {
                "inputs": [str(folder)],
                "out": str(Path(tmp) / "win"),
                "overrides": {"sampler": {**sampler, "since": iso(since), "until": iso(until)}},
            },
            TIMEOUT_S,
        )
    total_min = cams * hours * 60
    for label, r, video_min in (
        ("full", full, total_min),
        (f"window {iso(since)}..{iso(until)}", win, cams * WINDOW_MIN),
    ):
        rows.append(
            {
                "run": label,
                "video_min": video_min,
                "wall_s": r.get("wall_s"),
                "frames_decoded": r.get("frames_decoded"),
                "faces": r.get("faces"),
                "peak_rss_mb": r.get("peak_rss_mb"),
                "status": r.get("status", "") + " " + r.get("error", ""),
            }
        )
    if full.get("status") == "ok" and win.get("status") == "ok":
        rows.append(
            {
                "run": "ratio window/full",
                "video_min": (cams * WINDOW_MIN) / total_min,
                "wall_s": win["wall_s"] / full["wall_s"],
                "frames_decoded": (win["frames_decoded"] or 0) / max(1, full["frames_decoded"] or 0),
                "status": f"{cams} cameras x {hours:g} h, 320x180 @ 5 fps, sampled at {sampler.get('fps', 2.0):g} fps"
                + (f", generated in {gen_s:.0f} s" if gen_s else ""),
            }
        )
    return rows


def main(quick: bool = False) -> list[dict]:
    rows = run(quick)
    print(
        table(
            "Time window (full feed vs a 5-minute window)",
            rows,
            ["run", "video_min", "wall_s", "frames_decoded", "faces", "peak_rss_mb", "status"],
        )
    )
    save("window", rows)
    return rows


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)
