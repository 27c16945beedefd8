"""One long file on every core: 1 worker vs 2 workers vs the Ray engine, on the same input.

The input is one synthetic camera file (benchmarks.synth: people walking through a scene)
of 20 minutes at 1280x720 (quick: 4 minutes at 640x360), cached under
benchmarks/results/synth/. The file is cut into segments of `run.segment_s` seconds; each
configuration analyses it into a fresh OUT in its own subprocess. Printed: wall and CPU
seconds (the process and its waited-for children: pool workers, and the local Ray instance
it started and stopped), the wall seconds of the units alone (from the first unit sent to the
last committed: the part that runs in parallel; probing, grouping and the report do not),
faces and identities (they must agree), units run, and the wall ratios. The goal of the segment work: wall(2 workers) <= 0.6 x wall(1 worker).
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path

from .common import RESULTS, data, run_child, save, table

FULL = {"minutes": 20.0, "size": [1280, 720]}
QUICK = {"minutes": 4.0, "size": [640, 360]}
WRITE_FPS = 10


def long_file(minutes: float, size: list[int], seed: int = 0) -> tuple[Path, float]:
    """A cached one-camera, one-file synthetic set; returns (folder, seconds spent generating)."""
    from . import synth

    name = f"long-{minutes:g}min-{size[0]}x{size[1]}-f{WRITE_FPS}-s{seed}"
    out = RESULTS / "synth" / name
    if (out / "truth.csv").exists():
        return out, 0.0
    tmp = out.with_name(name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    synth.generate(
        tmp,
        data("photos-deepface", "images"),
        cameras=1,
        hours=minutes / 60.0,
        size=tuple(size),
        fps=WRITE_FPS,
        clip_s=minutes * 60.0,
        seed=seed,
        gap_s=20.0,
    )
    tmp.rename(out)
    return out, time.monotonic() - t0


def run_one(folder: str, out: str, workers: int, engine: str) -> dict:
    """Child: analyse the folder into a fresh OUT; CPU seconds of this process and its children."""
    from vidcluster.config import load_config
    from vidcluster.run.pipeline import analyse

    shutil.rmtree(out, ignore_errors=True)
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "analyse" and done == 0:
            marks["units_from"] = time.monotonic()
        if stage == "units":
            marks["units_to"] = time.monotonic()

    summary = analyse([folder], out, load_config(overrides={"run": {"workers": workers, "engine": engine}}), progress)
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return {
        "cpu_s": cpu_s,
        "units_wall_s": marks["units_to"] - marks["units_from"],
        "faces": summary.n_faces,
        "identities": len(summary.identities),
        "units": summary.n_units,
    }


def main(quick: bool = False) -> None:
    spec = QUICK if quick else FULL
    folder, gen_s = long_file(spec["minutes"], spec["size"])
    print(
        f"input: one {spec['minutes']:g} min file, {spec['size'][0]}x{spec['size'][1]} at {WRITE_FPS} fps"
        f" ({f'generated in {gen_s:.0f} s' if gen_s else 'cached'}); load average before: {os.getloadavg()}",
        flush=True,
    )
    try:
        import ray  # noqa: F401  imported only to learn whether the ray extra is installed

        has_ray = True
    except ImportError:
        has_ray = False
    configs = [("local", 1), ("local", 2)] + ([("ray", 2)] if has_ray else [])
    rows = []
    for engine, workers in configs:
        out = str(RESULTS / "longfile-out" / f"{engine}-{workers}")
        r = run_child(
            "benchmarks.longfile:run_one",
            {"folder": str(folder), "out": out, "workers": workers, "engine": engine},
            timeout_s=7200,
        )
        rows.append(
            {
                "engine": engine,
                "workers": workers,
                **{
                    k: r.get(k, r.get("error", ""))
                    for k in ("status", "wall_s", "units_wall_s", "cpu_s", "units", "faces", "identities")
                },
                "load_after": os.getloadavg()[0],
            }
        )
        print(table("", rows[-1:]).split("\n", 1)[1], flush=True)
    shutil.rmtree(RESULTS / "longfile-out", ignore_errors=True)
    print(table("one long file (wall and CPU seconds; CPU = process + waited-for children)", rows))
    by = {(r["engine"], r["workers"]): r for r in rows if r["status"] == "ok"}
    one, two, on_ray = by.get(("local", 1)), by.get(("local", 2)), by.get(("ray", 2))
    if one and two:
        print(
            f"wall(2 workers) / wall(1 worker) = {two['wall_s'] / one['wall_s']:.2f} (goal <= 0.60); units only:"
            f" {two['units_wall_s'] / one['units_wall_s']:.2f}"
        )
    if two and on_ray:
        print(f"wall(ray, 2 CPUs) / wall(local, 2 workers) = {on_ray['wall_s'] / two['wall_s']:.2f}")
    print(f"load average after: {os.getloadavg()} on {os.cpu_count()} cores (shared machine)")
    save("longfile", {"input": spec, "rows": rows})
