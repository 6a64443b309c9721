"""Free-text cues: the offline sentence encoder and its cache."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import rtsep
from rtsep.cues import TextEncoder
from rtsep.model import UnknownCueError


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


def test_speech_is_closer_to_someone_talking_than_to_an_explosion(encoder):
    speech, talking, explosion = encoder.encode(["speech", "someone talking", "an explosion"])
    assert speech @ talking > speech @ explosion


def test_embeddings_are_unit_length_384_dims_and_cached(encoder):
    vectors = encoder.encode(["a dog barking", "rain on a roof"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.cached("a dog barking")
    again = encoder.encode(["a dog barking"])
    np.testing.assert_array_equal(again[0], vectors[0])


def test_label_cues_do_not_import_transformers():
    code = (
        "import sys, rtsep; rtsep.load_model().cue_queries(['speech', 'MUSIC', 'label:env']);"
        "print('transformers' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("cue", ["", "   ", "label:violin", "x" * 500])
def test_unusable_cues_raise_a_clear_error(cue):
    model = rtsep.load_model()
    with pytest.raises(UnknownCueError):
        model.cue_queries([cue])


def test_attractors_are_named_by_cosine_similarity_not_by_dot_product():
    import torch

    model = rtsep.load_model()
    e = np.eye(model.config.embedding_dim, dtype=np.float32)
    table = np.stack([e[0], 10.0 * (e[0] + e[1]) / np.sqrt(2.0), -e[0]])  # one label per row
    with torch.no_grad():
        model.network.cues.labels.weight.copy_(torch.from_numpy(table))
    attractors = np.stack([e[0] + 0.2 * e[1], 3.0 * e[1], -e[0] + 0.1 * e[1]])
    # By dot product the long second label would win the first row; by angle it is the first.
    expected = [model.labels[0], model.labels[1], model.labels[2]]
    assert model.attractor_labels(attractors) == expected
    assert model.attractor_labels(torch.from_numpy(attractors)) == expected
    directions = model.label_directions()
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0, rtol=1e-6)
    assert model.attractor_labels(attractors, directions) == expected
