"""`vidcluster verify OUT`: does OUT still hold what its report's manifest says it held?

The manifest (written last, with every report) records the SHA-256 of each input file, of the store
(its file written whole, after the write-ahead log was folded back in) and of every other file of
the report, and a copy of the store's audit log. `verify` hashes them all again and names each
difference in one line: a report file added, missing or changed; the store changed or missing; an
input missing or changed; an audit entry edited, removed, or logged after the report was written.

It only reads: it takes no lock, writes nothing into OUT and opens the store as an immutable file
(so not even SQLite's side files appear). It refuses while another command holds OUT's lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..case.audit import AuditEntry, chain_breaks, read_entries
from ..case.outdir import LOCK_NAME, STORE_NAME
from ..errors import StoreError, WorkflowError
from ..report import REPORT_DIRNAME
from ..report.exports import folder_hashes, sha256_file

MANIFEST_NAME = "manifest.json"
# The exit status of `vidcluster verify` when anything differs (0 when everything agrees).
DIFFERENCES_EXIT = 6

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Verified:
    """What `verify` found: one line per difference (none when OUT agrees with its manifest)."""

    out: Path
    differences: tuple[str, ...]
    inputs: int  # input files checked (0 when they were not asked for)
    report_files: int  # report files the manifest lists
    audit_entries: int  # entries of the store's audit log
    manifest_sha256: str  # of manifest.json itself: note it elsewhere to check the manifest later

    @property
    def ok(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        what = (
            (f"{self.inputs} input file(s), " if self.inputs else "")
            + f"the store, {self.report_files} report file(s), {self.audit_entries} audit entr{'y' if self.audit_entries == 1 else 'ies'}"
        )
        if self.ok:
            verdict = f"{self.out}: everything agrees with its manifest ({what})"
        else:
            verdict = f"{self.out}: {len(self.differences)} difference(s) from its manifest (checked {what})"
        tail = f"; manifest.json SHA-256 {self.manifest_sha256}" if self.manifest_sha256 else ""
        return [*self.differences, verdict + tail]


def _quiet(stage: str, done: int, total: int) -> None:
    pass


def verify(out: str | Path, *, inputs: bool = True, progress: Progress | None = None) -> Verified:
    """Check OUT against OUT/report/manifest.json; `inputs=False` leaves the footage out (an OUT
    copied without it). Raises WorkflowError when OUT holds neither a store nor a report."""
    out = Path(out)
    progress = progress or _quiet
    report = out / REPORT_DIRNAME
    manifest_path = report / MANIFEST_NAME
    store = out / STORE_NAME
    if not out.is_dir() or not (store.is_file() or report.is_dir()):
        raise WorkflowError(f"{out}: no vidcluster store or report here; nothing to verify")
    _refuse_while_busy(out)
    diffs: list[str] = []
    manifest, manifest_sha = _read_manifest(manifest_path, diffs)
    log, log_problem = _store_log(store)
    n_inputs = 0
    if manifest is not None:
        diffs += report_differences(report, manifest)
        diffs += store_differences(out, manifest)
        if log_problem:
            diffs.append(log_problem)
        diffs += audit_differences(log, manifest)
        if inputs:
            found, n_inputs = input_differences(manifest, progress)
            diffs += found
    else:
        diffs += chain_breaks(log)
    files = (manifest or {}).get("report_files_sha256")
    return Verified(out, tuple(diffs), n_inputs, len(files) if isinstance(files, dict) else 0, len(log), manifest_sha)


def _refuse_while_busy(out: Path) -> None:
    """StoreError when a vidcluster command holds OUT's lock now (its files are changing)."""
    try:
        fd = os.open(out / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        raise StoreError(
            f"{out}: another vidcluster command is using this output folder; verify it when that has finished"
        ) from None
    finally:
        os.close(fd)


def _read_manifest(path: Path, diffs: list[str]) -> tuple[dict[str, Any] | None, str]:
    """(the manifest, its SHA-256); (None, '') with a line in `diffs` when it is missing or unreadable."""
    name = f"{REPORT_DIRNAME}/{MANIFEST_NAME}"
    if not path.is_file():
        diffs.append(f"missing: {name} (nothing to check the rest against)")
        return None, ""
    digest = sha256_file(path)
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        diffs.append(f"changed: {name} cannot be read as JSON ({exc})")
        return None, digest
    if not isinstance(manifest, dict):
        diffs.append(f"changed: {name} is not a vidcluster manifest")
        return None, digest
    return manifest, digest


def report_differences(report: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Report files added, missing or changed since the manifest was written (manifest.json itself aside)."""
    recorded = manifest.get("report_files_sha256")
    if not isinstance(recorded, dict):
        return [f"changed: {REPORT_DIRNAME}/{MANIFEST_NAME} records no report files (report_files_sha256)"]
    now = folder_hashes(report) if report.is_dir() else {}
    now.pop(MANIFEST_NAME, None)
    out = []
    for name in sorted(set(recorded) | set(now)):
        shown = f"{REPORT_DIRNAME}/{name}"
        if name not in now:
            out.append(f"missing: {shown}")
        elif name not in recorded:
            out.append(f"added: {shown} (not in the manifest)")
        elif now[name] != recorded[name]:
            out.append(f"changed: {shown} (its SHA-256 is not the manifest's)")
    return out


def store_differences(out: Path, manifest: Mapping[str, Any]) -> list[str]:
    """The store's file against the manifest's hash, and changes still in its write-ahead log."""
    store = out / STORE_NAME
    recorded = manifest.get("store_sha256")
    lines = []
    if not store.is_file():
        lines.append(f"missing: {STORE_NAME} (the store)")
    elif not recorded:
        lines.append(f"changed: {REPORT_DIRNAME}/{MANIFEST_NAME} records no SHA-256 of the store")
    elif sha256_file(store) != recorded:
        lines.append(f"changed: {STORE_NAME} (the store; its SHA-256 is not the manifest's)")
    wal = out / (STORE_NAME + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        lines.append(f"changed: {wal.name} holds writes not yet in the store file (a command was interrupted?)")
    return lines


def _store_log(store: Path) -> tuple[list[AuditEntry], str]:
    """The store's audit log read without writing anything (immutable), and a line if it cannot be."""
    if not store.is_file():
        return [], ""
    uri = "file:" + quote(str(store.resolve())) + "?immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            return read_entries(conn), ""
        finally:
            conn.close()
    except (sqlite3.DatabaseError, ValueError) as exc:
        return [], f"changed: {STORE_NAME} cannot be read as a store ({exc})"


def _when(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('action')} at {entry.get('utc')}: {entry.get('detail')}"


def audit_differences(log: list[AuditEntry], manifest: Mapping[str, Any]) -> list[str]:
    """Breaks in the store's chain of audit entries, and entries where the store and the manifest's copy differ."""
    lines = chain_breaks(log)
    copy = manifest.get("audit_log")
    if not isinstance(copy, list):
        return lines  # a manifest written before the audit log: nothing to compare with
    recorded = {int(e["id"]): e for e in copy if isinstance(e, dict) and isinstance(e.get("id"), int)}
    stored = {e.id: e for e in log}
    for i in sorted(set(recorded) | set(stored)):
        if i not in stored:
            lines.append(f"audit entry {i}: in the manifest, missing from the store ({_when(recorded[i])})")
        elif i not in recorded:
            lines.append(
                f"audit entry {i}: logged after the report was written, which is out of date ({_when(stored[i].as_dict())})"
            )
        elif recorded[i] != stored[i].as_dict():
            lines.append(f"audit entry {i}: the store's differs from the manifest's ({_when(stored[i].as_dict())})")
    return lines


def fs_path(text: str) -> Path:
    """The file a manifest path names: the path as written, its `\\xNN` bytes back to raw bytes
    (the report writes a file name that is not UTF-8 that way) when only that form exists.

    >>> fs_path("/in/cam/a.mkv").as_posix()
    '/in/cam/a.mkv'
    """
    plain = Path(text)
    if "\\x" not in text or plain.exists():
        return plain
    raw = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(0xDC00 + int(m.group(1), 16)), text)
    return Path(raw)


def input_differences(manifest: Mapping[str, Any], progress: Progress) -> tuple[list[str], int]:
    """(one line per input missing or changed, inputs checked): size first, then the SHA-256."""
    listed = manifest.get("inputs")
    if not isinstance(listed, list):
        return [f"changed: {REPORT_DIRNAME}/{MANIFEST_NAME} records no list of the inputs (inputs)"], 0
    items = [i for i in listed if isinstance(i, dict) and i.get("path")]
    lines = []
    for n, item in enumerate(items):
        shown = str(item["path"])
        path = fs_path(shown)
        try:
            if not path.exists():
                lines.append(f"input missing: {shown}")
            elif not path.is_file():
                lines.append(f"input changed: {shown} is no longer a regular file")
            elif item.get("size_bytes") is not None and path.stat().st_size != item["size_bytes"]:
                lines.append(
                    f"input changed: {shown} ({path.stat().st_size} bytes, the manifest says {item['size_bytes']})"
                )
            elif item.get("sha256") and sha256_file(path) != item["sha256"]:
                lines.append(f"input changed: {shown} (its SHA-256 is not the manifest's)")
        except OSError as exc:
            lines.append(f"input unreadable: {shown} ({exc.strerror or exc})")
        progress("verify", n + 1, len(items))
    return lines, len(items)
