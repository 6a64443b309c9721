"""The command line: help everywhere, the separate output contract, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from rtsep.cli.main import build_parser, main


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    for name in commands:
        try:
            code = main([name, "--help"])
        except SystemExit as exit_info:
            code = exit_info.code
        assert code == 0, name
        assert "usage: rtsep" in capsys.readouterr().out, name


def test_info_prints_rate_hop_latency_parameters_and_compute(capsys):
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["sample_rate_hz"] == 16000
    assert facts["latency_samples"] == 256 and facts["latency_ms"] == 16.0
    assert facts["parameters"] > 100_000
    assert facts["mmacs_per_second_eda"] > facts["mmacs_per_second_one_output"] > 0


def test_config_prints_the_effective_configuration_with_flags_applied(tmp_path, capsys):
    user = tmp_path / "user.toml"
    user.write_text("[engine]\nblocksize = 512\n")
    assert main(["--config", str(user), "config"]) == 0
    text = capsys.readouterr().out
    assert "blocksize = 512" in text and "[control]" in text


@pytest.fixture
def stereo_mix(tmp_path):
    """1.5 s of stereo audio at 44.1 kHz."""
    rate = 44100
    t = np.arange(int(1.5 * rate)) / rate
    left = 0.2 * np.sin(2 * np.pi * 330 * t)
    right = 0.05 * np.random.default_rng(0).standard_normal(t.size)
    path = tmp_path / "mix.wav"
    sf.write(path, np.stack([left, right], axis=1), rate)
    return path


def test_separate_with_cues_writes_one_file_per_cue_a_residual_and_a_report(
    stereo_mix, tmp_path, capsys
):
    out = tmp_path / "stems"
    assert (
        main(
            [
                "separate",
                str(stereo_mix),
                "--out",
                str(out),
                "--cue",
                "speech",
                "--cue",
                "a dog barking",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["cue_1.wav", "cue_2.wav", "report.json", "residual.wav"]
    info = sf.info(out / "cue_1.wav")
    assert (
        info.samplerate == 44100
        and info.frames == sf.info(stereo_mix).frames
        and info.channels == 1
    )
    report = json.loads((out / "report.json").read_text())
    assert report["sample_rate"] == 44100 and report["downmixed_from_channels"] == 2
    assert [s["file"] for s in report["sources"]] == ["cue_1.wav", "cue_2.wav", "residual.wav"]
    assert [s["label"] for s in report["sources"]][:2] == ["speech", "a dog barking"]
    assert report["latency_samples"] > 0 and report["rtf"] > 0 and report["backend"]
    assert report["count"] == 2
    assert report["files"] == ["cue_1.wav", "cue_2.wav", "residual.wav", "report.json"]
    assert report["cue_history"] == [{"chunk": 0, "mode": "extract", "cues": report["cues"]}]
    assert report["nonfinite_samples"] == 0 and report["threads"] == 1
    assert "dBFS" in report["activity"] and "mixture" in report["activity"]


def test_separate_without_cues_writes_source_files_named_in_the_report(stereo_mix, tmp_path):
    out = tmp_path / "all"
    assert main(["separate", str(stereo_mix), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    files = sorted(p.name for p in out.iterdir() if p.suffix == ".wav")
    assert files == sorted(s["file"] for s in report["sources"])
    assert all(name.startswith("source_") for name in files)
    assert report["count"] == len(files)  # sources found == source files written
    assert sorted(report["files"]) == sorted([*files, "report.json"])


@pytest.mark.parametrize(
    "problem",
    ["missing", "corrupt", "empty", "unknown-label", "unwritable"],
)
def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(problem, stereo_mix, tmp_path, capsys):
    mix, out, cues = stereo_mix, tmp_path / "out", []
    if problem == "missing":
        mix = tmp_path / "nope.wav"
    elif problem == "corrupt":
        mix = tmp_path / "bad.wav"
        mix.write_bytes(b"RIFF not really a wave file" * 10)
    elif problem == "empty":
        mix = tmp_path / "empty.wav"
        mix.write_bytes(b"")
    elif problem == "unknown-label":
        cues = ["--cue", "label:violin"]
    elif problem == "unwritable":
        blocker = tmp_path / "file"
        blocker.write_text("a file where the folder should be")
        out = blocker / "stems"
    code = main(["separate", str(mix), "--out", str(out), *cues])
    error = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(error) == 1 and error[0].startswith("rtsep separate: error:")
    if problem != "unwritable":
        assert not out.exists() or not any(out.iterdir())


def test_info_prints_readable_lines_and_the_training_lineage_of_the_checkpoint(capsys):
    from rtsep import load_model

    training = load_model().metadata.get("training") or {}
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "{" not in text and "}" not in text  # lines, not a printed dict
    if not training:
        return
    stages = training.get("stages") or []
    steps = training.get("total_steps") or sum(s.get("steps") or 0 for s in stages)
    steps = steps or training["steps"]
    assert f"training           {steps:,} steps" in text
    for stage in stages:
        assert f"{stage['run']}: {stage['steps']:,} steps" in text


def test_the_osc_bridge_help_names_the_command_that_runs_it(capsys):
    assert main(["bridge", "osc", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: rtsep bridge osc ")
