"""``rtsep separate`` and ``rtsep demo``: files through the streaming engine."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..config import engine_config_from  # live_cmd imports it from here too
from .common import (
    add_model_options,
    cli_command,
    effective_config,
    load_configured_model,
    untrained_warning,
)
from .control_cmd import add_control_options, control_server

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "example_mix.flac"
#: ``--backend``: checked with the configuration (rtsep.config), against the entry points.
BACKEND_HELP = "auto, torch, onnxruntime or a plugin's backend (rtsep info lists them)"


def register(commands: argparse._SubParsersAction) -> None:
    separate = commands.add_parser(
        "separate",
        help="separate an audio file into stems through the streaming engine",
        description="Without cues, every source found gets a file (source_1.wav, ...). With "
        "--cue, each cue gets one (cue_1.wav, ...) plus residual.wav (the mixture minus the "
        "cues). Outputs have the input's rate and length, sample-aligned with it; report.json "
        "says what was found.",
    )
    separate.add_argument(
        "mix", help="input audio file (any format libsndfile reads; downmixed to mono)"
    )
    separate.add_argument("--out", metavar="DIR", help="output folder (default: <mix name>_stems)")
    add_engine_options(separate)
    add_control_options(separate)
    separate.set_defaults(run=run_separate)

    demo = commands.add_parser(
        "demo",
        help="separate the shipped example mixture (no sound card needed) and report",
        description="Runs the shipped 8-second example (speech, music and crow calls) through "
        "the engine twice: separating every source found, then extracting by label cues. "
        "Writes the stems and a PNG of spectrograms.",
    )
    demo.add_argument(
        "--out", metavar="DIR", default="rtsep-demo", help="output folder (default: rtsep-demo)"
    )
    add_model_options(demo)
    demo.add_argument("--backend", dest="engine_backend", metavar="NAME", help=BACKEND_HELP)
    demo.set_defaults(run=run_demo)


def add_cue_options(parser: argparse.ArgumentParser) -> None:
    """``--cue``, ``--mode``, ``--backend`` and ``--threads``: shared by separate and live."""
    parser.add_argument(
        "--cue",
        action="append",
        dest="cues",
        metavar="CUE",
        help="a label (speech, music, env) or free text; repeat for several",
    )
    parser.add_argument(
        "--mode",
        choices=("separate", "extract", "remove"),
        help="default: extract with cues, separate without",
    )
    parser.add_argument("--backend", dest="engine_backend", metavar="NAME", help=BACKEND_HELP)
    parser.add_argument("--threads", dest="engine_threads", type=int, help="backend CPU threads")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    add_cue_options(parser)
    parser.add_argument(
        "--blocksize",
        dest="engine_blocksize",
        type=int,
        metavar="FRAMES",
        help="host block size, 32..4096 frames",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="pace the file at the audio rate, as a live device would",
    )
    add_model_options(parser)


def separate_to_folder(
    model,
    mix_path: Path,
    out_dir: Path,
    cues,
    mode,
    config: dict,
    realtime: bool = False,
    progress: bool = True,
    on_start=None,
    audio: tuple[np.ndarray, int] | None = None,
) -> dict:
    """Run one file through the engine and write stems + report.json; returns the report.

    ``audio``: the file already read (``read_input(mix_path)``), else it is read here. Raises
    ``ValueError`` (bad cues, a file with no finite sample) or ``OSError`` (an unwritable
    folder) before anything is written; the report is written last, so a folder without
    ``report.json`` is an unfinished run.
    """
    from ..engine.file_io import write_audio
    from ..engine.file_runner import active_seconds, activity_rule, run_file

    audio, rate = audio if audio is not None else read_input(mix_path)
    check_cues(cues)
    for cue in cues or []:
        model.validate_cue(cue)
    _check_writable(out_dir)
    extracting = bool(cues) and mode != "separate"
    engine_config = engine_config_from(config, residual=extracting and mode != "remove")
    run = run_file(
        model,
        audio,
        rate,
        engine_config,
        cues or None,
        mode,
        realtime=realtime,
        progress=progress and audio.shape[1] > 5 * rate,
        on_start=on_start,
    )
    engine = run.engine
    history = cue_history(run, list(cues or []), mode)
    final = history[-1]
    extracting = final["mode"] != "separate"
    mixture = np.nan_to_num(audio.mean(axis=0), nan=0.0, posinf=0.0, neginf=0.0)
    sources = []
    for channel, name in _file_names(run, extracting):
        signal = run.outputs[channel]
        write_audio(out_dir / name, signal[None], rate, subtype="FLOAT")
        source = {
            "file": name,
            "output": channel,
            "label": run.labels[channel],
            "active_seconds": round(active_seconds(signal, rate, mixture), 3),
            "level_db_re_mixture": _level_re(signal, mixture),
        }
        if len(history) > 1 and extracting:
            source["label_history"] = [
                {"from_chunk": entry["chunk"], "label": entry["outputs"][channel]}
                for entry in history
            ]
        sources.append(source)
    stats = engine.stats.snapshot()
    audio_seconds = audio.shape[1] / rate
    found = [s for s in sources if s["label"] != "residual" and s["file"] != "removed.wav"]
    report = {
        "input": str(mix_path),
        "sample_rate": rate,
        "seconds": round(audio_seconds, 3),
        "downmixed_from_channels": audio.shape[0] if audio.shape[0] > 1 else None,
        "mode": final["mode"],
        "cues": final["cues"],
        "cue_history": [{k: v for k, v in e.items() if k != "outputs"} for e in history],
        "latency_samples": round(engine.latency.total_samples, 2),
        "latency_ms": round(engine.latency.total_ms, 2),
        # Sources found (separate: outputs that carried a tracked source; extract: cues).
        "count": len(final["cues"]) if extracting else len(found),
        "births": run.sources_tracked if not extracting else None,
        "files": [s["file"] for s in sources] + ["report.json"],
        "sources": sources,
        "activity": activity_rule(),
        "rtf": round(engine.stats.compute_seconds_total / audio_seconds, 4),
        "backend": engine.backend.name,
        "threads": engine.config.threads,
        "block_samples": engine.config.block_samples,
        "realtime": realtime,
        "nonfinite_samples": run.nonfinite_samples + int(stats.get("nonfinite_samples", 0)),
        "deadline_misses": stats["deadline_misses"],
        "dropped_samples": stats["dropped_samples"],
        "dropped_chunks": stats["dropped_chunks"],
        "model_trained": model.trained,
    }
    _write_json(out_dir / "report.json", report)
    return report


def read_input(path: Path) -> tuple[np.ndarray, int]:
    """The mixture ``[channels, frames]`` and its rate; ``ValueError`` for a file that cannot
    be read or whose every sample is NaN or infinite (non-finite samples among finite ones are
    replaced by 0 and counted later: :func:`rtsep.engine.file_runner.run_file`)."""
    from ..engine.file_io import AudioFileError, read_audio

    try:
        audio, rate = read_audio(path)
    except AudioFileError as error:
        raise ValueError(str(error)) from None
    if not np.isfinite(audio).any():
        raise ValueError(f"every sample of {path} is NaN or infinite: nothing to separate")
    return audio, rate


def check_cues(cues) -> None:
    """``ValueError`` for a cue given twice (compared without case, as the engine does)."""
    seen: dict[str, str] = {}
    for cue in cues or []:
        key = cue.strip().casefold()
        if key in seen:
            twice = repr(cue) if seen[key] == cue else f"{seen[key]!r} and {cue!r}"
            raise ValueError(f"cue {twice} given twice (cues are compared without case)")
        seen[key] = cue


def cue_history(run, cues: list[str], mode: str | None) -> list[dict]:
    """The cue sets of a run in order: ``{"chunk", "mode", "cues", "outputs"}`` each, from
    the start (chunk 0) and then every cue or mode change at the chunk it applied (the one
    whose output is the crossfade). ``outputs``: what each channel carried from then on."""
    engine = run.engine
    start_mode = mode or ("extract" if cues else "separate")
    history = [{"chunk": 0, "mode": start_mode, "cues": list(cues)}]
    for event in run.events:
        if event.get("event") == "cues_applied":
            history.append(
                {
                    "chunk": event["chunk"],
                    "mode": event["mode"],
                    "cues": list(event["cues"]),
                    "switch_ms": round(event["switch_ms"], 2),
                }
            )
    for entry in history:
        entry["outputs"] = _labels_for(
            entry["mode"], entry["cues"], engine.channels, engine.config.residual
        )
    return history


def _labels_for(mode: str, cues: list[str], channels: int, residual: bool) -> list[str]:
    """What each output carries under one cue set (as ``Engine.output_labels``)."""
    if mode == "separate":
        labels = []
    elif mode == "remove":
        labels = ["mixture - " + " - ".join(cues)]
    else:
        labels = list(cues) + (["residual"] if residual else [])
    return (labels + [""] * channels)[:channels]


def _level_re(signal: np.ndarray, mixture: np.ndarray) -> float | None:
    """Energy of ``signal`` relative to ``mixture``, dB (None for a silent mixture)."""
    mix = float(np.sum(mixture.astype(np.float64) ** 2))
    if mix == 0.0:
        return None
    return round(10 * np.log10(float(np.sum(signal.astype(np.float64) ** 2)) / mix + 1e-12), 1)


def _file_names(run, extracting: bool) -> list[tuple[int, str]]:
    if extracting:
        names = []
        for channel, label in enumerate(run.labels):
            if label == "residual":
                names.append((channel, "residual.wav"))
            elif label.startswith("mixture - "):
                names.append((channel, "removed.wav"))
            else:
                names.append((channel, f"cue_{channel + 1}.wav"))
        return names
    carried = [c for c, flag in enumerate(run.carried) if flag]
    return [(channel, f"source_{rank + 1}.wav") for rank, channel in enumerate(carried)]


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rtsep-write-test"):
            pass
    except OSError as error:
        raise OSError(
            f"cannot write to output folder {folder}: {error.strerror or error}"
        ) from None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _describe(report: dict, out_dir: Path) -> str:
    lines = [f"{report['mode']}: {len(report['sources'])} output(s) in {out_dir}/"]
    for source in report["sources"]:
        lines.append(
            f"  {source['file']:<14} {source['label'] or '-':<28} "
            f"active {source['active_seconds']:.2f} s"
        )
    threads = report["threads"]
    lines.append(f"  active: {report['activity']}")
    lines.append(
        f"  latency {report['latency_samples']:g} samples ({report['latency_ms']:.1f} ms), "
        f"real-time factor {report['rtf']:.3f} "
        f"({report['backend']}, {threads} thread{'' if threads == 1 else 's'})"
    )
    if len(report["cue_history"]) > 1:
        lines.append(f"  cue changes: {len(report['cue_history']) - 1} (report.json: cue_history)")
    if report["deadline_misses"] or report["dropped_samples"]:
        lines.append(
            f"  deadline misses {report['deadline_misses']}, "
            f"dropped {report['dropped_samples']} samples"
        )
    return "\n".join(lines)


def _warn_nonfinite(command: str, report: dict) -> None:
    count = report["nonfinite_samples"]
    if count:
        print(
            f"rtsep {command}: warning: {count} non-finite sample(s) (NaN/Inf) in "
            f"{report['input']} replaced by 0 (report.json: nonfinite_samples)",
            file=sys.stderr,
        )


@cli_command
def run_separate(args: argparse.Namespace) -> int:
    config = effective_config(args)
    mix = Path(args.mix)
    out_dir = Path(args.out) if args.out else mix.with_name(mix.stem + "_stems")
    if args.control is not None and not args.realtime:
        raise ValueError("--control needs --realtime (an unpaced file finishes before any command)")
    check_cues(args.cues)
    audio = read_input(mix)  # before the model loads: a bad file is a quick error
    model = load_configured_model(config)
    print(untrained_warning(model), end="")
    with contextlib.ExitStack() as servers:
        report = separate_to_folder(
            model,
            mix,
            out_dir,
            args.cues,
            args.mode,
            config,
            args.realtime,
            on_start=lambda engine: servers.enter_context(control_server(engine, args, config)),
            audio=audio,
        )
    _warn_nonfinite("separate", report)
    print(_describe(report, out_dir))
    return 0


@cli_command
def run_demo(args: argparse.Namespace) -> int:
    config = effective_config(args)
    model = load_configured_model(config)
    out_dir = Path(args.out)
    print(untrained_warning(model), end="")
    print(f"example: {EXAMPLE.name} (8 s at 16 kHz: speech, music, crow calls; CC-BY-SA-3.0)")
    found = separate_to_folder(
        model, EXAMPLE, out_dir / "sources", None, None, config, progress=False
    )
    print(_describe(found, out_dir / "sources"))
    cues = ["speech", "music", "env"]
    extracted = separate_to_folder(
        model, EXAMPLE, out_dir / "cues", cues, "extract", config, progress=False
    )
    print(_describe(extracted, out_dir / "cues"))
    png = out_dir / "demo.png"
    _plot(png, [(out_dir / "sources", found), (out_dir / "cues", extracted)])
    print(f"spectrograms: {png}")
    return 0


def _plot(path: Path, runs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    mixture, rate = sf.read(EXAMPLE, dtype="float32")
    panels = [("mixture", mixture)]
    for folder, report in runs:
        for source in report["sources"]:
            audio, _ = sf.read(folder / source["file"], dtype="float32")
            panels.append((f"{folder.name}/{source['file']}  {source['label']}", audio))
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.6 * len(panels)), sharex=True)
    # A dither far below the colour scale: digital silence has no logarithm (matplotlib warned
    # "divide by zero" on the stems' silent lead-in), and a constant offset only fills DC.
    dither = np.random.default_rng(0)
    for axis, (title, audio) in zip(np.atleast_1d(axes), panels):
        floor = 1e-6 * dither.standard_normal(audio.shape).astype(np.float32)
        axis.specgram(
            audio + floor, NFFT=256, Fs=rate, noverlap=128, cmap="magma", vmin=-120, vmax=-20
        )
        axis.set_title(title, fontsize=8, loc="left")
        axis.set_ylabel("Hz", fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
