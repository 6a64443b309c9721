"""Shared fixtures: ``jack_server(rate_hz, period_frames)`` starts a JACK dummy-driver server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from jack_server import INSTALL_HINT, JACKD, JackServer


@pytest.fixture
def jack_server() -> Iterator[Callable[[int, int], JackServer]]:
    """Factory: ``jack_server(rate_hz, period_frames)`` returns a running ``JackServer``.

    Servers are stopped at teardown (PortAudio terminated first, then re-initialised). Skips
    when jackd, JACK-Client or libjack is missing.
    """
    if JACKD is None:
        pytest.skip(f"jackd is not installed ({INSTALL_HINT})")
    try:
        import jack  # noqa: F401  (JACK-Client; raises OSError without libjack)
        import sounddevice  # noqa: F401  (raises OSError without libportaudio2)
    except (ImportError, OSError) as error:
        pytest.skip(f"JACK tests need JACK-Client, libjack and PortAudio: {error}")
    servers: list[JackServer] = []

    def start(rate_hz: int, period_frames: int) -> JackServer:
        for server in servers:
            server.stop()
        servers.clear()
        server = JackServer(rate_hz, period_frames)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
