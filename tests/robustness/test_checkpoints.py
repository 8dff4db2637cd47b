"""Checkpoints and preemption: nothing lost, nothing half-written, the configured number of steps.

Table A resumes copies of one tiny 2-epoch experiment whose checkpoints were damaged (or not);
table B interrupts runs (SIGKILL while writing a checkpoint, a full disk, SIGTERM with DataLoader
workers) and re-runs them; table C checks the mode of ``RESULTS.md``. Every voc_train run is a
real process (``voc_train_runner``: forked from a server that imported ESPnet once).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import pytest
import torch
import voc_train_runner
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
STEPS_PER_EPOCH = 1
BASE_EPOCHS = 2
# Steps of the one epoch the preemption case configures; SIGTERM comes after its second.
# Steps of the preempted run's single epoch: SIGTERM comes after step 2 is logged, and the other 62
# leave the signal seconds to arrive before the epoch could end (4 steps raced it on a fast machine).
PREEMPTED_STEPS = 64


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory) -> Path:
    """The debug config with shorter segments and segment-only validation (a run takes seconds)."""
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    config["model_conf"].update(segment_size=1024, validate_full_utterances=False)
    config["best_model_criterion"] = [["valid", "generator_mel_loss", "min"]]
    path = tmp_path_factory.mktemp("conf") / "fast.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_args(corpus: dict, output_dir: Path, *extra) -> list:
    return [
        "--config", corpus["config"],
        "--normalize", "none",
        "--feats_extract_conf", f"fs={corpus['fs']}",
        "--train_data_path_and_name_and_type", f"{corpus['train_scp']},speech,sound",
        "--valid_data_path_and_name_and_type", f"{corpus['valid_scp']},speech,sound",
        "--train_shape_file", corpus["train_scp"],
        "--valid_shape_file", corpus["valid_scp"],
        "--output_dir", output_dir,
        "--ngpu", "0",
        "--num_iters_per_epoch", STEPS_PER_EPOCH,
        "--num_att_plot", "0",
        "--use_matplotlib", "false",
        "--use_tensorboard", "false",
        *extra,
    ]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def optimizer_steps(checkpoint: Path) -> List[int]:
    """Optimizer steps (generator, discriminator) recorded by AdamW in a checkpoint."""
    steps = []
    for optimizer in load(checkpoint)["optimizers"]:
        per_param = {int(state["step"]) for state in optimizer["state"].values()}
        assert len(per_param) == 1, per_param
        steps.append(per_param.pop())
    return steps


def leftovers(exp: Path) -> List[str]:
    return sorted(p.name for p in exp.rglob("*.tmp"))


def snapshot(exp: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(exp.glob("*.pth")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(synthetic_corpus, fast_config) -> dict:
    return dict(synthetic_corpus, config=fast_config)


@pytest.fixture(scope="module")
def base_exp(corpus, tmp_path_factory) -> Path:
    """A finished 2-epoch experiment (2 steps per epoch): checkpoint.pth and checkpoint.prev.pth."""
    exp = tmp_path_factory.mktemp("base") / "exp"
    rc, log = voc_train_runner.run(train_args(corpus, exp, "--max_epoch", BASE_EPOCHS), exp.parent / "train.log")
    assert rc == 0, log[-3000:]
    return exp


# ----------------------------------------------------------------------------- A: resume
def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_tensor_bytes(path: Path) -> None:
    """Change bytes inside a tensor's data: the zip stays readable, torch.load does not notice."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        f.seek(start)
        data = f.read(64)
        f.seek(start)
        f.write(bytes(b ^ 0xFF for b in data))


@dataclass
class ResumeCase:
    id: str
    damage: Callable[[Path], None]
    extra: tuple = ("--max_epoch", BASE_EPOCHS + 1)
    rc: int = 0
    says: tuple = ()  # substrings of the log; "{exp}" is the experiment directory
    epochs: Optional[int] = BASE_EPOCHS + 1  # the epoch of the final checkpoint.pth (rc 0)


RESUME_CASES = [
    ResumeCase("truncated-checkpoint-resumes-from-previous", lambda e: truncate(e / "checkpoint.pth"),
               says=("{exp}/checkpoint.pth is truncated", "resuming from the previous checkpoint {exp}/checkpoint.prev.pth")),
    ResumeCase("empty-checkpoint-resumes-from-previous", lambda e: (e / "checkpoint.pth").write_bytes(b""),
               says=("{exp}/checkpoint.pth is truncated", "{exp}/checkpoint.prev.pth")),
    ResumeCase("corrupted-tensor-data-resumes-from-previous", lambda e: flip_tensor_bytes(e / "checkpoint.pth"),
               says=("{exp}/checkpoint.pth is corrupted", "{exp}/checkpoint.prev.pth")),
    ResumeCase("leftover-tmp-of-a-killed-save-is-ignored",
               lambda e: (e / ".checkpoint.pth.tmp").write_bytes(b"PK\x03\x04 half a checkpoint"),
               says=("resumed using {exp}/checkpoint.pth",)),
    ResumeCase("truncated-checkpoint-without-previous-is-one-error",
               lambda e: (truncate(e / "checkpoint.pth"), (e / "checkpoint.prev.pth").unlink()), rc=1,
               says=("cannot resume: {exp}/checkpoint.pth is truncated", "no earlier checkpoint {exp}/checkpoint.prev.pth")),
    ResumeCase("both-checkpoints-damaged-is-one-error",
               lambda e: (truncate(e / "checkpoint.pth"), truncate(e / "checkpoint.prev.pth")), rc=1,
               says=("cannot resume: {exp}/checkpoint.pth is truncated", "{exp}/checkpoint.prev.pth is truncated")),
    ResumeCase("checkpoint-of-another-model-config-is-one-error", lambda e: None, rc=1,
               extra=("--max_epoch", BASE_EPOCHS + 1, "--generator_conf", "upsample_initial_channel=64"),
               says=("cannot resume from {exp}/checkpoint.pth: it does not fit this model",)),
    ResumeCase("finished-run-resumed-again-changes-nothing", lambda e: None, extra=("--max_epoch", BASE_EPOCHS),
               says=("already reached at max_epoch",), epochs=BASE_EPOCHS),
    ResumeCase("longer-max-epoch-resumes-and-keeps-previous", lambda e: None,
               says=("resumed using {exp}/checkpoint.pth",)),
]


@pytest.mark.parametrize("case", RESUME_CASES, ids=[c.id for c in RESUME_CASES])
def test_resume(case: ResumeCase, base_exp, corpus, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(base_exp, exp, symlinks=True)
    case.damage(exp)
    before = snapshot(exp)
    rc, log = voc_train_runner.run(train_args(corpus, exp, *case.extra, "--resume", "true"), tmp_path / "log")
    assert rc == case.rc, log[-3000:]
    for text in case.says:
        assert text.format(exp=exp) in log, log[-3000:]
    assert leftovers(exp) == []
    if rc != 0:
        error_lines = [line for line in log.splitlines() if "ERROR" in line]
        assert len(error_lines) == 1 and "Traceback" not in log, log[-3000:]
        assert snapshot(exp) == before  # nothing written, the damaged files left for the user
        assert not (exp / f"{BASE_EPOCHS + 1}epoch.pth").exists()
        return
    checkpoint = exp / "checkpoint.pth"
    assert load(checkpoint)["reporter"]["epoch"] == case.epochs
    assert optimizer_steps(checkpoint) == [case.epochs * STEPS_PER_EPOCH] * 2
    assert load(exp / "latest.pth").keys() == load(exp / f"{case.epochs}epoch.pth").keys()
    if case.epochs > BASE_EPOCHS:
        assert load(exp / "checkpoint.prev.pth")["reporter"]["epoch"] == case.epochs - 1
    else:
        assert snapshot(exp) == before


# ----------------------------------------------------------------------------- B: interrupted runs
@contextlib.contextmanager
def small_disk(directory: Path):
    """A tmpfs at ``directory`` (root only); yields a function setting its size to used + free bytes."""
    if os.geteuid() != 0:
        pytest.skip("the disk-full cases mount a small tmpfs, which needs root")
    directory.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(directory)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")

    def leave_free(free: int) -> None:
        size = shutil.disk_usage(directory).used + free
        subprocess.run(["mount", "-o", f"remount,size={size}", str(directory)], check=True)

    try:
        yield leave_free
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@dataclass
class Interrupted:
    rc: int
    log: str
    exp: Path
    rerun: list = field(default_factory=list)  # the re-run's arguments


def sigkill_while_writing_checkpoint(corpus, tmp_path) -> Interrupted:
    exp = tmp_path / "exp"
    args = train_args(corpus, exp, "--max_epoch", BASE_EPOCHS)
    rc, log = voc_train_runner.run(args, tmp_path / "killed.log", kill_at_checkpoint=2)
    assert load(exp / "checkpoint.pth")["reporter"]["epoch"] == 1  # the last good one, intact
    return Interrupted(rc, log, exp, [*args, "--resume", "true"])


def disk_full(free_bytes: Callable[[Path], int]):
    def interrupt(corpus, tmp_path, base_exp, stack) -> Interrupted:
        leave_free = stack.enter_context(small_disk(tmp_path / "disk"))
        exp = tmp_path / "disk" / "exp"
        shutil.copytree(base_exp, exp, symlinks=True)
        (exp / "checkpoint.prev.pth").unlink()  # a copy, not the hard link that costs no space
        leave_free(free_bytes(exp))
        args = [*train_args(corpus, exp, "--max_epoch", BASE_EPOCHS + 1), "--resume", "true"]
        rc, log = voc_train_runner.run(args, tmp_path / "full.log")
        assert load(exp / "checkpoint.pth")["reporter"]["epoch"] == BASE_EPOCHS  # the last good one, intact
        assert not (exp / f"{BASE_EPOCHS + 1}epoch.pth").exists()
        leave_free(64 << 20)  # the user frees space
        return Interrupted(rc, log, exp, args)

    return interrupt


def sigterm_mid_epoch_with_workers(corpus, tmp_path) -> Interrupted:
    exp = tmp_path / "exp"
    args = train_args(corpus, exp, "--max_epoch", 1, "--num_iters_per_epoch", PREEMPTED_STEPS, "--num_workers", 2)
    log = tmp_path / "preempted.log"
    process = voc_train_runner.start(args, log)
    deadline = time.monotonic() + 120
    while "1epoch:train:2-2batch" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGTERM)  # the whole job: trainer and DataLoader workers
    process.join(120)
    text = log.read_text()
    record = load(exp / "checkpoint.pth")["partial_epoch"]
    assert record["epoch"] == 1 and 2 <= record["steps_done"] < PREEMPTED_STEPS, record
    assert optimizer_steps(exp / "checkpoint.pth") == [record["steps_done"]] * 2
    return Interrupted(process.exitcode, text, exp, [*args, "--resume", "true"])


# (id, interrupt, expected exit status, what the log says, configured epochs × steps per epoch)
INTERRUPT_CASES = [
    ("sigkill-while-writing-checkpoint", lambda c, t, b, s: sigkill_while_writing_checkpoint(c, t),
     -signal.SIGKILL, (), BASE_EPOCHS * STEPS_PER_EPOCH),
    ("disk-full-while-writing-checkpoint", disk_full(lambda e: (e / "checkpoint.pth").stat().st_size // 2),
     1, ("disk full while writing {exp}/checkpoint.pth: free space and re-run; "
         "the previous checkpoint {exp}/checkpoint.pth is intact",), (BASE_EPOCHS + 1) * STEPS_PER_EPOCH),
    ("disk-full-while-writing-model-file",
     disk_full(lambda e: (e / "checkpoint.pth").stat().st_size + (e / f"{BASE_EPOCHS}epoch.pth").stat().st_size // 2),
     1, ("disk full while writing {exp}/3epoch.pth: free space and re-run; "
         "the previous checkpoint {exp}/checkpoint.pth is intact",), (BASE_EPOCHS + 1) * STEPS_PER_EPOCH),
    ("sigterm-mid-epoch-with-2-workers", lambda c, t, b, s: sigterm_mid_epoch_with_workers(c, t),
     99, ("SIGTERM received", "epoch 1 stopped after"), PREEMPTED_STEPS),
]


@pytest.mark.parametrize("case", INTERRUPT_CASES, ids=[c[0] for c in INTERRUPT_CASES])
def test_interrupted_run_resumes_to_the_configured_steps(case, base_exp, corpus, tmp_path):
    _, interrupt, expected_rc, says, total_steps = case
    with contextlib.ExitStack() as stack:
        run = interrupt(corpus, tmp_path, base_exp, stack)
        assert run.rc == expected_rc, run.log[-3000:]
        for text in says:
            assert text.format(exp=run.exp) in run.log, run.log[-3000:]
        if expected_rc == 1:
            assert "Traceback" not in run.log and len([x for x in run.log.splitlines() if "ERROR" in x]) == 1
        if expected_rc != -signal.SIGKILL:  # a killed writer cannot remove its temporary file
            assert leftovers(run.exp) == []
        rc, log = voc_train_runner.run(run.rerun, tmp_path / "rerun.log")
        assert rc == 0, log[-3000:]
        assert optimizer_steps(run.exp / "checkpoint.pth") == [total_steps] * 2
        assert "partial_epoch" not in load(run.exp / "checkpoint.pth")
        assert leftovers(run.exp) == []


# ----------------------------------------------------------------------------- C: RESULTS.md
MODE_CASES = [
    ("new-file-umask-022", 0o022, None, 0o644),
    ("new-file-umask-027", 0o027, None, 0o640),
    ("existing-file-keeps-0600", 0o022, 0o600, 0o600),
]


@pytest.mark.parametrize("umask,existing,expected", [c[1:] for c in MODE_CASES], ids=[c[0] for c in MODE_CASES])
def test_results_md_mode(umask, existing, expected, tmp_path):
    from espnet_hifigan.evaluation.results import append_results_row, read_results_md

    results_md = tmp_path / "RESULTS.md"
    summary = {"metrics": {"mcd": {"mean": 5.0, "std": 0.5}}, "num_utterances": 2}
    if existing is not None:
        append_results_row(results_md, summary, "1epoch.pth", "eval", 0.1, "cpu")
        results_md.chmod(existing)
    old = os.umask(umask)
    try:
        append_results_row(results_md, summary, "2epoch.pth", "eval", 0.1, "cpu")
    finally:
        os.umask(old)
    assert results_md.stat().st_mode & 0o777 == expected
    assert len(read_results_md(results_md)) == (2 if existing is not None else 1)
    assert leftovers(tmp_path) == []
