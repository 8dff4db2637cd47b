"""The decode stage end to end, ours vs the current main's, on one scp: two rows.

A V1 model (random weights, our training config) and a Kaldi ark/scp of ``utts`` utterances of
varied length are written to a temporary directory. Main's code comes from ``git archive <commit>``
of this repository (or ``--baseline_repo``, a checkout). Each side runs its own code, alternating
sides every repeat (machine load hits both alike):

- the decode stage as users run it (``stage``): each tree's ``decode_feats_scp`` of
  ``egs2/TEMPLATE/voc1/scripts/decode.sh`` (voc.sh stage 6, chain.sh) in a bash subprocess, from a
  recipe-like directory whose ``scripts``/``utils`` link to that tree's, with the recipe defaults
  (``inference_nj`` 32, the local backend ``scripts/run_local.sh``, CPU decoding unless
  ``--device cuda``): the scp split into jobs, the jobs' ``voc_inference`` processes, the merge.
  No thread variables are set (``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` are removed): each
  tree's decode.sh chooses;
- one ``python -m espnet_hifigan.bin.voc_inference`` process on the whole scp (``process``),
  ``threads`` torch threads (``OMP_NUM_THREADS``).

Both include start-up, model loading, feature reading and wav writing.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import kaldiio
import numpy as np
import torch
import yaml

from benchmarks.common import (
    REPO_ROOT,
    interleaved,
    random_mel,
    random_state,
    summary,
    table_row,
    vocoder_config,
)

BASELINE_COMMIT = "beae2cf"
FS, HOP = 22050, 256


def baseline_tree(commit: str, into: Path) -> Path:
    """The repository's files at ``commit`` (``git archive``), extracted under ``into``."""
    data = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def write_inputs(root: Path, utts: int, seconds: float) -> Dict[str, Path]:
    """V1 ``config.yaml`` + ``model.pth`` and an ark/scp of ``utts`` mels of 0.5x..1.5x ``seconds``."""
    config = vocoder_config("v1")
    (root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    torch.save(random_state("v1"), root / "model.pth")
    rng = np.random.default_rng(0)
    with kaldiio.WriteHelper(f"ark,scp:{root}/feats.ark,{root}/feats.scp") as writer:
        for i in range(utts):
            frames = max(8, int(seconds * rng.uniform(0.5, 1.5) * FS / HOP))
            writer(f"utt{i:03d}", random_mel(frames, seed=i))
    return dict(config=root / "config.yaml", model=root / "model.pth", scp=root / "feats.scp")


def _decode_cmd(inputs: Dict[str, Path], out: Path) -> List[str]:
    return [
        sys.executable, "-m", "espnet_hifigan.bin.voc_inference",
        "--model_file", str(inputs["model"]), "--train_config", str(inputs["config"]),
        "--feats_scp", str(inputs["scp"]), "--assume_raw_features", "true", "--check_feats_stats", "false",
        "--output_dir", str(out), "--log_level", "WARNING",
    ]  # fmt: skip


# The caller's part of scripts/decode.sh (as voc.sh sets it up with the local backend), then one
# decode_feats_scp; run from a directory whose scripts/ and utils/ are the tree's. Arguments: <python> <scp> <out>
# <config> <model> <gpu_inference>.
STAGE_SCRIPT = """set -euo pipefail
. scripts/common.sh
. scripts/decode.sh
python_arr=("$1")
decode_cmd_arr=(scripts/run_local.sh)
cuda_cmd_arr=(scripts/run_local.sh)
gpu_inference="$6"
inference_nj=32
decode_feats_scp bench "$2" "$3" "$4" "$5" --assume_raw_features true --check_feats_stats false
"""


def tree_env(tree: Path, threads: Optional[int]) -> Dict[str, str]:
    """The environment of a side's subprocesses: this one's, ``PYTHONPATH`` = ``tree``.

    Args:
        tree: The side's checkout.
        threads: ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``; None: neither is set (as users run
            the recipe).
    """
    env = dict(os.environ, PYTHONPATH=str(tree))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
        if threads is not None:
            env[var] = str(threads)
    return env


def check_imports_from(tree: Path, env: Dict[str, str], cwd: Path) -> None:
    """Fail unless ``espnet_hifigan`` imports from ``tree`` in ``env`` and ``cwd``.

    Raises:
        RuntimeError: It imports from elsewhere (e.g. an editable install of another checkout).
    """
    done = subprocess.run(
        [sys.executable, "-c", "import espnet_hifigan; print(espnet_hifigan.__file__)"],
        cwd=cwd, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = Path(done.stdout.strip()).resolve()
    if tree.resolve() not in found.parents:
        raise RuntimeError(f"espnet_hifigan imports from {found}, not from {tree}: check PYTHONPATH")


def stage_dir(tree: Path, into: Path) -> Path:
    """A recipe-like directory ``into`` whose ``scripts`` and ``utils`` link to ``tree``'s.

    A tree from before the recipe helpers moved to ``scripts/`` has them in ``utils/``: both
    links then point there.
    """
    template = tree / "egs2" / "TEMPLATE" / "voc1"
    scripts = template / "scripts" if (template / "scripts" / "decode.sh").is_file() else template / "utils"
    if not (scripts / "decode.sh").is_file():
        raise FileNotFoundError(f"{scripts}/decode.sh not found: is {tree} a checkout of this repository?")
    into.mkdir(parents=True)
    (into / "scripts").symlink_to(scripts.resolve())
    (into / "utils").symlink_to((template / "utils").resolve())
    return into


def run_stage(workdir: Path, env: Dict[str, str], inputs: Dict[str, Path], out: Path, gpu: bool) -> Dict:
    """One ``decode_feats_scp`` in ``workdir``; its merged ``timing.json`` (jobs, device)."""
    cmd = ["bash", "-c", STAGE_SCRIPT, "decode_stage", sys.executable, str(inputs["scp"]), str(out),
           str(inputs["config"]), str(inputs["model"]), str(gpu).lower()]  # fmt: skip
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not (out / "wav.scp").is_file():
        logs = sorted((out / "logdir").glob("inference.*.log"))
        tail = logs[0].read_text()[-2000:] if logs else ""
        raise RuntimeError(
            f"decode_feats_scp in {workdir} failed ({done.returncode}):\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}{tail}"
        )
    return json.loads((out / "timing.json").read_text())


def decode_rows(
    device: str,
    utts: int,
    seconds: float,
    repeats: int,
    threads: int,
    baseline_repo: Optional[str],
    parts: Sequence[str] = ("stage", "process"),
) -> List[Dict]:
    """The decode rows, ours vs main: x real time (median over ``repeats``).

    Args:
        device: ``cpu`` or ``cuda`` (``cuda``: GPU decoding, ``gpu_inference true`` for the stage).
        utts: Utterances of the scp.
        seconds: Their mean length (0.5x to 1.5x it).
        repeats: Timed rounds, alternating sides.
        threads: Torch threads of the one-process row.
        baseline_repo: A checkout of main, or None: ``git archive`` of :data:`BASELINE_COMMIT`.
        parts: ``stage`` (decode.sh, as users run it) and/or ``process`` (one voc_inference).

    Returns:
        One row per part, the stage first.
    """
    unknown = set(parts) - {"stage", "process"}
    if unknown or not parts:
        raise ValueError(f"parts must be among 'stage', 'process', got {list(parts)}")
    gpu = device != "cpu"
    label = baseline_repo or f"main {BASELINE_COMMIT}"
    rows: List[Dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_decode_") as tmp:
        tmp = Path(tmp)
        inputs = write_inputs(tmp, utts, seconds)
        base = Path(baseline_repo) if baseline_repo else baseline_tree(BASELINE_COMMIT, tmp / "main")
        trees = {"ours": REPO_ROOT, "main": base}
        audio = sum(kaldiio.load_mat(p).shape[0] for _, p in _scp(inputs["scp"])) * HOP / FS
        if "stage" in parts:
            rows.append(_stage_row(trees, inputs, tmp, gpu, repeats, device, audio, utts, label))
        if "process" in parts:
            rows.append(_process_row(trees, inputs, tmp, gpu, repeats, device, audio, utts, threads, label))
    return rows


def _stage_row(
    trees: Dict[str, Path], inputs: Dict[str, Path], tmp: Path, gpu: bool, repeats: int, device: str,
    audio: float, utts: int, label: str,
) -> Dict:  # fmt: skip
    """The decode.sh row: each side's ``decode_feats_scp`` from its own recipe-like directory."""
    env = {side: tree_env(tree, None) for side, tree in trees.items()}
    work = {side: stage_dir(tree, tmp / f"stage_{side}") for side, tree in trees.items()}
    for side, tree in trees.items():
        check_imports_from(tree, env[side], work[side])
    timing: Dict[str, Dict] = {}
    count = {side: 0 for side in trees}

    def run(side: str) -> None:
        count[side] += 1
        out = work[side] / f"out.{count[side]}"
        timing[side] = run_stage(work[side], env[side], inputs, out, gpu)
        if timing[side]["num_utts"] != utts:
            raise RuntimeError(f"{side}: decode_feats_scp decoded {timing[side]['num_utts']} of {utts} utterances")

    times = interleaved({side: (lambda side=side: run(side)) for side in trees}, repeats, device, warmup=0)
    mine, ref = summary(times["ours"], audio), summary(times["main"], audio)
    jobs = "; ".join(f"{side}: {timing[side]['num_jobs']} jobs, {timing[side]['device']}" for side in trees)
    backend = "GPU" if gpu else "local backend"
    return table_row(
        f"decode stage (decode.sh, {utts} utts, {audio:.3g} s of audio, inference_nj 32, {backend}), V1, ours vs {label}",
        "x real time", mine, ref, label,
        f"each tree's decode_feats_scp end to end (split, run_local.sh jobs, merge; no thread variables); {jobs}",
    )  # fmt: skip


def _process_row(
    trees: Dict[str, Path], inputs: Dict[str, Path], tmp: Path, gpu: bool, repeats: int, device: str,
    audio: float, utts: int, threads: int, label: str,
) -> Dict:  # fmt: skip
    """The one-process row: ``voc_inference`` on the whole scp, ``threads`` threads."""
    ngpu = ["--ngpu", "1"] if gpu else []

    def run(side: str) -> None:
        tree = trees[side]
        cmd = _decode_cmd(inputs, tmp / f"process_{side}") + ngpu
        done = subprocess.run(cmd, cwd=tree, env=tree_env(tree, threads), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{side} decode failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")

    for side, tree in trees.items():
        check_imports_from(tree, tree_env(tree, threads), tree)
    times = interleaved({side: (lambda side=side: run(side)) for side in trees}, repeats, device, warmup=0)
    mine, ref = summary(times["ours"], audio), summary(times["main"], audio)
    return table_row(
        f"voc_inference, one process, {utts} utts ({audio:.3g} s of audio), V1, ours vs {label}", "x real time",
        mine, ref, label,
        f"one voc_inference subprocess per side, {threads} threads: start-up, model load, ark reading, wav writing included",
    )  # fmt: skip


def _scp(path: Path) -> Iterator[Tuple[str, str]]:
    for line in path.read_text().splitlines():
        utt, value = line.split(maxsplit=1)
        yield utt, value
