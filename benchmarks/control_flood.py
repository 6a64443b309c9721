"""Control flood on a running live engine: ``python -m benchmarks.control_flood [options]``.

Starts a JACK dummy-driver server (``--rate`` 48 kHz, ``--period`` 128 frames), ``jack_metro``
playing into ``rtsep live --control`` (one cue, audio backend ``--audio``, default rtmixer),
lets it settle, then:

0. a quiet baseline of ``--seconds`` without control traffic;
1. ``rtsep ctl ping``: ``--pings`` (default 10) separate ``rtsep ctl --control EP ping``
   processes, one after the other; wall time of each (process start to exit) — what a script
   or a DAW bridge pays per call, beside the running engine;
2. the flood: ``--clients`` (default 8) DEALER sockets send ``--messages`` (default 20,000)
   messages in ``--seconds`` (default 15), paced evenly; every other message is hostile
   (malformed JSON, binary garbage, over-sized, too many frames, unknown commands, wrong
   arguments, JSON nested 5,000 deep), the rest valid (ping, status, stats, set_gain,
   list_labels). Replies are counted: every message must get one.

``--soak MINUTES`` replaces the three phases with one long flood: ``--soak-rate`` (default
1,000) messages per second from ``--clients`` for MINUTES (the issue's soak: ``--soak 10
--clients 4``).

The engine's deadline misses, dropped chunks and overruns are read over the control channel
(``reset_stats`` before each phase, ``stats`` after), and the run's totals from the line
``rtsep live`` prints when stopped. Writes ``control_flood.json``/``.md`` to ``--out``.
Numbers, not a test; record the machine's load beside them (they are in the files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq

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
from rtsep.bindings import Client
from rtsep.bindings.protocol import encode_request

COUNTERS = ("deadline_misses", "dropped_chunks", "overruns")
VALID = (
    ("ping", {}),
    ("status", {}),
    ("stats", {}),
    ("set_gain", {"output": 0, "db": 0.0}),
    ("list_labels", {}),
)


def hostile(n: int) -> list[bytes]:
    """The ``n``-th hostile message (frames), cycling through the kinds."""
    kinds = (
        lambda: [b'{"id": 1, "cmd": "ping", "args": {'],  # malformed JSON
        lambda: [os.urandom(200)],  # binary garbage
        lambda: [b'{"id": 2, "cmd": "ping", "args": {"pad": "' + b"x" * 70000 + b'"}}'],
        lambda: [b'{"id": 3, "cmd": "ping"}', b"second frame", b"third"],
        lambda: [json.dumps({"id": n, "cmd": "format_disk", "args": {}}).encode()],
        lambda: [
            json.dumps({"id": n, "cmd": "set_gain", "args": {"output": 99, "db": "x"}}).encode()
        ],
        lambda: [b"[" * 5000 + b"]" * 5000],  # deep nesting
        lambda: [json.dumps({"id": n, "cmd": "set_cues", "args": {"cues": [7] * 500}}).encode()],
    )
    return kinds[n % len(kinds)]()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.control_flood", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--period", type=int, default=128)
    parser.add_argument("--audio", default="rtmixer", choices=("rtmixer", "sounddevice"))
    parser.add_argument("--pings", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--soak", type=float, help="minutes of one long flood instead")
    parser.add_argument("--soak-rate", type=float, default=1000.0, help="messages/s in --soak")
    parser.add_argument("--config", type=Path, help="a TOML file for rtsep live")
    parser.add_argument(
        "--decoy",
        action="store_true",
        help="flood a separate control server process instead of the engine's (a control "
        "experiment: what the flood's own CPU use costs the engine)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=int, default=1, help="whole runs in a row (fresh engine)")
    parser.add_argument("--stem", help="result file names (default: control_flood[_soak])")
    args = parser.parse_args(argv)
    runs = [run_once(args) for _ in range(args.runs)]
    results = {
        "settings": vars(args) | {"out": str(args.out), "config": str(args.config)},
        "runs": runs,
    }
    stem = args.stem or ("control_flood_soak" if args.soak is not None else "control_flood")
    write_results("control_flood", argv or sys.argv[1:], results, markdown, args.out, stem)
    return 0


def run_once(args: argparse.Namespace) -> dict:
    """One whole run: JACK, metro and a fresh ``rtsep live``; its phases, header and totals."""
    server = JackDummy(args.rate, args.period)
    metro = live = None
    try:
        metro = start_metro(server)
        with tempfile.TemporaryDirectory() as folder:
            log_path = Path(folder) / "live.log"
            live, endpoint = start_live(server, log_path, args.audio, args.config)
            patch_metro_into_live(server)
            decoy, decoy_endpoint = start_decoy() if args.decoy else (None, None)
            time.sleep(args.settle)
            target = decoy_endpoint or endpoint
            with Client(endpoint, timeout_s=10.0) as client:
                if args.soak is not None:
                    soak_s = 60.0 * args.soak
                    messages = int(args.soak_rate * soak_s)
                    phases = {
                        "soak": phase(client, lambda: flood(target, args.clients, messages, soak_s))
                    }
                else:
                    phases = {
                        "quiet": phase(client, lambda: time.sleep(args.seconds) or {}),
                        "ctl_ping": phase(client, lambda: ctl_pings(endpoint, args.pings)),
                        "flood": phase(
                            client,
                            lambda: flood(target, args.clients, args.messages, args.seconds),
                        ),
                    }
            stop_live(live)
            if decoy is not None:
                decoy.kill()
                decoy.wait()
            log_text = log_path.read_text()
    finally:
        end_all(server, live, metro)
    header = next((line for line in log_text.splitlines() if line.startswith("live")), "")
    return {"header": header, "phases": phases, "live_totals": summary_counts(log_text)}


def start_decoy() -> tuple[subprocess.Popen, str]:
    """A control server over a bare CueState in its own process (no engine, no model)."""
    from rtsep.bench.machine import free_port

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    code = (
        "import time\n"
        "from rtsep.engine.control import ControlServer\n"
        "from rtsep.engine.controllable import CueState\n"
        f"server = ControlServer(CueState(['speech', 'music'], 2), '{endpoint}', "
        "'tcp://127.0.0.1:*').start()\n"
        "print('ready', flush=True)\n"
        "time.sleep(3600)\n"
    )
    decoy = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    decoy.stdout.readline()
    return decoy, endpoint


def phase(client: Client, run) -> dict:
    """Run one phase between ``reset_stats`` and ``stats``; its result plus the engine's
    counters over it and the load average before and after."""
    client.reset_stats()
    load_before = os.getloadavg()
    started = time.monotonic()
    result = run()
    seconds = time.monotonic() - started
    counters = client.stats()["counters"]
    return {
        "result": result,
        "seconds": round(seconds, 2),
        "engine": {name: counters.get(name, 0) for name in COUNTERS},
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def ctl_pings(endpoint: str, count: int) -> dict:
    walls = []
    for _ in range(count):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "rtsep.cli.main", "ctl", "--control", endpoint, "ping"],
            capture_output=True,
            check=False,
        )
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"rtsep ctl ping failed: {done.stderr.decode()}")
    return {
        "calls": count,
        "wall_s_median": round(statistics.median(walls), 3),
        "wall_s_max": round(max(walls), 3),
        "wall_s": [round(w, 3) for w in walls],
    }


def flood(endpoint: str, clients: int, messages: int, seconds: float) -> dict:
    per_client = messages // clients
    tallies = [
        dict(sent=0, hostile=0, replies=0, hostile_errors=0, valid_errors=0, rate_limited=0)
        for _ in range(clients)
    ]
    start_at = time.monotonic() + 0.5

    def one(index: int) -> None:
        tally = tallies[index]
        context = zmq.Context.instance()
        socket = context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(endpoint)

        def drain() -> None:
            while socket.poll(0):
                reply = json.loads(socket.recv_multipart()[-1])
                tally["replies"] += 1
                if reply.get("ok", False):
                    continue
                if reply["error"]["code"] == "rate_limited":  # unread: its id is null
                    tally["rate_limited"] += 1
                else:  # valid requests have ids "v-..."
                    valid = str(reply.get("id", "")).startswith("v-")
                    tally["valid_errors" if valid else "hostile_errors"] += 1

        for n in range(per_client):
            due = start_at + seconds * n / per_client
            while time.monotonic() < due:
                drain()
                time.sleep(min(0.002, max(0.0, due - time.monotonic())))
            if n % 2:
                frames = hostile(index + clients * n // 2)
                tally["hostile"] += 1
            else:
                cmd, cmd_args = VALID[n // 2 % len(VALID)]
                frames = [encode_request(f"v-{index}-{n}", cmd, cmd_args)]
            socket.send_multipart(frames)
            tally["sent"] += 1
        deadline = time.monotonic() + 10
        while tally["replies"] < tally["sent"] and time.monotonic() < deadline:
            if socket.poll(100):
                drain()
        socket.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = {key: sum(t[key] for t in tallies) for key in tallies[0]}
    return total | {"clients": clients, "seconds_requested": seconds}


def markdown(results: dict) -> str:
    """The results as Markdown: one table row per phase of each run."""
    runs = results["runs"]
    title = "soak" if "soak" in runs[0]["phases"] else "flood"
    lines = [
        f"# Control {title} on a running `rtsep live`",
        "",
        f"`{results['command']}` — {results['date']}, commit "
        f"{results['machine']['git_commit']}, {results['machine']['cpu']} "
        f"({results['machine']['cores']} cores); {results['machine']['note']}.",
        "",
        f"Engine: {runs[0]['header']}",
        "",
        "| run | phase | what | engine deadline misses | dropped chunks | overruns | "
        "load 1-min before → after |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    for number, run in enumerate(runs, 1):
        for name, ran in run["phases"].items():
            lines.append(
                f"| {number} | {name} | {phase_text(name, ran)} "
                f"| {ran['engine']['deadline_misses']} | {ran['engine']['dropped_chunks']} "
                f"| {ran['engine']['overruns']} | {ran['load_before'][0]} → "
                f"{ran['load_after'][0]} |"
            )
    lines += ["", "Whole runs (`rtsep live`'s closing line):", ""]
    lines += [f"{number}. {run['live_totals']}" for number, run in enumerate(runs, 1)]
    return "\n".join(lines + [""])


def phase_text(name: str, ran: dict) -> str:
    """What phase ``name`` did, in words."""
    if name == "quiet":
        return f"no control traffic for {ran['seconds']} s"
    if name == "ctl_ping":
        r = ran["result"]
        return (
            f"`rtsep ctl ping` ×{r['calls']}: wall median {r['wall_s_median']} s, "
            f"max {r['wall_s_max']} s"
        )
    return flood_text(ran)


def flood_text(flood_phase: dict) -> str:
    f = flood_phase["result"]
    return (
        f"{f['sent']} messages ({f['hostile']} hostile) from {f['clients']} clients in "
        f"{flood_phase['seconds']} s; {f['replies']} replies: {f['hostile_errors']} error "
        f"replies to hostile, {f['valid_errors']} to valid, {f['rate_limited']} rate_limited"
    )


if __name__ == "__main__":
    raise SystemExit(main())
