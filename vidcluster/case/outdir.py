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
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

from ..errors import DiskFullError, StoreError, WorkflowError
from ..procs import close_in_workers
from .store import Store, is_disk_full

STORE_NAME = "vidcluster.db"
LOCK_NAME = ".vidcluster.lock"
PRIVATE_UMASK = 0o077


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
def open_output(out: str | Path) -> Iterator[tuple[Path, Store]]:
    """Lock OUT and open its store; WorkflowError when OUT holds no store."""
    out = Path(out)
    if not has_store(out):
        raise WorkflowError(f"{out}: no vidcluster store here (run `vidcluster run INPUT --out {out}` first)")
    with run_lock(out):
        store = Store.open(store_path(out))
        try:
            yield out, store
        finally:
            store.close()
