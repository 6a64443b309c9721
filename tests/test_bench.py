"""``rtsep bench latency``: every column for every configuration, valid JSON and Markdown.

Structure only: timings depend on the machine and its load, so no test asserts a threshold.
"""

from __future__ import annotations

import argparse
import json
import re

import pytest

from rtsep.bench import latency as bench_latency
from rtsep.cli import bench_cmd

ROW_KEYS = {
    "backend",
    "rate_hz",
    "block_samples",
    "cues",
    "mode",
    "outputs",
    "latency_samples",
    "latency_ms",
    "latency_terms",
    "chunk_ms",
    "chunks",
    "compute_ms_p50",
    "compute_ms_p99",
    "compute_ms_max",
    "hop_compute_ms_p50",
    "hop_compute_ms_p99",
    "real_time_factor",
    "wall_real_time_factor",
    "late_chunks",
    "callbacks",
    "deadline_misses",
    "dropped_samples",
    "compute_ms_histogram",
}


def bench(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rtsep")
    bench_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", "latency", *argv])
    return args.run(args)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple:
    """One block, one rate, both backends, one cue and none: 0.2 s of audio each."""
    out = tmp_path_factory.mktemp("bench")
    argv = [
        "--seconds",
        "0.2",
        "--blocks",
        "256",
        "--rates",
        "44100",
        "--cues",
        "speech",
        "none",
        "--out",
        str(out),
    ]
    assert bench(argv) == 0
    return out, json.loads((out / "latency.json").read_text())


def test_every_configuration_gets_a_row_with_every_field(tiny_run):
    _, results = tiny_run
    rows = results["rows"]
    configurations = {
        (r["backend"], r["rate_hz"], r["block_samples"], tuple(r["cues"])) for r in rows
    }
    assert configurations == {
        (backend, 44100, 256, cues)
        for backend in ("torch", "onnxruntime")
        for cues in (("speech",), ())
    }
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["chunks"] > 0 and row["compute_ms_max"] >= row["compute_ms_p50"] >= 0
        assert row["wall_real_time_factor"] is not None
        assert row["deadline_misses"] is None and row["dropped_samples"] is None
        assert row["latency_ms"] == pytest.approx(1000 * row["latency_samples"] / 44100, abs=1e-3)


def test_separating_everything_has_one_output_per_eda_slot(tiny_run):
    _, results = tiny_run
    modes = {tuple(r["cues"]): (r["mode"], r["outputs"]) for r in results["rows"]}
    assert modes[("speech",)] == ("extract", 1)
    assert modes[()] == ("separate", results["model"]["max_sources"])


def test_results_record_the_machine_the_load_and_the_command(tiny_run):
    _, results = tiny_run
    machine = results["machine"]
    for key in ("cpu", "cores", "torch", "onnxruntime", "git_commit", "load_before", "load_after"):
        assert key in machine
    assert len(machine["load_before"]) == len(machine["load_after"]) == 3
    assert results["command"].startswith("rtsep bench latency --seconds 0.2")
    assert results["paced"] is False and results["threads"] == 1
    assert results["budget_ms_per_hop"] == pytest.approx(0.25 * results["hop_ms"])


def test_markdown_has_every_column_and_one_row_per_configuration(tiny_run):
    out, results = tiny_run
    text = (out / "latency.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("|")]
    headers = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert headers == [header for header, _ in bench_latency.COLUMNS]
    assert len(table) == 2 + len(results["rows"])
    assert all(line.count("|") == len(headers) + 1 for line in table)
    assert results["command"] in text and "load average" in text


def test_the_plot_is_written(tiny_run):
    out, _ = tiny_run
    assert (out / "latency.png").read_bytes().startswith(b"\x89PNG")


def test_paced_runs_measure_deadline_misses(tmp_path):
    argv = [
        "--seconds",
        "0.2",
        "--blocks",
        "512",
        "--rates",
        "16000",
        "--backends",
        "onnxruntime",
        "--realtime",
        "--out",
        str(tmp_path),
    ]
    assert bench(argv) == 0
    (row,) = json.loads((tmp_path / "latency.json").read_text())["rows"]
    assert row["deadline_misses"] is not None and row["dropped_samples"] is not None
    assert row["wall_real_time_factor"] is None
    cells = [c.strip() for c in (tmp_path / "latency.md").read_text().splitlines()[-1].split("|")]
    assert re.fullmatch(r"\d+/\d+", cells[-3]) and re.fullmatch(r"\d+", cells[-2])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--blocks", "16"], "32..4096"),
        (["--rates", "0"], "positive rate"),
        (["--cues", ""], "cue"),
        (["--seconds", "0"], "positive duration"),
        (["--threads", "0"], "threads"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        bench([*argv, "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_results_go_to_a_new_dated_folder_in_the_current_directory_by_default(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    argv = ["--seconds", "0.1", "--blocks", "512", "--rates", "16000", "--backends", "torch"]
    assert bench(argv) == 0
    assert bench(argv) == 0  # a second run never writes over the first
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2 and all(re.fullmatch(r"bench-latency-[\d-]+", f) for f in folders)
    for folder in folders:
        assert {p.name for p in (tmp_path / folder).iterdir()} == {
            "latency.json",
            "latency.md",
            "latency.png",
        }
