"""The decode stage end to end: ``voc_inference`` of ours vs the current main's, on one scp.

A V1 model (random weights, our training config) and a Kaldi ark/scp of ``utts`` utterances of
varied length are written to a temporary directory; each side runs
``python -m espnet_hifigan.bin.voc_inference`` as a subprocess (start-up, model loading, feature
reading and wav writing included) with the same threads, alternating sides every repeat. Main's
code comes from ``git archive <commit>`` of this repository (or ``--baseline_repo``, a checkout).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import io
from pathlib import Path
from typing import Dict, List, Optional

import kaldiio
import numpy as np
import torch
import yaml

from benchmarks.common import REPO_ROOT, interleaved, random_mel, random_state, summary, vocoder_config

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


def decode_rows(
    device: str, utts: int, seconds: float, repeats: int, threads: int, baseline_repo: Optional[str]
) -> List[Dict]:
    """One row: x real time of the whole decode stage (median over ``repeats``), ours vs main."""
    if device != "cpu":
        ngpu = ["--ngpu", "1"]
    else:
        ngpu = []
    with tempfile.TemporaryDirectory(prefix="bench_decode_") as tmp:
        tmp = Path(tmp)
        inputs = write_inputs(tmp, utts, seconds)
        base = Path(baseline_repo) if baseline_repo else baseline_tree(BASELINE_COMMIT, tmp / "main")
        audio = sum(kaldiio.load_mat(p).shape[0] for _, p in _scp(inputs["scp"])) * HOP / FS

        def run(tree: Path, name: str) -> None:
            env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            cmd = _decode_cmd(inputs, tmp / name) + ngpu
            done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{name} decode failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")

        times = interleaved(
            {"ours": lambda: run(REPO_ROOT, "ours"), "main": lambda: run(base, "main")}, repeats, device, warmup=0
        )
    mine, ref = summary(times["ours"], audio), summary(times["main"], audio)
    label = baseline_repo or f"main {BASELINE_COMMIT}"
    return [
        dict(
            row=f"decode stage, {utts} utts ({audio:.0f} s of audio), V1, ours vs {label}",
            unit="x real time",
            ours=mine["median"],
            espnet=ref["median"],
            ours_best=mine["best"],
            espnet_best=ref["best"],
            reference=label,
            note="voc_inference subprocesses: start-up, model load, ark reading, wav writing included",
        )
    ]


def _scp(path: Path):
    for line in path.read_text().splitlines():
        utt, value = line.split(maxsplit=1)
        yield utt, value
