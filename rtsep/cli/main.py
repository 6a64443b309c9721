"""``rtsep``: the command line. Each subcommand lives in its own module of this package."""

from __future__ import annotations

import argparse
import sys

from . import bench_cmd, control_cmd, evaluate_cmd, info_cmd, live_cmd, separate_cmd, train_cmd

COMMANDS = (separate_cmd, live_cmd, control_cmd, info_cmd, evaluate_cmd, bench_cmd, train_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtsep",
        description="Real-time sound separation and target sound extraction.",
        epilog="Run 'rtsep COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--config", metavar="FILE", help="a TOML file merged over config.toml")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as error:
        print(f"rtsep {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
