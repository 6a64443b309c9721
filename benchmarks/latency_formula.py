"""Engine latency before and after issue 11, per host block × device rate, and (``--jack``)
reported against measured on a JACK dummy device.

    python -m benchmarks.latency_formula [--jack] [--out benchmarks/results]

"Before" is the engine as it was: soxr's variable-rate resamplers (≈ 13–15 ms each way) and a
safety margin of one whole 8 ms hop; "after" is the default now: the 1 ms polyphase resampler
and ``safety_ms`` = 3. Both are computed by the engine itself (:attr:`Engine.latency`), so
they depend on the settings only, not on the machine. With ``--jack``, each rate × block (at
the default settings) also runs live on a JACK dummy-driver server, period = block, through
``tests/test_live.py``'s measurement (the outputs' sum against the input), for the default
audio backend. Writes ``latency_formula.json``/``.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.live_jack import write_results

RATES_HZ = (16000, 44100, 48000)
BLOCKS = (64, 128, 256, 1000)
BEFORE = {"resampler": "soxr", "safety_ms": 8.0}  # safety_hops = 1: one 8 ms hop
AFTER = {"resampler": "polyphase", "safety_ms": 3.0}


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
            row = {"rate_hz": rate, "block": block}
            for name, settings in (("before", BEFORE), ("after", AFTER)):
                config = EngineConfig(rate, block, residual=True, **settings)
                latency = Engine(model, config, ["speech"]).latency
                row[name] = latency.as_dict()
            rows.append(row)
    if args.jack:
        measure_on_jack(model, rows)
    write_results(
        "latency_formula",
        argv or sys.argv[1:],
        {"before": BEFORE, "after": AFTER, "rows": rows},
        markdown,
        args.out,
    )
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
            "correlation": round(run.correlation, 5),
            "disturbed": run.disturbed,
            "xruns": run.xruns,
            "deadline_misses": run.deadline_misses,
        }


def markdown(results: dict) -> str:
    lines = [
        "# Engine latency per block × rate, before and after issue 11",
        "",
        f"`{results['command']}` — {results['date']}, commit {results['machine']['git_commit']}. "
        f"Before: {results['before']}; after: {results['after']}. The engine figure is "
        "input to output of the engine (buffering + resamplers); a device adds its round trip "
        "(2 blocks on JACK with period = block).",
        "",
        "| rate (Hz) | block | before: engine ms | after: buffering | + resampler in | "
        "+ resampler out | = engine (samples) | after: engine ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        before, after = row["before"], row["after"]
        lines.append(
            f"| {row['rate_hz']} | {row['block']} | {before['total_ms']:.2f} "
            f"| {after['buffering_samples']} | {after['resampler_in_samples']:g} "
            f"| {after['resampler_out_samples']:g} | {after['total_samples']:g} "
            f"| **{after['total_ms']:.2f}** |"
        )
    if any("jack" in row for row in results["rows"]):
        lines += [
            "",
            "Live on a JACK dummy device (period = block), end to end = engine + device:",
            "",
            "| rate (Hz) | block | reported (samples) | measured | measured − reported | "
            "correlation | disturbed (xruns, misses) |",
            "|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in results["rows"]:
            jack = row.get("jack")
            if jack:
                lines.append(
                    f"| {row['rate_hz']} | {row['block']} | {jack['reported']:.2f} "
                    f"| {jack['measured']} | {jack['measured'] - jack['reported']:+.2f} "
                    f"| {jack['correlation']} | {jack['disturbed']} ({jack['xruns']}, "
                    f"{jack['deadline_misses']}) |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
