"""CI runs lint: ``scripts/run_tests.sh`` (what ``make test`` and ``.ci/run`` call) fails on a
``ruff check`` or ``ruff format --check`` finding before any test runs; and CI runs every test:
``make test`` leaves out the slow group, ``.ci/run`` runs it after (``make test-slow``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent


def _tree(tmp_path: Path, code: str) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "run_tests.sh", tmp_path / "scripts")
    shutil.copy2(REPO / "pyproject.toml", tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (tmp_path / "module.py").write_text(code)
    return tmp_path


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(folder / "scripts" / "run_tests.sh"), *args],
        env={**os.environ, "RTSEP_VENV": str(VENV)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "code, finding",
    [
        ("import os\n", "F401"),  # ruff check: unused import
        ("x = {  'a':1}\n", "format"),  # ruff format --check
    ],
)
def test_a_lint_finding_fails_the_test_script_before_pytest(tmp_path, code, finding):
    result = _run(_tree(tmp_path, code))
    assert result.returncode != 0
    assert finding in result.stdout + result.stderr
    assert "== pytest" not in result.stdout


def test_a_clean_tree_goes_on_to_pytest_and_make_test_leaves_out_the_slow_group(tmp_path):
    folder = _tree(tmp_path, "X = 1\n")
    (folder / "tests" / "test_slow.py").write_text(
        "import pytest\n\n\n@pytest.mark.slow\ndef test_slow():\n    pass\n"
    )
    result = _run(folder, "-rA")  # make test (-rA: name the tests that passed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== pytest" in result.stdout and "1 passed, 1 deselected" in result.stdout
    assert "PASSED tests/test_nothing.py::test_nothing" in result.stdout
    result = _run(folder, "--slow", "-rA")  # make test-slow
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 deselected" in result.stdout
    assert "PASSED tests/test_slow.py::test_slow" in result.stdout
    make = (REPO / "Makefile").read_text()
    assert "\ntest: install\n\tbash scripts/run_tests.sh\n" in make
    assert "\ntest-slow: install\n\tbash scripts/run_tests.sh --slow\n" in make
    # CI runs the README's test command, then the slow group it leaves out.
    assert "\nmake test\nmake test-slow\n" in (REPO / ".ci" / "run").read_text()


@pytest.mark.slow
def test_installing_the_package_is_quiet_and_carries_its_data(tmp_path):
    """A non-editable install of the tracked tree prints nothing under -q (setuptools used
    to print ~180 lines of deprecation and 'would be ignored' warnings) and installs the
    weights, the example, the recipes and every subpackage."""
    source = tmp_path / "src"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
    package = target / "rtsep"
    for name in (
        "weights/rtsep_default.pt",
        "examples/example_mix.flac",
        "train/default.toml",
        "default_config.toml",
        "bench/latency.py",
        "engine/runtime.py",
        "bindings/protocol.py",
    ):
        assert (package / name).is_file(), name
    assert not (target / "engine").exists() and not (target / "bindings").exists()
