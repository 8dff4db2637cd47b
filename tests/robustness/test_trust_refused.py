"""Issue 20 (trust, round 2): a refused run changes nothing; another experiment's checkpoint is refused.

Table C: runs refused at training time (voc.sh stage 5 with another config or other statistics
into an existing ``--tag``, a damaged checkpoint, a direct ``voc_train --resume`` with another
model config) on copies of the session's trained mini_an4. Each case checks the exit status,
that the message names the checkpoint and what differs, and that the whole recipe directory
(``exp/<tag>/`` included, logs too) is byte-identical afterwards: nothing created, removed or
changed. The negative control resumes with the experiment's own config (exit 0).

Table D: ``voc_inference`` given a checkpoint of another experiment (other statistics or feature
settings, the same generator shapes) is refused with a table naming both files; nothing is
written. The negative controls decode with the experiment's own checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
import torch
import yaml
from cli_calls import ErrorLines, exit_status
from mini_an4 import RUN_TIMEOUT_S, copy_prepared

from espnet_hifigan.bin import voc_inference
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
TAG = "voc_train_debug"
EXP = f"exp/{TAG}"
STATS = "exp/voc_stats/train/feats_stats.npz"


def tree_digest(root: Path) -> Dict[str, str]:
    """Every entry under ``root``: sha256 of files, the target of links (not followed), ``dir``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked directories are not entered
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def changes(before: Dict[str, str], after: Dict[str, str]) -> List[str]:
    """What differs between two digests: created, removed and changed entries."""
    return sorted(
        [f"created {k}" for k in after.keys() - before.keys()]
        + [f"removed {k}" for k in before.keys() - after.keys()]
        + [f"changed {k}" for k in before.keys() & after.keys() if before[k] != after[k]]
    )


def run(root: Path, cmd: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(map(str, cmd)), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=RUN_TIMEOUT_S, check=False)


# ----------------------------------------------------------------------------- C: refused training runs
STAGE5 = ["./run.sh", "--fast", "--stage", "5", "--stop_stage", "5"]


def _other_generator_config(root: Path, tmp: Path) -> List[str]:
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    config["generator_conf"]["upsample_initial_channel"] = 64
    (tmp / "other.yaml").write_text(yaml.safe_dump(config))
    return [*STAGE5, "--train_config", tmp / "other.yaml", "--tag", TAG]


def _other_statistics(root: Path, tmp: Path) -> List[str]:
    stats = dict(np.load(root / STATS))
    stats["sum"] = stats["sum"] * 1.1  # means 10 % off: another corpus' statistics
    np.savez(tmp / "other_stats.npz", **stats)
    return [*STAGE5, "--train_args", f"--normalize_conf stats_file={tmp / 'other_stats.npz'}"]


def _damaged_checkpoint(root: Path, tmp: Path) -> List[str]:
    checkpoint = root / EXP / "checkpoint.pth"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    (root / EXP / "checkpoint.prev.pth").unlink()
    return STAGE5


def _direct_voc_train(root: Path, tmp: Path) -> List[str]:
    """voc_train itself (no voc.sh check first): ESPnet would rewrite config.yaml before refusing."""
    from espnet_hifigan.train.task import VocoderTask

    dests = {a.dest for a in VocoderTask.get_parser()._actions}
    config = yaml.safe_load((root / EXP / "config.yaml").read_text())
    (tmp / "run.yaml").write_text(yaml.safe_dump({k: v for k, v in config.items() if k in dests and k != "config"}))
    return [sys.executable, "-m", "espnet_hifigan.bin.voc_train", "--config", tmp / "run.yaml",
            "--generator_conf", "upsample_initial_channel=64", "--resume", "true", "--output_dir", EXP,
            "--ngpu", "0"]


@dataclass
class RefusedRun:
    id: str
    prepare: Callable[[Path, Path], List]  # (recipe copy, case dir) -> the command, run in the recipe
    says: Tuple[str, ...]  # substrings of the output; {tmp} is the case dir
    one_error: bool = False  # exactly one ERROR line, no traceback


REFUSED = [
    RefusedRun("voc.sh-other-generator-config-into-existing-tag", _other_generator_config,
               (f"cannot resume from {EXP}/checkpoint.pth: it does not fit this model configuration",
                "shape mismatches", "--tag", f"nothing in {EXP} was changed")),
    RefusedRun("voc.sh-other-statistics-into-existing-tag", _other_statistics,
               (f"checkpoint {EXP}/checkpoint.pth was trained with other normalisation statistics",
                "{tmp}/other_stats.npz", "field          | checkpoint", "normalize.mean", "max |Δmean|",
                "new --output_dir", f"nothing in {EXP} was changed")),
    RefusedRun("voc.sh-damaged-checkpoint-without-previous", _damaged_checkpoint,
               (f"cannot resume: {EXP}/checkpoint.pth is truncated", "no earlier checkpoint",
                f"nothing in {EXP} was changed")),
    RefusedRun("voc_train-other-generator-config-keeps-config-yaml", _direct_voc_train,
               (f"cannot resume from {EXP}/checkpoint.pth: it does not fit this model configuration",
                "shape mismatches"), one_error=True),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_run_leaves_everything_byte_identical(case: RefusedRun, trained_mini_an4, tmp_path):
    root = copy_prepared(trained_mini_an4, tmp_path / "recipe")
    (tmp_path / "case").mkdir()
    cmd = case.prepare(root, tmp_path / "case")
    before = tree_digest(root)
    proc = run(root, cmd)
    assert proc.returncode != 0, proc.stdout[-4000:]
    for text in case.says:
        assert text.format(tmp=tmp_path / "case") in proc.stdout, f"{text!r} not in:\n{proc.stdout[-4000:]}"
    if case.one_error:
        errors = [line for line in proc.stdout.splitlines() if "ERROR" in line]
        assert len(errors) == 1 and "Traceback" not in proc.stdout, proc.stdout[-4000:]
    assert changes(before, tree_digest(root)) == []


def test_resume_with_the_experiments_own_config_still_runs(trained_mini_an4, tmp_path):
    """Negative control: the same stage 5 with the experiment's config passes the checks and resumes."""
    root = copy_prepared(trained_mini_an4, tmp_path / "recipe")
    exp = root / EXP
    checkpoints = {p.name: p.read_bytes() for p in exp.glob("*.pth")}
    old_log = (exp / "train.log").read_bytes()
    proc = run(root, STAGE5)
    assert proc.returncode == 0, proc.stdout[-4000:]
    log = (exp / "train.log").read_text()
    # An INFO line: the checks before ESPnet's worker leave its logging configuration alone.
    assert f"The training was resumed using {EXP}/checkpoint.pth" in log and "already reached at max_epoch" in log
    assert {p.name: p.read_bytes() for p in exp.glob("*.pth")} == checkpoints  # nothing more to train
    assert (exp / "train.1.log").read_bytes() == old_log  # the earlier log kept, as launch_train.sh does


# ----------------------------------------------------------------------------- D: another experiment's checkpoint
FS = 16000
N_MELS = 80


def _stats(path: Path, mean: np.ndarray, std: np.ndarray) -> Path:
    np.savez(path, count=np.array(1.0), sum=mean, sum_square=std**2 + mean**2)
    return path


def _experiment(directory: Path, stats_file: Path, state: Dict[str, torch.Tensor], **feats) -> Path:
    """``directory`` with a debug config.yaml (normalising with ``stats_file``) and model.pth."""
    directory.mkdir(parents=True)
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    config["feats_extract_conf"].update({"fs": FS, **feats})
    config["normalize_conf"] = dict(stats_file=str(stats_file))
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save(state, directory / "model.pth")
    return directory


@pytest.fixture(scope="module")
def experiments(tmp_path_factory) -> Dict[str, Path]:
    """Experiment ``a`` and checkpoints of the same generator shapes from elsewhere."""
    root = tmp_path_factory.mktemp("trust_decode")
    rng = np.random.default_rng(0)
    mean_a, std_a = rng.normal(-5, 1, N_MELS), rng.uniform(0.5, 2, N_MELS)
    mean_b, std_b = mean_a + rng.normal(0, 0.5, N_MELS), std_a * 1.2
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    torch.manual_seed(0)
    generator = {f"generator.{k}": v for k, v in HiFiGANGenerator(in_channels=N_MELS, **config["generator_conf"])
                 .state_dict().items()}

    def state(mean, std):
        return dict(generator, **{"normalize.mean": torch.tensor(mean, dtype=torch.float32),
                                  "normalize.std": torch.tensor(std, dtype=torch.float32)})

    stats_a = _stats(root / "stats_a.npz", mean_a, std_a)
    stats_b = _stats(root / "stats_b.npz", mean_b, std_b)
    a = _experiment(root / "exp_a", stats_a, state(mean_a, std_a))
    b = _experiment(root / "exp_b", stats_b, state(mean_b, std_b))  # same features, other statistics
    c = _experiment(root / "exp_c", stats_a, state(mean_a, std_a), fs=22050, fmax=11025)  # other sampling rate
    loose = root / "loose"
    loose.mkdir()
    torch.save(state(mean_b, std_b), loose / "other_stats.pth")
    torch.save(generator, loose / "no_stats.pth")
    torch.save(state(mean_a, std_a), loose / "own_copy.pth")
    return dict(root=root, a=a, b=b, c=c, loose=loose, stats_a=stats_a)



def decode(config: Path, model: Path, wav_scp: Path, out: Path) -> Tuple[int, str]:
    """voc_inference in process: (exit status, its ERROR records)."""
    with ErrorLines() as errors:
        rc = exit_status(voc_inference.main, ["--train_config", config, "--model_file", model, "--wav_scp", wav_scp,
                                              "--output_dir", out])
    assert len(errors.lines) <= 1, errors.lines
    return rc, "\n".join(errors.lines)


# id: (checkpoint, what the error says; {key} are paths of the experiments fixture)
FOREIGN = {
    "other-statistics-same-shapes": ("{b}/model.pth", (
        "checkpoint {b}/model.pth was trained with other normalisation statistics than {a}/config.yaml",
        "statistics: {stats_a}", "field          | checkpoint", "normalize.mean", "normalize.std",
        "max |Δmean|", "max |Δstd|", "--train_config")),
    "other-sampling-rate-experiment": ("{c}/model.pth", (
        "feature contract mismatch in fs", "{c}/config.yaml", "{a}/config.yaml",
        "field | checkpoint's experiment | config", "22050", "--train_config")),
    "loose-checkpoint-other-statistics": ("{loose}/other_stats.pth", (
        "checkpoint {loose}/other_stats.pth was trained with other normalisation statistics", "max |Δmean|")),
    "checkpoint-without-statistics": ("{loose}/no_stats.pth", (
        "checkpoint {loose}/no_stats.pth carries no normalisation statistics", "{stats_a}")),
}


@pytest.mark.parametrize("case", list(FOREIGN), ids=list(FOREIGN))
def test_checkpoint_of_another_experiment_is_refused(case, experiments, synthetic_corpus, tmp_path):
    checkpoint, says = FOREIGN[case]
    before = tree_digest(experiments["root"])
    out = tmp_path / "decode"
    rc, error = decode(experiments["a"] / "config.yaml", Path(checkpoint.format(**experiments)),
                       synthetic_corpus["valid_scp"], out)
    assert rc != 0
    for text in says:
        assert text.format(**experiments) in error, f"{text.format(**experiments)!r} not in:\n{error}"
    assert not out.exists()  # nothing written
    assert changes(before, tree_digest(experiments["root"])) == []


@pytest.mark.parametrize("checkpoint", ["{a}/model.pth", "{loose}/own_copy.pth"], ids=["own", "own-copied-away"])
def test_the_experiments_own_checkpoint_decodes(checkpoint, experiments, synthetic_corpus, tmp_path):
    """Negative control: the experiment's checkpoint (also a copy outside it) decodes."""
    rc, error = decode(experiments["a"] / "config.yaml", Path(checkpoint.format(**experiments)),
                       synthetic_corpus["valid_scp"], tmp_path / "decode")
    assert rc == 0, error
    assert len((tmp_path / "decode" / "wav.scp").read_text().splitlines()) == 2
