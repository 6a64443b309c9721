"""Real-time scheduling (Linux ``SCHED_FIFO``) for the threads that feed the audio device.

A tuned audio machine runs the JACK server and its clients' process threads under
``SCHED_FIFO`` (``jackd -R``, the default, at ``-P`` 10; jack2 runs its clients 5 below), so a
busy desktop or a training run cannot make a period late. ``rtsep live`` puts the engine's
worker (the one thread that runs the model) among them by default, at ``WORKER_PRIORITY``:
any ``SCHED_FIFO`` priority preempts every ordinary process, and the lowest one never
preempts an audio callback (JACK's clients, PipeWire's or PortAudio's threads), whose work
per period is short and must not wait for a model. Only where the OS allows it: root or
``CAP_SYS_NICE``, or an ``RLIMIT_RTPRIO`` (``HOW_TO_ALLOW``), and a cgroup with real-time
budget; a container often has none of these, and then the worker runs with normal
scheduling and the audio still runs.
"""

from __future__ import annotations

import os
import threading

#: Highest SCHED_FIFO priority on Linux (the lowest is 1).
MAX_PRIORITY = 99
#: The engine's worker's default SCHED_FIFO priority (``[io] worker_priority``): the lowest,
#: below every audio thread (JACK's clients run at ``jackd -P`` - 5, 5 by default).
WORKER_PRIORITY = 1
#: How a user allows real-time scheduling where the OS refuses it (one line).
HOW_TO_ALLOW = (
    "allow it with an rtprio limit for your user, e.g. '@audio - rtprio 95' in "
    "/etc/security/limits.d/audio.conf and your user in the audio group (log in again), "
    "or CAP_SYS_NICE"
)


def set_fifo(thread_id: int, priority: int) -> str | None:
    """Put OS thread ``thread_id`` (``threading.Thread.native_id``; 0: the calling thread)
    under ``SCHED_FIFO`` at ``priority`` (1..99). Returns None when done, else why not (one
    line: the OS refused, or it has no ``SCHED_FIFO``); the thread's scheduling is then
    unchanged."""
    if not 1 <= priority <= MAX_PRIORITY:
        raise ValueError(f"SCHED_FIFO priority {priority}: use 1..{MAX_PRIORITY}")
    if not hasattr(os, "sched_setscheduler"):
        return "this OS has no SCHED_FIFO"
    try:
        # Linux applies a thread id (and 0) to that one thread, not the whole process.
        os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as error:
        return f"SCHED_FIFO {priority} not permitted ({error.strerror})"
    return None


def realtime_allowed(priority: int = 1) -> bool:
    """Whether this process may run a thread under ``SCHED_FIFO`` at ``priority``: tried on a
    short-lived thread of its own, so nothing else changes."""
    refused: list[str | None] = []
    probe = threading.Thread(target=lambda: refused.append(set_fifo(0, priority)))
    probe.start()
    probe.join()
    return refused == [None]
