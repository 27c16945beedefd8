"""Worker processes that never outlive the run that started them.

A worker forked by the main process would keep running (and keep decoding) after the main
process is killed. `die_with_parent` asks the Linux kernel to send the worker SIGKILL when its
parent dies; elsewhere it does nothing (workers close their copy of the run lock at start, see
outdir.close_inherited_locks, so an orphan can at worst waste CPU there, never block a resume).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


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
