"""Training smoke test: a few steps of both stages on a tiny corpus the test writes."""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from synthetic_corpus import HELD_OUT, SOUNDS, write_corpus

import rtsep
from rtsep.cli.main import main
from rtsep.model import ModelConfig, build_network
from rtsep.model.growth import with_presence_gate
from rtsep.train import Trainer, TrainSettings
from rtsep.train.clock import cpu_seconds


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root, SOUNDS, 16000)
    run_dir = tmp_path_factory.mktemp("run")
    settings = TrainSettings(
        corpus=str(root),
        run_dir=str(run_dir),
        validation_sources=sorted(HELD_OUT),
        batch_size=2,
        segment_seconds=1.0,
        max_sources=3,
        source_count_weights=[1.0, 2.0, 1.0],
        stage1_steps=2,
        stage2_steps=3,
        validate_every=5,
        checkpoint_every=2,
        validation_mixtures=3,
    )
    Trainer(settings).run()
    return settings, run_dir


def test_a_run_writes_checkpoints_log_curves_and_a_loadable_model(run):
    _, run_dir = run
    for name in ("settings.json", "last.pt", "best.pt", "log.jsonl", "curves.png"):
        assert (run_dir / name).exists(), name
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "total" in r]
    assert [r["stage"] for r in steps] == [1, 1, 2, 2, 2]
    assert any("validation_eda_si_snri" in r for r in records)
    model = rtsep.load_model(run_dir / "best.pt")
    assert model.trained and model.metadata["training"]["validation_sources"] == sorted(HELD_OUT)


def test_a_finished_run_resumes_where_it_stopped(run):
    settings, run_dir = run
    settings.stage2_steps = 4  # one more step than before
    trainer = Trainer(settings)
    assert trainer.step == 5
    trainer.run()
    steps = [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert max(steps) == 6


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_training_runs_on_cuda_and_the_model_loads_on_the_cpu(run, tmp_path):
    settings, cpu_run_dir = run
    shutil.copy(cpu_run_dir / "phrasings.pt", tmp_path / "phrasings.pt")
    cuda = dataclasses.replace(settings, run_dir=str(tmp_path), device="cuda", stage2_steps=3)
    Trainer(cuda).run()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records if "total" in r] == [1, 1, 2, 2, 2]
    model = rtsep.load_model(tmp_path / "best.pt")
    assert model.network.device.type == "cpu"


def test_a_run_exports_its_current_weights_as_a_model_without_training(run, tmp_path):
    settings, run_dir = run
    trainer = Trainer(settings)
    scores = trainer.export_model(tmp_path / "out" / "current.pt")
    model = rtsep.load_model(tmp_path / "out" / "current.pt")
    assert model.metadata["training"]["steps"] == trainer.step > 0
    assert model.metadata["training"]["quick_validation"] == scores
    saved, current = model.network.state_dict(), trainer.network.state_dict()
    assert all(torch.equal(saved[name], current[name]) for name in saved)


def test_validate_prints_the_quick_validation_of_the_run_without_training(run, capsys):
    settings, run_dir = run
    recipe = run_dir.parent / "validate.toml"
    values = dataclasses.asdict(settings)
    recipe.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items() if v or v == 0))
    steps_before = Trainer(settings).step
    assert main(["train", "--settings", str(recipe), "--validate"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["step"] == steps_before > 0
    assert printed["validation_count_accuracy"] is not None
    assert Trainer(settings).step == steps_before  # nothing trained, nothing saved


def test_a_time_limit_stops_a_run_validated_and_checkpointed(run, tmp_path):
    settings, cpu_run_dir = run
    shutil.copy(cpu_run_dir / "phrasings.pt", tmp_path / "phrasings.pt")
    limited = dataclasses.replace(settings, run_dir=str(tmp_path), time_limit_s=1e-9)
    Trainer(limited).run()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "total" in r] == [1]
    assert any("validation_eda_si_snri" in r for r in records)
    assert Trainer(limited).step == 1  # resumes from the checkpoint written at the stop


def test_with_an_average_the_saved_model_is_the_average_and_it_resumes(run, tmp_path):
    settings, cpu_run_dir = run
    shutil.copy(cpu_run_dir / "phrasings.pt", tmp_path / "phrasings.pt")
    averaged = dataclasses.replace(  # validated (and saved) once: after the last step
        settings, run_dir=str(tmp_path), ema_decay=0.5, stage2_steps=3, validate_every=10**6
    )
    trainer = Trainer(averaged)
    trainer.run()
    saved = rtsep.load_model(tmp_path / "best.pt").network.state_dict()
    average = trainer.average.module.state_dict()
    raw = trainer.network.state_dict()
    weights = [name for name in saved if name.endswith("weight_hh_l0")]
    assert weights and all(torch.equal(saved[name], average[name]) for name in weights)
    assert not any(torch.equal(saved[name], raw[name]) for name in weights)
    resumed = Trainer(averaged)
    assert all(torch.equal(resumed.average.module.state_dict()[n], average[n]) for n in weights)


def test_cosine_schedule_falls_from_the_stage2_rate_to_its_floor():
    settings = TrainSettings(
        stage1_steps=10,
        stage2_steps=101,
        stage1_lr=1e-3,
        stage2_lr=4e-4,
        lr_schedule="cosine",
        lr_floor=0.25,
    )
    assert settings.learning_rate(0) == settings.learning_rate(9) == 1e-3
    assert settings.learning_rate(10) == pytest.approx(4e-4)
    assert settings.learning_rate(60) == pytest.approx(4e-4 * (0.25 + 0.75 * 0.5))
    assert settings.learning_rate(110) == pytest.approx(1e-4)
    rates = [settings.learning_rate(step) for step in range(10, 111)]
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:]))
    constant = dataclasses.replace(settings, lr_schedule="constant")
    assert constant.learning_rate(110) == 4e-4


def test_best_checkpoint_selection_charges_absent_cue_level_above_the_target():
    scores = {
        "validation_eda_si_snri": 4.0,
        "validation_label_si_snri": 3.0,
        "validation_absent_db": -15.0,
    }
    assert TrainSettings().selection_score(scores) == pytest.approx(7.0)
    charged = TrainSettings(absent_selection_weight=0.2, absent_target_db=-20.0)
    assert charged.selection_score(scores) == pytest.approx(7.0 - 0.2 * 5.0)
    assert charged.selection_score(scores | {"validation_absent_db": -25.0}) == pytest.approx(7.0)
    no_label = scores | {"validation_label_si_snri": None, "validation_absent_db": None}
    assert charged.selection_score(no_label) == pytest.approx(4.0)


def test_an_unknown_schedule_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="constant, cosine"):
        TrainSettings(lr_schedule="linear")
    with pytest.raises(ValueError, match="train_time_limit_s"):
        TrainSettings(lr_schedule="cosine_time")
    with pytest.raises(ValueError, match="adam, adamw"):
        TrainSettings(optimizer="sgd")


def test_warmup_rises_then_the_time_cosine_falls_along_the_cpu_budget():
    settings = TrainSettings(
        stage1_steps=0,
        stage2_lr=1e-3,
        lr_schedule="cosine_time",
        lr_floor=0.1,
        warmup_steps=100,
        train_time_limit_s=600.0,
    )
    assert settings.learning_rate(0, 0.0) == pytest.approx(1e-5)
    assert settings.learning_rate(49, 0.0) == pytest.approx(5e-4)
    assert settings.learning_rate(99, 0.0) == settings.learning_rate(5000, 0.0) == 1e-3
    assert settings.learning_rate(5000, 300.0) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert settings.learning_rate(5000, 600.0) == pytest.approx(1e-4)


def test_a_run_resumes_the_network_of_its_last_checkpoint_whatever_the_settings_say(run):
    settings, _ = run
    built = Trainer(settings).network.config.architecture
    other = "lstm" if built != "lstm" else "dualpath"
    resumed = Trainer(dataclasses.replace(settings, model={"architecture": other}))
    assert resumed.network.config.architecture == built
    assert resumed.step == Trainer(settings).step > 0


def test_cpu_seconds_count_the_running_children():
    burn = "import time\nwhile time.process_time() < 0.4: pass\nprint(1, flush=True)\n"
    burn += "time.sleep(30)"
    before = cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # it has burnt its 0.4 CPU s and sleeps, still running
        assert cpu_seconds() - before >= 0.35
    finally:
        child.kill()
        child.wait()


def test_sigterm_stops_a_run_after_its_step_validated_and_checkpointed(run, tmp_path):
    settings, cpu_run_dir = run
    shutil.copy(cpu_run_dir / "phrasings.pt", tmp_path / "phrasings.pt")
    endless = dataclasses.replace(
        settings, run_dir=str(tmp_path), stage2_steps=10**6, validate_every=10**6
    )
    (tmp_path / "settings.json").write_text(json.dumps(dataclasses.asdict(endless)))
    code = (
        "import json, pathlib\n"
        "from rtsep.train import Trainer, TrainSettings\n"
        f"values = json.loads(pathlib.Path({str(tmp_path / 'settings.json')!r}).read_text())\n"
        "Trainer(TrainSettings(**values)).run()\n"
    )
    trainer = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = tmp_path / "log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and '"total"' in log.read_text()):
        assert trainer.poll() is None and time.monotonic() < deadline, trainer.stdout.read()
        time.sleep(0.1)
    trainer.send_signal(signal.SIGTERM)
    output, _ = trainer.communicate(timeout=120)
    assert trainer.returncode == 0, output
    assert "SIGTERM received" in output
    records = [json.loads(line) for line in log.read_text().splitlines()]
    last_step = max(r["step"] for r in records if "total" in r)
    assert any("validation_eda_si_snri" in r and r["step"] == last_step for r in records)
    assert Trainer(endless).step == last_step  # checkpointed at the stop


def test_a_gated_network_trains_its_presence_gate_and_keeps_its_growth_record(run, tmp_path):
    settings, cpu_run_dir = run
    shutil.copy(cpu_run_dir / "phrasings.pt", tmp_path / "phrasings.pt")
    torch.manual_seed(0)
    network = build_network(ModelConfig(architecture="lstm", max_sources=settings.max_sources))
    init = tmp_path / "init.pt"
    with_presence_gate(rtsep.Model(network)).save(init)
    gated = dataclasses.replace(
        settings, run_dir=str(tmp_path), init=str(init), stage1_steps=1, eda_fraction=0.0
    )
    Trainer(gated).run()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "total" in r]
    assert [r["mode"] for r in steps] == ["eda"] + ["cue"] * gated.stage2_steps
    # The gate learns in both modes: EDA outputs against their own source's onset.
    assert all(r["presence"] > 0 for r in steps)
    model = rtsep.load_model(tmp_path / "best.pt")
    assert model.config.presence_gate
    assert "presence_gate" in model.metadata["growth"][-1]


def test_set_options_parse_toml_values_and_name_a_malformed_one():
    from rtsep.cli.train_cmd import parse_settings

    assert parse_settings(["train_time_limit_s=1800", "gain_range_db=[-5.0, 5.0]"]) == {
        "train_time_limit_s": 1800,
        "gain_range_db": [-5.0, 5.0],
    }
    assert parse_settings(['init="shipped"']) == {"init": "shipped"}
    for bad in ("stage2_steps", "=3", "init=shipped"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_settings([bad])
