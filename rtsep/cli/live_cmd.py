"""``rtsep live`` (microphone in, separated audio out) and ``rtsep devices``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from .common import (
    add_model_options,
    cli_command,
    effective_config,
    load_configured_model,
    untrained_warning,
)
from .control_cmd import add_control_options, control_server
from .separate_cmd import add_cue_options, engine_config_from

if TYPE_CHECKING:
    from ..engine.live import LiveSession

REFRESH_S = 0.25  # terminal view period (seconds)
BAR_CELLS = 20  # level bar width; it spans FLOOR_DB..0 dBFS
FLOOR_DB = -60.0


def register(commands: argparse._SubParsersAction) -> None:
    live = commands.add_parser(
        "live",
        help="separate a live input (microphone) to output channels in real time",
        description="Output channel k carries tracked source k (or cue k, then the residual "
        "when extracting). --monitor mixes chosen outputs to a stereo pair instead. A terminal "
        "view shows levels, labels, latency, real-time factor, deadline misses and xruns; "
        "Ctrl-C stops. With --control, other programs steer the running engine (cues, mode, "
        "gains) over ZeroMQ: rtsep ctl, rtsep bridge osc, or any client of docs/protocol.md.",
    )
    live.add_argument(
        "--input",
        dest="io_input",
        metavar="DEV",
        help="input device: index or name substring (see 'rtsep devices'); default: [io] "
        "input in the config, else the system default",
    )
    live.add_argument("--output", dest="io_output", metavar="DEV", help="output device")
    live.add_argument(
        "--blocksize",
        dest="engine_blocksize",
        type=int,
        metavar="FRAMES",
        help="device block size, 32..4096 frames",
    )
    live.add_argument(
        "--samplerate",
        dest="engine_samplerate",
        type=int,
        metavar="HZ",
        help="device sample rate (default: the input device's)",
    )
    add_cue_options(live)
    live.add_argument(
        "--monitor",
        type=_outputs,
        metavar="K[,K...]",
        help="mix these outputs to a stereo pair (for a 2-channel device)",
    )
    live.add_argument(
        "--audio",
        dest="io_audio",
        choices=("rtmixer", "sounddevice"),
        help="audio callback: rtmixer (C, no Python per callback; default: [io] audio in the "
        "config) or sounddevice (a Python callback, the fallback)",
    )
    live.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after this long (default: run until Ctrl-C)",
    )
    add_model_options(live)
    add_control_options(live)
    live.set_defaults(run=run_live)

    devices = commands.add_parser("devices", help="list audio devices (index, channels, rate)")
    devices.set_defaults(run=run_devices)


def _outputs(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give output numbers like 0 or 0,2") from None


def run_devices(args: argparse.Namespace) -> int:
    from ..engine.audio_io import list_devices

    print(list_devices())
    return 0


@cli_command
def run_live(args: argparse.Namespace) -> int:
    from ..engine.audio_io import default_samplerate_hz, describe_device, find_device, max_channels
    from ..engine.live import LiveSession
    from ..engine.runtime import Engine, tune_for_real_time

    config = effective_config(args)
    input_device = find_device(config["io"]["input"], "input")  # before the slow model load
    output_device = find_device(config["io"]["output"], "output")
    rate_hz = config["engine"]["samplerate"] or default_samplerate_hz(input_device)
    model = load_configured_model(config)
    print(untrained_warning(model), end="")
    extracting = bool(args.cues) and args.mode != "separate"
    engine_config = engine_config_from(
        config, device_rate_hz=rate_hz, residual=extracting and args.mode != "remove"
    )
    engine = Engine(model, engine_config, args.cues, args.mode)
    device_outputs = max_channels(output_device, "output")
    if args.monitor is None and engine.channels > device_outputs:
        raise ValueError(
            f"{engine.channels} outputs to play but output device {output_device} "
            f"({describe_device(output_device)}) has {device_outputs} channel(s): hear chosen "
            f"outputs on a stereo pair with --monitor, e.g. --monitor 0,1"
        )
    with (
        control_server(engine, args, config),
        LiveSession(
            engine,
            input_device,
            output_device,
            monitor=args.monitor,
            audio_backend=config["io"]["audio"],
            worker_priority=config["io"]["worker_priority"],
        ) as session,
    ):
        print(_header(session), flush=True)
        tune_for_real_time()  # everything loaded: gc.freeze, short GIL slices
        elapsed = _run(session, args.duration, sys.stdout if sys.stdout.isatty() else None)
    print(_summary(session, elapsed))
    return 0


def _run(session: LiveSession, duration_s: float | None, terminal: TextIO | None) -> float:
    """Run until ``duration_s`` has passed or Ctrl-C; returns the seconds run.

    Raises ``AudioDeviceLost`` (one line) within ~1.25 s of the device going away; the
    caller's exit then does not wait for PortAudio, which would hang."""
    view = TerminalView(terminal) if terminal is not None else None
    session.start()
    if session.realtime_note:  # the OS refused real-time scheduling: the audio runs anyway
        print(f"rtsep live note: {session.realtime_note}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        while duration_s is None or time.monotonic() - started < duration_s:
            remaining = (
                REFRESH_S if duration_s is None else duration_s - (time.monotonic() - started)
            )
            time.sleep(max(0.0, min(REFRESH_S, remaining)))
            session.check_device()
            if view is not None:
                view.draw(render(session.status()))
    except KeyboardInterrupt:
        pass
    finally:
        elapsed_s = time.monotonic() - started
        session.stop()
    return elapsed_s


def _header(session: LiveSession) -> str:
    config = session.engine.config
    return (
        f"live: {session.input_name} -> {session.output_name}, {config.device_rate_hz} Hz, "
        f"{config.block_samples}-frame blocks, {session.engine.backend.name}, "
        f"{session.audio_backend} audio; "
        f"{_latency(session.latency.as_dict())}. Ctrl-C stops."
    )


def _latency(latency: dict) -> str:
    return (
        f"latency {latency['total_ms']:.1f} ms (engine {latency['engine_ms']:.1f} "
        f"+ device {latency['device_ms']:.1f})"
    )


def _summary(session: LiveSession, elapsed_s: float) -> str:
    stats = session.engine.stats.snapshot()
    return (
        f"stopped after {elapsed_s:.1f} s: {stats['deadline_misses']} deadline misses, "
        f"{session.counters().xruns} xruns, {stats['dropped_samples']} samples dropped, "
        f"real-time factor {stats['real_time_factor']:.3f} (compute per chunk p99 "
        f"{stats['compute_ms_p99']:.2f} ms, max {stats['compute_ms_max']:.2f} ms), "
        f"{_latency(session.latency.as_dict())}"
    )


def render(status: dict) -> list[str]:
    """The terminal view of a ``LiveSession.status()``: a line of settings, one line per
    output (number, label, level bar, level in dBFS, monitor side), a line of counters."""
    live, stats = status["live"], status["stats"]
    monitor = live["monitor"] or []
    lines = [
        f"{status['mode']}  cues: {', '.join(status['cues']) or '-'}  "
        f"{status['device_rate_hz']} Hz  block {status['block_samples']}  {status['backend']}",
        " out  label                 level",
    ]
    for output in status["outputs"]:
        level_db = output["level_db"]
        filled = round(BAR_CELLS * min(1.0, max(0.0, 1.0 - level_db / FLOOR_DB)))
        bar = "#" * filled + "." * (BAR_CELLS - filled)
        heard = "  (monitor)" if output["index"] in monitor else ""
        label = (output["label"] or "-")[:20]
        lines.append(f"{output['index']:4d}  {label:<20}  {bar} {level_db:6.1f} dB{heard}")
    found = status["sources_found"]
    lines.append(
        f"sources found {'-' if found is None else found}  {_latency(live['latency'])}  "
        f"RTF {stats['real_time_factor']:.3f}  deadline misses {stats['deadline_misses']}  "
        f"xruns {live['xruns']}"
    )
    return lines


class TerminalView:
    """Redraws a block of lines in place with ANSI cursor moves."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines = 0

    def draw(self, lines: list[str]) -> None:
        """Replace the previously drawn lines with ``lines``."""
        up = f"\x1b[{self._lines}F" if self._lines else ""
        self._stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
        self._stream.flush()
        self._lines = len(lines)
