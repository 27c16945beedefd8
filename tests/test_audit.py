"""The audit log: every run, recluster, correction and undo in the store with time, version, settings,
examiner and identity count, its hash chain, and the report's method page with the models and thresholds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import data_path
from tests_support import write_two_camera_footage

from vidcluster.case import audit, schema
from vidcluster.case.records import Kind, Role
from vidcluster.case.store import Store
from vidcluster.commands import workflow
from vidcluster.config import load_config
from vidcluster.run.pipeline import analyse
from vidcluster.version import __version__


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    footage = root / "footage"
    footage.mkdir()
    write_two_camera_footage(footage, data_path("hamilton", "obama.jpg"), data_path("hamilton", "biden.jpg"))
    out = root / "out"
    analyse([footage], out, load_config(None, {"report": {"examiner": "J. Doe"}, "sampler": {"fps": 3}}))
    return out


@pytest.fixture
def out(analysed, tmp_path):
    dst = tmp_path / "out"
    shutil.copytree(analysed, dst)
    return dst


def log_of(out: Path) -> list[audit.AuditEntry]:
    store = Store.open(out / "vidcluster.db")
    try:
        return audit.entries(store)
    finally:
        store.close()


def ids(out: Path) -> list[int]:
    return [i["id"] for i in json.loads((out / "report" / "identities.json").read_text())]


# -- pure parts -------------------------------------------------------------------------------
def _entries(n: int) -> list[audit.AuditEntry]:
    store = Store.open(":memory:")
    for i in range(n):
        audit.append(store, action="run", detail=f"run {i}", version="1", parameters={"eps": 0.5 + i}, identities=i)
    return audit.entries(store)


def test_the_chain_finds_an_edited_a_removed_and_a_moved_entry():
    log = _entries(4)
    assert audit.chain_breaks(log) == []
    edited = [log[0], dataclasses.replace(log[1], parameters={"eps": 9.0}), *log[2:]]
    assert audit.chain_breaks(edited) == ["audit entry 2: its fields do not match its SHA-256 (the entry was edited)"]
    assert audit.chain_breaks([log[0], *log[2:]])[0].startswith("audit entry 3: does not follow")
    assert audit.chain_breaks([log[1], log[0], *log[2:]])[0].startswith("audit entry 2: does not follow")


def test_key_parameters_take_what_shapes_the_result():
    params = load_config(None, {"faces": {"encoder": "dlib"}, "sampler": {"since": "2026-03-14T10:00"}}).to_dict()
    got = audit.key_parameters({**params, "detector_used": "hog"})
    assert got["encoder"] == "dlib" and got["detector"] == "hog" and got["eps"] == 0.5
    assert got["since"] == "2026-03-14T10:00" and got["fps"] == 2.0 and got["track_max_distance"] == 0.6
    assert "clip_max_s" not in got and "workers" not in got


# -- on a real case ---------------------------------------------------------------------------
def test_every_step_is_logged_with_its_settings_examiner_and_count(out):
    first, second = ids(out)[:2]
    workflow.name(out, first, "guard")
    workflow.merge(out, [first, second])
    workflow.recluster(out, eps=0.9)
    listing = workflow.corrections(out)
    merge_no = next(c.id for c in listing.items if c.kind == Kind.MERGE)
    workflow.undo(out, merge_no)
    workflow.confirm(out, first, examiner="A. Smith")
    log = log_of(out)
    assert [e.action for e in log] == ["run", "name", "merge", "recluster", "undo", "confirm"]
    assert audit.chain_breaks(log) == []
    run = log[0]
    assert run.version == __version__ and run.examiner == "J. Doe" and run.identities == 2
    assert run.parameters["fps"] == 3 and run.parameters["detector"] == "yunet"  # 'auto' as resolved
    assert run.parameters["encoder"] == "sface" and run.parameters["eps"] == 1.12
    assert log[2].identities == 1 and log[2].detail.startswith(f"merge {first} {second}")
    assert log[3].parameters["eps"] == 0.9 and "eps 0.9" in log[3].detail
    assert log[4].correction == merge_no and log[4].identities == 2 and log[4].detail.startswith(f"undo {merge_no}:")
    assert log[5].examiner == "A. Smith" and log[1].examiner == "J. Doe"
    for e in log:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", e.utc)
    manifest = json.loads((out / "report" / "manifest.json").read_text())
    assert manifest["audit_log"] == [e.as_dict() for e in log]


def test_a_correction_without_its_report_is_logged_by_the_next_command(out):
    """Any kind: what reached the store is logged, also when its command died before the report."""
    store = Store.open(out / "vidcluster.db")
    tracks = sorted(store.assignment())[:1]
    store.add_correction(
        workflow.Correction.of(
            Kind.NOTE, [ids(out)[0]], {Role.MEMBER: tracks}, label="x", created_utc="2026-01-01T00:00:00+00:00"
        )
    )
    store.close()
    workflow.recluster(out)
    log = log_of(out)
    assert [e.action for e in log] == ["run", "note", "recluster"]
    assert log[1].utc == "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize("recorded", ["no layout", "layout without the log"])
def test_a_store_made_before_the_log_opens_and_gains_it(out, recorded):
    """A store of the versions before (no audit table; its layout not recorded, or recorded without
    the log) still opens; the table is made, and its corrections are logged by the next command
    (only the newest with the count it left)."""
    first, second = ids(out)[:2]
    workflow.name(out, first, "guard")
    workflow.merge(out, [first, second])
    conn = sqlite3.connect(out / "vidcluster.db")
    conn.execute("DROP TABLE audit")
    if recorded == "no layout":
        conn.execute("DELETE FROM meta WHERE key = ?", (schema.LAYOUT_KEY,))
    else:
        layout = json.loads(conn.execute("SELECT value FROM meta WHERE key = ?", (schema.LAYOUT_KEY,)).fetchone()[0])
        del layout["audit"]
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(layout), schema.LAYOUT_KEY))
    conn.commit()
    conn.close()
    workflow.recluster(out, eps=0.01)  # too tight to keep anything together but the merge
    log = log_of(out)
    assert [e.action for e in log] == ["name", "merge", "recluster"]
    assert [e.identities for e in log[:2]] == [None, 1]
    assert log[2].identities is not None and log[2].identities >= 1


def test_the_method_page_shows_models_with_hashes_thresholds_and_the_log(out):
    first = ids(out)[0]
    workflow.name(out, first, "<b>guard</b>")
    report = out / "report"
    index = (report / "index.html").read_text()
    assert '<nav><a href="index.html">' not in index and 'href="method.html"' in index.split("</nav>")[0]
    for page in ("case.html", f"identity-{first}.html"):
        assert 'href="method.html"' in (report / page).read_text().split("</nav>")[0]
    html = (report / "method.html").read_text()
    manifest = json.loads((report / "manifest.json").read_text())
    weights = manifest["models"]["weights"]
    assert {w["model"] for w in weights} >= {"YuNet face detector", "SFace face encoder"}
    for w in weights:  # the SHA-256 of the very file that was loaded
        assert w["sha256"] == hashlib.sha256(Path(w["path"]).read_bytes()).hexdigest()
        assert w["sha256"] in html and w["file"] in html
    assert "<td>1.12</td>" in html and "<td>graph-average</td>" in html  # eps and algorithm in force
    assert "name 0 &quot;&lt;b&gt;guard&lt;/b&gt;&quot;" in html.replace(f"name {first}", "name 0")  # escaped
    assert "J. Doe" in html and "Content-Security-Policy" in html and "<script" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "method.html" in manifest["report_files_sha256"]
