"""The causal unified separation network: STFT → separator → EDA / cues → masks → iSTFT.

Two entry points compute the same function:

* :meth:`SeparationNetwork.forward` runs a whole signal at once (what training uses);
* :meth:`SeparationNetwork.step` runs one chunk of whole hops and carries every piece of
  state explicitly (what streaming and the ONNX export use).

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
    "separator_hidden",  # [separator_layers, B, D]
    "separator_cell",  # [separator_layers, B, D]
    "eda_hidden",  # [1, B, E]
    "eda_cell",  # [1, B, E]
    "attractors",  # [B, S + 1, E] attractors of the last grid frame
    "existence_logits",  # [B, S + 1]
    "extractor_hidden",  # [extractor_layers, B * N, D]
    "extractor_cell",  # [extractor_layers, B * N, D]
    "frame_index",  # [1] int64, frames processed so far
)


@dataclass
class NetworkOutput:
    """Result of a whole-signal forward pass.

    ``sources [B, N, samples]`` are aligned with the input (no delay); ``attractors
    [B, G, S + 1, E]`` and ``existence_logits [B, G, S + 1]`` are per attractor grid point
    ``g`` (frame ``g * attractor_interval_hops``).
    """

    sources: torch.Tensor
    attractors: torch.Tensor
    existence_logits: torch.Tensor


def magnitude(real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    """``|X|`` with a floor that keeps the gradient finite at zero."""
    return torch.sqrt(real * real + imag * imag + 1e-12)


class SeparationNetwork(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.stft = CausalStft(c.window_samples, c.hop_samples)
        self.separator = CausalSeparator(c.frequency_bins, c.feature_dim, c.separator_layers)
        self.eda = AttractorNetwork(c.feature_dim, c.embedding_dim, c.max_sources)
        self.cues = CueEmbedder(len(c.labels), c.text_dim, c.embedding_dim)
        self.fusion = CueFusion(c.feature_dim, c.embedding_dim, c.attention_heads)
        self.masks = MaskEstimator(c.feature_dim, c.frequency_bins, c.extractor_layers)

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
        c = self.config
        batch, samples = mixture.shape
        if samples % c.hop_samples:
            raise ValueError(f"mixture length {samples} is not a multiple of {c.hop_samples}")
        history = mixture.new_zeros(batch, self.stft.history_samples)
        real, imag = self.stft.analyse(torch.cat([history, mixture], dim=-1))  # [B, T, F]
        frames = real.shape[1]
        zeros = self._zeros(c.separator_layers, batch, c.feature_dim)
        features, _, _ = self.separator(magnitude(real, imag), zeros, zeros)
        summaries, _, _ = self.eda.encode(features, *self._eda_zeros(batch))
        grid = summaries[:, :: c.attractor_interval_hops]  # [B, G, E]
        attractors, existence = self.eda.decode(grid.flatten(0, 1))
        attractors = attractors.unflatten(0, grid.shape[:2])
        existence = existence.unflatten(0, grid.shape[:2])
        if queries is None:
            # Frame t uses the attractors of the last grid frame before t (zeros at t = 0).
            held = attractors[:, :, : c.max_sources].repeat_interleave(
                c.attractor_interval_hops, dim=1
            )
            frame_queries = torch.cat([torch.zeros_like(held[:, :1]), held[:, : frames - 1]], dim=1)
        else:
            frame_queries = queries.unsqueeze(1)
        n = frame_queries.shape[2]
        fused = self.fusion(features, frame_queries)
        zeros = self._zeros(c.extractor_layers, batch * n, c.feature_dim)
        mask, _, _ = self.masks(fused, zeros, zeros)
        frames_out = self.stft.synthesise(mask * real.unsqueeze(1), mask * imag.unsqueeze(1))
        carry = mixture.new_zeros(batch, n, self.stft.history_samples)
        finished, _ = self.stft.overlap_add(frames_out, carry)
        return NetworkOutput(finished[..., self.stft.history_samples :], attractors, existence)

    # ----------------------------------------------------------------- streaming
    def init_state(self, batch: int, outputs: int) -> dict[str, torch.Tensor]:
        """Zero state for ``batch`` streams and ``outputs`` queries (``max_sources`` for EDA)."""
        c = self.config
        device = self.stft.analysis_real.device
        e, s = c.embedding_dim, c.max_sources + 1
        history = self.stft.history_samples
        return {
            "input_history": torch.zeros(batch, history, device=device),
            "synthesis_carry": torch.zeros(batch, outputs, history, device=device),
            "separator_hidden": torch.zeros(
                c.separator_layers, batch, c.feature_dim, device=device
            ),
            "separator_cell": torch.zeros(c.separator_layers, batch, c.feature_dim, device=device),
            "eda_hidden": torch.zeros(1, batch, e, device=device),
            "eda_cell": torch.zeros(1, batch, e, device=device),
            "attractors": torch.zeros(batch, s, e, device=device),
            "existence_logits": torch.zeros(batch, s, device=device),
            "extractor_hidden": torch.zeros(
                c.extractor_layers, batch * outputs, c.feature_dim, device=device
            ),
            "extractor_cell": torch.zeros(
                c.extractor_layers, batch * outputs, c.feature_dim, device=device
            ),
            "frame_index": torch.zeros(1, dtype=torch.int64, device=device),
        }

    def step(
        self, chunk: torch.Tensor, queries: torch.Tensor | None, state: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Process ``chunk [B, k * hop]`` (any whole number of hops).

        Returns ``(outputs [B, N, k * hop], new state)``. Output sample ``i`` of the stream
        is input sample ``i - (window - hop)`` separated: the stream lags by
        ``window - hop`` samples, which :class:`rtsep.engine.Streamer` compensates.
        """
        hop = self.config.hop_samples
        if chunk.shape[-1] % hop:
            raise ValueError(f"chunk length {chunk.shape[-1]} is not a multiple of {hop}")
        outputs = []
        for start in range(0, chunk.shape[-1], hop):
            hop_queries = self.held_attractors(state) if queries is None else queries
            values = tuple(state[name] for name in STATE_NAMES)
            out, *values = self.step_hop(chunk[:, start : start + hop], hop_queries, *values)
            state = dict(zip(STATE_NAMES, values))
            outputs.append(out)
        return torch.cat(outputs, dim=-1), state

    def held_attractors(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """The queries of EDA mode for the next hop: ``[B, max_sources, E]``."""
        return state["attractors"][:, : self.config.max_sources]

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
        ``(output [B, N, hop], *new_state)``. Attractors decoded on a grid frame are used from
        the next frame on.
        """
        c = self.config
        signal = torch.cat([input_history, hop_samples], dim=-1)
        real, imag = self.stft.analyse(signal)  # [B, 1, F]
        features, separator_hidden, separator_cell = self.separator(
            magnitude(real, imag), separator_hidden, separator_cell
        )
        summary, eda_hidden, eda_cell = self.eda.encode(features, eda_hidden, eda_cell)
        decoded, decoded_existence = self.eda.decode(summary[:, 0])
        on_grid = torch.remainder(frame_index, c.attractor_interval_hops) == 0
        attractors = torch.where(on_grid, decoded, attractors)
        existence_logits = torch.where(on_grid, decoded_existence, existence_logits)
        fused = self.fusion(features, queries.unsqueeze(1))
        mask, extractor_hidden, extractor_cell = self.masks(fused, extractor_hidden, extractor_cell)
        frames = self.stft.synthesise(mask * real.unsqueeze(1), mask * imag.unsqueeze(1))
        output, synthesis_carry = self.stft.overlap_add(frames, synthesis_carry)
        return (
            output,
            signal[:, c.hop_samples :],
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

    # ----------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        return self.stft.analysis_real.device

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(*shape, device=self.stft.analysis_real.device)

    def _eda_zeros(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.config.embedding_dim
        return self._zeros(1, batch, e), self._zeros(1, batch, e)
