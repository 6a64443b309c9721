"""Engine latency per host block × device rate, its terms, and (``--jack``) reported against
measured on a JACK dummy device.

    python -m benchmarks.latency_formula [--jack] [--out benchmarks/results]

The figures are computed by the engine itself (:attr:`Engine.latency`, default settings: the
1 ms polyphase input resampler, ``safety_ms`` = 3, fullband synthesis at the device rate), so
they depend on the settings only, not on the machine. With ``--jack``, each rate × block also
runs live on a JACK dummy-driver server, period = block, through ``tests/test_live.py``'s
measurement (the outputs' sum against the input), for the default audio backend. Writes
``latency_formula.json``/``.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.live_jack import write_results

RATES_HZ = (16000, 44100, 48000)
BLOCKS = (64, 128, 256, 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency_formula", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--jack", action="store_true", help="also measure on a JACK device")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    import rtsep
    from rtsep.engine.runtime import Engine, EngineConfig

    model = rtsep.load_model()
    rows = []
    for rate in RATES_HZ:
        for block in BLOCKS:
            config = EngineConfig(rate, block, residual=True)
            latency = Engine(model, config, ["speech"]).latency
            rows.append({"rate_hz": rate, "block": block, "engine": latency.as_dict()})
    if args.jack:
        measure_on_jack(model, rows)
    write_results("latency_formula", argv or sys.argv[1:], {"rows": rows}, markdown, args.out)
    return 0


def measure_on_jack(model, rows: list[dict]) -> None:
    """Add ``row["jack"]``: the end-to-end latency reported and measured (samples)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from jack_server import JackServer
    from test_live import measure, noise_bursts

    from rtsep.engine.live import LiveSession
    from rtsep.engine.runtime import Engine, EngineConfig

    for row in rows:
        rate, block = row["rate_hz"], row["block"]
        server = JackServer(rate, block).start()
        try:
            engine = Engine(model, EngineConfig(rate, block, residual=True), ["speech"], "extract")
            with LiveSession(engine, "JACK", "JACK") as session:
                run = measure(server, session, noise_bursts(rate, seed=block))
        finally:
            server.stop()
        row["jack"] = {
            "reported": run.reported,
            "measured": run.measured,
            "device_samples": session.latency.device_samples,
            "sum_error_db": round(run.error_db, 1),
            "disturbed": run.disturbed,
            "xruns": run.xruns,
            "deadline_misses": run.deadline_misses,
        }


def markdown(results: dict) -> str:
    lines = [
        "# Engine latency per block × rate",
        "",
        f"`{results['command']}` — {results['date']}, commit {results['machine']['git_commit']}. "
        "The engine figure is input to output of the engine (`engine/latency.py`); a device adds "
        "its round trip (2 blocks on JACK with period = block).",
        "",
        "| rate (Hz) | block | window · r | + resampler in | − slack | + safety | "
        "= engine (samples) | engine (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        terms = row["engine"]
        lines.append(
            f"| {row['rate_hz']} | {row['block']} | {terms['algorithmic_samples']:g} "
            f"| {terms['resampler_in_samples']:g} | {terms['alignment_slack_samples']:.4g} "
            f"| {terms['safety_samples']} | {terms['total_samples']} "
            f"| **{terms['total_ms']:.2f}** |"
        )
    if any("jack" in row for row in results["rows"]):
        lines += [
            "",
            "Live on a JACK dummy device (period = block), end to end = engine + device:",
            "",
            "| rate (Hz) | block | reported (samples) | measured | measured − reported | "
            "sum error (dB) | disturbed (xruns, misses) |",
            "|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in results["rows"]:
            jack = row.get("jack")
            if jack:
                lines.append(
                    f"| {row['rate_hz']} | {row['block']} | {jack['reported']:.0f} "
                    f"| {jack['measured']} | {jack['measured'] - jack['reported']:+.0f} "
                    f"| {jack['sum_error_db']} | {jack['disturbed']} ({jack['xruns']}, "
                    f"{jack['deadline_misses']}) |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
