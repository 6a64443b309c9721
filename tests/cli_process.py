"""``rtsep`` command lines in real child processes that skip the interpreter's start-up.

A fresh ``python -m rtsep.cli.main`` spends ~3 s starting Python and importing torch, numba
and scipy before it reads a file. :class:`PreloadedCli` starts one Python process that
imports every command module (what ``rtsep --help`` imports) and the heavy modules that the
commands import when they run (:data:`PRELOAD`; not the text encoder's transformers), then
forks a child per command line.

Each child is a real process: its own working folder and umask, stdout and stderr written to
files, ``main(argv)`` run, and the exit the interpreter makes (a ``SystemExit`` code, or the
traceback of an uncaught exception and 1; non-daemon threads joined, atexit handlers run,
stdout and stderr flushed), less the module teardown: in a forked child that copies every
page it touches and took 1.5 s. What the imports wrote to stderr is written to each child's
stderr first, as a fresh process would write it, so a warning at import time still shows in
every result. The environment is the one the server was started with, for every child.
Not preloaded: onnxruntime (a child forked after importing it hung at exit).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Imported by the server before it forks: what ``rtsep separate`` imports as it runs.
PRELOAD = ("rtsep.engine.file_runner", "rtsep.stems")

#: The server: import, then fork one child per request line; the parent answers each with
#: the child's pid, then its exit status. A child leaves ``serve()`` with its argv, runs
#: ``main`` and exits as ``python -m rtsep.cli.main`` would (see the module doc).
_SERVER = r"""
import atexit, importlib, json, os, sys, tempfile, threading
requests, replies = os.fdopen(os.dup(0)), os.fdopen(os.dup(1), "w")
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 0)
os.dup2(null, 1)
imports = tempfile.TemporaryFile()
server_stderr = os.dup(2)
os.dup2(imports.fileno(), 2)
import rtsep.cli.main as cli
cli.COMMANDS
for name in sys.argv[1:]:
    importlib.import_module(name)
sys.stdout.flush()
sys.stderr.flush()
os.dup2(server_stderr, 2)
imports.seek(0)
preamble = imports.read()
assert threading.active_count() == 1, "a thread runs before fork: " + str(threading.enumerate())


def serve():
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            requests.close()
            replies.close()
            os.chdir(request["cwd"])
            os.umask(request["umask"])
            for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            os.write(2, preamble)
            sys.argv = [cli.__file__, *request["argv"]]
            return request["argv"]
        replies.write(f"{pid}\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(f"{os.waitstatus_to_exitcode(status)}\n")
        replies.flush()
    os._exit(0)


argv = serve()
try:
    code = cli.main(argv)
except SystemExit as stop:
    code = stop.code
except BaseException:
    sys.excepthook(*sys.exc_info())
    code = 1
if code is None:
    code = 0
elif not isinstance(code, int):
    print(code, file=sys.stderr)
    code = 1
threading._shutdown()
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code & 0xFF)
"""


class PreloadedCli:
    """Runs ``rtsep`` command lines as forked children of one preloaded Python process
    (see the module doc). Use as a context manager; call it like ``subprocess.run``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._folder = tempfile.TemporaryDirectory(prefix="rtsep-cli-")
        self._server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, *PRELOAD],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._pending = b""
        self._count = 0

    def __enter__(self) -> PreloadedCli:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._server.poll() is None:
            self._server.stdin.close()  # the server's loop ends: it exits
            try:
                self._server.wait(30)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        self._folder.cleanup()

    def __call__(
        self, *argv: str, cwd: Path | None = None, umask: int = 0o022, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        """Run ``rtsep ARGV`` in a child; returns its exit status, stdout and stderr (text)."""
        self._count += 1
        out = Path(self._folder.name) / f"{self._count}.out"
        err = Path(self._folder.name) / f"{self._count}.err"
        request = {
            "argv": list(argv),
            "cwd": str(cwd or Path.cwd()),
            "umask": umask,
            "stdout": str(out),
            "stderr": str(err),
        }
        self._server.stdin.write(json.dumps(request).encode() + b"\n")
        self._server.stdin.flush()
        pid = int(self._reply(60))
        try:
            code = int(self._reply(timeout))
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            raise
        return subprocess.CompletedProcess(
            ["rtsep", *argv], code, out.read_text(errors="replace"), err.read_text(errors="replace")
        )

    def _reply(self, timeout: float) -> str:
        """The server's next line (unbuffered reads: ``select`` sees only the pipe)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._server.stdout], [], [], left)[0]:
                raise TimeoutError(f"no reply from the preloaded rtsep within {timeout} s")
            data = os.read(self._server.stdout.fileno(), 4096)
            if not data:
                raise RuntimeError(f"the preloaded rtsep exited ({self._server.wait()})")
            self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()
