"""``rtsep separate`` and ``rtsep demo``: files through the streaming engine."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .common import add_model_options, effective_config, load_configured_model, untrained_warning
from .control_cmd import add_control_options, control_server

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "example_mix.flac"


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
    demo.add_argument("--backend", dest="engine_backend", choices=("auto", "torch", "onnxruntime"))
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
    parser.add_argument(
        "--backend", dest="engine_backend", choices=("auto", "torch", "onnxruntime")
    )
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


def engine_config_from(config: dict, **overrides):
    from ..engine.runtime import EngineConfig

    engine, tracker = config["engine"], config["tracker"]
    return EngineConfig(
        block_samples=engine["blocksize"],
        backend=engine["backend"],
        threads=engine["threads"],
        chunk_hops=engine["chunk_hops"],
        safety_hops=engine["safety_hops"],
        match_threshold=tracker["match_threshold"],
        birth_decodes=tracker["birth_decodes"],
        death_decodes=tracker["death_decodes"],
        **overrides,
    )


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
) -> dict:
    """Run one file through the engine and write stems + report.json; returns the report."""
    from ..engine.file_io import read_audio, write_audio
    from ..engine.file_runner import active_seconds, run_file

    audio, rate = read_audio(mix_path)
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
    sources = []
    names = _file_names(run, extracting)
    for channel, name in names:
        write_audio(out_dir / name, run.outputs[channel : channel + 1], rate, subtype="FLOAT")
        sources.append(
            {
                "file": name,
                "label": run.labels[channel],
                "active_seconds": round(active_seconds(run.outputs[channel], rate), 3),
            }
        )
    stats = run.engine.stats.snapshot()
    audio_seconds = audio.shape[1] / rate
    report = {
        "input": str(mix_path),
        "sample_rate": rate,
        "downmixed_from_channels": audio.shape[0] if audio.shape[0] > 1 else None,
        "mode": run.engine.mode,
        "cues": list(cues or []),
        "latency_samples": round(run.engine.latency.total_samples, 2),
        "latency_ms": round(run.engine.latency.total_ms, 2),
        "count": run.sources_tracked if not extracting else len(cues),
        "sources": sources,
        "rtf": round(run.engine.stats.compute_seconds_total / audio_seconds, 4),
        "backend": run.engine.backend.name,
        "block_samples": run.engine.config.block_samples,
        "deadline_misses": stats["deadline_misses"],
        "dropped_samples": stats["dropped_samples"],
        "model_trained": model.trained,
    }
    _write_json(out_dir / "report.json", report)
    return report


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
    lines.append(
        f"  latency {report['latency_samples']:g} samples ({report['latency_ms']:.1f} ms), "
        f"real-time factor {report['rtf']:.3f} ({report['backend']}, one thread)"
    )
    return "\n".join(lines)


def run_separate(args: argparse.Namespace) -> int:
    from ..engine.file_io import AudioFileError

    config = effective_config(args)
    mix = Path(args.mix)
    out_dir = Path(args.out) if args.out else mix.with_name(mix.stem + "_stems")
    model = load_configured_model(config)
    print(untrained_warning(model), end="")
    if args.control is not None and not args.realtime:
        raise ValueError("--control needs --realtime (an unpaced file finishes before any command)")
    with contextlib.ExitStack() as servers:
        try:
            report = separate_to_folder(
                model,
                mix,
                out_dir,
                args.cues,
                args.mode,
                config,
                args.realtime,
                on_start=lambda engine: servers.enter_context(control_server(engine, args, config)),
            )
        except AudioFileError as error:
            raise ValueError(str(error)) from None
    print(_describe(report, out_dir))
    return 0


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
