"""File reader/writer: float32 [channels, frames], one-line errors, atomic writes, downmix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtsep.engine.file_io import AudioFileError, AudioFileWriter, read_audio, to_mono, write_audio


def _audio(channels: int = 2, frames: int = 1600) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.9, 0.9, (channels, frames)).astype(np.float32)


def test_float_wav_round_trips_exactly(tmp_path: Path) -> None:
    audio = _audio()
    path = write_audio(tmp_path / "a.wav", audio, 16000, subtype="FLOAT")
    read, rate_hz = read_audio(path)
    assert rate_hz == 16000 and read.dtype == np.float32 and read.flags.c_contiguous
    np.testing.assert_array_equal(read, audio)


def test_flac_round_trips_within_16_bit_quantisation(tmp_path: Path) -> None:
    audio = _audio(1)
    read, rate_hz = read_audio(write_audio(tmp_path / "a.flac", audio, 44100))
    assert read.shape == (1, 1600) and rate_hz == 44100
    np.testing.assert_allclose(read, audio, atol=1 / 32768)


def test_writer_streams_blocks_and_the_target_appears_only_on_close(tmp_path: Path) -> None:
    audio = _audio()
    target = tmp_path / "out.wav"
    writer = AudioFileWriter(target, 16000, 2, subtype="FLOAT")
    for start in range(0, 1600, 300):
        writer.write(audio[:, start : start + 300])
        assert not target.exists()
    assert writer.close() == target
    np.testing.assert_array_equal(read_audio(target)[0], audio)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_a_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    write_audio(target, _audio(), 16000)
    before = target.read_bytes()
    with pytest.raises(ValueError), AudioFileWriter(target, 16000, 2) as writer:
        writer.write(_audio(2, 100))
        writer.write(np.zeros((3, 100), dtype=np.float32))  # wrong channel count
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_unknown_extension_and_missing_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=r"unknown audio extension '\.xyz'.*\.wav"):
        AudioFileWriter(tmp_path / "a.xyz", 16000, 1)
    with pytest.raises(AudioFileError, match="output folder does not exist"):
        AudioFileWriter(tmp_path / "no" / "a.wav", 16000, 1)


def _corrupt(path: Path) -> None:
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)


def _zero_frames(path: Path) -> None:
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 16000)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "audio file not found"),
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: p.write_bytes(b""), r"audio file is empty \(0 bytes\)"),
        (_corrupt, "cannot decode .*corrupt or not an audio format"),
        (_zero_frames, "audio file has no samples"),
    ],
    ids=["missing", "directory", "empty", "corrupt", "no-samples"],
)
def test_unreadable_files_give_one_line_errors_naming_the_file(
    tmp_path: Path, make, message: str
) -> None:
    path = tmp_path / "in.wav"
    make(path)
    with pytest.raises(AudioFileError, match=message) as error:
        read_audio(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_to_mono_averages_channels_and_says_so() -> None:
    stereo = np.array([[1.0, 0.5], [0.0, -0.5]], dtype=np.float32)
    mono, downmixed = to_mono(stereo)
    assert downmixed and mono.dtype == np.float32
    np.testing.assert_array_equal(mono, [[0.5, 0.0]])
    already = stereo[:1]
    mono, downmixed = to_mono(already)
    assert mono is already and not downmixed


def test_nonfinite_samples_are_zeroed_in_place_and_counted() -> None:
    from rtsep.engine.file_io import replace_nonfinite

    audio = _audio()
    audio[0, 3], audio[1, 7], audio[1, 9] = np.nan, np.inf, -np.inf
    finite = audio[np.isfinite(audio)].copy()
    assert replace_nonfinite(audio) == 3
    assert np.isfinite(audio).all() and audio[0, 3] == audio[1, 7] == audio[1, 9] == 0.0
    np.testing.assert_array_equal(np.delete(audio.ravel(), [3, 1600 + 7, 1600 + 9]), finite)
    assert replace_nonfinite(audio) == 0


def test_written_files_get_the_umask_permissions_not_mkstemps(tmp_path: Path) -> None:
    import os

    old = os.umask(0o027)
    try:
        path = write_audio(tmp_path / "a.wav", _audio(1), 16000)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
