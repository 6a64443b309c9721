"""The two-stage training loop (USE): separation + EDA, then joint separation + extraction.

Stage 1 trains separation with EDA attractors as queries (onset-ordered PIT SI-SNR loss,
existence BCE, attractor–label alignment). Stage 2 draws, per batch, EDA attractors (a share
``eda_fraction``) or cue queries — label embeddings or projected sentence embeddings of one of
several phrasings per label — and adds the alignment of text cues to the label space.

A run lives in one folder: ``settings.json``, ``last.pt`` (resumable), ``best.pt`` (a model
checkpoint that :func:`rtsep.load_model` reads), ``log.jsonl`` and ``curves.png``.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..cues import TRAINING_PHRASINGS, shared_text_encoder
from ..data import (
    Corpus,
    MixtureSimulator,
    collate,
    split_entries,
    user_scenes,
    validation_sources,
)
from ..model import Model, ModelConfig, StreamingNetwork, build_network, load_model
from .clock import StopSignals, cpu_seconds
from .losses import (
    alignment_loss,
    existence_loss,
    onset_ordered_pit,
    pairwise_level_error_db,
    pairwise_neg_compressed_snr,
    pairwise_neg_si_snr,
    pairwise_neg_snr,
    presence_loss,
    silence_loss,
)
from .settings import TrainSettings

#: Per-pair signal losses selectable by ``TrainSettings.signal_loss``: ``(estimates [B, N, T],
#: targets [B, S, T], cap dB, level weight) -> [B, N, S]``.
SIGNAL_LOSSES = {
    "snr": lambda est, ref, cap, weight: pairwise_neg_snr(est, ref, cap),
    "si_snr": lambda est, ref, cap, weight: pairwise_neg_si_snr(est, ref, cap),
    "si_snr_level": lambda est, ref, cap, weight: (
        pairwise_neg_si_snr(est, ref, cap) + weight * pairwise_level_error_db(est, ref)
    ),
}


def training_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` (an error without CUDA) or ``"auto"`` (CUDA when available)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"training device {name!r} asked for, but torch sees no CUDA device")
    return torch.device(name)


class Trainer:
    def __init__(self, settings: TrainSettings) -> None:
        self.settings = s = settings
        torch.set_num_threads(s.threads)
        torch.manual_seed(s.seed)
        self.device = training_device(s.device)
        if s.signal_loss not in SIGNAL_LOSSES:
            raise ValueError(
                f"signal_loss must be one of {sorted(SIGNAL_LOSSES)}, not {s.signal_loss!r}"
            )
        waveform_loss = functools.partial(
            SIGNAL_LOSSES[s.signal_loss], cap=s.snr_cap_db, weight=s.level_weight
        )
        self.signal_loss = (
            waveform_loss
            if s.spectral_weight == 0
            else lambda est, ref: (
                waveform_loss(est, ref)
                + s.spectral_weight * pairwise_neg_compressed_snr(est, ref, s.snr_cap_db)
            )
        )
        self.run_dir = Path(s.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        s.save(self.run_dir / "settings.json")

        self.corpus = Corpus(s.corpus)
        common = dict(
            corpus=self.corpus,
            segment_seconds=s.segment_seconds,
            lowpass_probability=s.lowpass_probability,
            reverb_probability=s.reverb_probability,
        )
        held_out = s.validation_sources
        self.train_set = MixtureSimulator(
            split_entries(self.corpus, "train", held_out),
            min_sources=s.min_sources,
            max_sources=s.max_sources,
            count_weights=s.source_count_weights,
            speed_probability=s.speed_probability,
            partial_probability=s.partial_probability,
            gain_range_db=tuple(s.gain_range_db),
            repeat_probability=s.repeat_probability,
            seed=s.seed,
            **common,
        )
        self.validation_set = MixtureSimulator(
            split_entries(self.corpus, "validation", held_out),
            min_sources=1,
            max_sources=3,
            seed=10_000 + s.seed,
            length=s.validation_mixtures,
            **common,
        )
        self.scene_set = (
            user_scenes(
                split_entries(self.corpus, "validation", held_out),
                corpus=self.corpus,
                seed=20_000 + s.seed,
                length=s.scene_validation_mixtures,
            )
            if s.scene_validation_mixtures > 0
            else None
        )
        self.onset_tolerance = round(s.onset_tolerance_s * self.train_set.sample_rate)
        self.network = self._initial_network().to(self.device)
        self.labels = list(self.network.config.labels)
        self.phrasings = self._phrasing_embeddings()
        optimizer = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer(
            self.network.parameters(), lr=s.stage1_lr, weight_decay=s.weight_decay
        )
        self.average = (
            AveragedModel(self.network, multi_avg_fn=get_ema_multi_avg_fn(s.ema_decay))
            if s.ema_decay > 0
            else None
        )
        self.step = 0
        self.best_score = -float("inf")
        self.rng = np.random.default_rng(s.seed)
        self._resume()

    # ----------------------------------------------------------------- setup
    def _initial_network(self) -> StreamingNetwork:
        """The network to train; from ``init``, its ``"growth"`` record is kept for the models
        this run saves (how the shape came about outlives the stage that changed it). A run
        folder with a ``last.pt`` that records its network's config resumes that network,
        whatever ``init`` and ``model`` say now."""
        s = self.settings
        self.inherited_metadata: dict = {}
        last = self.run_dir / "last.pt"
        if last.exists():
            payload = torch.load(last, map_location="cpu", weights_only=False)
            if "config" in payload:
                self.inherited_metadata = payload.get("inherited_metadata", {})
                return build_network(ModelConfig.from_dict(payload["config"])).train()
        if s.init:
            model = load_model(None if s.init == "shipped" else s.init)
            if "growth" in model.metadata:
                self.inherited_metadata["growth"] = model.metadata["growth"]
            return model.network.train()
        return build_network(ModelConfig(**{"max_sources": s.max_sources, **s.model})).train()

    def _phrasing_embeddings(self) -> list[torch.Tensor]:
        """Sentence embeddings ``[phrasings, 384]`` per label, cached in the run folder."""
        cache = self.run_dir / "phrasings.pt"
        if cache.exists():
            return torch.load(cache)
        encoder = shared_text_encoder()
        table = [
            torch.from_numpy(encoder.encode(list(TRAINING_PHRASINGS[label])))
            for label in self.labels
        ]
        torch.save(table, cache)
        return table

    def _resume(self) -> None:
        last = self.run_dir / "last.pt"
        if not last.exists():
            return
        payload = torch.load(last, map_location=self.device, weights_only=False)
        try:
            self.network.load_state_dict(payload["network"])
        except RuntimeError as error:  # a last.pt from before the config was saved with it
            raise RuntimeError(
                f"{last} holds a different network than these settings build; give the --init"
                " (or model settings) the run started from"
            ) from error
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.average is not None and "average" in payload:
            self.average.load_state_dict(payload["average"])
        self.step = payload["step"]
        self.best_score = payload["best_score"]
        self.rng = np.random.default_rng([self.settings.seed, self.step])
        tqdm.write(f"resumed {last} at step {self.step}")

    # ----------------------------------------------------------------- loop
    def run(self) -> None:
        s = self.settings
        start = self.step
        loader = DataLoader(
            self.train_set,
            batch_size=s.batch_size,
            sampler=range(start * s.batch_size, s.total_steps * s.batch_size),
            collate_fn=functools.partial(collate, max_sources=s.max_sources, labels=self.labels),
            num_workers=s.loader_workers,
            prefetch_factor=4,
            pin_memory=self.device.type == "cuda",
        )
        bar = tqdm(
            loader, initial=start, total=s.total_steps, desc="train", unit="step", smoothing=0.05
        )
        started = time.time()
        cpu_started = cpu_seconds()
        self.validation_s = 0.0  # CPU time spent validating: not training time
        train_s = 0.0
        next_mark_s = s.validate_every_s
        with StopSignals() as stop:
            for host_batch in bar:
                record = self._train_step(host_batch, train_s)
                bar.set_postfix(stage=record["stage"], loss=f"{record['total']:.2f}",
                                mode=record["mode"])  # fmt: skip
                elapsed_s = time.time() - started
                self._log(record | {"elapsed_s": round(elapsed_s, 1)})
                train_s = cpu_seconds() - cpu_started - self.validation_s
                out_of_time = 0 < s.time_limit_s <= elapsed_s or 0 < s.train_time_limit_s <= train_s
                on_mark = 0 < next_mark_s <= train_s
                if on_mark:
                    next_mark_s += s.validate_every_s * (
                        1 + int((train_s - next_mark_s) // s.validate_every_s)
                    )
                ending = out_of_time or stop.requested
                if (
                    self.step % s.validate_every == 0
                    or self.step == s.total_steps
                    or ending
                    or on_mark
                ):
                    validating = cpu_seconds()
                    self._validate({"train_s": round(train_s, 1)})
                    self.validation_s += cpu_seconds() - validating
                if self.step % s.checkpoint_every == 0 or self.step == s.total_steps or ending:
                    self._checkpoint()
                if ending:
                    why = f"{stop.name} received" if stop.requested else "time limit reached"
                    tqdm.write(
                        f"stopped at step {self.step}: {why} ({train_s:.0f} CPU s of training)"
                    )
                    break

    def _train_step(self, host_batch: dict, train_s: float) -> dict:
        """One update on ``host_batch`` at the rate for this step and ``train_s`` CPU seconds
        of training so far; returns the step's log record (losses, step, stage, mode, lr)."""
        s = self.settings
        batch = {k: v.to(self.device, non_blocking=True) for k, v in host_batch.items()}
        stage = 1 if self.step < s.stage1_steps else 2
        lr = s.learning_rate(self.step, train_s)
        self._set_lr(lr)
        use_eda = stage == 1 or self.rng.random() < s.eda_fraction
        if use_eda:
            losses = self._eda_losses(batch)
        else:
            losses = self._cue_losses(batch, self._draw_cues(host_batch))
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), s.gradient_clip)
        self.optimizer.step()
        if self.average is not None:
            self.average.update_parameters(self.network)
        self.step += 1
        record = {k: round(v.item(), 4) for k, v in losses.items()}
        record.update(
            step=self.step, stage=stage, mode="eda" if use_eda else "cue", lr=float(f"{lr:.3g}")
        )
        return record

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # ----------------------------------------------------------------- losses
    def _eda_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s = self.settings
        net = self.network
        out = net(batch["mixture"])
        length = out.sources.shape[-1]
        targets = batch["sources"][..., :length]
        pairwise = self.signal_loss(out.sources, targets)
        separation, permutation = onset_ordered_pit(
            pairwise, batch["count"], batch["onsets"], self.onset_tolerance
        )
        heard = self._heard_counts(batch["onsets"], out.existence_logits.shape[1])
        existence = existence_loss(out.existence_logits, heard)
        # Align each real slot's final attractor with its source's label embedding.
        real = torch.arange(s.max_sources, device=self.device)[None, :] < batch["count"][:, None]
        final = out.attractors[:, -1, : s.max_sources]  # [B, S, E]
        slot_labels = torch.gather(batch["label_ids"], 1, permutation)
        alignment = alignment_loss(final[real], slot_labels[real], net.cues.labels.weight)
        total = separation.mean() + s.existence_weight * existence + s.alignment_weight * alignment
        losses = {
            "separation": separation.mean(),
            "existence": existence,
            "alignment": alignment,
        }
        if out.presence_logits is not None:
            # Output k's gate opens when its (onset-ordered) source begins; the outputs beyond
            # the count map to padding, which never begins, so their gates learn to close.
            slot_onsets = torch.gather(batch["onsets"], 1, permutation)
            hop = net.config.hop_samples
            losses["presence"] = presence_loss(out.presence_logits, slot_onsets, hop)
            total = total + s.presence_weight * losses["presence"]
        return {"total": total, **losses}

    def _heard_counts(self, onsets: torch.Tensor, grid_points: int) -> torch.Tensor:
        """``[B, G]``: sources begun by the end of the frame each attractor is decoded from."""
        c = self.network.config
        frame = torch.arange(grid_points, device=onsets.device) * c.attractor_interval_hops
        heard_until = (frame + 1) * c.hop_samples  # exclusive end sample of that frame
        return (onsets[:, None, :] < heard_until[None, :, None]).sum(-1)

    def _cue_losses(
        self, batch: dict[str, torch.Tensor], cues: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        s = self.settings
        net = self.network
        cues = {k: v.to(self.device) for k, v in cues.items()}
        queries = torch.where(
            cues["is_text"].unsqueeze(-1),
            net.cues.embed_text(cues["text"]),
            net.cues.embed_labels(cues["label_ids"]),
        )
        out = net(batch["mixture"], queries)
        length = out.sources.shape[-1]
        targets = cues["targets"][..., :length]
        present = cues["present"]
        per_cue = torch.diagonal(self.signal_loss(out.sources, targets), dim1=1, dim2=2)
        extraction = (per_cue * present).sum() / present.sum().clamp_min(1)
        silence = (silence_loss(out.sources, batch["mixture"][:, :length]) * ~present).sum()
        silence = silence / (~present).sum().clamp_min(1)
        heard = self._heard_counts(batch["onsets"], out.existence_logits.shape[1])
        existence = existence_loss(out.existence_logits, heard)
        text = cues["is_text"]
        alignment = alignment_loss(
            net.cues.embed_text(cues["text"][text]), cues["label_ids"][text], net.cues.labels.weight
        )
        total = (
            extraction
            + s.silence_weight * silence
            + s.existence_weight * existence
            + s.alignment_weight * alignment
        )
        losses = {
            "extraction": extraction,
            "silence": silence,
            "existence": existence,
            "alignment": alignment,
        }
        if out.presence_logits is not None:
            hop = net.config.hop_samples
            losses["presence"] = presence_loss(out.presence_logits, cues["onsets"], hop)
            total = total + s.presence_weight * losses["presence"]
        return {"total": total, **losses}

    def _draw_cues(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One or two cues per mixture: mostly classes present, sometimes an absent one.

        ``batch`` is on the host (the draw is numpy); so are the returned tensors. A cue's target
        is the sum of the mixture's sources of that class (silence if absent). A class that is
        the whole mixture is never cued: its target would be the mixture itself, and the
        near-perfect score of passing everything through outweighs every real extraction (a
        stage 2 on such cues learnt identity masks: 0.7 dB SI-SNRi by label after 10k steps).
        """
        s = self.settings
        rng = self.rng
        batch_size, _, length = batch["sources"].shape
        n = int(rng.integers(1, 3))
        label_ids = torch.zeros(batch_size, n, dtype=torch.int64)
        present = torch.zeros(batch_size, n, dtype=torch.bool)
        is_text = torch.from_numpy(rng.random((batch_size, n)) < s.text_cue_probability)
        text = torch.zeros(batch_size, n, self.phrasings[0].shape[1])
        targets = torch.zeros(batch_size, n, length)
        onsets = torch.full((batch_size, n), length, dtype=torch.int64)
        for b in range(batch_size):
            ids = batch["label_ids"][b, : batch["count"][b]]
            classes = np.unique(ids.numpy())
            here = [int(i) for i in rng.permutation(classes)] if len(classes) > 1 else []
            absent = [i for i in range(len(self.labels)) if i not in classes]
            for k in range(n):
                take_absent = absent and (not here or rng.random() < s.absent_cue_probability)
                label = absent.pop(int(rng.integers(len(absent)))) if take_absent else here.pop(0)
                label_ids[b, k] = label
                present[b, k] = not take_absent
                if present[b, k]:
                    targets[b, k] = batch["sources"][b, : len(ids)][ids == label].sum(0)
                    onsets[b, k] = batch["onsets"][b, : len(ids)][ids == label].min()
                table = self.phrasings[label]
                text[b, k] = table[int(rng.integers(len(table)))]
        return {
            "label_ids": label_ids,
            "present": present,
            "is_text": is_text,
            "text": text,
            "targets": targets,
            "onsets": onsets,
        }

    # ----------------------------------------------------------------- bookkeeping
    def export_model(self, path: Path) -> dict:
        """Save the weights as they stand (the average when kept) as a model file at ``path``,
        with their quick-validation scores (returned), as ``best.pt`` holds its weights."""
        scores = self.quick_validation()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._save_model(Path(path), scores)
        return scores

    def _validate(self, extra: dict | None = None) -> None:
        """Quick validation, logged with ``extra`` (e.g. the training time so far); the best
        scores so far are saved as ``best.pt``."""
        scores = self.quick_validation()
        score = self.settings.selection_score(scores)
        self._log({"step": self.step, **(extra or {}), **scores})
        tqdm.write(f"step {self.step}: {scores}")
        if score > self.best_score:
            self.best_score = score
            self._save_model(self.run_dir / "best.pt", scores)
        self._plot()

    @torch.no_grad()
    def quick_validation(self) -> dict:
        """Quick whole-signal scores on the held-out mixtures (the full evaluation is separate):
        ``validation_*`` on the split's mixtures and, when ``scene_validation_mixtures`` is set,
        ``scenes_*`` on the user scenes (``rtsep.data.scenes``).

        SI-SNRi in float64, uncapped. Mixtures of one source, and label cues whose class is the
        whole mixture, are skipped: the mixture is then its own target and there is no
        improvement to measure. EDA outputs are scored under the run's onset-order tolerance on
        the split and with no order on the scenes (their sources all start together).
        ``*_absent_db`` is the mean output level, in dB re the mixture, of a label cue for a
        class that is absent from the mixture. The best checkpoint is chosen by
        :meth:`TrainSettings.selection_score` of these scores.
        """
        network = self._scored_network().eval()
        scores = self._validation_scores(network, self.validation_set, "validation")
        if self.scene_set is not None:
            unordered = self.scene_set.segment_samples
            scores.update(self._validation_scores(network, self.scene_set, "scenes", unordered))
        self.network.train()
        return scores

    def _validation_scores(
        self,
        network: StreamingNetwork,
        mixtures: MixtureSimulator,
        prefix: str,
        tolerance_samples: int | None = None,
    ) -> dict:
        tolerance = self.onset_tolerance if tolerance_samples is None else tolerance_samples
        eda_gain, cue_gain, count_correct, absent_db = [], [], [], []
        for index in range(len(mixtures)):
            item = mixtures[index]
            batch = collate([item], max_sources=self.settings.max_sources, labels=self.labels)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            out = network(batch["mixture"])
            length = out.sources.shape[-1]
            targets = batch["sources"][..., :length].double()
            mixture = batch["mixture"][:, None, :length].double()
            n = int(batch["count"][0])
            existence = torch.sigmoid(out.existence_logits[0, -1])
            found = int((existence >= 0.5).int().cumprod(0).sum())
            count_correct.append(found == n)
            missing = [k for k, label in enumerate(self.labels) if label not in item.labels]
            if missing:
                ids = torch.tensor(missing[index % len(missing) :][:1], device=self.device)
                estimate = network(batch["mixture"], network.cues.embed_labels(ids)[None]).sources
                absent_db.append(float(silence_loss(estimate.double(), mixture[:, 0])[0, 0]))
            if n < 2:
                continue
            baseline = -torch.diagonal(
                pairwise_neg_si_snr(mixture.expand_as(targets), targets), dim1=1, dim2=2
            )
            loss, _ = onset_ordered_pit(
                pairwise_neg_si_snr(out.sources.double(), targets),
                batch["count"],
                batch["onsets"],
                tolerance,
            )
            eda_gain.append(float(-loss[0] - baseline[0, :n].mean()))
            for label in set(item.labels):
                chosen = [lab == label for lab in item.labels]
                if all(chosen):
                    continue
                ids = torch.tensor([self.labels.index(label)], device=self.device)
                query = network.cues.embed_labels(ids)[None]
                estimate = network(batch["mixture"], query).sources.double()
                target = torch.from_numpy(item.sources[chosen].sum(0)).to(self.device).double()
                target = target[None, None, :length]
                gain = pairwise_neg_si_snr(mixture, target) - pairwise_neg_si_snr(estimate, target)
                cue_gain.append(float(gain))
        return {
            f"{prefix}_eda_si_snri": round(float(np.mean(eda_gain)), 3) if eda_gain else None,
            f"{prefix}_label_si_snri": round(float(np.mean(cue_gain)), 3) if cue_gain else None,
            f"{prefix}_count_accuracy": round(float(np.mean(count_correct)), 3),
            f"{prefix}_absent_db": round(float(np.mean(absent_db)), 2) if absent_db else None,
        }

    def _scored_network(self) -> StreamingNetwork:
        """The weights that are validated and saved as a model: the average when kept."""
        return self.network if self.average is None else self.average.module

    def _save_model(self, path: Path, scores: dict) -> None:
        metadata = {
            "training": {
                "steps": self.step,
                "settings": json.loads((self.run_dir / "settings.json").read_text()),
                "validation_sources": sorted(
                    self.settings.validation_sources or validation_sources()
                ),
                "quick_validation": scores,
            },
            **self.inherited_metadata,
        }
        model = Model(self._scored_network(), metadata)
        tmp = path.with_suffix(".tmp")
        model.save(tmp, metadata)
        os.replace(tmp, path)
        self.network.train()

    def _checkpoint(self) -> None:
        payload = {
            "config": self.network.config.to_dict(),
            "inherited_metadata": self.inherited_metadata,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **({"average": self.average.state_dict()} if self.average is not None else {}),
            "step": self.step,
            "best_score": self.best_score,
        }
        tmp = self.run_dir / "last.tmp"
        torch.save(payload, tmp)
        os.replace(tmp, self.run_dir / "last.pt")

    def _log(self, record: dict) -> None:
        with (self.run_dir / "log.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def _plot(self) -> None:
        from .curves import plot_curves

        plot_curves(self.run_dir / "log.jsonl", self.run_dir / "curves.png")
