"""The control plane in a process of its own: nothing a client sends runs in the engine's
interpreter, so no flood of messages can take the GIL from the audio worker.

``ControlProcess(engine.control, encoder, endpoint, ...).start()`` spawns a child process
that runs the ZeroMQ ``ControlServer`` (parsing, validation, per-client limits, cue encoding,
telemetry) over a ``CueState`` of its own, a mirror of the engine's. One duplex pipe joins the
two; in the engine's process a *link* thread is its only user:

* control → engine: the child's newest ``CueSnapshot`` (with the cue encodings), sent when it
  changes, at most one every ``SNAPSHOT_MIN_INTERVAL_S`` (the latest wins); the link thread
  ``adopt``s it into the engine's ``CueState``, and the worker picks it up at its next chunk
  boundary as before (one reference read, never blocking);
* engine → control: every ``REPORT_INTERVAL_S`` the link thread sends ``take_report()``
  (levels, born/died/applied events, counters, gauges, engine info); the child ``absorb``s it,
  so ``status``, ``stats`` and telemetry are answered there.

What the engine's process does for control is therefore fixed by design, whatever clients
send: ``1 / REPORT_INTERVAL_S`` small reports a second, and at most
``1 / SNAPSHOT_MIN_INTERVAL_S`` snapshot adoptions (one unpickle each) while settings change.
The link thread waits in ``poll`` (GIL released); the worker never touches the pipe.

Text cues are encoded in the child by ``encoder()`` (a picklable factory, e.g.
``ModelCueEncoder``, that loads what it needs there), so the sentence encoder does not even
live in the engine's process. The child ignores SIGINT (Ctrl-C stops the engine, which stops
the child), runs at a lower CPU priority (``CONTROL_NICE``) and ends by itself when the
engine's process is gone (end of file on the pipe).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from rtsep.bindings.protocol import (
    DEFAULT_ENDPOINT,
    DEFAULT_TELEMETRY_ENDPOINT,
    MAX_MESSAGE_BYTES,
)

from .control import BoundEndpoints, check_endpoints
from .controllable import CueEncoder, CueSnapshot, CueState

log = logging.getLogger(__name__)

#: Engine → control report period, in seconds (telemetry is at most 10 Hz by default).
REPORT_INTERVAL_S = 0.05
#: Shortest time between two snapshots sent to the engine, in seconds: changes that come
#: faster are merged (the latest wins). Below a model chunk, so no change waits a chunk more.
SNAPSHOT_MIN_INTERVAL_S = 0.005
#: ``os.nice`` increment of the control process (to the lowest priority): when the engine and
#: the control process both want a core, the engine gets it (benchmarks/control_flood.py).
CONTROL_NICE = 19

EncoderFactory = Callable[[], CueEncoder | None]


@dataclass(frozen=True)
class ModelCueEncoder:
    """Picklable factory, called in the control process: loads the checkpoint ``path``
    (None: the shipped weights) on the CPU, warms the text encoder, and returns the cue
    encoder an ``Engine`` uses (``Engine._encode_cue``): cue text → query ``float32 [E]``."""

    path: str | None

    def __call__(self) -> CueEncoder:
        from rtsep.cues import TextEncoderUnavailable, shared_text_encoder
        from rtsep.model import load_model

        model = load_model(self.path, device="cpu")
        try:
            shared_text_encoder().encode(["warm up"])
        except TextEncoderUnavailable as error:
            print(f"free-text cues are off: {error}", file=sys.stderr, flush=True)

        def encode(text: str, kind: str) -> np.ndarray:
            model.validate_cue(text)
            return model.cue_queries([text])[0].numpy()

        return encode


@dataclass(frozen=True)
class _Settings:
    """What the child needs to build its ``CueState`` and ``ControlServer``."""

    labels: tuple[str, ...]
    n_outputs: int
    snapshot: CueSnapshot
    encoder: EncoderFactory | None
    endpoint: str
    telemetry_endpoint: str
    server_options: dict[str, Any]


class ControlProcess(BoundEndpoints):
    """Serve the control protocol for ``state`` (the engine's ``CueState``) from a child
    process. Same endpoints and options as ``ControlServer`` (see there); ``encoder``: the
    picklable factory of the cue encoder, called once in the child (None: labels only, as
    their index). ``start()`` returns once the child has bound both sockets."""

    def __init__(
        self,
        state: CueState,
        encoder: EncoderFactory | None,
        endpoint: str = DEFAULT_ENDPOINT,
        telemetry_endpoint: str = DEFAULT_TELEMETRY_ENDPOINT,
        *,
        keys_dir: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        telemetry_rate_hz: float = 10.0,
        **server_options: Any,
    ) -> None:
        check_endpoints((endpoint, telemetry_endpoint), keys_dir, insecure)
        self.state = state
        self._settings = _Settings(
            labels=tuple(state.labels),
            n_outputs=state.n_outputs,
            snapshot=state.snapshot(),
            encoder=encoder,
            endpoint=endpoint,
            telemetry_endpoint=telemetry_endpoint,
            server_options=dict(
                server_options,
                keys_dir=None if keys_dir is None else str(keys_dir),
                insecure=insecure,
                max_message_bytes=max_message_bytes,
                telemetry_rate_hz=telemetry_rate_hz,
            ),
        )
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._link: threading.Thread | None = None
        self._stop = threading.Event()
        self.failure: str | None = None  # why the control process ended early, if it did

    def start(self, timeout_s: float = 120.0) -> ControlProcess:
        """Spawn the child, wait until it has loaded its encoder and bound both sockets
        (``timeout_s``), then start the link thread. Raises what the child raised (OSError
        for a bind that failed, ...), or TimeoutError."""
        if self._process is not None:
            raise RuntimeError("the control process is already started")
        ours, theirs = socket.socketpair()
        code = f"from {__name__} import _child_entry; _child_entry({theirs.fileno()})"
        # Its own session: a Ctrl-C at the terminal reaches the engine, which stops the child.
        self._process = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=(theirs.fileno(),), start_new_session=True
        )
        theirs.close()
        self._conn = conn = Connection(ours.detach())
        try:
            conn.send(self._settings)
            if not conn.poll(timeout_s):
                raise TimeoutError(f"the control process did not start within {timeout_s} s")
            kind, *payload = conn.recv()
        except (EOFError, OSError, TimeoutError) as exc:
            self._end_child()
            if isinstance(exc, TimeoutError):
                raise
            raise RuntimeError(
                f"the control process ended while starting (exit code {self._process.returncode})"
            ) from exc
        if kind == "error":
            self._end_child()
            raise payload[0]
        self._endpoints = (payload[0], payload[1])
        self._link = threading.Thread(target=self._run_link, name="rtsep-control-link", daemon=True)
        self._link.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the link thread and the child (which closes its sockets)."""
        self._stop.set()
        if self._link is not None:
            self._link.join(timeout_s)
        self._end_child(timeout_s)

    def __enter__(self) -> ControlProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _end_child(self, timeout_s: float = 5.0) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)  # "stop"
            except OSError:
                pass  # already gone
            self._conn.close()
            self._conn = None
        if self._process is not None:
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _run_link(self) -> None:
        """The engine-side end of the pipe: adopt snapshots, send reports."""
        conn = self._conn
        assert conn is not None
        next_report = time.monotonic()
        try:
            while not self._stop.is_set():
                if conn.poll(max(0.0, next_report - time.monotonic())):
                    self.state.adopt(conn.recv())
                if time.monotonic() >= next_report:
                    conn.send(self.state.take_report())
                    next_report = time.monotonic() + REPORT_INTERVAL_S
        except (EOFError, OSError) as exc:
            if self._stop.is_set():
                return
            code = self._process.poll() if self._process is not None else None
            self.failure = f"the control process ended (exit code {code}): {exc!r}"
            print(
                f"rtsep: {self.failure}; control is off, the audio goes on",
                file=sys.stderr,
                flush=True,
            )


def _child_entry(fd: int) -> None:
    """The control process (``python -c``): its settings come first on the socket ``fd``;
    serves until the engine says stop or its end of the socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the engine, which stops us
    os.nice(CONTROL_NICE)
    from .control import ControlServer

    conn = Connection(fd)
    try:
        settings: _Settings = conn.recv()
    except EOFError:
        return

    try:
        encode = settings.encoder() if settings.encoder is not None else None
        state = CueState(settings.labels, settings.n_outputs, encode, initial=settings.snapshot)
        server = ControlServer(
            state, settings.endpoint, settings.telemetry_endpoint, **settings.server_options
        ).start()
    except Exception as exc:  # the engine's start() raises it
        conn.send(("error", exc))
        return
    conn.send(("ready", server.endpoint, server.telemetry_endpoint))
    sender = _SnapshotSender(conn, state)
    sender.start()
    try:
        while True:
            report = conn.recv()
            if report is None:
                break
            state.absorb(report)
    except (EOFError, OSError):
        pass  # the engine's process is gone
    finally:
        sender.stop()
        server.stop()


class _SnapshotSender(threading.Thread):
    """Child side: send ``state``'s snapshot to the engine whenever its version moves, at
    most one every ``SNAPSHOT_MIN_INTERVAL_S`` (the latest wins)."""

    def __init__(self, conn: Connection, state: CueState) -> None:
        super().__init__(name="rtsep-control-snapshots", daemon=True)
        self._conn = conn
        self._state = state
        self._sent = state.snapshot().version
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(SNAPSHOT_MIN_INTERVAL_S):
                snap = self._state.snapshot()
                if snap.version != self._sent:
                    self._conn.send(snap)
                    self._sent = snap.version
        except OSError:
            pass  # the engine's process is gone: the main loop sees it too

    def stop(self) -> None:
        self._stopped.set()
        self.join()
