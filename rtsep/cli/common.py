"""Helpers shared by the subcommands: configuration and model loading."""

from __future__ import annotations

import argparse

from ..config import load_config, with_flags


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


def effective_config(args: argparse.Namespace) -> dict:
    """config.toml, then --config FILE, then the flags named ``section_key`` on ``args``."""
    config = load_config(getattr(args, "config", None))
    flags = {
        name: value
        for name, value in vars(args).items()
        if "_" in name and name.split("_", 1)[0] in config and value is not None
    }
    return with_flags(config, **flags)


def load_configured_model(config: dict):
    from ..model import load_model

    return load_model(config["model"]["path"] or None, device=config["model"]["device"])


def untrained_warning(model) -> str:
    return (
        ""
        if model.trained
        else "WARNING: untrained model (random weights): outputs are not separations\n"
    )
