"""Clients of the rtsep control protocol (spec: docs/protocol.md).

``Client`` is the synchronous Python client; ``protocol`` the schema both sides import;
``osc_bridge`` turns OSC messages into commands; ``node/`` holds the Node.js client.
"""

from .client import Client, ControlTimeout
from .protocol import ControlError

__all__ = ["Client", "ControlError", "ControlTimeout"]
