"""Free TCP ports for tests that must name an endpoint before a server binds it."""

from __future__ import annotations

from rtsep.bench.machine import free_port

__all__ = ["free_port"]
