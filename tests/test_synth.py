"""Synthetic footage: files and truth agree, decode with the stated duration, are seeded, hold faces."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

import av
import numpy as np
import pytest
from conftest import data_path

from benchmarks import synth


@pytest.fixture(scope="module")
def photos():
    return data_path("photos-deepface", "images")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory, photos):
    out = tmp_path_factory.mktemp("synth")
    truth = synth.generate(
        out,
        photos,
        cameras=1,
        hours=60 / 3600,
        people=3,
        seed=7,
        size=(320, 180),
        fps=10,
        clip_s=30,
        gap_s=8,
        workers=1,
    )
    return out, truth


def test_truth_rows_match_the_files(small_set):
    out, truth = small_set
    rows = synth.read_truth(truth)
    assert rows, "a 60 s feed with an episode every ~8 s must show someone"
    assert list(rows[0]) == list(synth.TRUTH_FIELDS)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4"))
    assert files == ["cam1/cam1_20260314-080000.mp4", "cam1/cam1_20260314-080030.mp4"]
    for row in rows:
        assert row["file"] in files and row["camera"] == "cam1"
        file_start = datetime.strptime(row["file"].split("_")[-1][:-4], "%Y%m%d-%H%M%S")
        a, b = float(row["start_offset_s"]), float(row["end_offset_s"])
        assert 0 <= a < b <= 30
        start = datetime.fromisoformat(row["start_utc"].replace("Z", "+00:00")).replace(tzinfo=None)
        end = datetime.fromisoformat(row["end_utc"].replace("Z", "+00:00")).replace(tzinfo=None)
        assert start == file_start + timedelta(seconds=a) and end == file_start + timedelta(seconds=b)


def test_files_decode_with_the_stated_duration(small_set):
    out, _ = small_set
    for path in sorted(out.rglob("*.mp4")):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            pts_s = [float(f.pts * f.time_base) for f in container.decode(stream)]
        assert len(pts_s) == 300
        assert pts_s[0] == 0.0 and pts_s[-1] == pytest.approx(29.9, abs=1e-3)
        assert (stream.width, stream.height) == (320, 180)


def test_same_seed_same_truth(tmp_path, photos, small_set):
    _, truth = small_set
    again = synth.generate(
        tmp_path / "again",
        photos,
        cameras=1,
        hours=60 / 3600,
        people=3,
        seed=7,
        size=(320, 180),
        fps=10,
        clip_s=30,
        gap_s=8,
        workers=1,
    )
    assert again.read_bytes() == truth.read_bytes()
    other = synth.generate(
        tmp_path / "other",
        photos,
        cameras=1,
        hours=60 / 3600,
        people=3,
        seed=8,
        size=(320, 180),
        fps=10,
        clip_s=30,
        gap_s=8,
        workers=1,
    )
    assert other.read_bytes() != truth.read_bytes()


def test_folder_per_person_layout(tmp_path):
    johns = data_path("photos-johns")
    people = synth.labelled_photos(johns)
    assert len(people) == 5 and all(len(v) == 11 for v in people.values())


def test_missing_photos_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="photo folder not found"):
        synth.generate(tmp_path, tmp_path / "nowhere", hours=0.01)


def test_analyse_finds_faces_at_truth_times(small_set, tmp_path):
    from vidcluster.config import load_config
    from vidcluster.run.pipeline import analyse

    out, truth = small_set
    summary = analyse([out], tmp_path / "run", load_config(overrides={"faces": {"detector": "hog", "encoder": "dlib"}}))
    assert summary.n_files == 2
    with open(tmp_path / "run" / "report" / "faces.csv", newline="") as fh:
        faces = list(csv.DictReader(fh))
    rows = synth.read_truth(truth)
    hit = 0
    for row in rows:
        name = row["file"].split("/")[-1]
        a, b = float(row["start_offset_s"]), float(row["end_offset_s"])
        hit += any(f["file"].endswith(name) and a - 0.3 <= float(f["pts_s"]) <= b + 0.3 for f in faces)
    assert hit >= 0.7 * len(rows), f"faces found in {hit} of {len(rows)} appearances"
    # and faces only where somebody is
    stray = [
        f
        for f in faces
        if not any(
            f["file"].endswith(r["file"].split("/")[-1])
            and float(r["start_offset_s"]) - 0.3 <= float(f["pts_s"]) <= float(r["end_offset_s"]) + 0.3
            for r in rows
        )
    ]
    assert len(stray) <= 0.05 * max(1, len(faces))


@pytest.mark.parametrize(
    "name, cut_s, gap_s",
    [
        ("replace-cut", 4.0, 0.05),
        ("replace", None, 0.05),
        ("replace-gap", None, 1.05),
        ("replace-gap-cut", 4.0, 1.05),
    ],
)
def test_replacement_cases(name, cut_s, gap_s):
    case = synth.tracking_case(name, ("ann", 0), ("bob", 1))
    a, b = case.walkers
    assert (a.person, b.person) == ("ann", "bob") and case.cut_s == cut_s
    assert (a.x0, a.x1, a.size0) == (b.x0, b.x1, b.size0)  # one place, sitting still
    assert b.t0 - a.t1 == pytest.approx(gap_s)


def test_unknown_case_is_refused():
    with pytest.raises(ValueError, match="unknown case"):
        synth.tracking_case("replace-twice", ("ann", 0), ("bob", 1))


@pytest.mark.parametrize(
    "name, t_s, centre, expected",
    [
        ("replace", 1.0, (320, 140), "ann"),
        ("replace", 6.0, (320, 140), "bob"),
        ("replace", 6.0, (60, 300), None),  # nobody drawn there
        ("replace-gap", 4.0, (320, 140), None),  # nobody there during the gap
        ("crossing", 4.0, (320, 145), "ann"),  # where they meet, the nearer one hides the other
        ("crossing", 1.0, (128, 147), "ann"),
        ("crossing", 1.0, (512, 133), "bob"),
    ],
)
def test_true_person(name, t_s, centre, expected):
    case = synth.tracking_case(name, ("ann", 0), ("bob", 1))
    x, y = centre
    assert synth.true_person(case, t_s, [x - 30, y - 30, x + 30, y + 30], (640, 360)) == expected


def test_a_cut_shows_a_closer_shot_of_the_same_set():
    scene = synth.background(np.random.default_rng(1), (320, 180), 0)
    closer = synth.reframe(scene, synth.CUT_ZOOM)
    assert closer.shape == scene.shape
    assert abs(float(closer.mean()) - float(scene.mean())) < 8  # the same colours ...
    assert np.abs(closer.astype(int) - scene.astype(int)).mean() > 10  # ... in a different picture
