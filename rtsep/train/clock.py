"""What a training run measures its budget in, and how it is asked to stop.

``cpu_seconds()``: CPU seconds used so far by this process and its running children (the
loader workers simulating mixtures). Designs are compared at equal CPU time: time the run
stood stopped (``kill -STOP``) or waited for the CPU costs it nothing, and a design whose steps
are cheaper gets more of them.

``StopSignals``: while entered, SIGINT and SIGTERM only set a flag, so the loop can finish its
step, validate, checkpoint and return instead of dying between checkpoints.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process plus those of its running children; on a
    system without ``/proc`` this process's alone."""
    own = time.process_time()
    proc = Path("/proc")
    if not proc.is_dir():
        return own
    me = str(os.getpid())
    children = 0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ... utime stime ...": comm may hold spaces and ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[1] == me:  # fields[0] is the state, [1] the parent, [11]/[12] utime/stime
            children += int(fields[11]) + int(fields[12])
    return own + children / _TICKS_PER_S


class StopSignals:
    """Context manager: SIGINT/SIGTERM set ``requested`` (and name the signal in ``name``)
    instead of raising; the previous handlers come back on exit. In a thread other than the
    main one (where handlers cannot be set) it does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self.name = ""
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.name = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
