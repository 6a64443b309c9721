"""Helpers shared by the subcommands: options, configuration and error reporting (the model
loading and error wording themselves live in :mod:`rtsep.loading` and :mod:`rtsep.errors`)."""

from __future__ import annotations

import argparse
import functools
import sys
import traceback
from collections.abc import Callable

from ..config import load_config, validate_config, with_flags
from ..errors import user_message
from ..loading import load_configured_model  # noqa: F401 - the commands import it from here


class CommandError(ValueError):
    """A user-facing failure: ``rtsep`` prints its one-line message and exits non-zero."""


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug", action="store_true", help="print the Python traceback of an error as well"
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        dest="model_path",
        metavar="PATH",
        help="checkpoint (.pt); default: the shipped weights",
    )
    parser.add_argument(
        "--device", dest="model_device", metavar="DEV", help="torch device: cpu, cuda, cuda:N"
    )
    add_debug_option(parser)


def cli_command(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a subcommand's ``run(args)``: a user error becomes a :class:`CommandError` (one
    line, non-zero exit, printed by ``rtsep``); ``--debug`` prints the traceback first."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except Exception as error:
            if getattr(args, "debug", False):
                traceback.print_exc(file=sys.stderr)
            message = user_message(error)
            if message is None or isinstance(error, CommandError):
                raise
            raise CommandError(message) from None

    return wrapper


def effective_config(args: argparse.Namespace) -> dict:
    """config.toml, then --config FILE, then the flags named ``section_key`` on ``args``;
    validated once (:func:`rtsep.config.validate_config`): a bad value is a ``ValueError``
    naming the key, the flag that set it and what it takes."""
    config = load_config(getattr(args, "config", None))
    flags = {
        name: value
        for name, value in vars(args).items()
        if "_" in name and name.split("_", 1)[0] in config and value is not None
    }
    effective = with_flags(config, **flags)
    flag_names = {".".join(name.split("_", 1)): _flag_for(args, name) for name in flags}
    return validate_config(effective, flag_names)


#: Flags whose name is not the key's (``dest`` → the flag a user typed).
_FLAG_NAMES = {
    "model_path": "--model",
    "model_device": "--device",
    "io_input": "--input",
    "io_output": "--output",
}


def _flag_for(args: argparse.Namespace, dest: str) -> str:
    return _FLAG_NAMES.get(dest, "--" + dest.split("_", 1)[1].replace("_", "-"))


def untrained_warning(model) -> str:
    return (
        ""
        if model.trained
        else "WARNING: untrained model (random weights): outputs are not separations\n"
    )
