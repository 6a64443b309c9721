"""Where a model's scores come from: training versus held-out sources, per source, counting.

    python scripts/diagnose_model.py --corpus ../shared/corpus [--model CHECKPOINT]

Complements ``rtsep evaluate`` (the streamed benchmark) with three whole-signal views that
docs/model.md quotes, all on mixtures of 2-3 sources (3 s, seeds fixed below):

1. label-cue SI-SNRi per class on mixtures of training sources and of held-out sources
   (target: the sum of the cued class's sources; classes that are the whole mixture skipped);
2. per held-out source, label-cue SI-SNRi and the output level re the target (dB), for
   targets that are one source;
3. EDA existence probabilities at the last attractor grid point per true count (1-3), on
   training-source mixtures, and the count accuracy of single thresholds;
4. the level of a label cue's output for a class absent from a held-out mixture, re the
   mixture (dB; a user hears anything much above -20 dB);
5. the corpus's env files whose names say they are hurt, hit or death sounds (human and
   creature vocalisations, which the held-out speech also holds as "Ow", "Ooff", laughs).

``--model`` takes a model checkpoint (``best.pt``, the shipped file) or a run's ``last.pt``
(its network shape is read from the ``best.pt`` beside it); without it, the shipped weights.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

import numpy as np
import torch

from rtsep.data import Corpus, MixtureSimulator, split_entries
from rtsep.model import Model, load_model
from rtsep.train.losses import pairwise_neg_si_snr

SEED = 123
SEGMENT_SECONDS = 3.0
#: File names of vocal sound effects (e.g. human-hit-3, malehurt02, femaledeath04, die1).
VOCAL_NAME = re.compile(
    r"hurt|death|-die|__die|die\d|scream|laugh|groan|grunt|-hit-\d|-hit\.", re.IGNORECASE
)
#: ... except hits that are objects, not voices (sword-hit, firepunch_hit, rocket).
OBJECT_NAME = re.compile(r"sword|weapon|rocket|diesel|punch|arrow|axe|club|fist|bow", re.IGNORECASE)


def load(path: Path | None) -> Model:
    if path is None or path.name != "last.pt":
        return load_model(path)
    model = load_model(path.with_name("best.pt"))
    model.network.load_state_dict(torch.load(path, weights_only=False)["network"])
    return Model(model.network, {})


def gain_db(model: Model, mixture: np.ndarray, target: np.ndarray, label: str) -> tuple:
    """``(SI-SNRi dB, output level re target dB)`` of the label cue on one mixture."""
    hop = model.hop_samples
    x = torch.from_numpy(mixture[: len(mixture) // hop * hop])[None]
    with torch.no_grad():
        estimate = model.network(x, model.cue_queries([label])[None]).sources.double()
    length = estimate.shape[-1]
    reference = torch.from_numpy(target[:length]).double()[None, None]
    mix = x[:, None, :length].double()
    gain = float(pairwise_neg_si_snr(mix, reference) - pairwise_neg_si_snr(estimate, reference))
    level = 10 * np.log10(float((estimate**2).mean()) / float((reference**2).mean()))
    return gain, level


def simulator(corpus: Corpus, part: str, sources: tuple[int, int]) -> MixtureSimulator:
    return MixtureSimulator(
        split_entries(corpus, part, None),
        corpus=corpus,
        segment_seconds=SEGMENT_SECONDS,
        min_sources=sources[0],
        max_sources=sources[1],
        seed=SEED,
    )


def per_class(model: Model, corpus: Corpus, mixtures: int) -> None:
    for part in ("train", "validation"):
        mixes = simulator(corpus, part, (2, 3))
        gains = collections.defaultdict(list)
        for index in range(mixtures):
            item = mixes[index]
            for label in set(item.labels):
                chosen = [lab == label for lab in item.labels]
                if not all(chosen):
                    target = item.sources[chosen].sum(0)
                    gains[label].append(gain_db(model, item.mixture, target, label)[0])
        print(f"label-cue SI-SNRi, {part} sources, mean (median) dB over targets:")
        for label in model.labels:
            v = gains[label]
            print(f"  {label:8s} {np.mean(v):6.2f} ({np.median(v):6.2f})  n={len(v)}")


def per_source(model: Model, corpus: Corpus, mixtures: int) -> None:
    mixes = simulator(corpus, "validation", (2, 3))
    rows = collections.defaultdict(list)
    for index in range(mixtures):
        item = mixes[index]
        for k, label in enumerate(item.labels):
            if item.labels.count(label) == 1:
                source = Path(item.files[k]).parts[1]
                rows[source].append(gain_db(model, item.mixture, item.sources[k], label))
    print("held-out sources, label cue: SI-SNRi mean (median) dB, output level re target dB:")
    for source, values in sorted(rows.items()):
        v = np.array(values)
        print(
            f"  {source:18s} {v[:, 0].mean():6.2f} ({np.median(v[:, 0]):6.2f})"
            f"  level median {np.median(v[:, 1]):6.1f}  n={len(v)}"
        )


def counting(model: Model, corpus: Corpus, mixtures: int) -> None:
    rows = []
    for count in (1, 2, 3):
        mixes = simulator(corpus, "train", (count, count))
        for index in range(mixtures // 3):
            mixture = mixes[index].mixture
            x = torch.from_numpy(mixture[: len(mixture) // model.hop_samples * model.hop_samples])
            with torch.no_grad():
                logits = model.network(x[None]).existence_logits[0, -1]
            rows.append((count, torch.sigmoid(logits).numpy()[: model.config.max_sources]))
    print("training-source mixtures, existence probability per slot at the last grid point:")
    for count in (1, 2, 3):
        mean = np.mean([p for c, p in rows if c == count], axis=0)
        print(f"  {count} source(s): {np.round(mean, 2)}")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        right = np.mean([int(np.cumprod(p >= threshold).sum()) == c for c, p in rows])
        print(f"  threshold {threshold:.1f}: count accuracy {100 * right:.0f} %")


def absent_cues(model: Model, corpus: Corpus, mixtures: int) -> None:
    mixes = simulator(corpus, "validation", (1, 3))
    levels = collections.defaultdict(list)
    hop = model.hop_samples
    for index in range(mixtures):
        item = mixes[index]
        x = torch.from_numpy(item.mixture[: len(item.mixture) // hop * hop])[None]
        power = float((x.double() ** 2).mean())
        for label in sorted(set(model.labels) - set(item.labels)):
            with torch.no_grad():
                estimate = model.network(x, model.cue_queries([label])[None]).sources.double()
            levels[label].append(10 * np.log10(float((estimate**2).mean()) / power + 1e-12))
    print("held-out mixtures, label cue for an absent class: output level re mixture, dB:")
    for label in model.labels:
        v = levels[label]
        print(f"  {label:8s} mean {np.mean(v):6.1f}  median {np.median(v):6.1f}  n={len(v)}")


def vocal_sound_effects(corpus: Corpus) -> None:
    found = [
        entry
        for entry in corpus
        if entry.label == "env"
        and VOCAL_NAME.search(Path(entry.path).name)
        and not OBJECT_NAME.search(entry.path)
    ]
    minutes = sum(entry.duration_s for entry in found) / 60
    by_source = collections.Counter(entry.source for entry in found)
    print(f"env files named as hurt/hit/death sounds: {len(found)} ({minutes:.1f} min)")
    for source, count in by_source.most_common():
        print(f"  {source:18s} {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="corpus folder")
    parser.add_argument("--model", type=Path, help="checkpoint (default: the shipped weights)")
    parser.add_argument("--mixtures", type=int, default=60, help="mixtures per view (60)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load(args.model)
    corpus = Corpus(args.corpus)
    per_class(model, corpus, args.mixtures)
    per_source(model, corpus, args.mixtures + 20)
    counting(model, corpus, args.mixtures + 30)
    absent_cues(model, corpus, args.mixtures)
    vocal_sound_effects(corpus)


if __name__ == "__main__":
    main()
