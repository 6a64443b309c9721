"""One audio file through the streaming engine into a folder of stems and ``report.json``.

What ``rtsep separate``, ``rtsep demo`` and ``rtsep batch`` run (:func:`separate_to_folder`):
the file is read (:func:`read_input`), cues checked, the engine run in file mode
(:func:`rtsep.engine.file_runner.run_file`), one WAV written per output and the report last,
so a folder whose ``report.json`` lists files that are all there is a finished run.

``report.json`` holds: the input, rate and length; the final mode and cues and the
``cue_history`` (each cue set with the chunk it applied at: ``rtsep ctl set-cues`` during a
paced run shows here); latency; ``count`` (sources found: the source files written, or the
cues) and ``births``; ``files`` (every file written, report.json last); per output its file,
label (and ``label_history`` after cue changes), ``active_seconds`` under the stated
``activity`` rule and its level relative to the mixture; backend, threads, block size;
``nonfinite_samples`` replaced by 0; deadline misses and drops.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .config import engine_config_from

#: The shipped 8-second example (speech, music and crow calls).
EXAMPLE = Path(__file__).resolve().parent / "examples" / "example_mix.flac"


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
    from .engine.file_io import write_audio
    from .engine.file_runner import active_seconds, activity_rule, run_file

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
    for channel, name in _file_names(run, extracting, history):
        signal = run.outputs[channel]
        write_audio(out_dir / name, signal[None], rate, subtype="FLOAT")
        source = {
            "file": name,
            "output": channel,
            "label": run.labels[channel],
            "active_seconds": round(active_seconds(signal, rate, mixture), 3),
            "level_db_re_mixture": _level_re(signal, mixture),
        }
        if len(history) > 1:
            source["label_history"] = [
                {
                    "from_chunk": entry["chunk"],
                    "mode": entry["mode"],  # separate: the label is the tracked source's
                    "label": entry["outputs"][channel],
                }
                for entry in history
            ]
        sources.append(source)
    stats = engine.stats.snapshot()
    audio_seconds = audio.shape[1] / rate
    found = [s for s in sources if s["file"].startswith("source_")]
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
    from .engine.file_io import AudioFileError, read_audio

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


def _file_names(run, extracting: bool, history: list[dict]) -> list[tuple[int, str]]:
    """``(channel, file name)`` for every output that carried something at some point.

    Under the final cue set: ``cue_N.wav`` (cue on output N-1), ``residual.wav``,
    ``removed.wav``, or ``source_K.wav`` (the K-th output that carried a tracked source);
    an output that carried something only under an earlier cue set is ``output_N.wav``
    (its ``label_history`` says what). Outputs that never carried anything get no file.
    """
    born = {e["output"] for e in run.events if e.get("event") == "birth"}
    ever = [
        channel in born or any(entry["outputs"][channel] for entry in history)
        for channel in range(len(run.labels))
    ]
    names = []
    if extracting:
        for channel, label in enumerate(run.labels):
            if label == "residual":
                names.append((channel, "residual.wav"))
            elif label.startswith("mixture - "):
                names.append((channel, "removed.wav"))
            elif label:
                names.append((channel, f"cue_{channel + 1}.wav"))
            elif ever[channel]:
                names.append((channel, f"output_{channel + 1}.wav"))
        return names
    carried = [c for c, flag in enumerate(run.carried) if flag]
    names = [(channel, f"source_{rank + 1}.wav") for rank, channel in enumerate(carried)]
    names += [
        (c, f"output_{c + 1}.wav") for c, flag in enumerate(ever) if flag and c not in carried
    ]
    return sorted(names)


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


def plot_spectrograms(path: Path, mixture_path: Path, runs) -> None:
    """A PNG of spectrograms: the mixture, then every output of each ``(folder, report)``,
    16 ms windows at the file's rate, from 0 Hz to its Nyquist frequency (the stems keep the
    input's whole band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    mixture, rate = sf.read(mixture_path, dtype="float32")
    panels = [("mixture", mixture)]
    for folder, report in runs:
        for source in report["sources"]:
            audio, _ = sf.read(folder / source["file"], dtype="float32")
            panels.append((f"{folder.name}/{source['file']}  {source['label']}", audio))
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.6 * len(panels)), sharex=True)
    # A dither far below the colour scale: digital silence has no logarithm (matplotlib warned
    # "divide by zero" on the stems' silent lead-in), and a constant offset only fills DC.
    dither = np.random.default_rng(0)
    window = 2 * round(0.008 * rate)  # 16 ms, as the model's frames
    for axis, (title, audio) in zip(np.atleast_1d(axes), panels):
        floor = 1e-6 * dither.standard_normal(audio.shape).astype(np.float32)
        axis.specgram(
            audio + floor,
            NFFT=window,
            Fs=rate,
            noverlap=window // 2,
            cmap="magma",
            vmin=-120,
            vmax=-20,
        )
        axis.set_ylim(0, rate / 2)
        axis.set_title(title, fontsize=8, loc="left")
        axis.set_ylabel("Hz", fontsize=7)
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
