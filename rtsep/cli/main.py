"""``rtsep``: the command line. Each subcommand lives in its own module of this package."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Each command's module, in the order ``rtsep --help`` lists them. A run imports only the
#: module of its command, so that ``rtsep ctl`` (a light client) never imports numpy, the
#: model or torch (tests/test_light_clients.py checks this table against every module).
COMMAND_MODULES = {
    "separate": "separate_cmd",
    "demo": "separate_cmd",
    "batch": "batch_cmd",
    "live": "live_cmd",
    "devices": "live_cmd",
    "ctl": "control_cmd",
    "keys": "control_cmd",
    "bridge": "control_cmd",
    "info": "info_cmd",
    "config": "info_cmd",
    "export": "info_cmd",
    "evaluate": "evaluate_cmd",
    "calibrate": "evaluate_cmd",
    "bench": "bench_cmd",
    "train": "train_cmd",
}


def _modules_for(argv: list[str]) -> list[str]:
    """The command modules to import for ``argv``: the command's own, or all of them (help,
    no command, an unknown one: argparse then lists or suggests every command)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            if word in COMMAND_MODULES:
                return [COMMAND_MODULES[word]]
            break
    return list(dict.fromkeys(COMMAND_MODULES.values()))


def __getattr__(name: str):
    """``COMMANDS``: every command module, imported (all of them: slow, torch included)."""
    if name == "COMMANDS":
        modules = dict.fromkeys(COMMAND_MODULES.values())
        return tuple(importlib.import_module(f"{__package__}.{m}") for m in modules)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of ``rtsep``; given ``argv``, with only the command modules it needs."""
    parser = argparse.ArgumentParser(
        prog="rtsep",
        description="Real-time sound separation and target sound extraction.",
        epilog="Run 'rtsep COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--config", metavar="FILE", help="a TOML file merged over config.toml")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = _modules_for(argv) if argv is not None else COMMAND_MODULES.values()
    for name in dict.fromkeys(modules):
        importlib.import_module(f"{__package__}.{name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
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
