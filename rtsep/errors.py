"""Errors of the user's making, as the one line every front end shows for them."""

from __future__ import annotations


def user_message(error: BaseException) -> str | None:
    """The one line to show for an error of the user's making, or ``None`` for a bug.

    Control-protocol errors (a bad cue set, say), audio-file errors, ``ValueError`` and
    ``OSError`` are the user's; anything else keeps its traceback.
    """
    from .bindings.protocol import ControlError
    from .engine.file_io import AudioFileError

    if isinstance(error, ControlError):
        text = error.message
    elif isinstance(error, AudioFileError | ValueError | OSError):
        text = str(error)
        if isinstance(error, OSError) and error.filename and error.strerror:
            text = f"{error.strerror}: {error.filename}"
    else:
        return None
    return " ".join(text.split()) or type(error).__name__
