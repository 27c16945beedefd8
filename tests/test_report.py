"""Report: identities.json, faces.csv, manifest.json, HTML pages and images from an in-memory store."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcluster.config import ReportConfig
import vidcluster.report as report_pkg
from vidcluster.report import write_report
from vidcluster.report.data import iso_utc, load_report_data, parse_utc
from vidcluster.report.images import as_jpeg, grid_shape, montage, square_tile
from vidcluster.report.svg import Lane, Mark, tick_label, tick_step_s, ticks, timeline_svg
from vidcluster.store import Store, TrackRecord
from vidcluster.types import EMBEDDING_DIM, Footage

UTC = timezone.utc
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)
EVIL_CAMERA = "<img src=x onerror=alert(1)>"
EVIL_FILE = "/footage/<script>alert(2)</script>.mp4"


def jpeg(value: int, shape: tuple[int, int] = (24, 20)) -> bytes:
    img = np.full((*shape, 3), value, np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def add_file(store: Store, footage: Footage, tracks: list[list[tuple[float, float]]], *, status: str = "done",
             reason: str = "") -> list[int]:
    """Store one file whose tracks are lists of (pts_s, quality) faces; returns the new track ids."""
    fid = store.upsert_footage(footage)
    faces = [f for tr in tracks for f in tr]
    n = len(faces)
    records, k = [], 0
    for tr in tracks:
        rows = np.arange(k, k + len(tr), dtype=np.int64)
        k += len(tr)
        records.append(TrackRecord(start_s=tr[0][0], end_s=tr[-1][0], face_rows=rows, steer=True,
                                   embedding=np.zeros(EMBEDDING_DIM, np.float32), snapshot=jpeg(90, (48, 64))))
    store.save_file_result(
        fid, "p",
        faces_pts_s=np.array([f[0] for f in faces], np.float64),
        faces_boxes=np.tile(np.array([[10, 20, 50, 70]], np.int32), (n, 1)).reshape(n, 4),
        faces_scores=np.ones(n, np.float32),
        faces_quality=np.array([f[1] for f in faces], np.float32),
        faces_embeddings=np.zeros((n, EMBEDDING_DIM), np.float32),
        thumbs=[jpeg((40 + 10 * i) % 256) for i in range(n)],
        tracks=records, status=status, reason=reason,
    )
    return [r["id"] for r in store.tracks() if r["footage_id"] == fid]


def footage(path: str, camera: str, start: datetime | None, source: str, duration_s: float = 60.0) -> Footage:
    return Footage(path=Path(path), camera=camera, kind="video", size_bytes=1000 + len(path),
                   sha256=hashlib.sha256(path.encode()).hexdigest(), start_utc=start, start_source=source,
                   duration_s=duration_s)


def make_store() -> Store:
    """Two identities and one unmatched sighting across four files, one without a start time."""
    st = Store.open(":memory:")
    a = add_file(st, footage("/footage/entrance_1.mp4", "entrance", T0, "filename"),
                 [[(10.0, 0.5), (12.0, 0.9)], [(30.0, 0.4)], [(40.0, 0.3)]])
    b = add_file(st, footage(EVIL_FILE, EVIL_CAMERA, T0 + timedelta(minutes=5), "metadata", 30.0),
                 [[(5.0, 0.2), (6.0, 0.95), (7.0, 0.1)]])
    c = add_file(st, footage("/footage/office_clock_lost.mkv", "office", None, "none", 20.0), [[(3.0, 0.6), (4.0, 0.6)]])
    d = add_file(st, footage("/footage/office_mtime.mkv", "office", T0 + timedelta(hours=1), "mtime", 20.0),
                 [[(1.0, 0.7)]])
    skipped = st.upsert_footage(footage("/footage/broken.avi", "entrance", None, "none", 0.0))
    st.mark_skipped(skipped, "cannot decode: invalid data", "p")
    # identity 7: 3 sightings (a[1], c[0], d[0]); identity 2: 2 sightings (a[0], b[0]); a[2] unmatched
    st.set_assignment([a[0], b[0], a[1], c[0], d[0]], [2, 2, 7, 7, 7])
    return st


@pytest.fixture
def store() -> Store:
    return make_store()


RUN_INFO = {
    "version": "0.1.0",
    "started_utc": "2026-03-20T10:00:00Z",
    "finished_utc": "2026-03-20T10:05:00Z",
    "parameters": {"identities": {"algorithm": "dbscan", "eps": 0.5}},
    "inputs": ["/footage"],
    "window": {"since": None, "until": None},
    "skipped": [{"path": "/footage/notes.txt", "reason": "not a video or image"}],
}


@pytest.fixture
def report(store: Store, tmp_path: Path) -> Path:
    index = write_report(store, tmp_path, RUN_INFO, ReportConfig(montage_faces=2, thumb_px=40))
    assert index == tmp_path / "report" / "index.html"
    return index.parent


def html_pages(folder: Path) -> list[Path]:
    pages = sorted(folder.glob("*.html"))
    assert pages
    return pages


# -- identities.json ------------------------------------------------------------------------
def test_identities_json_order_and_counts(report: Path):
    idents = json.loads((report / "identities.json").read_text())
    assert [i["id"] for i in idents] == [7, 2]
    by_id = {i["id"]: i for i in idents}
    assert {k: by_id[2][k] for k in ("label", "n_faces", "n_sightings", "cameras")} == {
        "label": None, "n_faces": 5, "n_sightings": 2, "cameras": sorted(["entrance", EVIL_CAMERA])}
    assert by_id[7]["n_faces"] == 4 and by_id[7]["n_sightings"] == 3
    assert by_id[7]["cameras"] == ["entrance", "office"]


@pytest.mark.parametrize("ident, first, last", [
    (2, "2026-03-14T09:00:10.000Z", "2026-03-14T09:05:07.000Z"),
    (7, "2026-03-14T09:00:30.000Z", "2026-03-14T10:00:01.000Z"),
])
def test_identities_json_first_last_seen(report: Path, ident: int, first: str, last: str):
    by_id = {i["id"]: i for i in json.loads((report / "identities.json").read_text())}
    assert (by_id[ident]["first_seen"], by_id[ident]["last_seen"]) == (first, last)


def test_identities_json_sightings(report: Path):
    by_id = {i["id"]: i for i in json.loads((report / "identities.json").read_text())}
    s2 = by_id[2]["sightings"]
    assert [(s["camera"], s["file"], s["start"], s["end"], s["n_faces"]) for s in s2] == [
        ("entrance", "/footage/entrance_1.mp4", "2026-03-14T09:00:10.000Z", "2026-03-14T09:00:12.000Z", 2),
        (EVIL_CAMERA, EVIL_FILE, "2026-03-14T09:05:05.000Z", "2026-03-14T09:05:07.000Z", 3),
    ]
    assert (s2[0]["start_offset_s"], s2[0]["end_offset_s"]) == (10.0, 12.0)
    untimed = [s for s in by_id[7]["sightings"] if s["file"].endswith("office_clock_lost.mkv")]
    assert len(untimed) == 1
    assert untimed[0]["start"] is None and untimed[0]["end"] is None
    assert (untimed[0]["start_offset_s"], untimed[0]["end_offset_s"]) == (3.0, 4.0)
    assert by_id[7]["sightings"][-1] is not None and by_id[7]["sightings"][-1]["start"] is None  # untimed last
    assert by_id[7]["times_reliable"] is False and by_id[2]["times_reliable"] is True


# -- faces.csv ------------------------------------------------------------------------------
def test_faces_csv(report: Path):
    with open(report / "faces.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["face_id", "identity", "camera", "file", "pts_s", "time_utc", "x1", "y1", "x2", "y2",
                             "track_id", "quality"]
    assert len(rows) == 10
    unmatched = [r for r in rows if r["identity"] == "-1"]
    assert [(r["camera"], r["pts_s"], r["time_utc"]) for r in unmatched] == [
        ("entrance", "40.000", "2026-03-14T09:00:40.000Z")]
    assert [r["time_utc"] for r in rows if r["file"].endswith("clock_lost.mkv")] == ["", ""]
    evil = [r for r in rows if r["camera"] == EVIL_CAMERA]
    assert len(evil) == 3 and {r["identity"] for r in evil} == {"2"} and evil[0]["file"] == EVIL_FILE
    assert (rows[0]["x1"], rows[0]["y1"], rows[0]["x2"], rows[0]["y2"]) == ("10", "20", "50", "70")


# -- manifest.json --------------------------------------------------------------------------
def test_manifest(report: Path, store: Store):
    man = json.loads((report / "manifest.json").read_text())
    hashes = {i["path"]: i["sha256"] for i in man["inputs"]}
    assert hashes == {r["path"]: r["sha256"] for r in store.footage()}
    skipped = {s["path"]: s["reason"] for s in man["skipped"]}
    assert skipped == {"/footage/notes.txt": "not a video or image",
                       "/footage/broken.avi": "cannot decode: invalid data"}
    by_path = {i["path"]: i for i in man["inputs"]}
    assert by_path["/footage/office_mtime.mkv"]["start_source"] == "mtime"
    assert by_path["/footage/office_mtime.mkv"]["start_reliable"] is False
    assert by_path["/footage/entrance_1.mp4"]["start_utc"] == "2026-03-14T09:00:00.000Z"
    assert man["parameters"] == RUN_INFO["parameters"]
    assert man["input_args"] == ["/footage"] and man["window"] == {"since": None, "until": None}
    assert {"vidcluster", "dlib", "av", "numpy", "sklearn", "cv2"} <= set(man["versions"])
    assert man["versions"]["numpy"] == np.__version__
    assert man["counts"]["faces"] == 10 and man["counts"]["unmatched_faces"] == 1


# -- HTML -----------------------------------------------------------------------------------
def test_pages_are_self_contained(report: Path):
    for page in html_pages(report):
        text = page.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text, page.name
        assert "<script" not in text.lower(), page.name
        assert 'http-equiv="Content-Security-Policy"' in text and "default-src &#x27;none&#x27;" in text
        for ref in re.findall(r'(?:src|href)="([^"]*)"', text):
            assert not re.match(r"^[a-z][a-z0-9+.-]*:", ref, re.I) and not ref.startswith("//"), (page.name, ref)


def test_hostile_names_are_escaped(report: Path):
    seen = False
    for page in html_pages(report):
        text = page.read_text(encoding="utf-8")
        assert EVIL_CAMERA not in text and "<img src=x" not in text
        assert "<script>alert(2)" not in text
        seen |= "&lt;img src=x onerror=alert(1)&gt;" in text
    assert seen
    assert "&lt;script&gt;alert(2)&lt;/script&gt;.mp4" in (report / "identity-2.html").read_text(encoding="utf-8")
    names = {p.name for p in report.iterdir()}
    assert all(re.fullmatch(r"[a-z]+(-\d+)?\.(html|jpg|json|csv)", n) for n in names), names


def test_every_image_exists(report: Path):
    count = 0
    for page in html_pages(report):
        for src in re.findall(r'<img[^>]*\bsrc="([^"]+)"', page.read_text(encoding="utf-8")):
            assert "/" not in src and (report / src).is_file(), (page.name, src)
            assert cv2.imdecode(np.frombuffer((report / src).read_bytes(), np.uint8), cv2.IMREAD_COLOR) is not None
            count += 1
    assert count >= 2 + 1 + 2 + 5  # cards, unmatched, montages, snapshots


def test_index_contents(report: Path):
    text = (report / "index.html").read_text(encoding="utf-8")
    for needle in ('href="identity-7.html"', 'href="identity-2.html"', "<svg", "Unmatched (1 face(s), 1 sighting(s))",
                   "broken.avi", "cannot decode: invalid data", "notes.txt", "not a video or image",
                   "Unreliable times", "office_mtime.mkv", "No start time", "office_clock_lost.mkv"):
        assert needle in text, needle
    assert text.index('href="identity-7.html"') < text.index("Identity 2<")  # cards sorted by sightings
    assert "<title>identity 2 \u00b7 camera entrance \u00b7 2026-03-14 09:00:10" in text  # timeline tooltip


def test_identity_page(report: Path):
    text = (report / "identity-7.html").read_text(encoding="utf-8")
    # last seen comes from the mtime file: flagged next to the time and drawn dashed on the timeline
    assert re.search(r"Last seen</dt><dd>2026-03-14 10:00:01 UTC \(office\) <span class=\"approx\"", text)
    assert text.count('class="mark approx"') == 1 and text.count('class="mark"') == 1
    assert 'src="montage-7.jpg"' in text and 'href="index.html"' in text
    assert "3.0 s \u2013 4.0 s into the file" in text  # the file without a start time
    assert "approx." in text  # the mtime file
    assert text.count("<tr>") == 1 + 3
    for tid in re.findall(r'src="snap-(\d+)\.jpg"', text):
        assert (report / f"snap-{tid}.jpg").is_file()
    montage_img = cv2.imread(str(report / "montage-2.jpg"))
    assert montage_img.shape == (44, 86, 3)  # 2 tiles of 40 px, 2 px gaps


def test_rewrite_replaces_previous_report(store: Store, tmp_path: Path):
    cfg = ReportConfig()
    write_report(store, tmp_path, RUN_INFO, cfg)
    (tmp_path / "report" / "stale.txt").write_text("old")
    store.set_assignment([], [])  # everything unmatched now
    write_report(store, tmp_path, RUN_INFO, cfg)
    assert not (tmp_path / "report" / "stale.txt").exists()
    assert not list((tmp_path / "report").glob("identity-*.html"))
    assert json.loads((tmp_path / "report" / "identities.json").read_text()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_failed_write_keeps_previous_report(store: Store, tmp_path: Path, monkeypatch):
    write_report(store, tmp_path, RUN_INFO, ReportConfig())
    before = sorted(p.name for p in (tmp_path / "report").iterdir())

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_pkg, "build_report", boom)
    with pytest.raises(report_pkg.ReportError, match="No space left"):
        write_report(store, tmp_path, RUN_INFO, ReportConfig())
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_empty_store(tmp_path: Path):
    index = write_report(Store.open(":memory:"), tmp_path, {"version": "0.1.0"}, ReportConfig())
    assert "No identities were found." in index.read_text(encoding="utf-8")
    assert json.loads((index.parent / "identities.json").read_text()) == []
    assert (index.parent / "faces.csv").read_text().splitlines() == [
        "face_id,identity,camera,file,pts_s,time_utc,x1,y1,x2,y2,track_id,quality"]


def test_load_before_clustering_is_unmatched(tmp_path: Path):
    st = Store.open(":memory:")
    add_file(st, footage("/f.mp4", "cam", T0, "config"), [[(1.0, 0.5)]])
    data = load_report_data(st)
    assert data.identities == () and len(data.unmatched) == 1 and data.unmatched_faces[0].identity == -1


def test_bad_snapshot_is_left_out(tmp_path: Path):
    st = Store.open(":memory:")
    (tid,) = add_file(st, footage("/f.mp4", "cam", T0, "config"), [[(1.0, 0.5)]])
    st.conn.execute("UPDATE tracks SET snapshot = NULL WHERE id = ?", (tid,))
    st.conn.execute("UPDATE faces SET thumb = ?", (b"not an image",))
    st.set_assignment([tid], [0])
    index = write_report(st, tmp_path, RUN_INFO, ReportConfig())
    assert not list(index.parent.glob("snap-*")) and not list(index.parent.glob("face-*"))
    assert "none</span>" in (index.parent / "identity-0.html").read_text(encoding="utf-8")


# -- helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize("span_s, step_s", [(5, 1), (50, 10), (600, 120), (3600, 600), (6 * 3600, 3600),
                                            (3 * 86400, 43200), (30 * 86400, 7 * 86400)])
def test_tick_step(span_s: float, step_s: int):
    assert tick_step_s(span_s) == step_s


@pytest.mark.parametrize("t, step, multi_day, label", [
    (datetime(2026, 3, 14, 9, 5, 30, tzinfo=UTC), 30, False, "09:05:30"),
    (datetime(2026, 3, 14, 9, 5, tzinfo=UTC), 300, False, "09:05"),
    (datetime(2026, 3, 14, 18, 0, tzinfo=UTC), 3600, True, "03-14 18:00"),
    (datetime(2026, 3, 15, tzinfo=UTC), 86400, True, "2026-03-15"),
])
def test_tick_label(t: datetime, step: int, multi_day: bool, label: str):
    assert tick_label(t, step, multi_day) == label


def test_ticks_are_aligned():
    out = ticks(T0 + timedelta(seconds=7), T0 + timedelta(minutes=10), 120)
    assert out[0] == T0 + timedelta(minutes=2) and out[-1] == T0 + timedelta(minutes=10) and len(out) == 5


def test_timeline_svg():
    lanes = [Lane("<b>cam</b>", (Mark(T0, T0 + timedelta(minutes=1), "#123456", "a <i>", approx=True),)),
             Lane("b", (Mark(T0 + timedelta(minutes=9), T0 + timedelta(minutes=10), "#654321", "b"),),
                  "identity-1.html")]
    svg = timeline_svg(lanes, width_px=600, label_px=100)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<b>" not in svg and "&lt;b&gt;cam&lt;/b&gt;" in svg and "<title>a &lt;i&gt;</title>" in svg
    assert 'class="mark approx"' in svg and '<a href="identity-1.html">' in svg
    assert ">09:00<" in svg and ">09:10<" in svg and "time (UTC), 2026-03-14" in svg
    xs = [float(x) for x in re.findall(r'class="mark[^"]*" x="([\d.]+)"', svg)]
    assert 100 < xs[0] < xs[1] < 600
    assert timeline_svg([Lane("empty", ())]) == ""


@pytest.mark.parametrize("text, expected", [
    ("2026-03-14T09:00:00+00:00", T0), ("2026-03-14T10:00:00+01:00", T0), ("2026-03-14T09:00:00Z", T0),
    ("2026-03-14T09:00:00", T0), (None, None), ("", None),
])
def test_parse_utc(text, expected):
    assert parse_utc(text) == expected


def test_iso_utc():
    assert iso_utc(T0 + timedelta(microseconds=1500)) == "2026-03-14T09:00:00.001Z" and iso_utc(None) is None


@pytest.mark.parametrize("n, shape", [(0, (1, 1)), (1, (1, 1)), (2, (1, 2)), (4, (2, 2)), (5, (2, 3)), (10, (3, 4))])
def test_grid_shape(n: int, shape: tuple[int, int]):
    assert grid_shape(n) == shape


def test_montage_and_tiles():
    tile = square_tile(np.full((30, 10, 3), 7, np.uint8), 20)
    assert tile.shape == (20, 20, 3) and tile[10, 10, 0] == 7 and tile[10, 0, 0] != 7  # letterboxed sides
    out = montage([np.zeros((5, 5, 3), np.uint8), None, None], tile_px=10, gap_px=1)
    assert out.shape == (2 * 11 + 1, 2 * 11 + 1, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("blob, ok", [(jpeg(100), True), (b"", False), (None, False), (b"garbage", False)])
def test_as_jpeg(blob, ok: bool):
    out = as_jpeg(blob)
    assert (out is not None) == ok and (out is None or out[:2] == b"\xff\xd8")


@pytest.mark.parametrize(
    "path,expected",
    [
        ("/footage/cam_1.mp4", 'src="../../../footage/cam_1.mp4#t=1.00,2.50"'),
        ("/footage/a b<x>.mkv", 'src="../../../footage/a%20b%3Cx%3E.mkv#t=1.00,2.50"'),
        ("/footage/dvr.dav", None),  # browsers cannot play it: file and offset only
        ("/footage/old.avi", None),
    ],
)
def test_player_cued_to_the_sighting(path, expected):
    from vidcluster.report.data import FileInfo, Sighting
    from vidcluster.report.pages import player

    info = FileInfo(id=1, path=path, camera="cam", kind="video", size_bytes=1, sha256="0" * 64, start_utc=None,
                    start_source="none", duration_s=10.0, status="done", reason="")
    sighting = Sighting(track_id=1, file=info, start_s=1.0, end_s=2.0, n_faces=0, identity=0, faces=())
    html = player(sighting, Path("/case/out/report"))  # relative to the report folder
    assert player(sighting, None) == ""
    if expected is None:
        assert html == ""
    else:
        assert "<video controls" in html and expected in html
