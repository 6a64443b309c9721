"""RingBuffer: exact SPSC transfer, bounds, peek/discard, no allocation on the hot path."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

from rtsep.engine.ringbuffer import RingBuffer


def _stream(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((channels, frames)).astype(np.float32)


def test_stream_passes_exactly_across_the_wrap_for_any_block_sizes() -> None:
    source = _stream(2, 20_000)
    ring = RingBuffer(2, 1000)
    rng = np.random.default_rng(1)
    received = []
    sent = 0
    while sent < source.shape[1] or ring.available():
        sent += ring.write(source[:, sent : sent + int(rng.integers(0, 700))])
        received.append(ring.read(int(rng.integers(0, 700))).copy())
    np.testing.assert_array_equal(np.concatenate(received, axis=1), source)
    assert ring.frames_written == ring.frames_read == source.shape[1]


def test_write_stops_at_space_and_read_stops_at_available() -> None:
    ring = RingBuffer(1, 8)
    assert ring.write(np.arange(5, dtype=np.float32)[None]) == 5
    assert (ring.available(), ring.space()) == (5, 3)
    assert ring.write(np.arange(10, dtype=np.float32)[None]) == 3  # the rest is an overrun
    assert ring.space() == 0
    np.testing.assert_array_equal(ring.read(100)[0], [0, 1, 2, 3, 4, 0, 1, 2])
    assert ring.read(4).shape == (1, 0)


def test_peek_keeps_frames_and_discard_drops_the_oldest() -> None:
    ring = RingBuffer(1, 8)
    ring.write(np.arange(6, dtype=np.float32)[None])
    np.testing.assert_array_equal(ring.peek(3)[0], [0, 1, 2])
    assert ring.available() == 6
    assert ring.discard(4) == 4
    assert ring.discard(10) == 2
    assert ring.available() == 0


def test_reads_copy_into_the_callers_array_or_the_preallocated_scratch() -> None:
    ring = RingBuffer(2, 64)
    block = _stream(2, 32)
    out = np.zeros((2, 48), dtype=np.float32)
    ring.write(block)
    view = ring.read(40, out=out)
    assert view.shape == (2, 32) and np.shares_memory(view, out)
    np.testing.assert_array_equal(out[:, :32], block)
    ring.write(block)
    first = ring.peek(8)
    assert np.shares_memory(first, ring.read(8))  # both land in the same scratch


def test_write_and_read_allocate_no_array_memory() -> None:
    ring = RingBuffer(2, 4096)
    block = _stream(2, 256)
    out = np.zeros((2, 256), dtype=np.float32)
    for _ in range(20):  # warm up
        ring.write(block)
        ring.read(256, out=out)
    tracemalloc.start()
    for _ in range(2000):
        ring.write(block)
        ring.read(256, out=out)
        ring.write(block)
        ring.read(256)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak_bytes < 8 * 1024  # array headers only; one block alone is 2 KiB


def test_one_writer_and_one_reader_thread_transfer_a_stream_exactly() -> None:
    source = _stream(2, 200_000)
    ring = RingBuffer(2, 997)
    received = np.zeros_like(source)

    def writer() -> None:
        rng = np.random.default_rng(2)
        sent = 0
        while sent < source.shape[1]:
            written = ring.write(source[:, sent : sent + int(rng.integers(1, 400))])
            sent += written
            if not written:
                time.sleep(0)  # let the reader run

    thread = threading.Thread(target=writer)
    thread.start()
    got = 0
    rng = np.random.default_rng(3)
    while got < source.shape[1]:
        frames = ring.read(int(rng.integers(1, 400)), out=received[:, got:]).shape[1]
        got += frames
        if not frames:
            time.sleep(0)  # let the writer run
    thread.join()
    np.testing.assert_array_equal(received, source)


@pytest.mark.parametrize(("channels", "capacity"), [(0, 8), (1, 0)])
def test_rejects_empty_shapes(channels: int, capacity: int) -> None:
    with pytest.raises(ValueError, match="channels >= 1 and capacity_frames >= 1"):
        RingBuffer(channels, capacity)
