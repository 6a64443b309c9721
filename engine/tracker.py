"""Attractor tracking: keep output channel k carrying the same source across decodes.

The EDA network re-decodes its attractors on a fixed grid of hops, and nothing forces slot
order to stay put between decodes. The tracker matches each decode's active attractors to
live channels (Hungarian assignment on cosine similarity) with hysteresis: a source is born on
a free channel only after ``birth_decodes`` consecutive decodes, and a channel is freed only
after ``death_decodes`` consecutive decodes without a match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..model.calibration import DEFAULT_EXISTENCE_THRESHOLD

UNASSIGNED = -1


@dataclass
class Channel:
    reference: np.ndarray | None = None  # unit-norm running mean of matched attractors [E]
    matches: int = 0  # consecutive decodes with a match
    misses: int = 0  # consecutive decodes without a match
    alive: bool = False  # audible: born and not yet dead
    label: str = ""


@dataclass
class TrackerEvents:
    """What one update changed: channels born and channels that died, with their labels."""

    births: list[tuple[int, str]] = field(default_factory=list)
    deaths: list[tuple[int, str]] = field(default_factory=list)


class AttractorTracker:
    """Maps EDA slots to a fixed number of output channels.

    Args:
        channels: number of output channels (usually ``max_sources``).
        match_threshold: smallest cosine similarity that counts as the same source.
        birth_decodes: consecutive matched decodes before a channel becomes audible.
        death_decodes: consecutive unmatched decodes before a channel is freed.
        label_of: names an attractor ``[E]`` (the best-matching label), for events and UIs.
        count_of: number of active slots from one decode's existence probabilities ``[S]``
            (the model's calibrated stopping rule); default: slots while existence ≥ 0.5.
        smoothing: weight of the new attractor in a channel's running reference (0..1).
    """

    def __init__(
        self,
        channels: int,
        match_threshold: float = 0.3,
        birth_decodes: int = 3,
        death_decodes: int = 25,
        label_of: Callable[[np.ndarray], str] | None = None,
        smoothing: float = 0.2,
        count_of: Callable[[np.ndarray], int] | None = None,
    ) -> None:
        self.channels = [Channel() for _ in range(channels)]
        self.match_threshold = match_threshold
        self.birth_decodes = birth_decodes
        self.death_decodes = death_decodes
        self.label_of = label_of or (lambda _: "")
        self.count_of = count_of or _count_above_default
        self.smoothing = smoothing
        self.assignment = np.full(channels, UNASSIGNED, dtype=np.int64)

    @property
    def labels(self) -> list[str]:
        """Label per channel ('' for a channel that carries nothing)."""
        return [c.label if c.alive else "" for c in self.channels]

    @property
    def live_count(self) -> int:
        return sum(c.alive for c in self.channels)

    def update(self, attractors: np.ndarray, existence: np.ndarray) -> TrackerEvents:
        """Match one decode's attractors ``[S, E]`` (existence ``[S]``) to the channels.

        Updates :attr:`assignment` (channel → slot, or ``UNASSIGNED``) and returns the births
        and deaths this decode caused. A slot is active while it and every slot before it
        pass the stopping rule ``count_of`` (EDA stops decoding at the first absent attractor).
        """
        active = self.count_of(existence)
        slots = _unit(attractors[: min(active, len(self.channels))])
        tracked = [i for i, c in enumerate(self.channels) if c.reference is not None]
        matched_slots: set[int] = set()
        matched_channels: set[int] = set()
        assignment = np.full(len(self.channels), UNASSIGNED, dtype=np.int64)
        if tracked and len(slots):
            references = np.stack([self.channels[i].reference for i in tracked])
            similarity = references @ slots.T  # [tracked, slots]
            rows, cols = linear_sum_assignment(-similarity)
            for row, col in zip(rows, cols):
                if similarity[row, col] >= self.match_threshold:
                    channel = tracked[row]
                    matched_channels.add(channel)
                    matched_slots.add(int(col))
                    assignment[channel] = col
                    self._absorb(self.channels[channel], slots[col])
        for slot in range(len(slots)):
            if slot in matched_slots:
                continue
            free = next((i for i, c in enumerate(self.channels) if c.reference is None), None)
            if free is None:
                break
            matched_channels.add(free)
            assignment[free] = slot
            self._absorb(self.channels[free], slots[slot])
        events = TrackerEvents()
        for index, channel in enumerate(self.channels):
            if index in matched_channels:
                channel.matches += 1
                channel.misses = 0
                if not channel.alive and channel.matches >= self.birth_decodes:
                    channel.alive = True
                    channel.label = self.label_of(channel.reference)
                    events.births.append((index, channel.label))
            elif channel.reference is not None:
                channel.matches = 0
                channel.misses += 1
                if channel.misses >= (self.death_decodes if channel.alive else self.birth_decodes):
                    if channel.alive:
                        events.deaths.append((index, channel.label))
                    self.channels[index] = Channel()
        self.assignment = np.where([c.alive for c in self.channels], assignment, UNASSIGNED).astype(
            np.int64
        )
        return events

    def _absorb(self, channel: Channel, attractor: np.ndarray) -> None:
        if channel.reference is None:
            channel.reference = attractor.copy()
        else:
            mixed = (1 - self.smoothing) * channel.reference + self.smoothing * attractor
            channel.reference = mixed / max(np.linalg.norm(mixed), 1e-9)
        if channel.alive:
            channel.label = self.label_of(channel.reference)


def _count_above_default(existence: np.ndarray) -> int:
    return int(np.cumprod(np.asarray(existence) >= DEFAULT_EXISTENCE_THRESHOLD).sum())


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)
