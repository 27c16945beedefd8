"""A damaged store, a killed correction, a full disk: refused in one line, never used as evidence
(issue 21, items 6, 8 and 13). Each test failed before the change it names."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from benchmarks.videos import write_video
from vidcluster.case import schema
from vidcluster.case.outdir import STALE_MARKER, remove_leftovers
from vidcluster.case.results import FileResult, TrackRecord
from vidcluster.case.store import Store
from vidcluster.cli import main
from vidcluster.errors import DamagedStoreError, DiskFullError
from vidcluster.types import Footage

ROOT = Path(__file__).resolve().parents[1]
DIM = 128
PEOPLE, TRACKS_EACH = 5, 3


def _jpeg(value: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((32, 24, 3), value, np.uint8))
    assert ok
    return buf.tobytes()


def _noise_jpeg(seed: int) -> bytes:
    """A snapshot-sized picture (~20 KB): pictures are most of a real store's bytes."""
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(seed).integers(0, 256, (120, 160, 3), np.uint8))
    assert ok
    return buf.tobytes()


def _people(seed: int = 0) -> np.ndarray:
    """(15, 128) float32 track means: five people ~0.9 apart, their tracks ~0.2 apart (dlib's scale)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(PEOPLE, DIM))
    centres *= 0.9 / np.sqrt(2) / np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, TRACKS_EACH, axis=0) + rng.normal(scale=0.2 / np.sqrt(2 * DIM), size=(15, DIM))
    return x.astype(np.float32)


def make_case(out: Path) -> Path:
    """OUT with a store of 5 people (3 one-face sightings each, one file per sighting) and a report."""
    out.mkdir()
    store = Store.open(out / "vidcluster.db")
    for k, vec in enumerate(_people()):
        fid = store.upsert_footage(
            Footage(f"/cam/{k:02d}.mp4", "cam", "video", 100 + k, f"{k:064x}", None, "none", 10.0)
        )
        track = TrackRecord(1.0, 2.0, np.array([0]), True, vec, _noise_jpeg(k))
        result = FileResult(
            np.array([1.5]),
            np.array([[4, 4, 20, 28]]),
            np.ones(1),
            np.ones(1),
            vec[None] * 0.99,  # the face: not byte for byte its track's mean
            [_jpeg(60 + 10 * k)],
            (track,),
            encoder="dlib-resnet-v1",
        )
        store.save_file_result(fid, "k", result)
    store.set_meta("last_run", {"parameters": {"report": {"clips": False}}})
    store.close()
    first = CliRunner().invoke(main, ["recluster", str(out)])
    assert first.exit_code == 0, first.output
    assert f"{PEOPLE} identities" in first.stdout
    return out


@pytest.fixture
def case(tmp_path: Path) -> Path:
    return make_case(tmp_path / "o")


def _one_error_line(result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _stored_blob(out: Path, sql: str) -> bytes:
    with sqlite3.connect(out / "vidcluster.db") as db:
        return bytes(db.execute(sql).fetchone()[0])


# -- item 6: a damaged store is refused -------------------------------------------------------------
@pytest.mark.parametrize(
    "damage",
    [
        # random bytes: values no encoder makes (huge, NaN)
        lambda rng: rng.randbytes(64),
        # 16 plausible floats: the vector stays sane, only its stored checksum tells
        lambda rng: np.full(16, 0.05, "<f4").tobytes(),
    ],
    ids=["random-bytes", "plausible-floats"],
)
def test_bytes_changed_inside_a_descriptor_are_refused_not_regrouped(case: Path, damage):
    """Before: both passed `pragma integrity_check` and the regrouping used the damaged vector."""
    blob = _stored_blob(case, "SELECT embedding FROM tracks WHERE id = 4")
    db = case / "vidcluster.db"
    raw = db.read_bytes()
    assert raw.count(blob) == 1  # the checkpointed file holds the track's vector once
    _overwrite(db, raw.index(blob) + 128, damage(random.Random(6)))
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # SQLite sees nothing wrong
    result = CliRunner().invoke(main, ["recluster", str(case)])
    assert result.exit_code == DamagedStoreError.exit_code == 5
    line = _one_error_line(result)
    assert line.startswith(f"vidcluster: error: {db}: the store is damaged: the descriptor of sighting 4: ")
    assert "restore vidcluster.db from a copy" in line


def test_a_changed_picture_is_refused_not_shown(case: Path):
    blob = _stored_blob(case, "SELECT thumb FROM faces WHERE id = 7")
    db = case / "vidcluster.db"
    _overwrite(db, db.read_bytes().index(blob) + len(blob) // 2, bytes(8))
    result = CliRunner().invoke(main, ["recluster", str(case)])
    assert result.exit_code == 5
    assert "the store is damaged: the picture of face 7: its checksum does not match" in _one_error_line(result)


@pytest.mark.parametrize("value", [np.nan, 1e30])
def test_an_insane_descriptor_without_a_checksum_is_refused(case: Path, value: float):
    """A row written before checksums were stored is checked by what it holds: finite, and no longer
    than any encoder's vectors."""
    vec = _people()[0].copy()
    vec[5] = value
    with sqlite3.connect(case / "vidcluster.db") as db:
        db.execute("UPDATE faces SET embedding = ?, embedding_crc = NULL WHERE id = 2", (vec.tobytes(),))
    store = Store.open(case / "vidcluster.db")
    with pytest.raises(
        DamagedStoreError,
        match=r"the descriptor of face 2: (it holds values that are not finite|its length 1e\+30 is beyond)",
    ):
        store.encoded_faces()
    store.close()


@pytest.mark.parametrize("seed", range(4))
def test_random_damage_anywhere_is_never_used_silently(tmp_path: Path, seed: int):
    """The issue's probe: 20 x 64 random bytes written anywhere into the store. Whatever they hit,
    the regrouping either refuses in one line or finds the same five people."""
    case = make_case(tmp_path / "o")
    db = case / "vidcluster.db"
    rng = random.Random(seed)
    size = db.stat().st_size
    for _ in range(20):
        _overwrite(db, rng.randrange(100, size - 64), rng.randbytes(64))  # the 100-byte header left alone
    result = CliRunner().invoke(main, ["recluster", str(case)])
    if result.exit_code == 0:
        assert f"{PEOPLE} identities" in result.stdout
        assert len(json.loads((case / "report" / "identities.json").read_text())) == PEOPLE
    else:
        assert result.exit_code == 5, result.output
        assert "the store is damaged" in _one_error_line(result)


@pytest.mark.parametrize(
    "drop, missing",
    [
        ("DROP TABLE tracks", "table tracks"),
        ("DROP TABLE faces", "table faces"),
        ("DROP TABLE corrections", "table corrections"),
        ("ALTER TABLE faces DROP COLUMN encoder", "column faces.encoder"),
    ],
)
@pytest.mark.parametrize("command", ["recluster", "corrections"])
def test_a_store_that_lost_a_table_or_column_is_refused(case: Path, drop: str, missing: str, command: str):
    """Before: the table came back empty ("0 identities", or every correction gone) and the
    column came back with dlib's space as its default."""
    assert CliRunner().invoke(main, ["merge", str(case), "0", "1"]).exit_code == 0
    with sqlite3.connect(case / "vidcluster.db") as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute(drop)
    before = (case / "vidcluster.db").read_bytes()
    result = CliRunner().invoke(main, [command, str(case)])
    assert result.exit_code == 5
    line = _one_error_line(result)
    assert line.startswith(f"vidcluster: error: {case / 'vidcluster.db'}: the store is damaged: {missing} missing; ")
    assert (case / "vidcluster.db").read_bytes() == before  # nothing was made again


def test_a_store_from_before_the_layout_record_gains_new_columns_but_keeps_its_tables(tmp_path: Path):
    """An older store (no layout record, no checksum columns) opens and gains the columns; one that
    lost a table every older version made is refused all the same."""
    db = tmp_path / "vidcluster.db"
    Store.open(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'layout'")
        conn.execute("ALTER TABLE faces DROP COLUMN thumb_crc")
    store = Store.open(db)
    assert "thumb_crc" in {r[1] for r in store.conn.execute("PRAGMA table_info(faces)")}
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'layout'")
        conn.execute("DROP TABLE correction_tracks")
    with pytest.raises(DamagedStoreError, match="table correction_tracks missing"):
        Store.open(db)


def test_a_store_cut_short_while_being_made_is_made_again_not_refused(tmp_path: Path, monkeypatch):
    """Its tables, version and layout are made in one transaction: a full disk half way leaves no
    half-made store that the next open would take for a damaged one."""
    real = schema._add_columns

    def full(conn):
        real(conn)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(schema, "_add_columns", full)
    with pytest.raises(DiskFullError):
        Store.open(tmp_path / "vidcluster.db")
    monkeypatch.undo()
    Store.open(tmp_path / "vidcluster.db").close()


def test_opening_a_store_leaves_its_bytes_alone(case: Path):
    """The layout is recorded only when it changes: opening must not change the hash in the manifest."""
    db = case / "vidcluster.db"
    before = db.read_bytes()
    Store.open(db).close()
    assert db.read_bytes() == before


# -- item 8: a killed correction says its report is out of date --------------------------------------
_KILLED_MERGE = """
import os, sys
import vidcluster.report as report
def killed(store, data, run_info, cfg, folder, *args, **kwargs):
    (folder / "index.html").write_text("half")
    os._exit(9)  # killed half way through writing the new report
report.build_report = killed
from vidcluster.cli import main
main(["merge", sys.argv[1], "0", "1"])
"""


def test_a_killed_merge_marks_the_report_out_of_date_until_it_is_written_again(case: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", _KILLED_MERGE, str(case)], env=env, capture_output=True, text=True)
    assert killed.returncode == 9, killed.stderr
    leftovers = sorted(p.name for p in case.glob(".report-new-*"))
    assert len(leftovers) == 1
    assert (case / "report" / STALE_MARKER).is_file()  # the old report says it no longer shows the case
    assert "may have changed the case" in (case / "report" / STALE_MARKER).read_text()

    listing = CliRunner().invoke(main, ["corrections", str(case)])
    assert listing.exit_code == 0
    assert "merge 0 1" in listing.stdout  # the merge itself was committed
    assert listing.stderr.startswith("vidcluster: warning: the report is out of date: a correction started at ")
    assert f"`vidcluster recluster {case}` writes it again" in listing.stderr
    assert not list(case.glob(".report-new-*"))  # taking the lock removed the killed write's folder
    assert (case / "report" / STALE_MARKER).is_file()  # listing changes nothing: still out of date

    again = CliRunner().invoke(main, ["recluster", str(case)])
    assert again.exit_code == 0, again.output
    assert not (case / "report" / STALE_MARKER).exists()
    assert CliRunner().invoke(main, ["corrections", str(case)]).stderr == ""
    assert len(json.loads((case / "report" / "identities.json").read_text())) == PEOPLE - 1


def test_a_refused_correction_leaves_no_mark(case: Path):
    result = CliRunner().invoke(main, ["merge", str(case), "0", "99"])
    assert result.exit_code == 2 and "no identity 99" in result.stderr
    assert not (case / "report" / STALE_MARKER).exists()
    assert CliRunner().invoke(main, ["corrections", str(case)]).stderr == ""


def test_taking_the_lock_removes_only_the_leftovers_of_killed_writes(tmp_path: Path):
    out = tmp_path / "o"
    out.mkdir()
    for name in (".report-new-ab12cd_9", ".report-old-zz99yy00", ".search-probe-new-k3j4h5g6"):
        (out / name).mkdir()
        (out / name / "index.html").write_text("half")
    for name in ("report", ".report-new-mine", "search-probe"):
        (out / name).mkdir()
    (out / ".report-new-12345678.txt").write_text("a file, not a folder")
    removed = remove_leftovers(out)
    assert sorted(p.name for p in removed) == [
        ".report-new-ab12cd_9",
        ".report-old-zz99yy00",
        ".search-probe-new-k3j4h5g6",
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        ".report-new-12345678.txt",
        ".report-new-mine",
        "report",
        "search-probe",
    ]


# -- item 13: a full disk while the store is hashed for the manifest ---------------------------------
class _FullDiskAtCheckpoint:
    """A connection whose WAL checkpoint (the store hash's first step) finds the disk full."""

    def __init__(self, conn: sqlite3.Connection, error: BaseException):
        self._conn, self._error = conn, error

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def execute(self, sql, *args):
        if "wal_checkpoint" in sql:
            raise self._error
        return self._conn.execute(sql, *args)

    def __enter__(self):
        return self._conn.__enter__()

    def __exit__(self, *exc):
        return self._conn.__exit__(*exc)


def _full_disk_at_checkpoint(monkeypatch, error: BaseException) -> None:
    real_open = Store.open.__func__

    def opened(cls, path):
        store = real_open(cls, path)
        store.conn = _FullDiskAtCheckpoint(store.conn, error)
        return store

    monkeypatch.setattr(Store, "open", classmethod(opened))


FULL = [sqlite3.OperationalError("database or disk is full"), OSError(28, "No space left on device")]


@pytest.mark.parametrize("error", FULL, ids=["sqlite", "oserror"])
def test_disk_full_while_hashing_the_store_is_exit_4_in_a_run(tmp_path: Path, monkeypatch, error):
    """Before: a traceback from Store.checkpoint (the report's store hash)."""
    cam = tmp_path / "in" / "cam"
    cam.mkdir(parents=True)
    write_video(cam / "a.mp4", [np.full((48, 64, 3), 40 + i, np.uint8) for i in range(4)])
    out = tmp_path / "o"
    _full_disk_at_checkpoint(monkeypatch, error)
    result = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "--out", str(out), "-q", "--workers", "1"])
    assert result.exit_code == DiskFullError.exit_code == 4, result.output
    assert _one_error_line(result) == f"vidcluster: error: disk full writing {out / 'vidcluster.db'}"
    assert not list(out.glob(".report-new-*"))  # the half-built report was removed


@pytest.mark.parametrize("error", FULL[:1], ids=["sqlite"])
def test_disk_full_while_hashing_the_store_is_exit_4_in_a_correction(case: Path, monkeypatch, error):
    _full_disk_at_checkpoint(monkeypatch, error)
    result = CliRunner().invoke(main, ["merge", str(case), "0", "1"])
    assert result.exit_code == 4
    assert _one_error_line(result) == f"vidcluster: error: disk full writing {case / 'vidcluster.db'}"
    assert (case / "report" / STALE_MARKER).is_file()  # the merge was kept; the report does not show it yet
