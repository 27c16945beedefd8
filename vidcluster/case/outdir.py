"""The output folder OUT: where its store lives, whether it has one, and the lock a run holds on it.

OUT holds biometric data, so it is owner-only: created 0700, an existing folder made so, and
while a run holds it the process umask is 077, so every file written there (store, report,
clips) is readable by its owner alone.

One process at a time works on an OUT: `run_lock` takes an exclusive flock on
OUT/.vidcluster.lock and refuses clearly when another run holds it. A forked worker inherits
the locked file descriptor, and an flock lives as long as any copy of it is open, so workers
close their copy first thing (`procs.close_in_workers`): when the run dies, its lock dies with it, even if a
worker were left behind. The lock file exists only while a run holds it: the holder removes it
before letting go, and a process that locked a file which was removed meanwhile tries again on
the new one. `open_output` is the lock plus the store, for commands that work on a finished run.

Taking the lock also removes what a killed writer left: the temporary folders a report (or search
page) was being built in, `.report-new-*`, and the old report being deleted, `.report-old-*`.
A command that changes the case first puts OUT-OF-DATE.txt in the report folder; the report it
writes afterwards replaces the folder, so the file stays exactly when the command was killed or
failed between its change and the new report (`mark_report_stale`, `report_stale`).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from ..errors import DiskFullError, StoreError, WorkflowError
from ..procs import close_in_workers
from .store import Store, is_disk_full, store_errors

STORE_NAME = "vidcluster.db"
LOCK_NAME = ".vidcluster.lock"
PRIVATE_UMASK = 0o077
REPORT_DIRNAME = "report"
STALE_MARKER = "OUT-OF-DATE.txt"  # in the report folder while a change to the case may not be in it
# the temporary folders `report.replaced_folder` builds a folder in (tempfile.mkdtemp's 8 characters)
_LEFTOVER = re.compile(r"\.[^/]+-(new|old)-[a-z0-9_]{8}")


def store_path(out: str | Path) -> Path:
    """Where the store of OUT lives."""
    return Path(out) / STORE_NAME


def has_store(out: str | Path) -> bool:
    """True when OUT holds a vidcluster store (a run wrote into it)."""
    return store_path(out).is_file()


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Make OUT owner-only (it holds biometric data) and hold its lock, or refuse clearly.

    While the lock is held, files are created owner-only (umask 077); the caller's umask is
    restored afterwards.
    """
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_private(out)
    except OSError as exc:
        raise StoreError(f"{out}: cannot write the output folder ({exc.strerror or exc})") from None
    handle = _acquire(out / LOCK_NAME)
    close_in_workers(handle.fileno())
    umask = os.umask(PRIVATE_UMASK)
    try:
        remove_leftovers(out)
        yield
    finally:
        os.umask(umask)
        close_in_workers(handle.fileno(), close=False)
        with suppress(OSError):
            os.unlink(out / LOCK_NAME)  # still locked: nobody can take this file between unlink and unlock
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _acquire(path: Path, attempts: int = 5) -> TextIO:
    """Open and flock `path`; retry when the file we locked was removed by the holder that just let go."""
    for _ in range(attempts):
        try:
            handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
        except OSError as exc:
            if is_disk_full(exc, path):
                raise DiskFullError(f"disk full writing {path}") from None
            raise StoreError(f"{path.parent}: cannot write the output folder ({exc.strerror or exc})") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StoreError(
                f"{path.parent}: another vidcluster run (or `vidcluster serve`) is using this output folder;"
                " wait for it or choose another"
            ) from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # we locked a file that is no longer the lock: take the new one
    raise StoreError(f"{path.parent}: cannot take the lock of this output folder; try again")


def remove_leftovers(out: Path) -> list[Path]:
    """Remove the temporary folders a killed report or search write left in OUT (call with the lock
    held: nobody is writing one then); returns what was removed."""
    gone = []
    for path in out.iterdir():
        if _LEFTOVER.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    return gone


def mark_report_stale(out: Path, change: str) -> bool:
    """Before `change` touches the case: put OUT-OF-DATE.txt in OUT's report folder (kept if one is
    there already: the oldest change the report lacks is named). The report that is written next
    replaces the folder, marker and all. False when there is no report to mark or it was marked."""
    folder = out / REPORT_DIRNAME
    marker = folder / STALE_MARKER
    if not folder.is_dir() or marker.exists():
        return False
    since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    text = (
        f"the report is out of date: {change} started at {since} UTC may have changed the case and "
        f"did not write the report again (stopped, failed or still running); "
        f"`vidcluster recluster {out}` writes it again\n"
    )
    try:
        marker.write_text(text, encoding="utf-8")
    except OSError as exc:
        if is_disk_full(exc, marker):
            raise DiskFullError(f"disk full writing {marker}") from None
        raise StoreError(f"{marker}: cannot write ({exc.strerror or exc})") from None
    return True


def report_stale(out: Path) -> str | None:
    """Why OUT's report is out of date (one line), or None when nothing says so."""
    try:
        text = (out / REPORT_DIRNAME / STALE_MARKER).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return " ".join(text.split()) or "the report is out of date"


class StaleMark:
    """OUT's report marked out of date while a command that may change the case (`change`: what it
    is; None: it changes nothing) works on `store`. The report the command writes takes the mark
    away; `close` removes the mark this one made when nothing was written to the store meanwhile."""

    def __init__(self, out: Path, store: Store, change: str | None):
        self.out, self.store = out, store
        self.before = store.conn.total_changes  # every row written, committed or not
        self.made = change is not None and mark_report_stale(out, change)

    def close(self) -> None:
        if self.made and self.store.conn.total_changes == self.before:
            with suppress(OSError):
                (self.out / REPORT_DIRNAME / STALE_MARKER).unlink()


def make_private(out: Path) -> None:
    """OUT and the store files an earlier run left there: owner-only (folders 0700, files 0600).

    A folder the user made beforehand (`mkdir o`) would otherwise keep 0755. Files of other
    owners are left alone (chmod would fail on them anyway).
    """
    uid = os.getuid() if hasattr(os, "getuid") else None
    for path in (out, *(out / name for name in (STORE_NAME, STORE_NAME + "-wal", STORE_NAME + "-shm", LOCK_NAME))):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if uid is not None and st.st_uid != uid:
            continue
        private = 0o700 if path.is_dir() else 0o600
        if st.st_mode & 0o777 & ~private:
            os.chmod(path, st.st_mode & 0o777 & private)


@contextmanager
def open_output(out: str | Path, changes: str | None = "a correction") -> Iterator[tuple[Path, Store]]:
    """Lock OUT and open its store; WorkflowError when OUT holds no store. SQLite's errors inside
    become one line (`store_errors`).

    `changes`: what the command is (None for one that changes nothing): its report is marked out of
    date until it is written again (`StaleMark`).
    """
    out = Path(out)
    path = store_path(out)
    if not has_store(out):
        raise WorkflowError(f"{out}: no vidcluster store here (run `vidcluster run INPUT --out {out}` first)")
    with run_lock(out), store_errors(path):
        store = Store.open(path)
        mark = StaleMark(out, store, changes)
        try:
            yield out, store
        finally:
            mark.close()
            store.close()
