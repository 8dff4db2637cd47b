"""The SLURM backend (scripts/slurm.sh), the training launcher (scripts/launch_train.sh) and the
embedded recipe on a real single-node SLURM cluster.

The ``slurm_cluster`` fixture runs tools/slurm/setup_local_slurm.sh, which installs (apt-get)
and starts munged, slurmctld and slurmd on this machine if they are not already running, and
reuses them otherwise. Tests that need it skip, with the reason, when this is impossible here
(not root, no apt-get); a setup that should work but does not is a failure.

Set ESPNET_HIFIGAN_SKIP_SLURM=1 to skip them on purpose. Run only these: ``pytest -m slurm``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
UTILS = REPO_ROOT / "egs2" / "TEMPLATE" / "voc1" / "scripts"
SLURM_SH = UTILS / "slurm.sh"
LAUNCH_TRAIN = UTILS / "launch_train.sh"
SETUP = REPO_ROOT / "tools" / "slurm" / "setup_local_slurm.sh"
SHARED_CONF = REPO_ROOT / "conf" / "slurm.conf"
RECIPE = REPO_ROOT / "egs2" / "mini_an4" / "voc1"
RECIPE_OUTPUTS = ("data", "dump", "exp", "downloads")
FAKE_TRAINER = Path(__file__).resolve().parent / "slurm_fake_trainer.py"
DDP_PROBE = Path(__file__).resolve().parent / "slurm_ddp_probe.py"
TIMEOUT_S = 300  # generous upper bound for one command; not a timing assertion

# Poll SLURM every second at most (the default backs off to 10 s); report vanished jobs fast.
FAST_ENV = {"SLURM_SH_POLL_MAX": "1", "SLURM_SH_GRACE": "3"}


# ----------------------------------------------------------------------------- helpers
def env_with(**extra: str) -> Dict[str, str]:
    """The test environment with fast polling and ``extra``."""
    env = dict(os.environ)
    env.update(FAST_ENV)
    env.update(extra)
    return env


def run(cmd: List[str], cwd: Path, **extra_env: str) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion; stdout and stderr separately, as text."""
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env_with(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def squeue_ids(job_id: str) -> List[str]:
    """Ids of the job's array tasks that SLURM still lists (pending/running/completing)."""
    out = subprocess.run(
        ["squeue", "-h", "-r", "-j", job_id, "-o", "%i"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    ).stdout
    if "Invalid job id" in out:
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def squeue_states(job_id: str) -> List[str]:
    """States of the job's tasks that SLURM still lists."""
    out = subprocess.run(
        ["squeue", "-h", "-r", "-j", job_id, "-o", "%T"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    ).stdout
    if "Invalid job id" in out:
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def wait_for(predicate, what: str, timeout: float = TIMEOUT_S, interval: float = 0.5):
    """Poll ``predicate`` until it returns a true value; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def read(path: Path) -> str:
    """File contents, or '' if it does not exist (yet)."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def submitted_job_id(stderr_file: Path) -> Optional[str]:
    """The job id slurm.sh announced on stderr ("submitted SLURM job N ...")."""
    m = re.search(r"submitted SLURM job (\d+)", read(stderr_file))
    return m.group(1) if m else None


def step_of(checkpoint: Path) -> int:
    """The step a fake-trainer checkpoint holds (-1 if none yet)."""
    try:
        return json.loads(checkpoint.read_text())["step"]
    except (FileNotFoundError, ValueError, KeyError):
        return -1


def release_requeued(job_id: str) -> None:
    """Let a requeued job start now instead of after SLURM's ~2-minute hold (BeginTime).

    slurmd refuses to start a job whose new credential was issued in the same second as the
    old run's was revoked ("Job credential revoked"; the reason for SLURM's hold), so wait a
    few seconds before releasing it. This is a settling delay, not a timing assertion."""
    time.sleep(3)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)


def _default_signal_dispositions() -> None:
    """In the child: SIGINT/SIGQUIT/SIGHUP as a terminal session has them.

    A test runner started in the background (``cmd &`` without job control, or under ``nohup``)
    passes these signals on *ignored*, and bash cannot trap a signal ignored at its entry: the
    wrapper's Ctrl-C handling would be untestable there.
    """
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def start_wrapper(cmd: List[str], cwd: Path, stderr_file: Path, **extra_env: str) -> subprocess.Popen:
    """Start ``cmd`` in the background, in its own session (so the test can signal its group)."""
    return subprocess.Popen(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env_with(**extra_env),
        stdout=subprocess.DEVNULL,
        stderr=stderr_file.open("w"),
        start_new_session=True,
        preexec_fn=_default_signal_dispositions,
    )


# ----------------------------------------------------------------------------- cluster
def _pytest_session_dir(path: Path) -> Optional[Path]:
    """The ``pytest-of-<user>/pytest-<N>`` directory ``path`` lies in, if any."""
    for parent in (path, *path.parents):
        if re.fullmatch(r"pytest-\d+", parent.name) and parent.parent.name.startswith("pytest-of-"):
            return parent
    return None


def cancel_orphaned_test_jobs(current_basetemp: Path) -> List[str]:
    """Cancel jobs that earlier pytest sessions submitted and nobody waits for any more.

    A test's job runs in that test's ``tmp_path`` (``pytest-of-<user>/pytest-<N>/...``). When that
    pytest session was killed, its jobs stay queued or running and hold the node's CPUs, so a
    job asking for more CPUs than are left would pend until the test times out. Jobs outside
    pytest's temporary directories (a user's own work) are never touched.

    Returns:
        The ids of the cancelled jobs.
    """
    current = _pytest_session_dir(current_basetemp)
    listing = subprocess.run(
        ["squeue", "-h", "-o", "%A %Z"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    stale = []
    for line in listing.stdout.splitlines():
        job_id, _, work_dir = line.partition(" ")
        session = _pytest_session_dir(Path(work_dir.strip())) if work_dir.strip() else None
        if session is not None and session != current and session.parent == getattr(current, "parent", None):
            stale.append(job_id)
    if stale:
        subprocess.run(["scancel", *stale], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return stale


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> None:
    """A usable single-node SLURM (set up by tools/slurm/setup_local_slurm.sh), with no jobs
    left by earlier, killed test sessions."""
    if os.environ.get("ESPNET_HIFIGAN_SKIP_SLURM", "") not in ("", "0"):
        pytest.skip("ESPNET_HIFIGAN_SKIP_SLURM is set")
    check = subprocess.run([str(SETUP), "--check"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if check.returncode != 0:
        if os.geteuid() != 0:
            pytest.skip("no running SLURM and not root: cannot install/start one (run as root, or start SLURM)")
        if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
            pytest.skip("no running SLURM and no apt-get to install one (Debian/Ubuntu only)")
    proc = subprocess.run(
        [str(SETUP)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600
    )
    if proc.returncode == 2:
        pytest.skip(f"cannot set up SLURM here: {proc.stdout.strip().splitlines()[-1]}")
    if proc.returncode != 0:
        pytest.fail(f"tools/slurm/setup_local_slurm.sh failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    cancelled = cancel_orphaned_test_jobs(tmp_path_factory.getbasetemp())
    if cancelled:
        print(f"cancelled SLURM jobs left by earlier test sessions: {' '.join(cancelled)}", file=sys.stderr)


# ----------------------------------------------------------------------------- (a) array jobs
@pytest.mark.slurm
def test_array_job_writes_per_task_logs_and_outputs(slurm_cluster, tmp_path):
    proc = run(
        [SLURM_SH, "JOB=1:3", "log/echo.JOB.log", "bash", "-c",
         "echo task JOB > out.JOB.txt; echo said JOB; echo warned JOB >&2"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    for n in (1, 2, 3):
        assert (tmp_path / f"out.{n}.txt").read_text() == f"task {n}\n"
        log = read(tmp_path / "log" / f"echo.{n}.log")
        lines = log.splitlines()
        # The header is the command with JOB replaced (arguments with spaces quoted as by printf %q).
        assert lines[0].startswith(f"# bash -c echo\\ task\\ {n}\\ \\>\\ out.{n}.txt"), lines[0]
        assert re.search(rf"^# Running on \S+ as SLURM job \d+_{n}$", log, re.M), log
        assert f"said {n}" in lines and f"warned {n}" in lines
        assert re.search(r"^# Accounting: time=\d+ threads=1$", log, re.M), log
        assert re.search(r"^# Ended \(code 0\) at ", lines[-1]), log
    # The three tasks were one job array.
    job_ids = {re.search(r"SLURM job (\d+)_", read(tmp_path / "log" / f"echo.{n}.log")).group(1) for n in (1, 2, 3)}
    assert len(job_ids) == 1


@pytest.mark.slurm
def test_single_job_and_shell_operators(slurm_cluster, tmp_path):
    proc = run([SLURM_SH, "log/one.log", "echo", "a b", "|", "tr", "a-z", "A-Z", ">", "upper.txt"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "upper.txt").read_text() == "A B\n"
    assert read(tmp_path / "log" / "one.log").splitlines()[0] == "# echo a\\ b | tr a-z A-Z > upper.txt"


@pytest.mark.slurm
def test_config_options_become_sbatch_options(slurm_cluster, tmp_path):
    proc = run(
        [SLURM_SH, "--config", SHARED_CONF, "--mem", "100M", "--num_threads", "2", "--time", "0:05:00",
         "--max_jobs_run", "1", "IDX=1:2", "log/opts.IDX.log",
         # (the job variable is IDX because JOB would be replaced inside SLURM_ARRAY_JOB_ID)
         "scontrol show job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    log = read(tmp_path / "log" / "opts.1.log")
    assert "TimeLimit=00:05:00" in log
    assert re.search(r"MinMemoryNode=100M\b", log), log
    assert "CPUs/Task=2" in log
    assert "ArrayTaskThrottle=1" in log
    assert re.search(r"^# Accounting: time=\d+ threads=2$", log, re.M), log


@pytest.mark.slurm
def test_unknown_option_is_refused_before_submitting(slurm_cluster, tmp_path):
    proc = run([SLURM_SH, "--config", SHARED_CONF, "--colour", "red", "log/x.log", "true"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "--colour" in proc.stderr and "not in" in proc.stderr
    assert "submitted" not in proc.stderr


# ----------------------------------------------------------------------------- (b) failures
@pytest.mark.slurm
def test_failing_task_fails_the_stage_and_names_its_log(slurm_cluster, tmp_path):
    proc = run([SLURM_SH, "JOB=1:3", "log/fail.JOB.log", "bash", "-c", "[ JOB != 2 ] || exit 3"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "log/fail.2.log" in proc.stderr
    assert "status 3" in proc.stderr
    assert "log/fail.1.log" not in proc.stderr and "log/fail.3.log" not in proc.stderr
    assert "# Ended (code 3)" in read(tmp_path / "log" / "fail.2.log")
    assert "# Ended (code 0)" in read(tmp_path / "log" / "fail.1.log")


@pytest.mark.slurm
def test_job_killed_outside_the_wrapper_is_reported(slurm_cluster, tmp_path):
    err = tmp_path / "wrapper.err"
    wrapper = start_wrapper([SLURM_SH, "log/victim.log", "sleep", "600"], tmp_path, err)
    try:
        job = wait_for(lambda: submitted_job_id(err), "the job id")
        wait_for(lambda: "RUNNING" in squeue_states(job), "the job to run")
        subprocess.run(["scancel", job], check=True)
        rc = wrapper.wait(timeout=TIMEOUT_S)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert rc != 0
    message = read(err)
    assert "log/victim.log" in message and "CANCELLED" in message, message


# ----------------------------------------------------------------------------- (c) Ctrl-C
@pytest.mark.slurm
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupting_the_wrapper_cancels_its_jobs(slurm_cluster, tmp_path, sig):
    err = tmp_path / "wrapper.err"
    wrapper = start_wrapper([SLURM_SH, "JOB=1:3", "log/long.JOB.log", "sleep", "600"], tmp_path, err)
    try:
        job = wait_for(lambda: submitted_job_id(err), "the job id")
        wait_for(lambda: "RUNNING" in squeue_states(job), "a task to run")
        os.killpg(wrapper.pid, sig)  # what Ctrl-C does: the whole foreground process group
        rc = wrapper.wait(timeout=TIMEOUT_S)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert rc != 0
    assert squeue_ids(job) == [], f"jobs left in the queue: {squeue_ids(job)}"
    assert f"cancelling SLURM job {job}" in read(err)


# ----------------------------------------------------------------------------- preemption
@pytest.mark.slurm
def test_sigusr1_checkpoints_requeues_and_resumes(slurm_cluster, tmp_path):
    """The preemption warning (sbatch --signal=B:USR1@T) as sent by SLURM, simulated with scancel."""
    err = tmp_path / "wrapper.err"
    ckpt = tmp_path / "ckpt.json"
    log = tmp_path / "log" / "train.log"
    wrapper = start_wrapper(
        [SLURM_SH, "--config", SHARED_CONF, "--requeue", "true", "log/train.log",
         sys.executable, FAKE_TRAINER, "--checkpoint", ckpt, "--steps", "8", "--step_time", "0.5"],
        tmp_path, err,
    )
    try:
        job = wait_for(lambda: submitted_job_id(err), "the job id")
        wait_for(lambda: "step 2" in read(log), "two training steps")
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
        wait_for(lambda: "Preempted (SIGUSR1" in read(log), "the job script to see SIGUSR1")
        wait_for(lambda: "PENDING" in squeue_states(job), "the requeued job")
        release_requeued(job)
        rc = wrapper.wait(timeout=TIMEOUT_S)
    finally:
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, signal.SIGTERM)
            wrapper.wait(timeout=60)
    text = read(log)
    assert rc == 0, read(err) + text
    m = re.search(r"rank None: got SIGUSR1 at step (\d+): checkpoint saved", text)
    assert m, text
    saved = int(m.group(1))
    assert saved >= 2
    assert "# Restart 1 of SLURM job" in text
    assert f"rank None: resumed from step {saved}" in text
    assert "rank None: finished at step 8" in text
    assert re.search(r"^# Ended \(code 0\)", text.splitlines()[-1]), text


@pytest.mark.slurm
def test_preemption_reaches_every_srun_task_and_all_resume(slurm_cluster, tmp_path):
    """Multi-process training (launch_train.sh srun mode): SIGUSR1 to the job script reaches
    every rank through srun; the requeued job restarts all ranks, which resume."""
    err = tmp_path / "launcher.err"
    log = tmp_path / "exp" / "train.log"
    ckpt = tmp_path / "ckpt.json"
    launcher = start_wrapper(
        [LAUNCH_TRAIN, "--cmd", f"{SLURM_SH} --config {SHARED_CONF}", "--log", log, "--ngpu", "0",
         "--nprocs_per_node", "2", "--", sys.executable, FAKE_TRAINER, "--checkpoint", ckpt,
         "--steps", "8", "--step_time", "0.5"],
        tmp_path, err,
    )
    try:
        job = wait_for(lambda: submitted_job_id(err), "the job id")
        wait_for(lambda: all(step_of(Path(f"{ckpt}.rank{r}")) >= 2 for r in (0, 1)), "both ranks to train")
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
        wait_for(lambda: "Preempted (SIGUSR1" in read(log), "the job script to see SIGUSR1")
        wait_for(lambda: "PENDING" in squeue_states(job), "the requeued job")
        release_requeued(job)
        rc = launcher.wait(timeout=TIMEOUT_S)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGTERM)
            launcher.wait(timeout=60)
    text = read(log)
    assert rc == 0, read(err) + text
    for rank in (0, 1):
        m = re.search(rf"rank {rank}: got SIGUSR1 at step (\d+): checkpoint saved", text)
        assert m, f"rank {rank} did not get SIGUSR1:\n{text}"
        assert f"rank {rank}: resumed from step {m.group(1)}" in text
        assert f"rank {rank}: finished at step 8" in text
    assert "# Restart 1 of SLURM job" in text


# ----------------------------------------------------------------------------- launcher
def test_launch_train_refuses_distributed_options_in_the_command(tmp_path):
    proc = run([LAUNCH_TRAIN, "--log", "log/t.log", "--ngpu", "0", "--", "python3", "-c", "pass", "--ngpu", "1"],
               cwd=tmp_path)
    assert proc.returncode != 0 and "--ngpu" in proc.stderr


def test_launch_train_multinode_needs_the_slurm_backend(tmp_path):
    proc = run([LAUNCH_TRAIN, "--cmd", UTILS / "run_local.sh", "--log", "log/t.log", "--ngpu", "4",
                "--num_nodes", "2", "--", "python3", "-c", "pass"], cwd=tmp_path)
    assert proc.returncode != 0 and "slurm backend" in proc.stderr


def test_launch_train_logs_layout_and_effective_batch_size(tmp_path):
    (tmp_path / "train.yaml").write_text("batch_type: unsorted\nbatch_size: 16\n")
    argv_dump = tmp_path / "argv.txt"
    proc = run(
        [LAUNCH_TRAIN, "--cmd", UTILS / "run_local.sh", "--log", "exp/train.log", "--ngpu", "0", "--",
         sys.executable, "-c", f"import sys; open({str(argv_dump)!r}, 'w').write(' '.join(sys.argv[1:]))",
         "--config", "train.yaml"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    log = read(tmp_path / "exp" / "train.log")
    assert "world_size=1" in log
    assert "effective batch size = 16 utterances per optimizer step" in log
    assert argv_dump.read_text().split() == ["--config", "train.yaml", "--ngpu", "0",
                                             "--multiprocessing_distributed", "false"]


@pytest.mark.slurm
def test_launch_train_srun_mode_gives_each_task_its_rank(slurm_cluster, tmp_path):
    (tmp_path / "train.yaml").write_text("batch_type: unsorted\nbatch_size: 8\n")
    script = (
        "import os, sys; a = sys.argv[1:]; "
        "open('rank.%s.txt' % os.environ['SLURM_PROCID'], 'w').write(' '.join(a))"
    )
    proc = run(
        [LAUNCH_TRAIN, "--cmd", f"{SLURM_SH} --config {SHARED_CONF}", "--log", "exp/train.log", "--ngpu", "0",
         "--nprocs_per_node", "2", "--master_port", "29555", "--", sys.executable, "-c", script,
         "--config", "train.yaml"],
        cwd=tmp_path,
    )
    log = read(tmp_path / "exp" / "train.log")
    assert proc.returncode == 0, proc.stderr + log
    assert "world_size=2" in log and "mode=srun" in log
    assert "effective batch size = 8 utterances per optimizer step" in log and "= 4 per process x 2" in log
    for rank in (0, 1):
        args = read(tmp_path / f"rank.{rank}.txt").split()
        opts = dict(zip(args[::2], args[1::2]))
        assert opts["--dist_rank"] == str(rank)
        assert opts["--dist_world_size"] == "2"
        assert opts["--local_rank"] == str(rank)
        assert opts["--ngpu"] == "0" and opts["--dist_backend"] == "gloo"
        assert opts["--multiprocessing_distributed"] == "false" and opts["--dist_launcher"] == "slurm"
        assert opts["--dist_master_port"] == "29555"


# ----------------------------------------------------------------------------- (d) the recipe
def run_recipe(root: Path, *args: str, backend: str = "slurm") -> subprocess.CompletedProcess:
    """``./run.sh --fast ARGS`` (debug config) in ``root`` with the given cmd.sh backend; stdout+stderr together."""
    return subprocess.run(
        ["./run.sh", "--fast", *args],
        cwd=root,
        env=env_with(VOC_CMD_BACKEND=backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )


def expect_ok(proc: subprocess.CompletedProcess, what: str) -> None:
    """Fail with the end of the recipe's output if it failed."""
    if proc.returncode != 0:
        pytest.fail(f"{what} failed with code {proc.returncode}:\n{proc.stdout[-6000:]}")


def load_feats(dump: Path) -> Dict[str, "object"]:
    """utt -> feature matrix of every set under dump/raw."""
    import kaldiio

    feats = {}
    with contextlib.chdir(dump.parent):  # the scp files hold paths relative to the recipe
        for scp in sorted(dump.glob("raw/*/feats.scp")):
            for utt, mat in kaldiio.load_scp(str(scp)).items():
                feats[f"{scp.parent.name}/{utt}"] = mat.copy()
    return feats


@pytest.fixture(scope="module")
def slurm_recipe(slurm_cluster, prepared_mini_an4, tmp_path_factory) -> Dict:
    """mini_an4 with stages 1-4 run locally (the session's prepared copy), then stages 3 and 4
    again through SLURM."""
    from mini_an4 import copy_prepared

    root = copy_prepared(prepared_mini_an4, tmp_path_factory.mktemp("mini_an4_slurm"))
    local_feats = load_feats(root / "dump")
    stage3 = run_recipe(root, "--stage", "3", "--stop_stage", "3")
    expect_ok(stage3, "stage 3 (slurm backend)")
    slurm_feats = load_feats(root / "dump")
    stage4 = run_recipe(root, "--stage", "4", "--stop_stage", "4")
    expect_ok(stage4, "stage 4 (slurm backend)")
    return dict(root=root, local_feats=local_feats, slurm_feats=slurm_feats, stage3=stage3.stdout)


@pytest.mark.slurm
def test_recipe_stage3_as_slurm_array_matches_local_features(slurm_recipe):
    import numpy as np

    root = slurm_recipe["root"]
    logs = sorted(root.glob("dump/raw/train/logdir/extract_feats/extract_feats.*.log"))
    assert len(logs) == 2  # --nj 2 in run.sh: a 2-task array
    for log in logs:
        assert re.search(r"^# Running on \S+ as SLURM job \d+_\d+$", read(log), re.M), read(log)
        assert "# Ended (code 0)" in read(log)
    local, slurm = slurm_recipe["local_feats"], slurm_recipe["slurm_feats"]
    assert sorted(local) == sorted(slurm) and len(local) == 7
    for utt in local:
        np.testing.assert_array_equal(local[utt], slurm[utt], err_msg=utt)


@pytest.mark.slurm
def test_recipe_stage5_trains_through_slurm(slurm_recipe):
    root = slurm_recipe["root"]
    proc = run_recipe(root, "--stage", "5", "--stop_stage", "5")
    expect_ok(proc, "stage 5 (slurm backend)")
    log = read(root / "exp" / "voc_train_debug" / "train.log")
    assert re.search(r"^# Running on \S+ as SLURM job \d+$", log, re.M), log[:2000]
    assert "# Ended (code 0)" in log
    assert (root / "exp" / "voc_train_debug" / "checkpoint.pth").exists()


def epochs_started(log: str) -> List[int]:
    """Epoch numbers of ESPnet's "N/Mepoch started" lines, in order."""
    return [int(n) for n in re.findall(r"\b(\d+)/\d+epoch started", log)]


@pytest.mark.slurm
def test_recipe_cancelled_training_resumes_from_its_checkpoint(slurm_recipe):
    """Ctrl-C during stage 5 cancels the SLURM job; running stage 5 again resumes from the
    checkpoint that the cancelled run wrote (not from scratch, not from the earlier run)."""
    root = slurm_recipe["root"]
    exp = root / "exp" / "voc_train_debug"
    if not (exp / "checkpoint.pth").exists():
        expect_ok(run_recipe(root, "--stage", "5", "--stop_stage", "5"), "stage 5 (slurm backend)")
    before = epochs_started(read(exp / "train.log"))
    done_before = max(before)  # epochs trained before this test (2 with the debug config)
    # The cancelled run could go on far longer than the test waits, so it is still training when
    # Ctrl-C comes even if this process is slow to see its epoch start (an epoch takes ~5 s).
    stage5 = ["--stage", "5", "--stop_stage", "5", "--train_args"]
    out = root / "cancelled.out"
    runner = subprocess.Popen(
        ["./run.sh", "--fast", *stage5, f"--max_epoch {done_before + 100}"],
        cwd=root, env=env_with(VOC_CMD_BACKEND="slurm"),
        stdout=out.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_default_signal_dispositions,  # Ctrl-C reaches it even from a backgrounded test run
    )
    try:
        # Cancel once the run has saved at least one checkpoint of its own (epoch done_before + 1).
        wait_for(lambda: (done_before + 2) in epochs_started(read(exp / "train.log")),
                 f"epoch {done_before + 2} to start", timeout=TIMEOUT_S)
        job_ids = re.findall(r"SLURM job (\d+)", read(exp / "train.log"))
        os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C
        rc = runner.wait(timeout=TIMEOUT_S)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    assert rc != 0
    assert job_ids and squeue_ids(job_ids[0]) == [], "the training job is still queued after Ctrl-C"
    cancelled_log = read(exp / "train.log")
    last_started = max(epochs_started(cancelled_log))
    assert "The training was finished" not in cancelled_log

    max_epoch = last_started + 1  # the resumed run trains what was cut short, and one epoch more
    proc = run_recipe(root, *stage5, f"--max_epoch {max_epoch}")
    expect_ok(proc, "stage 5 after the cancellation")
    resumed_log = read(exp / "train.log")
    assert "The training was resumed using" in resumed_log
    first = epochs_started(resumed_log)[0]
    # At least the epoch the cancelled run completed is kept; at most what it started.
    assert done_before + 2 <= first <= last_started + 1, (done_before, first, last_started)
    assert f"The training was finished at {max_epoch} epochs" in resumed_log


# ----------------------------------------------------------------------------- (e) DDP on CPU
@pytest.mark.slurm
def test_two_process_gloo_training_through_srun_keeps_ranks_identical(slurm_recipe, tmp_path):
    """2 CPU processes (gloo) started by srun inside one SLURM job train the real task a few
    steps with ESPnet's distributed setup; both ranks must end with the same weights, which
    differ from the initial ones. Every rank sees different utterances, so equality means the
    gradients were all-reduced."""
    import torch

    root = slurm_recipe["root"]
    dump = root / "dump" / "raw" / "train"
    stats = root / "exp" / "voc_stats"
    probe_dir = tmp_path / "weights"
    # The training set is also the validation set: ESPnet needs >= world_size utterances per
    # batch, and dev has one.
    data = []
    for split in ("train", "valid"):
        data += [f"--{split}_data_path_and_name_and_type", f"{dump}/wav.scp,speech,sound",
                 f"--{split}_data_path_and_name_and_type", f"{dump}/feats.scp,feats,kaldi_ark",
                 f"--{split}_shape_file", f"{stats}/train/speech_shape"]
    proc = run(
        [LAUNCH_TRAIN, "--cmd", f"{SLURM_SH} --config {SHARED_CONF}", "--log", tmp_path / "exp" / "train.log",
         "--ngpu", "0", "--nprocs_per_node", "2", "--",
         sys.executable, DDP_PROBE, "--config", root / "conf" / "train_debug.yaml", *data,
         "--normalize_conf", f"stats_file={stats}/train/feats_stats.npz",
         "--output_dir", tmp_path / "exp", "--max_epoch", "1", "--num_iters_per_epoch", "2",
         "--num_att_plot", "0", "--seed", "7"],
        cwd=root,
        SLURM_DDP_PROBE_DIR=str(probe_dir),
    )
    log = read(tmp_path / "exp" / "train.log")
    assert proc.returncode == 0, proc.stderr + log[-6000:]
    assert "world_size=2" in log and "dist_backend=gloo" in log
    assert "effective batch size" in log
    for rank in (0, 1):
        assert read(probe_dir / f"info.rank{rank}.txt").split() == [str(rank), "2", "True"]
    init = [torch.load(probe_dir / f"init.rank{r}.pth") for r in (0, 1)]
    final = [torch.load(probe_dir / f"final.rank{r}.pth") for r in (0, 1)]
    assert final[0].keys() == final[1].keys()
    differing = [k for k in final[0] if not torch.equal(final[0][k], final[1][k])]
    assert not differing, f"ranks disagree on {len(differing)} tensors, e.g. {differing[:5]}"
    changed = [k for k in final[0] if not torch.equal(final[0][k], init[0][k])]
    assert len(changed) > len(final[0]) // 2, "training did not change the weights"
