"""Audio files in and out: float32 ``[channels, frames]`` arrays, clear errors, atomic writes.

Reading accepts anything libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3, AIFF, …). Writing goes to a
hidden temporary file next to the target (``.NAME.XXXX.partial``) that is renamed over the target
only when the writer closes without error, so a target name never holds a half-written file; the
finished file has the permissions the user's umask gives any new file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf


class AudioFileError(Exception):
    """An audio file could not be read or written; the message is one line naming the file."""


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 ``[channels, frames]`` in [-1, 1] and its rate in Hz.

    Raises ``AudioFileError`` for a missing path, a directory, an empty (0-byte or 0-frame)
    file, or one libsndfile cannot decode.
    """
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioFileError(f"not a regular file: {path}")
    if path.stat().st_size == 0:
        raise AudioFileError(f"audio file is empty (0 bytes): {path}")
    try:
        data, rate_hz = sf.read(path, dtype="float32", always_2d=True)
    except sf.LibsndfileError as error:
        raise AudioFileError(
            f"cannot decode {path}: corrupt or not an audio format libsndfile knows "
            f"({error.error_string})"
        ) from error
    if data.shape[0] == 0:
        raise AudioFileError(f"audio file has no samples: {path}")
    return np.ascontiguousarray(data.T), int(rate_hz)


def replace_nonfinite(audio: np.ndarray) -> int:
    """Set every NaN and ±Inf sample of ``audio`` to 0, in place; returns how many there were."""
    bad = ~np.isfinite(audio)
    count = int(np.count_nonzero(bad))
    if count:
        audio[bad] = 0.0
    return count


def to_mono(audio: np.ndarray) -> tuple[np.ndarray, bool]:
    """Average ``[channels, frames]`` to ``[1, frames]``; the flag says whether it downmixed.

    Mono input is returned as is (no copy) with ``False``.
    """
    if audio.shape[0] == 1:
        return audio, False
    return audio.mean(axis=0, keepdims=True, dtype=np.float32), True


class AudioFileWriter:
    """Stream ``[channels, frames]`` blocks into ``path`` through a temporary file.

    ``close()`` renames the temporary file to ``path``; ``abort()`` (or leaving a ``with`` block
    by an exception) deletes it and leaves any existing ``path`` untouched. The format comes from
    the extension (``.wav``, ``.flac``, ``.ogg``, …); ``subtype`` defaults to libsndfile's for that
    format (16-bit PCM for WAV and FLAC; float samples beyond ±1 are clipped).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        rate_hz: int,
        channels: int,
        subtype: str | None = None,
    ) -> None:
        self.path = Path(path)
        audio_format = _format_for(self.path)
        if not self.path.parent.is_dir():
            raise AudioFileError(f"output folder does not exist: {self.path.parent}")
        fd, temp_name = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".partial"
        )
        try:  # mkstemp makes 0600 files; a finished file gets what open() would give it
            os.fchmod(fd, 0o666 & ~current_umask())
        finally:
            os.close(fd)
        self._temp_path = Path(temp_name)
        try:
            self._file = sf.SoundFile(
                self._temp_path, "w", rate_hz, channels, subtype, format=audio_format
            )
        except (sf.LibsndfileError, ValueError, TypeError) as error:
            self._temp_path.unlink(missing_ok=True)
            raise AudioFileError(f"cannot write {self.path}: {error}") from error
        self.frames_written = 0

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (``[channels, frames]``, float in [-1, 1])."""
        self._file.write(block.T)
        self.frames_written += block.shape[1]

    def close(self) -> Path:
        """Finish the file, flush it to disk and move it to ``path``; returns ``path``."""
        self._file.close()
        fd = os.open(self._temp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self._temp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written; ``path`` is left as it was."""
        self._file.close()
        self._temp_path.unlink(missing_ok=True)

    def __enter__(self) -> AudioFileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_audio(
    path: str | os.PathLike[str], audio: np.ndarray, rate_hz: int, subtype: str | None = None
) -> Path:
    """Write a whole ``[channels, frames]`` array atomically (see ``AudioFileWriter``)."""
    with AudioFileWriter(path, rate_hz, audio.shape[0], subtype) as writer:
        writer.write(audio)
    return writer.path


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not atomic, but only at start-up)
    os.umask(mask)
    return mask


def _format_for(path: Path) -> str:
    audio_format = path.suffix.lstrip(".").upper()
    formats = sf.available_formats()
    if audio_format not in formats:
        known = ", ".join(f".{name.lower()}" for name in sorted(formats))
        raise AudioFileError(
            f"cannot write {path}: unknown audio extension '{path.suffix}' (use one of {known})"
        )
    return audio_format
