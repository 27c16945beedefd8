"""Long files as segments: planning, joining across borders, staging, resuming mid-file."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from conftest import data_path
from tests_support import face_crop

from benchmarks.videos import write_video
from vidcluster.config import Config, load_config
from vidcluster.models.registry import make_models
from vidcluster.run.pipeline import analyse
from vidcluster.run.segments import (
    Segment,
    UnitResult,
    join_segments,
    pack_result,
    plan_segments,
    process_segment,
    unpack_result,
)
from vidcluster.types import Footage

FPS = 10
LONG_S = 24.0
ROOT = Path(__file__).resolve().parents[1]


def _footage(duration_s: float | None, kind: str = "video", path: Path = Path("x.mp4")) -> Footage:
    start = datetime(2026, 3, 14, 10, tzinfo=timezone.utc)
    return Footage(path, "cam", kind, 1, "0" * 64, start, "filename", duration_s)


def _cfg(segment_s: float = 6.0, **run) -> Config:
    return load_config(None, {"run": {"segment_s": segment_s, **run}})


def _walk_frames(face: np.ndarray, n: int, size=(320, 240)) -> list[np.ndarray]:
    """A face drifting back and forth on a textured background, in view in every frame."""
    w, h = size
    rng = np.random.default_rng(3)
    background = rng.integers(90, 140, (h, w, 3)).astype(np.uint8)
    fh, fw = face.shape[:2]
    out = []
    for i in range(n):
        frame = background.copy()
        x = int(20 + (w - fw - 40) * (0.5 - 0.5 * np.cos(i / 40.0)))
        frame[(h - fh) // 2 : (h - fh) // 2 + fh, x : x + fw] = face
        out.append(frame)
    return out


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """24 s at 10 fps (keyframe every second): one person in view all the time."""
    root = tmp_path_factory.mktemp("long") / "cam"
    root.mkdir()
    face = face_crop(data_path("hamilton", "obama.jpg"))
    return write_video(root / "cam_20260314-100000.mp4", _walk_frames(face, int(LONG_S * FPS)), fps=FPS, gop=FPS)


# -- planning -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "duration_s,window,segment_s,expected_count",
    [
        (2.0, (None, None), 60.0, 1),  # a cctv-asl clip stays one unit
        (80.0, (None, None), 60.0, 1),  # shorter than 1.5 segments: one unit
        (600.0, (None, None), 60.0, 10),
        (1200.0, (None, None), 60.0, 20),
        (3600.0, (600.0, 900.0), 60.0, 5),  # only the window is cut, nothing outside it
        (95.0, (None, 65.5), 20.0, 3),
        (None, (None, None), 60.0, 1),  # duration unknown
    ],
)
def test_plan_covers_the_part_once_on_the_sampling_grid(duration_s, window, segment_s, expected_count):
    cfg = _cfg(segment_s)
    segs = plan_segments(7, _footage(duration_s), *window, cfg)
    assert len(segs) == expected_count and [s.index for s in segs] == list(range(expected_count))
    assert segs[0].start_s == window[0] and segs[-1].end_s == window[1]
    step = 1.0 / cfg.sampler.fps
    lo = window[0] or 0.0
    for a, b in itertools.pairwise(segs):
        assert a.end_s == b.start_s  # contiguous, no gap, no double ownership
        assert ((b.start_s - lo) / step) == pytest.approx(round((b.start_s - lo) / step))  # on the grid
        assert b.start_s - b.read_from_s >= max(cfg.run.segment_overlap_s, 2 * step) - 1e-9  # a lead-in
        assert b.read_from_s >= lo  # never before the window
    assert all(s.origin_s == lo and s.count == expected_count for s in segs)


def test_a_still_is_one_unit():
    (seg,) = plan_segments(1, _footage(None, kind="image", path=Path("x.jpg")), None, None, _cfg(1.0))
    assert seg.start_s is None and seg.end_s is None and seg.is_last


@pytest.mark.parametrize(
    "index,count,start,end,expected",
    [
        (0, 3, None, 10.0, [True, True, True, False, False]),
        (1, 3, 10.0, 20.0, [False, False, False, True, False]),
        (2, 3, 20.0, None, [False, False, False, False, True]),
        (0, 1, None, None, [True] * 5),
    ],
)
def test_each_time_belongs_to_one_segment(index, count, start, end, expected):
    seg = Segment(1, _footage(30.0), index, count, start, end, start, 0.0)
    assert seg.owns(np.array([0.0, 5.0, 9.999, 10.0, 20.0])).tolist() == expected


# -- one long file ------------------------------------------------------------------------------
def _units(clip: Path, cfg: Config) -> list[UnitResult]:
    footage = _footage(LONG_S, path=clip)
    models = make_models(cfg.faces)
    return [process_segment(s, cfg, models) for s in plan_segments(1, footage, None, None, cfg)]


@pytest.fixture(scope="module")
def whole_and_cut(long_clip):
    whole = _units(long_clip, _cfg(1000.0))
    cut = _units(long_clip, _cfg(6.0))
    return whole, cut


def test_segments_sample_the_frames_the_whole_file_does(whole_and_cut):
    (whole,), cut = whole_and_cut
    assert len(cut) == 4
    joined = join_segments(cut, _cfg(6.0))
    # the same faces at the same times, each once (the lead-ins add none)
    assert np.array_equal(joined.faces.pts_s, whole.feed.faces.pts_s)
    assert np.array_equal(joined.faces.boxes, whole.feed.faces.boxes)
    assert len(joined.thumbs) == len(joined.faces) == LONG_S * 2
    assert len(np.unique(joined.faces.pts_s)) == len(joined.faces)


def test_a_person_crossing_borders_stays_one_sighting(whole_and_cut):
    (whole,), cut = whole_and_cut
    assert len(whole.feed.tracks) == 1
    assert sum(len(u.feed.tracks) for u in cut) == 4  # each segment saw the person on its own
    joined = join_segments(cut, _cfg(6.0))
    (track,) = joined.tracks
    assert sorted(track.face_rows.tolist()) == list(range(len(joined.faces)))
    assert (track.start_s, track.end_s) == (whole.feed.tracks[0].start_s, whole.feed.tracks[0].end_s)
    assert track.steer and track.embedding is not None
    assert np.linalg.norm(track.embedding - whole.feed.tracks[0].embedding) < 0.1


def test_two_people_at_a_border_are_not_joined(whole_and_cut):
    """Lead-in faces that match no face of the segment before start a new sighting."""
    _, cut = whole_and_cut
    first, second = cut[0], cut[1]
    moved = second.feed.faces
    shifted = replace(moved, boxes=moved.boxes + np.array([0, 200, 0, 200], np.int32))  # elsewhere in the frame
    # a file that ends after the second segment
    parts = [
        UnitResult(replace(first.segment, count=2), first.feed),
        UnitResult(replace(second.segment, count=2), replace(second.feed, faces=shifted)),
    ]
    joined = join_segments(parts, _cfg(6.0))
    assert len(joined.tracks) == 2


def test_a_sighting_encoded_only_in_its_lead_in_keeps_a_descriptor(whole_and_cut):
    """A new sighting whose only descriptors fall in the lead-in (trimmed: the segment before
    owns that time) takes its descriptor from them instead of losing it."""
    _, cut = whole_and_cut
    first, second = cut[0], cut[1]
    faces = second.feed.faces
    owned = second.segment.owns(faces.pts_s)
    assert (~owned).any() and not np.isnan(faces.embeddings[~owned, 0]).all()
    embeddings = faces.embeddings.copy()
    embeddings[owned] = np.nan
    moved = replace(faces, boxes=faces.boxes + np.array([0, 200, 0, 200], np.int32), embeddings=embeddings)
    parts = [
        UnitResult(replace(first.segment, count=2), first.feed),
        UnitResult(replace(second.segment, count=2), replace(second.feed, faces=moved)),
    ]
    joined = join_segments(parts, _cfg(6.0))
    assert len(joined.tracks) == 2
    lead = embeddings[~owned]
    expected = lead[~np.isnan(lead[:, 0])].mean(axis=0)
    assert joined.tracks[1].embedding is not None
    assert np.linalg.norm(joined.tracks[1].embedding - expected) < 0.35


def test_staged_result_round_trips(whole_and_cut):
    _, cut = whole_and_cut
    feed = cut[1].feed
    back = unpack_result(pack_result(feed))
    for name in ("boxes", "scores", "landmarks", "quality", "frame", "pts_s"):
        assert np.array_equal(getattr(back.faces, name), getattr(feed.faces, name))
    assert np.array_equal(back.faces.embeddings, feed.faces.embeddings, equal_nan=True)
    assert back.thumbs == feed.thumbs and back.stats == feed.stats
    assert len(back.tracks) == len(feed.tracks)
    for a, b in zip(back.tracks, feed.tracks, strict=True):
        assert np.array_equal(a.face_rows, b.face_rows) and a.snapshot == b.snapshot and a.steer == b.steer
        assert (a.embedding is None) == (b.embedding is None)


# -- end to end: commit per segment, resume mid-file, window ------------------------------------
_KILL_AFTER_UNITS = """
import os, signal, sys
from vidcluster.config import load_config
from vidcluster.run.pipeline import analyse

def progress(stage, done, total):
    if stage == "units" and done >= 2:
        os.kill(os.getpid(), signal.SIGKILL)  # dies right after the store committed its 2nd unit

analyse([sys.argv[1]], sys.argv[2], load_config(None, {"run": {"segment_s": 6.0, "workers": 2}}), progress)
"""


def test_a_run_killed_mid_file_resumes_from_its_finished_segments(long_clip, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_UNITS, str(long_clip.parent), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    db = sqlite3.connect(out / "vidcluster.db")
    assert db.execute("SELECT COUNT(*) FROM segment_results").fetchone()[0] == 2
    assert db.execute("SELECT status FROM footage").fetchone()[0] == "pending"
    db.close()
    cfg = _cfg(6.0, workers=1)
    resumed = analyse([long_clip.parent], out, cfg)  # the lock died with the killed run and its workers
    assert resumed.n_units == 2  # only the two unfinished segments were run again
    fresh = analyse([long_clip.parent], tmp_path / "fresh", cfg)
    assert fresh.n_units == 4
    # the resumed run decoded only its two segments (with their lead-ins), about half the file
    assert 0.3 * fresh.frames_decoded < resumed.frames_decoded < 0.65 * fresh.frames_decoded
    assert resumed.n_faces == fresh.n_faces == LONG_S * 2
    assert [i["n_sightings"] for i in resumed.identities] == [1]
    db = sqlite3.connect(out / "vidcluster.db")
    assert db.execute("SELECT COUNT(*) FROM segment_results").fetchone()[0] == 0  # the file is whole now
    again = analyse([long_clip.parent], out, cfg)
    assert again.n_units == 0 and again.frames_decoded == 0


def test_segments_outside_the_window_are_never_decoded(long_clip, tmp_path):
    cfg = load_config(
        None,
        {
            "run": {"segment_s": 3.0, "workers": 1},
            "sampler": {"since": "2026-03-14T10:00:12Z", "until": "2026-03-14T10:00:18Z"},
        },
    )
    summary = analyse([long_clip.parent], tmp_path / "out", cfg)
    assert summary.n_units == 2
    # 6 s of window plus one lead-in and at most a GOP before each seek, at 10 fps
    assert summary.frames_decoded <= (6 + 2 + 2) * FPS + 4
    (identity,) = summary.identities
    (sighting,) = identity["sightings"]
    assert sighting["start_offset_s"] >= 12.0 and sighting["end_offset_s"] <= 18.0
