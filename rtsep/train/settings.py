"""Settings of one training run, read from a TOML file and saved beside its checkpoints."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import tomllib

LR_SCHEDULES = ("constant", "cosine", "cosine_time")
OPTIMIZERS = ("adam", "adamw")


@dataclass
class TrainSettings:
    """Everything that defines a run. Durations in steps; audio in seconds."""

    corpus: str = "../shared/corpus"  # folder with manifest.csv (the corpus README's format)
    validation_sources: list[str] | None = None  # held-out sources; None = the recorded split
    run_dir: str = "runs/default"  # checkpoints, log.jsonl, curves.png, settings.json
    init: str = ""  # checkpoint to start from ("" = random; "shipped" = the packaged weights)
    seed: int = 0
    # ModelConfig fields of a network trained from scratch (e.g. {architecture = "lstm"});
    # empty = the ModelConfig defaults. Ignored with ``init``: the checkpoint fixes the shape.
    model: dict = field(default_factory=dict)
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda when available)
    threads: int = 1  # torch intra-op threads (2 on 2 cores oversubscribes with the loader)
    loader_workers: int = 1  # processes simulating mixtures
    time_limit_s: float = 0.0  # stop (validated and checkpointed) after this wall time; 0 = none
    # stop the same way after this much training time: CPU seconds of the trainer and its loader
    # workers, validation excluded (rtsep.train.clock); 0 = none. Designs compared at equal
    # compute get equal CPU time, however long they validate or stand paused.
    train_time_limit_s: float = 0.0
    batch_size: int = 8
    segment_seconds: float = 2.0
    min_sources: int = 1
    max_sources: int = 4
    # Relative frequency of each source count min..max. Few one-source mixtures: they teach
    # counting and "pass it through", but separation is learnt from the others.
    source_count_weights: list[float] | None = field(default_factory=lambda: [0.1, 0.4, 0.3, 0.2])
    # Training scenes (MixtureSimulator): share of sources cut to start/stop inside the segment,
    # relative gains (dB), share of short files repeated with pauses
    partial_probability: float = 0.5
    gain_range_db: list[float] = field(default_factory=lambda: [-10.0, 10.0])
    repeat_probability: float = 0.0
    # EDA outputs follow onset order, except between sources whose onsets lie closer than this
    # (seconds): either order then (see losses.onset_ordered_pit)
    onset_tolerance_s: float = 0.0
    snr_cap_db: float = 30.0  # soft cap on the (SI-)SNR a training pair can earn (see losses)
    # "snr" (scores the level too), "si_snr" (scale-invariant) or "si_snr_level" (SI-SNR for
    # the shape plus level_weight x the level error in dB)
    signal_loss: str = "snr"
    level_weight: float = 0.5
    # plus this weight x the negative SNR (dB) of the compressed spectrum (|X|^0.3 magnitude and
    # complex, losses.pairwise_neg_compressed_snr), capped at snr_cap_db too; 0 = off
    spectral_weight: float = 0.0
    stage1_steps: int = 2000  # separation + EDA
    stage2_steps: int = 5000  # joint separation + extraction
    stage1_lr: float = 1e-3
    stage2_lr: float = 5e-4
    # "constant"; "cosine": stage 2's rate falls along a half cosine from stage2_lr to
    # lr_floor * stage2_lr at its last step; "cosine_time": the same along the training time
    # budget (train_time_limit_s), for runs compared at equal CPU time. Stage 1 stays constant.
    lr_schedule: str = "constant"
    lr_floor: float = 0.1
    # the rate rises linearly from 0 over the first warmup_steps updates (a run from scratch)
    warmup_steps: int = 0
    optimizer: str = "adam"  # "adam" or "adamw" (decoupled weight decay)
    weight_decay: float = 0.0
    eda_fraction: float = 0.3  # stage 2: share of batches that use EDA attractors as queries
    absent_cue_probability: float = 0.15  # stage 2: a cue for a class not in the mixture
    text_cue_probability: float = 0.5  # stage 2: a cue given as text rather than a label
    existence_weight: float = 10.0
    alignment_weight: float = 2.0
    silence_weight: float = 0.3
    # Presence BCE (networks with a presence gate only): cue outputs against "the cued class has
    # begun", EDA outputs against "this output's source has begun" (never, past the count)
    presence_weight: float = 2.0
    gradient_clip: float = 5.0
    # Exponential moving average of the weights, updated every step (0 = off). When on, the
    # average is what validation scores and best.pt holds: small batches make the raw weights
    # wander between checkpoints (per-class label scores moved by several dB).
    ema_decay: float = 0.0
    # best.pt is chosen by EDA + label SI-SNRi (dB) minus this weight per dB that the absent-cue
    # output lies above absent_target_db (0 = the SI-SNRi sum alone)
    absent_selection_weight: float = 0.0
    absent_target_db: float = -20.0
    checkpoint_every: int = 250
    validate_every: int = 500
    # also validate each time this much training wall time (seconds, validation excluded) has
    # passed: the marks at which designs are compared at equal compute (0 = off)
    validate_every_s: float = 0.0
    validation_mixtures: int = 64
    # user-like scenes of the held-out sources (rtsep.data.scenes), validated beside the split;
    # when on, best.pt is chosen by the sum of both validations' scores. 0 = off
    scene_validation_mixtures: int = 0
    lowpass_probability: float = 0.3
    reverb_probability: float = 0.0
    speed_probability: float = 0.0  # training mixtures only (MixtureSimulator.speed_range)

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}"
            )
        if self.lr_schedule == "cosine_time" and self.train_time_limit_s <= 0:
            raise ValueError("lr_schedule 'cosine_time' needs a train_time_limit_s budget")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}"
            )

    @classmethod
    def load(cls, path: str | Path | None, **overrides) -> TrainSettings:
        values: dict = {}
        if path:
            with Path(path).open("rb") as handle:
                values.update(tomllib.load(handle))
        values.update({k: v for k, v in overrides.items() if v is not None})
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @property
    def total_steps(self) -> int:
        return self.stage1_steps + self.stage2_steps

    def selection_score(self, scores: dict) -> float:
        """The figure best.pt maximises, from :meth:`Trainer.quick_validation`'s scores: EDA +
        label SI-SNRi (dB) of the split, plus those of the user scenes when validated, less the
        absent-cue charge. A figure with nothing to score (None) counts 0."""
        names = ["validation_label_si_snri", "validation_eda_si_snri"]
        if "scenes_eda_si_snri" in scores:
            names += ["scenes_label_si_snri", "scenes_eda_si_snri"]
        score = sum(scores[name] or 0.0 for name in names)
        absent = scores.get("validation_absent_db")
        if absent is not None:
            score -= self.absent_selection_weight * max(0.0, absent - self.absent_target_db)
        return score

    def learning_rate(self, step: int, train_s: float = 0.0) -> float:
        """The rate for the update that follows ``step`` finished updates, ``train_s`` CPU
        seconds of training into the run (read by "cosine_time" only)."""
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        if step < self.stage1_steps:
            return warmup * self.stage1_lr
        if self.lr_schedule == "constant":
            return warmup * self.stage2_lr
        if self.lr_schedule == "cosine_time":
            progress = min(1.0, train_s / self.train_time_limit_s)
        else:
            progress = min(1.0, (step - self.stage1_steps) / max(1, self.stage2_steps - 1))
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return warmup * self.stage2_lr * (self.lr_floor + (1.0 - self.lr_floor) * shape)
