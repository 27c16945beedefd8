"""`vidcluster verify OUT`: every byte of the inputs, the store and the report is checked against the
manifest, and each difference is one line; exit 0 only when everything agrees."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import data_path
from tests_support import write_two_camera_footage

from vidcluster.case import audit
from vidcluster.case.store import Store
from vidcluster.cli import main
from vidcluster.commands import workflow
from vidcluster.commands.verify import DIFFERENCES_EXIT, fs_path, verify
from vidcluster.config import Config
from vidcluster.run.pipeline import analyse


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """(footage folder, OUT) of one analysed case: Obama on 'door' and 'hall', Biden on 'hall'."""
    root = tmp_path_factory.mktemp("verify")
    footage = root / "footage"
    footage.mkdir()
    write_two_camera_footage(footage, data_path("hamilton", "obama.jpg"), data_path("hamilton", "biden.jpg"))
    out = root / "out"
    analyse([footage], out, Config())
    return footage, out


@pytest.fixture
def case(analysed, tmp_path):
    """A private copy of the footage and of OUT, the manifest's input paths pointing at the copy."""
    footage, out = analysed
    feet, dst = tmp_path / "footage", tmp_path / "out"
    shutil.copytree(footage, feet)
    shutil.copytree(out, dst)
    conn = sqlite3.connect(dst / "vidcluster.db")  # the store names the original footage: point it at the copy
    conn.execute("UPDATE footage SET path = replace(path, ?, ?)", (str(footage), str(feet)))
    conn.commit()
    conn.close()
    workflow.recluster(dst)  # writes the report (and its manifest) again for the copy
    return feet, dst


def invoke(*args):
    return CliRunner().invoke(main, ["verify", "-q", *map(str, args)])


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_fresh_case_and_one_after_corrections_verify(case):
    _feet, out = case
    result = invoke(out)
    assert result.exit_code == 0, result.output
    assert "everything agrees" in result.output and "3 input file(s)" in result.output
    ids = [i["id"] for i in json.loads((out / "report" / "identities.json").read_text())]
    workflow.name(out, ids[0], "guard")  # the store changes with each correction; its manifest follows
    workflow.merge(out, ids[:2])
    assert invoke(out).exit_code == 0


def _first(folder: Path, pattern: str) -> Path:
    return sorted(folder.glob(pattern))[0]


@pytest.mark.parametrize(
    "what, expected",
    [
        ("page", "changed: report/index.html"),
        ("clip", "changed: report/clips/"),
        ("store", "changed: vidcluster.db (the store"),
        ("input", "input changed: "),
        ("delete page", "missing: report/case.html"),
        ("delete input", "input missing: "),
        ("add", "added: report/extra.html"),
        ("manifest", "changed: report/manifest.json cannot be read"),
    ],
)
def test_one_byte_changed_anywhere_is_found(case, what, expected):
    feet, out = case
    report = out / "report"
    if what == "page":
        flip_byte(report / "index.html")
    elif what == "clip":
        flip_byte(_first(report / "clips", "*.mp4"))
    elif what == "store":
        flip_byte(out / "vidcluster.db", 200)  # inside the header page: any byte counts, even one SQLite ignores
    elif what == "input":
        flip_byte(_first(feet / "hall", "*.mp4"))
    elif what == "delete page":
        (report / "case.html").unlink()
    elif what == "delete input":
        _first(feet / "door", "*.mp4").unlink()
    elif what == "add":
        (report / "extra.html").write_text("<p>not from vidcluster</p>")
    elif what == "manifest":
        flip_byte(report / "manifest.json", 0)
    result = invoke(out)
    assert result.exit_code == DIFFERENCES_EXIT, result.output
    lines = result.output.strip().splitlines()
    assert [line for line in lines if line.startswith(expected)], result.output
    assert len(lines) == 2, result.output  # the one difference, then the verdict
    assert "1 difference(s)" in lines[-1]


def test_inputs_can_be_left_out_and_a_missing_one_is_named(case):
    feet, out = case
    shutil.rmtree(feet)
    result = invoke(out)
    assert result.exit_code == DIFFERENCES_EXIT
    assert sum(line.startswith("input missing: ") for line in result.output.splitlines()) == 3
    assert invoke(out, "--no-inputs").exit_code == 0


def test_an_edited_audit_entry_and_one_newer_than_the_report_are_named(case):
    _feet, out = case
    conn = sqlite3.connect(out / "vidcluster.db")
    conn.execute("UPDATE audit SET examiner = 'someone else' WHERE id = 1")
    conn.commit()
    conn.close()
    result = invoke(out, "--no-inputs")
    assert result.exit_code == DIFFERENCES_EXIT
    assert "audit entry 1: its fields do not match its SHA-256 (the entry was edited)" in result.output
    assert "audit entry 1: the store's differs from the manifest's" in result.output
    assert "changed: vidcluster.db (the store" in result.output

    fresh = out.parent / "fresh"
    shutil.copytree(out, fresh)
    workflow.recluster(fresh)  # a report written again: the copy agrees once more, but for the old edit
    store = Store.open(fresh / "vidcluster.db")
    audit.append(store, action="merge", detail="merge 1 2", version="x", parameters={}, identities=1)
    store.checkpoint()
    store.close()
    result = invoke(fresh, "--no-inputs")
    newest = len(json.loads((fresh / "report" / "manifest.json").read_text())["audit_log"]) + 1
    assert f"audit entry {newest}: logged after the report was written, which is out of date" in result.output


def test_verify_only_reads(case):
    _feet, out = case

    def snapshot():
        return sorted((str(p.relative_to(out)), p.stat().st_mtime_ns, p.stat().st_size) for p in out.rglob("*"))

    before = snapshot()
    assert invoke(out).exit_code == 0
    assert snapshot() == before  # no lock file, no SQLite side files, nothing touched


def test_refusals_are_one_line_exit_2(case, tmp_path):
    _feet, out = case
    result = invoke(tmp_path / "nothing")
    assert result.exit_code == 2 and "nothing to verify" in result.output
    assert len(result.output.strip().splitlines()) == 1
    with open(out / ".vidcluster.lock", "w") as held:  # another command holds OUT
        fcntl.flock(held, fcntl.LOCK_EX)
        result = invoke(out)
    os.unlink(out / ".vidcluster.lock")
    assert result.exit_code == 2 and "another vidcluster command" in result.output


def test_a_file_name_that_is_not_utf8_is_found_again(tmp_path):
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.mkv"
    with open(raw, "wb") as fh:
        fh.write(b"x")
    shown = str(tmp_path) + "/caf\\xe9.mkv"  # as the store and the manifest write it
    assert os.fsencode(fs_path(shown)) == raw


def test_the_library_call_returns_the_lines(case):
    _feet, out = case
    flip_byte(out / "report" / "faces.csv")
    result = verify(out, inputs=False)
    assert not result.ok and result.differences == ("changed: report/faces.csv (its SHA-256 is not the manifest's)",)
    assert result.inputs == 0 and result.audit_entries >= 2 and len(result.manifest_sha256) == 64


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda m: m["inputs"][0].update(size_bytes="many"), "the manifest says many"),
        (lambda m: m.update(inputs=5), "records no list of the inputs"),
    ],
)
def test_an_edited_manifest_is_one_line_each_not_a_traceback(case, edit, expected):
    _feet, out = case
    path = out / "report" / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    result = invoke(out)
    assert result.exit_code == DIFFERENCES_EXIT, result.output
    assert expected in result.output
