"""What the live benchmarks share: a JACK dummy-driver server, a C client (``jack_metro``)
playing into ``rtsep live``, and ``rtsep live`` itself as a child process.

Everything runs as separate processes, as a user runs them: ``jackd -R -d dummy`` (real-time
scheduling, jackd's default priority 10, as on a tuned audio machine; ``--no-realtime`` where
the OS does not allow it or the caller asks), ``jack_metro`` (clicks, a JACK client written in
C, so it is never the late one) patched into the PortAudio input of ``rtsep live``, and
``rtsep live --control`` so the benchmark can read the engine's counters over the control
channel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from rtsep.bench.machine import cpu_model, free_port, git_commit
from rtsep.engine.realtime import realtime_allowed


class JackDummy:
    """``jackd`` on the dummy driver under a unique name; ``env`` points clients at it.

    ``realtime``: ask for ``-R`` (SCHED_FIFO); granted only where this process may use
    SCHED_FIFO (a jackd refused it keeps "real-time mode" without it and overruns nearly
    every cycle), else ``--no-realtime``. ``self.realtime`` says which ran."""

    def __init__(self, rate_hz: int, period_frames: int, realtime: bool = True) -> None:
        if shutil.which("jackd") is None:
            raise SystemExit("jackd is not installed: apt-get install -y jackd2 libportaudio2")
        self.name = f"rtsep-bench-{os.getpid()}"
        self.rate_hz = rate_hz
        self.period_frames = period_frames
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")
        self.env["JACK_NO_AUDIO_RESERVATION"] = "1"
        self._log = tempfile.TemporaryFile()
        self.realtime = realtime and realtime_allowed()
        scheduling = "-R" if self.realtime else "--no-realtime"
        command = ["jackd", "-n", self.name, scheduling, "-d", "dummy"]
        command += ["-r", str(rate_hz), "-p", str(period_frames), "-C", "2", "-P", "2"]
        self.process = subprocess.Popen(command, env=self.env, stdout=self._log, stderr=self._log)
        done = subprocess.run(
            ["jack_wait", "-s", self.name, "-w", "-t", "10"], env=self.env, capture_output=True
        )
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"jackd did not start: {self.log()[-2000:]}")

    def log(self) -> str:
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def counts(self) -> dict:
        """What the server logged so far: cycles where a client was late ("Process error")
        and the clients it named as late, with how often."""
        log = self.log()
        late = re.findall(r"client = (\S+) was not (?:finished|run)", log)
        named: dict[str, int] = {}
        for client in late:
            named[client] = named.get(client, 0) + 1
        return {"process_errors": log.count("Process error"), "late_clients": named}

    def ports(self, pattern: str, *flags: str) -> list[str]:
        out = subprocess.run(
            ["jack_lsp", "-s", self.name, *flags], env=self.env, capture_output=True, text=True
        ).stdout
        return sorted(line.strip() for line in out.splitlines() if re.search(pattern, line))

    def connect(self, source: str, destination: str) -> None:
        subprocess.run(
            ["jack_connect", "-s", self.name, source, destination], env=self.env, check=True
        )

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 5 s), then remove what a server that did not clean up left
        in ``/dev/shm``: its own files, and JACK's registry if no jackd runs (a full registry
        makes every new server fail with "Too many servers already active")."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in Path("/dev/shm").glob(f"jack*{self.name}*"):
            path.unlink(missing_ok=True)
        if subprocess.run(["pgrep", "-x", "jackd"], capture_output=True).returncode != 0:
            for path in Path("/dev/shm").glob("jack*"):
                if path.is_file():
                    path.unlink(missing_ok=True)


def scheduling(pid: int) -> dict[str, int]:
    """How the threads of process ``pid`` are scheduled now: ``{"NAME CLASS PRIO": count}``
    (``ps``: TS normal, FF SCHED_FIFO, RR SCHED_RR; PRIO "-" when not real-time)."""
    out = subprocess.run(
        ["ps", "-L", "-o", "comm=,cls=,rtprio=", "-p", str(pid)], capture_output=True, text=True
    ).stdout
    threads: dict[str, int] = {}
    for line in out.splitlines():
        key = " ".join(line.split())
        threads[key] = threads.get(key, 0) + 1
    return threads


def cpu_jiffies() -> dict[str, int]:
    """All CPUs' time so far from ``/proc/stat``, in clock ticks: ``busy``, ``idle`` and
    ``steal`` (time a virtual machine's CPUs wanted to run but the host ran something else:
    no scheduling inside the guest, real-time or not, can win it back)."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq
    return {"busy": busy, "idle": idle + iowait, "steal": steal}


def busy_loop() -> None:
    """A CPU-heavy job for one core, until SIGTERM: a training-like torch loop (an LSTM of
    256 units over batches of 8 x 100 frames of 64 features, forward, backward and an Adam
    step) on one thread. Prints "ready" after its first step, then at SIGTERM one line:
    ``STEPS SECONDS`` done since then."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    network = torch.nn.LSTM(64, 256, batch_first=True)
    head = torch.nn.Linear(256, 64)
    optimiser = torch.optim.Adam([*network.parameters(), *head.parameters()], lr=1e-4)
    inputs, targets = torch.randn(8, 100, 64), torch.randn(8, 100, 64)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def step() -> None:
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(head(network(inputs)[0]), targets)
        loss.backward()
        optimiser.step()

    step()
    print("ready", flush=True)
    steps, started = 0, time.monotonic()
    while not stop:
        step()
        steps += 1
    print(steps, round(time.monotonic() - started, 3), flush=True)


class CpuLoad:
    """``processes`` copies of :func:`busy_loop` (one core each) beside a run, as a
    musician's machine runs a build or a training beside its audio. A context manager:
    entering returns once each has done a step; leaving ends them and sets ``steps_per_s``,
    the work each did (so a reader sees the load really ran: an idle one would show 0)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.steps_per_s: list[float] = []
        self._jobs: list[subprocess.Popen] = []

    def __enter__(self) -> CpuLoad:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        command = [sys.executable, "-c", "from benchmarks.live_jack import busy_loop; busy_loop()"]
        for _ in range(self.processes):
            job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
            self._jobs.append(job)
        for job in self._jobs:
            if job.stdout is None or job.stdout.readline().strip() != "ready":
                self.__exit__()
                raise RuntimeError("a CPU-load process did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for job in self._jobs:
            job.terminate()
            out, _ = job.communicate(timeout=30)
            done = out.split()
            rate = int(done[0]) / float(done[1]) if len(done) == 2 and float(done[1]) else 0.0
            self.steps_per_s.append(round(rate, 1))
        self._jobs = []


def start_metro(server: JackDummy) -> subprocess.Popen:
    """``jack_metro`` at 120 bpm, 440 Hz: a C client that plays into the graph."""
    metro = subprocess.Popen(
        ["jack_metro", "-b", "120", "-f", "440", "-n", "metro"],
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not server.ports(r"^metro:"):
        if time.monotonic() > deadline or metro.poll() is not None:
            raise RuntimeError("jack_metro did not start")
        time.sleep(0.1)
    return metro


def start_live(
    server: JackDummy, log_path: Path, audio: str, config: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """``rtsep [--config CONFIG] live`` at the server's rate and period with a cue and its
    control channel; returns ``(process, endpoint)`` once its header line is out (audio
    running)."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "rtsep.cli.main"]
    command += ["--config", str(config)] if config else []
    command += ["live", "--input", "system"]
    command += ["--output", "system", "--samplerate", str(server.rate_hz)]
    command += ["--blocksize", str(server.period_frames), "--cue", "speech", "--audio", audio]
    command += ["--control", endpoint, "--telemetry", "tcp://127.0.0.1:*"]
    env = dict(server.env, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    log = open(log_path, "w")  # noqa: SIM115 (the child keeps writing to it)
    live = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while "live: " not in log_path.read_text():
        if live.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"rtsep live did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)
    return live, endpoint


def patch_metro_into_live(server: JackDummy) -> None:
    """Feed ``metro`` into every PortAudio input port (the stream's, looked up now).

    (``rtsep live`` opens the device "system": PortAudio lists every JACK client as a device,
    metro too.)"""
    (source,) = server.ports(r"^metro:")
    deadline = time.monotonic() + 10  # the stream registers its ports just after the header
    while not (inputs := server.ports(r"^PortAudio:in")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no PortAudio input ports: {server.ports('.')}")
        time.sleep(0.1)
    for destination in inputs:
        server.connect(source, destination)


def stop_live(live: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """Ctrl-C (SIGINT) ``rtsep live`` and wait for it; returns its exit status."""
    if live.poll() is None:
        live.send_signal(signal.SIGINT)
        try:
            live.wait(timeout_s)
        except subprocess.TimeoutExpired:
            live.kill()
            live.wait()
    return live.returncode


def summary_counts(log_text: str) -> dict:
    """The counts in ``rtsep live``'s closing line ("stopped after ..."): seconds, deadline
    misses, xruns, samples dropped, real-time factor and compute per chunk (p99, max; ms)."""
    match = re.search(
        r"stopped after ([\d.]+) s: (\d+) deadline misses, (\d+) xruns, (\d+) samples dropped, "
        r"real-time factor ([\d.]+) \(compute per chunk p99 ([\d.]+) ms, max ([\d.]+) ms\)",
        log_text,
    )
    if not match:
        return {}
    seconds, misses, xruns, dropped, factor, p99, peak = match.groups()
    return {
        "seconds": float(seconds),
        "deadline_misses": int(misses),
        "xruns": int(xruns),
        "dropped_samples": int(dropped),
        "real_time_factor": float(factor),
        "compute_ms_p99": float(p99),
        "compute_ms_max": float(peak),
    }


def end_all(server: JackDummy, *children: subprocess.Popen | None) -> None:
    """Stop the children still running (SIGTERM: a JACK client closes cleanly; SIGKILL after
    5 s), then the server."""
    for child in children:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    server.stop()


def write_results(
    name: str,
    argv: list[str],
    results: dict,
    markdown: Callable[[dict], str],
    out: Path,
    stem: str | None = None,
) -> None:
    """Add the date, command and machine to ``results``; write STEM.json and STEM.md into
    ``out`` (``stem`` defaults to ``name``, the benchmark's module) and print the Markdown."""
    results = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"python -m benchmarks.{name} " + " ".join(argv),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "git_commit": git_commit(),
            "note": "a shared, loaded machine: timings are noisy (load averages beside them)",
        },
        **results,
    }
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or name
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(results))
    print(markdown(results))
