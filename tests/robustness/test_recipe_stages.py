"""Recipe stages fail loudly and keep earlier results (issue 10, items 7, 9 and 12).

The mini_an4 recipe runs once (stages 1-8, one test set) in a temporary directory whose entries
link to the recipe's files. Each case then re-runs one stage with a fault injected through
``--python``: a wrapper that fails for one module and runs the real interpreter otherwise. Every
case checks the exit status, that the message names the file, utterance or option, that no
temporary or half-written output is left and that the earlier results are untouched. Option
checks and the chaining directory (keyed by the TTS experiment, refused for another one) are
cases of the same tables.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Sequence

import pytest
import yaml
from mini_an4 import copy_prepared

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900
# The recipe as the cases run it: the debug config (--fast: its experiment is exp/voc_train_debug)
# and one test set.
RUN = ["./run.sh", "--fast", "--test_sets", "test"]
TAG = "voc_train_debug"
# The wrapper given as --python: fails for any command naming $FAIL_MODULE.
FAKE_PYTHON = """#!/usr/bin/env bash
for arg in "$@"; do
    if [ -n "${FAIL_MODULE:-}" ] && [ "${arg}" = "${FAIL_MODULE}" ]; then
        echo "injected failure: ${FAIL_MODULE}" >&2
        exit 3
    fi
done
exec "%s" "$@"
"""
# An ESPnet TTS experiment's config.yaml with the mini_an4 vocoder's features.
TTS_CONFIG = dict(
    feats_extract="fbank",
    feats_extract_conf=dict(fs=16000, n_fft=1024, hop_length=256, win_length=1024, n_mels=80, fmin=80, fmax=7600),
    normalize=None,
)


def run(root: Path, cmd: Sequence[str], fail_module: str = "") -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``root``; stdout and stderr interleaved."""
    env = dict(os.environ, FAIL_MODULE=fail_module)
    return subprocess.run(list(map(str, cmd)), cwd=root, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def recipe(trained_mini_an4, tmp_path_factory) -> Dict:
    """mini_an4 run through stages 1-8 with ``--fast`` (a copy of the session's run); returns paths
    and the fake python."""
    root = copy_prepared(trained_mini_an4, tmp_path_factory.mktemp("mini_an4"))
    fake = root.parent / "fake_python"
    fake.write_text(FAKE_PYTHON % sys.executable)
    fake.chmod(0o755)
    exp = root / "exp" / TAG
    (decode,) = sorted(exp.glob("decode_*"))
    return dict(root=root, fake=fake, exp=exp, decode=decode)


def snapshot(paths: Sequence[Path]) -> Dict[str, str]:
    """sha256 of every result file under ``paths`` (logs are the last attempt's, left out)."""
    out = {}
    for p in paths:
        for f in sorted(p.rglob("*")):
            if f.is_file() and "logdir" not in f.parts and f.suffix != ".log":
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    assert out, f"nothing under {paths}"
    return out


def leftovers(root: Path) -> list:
    """Temporary or half-written outputs anywhere in the recipe."""
    return [str(p) for p in root.rglob("*") if ".tmp." in p.name or ".old." in p.name or ".staging" in p.name]


def scp_targets_exist(root: Path, scp: Path) -> None:
    for line in scp.read_text().splitlines():
        path = Path(line.split(maxsplit=1)[1].split(":")[0])
        assert (root / path).is_file(), f"{scp}: {path} does not exist"


# ------------------------------------------------------------------------------ failed re-runs
# id: (stage, module made to fail, what the message names, results that must stay untouched)
FAULTS = {
    "stage2_format_wav_fails": (2, "espnet_hifigan.bin.format_wav", "dump/raw/train/logdir/format_wav/format_wav.1.log",
                                ["dump/raw/train", "dump/raw/dev", "dump/raw/test"]),
    "stage3_extract_feats_fails": (3, "espnet_hifigan.bin.extract_feats",
                                   "dump/raw/train/logdir/extract_feats/extract_feats.1.log", ["dump/raw/train"]),
    "stage4_stats_jobs_fail": (4, "espnet_hifigan.bin.voc_train", "exp/voc_stats/logdir/stats.1.log", ["exp/voc_stats"]),
    "stage7_scoring_fails": (7, "espnet_hifigan.bin.voc_score", "/test/logdir/score.log", ["{decode}/test/scoring"]),
    "stage8_pack_fails": (8, "espnet_hifigan.bin.pack", f"exp/{TAG}/packed/pack.log", [f"exp/{TAG}/packed"]),
    "stage8_packed_model_does_not_decode": (8, "espnet_hifigan.bin.voc_inference",
                                            f"exp/{TAG}/packed/check/inference.log", [f"exp/{TAG}/packed"]),
    "stage6_decode_fails": (6, "espnet_hifigan.bin.voc_inference", "/test/logdir/inference.*.log", []),
}


@pytest.mark.parametrize("case", list(FAULTS), ids=list(FAULTS))
def test_failed_stage_keeps_earlier_results(recipe, case):
    stage, module, named, kept = FAULTS[case]
    root, decode = recipe["root"], recipe["decode"]
    kept_dirs = [root / k.format(decode=decode.relative_to(root)) for k in kept]
    before = snapshot(kept_dirs) if kept_dirs else {}
    old_decode = (decode / "test" / "wav.scp").read_text()

    proc = run(root, [*RUN, "--python", recipe["fake"],
                      "--stage", stage, "--stop_stage", stage], fail_module=module)

    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "Successfully finished" not in proc.stdout
    assert named in proc.stdout, proc.stdout[-3000:]
    assert f"injected failure: {module}" in "".join(p.read_text() for p in root.rglob("*.log"))
    assert not leftovers(root), leftovers(root)
    assert snapshot(kept_dirs) == before if kept_dirs else True
    if stage in (2, 3):
        scp_targets_exist(root, root / "dump/raw/train/wav.scp")
        scp_targets_exist(root, root / "dump/raw/train/feats.scp")
    if stage == 8:
        import zipfile

        assert zipfile.ZipFile(root / f"exp/{TAG}/packed/model.zip").testzip() is None
        scp_targets_exist(root, root / f"exp/{TAG}/packed/check/wav.scp")
    if stage == 6:
        # The earlier decoding is kept whole in test.previous, not passed off as this one's.
        out, previous = decode / "test", decode / "test.previous"
        assert f"now in {previous.relative_to(root)}" in proc.stdout
        assert not (out / "wav.scp").exists() and not (out / "timing.json").exists()
        assert not list((out).glob("wav/*")), "no new wav is left"
        assert (out / "logdir").is_dir()
        kept_scp = previous / "wav.scp"
        assert kept_scp.read_text() == old_decode.replace(f"{out.relative_to(root)}/", f"{previous.relative_to(root)}/")
        scp_targets_exist(root, kept_scp)
        assert (previous / "timing.json").is_file()
        # Put it back for the other cases.
        shutil.rmtree(out)
        os.replace(previous, out)
        (out / "wav.scp").write_text(old_decode)


# ------------------------------------------------------------------------------ options
# id: (arguments of ./run.sh, or of ./voc.sh when the first is "voc.sh", what the message says)
OPTIONS = {
    "stage_not_a_number": (["--stage", "abc"], "--stage must be a non-negative integer, got 'abc'"),
    "stop_stage_not_a_number": (["--stop_stage", "x"], "--stop_stage must be a non-negative integer, got 'x'"),
    "stage_past_the_last": (["--stage", "20"], "--stage must be within 1-8 (stages 9-13 run with --tts_exp), got 20"),
    "chain_stage_without_tts_exp": (["--stage", "10"], "--stage must be within 1-8 (stages 9-13 run with --tts_exp)"),
    "stage_after_stop_stage": (["--stage", "6", "--stop_stage", "3"], "--stop_stage 3 is before --stage 6"),
    "nj_zero": (["--nj", "0"], "--nj, --inference_nj and --num_nodes must be >= 1"),
    "fs_not_a_number": (["--fs", "22k"], "--fs must be a non-negative integer, got '22k'"),
    "missing_train_set": (["voc.sh", "--valid_set", "dev"], "--train_set is required"),
    "train_config_not_found": (["--train_config", "conf/nope.yaml"], "training config not found: conf/nope.yaml"),
    "inference_model_not_found": (["--stage", "6", "--stop_stage", "6", "--inference_model", "nope.pth"],
                                  f"model exp/{TAG}/nope.pth not found"),
}


@pytest.mark.parametrize("case", list(OPTIONS), ids=list(OPTIONS))
def test_bad_options_stop_before_anything_runs(recipe, case):
    args, message = OPTIONS[case]
    root = recipe["root"]
    before = snapshot([root / "dump", root / "exp"])
    cmd = ["./voc.sh", *args[1:]] if args[0] == "voc.sh" else [*RUN, *args]
    proc = run(root, cmd)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert message in proc.stdout, proc.stdout[-3000:]
    assert "integer expression expected" not in proc.stdout and "Successfully finished" not in proc.stdout
    assert sum("ERROR:" in line for line in proc.stdout.splitlines()) == 1, proc.stdout[-3000:]
    assert snapshot([root / "dump", root / "exp"]) == before
    assert not leftovers(root)


# ------------------------------------------------------------------------------ chaining directory
def make_tts_exp(root: Path, recipe_name: str, **feats) -> Path:
    """<root>/<recipe_name>/exp/tts_train_raw_phn/config.yaml: same name, another experiment."""
    exp = root / recipe_name / "exp" / "tts_train_raw_phn"
    exp.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(yaml.safe_dump(TTS_CONFIG))
    config["feats_extract_conf"].update(feats)
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    return exp


def chain_dir(voc_exp: Path, tts_exp: Path) -> Path:
    """The chain directory of ``tts_exp`` (exactly one chain_<name>_<hash> records it)."""
    found = [d for d in voc_exp.glob(f"chain_{tts_exp.name}_*") if (d / "tts_exp").read_text().strip() == str(tts_exp)]
    assert len(found) == 1, found
    return found[0]


# id: (how the TTS experiment / chain directory is set up, chain.sh arguments, what the message says)
CHAIN = {
    "same_name_other_features_refused_apart": ("other_fmax", [], "different features"),
    "chain_dir_recorded_for_another_tts": ("claimed", [], "holds the chaining after the TTS"),
    "chain_stage_out_of_range": ("plain", ["--stage", "7"], "--stage must be within 1-5, got 7"),
}


@pytest.mark.parametrize("case", list(CHAIN), ids=list(CHAIN))
def test_chain_dir_belongs_to_one_tts(recipe, case):
    setup, args, message = CHAIN[case]
    root, voc_exp = recipe["root"], recipe["exp"]
    good = make_tts_exp(root.parent, "tts_a")
    proc = run(root, ["./chain.sh", "--tts_exp", good, "--voc_exp", f"exp/{TAG}", "--stage", "1", "--stop_stage", "1"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    good_dir = chain_dir(voc_exp, good)
    contract = (good_dir / "tts_feature_contract.yaml").read_text()
    tts = good
    if setup == "other_fmax":
        tts = make_tts_exp(root.parent, "tts_b", fmax=8000)
    elif setup == "claimed":
        (good_dir / "tts_exp").write_text("/elsewhere/exp/tts_train_raw_phn\n")
    before = snapshot([voc_exp])

    proc = run(root, ["./chain.sh", "--tts_exp", tts, "--voc_exp", f"exp/{TAG}", "--stop_stage", "1", *args])

    assert proc.returncode != 0, proc.stdout[-3000:]
    assert message in proc.stdout, proc.stdout[-3000:]
    assert (good_dir / "tts_feature_contract.yaml").read_text() == contract
    if setup == "other_fmax":
        assert str(tts) in proc.stdout or tts.name in proc.stdout
        other = chain_dir(voc_exp, tts)  # its own directory, which holds no contract
        assert other != good_dir and not (other / "tts_feature_contract.yaml").exists()
    else:
        assert snapshot([voc_exp]) == before
        if setup == "claimed":
            assert str(good_dir.relative_to(root)) in proc.stdout and "/elsewhere/" in proc.stdout
            (good_dir / "tts_exp").write_text(f"{good}\n")
    assert not leftovers(root)


# ------------------------------------------------------------------------------ ids that are paths
def test_decode_feats_scp_with_a_path_as_id_fails_and_moves_nothing(recipe, tmp_path):
    """Issue 20 A: an id ``/abs/victim/keep`` once overwrote ``/abs/victim/keep.wav`` and stage 6's
    merge then moved the victim into the decode directory, "Successfully finished"."""
    root = recipe["root"]
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.wav").write_bytes(b"someone else's file")
    feats = tmp_path / "evil"
    feats.mkdir()
    shutil.copy(root / "dump/raw/test/feats_conf.yaml", feats / "feats_conf.yaml")
    first = (root / "dump/raw/test/feats.scp").read_text().splitlines()[0].split(maxsplit=1)[1]
    ark = first if os.path.isabs(first.split(":")[0]) else str(root / first)
    (feats / "feats.scp").write_text(f"{victim / 'keep'} {ark}\n")
    before = snapshot([root / "dump", root / "exp", victim])

    proc = run(root, [*RUN, "--stage", "6", "--stop_stage", "6", "--decode_feats_scp", feats / "feats.scp"])

    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "Successfully finished" not in proc.stdout
    log = "".join(p.read_text() for p in root.rglob("inference.*.log"))
    assert f"utterance id '{victim / 'keep'}' cannot be a file name" in log, log[-3000:]
    assert (victim / "keep.wav").read_bytes() == b"someone else's file"
    assert sorted(p.name for p in victim.iterdir()) == ["keep.wav"]
    after = snapshot([root / "dump", root / "exp", victim])
    assert {k: v for k, v in after.items() if k in before} == before  # nothing earlier changed or moved
