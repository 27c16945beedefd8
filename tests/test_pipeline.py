"""End to end: footage in, identities and report out."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import data_path
from tests_support import write_two_camera_footage

from vidcluster.config import Config, load_config
from vidcluster.errors import InputError, WindowError
from vidcluster.run.pipeline import analyse
from vidcluster.run.planning import window_offsets
from vidcluster.types import Footage


def _faces_csv(out: Path) -> list[dict]:
    with open(out / "report" / "faces.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def two_camera_footage(tmp_path_factory):
    """Obama walks past camera 'door' and later 'hall'; Biden passes 'hall' once."""
    return write_two_camera_footage(
        tmp_path_factory.mktemp("footage"), data_path("hamilton", "obama.jpg"), data_path("hamilton", "biden.jpg")
    )


def test_synthetic_two_cameras(two_camera_footage, tmp_path):
    out = tmp_path / "out"
    summary = analyse([two_camera_footage], out, Config())
    assert len(summary.identities) == 2
    obama, biden = sorted(summary.identities, key=lambda i: -i["n_sightings"])
    assert obama["cameras"] == ["door", "hall"] and obama["n_sightings"] == 2
    assert biden["cameras"] == ["hall"]
    assert obama["first_seen"].startswith("2026-03-14T10:00:00")
    # one sighting per pass, spanning the 3 s clip at 2 fps
    for s in obama["sightings"]:
        assert s["end_offset_s"] - s["start_offset_s"] == pytest.approx(2.5, abs=0.11)
    rows = _faces_csv(out)
    assert len(rows) == summary.n_faces and all(r["identity"] != "-1" for r in rows)
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    assert len(manifest["inputs"]) == 3 and all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    # descriptors are computed for a few faces per track, not all of them
    db = sqlite3.connect(out / "vidcluster.db")
    encoded, total = db.execute("SELECT SUM(embedding IS NOT NULL), COUNT(*) FROM faces").fetchone()
    assert total == 3 * 6  # every sampled frame (3 s at 2 fps) of the three clips has its face
    assert encoded * 3 <= total


def test_resume_decodes_nothing_again(two_camera_footage, tmp_path):
    out = tmp_path / "out"
    first = analyse([two_camera_footage], out, Config())
    second = analyse([two_camera_footage], out, Config())
    assert first.n_analysed == 3 and second.n_analysed == 0
    assert [i["n_faces"] for i in first.identities] == [i["n_faces"] for i in second.identities]
    # a changed setting that shapes the faces redoes the files
    third = analyse([two_camera_footage], out, load_config(None, {"sampler": {"fps": 1.0}}))
    assert third.n_analysed == 3 and third.n_faces < first.n_faces


def test_window_limits_and_cuts(two_camera_footage, tmp_path):
    cfg = load_config(None, {"sampler": {"since": "2026-03-14T10:05:00Z", "until": "2026-03-14T10:05:01.2Z"}})
    summary = analyse([two_camera_footage], tmp_path / "out", cfg)
    assert len(summary.identities) == 1
    (sighting,) = summary.identities[0]["sightings"]
    assert sighting["camera"] == "hall" and sighting["end_offset_s"] <= 1.2
    # files outside the window were asked to be left out: recorded, but not warnings
    assert summary.skipped == [] and summary.n_warnings == 0
    assert sorted(Path(p).name for p in summary.outside_window) == [
        "door_20260314-100000.mp4",
        "hall_20260314-101000.mp4",
    ]


def test_window_matching_nothing_is_an_error(two_camera_footage, tmp_path):
    cfg = load_config(None, {"sampler": {"since": "2030-01-01T00:00:00Z"}})
    with pytest.raises(WindowError, match="matches none"):
        analyse([two_camera_footage], tmp_path / "out", cfg)
    assert not (tmp_path / "out").exists()  # no folder, store or lock file


def test_empty_input_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        analyse([tmp_path / "empty"], tmp_path / "out")


def test_cnn_path_batches_across_feeds(two_camera_footage, tmp_path, monkeypatch):
    """The CNN path (GPU in production) runs here on CPU with small frames and agrees with HOG."""
    from vidcluster.models import dlib_models

    batches = []
    real = dlib_models.detect_cnn_batch

    def spy(images, *args, **kwargs):
        batches.append([im[:, :100].mean() for im in images])  # left strip tells the three clips apart
        return real(images, *args, **kwargs)

    monkeypatch.setattr(dlib_models, "detect_cnn_batch", spy)
    cfg = load_config(
        None,
        {
            "faces": {"detector": "cnn", "encoder": "dlib", "detect_width": 320, "cnn_batch_size": 4, "upsample": 1},
            "sampler": {"fps": 1.0},
        },
    )
    summary = analyse([two_camera_footage], tmp_path / "out", cfg)
    assert sorted(len(i["cameras"]) for i in summary.identities) == [1, 2]
    # 3 feeds x 3 sampled frames, gathered round-robin into batches of up to 4
    assert [len(b) for b in batches] == [4, 4, 1]
    assert summary.n_faces == 9  # the faces of each feed's last, partly filled batch are kept
    first = batches[0]
    assert len({round(m, 1) for m in first[:3]}) == 3  # three different feeds in one batch


@pytest.mark.parametrize(
    "since,until,expected",
    [
        ("", "", (None, None)),
        ("2026-03-14T10:00:05Z", "", (5.0, None)),
        ("2026-03-14T09:00:00Z", "2026-03-14T10:00:04Z", (None, 4.0)),
        ("2026-03-14T10:00:11Z", "", None),  # starts after the file ends
        ("", "2026-03-14T09:59:59Z", None),  # ends before the file starts
        ("2026-03-14T11:00:05", "", (5.0, None)),  # local time in the camera's zone (UTC+1)
    ],
)
def test_window_offsets(since, until, expected):
    from datetime import datetime, timezone

    f = Footage(
        Path("x.mp4"), "cam", "video", 1, "0" * 64, datetime(2026, 3, 14, 10, tzinfo=timezone.utc), "filename", 10.0
    )
    assert window_offsets(f, since, until, "Europe/Berlin") == expected


# -- real footage -------------------------------------------------------------------------------
def _truth():
    path = data_path("cctv-asl", "truth.csv")
    with open(path, newline="") as fh:
        return {Path(r["file"]).name: r for r in csv.DictReader(fh)}


def test_cctv_asl_five_people(tmp_path):
    footage = data_path("cctv-asl")
    truth = _truth()
    summary = analyse([footage], tmp_path / "out", Config())
    assert len(summary.identities) == 5
    rows = _faces_csv(tmp_path / "out")
    per_clip: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        per_clip[Path(r["file"]).name][r["identity"]] += 1
    assert set(per_clip) == set(truth)  # a face found in every clip
    person_of_identity: dict[str, set] = defaultdict(set)
    for clip, counts in per_clip.items():
        identity, n = counts.most_common(1)[0]
        assert identity != "-1" and n >= 0.9 * sum(counts.values()), (clip, counts)
        person_of_identity[identity].add(truth[clip]["person"])
    assert all(len(people) == 1 for people in person_of_identity.values())
    assert len(person_of_identity) == 5


def test_cctv_asl_window_berlin_ten_to_eleven(tmp_path):
    footage = data_path("cctv-asl")
    truth = _truth()
    cfg = load_config(
        None,
        {
            "sampler": {"since": "2026-03-14T10:00:00", "until": "2026-03-14T11:00:00"},
            "sources": {"timezone": "Europe/Berlin"},
        },
    )
    summary = analyse([footage], tmp_path / "out", cfg)
    expected = {r["person"] for r in truth.values() if "10:00:00" <= r["local_start"][11:19] < "11:00:00"}
    assert len(expected) == 2 and len(summary.identities) == 2
    files = {Path(s["file"]).name for i in summary.identities for s in i["sightings"]}
    assert {truth[f]["person"] for f in files} == expected
    assert summary.n_analysed == sum(1 for r in truth.values() if "10:00:00" <= r["local_start"][11:19] < "11:00:00")


@pytest.mark.slow
def test_photos_deepface_bcubed(tmp_path):
    from vidcluster.analysis.metrics import bcubed

    images = data_path("photos-deepface")
    with open(images / "labels.csv", newline="") as fh:
        labels = {Path(r["file"]).name: r["identity_group"] for r in csv.DictReader(fh)}
    analyse([images], tmp_path / "out", Config())
    largest: dict[str, tuple[int, str]] = {}
    for r in _faces_csv(tmp_path / "out"):
        name = Path(r["file"]).name
        area = (int(r["x2"]) - int(r["x1"])) * (int(r["y2"]) - int(r["y1"]))
        if name in labels and area > largest.get(name, (-1, ""))[0]:
            largest[name] = (area, r["identity"])
    assert len(largest) == len(labels)
    f = bcubed([labels[n] for n in largest], [v[1] for v in largest.values()])[2]
    assert f >= 0.95


def test_two_faces_in_one_frame_are_two_people_even_when_identical(tmp_path):
    """The same photo pasted twice side by side: descriptors at distance ~0, yet two people."""
    from tests_support import face_crop

    from benchmarks.videos import write_video

    face = face_crop(data_path("hamilton", "obama.jpg"))
    rng = np.random.default_rng(1)
    frames = []
    for i in range(30):
        frame = rng.integers(90, 140, (240, 400, 3)).astype(np.uint8)
        frame[60:180, 20 + i : 140 + i] = face
        frame[60:180, 260 - i : 380 - i] = face
        frames.append(frame)
    (tmp_path / "cam").mkdir()
    write_video(tmp_path / "cam" / "cam_20260314-100000.mp4", frames, fps=10)
    summary = analyse([tmp_path / "cam"], tmp_path / "out", Config())
    assert len(summary.identities) == 2
    assert all(i["n_sightings"] == 1 and i["n_faces"] == 6 for i in summary.identities)


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_counts_seconds_of_video(two_camera_footage, tmp_path, workers):
    events = []
    cfg = load_config(None, {"run": {"workers": workers}})
    analyse([two_camera_footage], tmp_path / "out", cfg, progress=lambda *e: events.append(e))
    video = [(done, total) for stage, done, total in events if stage == "video"]
    assert video and video[-1] == (video[-1][1], video[-1][1]) and video[-1][1] in (8, 9)  # 3 clips of ~3 s
    assert [d for d, _ in video] == sorted(d for d, _ in video)
    files = [(done, total) for stage, done, total in events if stage == "analyse"]
    assert files[0] == (0, 3) and files[-1] == (3, 3)


def _grouping(out: Path) -> set[frozenset]:
    groups: dict[str, set] = defaultdict(set)
    for r in _faces_csv(out):
        groups[r["identity"]].add((Path(r["file"]).name, r["pts_s"], r["x1"], r["y1"], r["x2"], r["y2"]))
    return {frozenset(g) for g in groups.values()}


def test_files_cut_into_segments_give_the_same_report(two_camera_footage, tmp_path):
    """Each 3 s clip as three 1 s units on two workers: same faces, identities and sightings."""
    whole = analyse([two_camera_footage], tmp_path / "whole", load_config(None, {"run": {"workers": 1}}))
    cut = analyse([two_camera_footage], tmp_path / "cut", load_config(None, {"run": {"workers": 2, "segment_s": 1.0}}))
    assert whole.n_units == 3 and cut.n_units == 9
    assert _grouping(tmp_path / "cut") == _grouping(tmp_path / "whole")
    assert _sightings(cut) == _sightings(whole)


def _sightings(summary) -> list[tuple]:
    return sorted(
        (s["file"], s["start_offset_s"], s["end_offset_s"]) for i in summary.identities for s in i["sightings"]
    )
