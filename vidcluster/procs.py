"""Worker processes that never outlive the run that started them, and keep to one core each.

A worker forked by the main process would keep running (and keep decoding) after the main
process is killed. `die_with_parent` asks the Linux kernel to send the worker SIGKILL when its
parent dies; elsewhere it does nothing (workers close their copy of the run lock at start, see
`close_in_workers`, so an orphan can at worst waste CPU there, never block a resume).

A run starts one worker per core, so each worker computes on one thread: OpenCV's own thread
pool (resizing, colour conversion; ONNX Runtime's sessions are made with one thread too) would otherwise make N workers contend for N cores
with N x cores threads, and `--workers 1` would not mean one core.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from multiprocessing import get_all_start_methods, get_context

import cv2

_PR_SET_PDEATHSIG = 1
# File descriptors a forked worker must not keep (the run locks this process holds).
_close_in_workers: set[int] = set()


def close_in_workers(fd: int, close: bool = True) -> None:
    """Have every worker started from now on close its inherited copy of `fd` (close=False
    takes that back, when the parent lets the descriptor go)."""
    if close:
        _close_in_workers.add(fd)
    else:
        _close_in_workers.discard(fd)


def close_inherited() -> None:
    """In a forked worker: close this process's copies of the descriptors its parent marked."""
    for fd in list(_close_in_workers):
        with suppress(OSError):
            os.close(fd)
    _close_in_workers.clear()


def die_with_parent() -> bool:
    """Make the calling process receive SIGKILL when its parent exits. True when it took effect.

    Call it first thing in a worker; if the parent is already gone by then, exit at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent or parent == 1:  # the parent died before prctl took effect
        os._exit(1)
    return True


def compute_on_one_core() -> None:
    """From now on, OpenCV in this process runs on the calling thread only (a fresh worker's start,
    e.g. a Ray actor; never in a forked child, see `process_pool`)."""
    cv2.setNumThreads(1)


@contextmanager
def one_core() -> Iterator[None]:
    """OpenCV on one thread inside the block, as it was after (work run inline in the main process)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def start_worker(forked: bool) -> None:
    """First thing in a worker process: die with the run, drop its copy of the run lock, and
    (when it was not forked from a process on one thread) compute on one core."""
    die_with_parent()
    close_inherited()
    if not forked:
        compute_on_one_core()


@contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """`workers` worker processes started by `start_worker`, each computing on one core.

    Forked where the platform can (they start at once and need no importable __main__). They
    are forked while this process computes on one thread, so they inherit OpenCV on one thread:
    a forked child that reconfigures OpenCV's thread pool hangs on its parent's locks.
    """
    fork = "fork" in get_all_start_methods()
    with (
        one_core(),
        ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("fork" if fork else "spawn"),
            initializer=start_worker,
            initargs=(fork,),
        ) as pool,
    ):
        yield pool
