"""Careless input folders: OUT inside an INPUT, same-named camera folders, copies of one file, the
examiner's folder layout in the report, and file names with bidirectional controls."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import data_path
from tests_support import face_crop, face_frames

from benchmarks.videos import write_video
from vidcluster.case.outdir import STORE_NAME
from vidcluster.case.store import Store
from vidcluster.cli import main
from vidcluster.config import CameraConfig, SourcesConfig, load_config
from vidcluster.errors import ConfigError
from vidcluster.run.pipeline import analyse
from vidcluster.video.sources import CASE_STORE_NAME, discover, folder_names

RLO = "\u202e"  # right-to-left override: 'CH01_..._\u202ekcab.mp4' shows as 'CH01_..._4pm.back'


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


# -- the walk ------------------------------------------------------------------------------------
def test_another_cases_output_folder_is_not_walked(tmp_path):
    _touch(tmp_path, "cam/a.mp4", "old-case/vidcluster.db", "old-case/report/face-1.jpg", "old-case/report/clips/c.mp4")
    left_out = []
    found, skipped = discover([tmp_path], SourcesConfig(), left_out=left_out)
    assert [c.path.name for c in found] == ["a.mp4"] and skipped == []
    assert [(s.path, s.shown) for s in left_out] == [(tmp_path / "old-case", f"{tmp_path.name}/old-case")]
    assert CASE_STORE_NAME in left_out[0].reason and CASE_STORE_NAME == STORE_NAME


def test_this_runs_out_is_not_walked_even_before_it_holds_a_store(tmp_path):
    _touch(tmp_path, "cam/a.mp4", "out/report/face-1.jpg")
    left_out = []
    found, _ = discover([tmp_path], SourcesConfig(), out=tmp_path / "cam" / ".." / "out", left_out=left_out)
    assert [c.path.name for c in found] == ["a.mp4"]
    assert [s.path for s in left_out] == [tmp_path / "out"] and "--out" in left_out[0].reason


# -- camera names --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "files, cameras",
    [
        (["siteA/CH01/a.mp4", "siteB/CH01/b.mp4", "lobby/c.mp4"], ["siteA/CH01", "siteB/CH01", "lobby"]),
        (["x/site/CH01/a.mp4", "y/site/CH01/b.mp4", "y/CH02/c.mp4"], ["x/site/CH01", "y/site/CH01", "CH02"]),
        (["entrance/a.mkv", "hallway/b.mkv", "office/c.mkv"], ["entrance", "hallway", "office"]),
        (["siteA/CH01/a.mp4", "siteB/CH01/notes.txt"], ["CH01"]),  # a folder without footage is no camera
    ],
)
def test_same_named_camera_folders_are_told_apart_by_their_parents(tmp_path, files, cameras):
    _touch(tmp_path, *files)
    found, _ = discover([tmp_path], SourcesConfig())
    got = {c.path.relative_to(tmp_path).as_posix(): c.camera.id for c in found}
    assert got == {f: cam for f, cam in zip((f for f in files if not f.endswith(".txt")), cameras, strict=True)}


def test_two_inputs_with_same_named_folders_give_two_cameras(tmp_path):
    _touch(tmp_path, "siteA/CH01/a.mp4", "siteB/CH01/b.mp4")
    found, _ = discover([tmp_path / "siteA", tmp_path / "siteB"], SourcesConfig())
    assert [(c.camera.id, c.shown) for c in found] == [
        ("siteA/CH01", "siteA/CH01/a.mp4"),
        ("siteB/CH01", "siteB/CH01/b.mp4"),
    ]


def test_a_camera_listed_by_id_claims_one_folder_or_is_refused(tmp_path):
    _touch(tmp_path, "siteA/CH01/a.mp4", "siteB/CH01/b.mp4")
    berlin = CameraConfig(id="siteA/CH01", timezone="Europe/Berlin")
    found, _ = discover([tmp_path], SourcesConfig(cameras=(berlin,)))
    assert [(c.camera.id, c.camera.timezone) for c in found] == [("siteA/CH01", "Europe/Berlin"), ("siteB/CH01", "UTC")]
    with pytest.raises(ConfigError, match=r"sources\.cameras\[0\]\.id: camera 'CH01' matches 2 folders"):
        discover([tmp_path], SourcesConfig(cameras=(CameraConfig(id="CH01", timezone="Europe/Berlin"),)))


def test_folder_names_doctest_shapes():
    names = folder_names([Path("/a/CH01"), Path("/x/a/CH01"), Path("/")])
    assert names == {Path("/a/CH01"): "a/CH01", Path("/x/a/CH01"): "x/a/CH01", Path("/"): ""}


# -- one careless folder, run twice through the command line ---------------------------------------
@pytest.fixture(scope="module")
def careless(tmp_path_factory):
    """footage/siteA/CH01 and footage/siteB/CH01 (one person passes both), a copy and a hard link of
    the siteA clip, an unreadable file, a name with a bidi override, and OUT inside footage/;
    `vidcluster run footage --out footage/out` twice."""
    root = tmp_path_factory.mktemp("careless")
    footage = root / "footage"
    obama = face_crop(data_path("hamilton", "obama.jpg"))
    a = footage / "siteA" / "CH01" / "CH01_20260314-100000.mp4"
    b = footage / "siteB" / "CH01" / f"CH01_20260314-100500_{RLO}kcab.mp4"
    a.parent.mkdir(parents=True)
    b.parent.mkdir(parents=True)
    write_video(a, face_frames(obama, 20), fps=10)
    write_video(b, face_frames(obama, 20, start_x=120, step_px=-3), fps=10)
    shutil.copyfile(a, a.parent / "copy-CH01_20260314-100000.mp4")
    os.link(a, a.parent / "link-CH01_20260314-100000.mp4")
    (a.parent / "broken.mp4").write_bytes(random.Random(1).randbytes(4000))
    out = footage / "out"
    args = ["run", str(footage), "--out", str(out), "-q", "--workers", "1"]
    runs = [CliRunner().invoke(main, args) for _ in range(2)]
    for r in runs:
        assert r.exit_code == 0, r.output
    return {"root": root, "footage": footage, "a": a, "b": b, "out": out, "runs": runs}


def _report_texts(out: Path) -> dict[str, str]:
    report = out / "report"
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(report.iterdir())
        if p.suffix in (".html", ".csv", ".json")
    }


def test_out_inside_the_input_is_not_analysed_by_the_next_run(careless):
    out, second = careless["out"], careless["runs"][1]
    assert f"vidcluster: not walked {out}: the output folder of this run (--out)" in second.stderr
    assert "0 analysed now" in second.stdout
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    assert not [i["path"] for i in manifest["inputs"] if i["path"].startswith(str(out))]
    assert len(manifest["inputs"]) == 4 and manifest["left_out"][0]["shown"] == "footage/out"
    assert "Folders not walked" in (out / "report" / "index.html").read_text(encoding="utf-8")


def test_same_named_camera_folders_are_two_cameras_in_the_report(careless):
    out = careless["out"]
    assert "2 cameras" in careless["runs"][1].stdout
    identities = json.loads((out / "report" / "identities.json").read_text())
    assert sorted({c for i in identities for c in i["cameras"]}) == ["siteA/CH01", "siteB/CH01"]
    case = (out / "report" / "case.html").read_text(encoding="utf-8")
    assert "siteA/CH01 10:00:0" in case and "siteB/CH01 10:05:0" in case


def test_copies_and_hard_links_are_analysed_once_and_flagged(careless):
    out, a = careless["out"], careless["a"]
    first = careless["runs"][0]
    with open(out / "report" / "sightings.csv", newline="") as fh:
        files = {Path(r["file"]).name for r in csv.DictReader(fh)}
    assert files == {a.name, careless["b"].name}  # no sighting from a copy
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    status = {Path(i["path"]).name: (i["status"], i["duplicate_of"]) for i in manifest["inputs"]}
    assert status["copy-CH01_20260314-100000.mp4"] == status["link-CH01_20260314-100000.mp4"] == ("duplicate", str(a))
    assert status[a.name] == ("done", None)
    assert [d["duplicate_of"] for d in manifest["duplicates"]] == [str(a), str(a)]
    assert manifest["counts"]["duplicates"] == 2
    assert f"vidcluster: duplicate {a.parent / 'copy-CH01_20260314-100000.mp4'}: same content" in first.stderr
    assert ", 2 duplicates)" in first.stdout
    index = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert "Duplicate files" in index and "footage/siteA/CH01/copy-CH01_20260314-100000.mp4" in index


def test_the_report_shows_paths_from_the_input_and_the_manifest_keeps_them_whole(careless):
    root, out, a = careless["root"], careless["out"], careless["a"]
    texts = _report_texts(out)
    leaks = [name for name, text in texts.items() if name != "manifest.json" and str(root) in text]
    assert leaks == []
    assert "footage/siteA/CH01/broken.mp4" in texts["index.html"]  # a skipped file too
    with open(out / "report" / "faces.csv", newline="") as fh:
        assert {r["file"] for r in csv.DictReader(fh)} <= {
            "footage/siteA/CH01/" + a.name,
            "footage/siteB/CH01/" + careless["b"].name,
        }
    manifest = json.loads(texts["manifest.json"])
    by_path = {i["path"]: i for i in manifest["inputs"]}
    assert by_path[str(a)]["shown"] == "footage/siteA/CH01/" + a.name


def test_bidi_controls_in_file_names_are_shown_escaped(careless):
    texts = _report_texts(careless["out"])
    pages = {n: t for n, t in texts.items() if n.endswith(".html")}
    assert [n for n, t in pages.items() if RLO in t] == []
    assert "CH01_20260314-100500_\\u202ekcab.mp4" in pages["index.html"]
    assert RLO in texts["faces.csv"]  # the data keep the name as it is


# -- copies added to a case that was analysed before ------------------------------------------------
def test_a_copy_added_later_leaves_the_analysed_file_and_its_sightings_alone(tmp_path):
    """A copy that sorts first, and a copy in a second INPUT: the file analysed before stays the one
    analysed (its sighting ids, which corrections refer to, do not change) and nothing is decoded."""
    cam = tmp_path / "in" / "cam"
    cam.mkdir(parents=True)
    clip = cam / "cam_20260314-100000.mp4"
    write_video(clip, face_frames(face_crop(data_path("hamilton", "obama.jpg")), 20), fps=10)
    cfg = load_config(None, {"run": {"workers": 1}, "report": {"clips": False}})
    out = tmp_path / "out"

    def track_ids() -> list[int]:
        store = Store.open(out / "vidcluster.db")
        try:
            return [t.id for t in store.tracks()]
        finally:
            store.close()

    analyse([tmp_path / "in"], out, cfg)
    tracks = track_ids()
    assert tracks
    shutil.copyfile(clip, cam / "0-copy.mp4")
    (tmp_path / "more").mkdir()
    os.link(clip, tmp_path / "more" / "linked.mp4")
    second = analyse([tmp_path / "in", tmp_path / "more"], out, cfg)
    assert second.n_analysed == 0
    assert sorted((Path(d["path"]).name, d["of"]) for d in second.duplicates) == [
        ("0-copy.mp4", str(clip)),
        ("linked.mp4", str(clip)),
    ]
    assert track_ids() == tracks


def test_a_file_whose_content_moved_to_another_name_is_analysed_under_the_new_one(tmp_path):
    """The clip analysed before is moved to a new name and a different clip takes its old name: the
    moved clip is no copy of what the old name now holds, so both are analysed and neither is lost."""
    cam = tmp_path / "in" / "cam"
    cam.mkdir(parents=True)
    old = cam / "cam_20260314-100000.mp4"
    write_video(old, face_frames(face_crop(data_path("hamilton", "obama.jpg")), 20), fps=10)
    cfg = load_config(None, {"run": {"workers": 1}, "report": {"clips": False}})
    out = tmp_path / "out"
    analyse([tmp_path / "in"], out, cfg)
    moved = cam / "cam_20260314-110000.mp4"
    old.rename(moved)
    write_video(old, face_frames(face_crop(data_path("hamilton", "obama.jpg")), 10), fps=10)
    second = analyse([tmp_path / "in"], out, cfg)
    assert second.duplicates == []
    assert second.n_analysed == 2
    store = Store.open(out / "vidcluster.db")
    try:
        with_tracks = {f.path for f in store.footage() if any(t.footage_id == f.id for t in store.tracks())}
    finally:
        store.close()
    assert str(moved) in with_tracks
