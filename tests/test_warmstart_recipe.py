"""The recipe warm-starts from a published vocoder (issue 21): ``voc.sh --pretrained_model`` converts
it (generator AND discriminators) into ``exp/<tag>/pretrained/``, takes its features, and trains
stage 5 from it; ``chain.sh --pretrained_model`` fine-tunes it on a TTS's teacher-forced mels
without a stage 5 of ours.

The source is a tiny ESPnet ``joint_text2wav`` experiment with the mini recipe's (and the tiny
tts1's) features: ESPnet tts1 log-mel at 16 kHz, hop 256, 80 mels, 80-7600 Hz.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from mini_an4 import RUN_TIMEOUT_S, copy_prepared, expect_success, linked_recipe, run_recipe
from test_warmstart import DISCRIMINATOR_PARAMS, write_joint_text2wav
from tts_recipe import TTS_EXP, run

REPO_ROOT = Path(__file__).resolve().parents[1]
FEATS_16K = dict(fs=16000, n_fft=1024, hop_length=256, win_length=None, n_mels=80, fmin=80, fmax=7600)
FINETUNE_CONFIG = REPO_ROOT / "conf" / "hifigan_finetune_gta_debug.yaml"
SOURCE_MODEL = "train.total_count.best.pth"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The published vocoder: a joint_text2wav model file (its config.yaml next to it)."""
    root = tmp_path_factory.mktemp("published") / "exp"
    write_joint_text2wav(root, DISCRIMINATOR_PARAMS, FEATS_16K)
    return root / SOURCE_MODEL


@pytest.fixture(scope="module")
def warm_started(prepared_mini_an4, source, tmp_path_factory) -> dict:
    """mini_an4 (stages 1-4 of the session fixture: the same run.sh options) through stages 5-8
    with --pretrained_model and the debug config's training sections."""
    root = copy_prepared(prepared_mini_an4, tmp_path_factory.mktemp("warm"))
    proc = run_recipe(root, "--stage", "5", "--stop_stage", "8", "--pretrained_model", source)
    expect_success(proc, "./run.sh --fast --pretrained_model ... --stage 5 --stop_stage 8")
    return dict(root=root, output=proc.stdout)


def test_recipe_trains_from_the_converted_model(warm_started, source):
    root = warm_started["root"]
    exp = root / "exp" / f"voc_finetune_{SOURCE_MODEL}"
    pretrained = exp / "pretrained"
    for name in ("config.yaml", "model.pth", "feature_contract.yaml", "feats_stats.npz", "train.yaml", "source"):
        assert (pretrained / name).is_file(), name
    config = yaml.safe_load((exp / "config.yaml").read_text())
    converted = yaml.safe_load((pretrained / "config.yaml").read_text())
    debug = yaml.safe_load((root / "conf" / "train_debug.yaml").read_text())
    # Stage 5 ran with --init_param model.pth, the source's architecture and statistics, the debug
    # config's training sections.
    assert config["init_param"] == [f"exp/voc_finetune_{SOURCE_MODEL}/pretrained/model.pth"]
    for key in ("generator_conf", "discriminator_conf", "feats_extract_conf"):
        assert config[key] == converted[key], key
    assert config["normalize_conf"]["stats_file"] == converted["normalize_conf"]["stats_file"]
    assert config["max_epoch"] == debug["max_epoch"] and config["model_conf"]["segment_size"] == debug["model_conf"]["segment_size"]
    assert "features of " in warm_started["output"] and "Converting " in warm_started["output"]
    # The trained model starts from both networks: after its few steps it is near model.pth (a fresh init
    # would be ~sqrt(2) away relative to the norm; measured: at most 0.08).
    start = torch.load(pretrained / "model.pth", map_location="cpu", weights_only=True)
    trained = torch.load(exp / "latest.pth", map_location="cpu", weights_only=True)
    for net in ("generator.", "discriminator."):
        # parameters only (spectral norm's weight_u/weight_v are power-iteration buffers)
        keys = [k for k in start if k.startswith(net) and (k.endswith(("weight_g", "weight_orig")) or k[:-1] + "g" in start)]
        assert keys
        for key in keys:
            rel = (trained[key] - start[key]).norm() / start[key].norm()
            assert rel < 0.5, f"{key}: {rel:.2f} from the pretrained weights"
    # Stages 6-8: decoded, scored, packed.
    assert (exp / "RESULTS.md").is_file()
    assert (exp / "packed" / "model.zip").is_file()


@pytest.mark.parametrize("given", ["command line", "config file"])
def test_explicit_feature_option_against_the_pretrained_model_stops_with_the_table(source, tmp_path, given):
    root = linked_recipe(tmp_path)
    if given == "command line":
        proc = run_recipe(root, "--pretrained_model", source, "--fmax", "8000")
    else:  # voc.sh itself (run.sh gives every feature option), with Kaldi's --config FILE of var=value lines
        (tmp_path / "feats.conf").write_text("fmax=8000\n")
        proc = subprocess.run(["./voc.sh", "--config", str(tmp_path / "feats.conf"), "--ngpu", "0", "--train_set", "train",
                               "--valid_set", "dev", "--pretrained_model", str(source)], cwd=root, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S, check=False)
    assert proc.returncode != 0
    assert "fmax" in proc.stdout and "recipe options" in proc.stdout and "pretrained" in proc.stdout
    assert "was trained on other features" in proc.stdout
    assert not (root / "data").exists() and not (root / "dump").exists()  # stopped before stage 1
    assert not (root / "exp").exists() or not any((root / "exp").iterdir())  # the conversion removed again


def test_chain_finetunes_the_pretrained_model_directly(tts_recipe, source):
    recipe = tts_recipe
    voc_exp = "exp/voc_pretrained_published"
    proc = run(["bash", "chain.sh", "--python", sys.executable, "--inference_nj", "1", "--tts_exp", TTS_EXP,
                "--pretrained_model", source, "--voc_exp", voc_exp, "--gta_train_set", "train", "--gta_valid_set", "test",
                "--finetune_config", FINETUNE_CONFIG, "--gta_max_frame_diff", "1"], cwd=recipe, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    pretrained = recipe / voc_exp
    finetuned = sorted((recipe / "exp").glob("voc_pretrained_published_gta_tts_tiny_*"))
    assert len(finetuned) == 1
    config = yaml.safe_load((finetuned[0] / "config.yaml").read_text())
    assert config["init_param"] == [str((pretrained / "model.pth").absolute())]
    assert config["discriminator_conf"] == yaml.safe_load((pretrained / "config.yaml").read_text())["discriminator_conf"]
    # decoded with the pretrained model (stage 2) and with the fine-tuned one (stage 5)
    assert list(pretrained.glob("chain_tts_tiny_*/decode_model/*/*/wav.scp"))
    assert list(finetuned[0].glob("chain_tts_tiny_*/decode_*/*/*/wav.scp"))
