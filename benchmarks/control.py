"""Control benchmark: ``python -m benchmarks.control [options]`` from the repository root.

Starts ``rtsep separate MIX --realtime --control ENDPOINT`` (the engine paced like a sound
card, its control server on 127.0.0.1) in a child process, lets it settle (``--control`` warms
the text encoder up in the background at start, which costs CPU) and measures, as a client
would:

1. cue-switch latency: ``set_cues`` alternating between two cue sets, each time waiting for
   ``status.applied_version`` and reading ``last_switch_latency_ms`` (the server's receipt of
   the command to the engine writing the first output that reflects it, queued output
   included: docs/protocol.md);
2. control round trip: sequential ``ping`` calls with :class:`rtsep.bindings.Client`;
3. load: ``rate`` commands per second (ping, status, set_gain, stats in turn) for
   ``seconds``, pipelined on one DEALER socket; replies counted and timed.

The engine's deadline misses, dropped chunks and overruns are read per phase (``reset_stats``
before each). Writes ``control.json`` and ``control.md`` into ``--out``; see
``benchmarks/README.md``. Numbers, not a test: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf
import zmq

from rtsep.bench.latency import example_audio
from rtsep.bench.machine import dated_folder, free_port, machine_facts
from rtsep.bindings import Client, ControlTimeout
from rtsep.bindings.protocol import encode_request

CUE_SETS = (("speech", "music"), ("music", "env"))  # the switches alternate between these
LOAD_COMMANDS = (
    ("ping", {}),
    ("status", {}),
    ("set_gain", {"output": 0, "db": 0.0}),
    ("stats", {}),
)
RATE_HZ = 16000  # the mixture's sample rate (the model's: no resampling in the engine)
PHASE_COUNTERS = ("deadline_misses", "dropped_chunks", "overruns")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.control", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--switches", type=int, default=24, help="cue switches (default 24)")
    parser.add_argument("--pings", type=int, default=1000, help="sequential pings (default 1000)")
    parser.add_argument("--rate", type=int, default=1000, help="load, commands/s (default 1000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration, s (default 10)")
    parser.add_argument(
        "--settle", type=float, default=10.0, help="idle seconds before measuring (default 10)"
    )
    parser.add_argument("--port", type=int, default=0, help="command port (default: a free one)")
    parser.add_argument("--backend", choices=("auto", "torch", "onnxruntime"), default="auto")
    parser.add_argument("--blocksize", type=int, help="host block, frames (default: config)")
    parser.add_argument(
        "--out",
        type=Path,
        help="results folder (default: a new bench-control-DATE-TIME folder here; "
        "benchmarks/results refreshes the committed results)",
    )
    args = parser.parse_args(argv)
    args.out = args.out or dated_folder("bench-control")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rtsep-bench-control-") as tmp:
        engine, endpoint = start_engine(Path(tmp), args)
        try:
            results = measure(endpoint, args)
        except (ControlTimeout, OSError):
            print((Path(tmp) / "engine.log").read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            engine.send_signal(signal.SIGINT)
            engine.wait(timeout=30)
    results["machine"] = machine_facts() | {"load_before": load_before}
    results["machine"]["load_after"] = os.getloadavg()
    results["command"] = shlex.join(["python", "-m", "benchmarks.control", *(argv or sys.argv[1:])])
    results["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "control.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "control.md").write_text(markdown_report(results))
    print(markdown_report(results))
    return 0


def start_engine(folder: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """Write a mixture long enough for every phase and start the paced engine on it."""
    seconds = 30 + args.settle + 0.5 * args.switches + 0.01 * args.pings + 2 * args.seconds
    mix = folder / "mix.wav"
    sf.write(mix, example_audio(RATE_HZ, seconds)[0], RATE_HZ)
    endpoint = f"tcp://127.0.0.1:{args.port or free_port()}"
    command = [sys.executable, "-m", "rtsep.cli.main", "separate", str(mix), "--realtime"]
    command += ["--out", str(folder / "stems"), "--backend", args.backend]
    command += ["--control", endpoint, "--telemetry", "tcp://127.0.0.1:*"]
    command += [word for cue in CUE_SETS[0] for word in ("--cue", cue)]
    if args.blocksize:
        command += ["--blocksize", str(args.blocksize)]
    with open(folder / "engine.log", "w") as log:  # the child keeps its own copy open
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), endpoint


def measure(endpoint: str, args: argparse.Namespace) -> dict:
    """Idle, switches, pings and load against the running engine; returns the results
    without the machine facts."""
    with Client(endpoint, timeout_s=60.0, retries=0) as client:
        client.ping()  # waits out the model load
        status = client.status()
        phases = {}
        client.reset_stats()
        time.sleep(args.settle)
        phases["settle"] = phase_counters(client)
        switch_ms = measure_switches(client, args.switches)
        phases["switches"] = phase_counters(client)
        ping_ms = [timed_ms(client.ping) for _ in range(args.pings)]
        phases["pings"] = phase_counters(client)
        load = measure_load(endpoint, args.rate, args.seconds)
        phases["load"] = phase_counters(client)
    return {
        "engine": {
            "backend": status["backend"],
            "latency_ms": status["latency_ms"],
            **status["engine"],
        },
        "settle_s": args.settle,
        "switch_latency_ms": summary(switch_ms) | {"values": switch_ms},
        "ping_round_trip_ms": summary(ping_ms),
        "load": load,
        "engine_counters": phases,
    }


def measure_switches(client: Client, count: int) -> list[float]:
    """``count`` cue switches; each one's ``last_switch_latency_ms`` once it is applied."""
    latencies = []
    for index in range(count):
        version = client.set_cues(*CUE_SETS[(index + 1) % 2])["version"]
        deadline = time.monotonic() + 5.0
        while (status := client.status())["applied_version"] < version:
            if time.monotonic() > deadline:
                raise ControlTimeout(f"switch to version {version} not applied within 5 s")
            time.sleep(0.005)
        latencies.append(status["last_switch_latency_ms"])
        time.sleep(0.1)  # let the crossfade and telemetry settle before the next switch
    return latencies


def measure_load(endpoint: str, rate_hz: int, seconds: float) -> dict:
    """Send ``rate_hz`` commands per second for ``seconds`` on one DEALER, replies read as
    they come; round trips in ms. Gives up on missing replies after ``3 × seconds``."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    total = int(rate_hz * seconds)
    sent_at: dict[int, float] = {}
    round_trips: list[float] = []
    errors = sent = 0
    start = time.perf_counter()
    while (sent < total or sent_at) and time.perf_counter() - start < 3 * seconds:
        while sent < total and start + sent / rate_hz <= time.perf_counter():
            sock.send(encode_request(sent, *LOAD_COMMANDS[sent % len(LOAD_COMMANDS)]))
            sent_at[sent] = time.perf_counter()
            sent += 1
        while sock.poll(1 if sent < total else 100):
            reply = json.loads(sock.recv())
            round_trips.append(1000.0 * (time.perf_counter() - sent_at.pop(reply["id"])))
            errors += not reply["ok"]
    elapsed = time.perf_counter() - start
    sock.close()
    return {
        "commands_per_second": rate_hz,
        "seconds": seconds,
        "sent": sent,
        "answered": len(round_trips),
        "errors": errors,
        "unanswered": len(sent_at),
        "elapsed_s": round(elapsed, 3),
        "round_trip_ms": summary(round_trips),
    }


def timed_ms(call) -> float:
    """Wall time of ``call()``, in ms."""
    started = time.perf_counter()
    call()
    return 1000.0 * (time.perf_counter() - started)


def phase_counters(client: Client) -> dict:
    """The engine's overload counters since the last ``reset_stats``; then resets them."""
    counters = client.stats()["counters"]
    client.reset_stats()
    return {name: counters.get(name, 0) for name in PHASE_COUNTERS}


def summary(values_ms: list[float]) -> dict:
    """Count, median, p99 and max of ``values_ms`` (ms, rounded to µs)."""
    p50, p99 = np.percentile(values_ms, [50, 99]) if values_ms else (float("nan"),) * 2
    peak = max(values_ms, default=float("nan"))
    return {
        "n": len(values_ms),
        "median": round(float(p50), 3),
        "p99": round(float(p99), 3),
        "max": round(float(peak), 3),
    }


def markdown_report(results: dict) -> str:
    """``control.md``: how it was measured, then one row per figure."""
    m, engine, load = results["machine"], results["engine"], results["load"]
    counters = results["engine_counters"]
    commit = (m["git_commit"] or "unknown")[:12] + (
        " (uncommitted changes)" if m["git_dirty"] else ""
    )
    loads = [", ".join(f"{x:.2f}" for x in m[key]) for key in ("load_before", "load_after")]
    switch, ping, trip = (
        results["switch_latency_ms"],
        results["ping_round_trip_ms"],
        load["round_trip_ms"],
    )

    def misses(phase: str) -> str:
        return ", ".join(f"{name} {value}" for name, value in counters[phase].items())

    rows = [
        (f"idle for {results['settle_s']:g} s after the start", None, misses("settle")),
        ("cue switch, receipt → first output (ms)", switch, misses("switches")),
        ("`ping` round trip, Python client (ms)", ping, misses("pings")),
        (
            f"load: {load['commands_per_second']} cmd/s for {load['seconds']:g} s, round trip (ms)",
            trip,
            misses("load"),
        ),
    ]
    lines = [
        "# Control benchmark",
        "",
        f"- command: `{results['command']}`",
        f"- date: {results['date']}, commit {commit}",
        f"- machine: {m['cpu']}, {m['cores']} cores; load average (1/5/15 min) {loads[0]} "
        f"before, {loads[1]} after",
        f"- engine: `rtsep separate --realtime --control`, {engine['backend']}, "
        f"{engine['sample_rate_hz']} Hz, {engine['block_samples']}-frame blocks, "
        f"{engine['channels']} outputs, reported latency {engine['latency_ms']:.1f} ms",
        f"- load: {load['sent']} sent, {load['answered']} answered, {load['errors']} error "
        f"replies, {load['unanswered']} unanswered, in {load['elapsed_s']:.2f} s",
        "",
        "| figure | n | median | p99 | max | engine during the phase |",
        "|---|--:|--:|--:|--:|---|",
    ]
    lines += [
        f"| {name} | {s['n']} | {s['median']:.3f} | {s['p99']:.3f} | {s['max']:.3f} | {c} |"
        if s
        else f"| {name} | | | | | {c} |"
        for name, s, c in rows
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
