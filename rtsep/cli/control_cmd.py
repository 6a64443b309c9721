"""``rtsep ctl``, ``rtsep keys`` and ``rtsep bridge``; the ``--control`` options of the
commands that run an engine."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.control_process import ControlProcess
    from ..engine.runtime import Engine


def register(commands: argparse._SubParsersAction) -> None:
    ctl = commands.add_parser(
        "ctl",
        help="send a command to a running engine (rtsep ctl --help for the list)",
        add_help=False,
        prefix_chars="\0",  # every argument, --help included, goes to the client's own parser
    )
    ctl.add_argument("argv", nargs=argparse.REMAINDER)
    ctl.set_defaults(run=lambda args: _ctl(args.argv))

    keys = commands.add_parser("keys", help="CURVE keys for a control server bound beyond loopback")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    generate = key_commands.add_parser(
        "generate",
        help="create the server key pair (kept if present) and one authorised client key pair",
    )
    generate.add_argument("folder", help="key folder (pass it to --keys on the server and client)")
    generate.add_argument("--client", default="client", help="client name (default: client)")
    generate.set_defaults(run=_generate_keys)

    bridge = commands.add_parser(
        "bridge",
        help="bridge a DAW or controller protocol to the control channel",
    )
    kinds = bridge.add_subparsers(dest="bridge_kind", metavar="KIND", required=True)
    _register_bridges(kinds)


def _ctl(argv: list[str]) -> int:
    from ..bindings.client import ctl_main

    return ctl_main(argv)


def _register_bridges(kinds: argparse._SubParsersAction) -> None:
    """Every bridge of the ``rtsep.bridges`` entry points adds its ``rtsep bridge`` KIND; one
    that fails to load is reported and left out, so it cannot break the other commands."""
    from ..plugins import BRIDGES_GROUP, PluginError, load, registered

    for name in registered(BRIDGES_GROUP):
        try:
            load(BRIDGES_GROUP, name)(kinds)
        except PluginError as error:
            print(f"rtsep: bridge left out: {error}", file=sys.stderr)


def _generate_keys(args: argparse.Namespace) -> int:
    from ..bindings.protocol import generate_keys

    files = generate_keys(args.folder, client_name=args.client)
    print(f"keys in {args.folder}: {files}")
    return 0


def add_control_options(parser: argparse.ArgumentParser) -> None:
    """``--control [ENDPOINT]`` and friends, for commands that run an engine."""
    group = parser.add_argument_group("control channel (ZeroMQ)")
    group.add_argument(
        "--control",
        nargs="?",
        const="",
        metavar="ENDPOINT",
        help="serve control commands (docs/protocol.md) on ENDPOINT; default: [control] "
        "endpoint in the config (tcp://127.0.0.1:5570)",
    )
    group.add_argument(
        "--telemetry",
        metavar="ENDPOINT",
        help="telemetry PUB endpoint; default: [control] telemetry in the config",
    )
    add_security_options(
        group,
        keys_help="CURVE key folder (needed beyond 127.0.0.1)",
        insecure_help="allow a non-loopback bind without CURVE (anyone can control the engine)",
    )


def add_security_options(parser, keys_help: str, insecure_help: str) -> None:
    """``--keys DIR`` and ``--insecure``, worded for ``parser``'s command (an
    ``ArgumentParser`` or an argument group): the engine's control options, the OSC bridge."""
    parser.add_argument("--keys", metavar="DIR", help=keys_help)
    parser.add_argument("--insecure", action="store_true", help=insecure_help)


@contextlib.contextmanager
def control_server(
    engine: Engine, args: argparse.Namespace, config: dict
) -> Iterator[ControlProcess | None]:
    """Serve control commands for ``engine`` while the block runs, if ``--control`` was given
    (the endpoint, else ``[control] endpoint`` of the configuration); yields the started
    control process, or None without ``--control``, and stops it on exit.

    The server runs in a process of its own (``engine.control_process``): no control message
    is parsed in the engine's interpreter. Enter it before the audio starts: the child loads
    the model's cue network and the text encoder (seconds), so that the first free-text cue
    is quick, and binds the sockets before this returns.
    """
    if getattr(args, "control", None) is None:
        yield None
        return
    from ..engine.control_process import ControlProcess, ModelCueEncoder

    control = config["control"]
    server = ControlProcess(  # refuses a non-loopback endpoint without keys before spawning
        engine.control,
        ModelCueEncoder(config["model"]["path"] or None),
        args.control or control["endpoint"],
        args.telemetry or control["telemetry"],
        keys_dir=args.keys,
        insecure=args.insecure,
        max_message_bytes=control["max_message_bytes"],
        telemetry_rate_hz=control["telemetry_rate_hz"],
        client_rate_hz=control["client_rate_hz"],
        client_burst=control["client_burst"],
        client_queue=control["client_queue"],
    )
    server.start()
    print(
        f"control on {server.endpoint}, telemetry on {server.telemetry_endpoint}", file=sys.stderr
    )
    try:
        yield server
    finally:
        server.stop()
