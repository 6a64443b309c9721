"""Growing model v1 deeper keeps its streamed outputs, and its new layers learn at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rtsep
from rtsep.engine import Streamer
from rtsep.model.growth import grown


@pytest.fixture(scope="module")
def models() -> tuple[rtsep.Model, rtsep.Model]:
    old = rtsep.load_model()
    return old, grown(old, old.config.separator_layers + 1, old.config.extractor_layers + 1)


def test_the_grown_network_has_more_layers_and_the_same_outputs(models):
    old, new = models
    assert new.config.separator_layers == old.config.separator_layers + 1
    assert len(new.network.masks.lstms) == old.config.extractor_layers + 1
    mixture = 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    for cues in (None, ["speech", "music"]):
        streamed_old = Streamer(old, cues, backend="torch").process(mixture)
        streamed_new = Streamer(new, cues, backend="torch").process(mixture)
        np.testing.assert_allclose(streamed_new, streamed_old, atol=1e-6)
    assert new.metadata["growth"][-1]["to"]["separator_layers"] == new.config.separator_layers


def test_the_new_layers_get_a_gradient_at_once(models):
    _, new = models
    network = new.network.train()
    mixture = 0.1 * torch.randn(1, 16 * new.hop_samples)
    network(mixture).sources.square().mean().backward()
    cell_gate = network.separator.lstms[-1].weight_ih_l0.grad
    assert cell_gate is not None and float(cell_gate.abs().sum()) > 0
    network.zero_grad()
    network.eval()


def test_growing_cannot_remove_layers(models):
    old, _ = models
    with pytest.raises(ValueError, match="cannot remove"):
        grown(old, 1, 1)
