"""SCHED_FIFO for one thread: granted where the OS allows it, refused in one line where not."""

from __future__ import annotations

import os
import threading

import pytest

from rtsep.engine.realtime import realtime_allowed, set_fifo


def test_a_priority_outside_1_to_99_is_refused():
    for priority in (0, 100):
        with pytest.raises(ValueError, match="1..99"):
            set_fifo(0, priority)


def test_set_fifo_changes_only_the_thread_it_names():
    seen: dict[str, object] = {}
    ready, done = threading.Event(), threading.Event()

    def worker() -> None:
        ready.set()
        done.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(5)
    try:
        seen["refused"] = set_fifo(thread.native_id, 1)
        seen["policy"] = os.sched_getscheduler(thread.native_id)
    finally:
        done.set()
        thread.join()
    if seen["refused"] is None:
        assert seen["policy"] == os.SCHED_FIFO
        assert realtime_allowed()
    else:
        assert isinstance(seen["refused"], str) and "not permitted" in seen["refused"]
        assert seen["policy"] == os.SCHED_OTHER
        assert not realtime_allowed()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the calling thread is untouched
