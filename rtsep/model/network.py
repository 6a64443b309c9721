"""The causal unified separation network: STFT → separator → EDA / cues → masks → iSTFT.

Two entry points compute the same function, in every architecture:

* ``forward`` runs a whole signal at once (what training uses);
* :meth:`StreamingNetwork.step` runs one chunk of whole hops and carries every piece of
  state explicitly (what streaming and the ONNX export use).

:class:`StreamingNetwork` holds what the architectures share; :class:`SeparationNetwork` is
model v1 (``architecture = "lstm"``), :class:`rtsep.model.dualpath.DualPathNetwork` model v2.

Streaming the same input in chunks of any number of hops gives the output of one ``forward``
call over the whole signal; ``tests/test_streaming.py`` pins it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .cue_network import CueEmbedder, CueFusion, MaskEstimator
from .eda import AttractorNetwork
from .separator import CausalSeparator
from .stft import CausalStft

#: Names of the streaming state tensors, in the order the ONNX step graph takes them.
STATE_NAMES = (
    "input_history",  # [B, window - hop] last input samples
    "synthesis_carry",  # [B, N, window - hop] unfinished overlap-add output
    "separator_hidden",  # [separator_layers, B, width] (width: see each state_shapes)
    "separator_cell",  # [separator_layers, B, width]
    "eda_hidden",  # [1, B, E]
    "eda_cell",  # [1, B, E]
    "attractors",  # [B, S + 1, E] attractors of the last grid frame
    "existence_logits",  # [B, S + 1]
    "extractor_hidden",  # [extractor_layers, B * N, width]
    "extractor_cell",  # [extractor_layers, B * N, width]
    "frame_index",  # [1] int64, frames processed so far
)


@dataclass
class NetworkOutput:
    """Result of a whole-signal forward pass.

    ``sources [B, N, samples]`` are aligned with the input (no delay); ``attractors
    [B, G, S + 1, E]`` and ``existence_logits [B, G, S + 1]`` are per attractor grid point
    ``g`` (frame ``g * attractor_interval_hops``). ``presence_logits [B, N, T]`` (per output
    and STFT frame) are those of the cue-presence gate (:mod:`rtsep.model.presence`), ``None``
    in a network without one. ``gains`` are the complex gains ``(real, imag)``, each
    ``[B, N, T, bins]``, that made ``sources`` from the mixture's spectrum (what the engine
    applies at the device rate).
    """

    sources: torch.Tensor
    attractors: torch.Tensor
    existence_logits: torch.Tensor
    presence_logits: torch.Tensor | None = None
    gains: tuple[torch.Tensor, torch.Tensor] | None = None


def magnitude(real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    """``|X|`` with a floor that keeps the gradient finite at zero."""
    return torch.sqrt(real * real + imag * imag + 1e-12)


def apply_gains(
    gains_real: torch.Tensor, gains_imag: torch.Tensor, real: torch.Tensor, imag: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The end every architecture shares: complex gains ``[B, N, T, bins]`` times the mixture's
    spectrum ``[B, T, bins]`` → the outputs' spectra ``(real, imag) [B, N, T, bins]``."""
    real, imag = real.unsqueeze(1), imag.unsqueeze(1)
    return gains_real * real - gains_imag * imag, gains_real * imag + gains_imag * real


class StreamingNetwork(nn.Module):
    """What every architecture shares: the STFT, the EDA schedule, the state and the step loop.

    A subclass builds ``eda`` (:class:`AttractorNetwork`) and ``cues`` (:class:`CueEmbedder`),
    and implements ``shared_frames``, ``output_gains`` and ``state_shapes`` (the shapes of its
    separator and extractor states; axis 1 of the extractor state is streams × outputs). Every
    architecture ends in complex gains on the mixture's spectrum (:func:`apply_gains`): the
    step hands them out with the audio, so the engine can apply them at the device rate.
    """

    eda: AttractorNetwork
    cues: CueEmbedder

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.stft = CausalStft(config.window_samples, config.hop_samples)

    def state_shapes(self, batch: int, outputs: int) -> dict[str, tuple[int, ...]]:
        """Shapes of ``separator_hidden/cell`` and ``extractor_hidden/cell``."""
        raise NotImplementedError

    def shared_frames(
        self, real: torch.Tensor, imag: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The query-free part: spectra ``[B, T, bins]`` and separator state →
        ``(features, summary [B, T, G], hidden, cell)``; ``summary`` feeds the EDA and the cue
        fusion, ``features`` (any shape) the outputs."""
        raise NotImplementedError

    def output_gains(
        self,
        features: torch.Tensor,
        summary: torch.Tensor,
        queries: torch.Tensor,
        real: torch.Tensor,
        imag: torch.Tensor,
        hidden: torch.Tensor,
        cell: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Per output: ``queries [B, Tq, N, E]`` (Tq = T or 1) and extractor state →
        ``(gains_real, gains_imag [B, N, T, bins], presence_logits [B, N, T] or None, hidden,
        cell)``: the complex gains on the mixture's spectrum ``(real, imag) [B, T, bins]``
        (already scaled by the presence gate, when there is one)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- whole signal
    def forward(self, mixture: torch.Tensor, queries: torch.Tensor | None = None) -> NetworkOutput:
        """Separate whole signals.

        Args:
            mixture: ``[B, samples]`` with ``samples`` a multiple of ``hop_samples``.
            queries: ``[B, N, E]`` cue queries, or ``None`` to use the EDA attractors
                (``N = max_sources`` outputs).
        Returns:
            :class:`NetworkOutput`; ``sources`` has ``samples - (window - hop)`` samples (the
            rest needs input that has not arrived yet).
        """
        batch = mixture.shape[0]
        real, imag = self.analyse_whole(mixture)
        zeros = self.init_state(batch, 1)
        features, summary, _, _ = self.shared_frames(
            real, imag, zeros["separator_hidden"], zeros["separator_cell"]
        )
        attractors, existence, frame_queries = self.whole_signal_queries(summary, queries)
        state = self.init_state(batch, frame_queries.shape[2])
        gains_real, gains_imag, presence, _, _ = self.output_gains(
            features,
            summary,
            frame_queries,
            real,
            imag,
            state["extractor_hidden"],
            state["extractor_cell"],
        )
        sources = self.synthesise_whole(*apply_gains(gains_real, gains_imag, real, imag))
        return NetworkOutput(sources, attractors, existence, presence, (gains_real, gains_imag))

    # ----------------------------------------------------------------- whole-signal helpers
    def analyse_whole(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mixture [B, samples]`` (whole hops) → spectra ``(real, imag) [B, T, bins]``."""
        hop = self.config.hop_samples
        if mixture.shape[-1] % hop:
            raise ValueError(f"mixture length {mixture.shape[-1]} is not a multiple of {hop}")
        history = mixture.new_zeros(mixture.shape[0], self.stft.history_samples)
        return self.stft.analyse(torch.cat([history, mixture], dim=-1))

    def whole_signal_queries(
        self, summaries: torch.Tensor, queries: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """EDA over frame summaries ``[B, T, G]`` and the queries of every frame.

        Returns ``(attractors [B, Gr, S + 1, E], existence_logits [B, Gr, S + 1],
        frame_queries [B, T or 1, N, E])``: with ``queries [B, N, E]`` given, those (one set for
        all frames); otherwise, at frame ``t``, the attractors of the last grid frame before
        ``t`` (zeros at ``t = 0``), as streaming holds them.
        """
        c = self.config
        batch, frames = summaries.shape[:2]
        zeros = self._zeros(1, batch, c.embedding_dim)
        encoded, _, _ = self.eda.encode(summaries, zeros, zeros)
        grid = encoded[:, :: c.attractor_interval_hops]  # [B, Gr, E]
        attractors, existence = self.eda.decode(grid.flatten(0, 1))
        attractors = attractors.unflatten(0, grid.shape[:2])
        existence = existence.unflatten(0, grid.shape[:2])
        if queries is not None:
            return attractors, existence, queries.unsqueeze(1)
        held = attractors[:, :, : c.max_sources].repeat_interleave(c.attractor_interval_hops, dim=1)
        frame_queries = torch.cat([torch.zeros_like(held[:, :1]), held[:, : frames - 1]], dim=1)
        return attractors, existence, frame_queries

    def synthesise_whole(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        """Output spectra ``[B, N, T, bins]`` → ``sources [B, N, samples - (window - hop)]``."""
        frames = self.stft.synthesise(real, imag)
        carry = real.new_zeros(real.shape[0], real.shape[1], self.stft.history_samples)
        finished, _ = self.stft.overlap_add(frames, carry)
        return finished[..., self.stft.history_samples :]

    # ----------------------------------------------------------------- streaming
    def init_state(self, batch: int, outputs: int) -> dict[str, torch.Tensor]:
        """Zero state for ``batch`` streams and ``outputs`` queries (``max_sources`` for EDA)."""
        c = self.config
        e, s = c.embedding_dim, c.max_sources + 1
        history = self.stft.history_samples
        shapes = self.state_shapes(batch, outputs)
        state = {
            "input_history": self._zeros(batch, history),
            "synthesis_carry": self._zeros(batch, outputs, history),
            "separator_hidden": self._zeros(*shapes["separator_hidden"]),
            "separator_cell": self._zeros(*shapes["separator_cell"]),
            "eda_hidden": self._zeros(1, batch, e),
            "eda_cell": self._zeros(1, batch, e),
            "attractors": self._zeros(batch, s, e),
            "existence_logits": self._zeros(batch, s),
            "extractor_hidden": self._zeros(*shapes["extractor_hidden"]),
            "extractor_cell": self._zeros(*shapes["extractor_cell"]),
            "frame_index": torch.zeros(1, dtype=torch.int64, device=self.device),
        }
        return {name: state[name] for name in STATE_NAMES}

    def step(
        self, chunk: torch.Tensor, queries: torch.Tensor | None, state: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
        """Process ``chunk [B, k * hop]`` (any whole number of hops).

        Returns ``(outputs [B, N, k * hop], (gains_real, gains_imag) [B, N, k, bins], new
        state)``. Output sample ``i`` of the stream is input sample ``i - (window - hop)``
        separated: the stream lags by ``window - hop`` samples, which
        :class:`rtsep.engine.Streamer` compensates. Gains ``[..., j, :]`` are those of the
        chunk's hop ``j`` (:attr:`NetworkOutput.gains` of the whole signal, frame by frame).
        """
        hop = self.config.hop_samples
        if chunk.shape[-1] % hop:
            raise ValueError(f"chunk length {chunk.shape[-1]} is not a multiple of {hop}")
        outputs, gains_real, gains_imag = [], [], []
        for start in range(0, chunk.shape[-1], hop):
            hop_queries = self.held_attractors(state) if queries is None else queries
            values = tuple(state[name] for name in STATE_NAMES)
            out, real, imag, *values = self.step_hop(
                chunk[:, start : start + hop], hop_queries, *values
            )
            state = dict(zip(STATE_NAMES, values))
            outputs.append(out)
            gains_real.append(real)
            gains_imag.append(imag)
        gains = (torch.stack(gains_real, dim=2), torch.stack(gains_imag, dim=2))
        return torch.cat(outputs, dim=-1), gains, state

    def step_hop(
        self,
        hop_samples: torch.Tensor,
        queries: torch.Tensor,
        input_history: torch.Tensor,
        synthesis_carry: torch.Tensor,
        separator_hidden: torch.Tensor,
        separator_cell: torch.Tensor,
        eda_hidden: torch.Tensor,
        eda_cell: torch.Tensor,
        attractors: torch.Tensor,
        existence_logits: torch.Tensor,
        extractor_hidden: torch.Tensor,
        extractor_cell: torch.Tensor,
        frame_index: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """One hop with flat tensors in and out: the graph the ONNX export records.

        ``hop_samples [B, hop]``, ``queries [B, N, E]`` (in EDA mode the held attractors,
        :meth:`held_attractors`), then the state in :data:`STATE_NAMES` order. Returns
        ``(output [B, N, hop], gains_real [B, N, bins], gains_imag [B, N, bins], *new_state)``:
        the gains are those of this hop's frame (:meth:`output_gains`). Attractors decoded on
        a grid frame are used from the next frame on.
        """
        signal = torch.cat([input_history, hop_samples], dim=-1)
        real, imag = self.stft.analyse(signal)  # [B, 1, F]
        features, summary, separator_hidden, separator_cell = self.shared_frames(
            real, imag, separator_hidden, separator_cell
        )
        eda_hidden, eda_cell, attractors, existence_logits = self.eda_step(
            summary, eda_hidden, eda_cell, attractors, existence_logits, frame_index
        )
        gains_real, gains_imag, _, extractor_hidden, extractor_cell = self.output_gains(
            features, summary, queries.unsqueeze(1), real, imag, extractor_hidden, extractor_cell
        )
        spectra = apply_gains(gains_real, gains_imag, real, imag)
        output, synthesis_carry = self.stft.overlap_add(
            self.stft.synthesise(*spectra), synthesis_carry
        )
        return (
            output,
            gains_real[:, :, 0],
            gains_imag[:, :, 0],
            signal[:, self.config.hop_samples :],
            synthesis_carry,
            separator_hidden,
            separator_cell,
            eda_hidden,
            eda_cell,
            attractors,
            existence_logits,
            extractor_hidden,
            extractor_cell,
            frame_index + 1,
        )

    def held_attractors(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """The queries of EDA mode for the next hop: ``[B, max_sources, E]``."""
        return state["attractors"][:, : self.config.max_sources]

    def eda_step(
        self,
        summary: torch.Tensor,
        eda_hidden: torch.Tensor,
        eda_cell: torch.Tensor,
        attractors: torch.Tensor,
        existence_logits: torch.Tensor,
        frame_index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One frame of the causal EDA: encode ``summary [B, 1, G]``; on a grid frame, decode
        new attractors (used from the next frame on), else keep the held ones."""
        encoded, eda_hidden, eda_cell = self.eda.encode(summary, eda_hidden, eda_cell)
        decoded, decoded_existence = self.eda.decode(encoded[:, 0])
        on_grid = torch.remainder(frame_index, self.config.attractor_interval_hops) == 0
        attractors = torch.where(on_grid, decoded, attractors)
        existence_logits = torch.where(on_grid, decoded_existence, existence_logits)
        return eda_hidden, eda_cell, attractors, existence_logits

    @property
    def device(self) -> torch.device:
        return self.stft.analysis_real.device

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(*shape, device=self.stft.analysis_real.device)


class SeparationNetwork(StreamingNetwork):
    """Model v1 (``ModelConfig.architecture == "lstm"``): all bins projected into a stack of
    LSTMs, cue fusion after the separator, per-output LSTMs and a real magnitude mask."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        c = config
        self.separator = CausalSeparator(c.frequency_bins, c.feature_dim, c.separator_layers)
        self.eda = AttractorNetwork(c.feature_dim, c.embedding_dim, c.max_sources)
        self.cues = CueEmbedder(len(c.labels), c.text_dim, c.embedding_dim)
        self.fusion = CueFusion(c.feature_dim, c.embedding_dim, c.attention_heads)
        self.masks = MaskEstimator(
            c.feature_dim, c.frequency_bins, c.extractor_layers, c.presence_gate
        )

    def state_shapes(self, batch: int, outputs: int) -> dict[str, tuple[int, ...]]:
        c = self.config
        return {
            "separator_hidden": (c.separator_layers, batch, c.feature_dim),
            "separator_cell": (c.separator_layers, batch, c.feature_dim),
            "extractor_hidden": (c.extractor_layers, batch * outputs, c.feature_dim),
            "extractor_cell": (c.extractor_layers, batch * outputs, c.feature_dim),
        }

    def shared_frames(
        self, real: torch.Tensor, imag: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The separator's features are both the summary and what the outputs read."""
        features, hidden, cell = self.separator(magnitude(real, imag), hidden, cell)
        return features, features, hidden, cell

    def output_gains(
        self,
        features: torch.Tensor,
        summary: torch.Tensor,
        queries: torch.Tensor,
        real: torch.Tensor,
        imag: torch.Tensor,
        hidden: torch.Tensor,
        cell: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Cue fusion, per-output LSTMs and a real magnitude mask (imaginary part zero)."""
        mask, presence, hidden, cell = self.masks(self.fusion(features, queries), hidden, cell)
        return mask, mask * 0.0, presence, hidden, cell
