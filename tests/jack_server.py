"""A JACK server on the dummy driver as a test sound card, and a JACK client that plays/records.

``JackServer`` runs ``jackd --no-realtime -d dummy`` under a unique server name (so parallel
test runs cannot collide) and points PortAudio at it: PortAudio enumerates JACK only when it
initialises, so ``start()`` re-initialises it after the server accepts clients and ``stop()``
terminates PortAudio *before* the server goes (PortAudio holds a JACK client), then
re-initialises it so later tests can use PortAudio again. Streams must be closed before
``stop()``. One server per process at a time.

Facts this relies on (measured): the server accepts clients ~0.2 s after launch; sounddevice
shows it as "system, JACK Audio Connection Kit"; a PortAudio stream's ports are named
``PortAudio:in_N``/``PortAudio:out_N`` with N changing on every open, so look them up.
libjack (jack2) deactivates a client with a process callback by cancelling its process thread
*asynchronously*: a thread cancelled inside a Python callback dies holding the GIL and the
whole test process hangs (it did, with the recorder late on a loaded machine; deactivating a
client whose callback is busy hangs every time). ``JackPlayRecord.close`` avoids that.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import jack

JACKD = shutil.which("jackd")
INSTALL_HINT = "apt-get install -y --no-install-recommends jackd2 libportaudio2"
_names = itertools.count()
_cleanup_registered: list[bool] = []  # clean_jack_shm registered at exit (once)


class JackServer:
    """``jackd`` on the dummy driver at ``rate_hz`` with ``period_frames`` per cycle."""

    def __init__(self, rate_hz: int, period_frames: int, channels: int = 2) -> None:
        self.rate_hz = rate_hz
        self.period_frames = period_frames
        self.channels = channels
        self.name = f"rtsep-test-{os.getpid()}-{next(_names)}"
        self._process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()
        self._saved_env: dict[str, str | None] = {}
        self._portaudio = True

    def start(self, timeout_s: float = 10.0, portaudio: bool = True) -> JackServer:
        """Launch the server, wait until it accepts clients, and re-initialise PortAudio.

        ``portaudio=False``: leave this process's PortAudio and environment alone (for a
        server that a test kills under a subprocess: PortAudio cannot terminate once its
        JACK server is gone); give the subprocess :meth:`client_env`."""
        import jack

        if JACKD is None:
            raise RuntimeError(f"jackd is not installed: {INSTALL_HINT}")
        channels = str(self.channels)
        command = [JACKD, "-n", self.name, "--no-realtime", "-d", "dummy"]
        command += ["-r", str(self.rate_hz), "-p", str(self.period_frames)]
        command += ["-C", channels, "-P", channels]
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        self._process = subprocess.Popen(command, env=env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                jack.Client("rtsep-probe", no_start_server=True, servername=self.name).close()
                break
            except jack.JackOpenError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jackd did not start: {self.log()}") from None
                time.sleep(0.05)
        self._portaudio = portaudio
        if not portaudio:
            return self
        import sounddevice as sd

        for key, value in self.client_env().items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        sd._terminate()
        sd._initialize()
        return self

    def client_env(self) -> dict[str, str]:
        """Environment variables that point a JACK client (PortAudio) at this server."""
        return {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def pause(self, seconds: float) -> None:
        """SIGSTOP the server for ``seconds``, then SIGCONT: its cycles fall behind and it
        reports an xrun to every client (a machine that stalled the audio thread)."""
        assert self._process is not None, "the server is not running"
        self._process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the server (a device that vanishes). Only for servers started with
        ``portaudio=False``.

        A killed server leaks its files in ``/dev/shm`` and its slot in JACK's shared-memory
        registry (after a few, new servers fail with "Too many servers already active").
        Its own files go now; the registry is cleaned when this process exits, if no jackd
        runs then (``clean_jack_shm``): removing it now would break the registry mapping
        that libjack keeps in this process, and every later JACK test here with it."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait()
        self._process = None
        for path in glob.glob(f"/dev/shm/jack*{self.name}*"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        if not _cleanup_registered:
            atexit.register(clean_jack_shm)
            _cleanup_registered.append(True)

    def stop(self) -> None:
        """Terminate PortAudio, stop the server (SIGTERM, then SIGKILL after 5 s), restore.

        Idempotent."""
        import sounddevice as sd

        if self._process is None:
            return
        if not self._portaudio:
            self._process.terminate()
            self._process.wait(5)
            self._process = None
            return
        sd._terminate()
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        self._process = None
        sd._initialize()

    def log(self) -> str:
        """The end of the server's stdout and stderr so far."""
        return self._output()[-2000:]

    def graph_errors(self) -> int:
        """Cycles so far whose graph failed because a client was late: jackd logs each as
        "Process error". PortAudio's xrun flags missed some (1000-frame blocks on 256-frame
        periods: its buffer adapter does not call the stream back every cycle)."""
        return self._output().count("Process error")

    def _output(self) -> str:
        """All the server wrote so far, read with ``pread``: jackd shares the file offset."""
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def client(self, name: str = "rtsep-test") -> jack.Client:
        """A JACK-Client connected to this server (close it when done)."""
        import jack

        return jack.Client(name, no_start_server=True, servername=self.name)


def clean_jack_shm() -> bool:
    """Remove ``/dev/shm/jack*`` if no jackd runs on this machine; returns whether it did."""
    running = subprocess.run(["pgrep", "-x", "jackd"], capture_output=True, check=False)
    if running.returncode == 0:
        return False
    for path in glob.glob("/dev/shm/jack*"):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    return True


def stream_ports(client: jack.Client, direction: str) -> list:
    """The audio ports of the open PortAudio stream: ``direction`` is "in" or "out"."""
    ports = client.get_ports(
        r"^PortAudio:", is_audio=True, is_input=direction == "in", is_output=direction == "out"
    )
    return sorted(ports, key=lambda port: port.name)


def patch(client: jack.Client, sources: list, destinations: list) -> None:
    """Connect ``sources[i]`` to ``destinations[i]`` only: drop their other connections."""
    for port in [*sources, *destinations]:
        for other in client.get_all_connections(port):
            if port.is_output:
                client.disconnect(port, other)
            else:
                client.disconnect(other, port)
    for source, destination in zip(sources, destinations, strict=True):
        client.connect(source, destination)


class JackPlayRecord:
    """A JACK client that plays ``signal`` (``[channels, frames]``) and records ``record_frames``
    frames of ``record_channels`` channels (default: as many as ``signal`` has).

    Playing and recording start in the same JACK process cycle, so a recording of its own
    output patched straight back shows the graph's delay. Connect its ports with
    ``connect_output_to``/``connect_input_from`` (port names are looked up at call time), then
    ``run()``.
    """

    def __init__(
        self,
        server: JackServer,
        signal: np.ndarray,
        record_frames: int,
        record_channels: int | None = None,
    ) -> None:
        self.client = server.client("rtsep-playrec")
        channels = signal.shape[0]
        record_channels = record_channels or channels
        self._signal = np.ascontiguousarray(signal, dtype=np.float32)
        self.recording = np.zeros((record_channels, record_frames), dtype=np.float32)
        self._outports = [self.client.outports.register(f"out_{i}") for i in range(channels)]
        self._inports = [self.client.inports.register(f"in_{i}") for i in range(record_channels)]
        self._position = -1  # -1: idle; >= 0: frames done since run() began
        self._done = threading.Event()
        self._thread_id: int | None = None  # the process thread's native id, once it runs
        self._exit: type[Exception] | None = None  # raised by the next callback: close()
        self.client.set_process_callback(self._process)
        self.client.activate()

    def connect_output_to(self, ports: list) -> None:
        """Feed this client's outputs into ``ports`` (e.g. a stream's input ports)."""
        patch(self.client, self._outports, ports)

    def connect_input_from(self, ports: list) -> None:
        """Record ``ports`` (e.g. a stream's output ports)."""
        patch(self.client, ports, self._inports)

    def run(self, timeout_s: float = 10.0) -> np.ndarray:
        """Play and record from the next cycle on; returns the ``[channels, frames]`` recording."""
        self._done.clear()
        self._position = 0
        if not self._done.wait(timeout_s):
            raise TimeoutError("the JACK server stopped calling the client")
        return self.recording

    def close(self, timeout_s: float = 5.0) -> None:
        """End the process thread from inside, then close the client.

        The next process callback raises ``jack.CallbackExit``, on which libjack deactivates
        the client from its own thread and ends that thread; closing waits for the thread to
        be gone (Linux: ``/proc/self/task``), so deactivation never cancels it inside Python
        (see the module doc). After ``timeout_s`` without a callback the server is not
        cycling, the thread waits inside libjack and closing is safe anyway.
        """
        import jack

        self._exit = jack.CallbackExit
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (
            self._thread_id is None or os.path.exists(f"/proc/self/task/{self._thread_id}")
        ):
            time.sleep(0.001)
        self.client.close()

    def _process(self, frames: int) -> None:
        self._thread_id = threading.get_native_id()
        if self._exit is not None:
            raise self._exit
        start = self._position
        if start < 0:
            for port in self._outports:
                port.get_array().fill(0.0)
            return
        total = self.recording.shape[1]
        count = min(frames, total - start)
        played = max(0, min(frames, self._signal.shape[1] - start))
        for channel, inport in enumerate(self._inports):
            self.recording[channel, start : start + count] = inport.get_array()[:count]
        for channel, outport in enumerate(self._outports):
            out = outport.get_array()
            out[:played] = self._signal[channel, start : start + played]
            out[played:] = 0.0
        if start + count >= total:
            self._position = -1
            self._done.set()
        else:
            self._position = start + count
