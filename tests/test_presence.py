"""The cue-presence gate: added to trained weights it changes nothing audible, it learns from
its own loss, and its targets follow the cued class's onset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import rtsep
from rtsep.engine import Streamer
from rtsep.model import ModelConfig, build_network
from rtsep.model.growth import with_presence_gate
from rtsep.model.presence import INITIAL_GAIN, OPEN_LOGIT
from rtsep.train.losses import presence_loss


def without_gate(model: rtsep.Model) -> rtsep.Model:
    """``model``'s weights in a network without a presence gate (the shipped one has one)."""
    network = build_network(dataclasses.replace(model.config, presence_gate=False))
    weights = {k: v for k, v in model.network.state_dict().items() if ".presence." not in k}
    network.load_state_dict(weights)
    return rtsep.Model(network)


@pytest.fixture(scope="module")
def models() -> tuple[rtsep.Model, rtsep.Model]:
    old = without_gate(rtsep.load_model())
    return old, with_presence_gate(old)


def test_a_new_gate_is_a_constant_gain_on_every_output(models):
    old, new = models
    gain = float(torch.sigmoid(torch.tensor(OPEN_LOGIT)))
    assert INITIAL_GAIN == pytest.approx(gain, abs=1e-7)
    mixture = 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    for cues in (None, ["speech", "a dog barking"]):
        streamed_old = Streamer(old, cues, backend="torch").process(mixture)
        streamed_new = Streamer(new, cues, backend="torch").process(mixture)
        np.testing.assert_allclose(streamed_new, gain * streamed_old, atol=1e-6)
    assert new.metadata["growth"][-1]["presence_gate"]["initial_gain"] == pytest.approx(gain)
    with pytest.raises(ValueError, match="already has"):
        with_presence_gate(new)


def test_the_gate_gets_a_gradient_from_the_presence_loss(models):
    _, new = models
    network = new.network.train()
    hop = new.hop_samples
    mixture = 0.1 * torch.randn(2, 20 * hop)
    out = network(mixture, new.cue_queries(["speech", "env"]).expand(2, -1, -1))
    assert out.presence_logits.shape == (2, 2, 20)
    onsets = torch.tensor([[0, 20 * hop], [5 * hop, 0]])
    presence_loss(out.presence_logits, onsets, hop).backward()
    gradient = network.masks.presence.logit.weight.grad
    assert gradient is not None and float(gradient.abs().sum()) > 0
    network.zero_grad()
    network.eval()


def test_presence_targets_start_at_the_frame_that_hears_the_onset():
    hop = 128
    onsets = torch.tensor([[0, 3 * hop - 1, 3 * hop, 10 * hop]])  # 10 frames: the last absent
    target = torch.tensor(
        [[[1.0] * 10, [0, 0, 1] + [1] * 7, [0, 0, 0] + [1] * 7, [0.0] * 10]]
    )  # frame t hears samples < (t + 1) * hop
    right = 30 * (2 * target - 1)
    assert float(presence_loss(right, onsets, hop)) < 1e-6
    assert float(presence_loss(-right, onsets, hop)) > 10


def test_a_network_without_a_gate_reports_no_presence():
    torch.manual_seed(0)
    network = build_network(ModelConfig(architecture="dualpath"))
    assert network(0.1 * torch.randn(1, 8 * 128)).presence_logits is None
    gated = build_network(dataclasses.replace(network.config, presence_gate=True))
    out = gated(0.1 * torch.randn(1, 8 * 128), network.cues.embed_labels(torch.tensor([[0]])))
    assert out.presence_logits.shape == (1, 1, 8)
