"""Write quality results as JSON plus a Markdown table beside it."""

from __future__ import annotations

import json
from pathlib import Path

#: Where ``rtsep evaluate`` writes by default (relative to the working directory).
DEFAULT_RESULTS = Path("benchmarks") / "results" / "quality.json"


def write_results(results: dict, json_path: str | Path = DEFAULT_RESULTS) -> tuple[Path, Path]:
    """Write ``results`` to ``json_path`` and its Markdown rendering to the same path with
    the suffix ``.md``; creates the folder. Returns ``(json_path, markdown_path)``."""
    json_path = Path(json_path)
    markdown_path = json_path.with_suffix(".md")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(render_markdown(results), encoding="utf-8")
    return json_path, markdown_path


def render_markdown(results: dict) -> str:
    """The results of :func:`rtsep.evaluate.evaluate_quality` as Markdown tables."""
    lines = ["# rtsep quality benchmark", "", *_header(results), ""]
    lines += _extraction_table(results["extraction"])
    lines += _rnnoise_table(results["extraction"])
    if "absent_cue" in results:  # results written before it was measured lack it
        lines += _absent_table(results["absent_cue"])
    lines += _separation_table(results["separation"])
    lines += _count_table(results["source_count"])
    lines += _matching_table(results["attractor_matching"])
    if "channel_consistency" in results:  # results written before it was measured lack it
        lines += _consistency_table(results["channel_consistency"])
    lines += _phrasing_table(results["extraction"])
    lines += ["## Rules", ""]
    lines += [f"- **{name}**: {rule}" for name, rule in results["rules"].items()]
    return "\n".join(lines) + "\n"


def _header(results: dict) -> list[str]:
    s = results["settings"]
    m = results["model"]
    trained = f"trained {m['training_steps']} steps" if m["trained"] else "UNTRAINED"
    commit = (results.get("git_commit") or "unknown")[:12]
    machine = results["machine"]
    return [
        f"- model: `{m['checkpoint'] or 'shipped weights'}` ({trained})",
        f"- streamed through `Streamer`, backend {s['backend']}, {s['threads']} thread(s)",
        f"- {s['mixtures_per_condition']} mixtures per condition, {s['segment_seconds']:g} s each,"
        f" seed {s['seed']}, validation sources: {', '.join(s['validation_sources'])}",
        f"- commit `{commit}`, {results['created_utc']}, wall time {results['wall_time_s']:g} s",
        f"- machine: {machine['processor']}, {machine['cpus']} CPUs, {machine['platform']}",
        "- values: dB, mean (median) over targets; the mean is sensitive to sources that"
        " are quiet in their mixture, whose improvements are large",
        f"- command: `{_command(results)}`",
    ]


def _command(results: dict) -> str:
    """The ``rtsep evaluate`` command line that reproduces ``results``."""
    s = results["settings"]
    words = ["rtsep evaluate", f"--corpus {s['corpus']}"]
    if results["model"]["checkpoint"]:
        words.append(f"--model {results['model']['checkpoint']}")
    words += [
        f"--mixtures {s['mixtures_per_condition']}",
        f"--seed {s['seed']}",
        f"--backend {s['backend']}",
        f"--threads {s['threads']}",
        f"--seconds {s['segment_seconds']:g}",
    ]
    return " ".join(words)


def _extraction_table(extraction: dict) -> list[str]:
    lines = [
        "## Extraction by cue (2-3 source mixtures)",
        "",
        "| Class | Mixtures | Label SI-SNRi | Text SI-SNRi | Text − label | Label SDRi"
        " | Text SDRi | Oracle IRM SI-SNRi | Oracle IRM SDRi |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in extraction.items():
        cells = [
            f"**{name}**" if name == "all" else name,
            str(row["mixtures"]),
            _stats(row["label_cue"]["si_snri_db"]),
            _stats(row["text_cue"]["si_snri_db"]),
            _db(row["text_minus_label_si_snri_db"], signed=True),
            _stats(row["label_cue"]["sdri_db"]),
            _stats(row["text_cue"]["sdri_db"]),
            _stats(row["oracle_irm"]["si_snri_db"]),
            _stats(row["oracle_irm"]["sdri_db"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _rnnoise_table(extraction: dict) -> list[str]:
    """The speech row beside RNNoise's, where the results carry it."""
    rows = [(name, row) for name, row in extraction.items() if "rnnoise" in row]
    if not rows:
        return []
    lines = [
        "## Speech extraction beside RNNoise (the same mixtures)",
        "",
        "| Class | Mixtures | rtsep label cue SI-SNRi | RNNoise SI-SNRi | rtsep − RNNoise"
        " | rtsep SDRi | RNNoise SDRi |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows:
        cells = [
            name,
            str(row["mixtures"]),
            _stats(row["label_cue"]["si_snri_db"]),
            _stats(row["rnnoise"]["si_snri_db"]),
            _stats(row["label_minus_rnnoise_si_snri_db"]),
            _stats(row["label_cue"]["sdri_db"]),
            _stats(row["rnnoise"]["sdri_db"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _absent_table(absent: dict) -> list[str]:
    lines = [
        "## Cue for an absent class: output level re the mixture (1-3 source mixtures)",
        "",
        "| Cue | Mixtures | Level, dB | At or below −20 dB |",
        "|---|---:|---:|---:|",
    ]
    for name, row in absent.items():
        cells = [
            f"**{name}**" if name == "all" else name,
            str(row["level_db"]["n"]),
            _stats(row["level_db"]),
            _percent(row["share_at_or_below_target"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _separation_table(separation: dict) -> list[str]:
    lines = [
        "## Separation, unknown count (no cues)",
        "",
        "| Sources | Mixtures | SI-SNRi | SDRi | Oracle IRM SI-SNRi | Oracle IRM SDRi"
        " | Missed sources | Extra estimates |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count, row in separation.items():
        cells = [
            count,
            str(row["mixtures"]),
            _stats(row["model"]["si_snri_db"]),
            _stats(row["model"]["sdri_db"]),
            _stats(row["oracle_irm"]["si_snri_db"]),
            _stats(row["oracle_irm"]["sdri_db"]),
            f"{row['missed_sources']} / {row['sources']}",
            str(row["extra_estimates"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _count_table(counting: dict) -> list[str]:
    confusion = counting["confusion"]
    found = confusion["found_counts"]
    lines = [
        f"## Source count: accuracy {_percent(counting['accuracy'])}"
        f" over {counting['mixtures']} mixtures",
        "",
        "| True \\ found | " + " | ".join(str(n) for n in found) + " | Accuracy |",
        "|---:|" + "---:|" * (len(found) + 1),
    ]
    for true, row in zip(confusion["true_counts"], confusion["matrix"], strict=True):
        accuracy = _percent(counting["accuracy_by_count"][str(true)])
        lines.append(f"| {true} | " + " | ".join(str(v) for v in row) + f" | {accuracy} |")
    return [*lines, ""]


def _matching_table(matching: dict) -> list[str]:
    confusion = matching["confusion"]
    lines = [
        f"## Attractor–cue matching: accuracy {_percent(matching['accuracy'])}"
        f" over {matching['attractors']} matched attractors",
        "",
        "| True class \\ nearest label | " + " | ".join(confusion["nearest_labels"]) + " |",
        "|---|" + "---:|" * len(confusion["nearest_labels"]),
    ]
    for true, row in zip(confusion["true_classes"], confusion["matrix"], strict=True):
        lines.append(f"| {true} | " + " | ".join(str(v) for v in row) + " |")
    return [*lines, ""]


def _consistency_table(consistency: dict) -> list[str]:
    lines = [
        f"## Channel consistency: {consistency['scenes']} scenes, one source throughout and"
        " one entering and leaving",
        "",
        "| Source | Sources | Consistency | Without a switch | Switches per source | Heard |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for role in ("throughout", "entering", "all"):
        row = consistency[role]
        cells = [
            f"**{role}**" if role == "all" else role,
            str(row["sources"]),
            _percent(row["consistency"]),
            _percent(row["without_switch"]),
            "–" if row["switches_per_source"] is None else f"{row['switches_per_source']:.2f}",
            _percent(row["heard_fraction"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _phrasing_table(extraction: dict) -> list[str]:
    lines = [
        "## Held-out text phrasings",
        "",
        "| Class | Phrasing | Mixtures | SI-SNRi |",
        "|---|---|---:|---:|",
    ]
    for name, row in extraction.items():
        for phrasing, stats in row.get("text_cue_si_snri_db_by_phrasing", {}).items():
            lines.append(f"| {name} | {phrasing} | {stats['n']} | {_stats(stats)} |")
    return [*lines, ""]


def _stats(stats: dict) -> str:
    """``mean (median)`` of a :func:`rtsep.evaluate.summarize` dict, in dB."""
    return "–" if stats["mean"] is None else f"{_db(stats['mean'])} ({_db(stats['median'])})"


def _db(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    value = round(value, 1) + 0.0  # no "-0.0"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"
