"""Latency benchmark: ``python -m benchmarks.latency [options]`` from the repository root.

The same benchmark and options as ``rtsep bench latency`` (its code lives in
:mod:`rtsep.bench.latency` so that the installed command has it): host block × sample rate ×
backend, one thread, reported latency, per-chunk and per-hop compute, real-time factor,
deadline misses. Writes ``latency.{json,md,png}`` into ``--out`` (default: a new dated folder
in the current directory; ``--out benchmarks/results`` refreshes the committed results). See
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse

from rtsep.cli.bench_cmd import add_latency_options, run_latency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", metavar="FILE", help="a TOML file merged over config.toml")
    add_latency_options(parser)
    return run_latency(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
