"""The band model (``architecture = "bandrnn"``, model v3 candidate): what it adds to the
contract every architecture keeps (tests/architectures.py runs that contract on it too)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rtsep.model import ModelConfig, build_network
from rtsep.model.bands import MAX_MASK_MAGNITUDE
from rtsep.model.complexity import macs_per_second

SMALL = ModelConfig(architecture="bandrnn", core_dim=64, head_dim=16, band_code_dim=8)


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(SMALL).eval()


def test_each_query_gets_its_own_bounded_complex_mask(network):
    mixture = 0.1 * torch.randn(2, 20 * 128)
    queries = network.cues.embed_labels(torch.tensor([[0, 1], [2, 0]]))
    with torch.no_grad():
        gains_real, gains_imag = network(mixture, queries).gains
    size = torch.sqrt(gains_real**2 + gains_imag**2)
    assert gains_real.shape == (2, 2, 20, SMALL.frequency_bins)
    assert float(size.max()) <= MAX_MASK_MAGNITUDE
    assert float(gains_imag.abs().max()) > 0  # a complex mask, not a magnitude mask
    assert not torch.allclose(gains_real[:, 0], gains_real[:, 1])  # the query conditions it


def test_state_widths_are_the_core_and_head_widths(network):
    shapes = {name: tuple(t.shape) for name, t in network.init_state(3, 4).items()}
    assert shapes["separator_hidden"] == (SMALL.separator_layers, 3, SMALL.core_dim)
    assert shapes["extractor_cell"] == (SMALL.extractor_layers, 12, SMALL.head_dim)


@pytest.mark.parametrize("presence_gate", [False, True])
def test_chunked_steps_match_the_whole_signal_in_eda_mode(presence_gate):
    torch.manual_seed(1)
    network = build_network(dataclasses.replace(SMALL, presence_gate=presence_gate)).eval()
    mixture = 0.1 * torch.randn(1, 24 * 128)
    with torch.no_grad():
        whole = network(mixture)
        state = network.init_state(1, SMALL.max_sources)
        chunks = []
        for start, end in ((0, 1), (1, 6), (6, 24)):
            out, _, state = network.step(mixture[:, start * 128 : end * 128], None, state)
            chunks.append(out)
    streamed = torch.cat(chunks, dim=-1)[..., SMALL.window_samples - SMALL.hop_samples :]
    assert (whole.presence_logits is not None) == presence_gate
    torch.testing.assert_close(streamed, whole.sources, atol=1e-5, rtol=0)


def test_the_default_band_model_fits_the_compute_budget_with_every_eda_slot():
    config = ModelConfig(architecture="bandrnn")
    # Issue 20: at most ~300 M MAC/s separating all slots (v1 228, v2 395).
    assert macs_per_second(config, config.max_sources) <= 300e6
