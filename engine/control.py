"""The control server: commands on a ROUTER socket, telemetry on an XPUB socket, own thread.

``ControlServer(target).start()`` binds both sockets and serves until ``stop()``. ``target`` is
anything that implements ``Controllable`` (a ``CueState``). The server thread is the only one
that touches its sockets; it never calls into the audio path — it only swaps snapshots in the
target and reads what the engine reported. An engine runs it in a process of its own
(``engine.control_process``), so that no client, however busy, shares the worker's GIL.

Contract (see docs/protocol.md for the wire format):

* Every message that carries a payload frame gets exactly one reply, in order, with the
  request's id: the result, or an error (``bad_json``, ``too_large``, ...). A message with no
  payload frame is dropped. A frame over ``4 × max_message_bytes`` makes libzmq drop the
  connection (ZMQ_MAXMSGSIZE). A refused request changes nothing.
* Per-client limits: each connection may send ``client_rate_hz`` messages per second on
  average, in bursts of up to ``client_burst``; a message beyond them is answered
  ``rate_limited`` (id null) unread. At most ``client_queue`` messages of one connection wait
  in the server (ZMQ_RCVHWM); beyond that libzmq stops reading that connection until the
  server catches up (TCP back-pressure), so what waits is bounded.
* Telemetry: at most ``telemetry_rate_hz`` messages per topic per second. ``status`` is sent
  after every change, on every new subscription (XPUB) and every ``status_interval_s``.
* Security: endpoints other than loopback (127.x, ::1, ipc, inproc) are refused, before any
  socket exists, unless ``keys_dir`` enables CURVE or ``insecure=True`` is given.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from rtsep.bindings.protocol import (
    BAD_FRAMES,
    DEFAULT_ENDPOINT,
    DEFAULT_TELEMETRY_ENDPOINT,
    INTERNAL,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    RATE_LIMITED,
    TOO_LARGE,
    TOPIC_LEVELS,
    TOPIC_STATUS,
    ControlError,
    Request,
    decode_request,
    encode_error,
    encode_result,
    encode_telemetry,
    is_loopback_endpoint,
    load_server_keys,
    split_tcp_endpoint,
)

from .controllable import Controllable

log = logging.getLogger(__name__)

HARD_LIMIT_FACTOR = 4  # frames over this × max_message_bytes: libzmq drops the connection
_COMMAND_BATCH = 256  # commands served per poll wake-up before telemetry gets a turn
_MAX_TRACKED_CLIENTS = 1024  # rate buckets kept; idle (full) ones are forgotten beyond this


class InsecureBindError(ValueError):
    """A non-loopback endpoint was asked for without CURVE keys and without insecure=True."""


def check_endpoints(
    endpoints: tuple[str, ...], keys_dir: str | os.PathLike[str] | None, insecure: bool
) -> None:
    """Raise ``InsecureBindError`` for an endpoint beyond loopback without CURVE keys and
    without ``insecure``."""
    for ep in endpoints:
        if not is_loopback_endpoint(ep) and keys_dir is None and not insecure:
            raise InsecureBindError(
                f"refusing to bind {ep} without CURVE: anyone who can reach it could "
                "control the engine. Bind tcp://127.0.0.1:PORT, or create keys with "
                "`rtsep keys generate DIR` and pass keys_dir=DIR (--keys DIR), or pass "
                "insecure=True to accept unauthenticated control from the network."
            )


class BoundEndpoints:
    """The endpoints a started server bound (set ``_endpoints`` once bound)."""

    _endpoints: tuple[str, str] | None = None

    @property
    def endpoint(self) -> str:
        """The bound command endpoint (the real port when ``*``/``0`` was asked for)."""
        return self._bound()[0]

    @property
    def telemetry_endpoint(self) -> str:
        """The bound telemetry endpoint."""
        return self._bound()[1]

    def _bound(self) -> tuple[str, str]:
        if self._endpoints is None:
            raise RuntimeError("the control server is not started: call start() first")
        return self._endpoints


class ControlServer(BoundEndpoints):
    """Serve the control protocol for ``target`` on its own thread.

    ``endpoint``/``telemetry_endpoint``: ZeroMQ endpoints to bind; port ``*`` or ``0`` picks a
    free port (read the bound one from the ``endpoint`` properties after ``start()``).
    ``keys_dir``: folder made by ``generate_keys``; turns on CURVE for both sockets and accepts
    only the clients whose public keys are in its ``authorized_clients/``.
    ``max_message_bytes``: largest accepted command message (all frames together).
    ``telemetry_rate_hz``: telemetry messages per topic per second, at most.
    ``status_interval_s``: period of the unsolicited ``status`` message.
    ``client_rate_hz``/``client_burst``: per-connection message rate (messages per second)
    and burst (messages) before ``rate_limited`` replies; ``client_queue``: messages of one
    connection queued in the server at most.
    """

    def __init__(
        self,
        target: Controllable,
        endpoint: str = DEFAULT_ENDPOINT,
        telemetry_endpoint: str = DEFAULT_TELEMETRY_ENDPOINT,
        *,
        keys_dir: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        telemetry_rate_hz: float = 10.0,
        status_interval_s: float = 1.0,
        client_rate_hz: float = 2000.0,
        client_burst: int = 1000,
        client_queue: int = 1000,
    ) -> None:
        check_endpoints((endpoint, telemetry_endpoint), keys_dir, insecure)
        if max_message_bytes < 256:
            raise ValueError(f"max_message_bytes must be at least 256, got {max_message_bytes}")
        if telemetry_rate_hz <= 0 or status_interval_s <= 0:
            raise ValueError("telemetry_rate_hz and status_interval_s must be positive")
        if client_rate_hz <= 0 or client_burst < 1 or client_queue < 1:
            raise ValueError("client_rate_hz, client_burst and client_queue must be positive")
        self.target = target
        self._requested = (endpoint, telemetry_endpoint)
        self._curve = None if keys_dir is None else load_server_keys(keys_dir)
        self.max_message_bytes = max_message_bytes
        self._tick_s = 1.0 / telemetry_rate_hz
        self._status_interval_s = status_interval_s
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._status_due = True
        self._seq: dict[str, int] = collections.Counter()
        self._counts: collections.Counter[str] = collections.Counter()
        self._client_rate_hz = client_rate_hz
        self._client_burst = float(client_burst)
        self._client_queue = client_queue
        self._buckets: dict[bytes, tuple[float, float]] = {}  # identity → (tokens, at_s)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 5.0) -> ControlServer:
        """Bind both sockets and start serving; returns once bound. Raises OSError naming the
        endpoint when a bind fails."""
        if self._thread is not None:
            raise RuntimeError("the control server is already started")
        self._thread = threading.Thread(target=self._run, name="rtsep-control", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"the control server did not start within {timeout_s} s")
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop serving and close the sockets (within one telemetry tick)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- server thread ---------------------------------------------------------------------

    def _run(self) -> None:
        context = zmq.Context()
        auth = None
        sockets: list[zmq.Socket] = []
        try:
            if self._curve is not None:
                auth = ThreadAuthenticator(context)
                auth.start()
                auth.configure_curve(domain="*", location=str(self._curve[2]))
            limits = {
                zmq.MAXMSGSIZE: HARD_LIMIT_FACTOR * self.max_message_bytes,
                zmq.RCVHWM: self._client_queue,
            }
            router = self._socket(context, zmq.ROUTER, self._requested[0], sockets, limits)
            # XPUB_VERBOSE: every subscription comes up, not only the first to a topic.
            verbose = {zmq.XPUB_VERBOSE: 1}
            xpub = self._socket(context, zmq.XPUB, self._requested[1], sockets, verbose)
            self._endpoints = (
                router.getsockopt_string(zmq.LAST_ENDPOINT),
                xpub.getsockopt_string(zmq.LAST_ENDPOINT),
            )
        except Exception as exc:  # reported to start()'s caller
            self._start_error = exc
            self._close(sockets, auth, context)
            self._ready.set()
            return
        self._ready.set()
        try:
            self._serve(router, xpub)
        finally:
            self._close(sockets, auth, context)

    def _socket(
        self, context: zmq.Context, kind: int, endpoint: str, keep: list, options: dict
    ) -> zmq.Socket:
        """A socket of ``kind`` bound to ``endpoint``, ``options`` set before the bind (libzmq
        copies them into the listener there)."""
        sock = context.socket(kind)
        keep.append(sock)
        sock.linger = 0
        for option, value in options.items():
            sock.setsockopt(option, value)
        parts = split_tcp_endpoint(endpoint)
        if parts is not None and ":" in parts[0]:
            sock.ipv6 = True
        if self._curve is not None:
            sock.curve_server = True
            sock.curve_publickey, sock.curve_secretkey = self._curve[0], self._curve[1]
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            raise OSError(
                f"cannot bind {endpoint}: {exc.strerror}. Is another rtsep running there? "
                "Choose another endpoint ([control] in config.toml or --control)."
            ) from exc
        return sock

    @staticmethod
    def _close(sockets: list, auth: ThreadAuthenticator | None, context: zmq.Context) -> None:
        for sock in sockets:
            sock.close(linger=0)
        if auth is not None:
            auth.stop()
        context.term()

    def _serve(self, router: zmq.Socket, xpub: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(xpub, zmq.POLLIN)
        next_tick = time.monotonic()
        next_status = next_tick + self._status_interval_s
        while not self._stop.is_set():
            timeout_ms = max(0.0, (next_tick - time.monotonic()) * 1000.0)
            ready = dict(poller.poll(timeout_ms))
            if router in ready:
                self._serve_commands(router)
            if xpub in ready:
                self._read_subscriptions(xpub)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = max(next_tick + self._tick_s, now)
                if now >= next_status:
                    self._status_due = True
                try:
                    if self._publish_telemetry(xpub):
                        next_status = now + self._status_interval_s
                except Exception:  # a faulty target must not end command service
                    log.exception("control telemetry failed")
                    self._status_due = False

    def _serve_commands(self, router: zmq.Socket) -> None:
        for _ in range(_COMMAND_BATCH):
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            received_ns = time.monotonic_ns()
            reply = self._reply_frames(frames, received_ns)
            if reply is None:
                self._counts["dropped"] += 1
                continue
            try:
                router.send_multipart(reply, zmq.NOBLOCK)
            except zmq.Again:  # the client stopped reading: its reply is lost, not our time
                self._counts["replies_lost"] += 1
            time.sleep(0)  # hand the GIL over between messages: its other threads get a turn

    def _reply_frames(self, frames: list[bytes], received_ns: int) -> list[bytes] | None:
        """The reply (envelope + payload) to one ROUTER message, or None to drop it."""
        identity, body = frames[0], frames[1:]
        envelope = [identity]
        if body and body[0] == b"":
            envelope.append(b"")
            body = body[1:]
        if not body:
            return None
        self._counts["requests"] += 1
        if not self._take_token(identity):
            self._counts["rate_limited"] += 1
            message = f"over {self._client_rate_hz:g} messages/s from this client: slow down"
            return envelope + [encode_error(None, RATE_LIMITED, message)]
        if sum(len(frame) for frame in body) > self.max_message_bytes:
            error = ControlError(TOO_LARGE, f"message over {self.max_message_bytes} bytes")
        elif len(body) != 1:
            error = ControlError(BAD_FRAMES, f"expected 1 JSON frame, got {len(body)}")
        else:
            try:
                request = decode_request(body[0], self.max_message_bytes)
                return envelope + [self._execute(request, received_ns)]
            except ControlError as exc:
                error = exc
        self._counts["errors"] += 1
        self._counts[f"error.{error.code}"] += 1
        return envelope + [encode_error(error.request_id, error.code, error.message)]

    def _take_token(self, identity: bytes) -> bool:
        """Spend one of ``identity``'s tokens (refilled at ``client_rate_hz`` up to
        ``client_burst``); False when it has none left."""
        now = time.monotonic()
        tokens, at = self._buckets.get(identity, (self._client_burst, now))
        tokens = min(self._client_burst, tokens + (now - at) * self._client_rate_hz)
        if tokens < 1.0:
            self._buckets[identity] = (tokens, now)
            return False
        if identity not in self._buckets and len(self._buckets) >= _MAX_TRACKED_CLIENTS:
            refill_s = self._client_burst / self._client_rate_hz
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill_s}
        self._buckets[identity] = (tokens - 1.0, now)
        return True

    def _execute(self, request: Request, received_ns: int) -> bytes:
        """Run one valid request; ControlError propagates, anything else becomes INTERNAL."""
        try:
            result = self._dispatch(request, received_ns)
            return encode_result(request.id, result)
        except ControlError as exc:
            exc.request_id = request.id
            raise
        except Exception:
            log.exception("control command %r failed", request.cmd)
            raise ControlError(
                INTERNAL, f"{request.cmd} failed inside the server (see its log)", request.id
            ) from None

    def _dispatch(self, request: Request, received_ns: int) -> Any:
        target, args, cmd = self.target, request.args, request.cmd
        if cmd == "ping":
            return {"pong": True, "protocol": PROTOCOL_VERSION}
        if cmd == "status":
            return {**target.status(), "telemetry": self.telemetry_endpoint}
        if cmd == "list_labels":
            return target.list_labels()
        if cmd == "stats":
            return {**target.stats(), "control": dict(self._counts)}
        if cmd == "reset_stats":
            target.reset_stats()
            self._counts.clear()
            return {}
        if cmd == "set_cues":
            result = target.set_cues(args["cues"], received_ns)
        elif cmd == "set_mode":
            result = target.set_mode(args["mode"], received_ns)
        elif cmd == "set_gain":
            result = target.set_gain(args["output"], args["db"], received_ns)
        elif cmd == "mute":
            result = target.set_mute(args["output"], args["on"], received_ns)
        elif cmd == "solo":
            result = target.set_solo(args["output"], args["on"], received_ns)
        else:  # a command in protocol.COMMANDS that this server does not know: a bug
            raise RuntimeError(f"no handler for {cmd!r}")
        self._status_due = True
        return result

    def _read_subscriptions(self, xpub: zmq.Socket) -> None:
        while True:
            try:
                message = xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if message[:1] == b"\x01":  # a (re)subscription: give the newcomer the state now
                self._counts["subscriptions"] += 1
                self._status_due = True

    def _publish_telemetry(self, xpub: zmq.Socket) -> bool:
        """One tick: levels, engine events batched per topic, then status if due. Returns
        whether status was published."""
        levels = self.target.levels_db()
        if levels is not None:
            self._publish(xpub, TOPIC_LEVELS, {"levels_db": levels})
        batches: dict[str, list] = {}
        for topic, event in self.target.drain_events():
            batches.setdefault(topic, []).append(event)
        for topic, events in batches.items():
            self._publish(xpub, topic, {"events": events})
            self._status_due = True
        if not self._status_due:
            return False
        self._status_due = False
        status = {**self.target.status(), "telemetry": self.telemetry_endpoint}
        self._publish(xpub, TOPIC_STATUS, status)
        return True

    def _publish(self, xpub: zmq.Socket, topic: str, data: dict[str, Any]) -> None:
        try:
            xpub.send_multipart(encode_telemetry(topic, self._seq[topic], data), zmq.NOBLOCK)
        except zmq.Again:
            return
        self._seq[topic] += 1
        self._counts["telemetry_messages"] += 1
