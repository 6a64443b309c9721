"""The model a configuration names, on the device it names."""

from __future__ import annotations


def load_configured_model(config: dict):
    """The model of ``config["model"]`` (``path``: a checkpoint, empty = the shipped weights;
    ``device``); a CUDA device that is not there is a ``ValueError`` saying what is."""
    from .model import load_model

    device = config["model"]["device"]
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device[5:]) if device.startswith("cuda:") else 0
        if index >= count:
            found = f"{count} CUDA device(s)" if count else "no CUDA device torch can use"
            raise ValueError(f'model.device = "{device}": this machine has {found}; use "cpu"')
    return load_model(config["model"]["path"] or None, device=device)
