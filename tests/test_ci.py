"""CI runs lint: ``scripts/run_tests.sh`` (what ``make test`` and ``.ci/run`` call) fails on a
``ruff check`` or ``ruff format --check`` finding before any test runs."""

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


def _run(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(folder / "scripts" / "run_tests.sh")],
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


def test_a_clean_tree_goes_on_to_pytest(tmp_path):
    result = _run(_tree(tmp_path, "X = 1\n"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== pytest" in result.stdout and "1 passed" in result.stdout
