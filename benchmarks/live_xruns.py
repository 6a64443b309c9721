"""Live xrun benchmark: ``python -m benchmarks.live_xruns [options]`` from the repository root.

Runs ``rtsep live`` on a JACK dummy-driver server (``--rate``, default 48 kHz; ``--period``,
default 128 frames; block = period) extracting one cue, with ``jack_metro`` (a C client)
playing into its input, for ``--seconds`` (default 60), once per audio backend (``--audio``,
default both: rtmixer's C callback, then sounddevice's Python callback; ``none``: jack_metro
alone, the baseline of what the loaded machine does to JACK). Per run it records
what ``rtsep live`` reports when stopped (deadline misses, PortAudio xruns, dropped samples),
the server's own count of late cycles ("Process error") and which clients it named as late,
plus the load average before and after. Writes ``live_xruns.json`` and ``live_xruns.md`` to
``--out``. Numbers, not a test: the machine's load decides much of them; nothing fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.live_jack import (
    JackDummy,
    end_all,
    patch_metro_into_live,
    start_live,
    start_metro,
    stop_live,
    summary_counts,
    write_results,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.live_xruns", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rate", type=int, default=48000, help="device rate, Hz")
    parser.add_argument("--period", type=int, default=128, help="JACK period = block, frames")
    parser.add_argument("--seconds", type=float, default=60.0, help="per run (default 60)")
    parser.add_argument(
        "--audio",
        nargs="+",
        default=["rtmixer", "sounddevice"],
        choices=("rtmixer", "sounddevice", "none"),
        help="backends to run; none: jack_metro alone (what the machine does to JACK)",
    )
    parser.add_argument(
        "--config", type=Path, help="a TOML file for rtsep live (e.g. [engine] safety_ms)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    runs = [
        run_one(args.rate, args.period, args.seconds, audio, args.config) for audio in args.audio
    ]
    results = {"rate_hz": args.rate, "period_frames": args.period, "runs": runs}
    write_results("live_xruns", argv or sys.argv[1:], results, markdown, args.out)
    return 0


def run_one(
    rate_hz: int, period: int, seconds: float, audio: str, config: Path | None = None
) -> dict:
    server = JackDummy(rate_hz, period)
    metro = live = None
    try:
        metro = start_metro(server)
        with tempfile.TemporaryDirectory() as folder:
            log_path = Path(folder) / "live.log"
            if audio != "none":
                live, _ = start_live(server, log_path, audio, config)
                patch_metro_into_live(server)
            before = server.counts()
            load_before = os.getloadavg()
            time.sleep(seconds)
            load_after = os.getloadavg()
            after = server.counts()
            code = stop_live(live) if live is not None else None
            text = log_path.read_text() if live is not None else ""
    finally:
        end_all(server, live, metro)
    late = {
        client: count - before["late_clients"].get(client, 0)
        for client, count in after["late_clients"].items()
        if count > before["late_clients"].get(client, 0)
    }
    header = next((line for line in text.splitlines() if line.startswith("live: ")), "")
    return {
        "audio": audio,
        "config": None if config is None else config.read_text(),
        "exit_code": code,
        "seconds_requested": seconds,
        "live": summary_counts(text),
        "jack_process_errors": after["process_errors"] - before["process_errors"],
        "jack_late_clients": late,
        "header": header,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }


def markdown(results: dict) -> str:
    lines = [
        f"# rtsep live on JACK: {results['rate_hz']} Hz, {results['period_frames']}-frame "
        "periods, jack_metro playing in",
        "",
        f"`{results['command']}` — {results['date']}, commit {results['machine']['git_commit']}, "
        f"{results['machine']['cpu']} ({results['machine']['cores']} cores). "
        + results["machine"]["note"]
        + ".",
        "",
        "| audio | seconds | deadline misses | xruns (PortAudio) | samples dropped | "
        "JACK late cycles | late clients named by jackd | load 1-min before → after |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for run in results["runs"]:
        live = run["live"] or {}
        late = ", ".join(f"{c} {n}" for c, n in run["jack_late_clients"].items()) or "-"
        lines.append(
            f"| {run['audio']} | {live.get('seconds', '?')} | {live.get('deadline_misses', '?')} "
            f"| {live.get('xruns', '?')} | {live.get('dropped_samples', '?')} "
            f"| {run['jack_process_errors']} | {late} "
            f"| {run['load_before'][0]} → {run['load_after'][0]} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
