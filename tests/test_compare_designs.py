"""Designs compared at equal training time: two tiny candidates, validated on both validations
at the same training-time marks, in one table and one PNG."""

from __future__ import annotations

import json
from pathlib import Path

from synthetic_corpus import HELD_OUT, SOUNDS, write_corpus

from rtsep.train.compare import learning_curves, plot_curves, render_table, train_candidates

RECIPE = """
validation_sources = {held_out}
model = {{architecture = "{architecture}"}}
batch_size = 2
segment_seconds = 1.0
max_sources = 3
source_count_weights = [1.0, 2.0, 1.0]
stage1_steps = 2
stage2_steps = 100000
checkpoint_every = 100000
validation_mixtures = 2
"""


def test_candidates_train_for_equal_time_and_share_the_marks(tmp_path: Path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, SOUNDS, 16000)
    recipes = []
    for architecture in ("lstm", "dualpath"):
        recipe = tmp_path / f"{architecture}.toml"
        held_out = json.dumps(sorted(HELD_OUT))
        recipe.write_text(RECIPE.format(held_out=held_out, architecture=architecture))
        recipes.append(recipe)
    minutes, every = 0.06, 0.02  # 3.6 s of training each, marks every 1.2 s
    candidates = train_candidates(
        recipes, corpus=str(corpus), runs_root=tmp_path / "runs", minutes=minutes,
        mark_minutes=every, parallel=2,
    )  # fmt: skip
    assert [c.name for c in candidates] == ["lstm", "dualpath"]
    for candidate in candidates:
        curves = learning_curves(candidate.run_dir)
        assert len(curves["minutes"]) >= 3  # the marks and the end
        assert curves["minutes"] == sorted(curves["minutes"])
        assert curves["minutes"][0] >= every and curves["minutes"][-1] >= minutes
        assert curves["minutes"][-1] < minutes + every  # stopped at the budget
        assert curves["audio_s_per_s"] > 0
        assert all(v is not None for v in curves["scenes_count_accuracy"])  # scenes validated
    table = render_table(candidates)
    assert "| lstm |" in table and "| dualpath |" in table
    assert "scenes: label SI-SNRi (dB)" in table and "split: EDA SI-SNRi (dB)" in table
    plot_curves(candidates, tmp_path / "compare.png")
    assert (tmp_path / "compare.png").stat().st_size > 10_000
