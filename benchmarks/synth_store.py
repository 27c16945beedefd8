"""A synthetic case written straight into a store: no decoding, no models, any number of people.

`write_case(out, people=N)` makes OUT as `vidcluster run` would leave it: footage rows (one file
per camera; with `clips`, a real tiny H.264 video there, so the report can cut clips), sightings
of N people spread over the cameras, each with a few faces whose descriptors lie close to the
person's own point on the unit sphere (SFace's space: one person ~0.35 apart, two people ~1.4),
a JPEG thumbnail per face tinted by person, a snapshot per sighting; then it groups them with the
default settings and writes the report. Everything follows from `seed`.

Used by tests/test_serve*.py (a small case, fast) and benchmarks/serve_load.py (500 people).
"""

from __future__ import annotations

import argparse
import hashlib
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcluster.analysis.grouping import assign_identities
from vidcluster.case.outdir import run_lock, store_path
from vidcluster.case.results import FileResult, TrackRecord
from vidcluster.case.store import Store
from vidcluster.catalog import ENCODERS
from vidcluster.commands.workflow import stored_config
from vidcluster.report import write_report
from vidcluster.types import Footage
from vidcluster.video.jpeg import encode_jpeg

START_UTC = datetime(2026, 3, 14, 8, 0, 0, tzinfo=timezone.utc)
CAMERAS = ("entrance", "hallway", "office")
ENCODER = "sface"
DIM = ENCODERS[ENCODER].dim
SIGHTING_S = 2.0  # each sighting lasts this long in its file
GAP_S = 1.0  # between two sightings of one file
FPS = 5


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _hue_rgb(k: int) -> tuple[int, int, int]:
    """A distinct, mid-bright colour for person k (golden-angle hues)."""
    h = (k * 137.508) % 360 / 60.0
    x = 1 - abs(h % 2 - 1)
    r, g, b = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(h) % 6]
    return int(70 + 150 * r), int(70 + 150 * g), int(70 + 150 * b)


def _face_jpeg(person: int, face: int, size: int = 64) -> bytes:
    """A round 'face' in the person's colour on grey, shifted a little per face (RGB in, JPEG out)."""
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy = size / 2 + (face % 3 - 1) * 3, size / 2 + (face % 2) * 2
    img = np.full((size, size, 3), 200, np.uint8)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < (size * 0.35) ** 2] = _hue_rgb(person)
    for ex in (-0.13, 0.13):  # two eyes, so it reads as a face in a screenshot
        img[(xx - cx - ex * size) ** 2 + (yy - cy + 0.08 * size) ** 2 < (size * 0.05) ** 2] = 30
    return encode_jpeg(img, 90)


def _write_video(path: Path, duration_s: float, size: tuple[int, int] = (160, 120)) -> None:
    """A grey H.264 file `duration_s` long whose brightness changes every second."""
    w, h = size
    tb = Fraction(1, 1000)
    with av.open(str(path), mode="w") as c:
        stream = c.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = stream.codec_context.time_base = tb
        stream.options = {"preset": "ultrafast", "bf": "0"}
        for i in range(int(duration_s * FPS)):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 60 + (i // FPS * 23) % 160, np.uint8), "rgb24")
            frame.pts, frame.time_base = round(i / FPS / tb), tb
            for p in stream.encode(frame):
                c.mux(p)
        for p in stream.encode():
            c.mux(p)


def write_case(
    out: str | Path,
    people: int = 5,
    sightings: int = 3,
    faces: int = 3,
    seed: int = 0,
    clips: bool = True,
    tz: str = "Europe/Berlin",
) -> Path:
    """Write a grouped case of `people` people, `sightings` sightings each (`faces` faces a sighting)
    into the new folder `out` with its report; returns `out`."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(people, DIM)))
    # sighting k of person p goes to camera (p + k) % 3, in person order, so every person moves between cameras
    plan: dict[str, list[int]] = {cam: [] for cam in CAMERAS}
    for p in range(people):
        for k in range(sightings):
            plan[CAMERAS[(p + k) % len(CAMERAS)]].append(p)
    with run_lock(out):
        store = Store.open(store_path(out))
        try:
            for c, (cam, persons) in enumerate(plan.items()):
                _write_file(store, out, cam, c, persons, centres, faces, rng, clips, tz)
            store.set_meta("last_run", _run_info(out, clips))
            cfg = stored_config(store)
            assign_identities(store, cfg)
            write_report(store, out, store.get_meta("last_run"), cfg.report)
        finally:
            store.close()
    return out


def _run_info(out: Path, clips: bool) -> dict:
    now = START_UTC.isoformat().replace("+00:00", "Z")
    return {
        "version": "synthetic",
        "started_utc": now,
        "finished_utc": now,
        "inputs": [str(out / "footage")],
        "parameters": {"faces": {"encoder": ENCODER}, "report": {"clips": clips, "case": "synthetic"}},
        "window": {"since": None, "until": None},
        "skipped": [],
    }


def _write_file(
    store: Store,
    out: Path,
    cam: str,
    c: int,
    persons: list[int],
    centres: np.ndarray,
    n_faces: int,
    rng: np.random.Generator,
    clips: bool,
    tz: str,
) -> None:
    """One camera's file holding the sightings of `persons`, one after the other."""
    duration = len(persons) * (SIGHTING_S + GAP_S) + GAP_S
    start = START_UTC + timedelta(minutes=10 * c)
    folder = out / "footage" / cam
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cam}_{start:%Y%m%d-%H%M%S}.mp4"
    if clips:
        _write_video(path, duration)
    fid = store.upsert_footage(
        Footage(path, cam, "video", path.stat().st_size if clips else 1000,
                hashlib.sha256(path.read_bytes() if clips else str(path).encode()).hexdigest(),
                start, "filename", duration, tz)
    )  # fmt: skip
    store.set_footage_timezone(fid, tz)
    pts, embs, thumbs, tracks = [], [], [], []
    for k, p in enumerate(persons):
        t0 = GAP_S + k * (SIGHTING_S + GAP_S)
        rows = np.arange(len(pts), len(pts) + n_faces, dtype=np.int64)
        e = _unit(centres[p] + rng.normal(scale=0.022, size=(n_faces, DIM)))
        for j in range(n_faces):
            pts.append(t0 + j * SIGHTING_S / max(1, n_faces - 1))
            thumbs.append(_face_jpeg(p, j))
        embs.extend(e)
        snap = np.full((90, 120, 3), 180, np.uint8)
        snap[20:70, 40:80] = _hue_rgb(p)
        tracks.append(TrackRecord(t0, t0 + SIGHTING_S, rows, True, _unit(e.mean(axis=0)), encode_jpeg(snap, 85)))
    n = len(pts)
    store.save_file_result(
        fid,
        "synthetic",
        FileResult(
            pts_s=np.array(pts, np.float64),
            boxes=np.tile(np.array([[40, 20, 80, 70]], np.int32), (n, 1)),
            scores=np.ones(n, np.float32),
            quality=np.linspace(0.9, 0.5, n).astype(np.float32),
            embeddings=np.array(embs, np.float32).reshape(n, DIM),
            thumbs=thumbs,
            tracks=tuple(tracks),
            duration_s=duration,
            encoder=ENCODERS[ENCODER].space,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--people", type=int, default=5)
    ap.add_argument("--sightings", type=int, default=3)
    ap.add_argument("--no-clips", action="store_true")
    args = ap.parse_args(argv)
    write_case(args.out, args.people, args.sightings, clips=not args.no_clips)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
