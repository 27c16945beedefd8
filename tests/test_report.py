"""Report: identities.json, faces.csv, manifest.json, HTML pages and images from an in-memory store."""

from __future__ import annotations

import base64
import csv
import errno
import hashlib
import html
import json
import os
import re
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

import vidcluster.report as report_pkg
from vidcluster.case.records import Correction, Kind, Role, parse_utc
from vidcluster.case.results import FileResult, TrackRecord
from vidcluster.case.store import Store
from vidcluster.config import ReportConfig
from vidcluster.errors import DiskFullError
from vidcluster.report import write_report
from vidcluster.report.data import iso_utc, load_report_data
from vidcluster.report.images import as_jpeg, grid_shape, montage, square_tile
from vidcluster.report.svg import Lane, Mark, tick_label, tick_step_s, ticks, timeline_svg
from vidcluster.types import Footage

DIM = 128  # the store takes any one size per case

UTC = timezone.utc
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)
EVIL_CAMERA = "<img src=x onerror=alert(1)>"
EVIL_FILE = "/footage/<script>alert(2)</script>.mp4"


def jpeg(value: int, shape: tuple[int, int] = (24, 20)) -> bytes:
    img = np.full((*shape, 3), value, np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def add_file(
    store: Store, footage: Footage, tracks: list[list[tuple[float, float]]], *, status: str = "done", reason: str = ""
) -> list[int]:
    """Store one file whose tracks are lists of (pts_s, quality) faces; returns the new track ids."""
    fid = store.upsert_footage(footage)
    store.set_footage_timezone(fid, footage.timezone)
    faces = [f for tr in tracks for f in tr]
    n = len(faces)
    records, k = [], 0
    for tr in tracks:
        rows = np.arange(k, k + len(tr), dtype=np.int64)
        k += len(tr)
        records.append(
            TrackRecord(
                start_s=tr[0][0],
                end_s=tr[-1][0],
                face_rows=rows,
                steer=True,
                embedding=np.zeros(DIM, np.float32),
                snapshot=jpeg(90, (48, 64)),
            )
        )
    store.save_file_result(
        fid,
        "p",
        FileResult(
            pts_s=np.array([f[0] for f in faces], np.float64),
            boxes=np.tile(np.array([[10, 20, 50, 70]], np.int32), (n, 1)).reshape(n, 4),
            scores=np.ones(n, np.float32),
            quality=np.array([f[1] for f in faces], np.float32),
            embeddings=np.zeros((n, DIM), np.float32),
            thumbs=[jpeg((40 + 10 * i) % 256) for i in range(n)],
            tracks=records,
            status=status,
            reason=reason,
        ),
    )
    return [t.id for t in store.tracks() if t.footage_id == fid]


def footage(
    path: str,
    camera: str,
    start: datetime | None,
    source: str,
    duration_s: float = 60.0,
    tz: str = "UTC",
    kind: str = "video",
) -> Footage:
    return Footage(
        path=Path(path),
        camera=camera,
        kind=kind,
        size_bytes=1000 + len(path),
        sha256=hashlib.sha256(path.encode()).hexdigest(),
        start_utc=start,
        start_source=source,
        duration_s=duration_s,
        timezone=tz,
    )


def make_store() -> Store:
    """Two identities and one unmatched sighting across four files, one without a start time."""
    st = Store.open(":memory:")
    a = add_file(
        st,
        footage("/footage/entrance_1.mp4", "entrance", T0, "filename", tz="Europe/Berlin"),
        [[(10.0, 0.5), (12.0, 0.9)], [(30.0, 0.4)], [(40.0, 0.3)]],
    )
    b = add_file(
        st,
        footage(EVIL_FILE, EVIL_CAMERA, T0 + timedelta(minutes=5), "metadata", 30.0),
        [[(5.0, 0.2), (6.0, 0.95), (7.0, 0.1)]],
    )
    c = add_file(
        st, footage("/footage/office_clock_lost.mkv", "office", None, "none", 20.0), [[(3.0, 0.6), (4.0, 0.6)]]
    )
    d = add_file(
        st, footage("/footage/office_mtime.mkv", "office", T0 + timedelta(hours=1), "mtime", 20.0), [[(1.0, 0.7)]]
    )
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
        "label": None,
        "n_faces": 5,
        "n_sightings": 2,
        "cameras": sorted(["entrance", EVIL_CAMERA]),
    }
    assert by_id[7]["n_faces"] == 4 and by_id[7]["n_sightings"] == 3
    assert by_id[7]["cameras"] == ["entrance", "office"]


@pytest.mark.parametrize(
    "ident, first, last",
    [
        (2, "2026-03-14T09:00:10.000Z", "2026-03-14T09:05:07.000Z"),
        (7, "2026-03-14T09:00:30.000Z", "2026-03-14T10:00:01.000Z"),
    ],
)
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
    assert list(rows[0]) == [
        "face_id",
        "identity",
        "camera",
        "file",
        "pts_s",
        "time_utc",
        "x1",
        "y1",
        "x2",
        "y2",
        "track_id",
        "quality",
        "time_local",
        "timezone",
    ]
    assert len(rows) == 10
    unmatched = [r for r in rows if r["identity"] == "-1"]
    assert [(r["camera"], r["pts_s"], r["time_utc"], r["time_local"], r["timezone"]) for r in unmatched] == [
        ("entrance", "40.000", "2026-03-14T09:00:40.000Z", "2026-03-14T10:00:40.000+01:00", "Europe/Berlin")
    ]
    assert [r["time_utc"] for r in rows if r["file"].endswith("clock_lost.mkv")] == ["", ""]
    evil = [r for r in rows if r["camera"] == EVIL_CAMERA]
    assert len(evil) == 3 and {r["identity"] for r in evil} == {"2"} and evil[0]["file"] == EVIL_FILE
    assert (rows[0]["x1"], rows[0]["y1"], rows[0]["x2"], rows[0]["y2"]) == ("10", "20", "50", "70")


# -- manifest.json --------------------------------------------------------------------------
def test_manifest(report: Path, store: Store):
    man = json.loads((report / "manifest.json").read_text())
    hashes = {i["path"]: i["sha256"] for i in man["inputs"]}
    assert hashes == {f.path: f.sha256 for f in store.footage()}
    skipped = {s["path"]: s["reason"] for s in man["skipped"]}
    assert skipped == {
        "/footage/notes.txt": "not a video or image",
        "/footage/broken.avi": "cannot decode: invalid data",
    }
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
        scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
        assert text.lower().count("<script") == len(scripts) == (1 if page.name == "case.html" else 0), page.name
        for script in scripts:  # the CSP allows exactly this inline script and nothing else
            digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
            csp = re.search(r'Content-Security-Policy" content="([^"]*)"', text).group(1)
            assert csp.endswith(f"script-src &#x27;sha256-{digest}&#x27;") and csp.count("script-src") == 1
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
    for needle in (
        'href="identity-7.html"',
        'href="identity-2.html"',
        "<svg",
        "Unmatched (1 face(s), 1 sighting(s))",
        "broken.avi",
        "cannot decode: invalid data",
        "notes.txt",
        "not a video or image",
        "Unreliable times",
        "office_mtime.mkv",
        "No start time",
        "office_clock_lost.mkv",
    ):
        assert needle in text, needle
    assert text.index('href="identity-7.html"') < text.index("Identity 2<")  # cards sorted by sightings
    # the timeline tooltip: camera clock with its offset, then UTC
    assert (
        "<title>identity 2 \u00b7 camera entrance \u00b7 2026-03-14 10:00:10 \u2013 10:00:12 (UTC+01:00) \u00b7 "
        "09:00:10 \u2013 09:00:12 UTC"
    ) in text
    assert "Europe/Berlin, UTC (UTC shown beside local times)" in text


def test_identity_page(report: Path):
    text = (report / "identity-7.html").read_text(encoding="utf-8")
    # last seen comes from the mtime file: flagged next to the time and drawn dashed on the timeline
    assert re.search(r"Last seen</dt><dd>2026-03-14 10:00:01 \(UTC\) \(office\) <span class=\"approx\"", text)
    assert text.count('class="mark approx"') == 1 and text.count('class="mark"') == 1
    assert "First seen</dt><dd>2026-03-14 10:00:30 (UTC+01:00) \u00b7 09:00:30 UTC (entrance)" in text
    assert 'src="montage-7.jpg"' in text and 'href="index.html"' in text
    assert "3.0 s \u2013 4.0 s into the file" in text  # the file without a start time
    assert "approx." in text  # the mtime file
    assert text.count('<tr id="sighting-') == 3
    assert '<td class="ref">1<br><span class="mono"' in text  # the reference column does not wrap
    assert re.search(
        r'Path</dt><dd><span class="path"><span class="hop" data-sightings="\d+"><a class="step" '
        r'href="identity-7.html#sighting-\d+"[^>]*>entrance 10:00:30</a></span><span class="hop" '
        r'data-sightings="\d+"><span class="arrow"> \u2192 </span><a[^>]*>office 10:00:01</a>',
        text,
    )
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


@pytest.mark.parametrize(
    "errno_,expected,message",
    [
        (errno.EACCES, report_pkg.ReportError, "cannot write the report .Permission denied"),
        (errno.ENOSPC, DiskFullError, "^disk full writing .*report$"),  # exit 4, whatever command wrote it
    ],
)
def test_failed_write_keeps_previous_report(store: Store, tmp_path: Path, monkeypatch, errno_, expected, message):
    write_report(store, tmp_path, RUN_INFO, ReportConfig())
    before = sorted(p.name for p in (tmp_path / "report").iterdir())

    def boom(*args, **kwargs):
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(report_pkg, "build_report", boom)
    with pytest.raises(expected, match=message):
        write_report(store, tmp_path, RUN_INFO, ReportConfig())
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_empty_store(tmp_path: Path):
    index = write_report(Store.open(":memory:"), tmp_path, {"version": "0.1.0"}, ReportConfig())
    assert "No identities were found." in index.read_text(encoding="utf-8")
    assert json.loads((index.parent / "identities.json").read_text()) == []
    assert (index.parent / "faces.csv").read_text().splitlines() == [
        "face_id,identity,camera,file,pts_s,time_utc,x1,y1,x2,y2,track_id,quality,time_local,timezone"
    ]
    assert len((index.parent / "sightings.csv").read_text().splitlines()) == 1
    assert "</span> of 0 shown" in (index.parent / "case.html").read_text(encoding="utf-8")


def test_load_before_clustering_is_unmatched(tmp_path: Path):
    st = Store.open(":memory:")
    add_file(st, footage("/f.mp4", "cam", T0, "config"), [[(1.0, 0.5)]])
    data = load_report_data(st)
    assert data.identities == () and len(data.unmatched) == 1 and data.unmatched_faces[0].identity == -1


def test_bad_snapshot_is_left_out(tmp_path: Path):
    st = Store.open(":memory:")
    (tid,) = add_file(st, footage("/f.mp4", "cam", T0, "config"), [[(1.0, 0.5)]])
    st.conn.execute("UPDATE tracks SET snapshot = NULL WHERE id = ?", (tid,))
    st.conn.execute("UPDATE faces SET thumb = ?, thumb_crc = ?", (b"not an image", zlib.crc32(b"not an image")))
    st.set_assignment([tid], [0])
    index = write_report(st, tmp_path, RUN_INFO, ReportConfig())
    assert not list(index.parent.glob("snap-*")) and not list(index.parent.glob("face-*"))
    assert "none</span>" in (index.parent / "identity-0.html").read_text(encoding="utf-8")


# -- helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "span_s, step_s",
    [(5, 1), (50, 10), (600, 120), (3600, 600), (6 * 3600, 3600), (3 * 86400, 43200), (30 * 86400, 7 * 86400)],
)
def test_tick_step(span_s: float, step_s: int):
    assert tick_step_s(span_s) == step_s


@pytest.mark.parametrize(
    "t, step, multi_day, label",
    [
        (datetime(2026, 3, 14, 9, 5, 30, tzinfo=UTC), 30, False, "09:05:30"),
        (datetime(2026, 3, 14, 9, 5, tzinfo=UTC), 300, False, "09:05"),
        (datetime(2026, 3, 14, 18, 0, tzinfo=UTC), 3600, True, "03-14 18:00"),
        (datetime(2026, 3, 15, tzinfo=UTC), 86400, True, "2026-03-15"),
    ],
)
def test_tick_label(t: datetime, step: int, multi_day: bool, label: str):
    assert tick_label(t, step, multi_day) == label


def test_ticks_are_aligned():
    out = ticks(T0 + timedelta(seconds=7), T0 + timedelta(minutes=10), 120)
    assert out[0] == T0 + timedelta(minutes=2) and out[-1] == T0 + timedelta(minutes=10) and len(out) == 5


def test_timeline_svg():
    lanes = [
        Lane("<b>cam</b>", (Mark(T0, T0 + timedelta(minutes=1), "#123456", "a <i>", approx=True),)),
        Lane("b", (Mark(T0 + timedelta(minutes=9), T0 + timedelta(minutes=10), "#654321", "b"),), "identity-1.html"),
    ]
    svg = timeline_svg(lanes, width_px=600, label_px=100)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<b>" not in svg and "&lt;b&gt;cam&lt;/b&gt;" in svg and "<title>a &lt;i&gt;</title>" in svg
    assert 'class="mark approx"' in svg and '<a href="identity-1.html">' in svg
    assert ">09:00<" in svg and ">09:10<" in svg and "time (UTC), 2026-03-14" in svg
    xs = [float(x) for x in re.findall(r'class="mark[^"]*" x="([\d.]+)"', svg)]
    assert 100 < xs[0] < xs[1] < 600
    assert timeline_svg([Lane("empty", ())]) == ""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-14T09:00:00+00:00", T0),
        ("2026-03-14T10:00:00+01:00", T0),
        ("2026-03-14T09:00:00Z", T0),
        ("2026-03-14T09:00:00", T0),
        (None, None),
        ("", None),
    ],
)
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


# -- local time -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "t, tz, utc_too, text",
    [
        (T0, "Europe/Berlin", False, "2026-03-14 10:00:00 (UTC+01:00)"),
        (T0, "Europe/Berlin", True, "2026-03-14 10:00:00 (UTC+01:00) \u00b7 09:00:00 UTC"),
        (datetime(2026, 7, 1, 8, tzinfo=UTC), "Europe/Berlin", False, "2026-07-01 10:00:00 (UTC+02:00)"),  # summer time
        (T0, "America/St_Johns", False, "2026-03-14 06:30:00 (UTC-02:30)"),  # half-hour zone, in summer time
        (T0, "UTC", True, "2026-03-14 09:00:00 (UTC)"),  # no UTC repeated beside UTC
        (T0, "Not/AZone", False, "2026-03-14 09:00:00 (UTC)"),  # an unknown zone falls back to UTC
        (None, "Europe/Berlin", True, "\u2014"),
    ],
)
def test_fmt_local(t, tz, utc_too, text):
    from vidcluster.case.records import zone
    from vidcluster.report.chrome import fmt_local

    assert fmt_local(t, zone(tz), utc_too) == text


def test_local_times_in_exports(report: Path):
    by_id = {i["id"]: i for i in json.loads((report / "identities.json").read_text())}
    s = by_id[2]["sightings"][0]
    assert (s["start"], s["start_local"], s["end_local"], s["timezone"]) == (
        "2026-03-14T09:00:10.000Z",
        "2026-03-14T10:00:10.000+01:00",
        "2026-03-14T10:00:12.000+01:00",
        "Europe/Berlin",
    )
    assert by_id[2]["first_seen_local"] == "2026-03-14T10:00:10.000+01:00"
    assert by_id[2]["last_seen_local"] == "2026-03-14T09:05:07.000+00:00"  # the other camera keeps UTC
    untimed = [s for s in by_id[7]["sightings"] if s["start"] is None]
    assert untimed[0]["start_local"] is None


def test_sightings_csv_is_the_case_in_order(report: Path):
    with open(report / "sightings.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6  # every sighting, the unmatched one included
    assert [r["n"] for r in rows] == [str(k) for k in range(1, 7)]
    timed = [r["start_utc"] for r in rows if r["start_utc"]]
    assert timed == sorted(timed) and rows[-1]["start_utc"] == ""  # untimed last
    first = rows[0]
    assert (first["identity"], first["camera"], first["start_local"], first["start_utc"], first["duration_s"]) == (
        "2",
        "entrance",
        "2026-03-14T10:00:10.000+01:00",
        "2026-03-14T09:00:10.000Z",
        "2.000",
    )
    assert first["snapshot"] == f"snap-{first['track_id']}.jpg" and first["clip"] == ""  # no footage: no clip
    assert {r["identity"] for r in rows} == {"2", "7", "-1"}


def test_case_page(report: Path):
    text = (report / "case.html").read_text(encoding="utf-8")
    rows = re.findall(
        r'<tr id="([^"]+)" data-camera="([^"]*)" data-local="([^"]*)" data-who="([^"]*)" data-sighting="\d+">', text
    )
    assert len(rows) == 6
    assert rows[0][1:] == ("entrance", "2026-03-14 10:00:10", "#2 identity 2")
    assert [r[3] for r in rows].count("unmatched") == 1
    assert '<option value="&lt;img src=x onerror=alert(1)&gt;">' in text  # cameras escaped in the filter too
    # each identity's path through the cameras, steps linked to their sightings
    assert re.search(
        r'Identity 2</a>: <span class="path"><span class="hop" data-sightings="\d+"><a class="step" '
        r'href="identity-2.html#sighting-\d+"',
        text,
    )
    assert re.search(
        r'entrance 10:00:10</a></span><span class="hop" data-sightings="\d+"><span class="arrow"> \u2192 ', text
    )


def test_every_timeline_mark_links_to_its_sighting(report: Path):
    pages = {p.name: p.read_text(encoding="utf-8") for p in html_pages(report)}
    n = 0
    for name, text in pages.items():
        assert text.count('<rect class="mark') == text.count('<a class="marklink" href="'), name
        for href, _title in re.findall(
            r'<a class="marklink" href="([^"]+)" data-sighting="\d+"><rect [^>]*><title>([^<]*)</title>', text
        ):
            target, _, anchor = href.partition("#")
            assert target in pages and f'id="{anchor}"' in pages[target], (name, href)
            n += 1
    assert n >= 2 * 5  # overview, identity pages and the case timeline


def test_short_sightings_stay_visible():
    lanes = [
        Lane(
            "a",
            (
                Mark(T0, T0 + timedelta(seconds=2), "#f00", "short", href="x.html#s"),
                Mark(T0 + timedelta(hours=5), T0 + timedelta(hours=5, seconds=1), "#f00", "end"),
            ),
        )
    ]
    svg = timeline_svg(lanes, min_mark_px=8.0)
    widths = [float(w) for w in re.findall(r'<rect class="mark" [^>]*width="([\d.]+)"', svg)]
    assert widths == [8.0, 8.0]
    assert '<a class="marklink" href="x.html#s"><rect' in svg


def test_timeline_axis_in_the_camera_zone():
    from vidcluster.case.records import zone

    lanes = [Lane("a", (Mark(T0, T0 + timedelta(minutes=10), "#f00", "m"),))]
    svg = timeline_svg(lanes, tz=zone("Europe/Berlin"), tz_label="Europe/Berlin")
    assert "time (Europe/Berlin), 2026-03-14" in svg
    assert ">10:00<" in svg and ">09:00<" not in svg


# -- evidence -------------------------------------------------------------------------------
def test_manifest_hashes_store_and_every_report_file(tmp_path: Path):
    path = tmp_path / "vidcluster.db"
    st = Store.open(path)
    a = add_file(st, footage("/footage/entrance_1.mp4", "entrance", T0, "filename"), [[(10.0, 0.5)], [(20.0, 0.5)]])
    st.set_assignment(a, [0, 0])
    cfg = ReportConfig(case="2026/117 <A>", examiner="J. Doe")
    index = write_report(st, tmp_path, RUN_INFO, cfg)
    man = json.loads((index.parent / "manifest.json").read_text())
    files = {p.relative_to(index.parent).as_posix() for p in index.parent.rglob("*") if p.is_file()}
    assert set(man["report_files_sha256"]) == files - {"manifest.json"}
    for name, digest in man["report_files_sha256"].items():
        assert hashlib.sha256((index.parent / name).read_bytes()).hexdigest() == digest, name
    st.close()
    assert man["store_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (man["case"], man["examiner"]) == ("2026/117 <A>", "J. Doe")
    for page in html_pages(index.parent):
        text = page.read_text(encoding="utf-8")
        assert "Case 2026/117 &lt;A&gt; \u00b7 examiner J. Doe \u00b7 report generated" in text, page.name
        assert '@bottom-right { content: "page " counter(page) " of " counter(pages)' in text
        assert '@top-left { content: "Case 2026/117 \\3c A\\3e "' in text  # escaped for CSS


# -- clips ----------------------------------------------------------------------------------
@pytest.fixture
def footage_report(tmp_path: Path):
    """A real 6 s H.264 file (10 fps) with two sightings and a photo; the report with clips."""
    from benchmarks.videos import numbered_frames, write_video

    video = write_video(tmp_path / "cam_20260314-100000.mp4", numbered_frames(60, (96, 64)), fps=10)
    st = Store.open(":memory:")
    tids = add_file(
        st,
        footage(str(video), "cam", T0, "filename", duration_s=6.0),
        [[(0.5, 0.5), (1.0, 0.5)], [(4.0, 0.5), (5.9, 0.5)]],
    )
    photo = add_file(st, footage("/photos/p.jpg", "photos", None, "none", 0.0, kind="image"), [[(0.0, 0.5)]])
    st.set_assignment(tids + photo, [0, 0, 0])
    cfg = ReportConfig(clip_context_s=1.0, clip_max_s=20.0)
    index = write_report(st, tmp_path / "out", RUN_INFO, cfg)
    return st, index.parent, tids, photo[0], cfg


def test_clips_cut_for_video_sightings(footage_report):
    import av

    _, folder, tids, photo, _ = footage_report
    by_track = {s["track_id"]: s for i in json.loads((folder / "identities.json").read_text()) for s in i["sightings"]}
    expected = {tids[0]: (0.0, 2.0), tids[1]: (3.0, 6.0)}  # 1 s of context each side, inside the file
    for tid, (a, b) in expected.items():
        clip = folder / by_track[tid]["clip"]
        assert clip.parent.name == "clips" and clip.suffix == ".mp4"
        with av.open(str(clip)) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "h264"
            times = [float(f.time) for f in c.decode(stream)]
        assert times[0] == pytest.approx(0.0, abs=1e-3)
        assert times[-1] + 0.1 == pytest.approx(b - a, abs=0.11)
        assert len(times) == pytest.approx((b - a) * 10, abs=1)
    assert by_track[photo]["clip"] is None  # a photo has no clip
    page = (folder / "identity-0.html").read_text(encoding="utf-8")
    assert page.count('<video class="clip"') == 2 and f'src="{by_track[tids[0]]["clip"]}"' in page
    assert "a photo</td>" in page and "0.0 s" not in page.split("a photo</td>")[0][-60:]


def test_clips_are_reused_and_can_be_turned_off(footage_report):
    st, folder, _, _, cfg = footage_report
    clips = sorted((folder / "clips").iterdir())
    inodes = {p.name: p.stat().st_ino for p in clips}
    calls = []
    write_report(st, folder.parent, RUN_INFO, cfg, clip_progress=lambda d, t: calls.append((d, t)))  # a rewrite
    assert calls == [(2, 2)]  # both reused at once; the photo has no clip
    again = sorted((folder / "clips").iterdir())
    assert {p.name: p.stat().st_ino for p in again} == inodes  # hard links to the same clips, not cut again
    write_report(st, folder.parent, RUN_INFO, ReportConfig(clips=False))
    assert not (folder / "clips").exists()
    assert "<video" not in (folder / "identity-0.html").read_text(encoding="utf-8")


def test_overlapping_clips_hold_their_own_frames_whichever_the_workers(tmp_path: Path):
    """Sightings of one file that overlap are cut from one decode; each clip still holds exactly
    the source frames of its window, however many workers cut them."""
    import av

    from benchmarks.videos import numbered_frames, write_video
    from vidcluster.report.clips import write_clips

    def shade(i):  # frame i of numbered_frames
        return (i * 7) % 250

    a = write_video(tmp_path / "cam_20260314-100000.mp4", numbered_frames(100, (96, 64)), fps=10)
    b = write_video(tmp_path / "cam_20260314-110000.mp4", numbered_frames(50, (96, 64)), fps=10)
    st = Store.open(":memory:")
    windows = {}
    for tid, w in zip(
        add_file(
            st,
            footage(str(a), "cam", T0, "filename", duration_s=10.0),
            [[(1.0, 0.5), (4.0, 0.5)], [(2.5, 0.5), (6.0, 0.5)], [(8.5, 0.5), (9.0, 0.5)]],
        ),
        [(1.0, 4.0), (2.5, 6.0), (8.5, 9.0)],
        strict=True,
    ):
        windows[tid] = w
    for tid in add_file(
        st, footage(str(b), "cam", T0 + timedelta(hours=1), "filename", duration_s=5.0), [[(1.0, 0.5), (2.0, 0.5)]]
    ):
        windows[tid] = (1.0, 2.0)
    sightings = load_report_data(st).sightings
    cut = {n: write_clips(sightings, tmp_path / str(n), context_s=0.0, max_s=20.0, workers=n) for n in (1, 2, 3)}
    assert cut[1] == cut[2] == cut[3] and set(cut[1]) == set(windows)
    for tid, (start, end) in windows.items():
        # two passes for two workers: the same encoding; three workers split a pass, same frames
        assert (tmp_path / "1" / cut[1][tid]).read_bytes() == (tmp_path / "2" / cut[2][tid]).read_bytes()
        for n in (1, 3):
            with av.open(str(tmp_path / str(n) / cut[n][tid])) as c:
                frames = list(c.decode(c.streams.video[0]))
            assert float(frames[0].time) == pytest.approx(0.0, abs=1e-3)
            expected = [shade(i) for i in range(round(start * 10), round(end * 10) + 1)]
            got = [float(f.to_ndarray(format="gray").mean()) for f in frames]
            assert len(got) == len(expected), (n, tid)
            assert got == pytest.approx(expected, abs=3), (n, tid)


@pytest.mark.parametrize(
    "start, end, context, cap, duration, window",
    [
        (10.0, 12.0, 1.5, 20.0, 60.0, (8.5, 13.5)),
        (0.5, 1.0, 2.0, 20.0, 60.0, (0.0, 3.0)),  # not before the file's start
        (58.0, 59.5, 2.0, 20.0, 60.0, (56.0, 60.0)),  # nor after its end
        (5.0, 500.0, 1.0, 30.0, None, (4.0, 34.0)),  # capped: a long sighting keeps its beginning
        (3.0, 3.0, 0.0, 10.0, 10.0, (3.0, 3.0)),
    ],
)
def test_clip_window(start, end, context, cap, duration, window):
    from vidcluster.report.clips import clip_window

    w = clip_window(start, end, context_s=context, max_s=cap, file_duration_s=duration)
    assert (w.start_s, w.end_s) == pytest.approx(window)


def test_unreadable_footage_gets_no_clip(tmp_path: Path):
    bad = tmp_path / "cam.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    st = Store.open(":memory:")
    tids = add_file(st, footage(str(bad), "cam", T0, "filename"), [[(1.0, 0.5)]])
    st.set_assignment(tids, [0])
    index = write_report(st, tmp_path, RUN_INFO, ReportConfig())
    assert not (index.parent / "clips").exists() or not list((index.parent / "clips").iterdir())
    assert "<video" not in (index.parent / "identity-0.html").read_text(encoding="utf-8")


def test_a_colour_means_a_camera_on_every_page(report: Path):
    """Index, identity pages and the case page colour timeline marks by camera, the same colour for
    the same camera everywhere, and each page's legend says so."""
    seen: dict[str, set[str]] = {}
    for page in html_pages(report):
        text = page.read_text(encoding="utf-8")
        marks = re.findall(
            r'<rect class="mark[^"]*" [^>]*fill="([^"]+)"><title>[^<]* \u00b7 camera (.*?) \u00b7 ', text
        )
        for fill, camera in marks:
            seen.setdefault(html.unescape(camera), set()).add(fill)
        if marks:
            assert "Colour = camera:" in text, page.name
    assert len(seen) >= 2 and all(len(fills) == 1 for fills in seen.values()), seen
    assert len({next(iter(f)) for f in seen.values()}) == len(seen)  # two cameras never share a colour


def test_the_chosen_cover_face_comes_first_in_the_static_report(store: Store, tmp_path: Path):
    """Identity 2's faces, best quality first, unless the examiner chose another: then that one
    leads its card, its montage and identities.json; a face that left the identity is ignored."""
    assignment = store.assignment()
    tracks = sorted(t for t, i in assignment.items() if i == 2)
    faces = [f for f in store.faces() if f.identity == 2]
    best = max(faces, key=lambda f: (f.quality, -f.id))
    worst = min(faces, key=lambda f: f.quality)
    assert load_report_data(store).by_id[2].faces[0].id == best.id != worst.id
    store.add_correction(Correction.of(Kind.COVER, [2], {Role.MEMBER: tracks}, ref=f"face:{worst.id}", created_utc="t"))
    ident = load_report_data(store).by_id[2]
    assert ident.faces[0].id == worst.id and ident.cover_chosen
    folder = write_report(store, tmp_path, RUN_INFO, ReportConfig(montage_faces=2, thumb_px=40)).parent
    shown = next(i for i in json.loads((folder / "identities.json").read_text()) if i["id"] == 2)
    assert (shown["cover_face"], shown["cover_chosen"]) == (worst.id, True)
    card = re.search(r'<div class="card"><a href="identity-2.html">(.*?)</a>', (folder / "index.html").read_text())
    assert card and f'src="face-{worst.id}.jpg" alt="chosen cover face of identity 2"' in card.group(1)
    other = next(f for f in store.faces() if f.identity == 7)  # a face of another identity: no effect
    store.add_correction(Correction.of(Kind.COVER, [2], {Role.MEMBER: tracks}, ref=f"face:{other.id}", created_utc="t"))
    assert load_report_data(store).by_id[2].faces[0].id == best.id
