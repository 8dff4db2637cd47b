"""The embedded mini_an4 recipe in temporary directories, for the tests that run its stages.

``linked_recipe`` makes a directory whose entries link to the recipe's files, so that data/,
dump/ and exp/ are written there and the repository stays clean. Stages 1-4 (data, audio,
features, statistics) are the same for every test that trains or decodes, and stages 5-8 with
``--fast`` the same for every test that checks or re-runs them: the session fixtures
``prepared_mini_an4`` and ``trained_mini_an4`` (conftest.py) run them once per test session
(:func:`built_once`: once for all pytest-xdist workers too) and ``copy_prepared`` gives each
module its own copy (the recipe's files hold paths relative to the recipe directory).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE = REPO_ROOT / "egs2" / "mini_an4" / "voc1"
OUTPUTS = ("data", "dump", "exp", "downloads")
RUN_TIMEOUT_S = 900


def linked_recipe(parent: Path, recipe: Path = RECIPE) -> Path:
    """``parent/voc1``: links to the files of ``recipe`` (default mini_an4), so that its outputs
    are written there."""
    root = parent / "voc1"
    root.mkdir(parents=True)
    for item in recipe.iterdir():
        if item.name not in OUTPUTS:
            os.symlink(item.resolve(), root / item.name)
    return root


def run_recipe(recipe: Path, *args: str, fast: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``./run.sh [--fast] ARGS`` in ``recipe`` (``--fast``: the debug config, CI speed); stdout
    and stderr interleaved."""
    return subprocess.run(
        ["./run.sh", *(["--fast"] if fast else []), *map(str, args)],
        cwd=recipe,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def expect_success(proc: subprocess.CompletedProcess, what: str) -> None:
    """Fail with the end of the recipe's output if it did not succeed."""
    if proc.returncode != 0:
        pytest.fail(f"{what} failed with code {proc.returncode}:\n{proc.stdout[-6000:]}")


def prepare(parent: Path) -> Dict[str, Any]:
    """mini_an4 through stages 1-4 with ``--fast`` in ``parent/voc1``: dict(root, output)."""
    root = linked_recipe(parent)
    proc = run_recipe(root, "--stop_stage", "4")
    expect_success(proc, "./run.sh --fast --stop_stage 4")
    return dict(root=root, output=proc.stdout)


def train_prepared(prepared: Dict[str, Any], parent: Path) -> Dict[str, Any]:
    """A copy of ``prepared`` run through stages 5-8 with ``--fast``: dict(root, output), the
    output of stages 1-8."""
    root = copy_prepared(prepared, parent)
    proc = run_recipe(root, "--stage", "5")
    expect_success(proc, "./run.sh --fast --stage 5 (stages 5-8)")
    return dict(root=root, output=prepared["output"] + proc.stdout)


def built_once(base: Path, name: str, build: Callable[[Path], Dict[str, Any]]) -> Dict[str, Any]:
    """``build(base / name)``'s result, built once per test session and then read back.

    ``base`` is the session's temporary root (shared by every pytest-xdist worker); a file lock
    makes the other workers wait for the first one's build. The result holds ``root`` (a Path)
    and strings.
    """
    from filelock import FileLock

    target = base / name
    record = base / f"{name}.json"
    with FileLock(str(base / f"{name}.lock")):
        if not record.is_file():
            target.mkdir(parents=True, exist_ok=True)
            result = build(target)
            record.write_text(json.dumps(dict(result, root=str(result["root"]))))
    data = json.loads(record.read_text())
    return dict(data, root=Path(data["root"]))


def copy_prepared(prepared: Dict[str, Any], parent: Path, outputs: Sequence[str] = OUTPUTS) -> Path:
    """A new linked recipe in ``parent/voc1`` holding a copy of the prepared recipe's outputs."""
    root = linked_recipe(parent)
    for name in outputs:
        if (prepared["root"] / name).exists():
            shutil.copytree(prepared["root"] / name, root / name, symlinks=True)
    return root
