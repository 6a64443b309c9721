"""Write quality results as JSON plus a Markdown table beside it."""

from __future__ import annotations

import json
from collections.abc import Callable
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


def combine_validations(by_validation: dict[str, dict]) -> dict:
    """One results document holding :func:`rtsep.evaluate.evaluate_quality`'s results for
    several validations (``{"split": ..., "scenes": ...}``), rendered side by side."""
    return {"benchmark": "quality", "validations": by_validation}


def render_markdown(results: dict) -> str:
    """The results of :func:`rtsep.evaluate.evaluate_quality` (or of several validations,
    :func:`combine_validations`) as Markdown tables."""
    if "validations" not in results:
        return "\n".join(["# rtsep quality benchmark", "", *_body(results)]) + "\n"
    validations = results["validations"]
    lines = ["# rtsep quality benchmark", "", *_side_by_side(validations)]
    for name, single in validations.items():
        lines += [f"# Validation: {name}", "", *_body(single)]
    return "\n".join(lines) + "\n"


def _headlines() -> list[tuple[str, Callable[[dict], str]]]:
    """The headline figures compared across validations: ``(row title, cell of a results)``."""

    def extraction(label: str, method: str = "label_cue"):
        return lambda r: _stats(r["extraction"][label][method]["si_snri_db"])

    def absent(label: str):
        return lambda r: _stats(r["absent_cue"][label]["level_db"]) if "absent_cue" in r else "–"

    def separation(n: str):
        return lambda r: _stats(r["separation"][n]["model"]["si_snri_db"])

    def stems(n: str):
        def cell(r: dict) -> str:
            row = r["separation"][n]
            return f"{row['mixture_stems']} / {row['mixtures']}" if "mixture_stems" in row else "–"

        return cell

    def peer(key: str):
        def cell(r: dict) -> str:
            speech = r["extraction"].get("speech", {})
            difference = speech.get(f"label_minus_{key}_si_snri_db")
            return "–" if difference is None else _stats(difference)

        return cell

    def consistency(r: dict) -> str:
        return (
            _percent(r["channel_consistency"]["all"]["consistency"])
            if "channel_consistency" in r
            else "–"
        )

    return [
        ("label cue, speech", extraction("speech")),
        ("label cue, music", extraction("music")),
        ("label cue, env", extraction("env")),
        ("text cue, all", extraction("all", "text_cue")),
        (
            "text − label, all",
            lambda r: _db(r["extraction"]["all"]["text_minus_label_si_snri_db"], signed=True),
        ),
        ("absent cue, speech (dB re mixture)", absent("speech")),
        ("absent cue, music", absent("music")),
        ("absent cue, env", absent("env")),
        ("speech: label cue − RNNoise", peer("rnnoise")),
        ("speech: label cue − DeepFilterNet3", peer("dfn3")),
        ("separation, 2 sources", separation("2")),
        ("separation, 3 sources", separation("3")),
        ("stems like the mixture, 2 sources", stems("2")),
        ("stems like the mixture, 3 sources", stems("3")),
        ("source count, 1-3 sources", lambda r: _percent(r["source_count"]["accuracy"])),
        ("one source → one stem", lambda r: _percent(r["source_count"]["accuracy_by_count"]["1"])),
        ("attractor–label matching", lambda r: _percent(r["attractor_matching"]["accuracy"])),
        ("channel consistency", consistency),
    ]


def _side_by_side(validations: dict[str, dict]) -> list[str]:
    names = list(validations)
    lines = [
        "## Both validations side by side",
        "",
        "SI-SNRi and levels in dB, mean (median); the sections below hold every table.",
        "",
        "| measure | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for title, cell in _headlines():
        lines.append(f"| {title} | " + " | ".join(cell(validations[n]) for n in names) + " |")
    return [*lines, ""]


def _body(results: dict) -> list[str]:
    """Every table of one validation's results, under its header."""
    lines = [*_header(results), ""]
    lines += _extraction_table(results["extraction"])
    lines += _peer_table(results["extraction"])
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
    return [*lines, ""]


def _header(results: dict) -> list[str]:
    s = results["settings"]
    m = results["model"]
    trained = f"trained {m['training_steps']} steps" if m["trained"] else "UNTRAINED"
    validation = s.get("validation", "split")
    commit = (results.get("git_commit") or "unknown")[:12]
    machine = results["machine"]
    return [
        f"- model: `{m['checkpoint'] or 'shipped weights'}` ({trained})",
        f"- streamed through `Streamer`, backend {s['backend']}, {s['threads']} thread(s)",
        f"- validation `{validation}`: {s['mixtures_per_condition']} mixtures per condition,"
        f" {s['segment_seconds']:g} s each, seed {s['seed']}, validation sources:"
        f" {', '.join(s['validation_sources'])}",
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
        f"--validation {s.get('validation', 'split')}",
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


#: The speech peers a results file may carry: key → name in the tables.
PEER_NAMES = {"rnnoise": "RNNoise", "dfn3": "DeepFilterNet3"}


def _peer_table(extraction: dict) -> list[str]:
    """The speech row beside each peer's (RNNoise, DeepFilterNet3), where the results carry
    them."""
    lines = []
    for name, row in extraction.items():
        for key, title in PEER_NAMES.items():
            if key not in row:
                continue
            if not lines:
                lines = [
                    "## Speech extraction beside the peers (the same mixtures)",
                    "",
                    "| Class | Peer | Mixtures | rtsep label cue SI-SNRi | Peer SI-SNRi"
                    " | rtsep − peer | rtsep SDRi | Peer SDRi |",
                    "|---|---|---:|---:|---:|---:|---:|---:|",
                ]
            cells = [
                name,
                title,
                str(row["mixtures"]),
                _stats(row["label_cue"]["si_snri_db"]),
                _stats(row[key]["si_snri_db"]),
                _stats(row[f"label_minus_{key}_si_snri_db"]),
                _stats(row["label_cue"]["sdri_db"]),
                _stats(row[key]["sdri_db"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""] if lines else []


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
        " | Missed sources | Extra estimates | Stems like the mixture |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
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
            str(row.get("mixture_stems", "–")),  # results written before it was measured lack it
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
