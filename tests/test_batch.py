"""``rtsep batch``: one folder per file with the ``rtsep separate`` contract, in-process, in
worker processes and on a real local Ray cluster; failures reported, runs resumable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtsep.batch import is_complete, output_folders
from rtsep.cli.main import main
from rtsep.stems import EXAMPLE

RATE = 16000
CUES = ["speech", "music"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Four short real-audio-like files (two sharing a stem in different folders) and a
    corrupt one."""
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(8)
    t = np.arange(RATE) / RATE
    for index, name in enumerate(["a/mix.wav", "b/mix.wav", "c.flac", "d.wav"]):
        signal = 0.2 * np.sin(2 * np.pi * (200 + 150 * index) * t) + 0.05 * rng.standard_normal(
            t.size
        )
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        sf.write(path, signal[: RATE // (1 + index % 2)].astype(np.float32), RATE)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00 this is not audio")
    return folder


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> dict[str, Path]:
    """``rtsep separate`` of each good file, one folder each."""
    folders = {}
    for path in sorted(p for p in inputs.rglob("*") if p.is_file() and p.name != "broken.wav"):
        out = tmp_path_factory.mktemp("separate")
        assert main(["separate", str(path), "--out", str(out), *_cue_flags()]) == 0
        folders[str(path)] = out
    return folders


def _cue_flags(cues=CUES) -> list[str]:
    return [flag for cue in cues for flag in ("--cue", cue)]


@pytest.fixture(scope="module")
def example_pieces(tmp_path_factory) -> Path:
    """Real audio of different lengths: pieces of the shipped example (one of them stereo)
    and a corrupt file."""
    folder = tmp_path_factory.mktemp("pieces")
    mixture, rate = sf.read(EXAMPLE, dtype="float32")
    for name, start_s, seconds in [("long", 0.0, 2.5), ("short", 3.0, 0.6), ("mid", 5.0, 1.3)]:
        piece = mixture[int(start_s * rate) : int((start_s + seconds) * rate)]
        sf.write(folder / f"{name}.wav", piece, rate)
    stereo = mixture[int(1.5 * rate) : int(3.5 * rate)]
    sf.write(folder / "stereo.flac", np.stack([stereo, 0.5 * stereo], axis=1), rate)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00 this is not audio")
    return folder


def check_batch(out: Path, reference: dict[str, Path]) -> dict:
    record = json.loads((out / "batch.json").read_text())
    by_input = {entry["input"]: entry for entry in record["inputs"]}
    broken = [entry for name, entry in by_input.items() if name.endswith("broken.wav")]
    assert len(broken) == 1 and broken[0]["status"] == "failed"
    assert "broken.wav" in broken[0]["error"] and "\n" not in broken[0]["error"]
    assert not is_complete(Path(broken[0]["folder"]))
    for path, folder in reference.items():
        entry = by_input[path]
        assert entry["status"] in ("done", "skipped"), entry
        expected = json.loads((folder / "report.json").read_text())
        got = json.loads((Path(entry["folder"]) / "report.json").read_text())
        assert got["files"] == expected["files"]
        changed = {key for key in expected.keys() | got.keys() if got.get(key) != expected.get(key)}
        assert changed <= {"rtf", "backend"}, changed  # timing; torch-batched with --streams
        for name in expected["files"]:
            if name.endswith(".wav"):
                a, _ = sf.read(folder / name, dtype="float32")
                b, _ = sf.read(Path(entry["folder"]) / name, dtype="float32")
                assert a.shape == b.shape
                assert np.abs(a - b).max() <= 1e-4 * max(1e-9, np.abs(a).max()), (path, name)
    return record


def test_output_folders_follow_the_stem_with_a_counter_for_clashes(tmp_path):
    paths = [Path("a/mix.wav"), Path("b/mix.wav"), Path("c/mix.flac"), Path("take.wav")]
    names = [f.name for f in output_folders(paths, tmp_path)]
    assert names == ["mix", "mix-2", "mix-3", "take"]


def test_batch_in_process_matches_separate_reports_failures_and_resumes(
    inputs, reference, tmp_path
):
    out = tmp_path / "out"
    assert main(["batch", str(inputs), "--out", str(out), *_cue_flags()]) == 1  # one failed
    record = check_batch(out, reference)
    assert (record["done"], record["skipped"], record["failed"]) == (4, 0, 1)
    # A second run redoes only what is not complete: here the one whose report is gone.
    redo = Path(record["inputs"][0]["folder"])
    (redo / "report.json").unlink()
    assert main(["batch", str(inputs), "--out", str(out), *_cue_flags()]) == 1
    record = check_batch(out, reference)
    assert (record["done"], record["skipped"], record["failed"]) == (1, 3, 1)
    assert record["inputs"][0]["status"] == "done"


# --streams 2 (each worker batches two streams) stays in make test; --streams 1 (a Streamer per
# file, as in-process above) in worker processes is in the slow group.
@pytest.mark.parametrize("streams", [pytest.param("1", marks=pytest.mark.slow), "2"])
def test_batch_with_two_worker_processes_matches_separate(inputs, reference, tmp_path, streams):
    out = tmp_path / "out"
    flags = ["--workers", "2", "--streams", streams, *_cue_flags()]
    assert main(["batch", str(inputs), "--out", str(out), *flags]) == 1
    record = check_batch(out, reference)
    assert (record["done"], record["failed"]) == (4, 1)


@pytest.mark.slow
def test_batch_on_a_local_ray_cluster_matches_separate(inputs, reference, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    flags = ["--ray", "local", "--workers", "2", *_cue_flags()]
    assert main(["batch", str(inputs), "--out", str(out), *flags]) == 1
    record = check_batch(out, reference)
    assert (record["done"], record["failed"], record["ray"]) == (4, 1, "local")


@pytest.mark.parametrize("cues", [CUES, []], ids=["cues", "separate-everything"])
def test_batched_streams_match_separate_for_files_of_different_lengths(
    example_pieces, tmp_path, cues
):
    reference = {}
    for path in sorted(example_pieces.glob("[!b]*")):
        folder = reference[str(path)] = tmp_path / "separate" / path.stem
        assert main(["separate", str(path), "--out", str(folder), *_cue_flags(cues)]) == 0
    out = tmp_path / "out"
    flags = ["--streams", "3", *_cue_flags(cues)]  # groups of 3 and 2, the corrupt one among them
    assert main(["batch", str(example_pieces), "--out", str(out), *flags]) == 1
    record = check_batch(out, reference)
    assert (record["done"], record["failed"], record["streams"]) == (4, 1, 3)


def test_batch_refuses_zero_workers(inputs, tmp_path, capsys):
    assert main(["batch", str(inputs), "--out", str(tmp_path / "out"), "--workers", "0"]) == 1
    error = capsys.readouterr().err
    assert "--workers takes a whole number >= 1" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()
