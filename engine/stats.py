"""Counters of a running engine, read by the terminal view, the control channel and reports."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

#: Upper edges (ms) of the per-chunk compute-time histogram buckets; the last bucket is open.
HISTOGRAM_EDGES_MS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


@dataclass
class EngineStats:
    """Counters written by the worker and the audio callback (each field by one thread only).

    ``deadline_misses`` counts output callbacks that found less processed audio than they
    needed (silence was played in its place); ``late_chunks`` counts chunks whose compute took
    longer than their own duration; ``dropped_samples`` is input discarded, unprocessed, to
    catch up after an overload.
    """

    chunk_seconds: float
    history: int = 4096
    chunks: int = 0
    late_chunks: int = 0
    deadline_misses: int = 0
    underrun_samples: int = 0
    overruns: int = 0
    dropped_samples: int = 0
    dropped_chunks: int = 0  # catch-up events (each drops a backlog of input)
    callbacks: int = 0
    queue_depth_samples: int = 0
    compute_seconds_total: float = 0.0
    compute_ms: np.ndarray = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.compute_ms = np.zeros(self.history, np.float64)

    def record_chunk(self, seconds: float) -> None:
        """Worker: one chunk took ``seconds`` of compute."""
        self.compute_ms[self.chunks % self.history] = 1000.0 * seconds
        self.chunks += 1
        self.compute_seconds_total += seconds
        if seconds > self.chunk_seconds:
            self.late_chunks += 1

    def reset(self) -> None:
        with self._lock:
            self.chunks = self.late_chunks = self.deadline_misses = 0
            self.underrun_samples = self.overruns = self.dropped_samples = self.callbacks = 0
            self.dropped_chunks = 0
            self.compute_seconds_total = 0.0

    def snapshot(self) -> dict:
        """A JSON-ready copy: counters, compute-time percentiles (ms) and histogram."""
        recent = self.compute_ms[: min(self.chunks, self.history)]
        if recent.size:
            p50, p99 = np.percentile(recent, [50, 99])
            peak = float(recent.max())
        else:
            p50 = p99 = peak = 0.0
        counts = np.histogram(recent, bins=(0.0, *HISTOGRAM_EDGES_MS, np.inf))[0]
        return {
            "chunks": self.chunks,
            "late_chunks": self.late_chunks,
            "deadline_misses": self.deadline_misses,
            "underrun_samples": self.underrun_samples,
            "overruns": self.overruns,
            "dropped_samples": self.dropped_samples,
            "dropped_chunks": self.dropped_chunks,
            "callbacks": self.callbacks,
            "queue_depth_samples": self.queue_depth_samples,
            "chunk_ms": 1000.0 * self.chunk_seconds,
            "compute_ms_p50": float(p50),
            "compute_ms_p99": float(p99),
            "compute_ms_max": peak,
            "real_time_factor": (
                self.compute_seconds_total / (self.chunks * self.chunk_seconds)
                if self.chunks
                else 0.0
            ),
            "compute_ms_histogram": {
                "edges_ms": list(HISTOGRAM_EDGES_MS),
                "counts": counts.tolist(),
            },
        }
