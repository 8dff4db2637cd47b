"""Sample-rate presets: every ESPnet TTS geometry gets V1/V2/V3 configs that train, and the
recipe picks them from --fs/--n_shift (espnet_hifigan.bin.presets)."""

from __future__ import annotations

import argparse
import ast
import math
import re
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from espnet_hifigan.bin import presets
from espnet_hifigan.bin.check_config import check_config
from espnet_hifigan.nets.presets import (
    RATE_PRESETS,
    VERSIONS,
    PresetError,
    find_rate_preset,
)
from espnet_hifigan.train.configs import choose_config

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE = REPO_ROOT / "egs2" / "mini_an4" / "voc1"
CASES = [(p, v) for p in RATE_PRESETS for v in VERSIONS]
IDS = [f"{p.fs}_{p.hop}_{v}" for p, v in CASES]


@pytest.mark.parametrize("preset, version", CASES, ids=IDS)
def test_preset_config_builds_and_trains_one_step(preset, version, tmp_path):
    path = choose_config(preset.fs, preset.hop, version, tmp_path)
    config = yaml.safe_load(path.read_text())
    feats, gen, model_conf = config["feats_extract_conf"], config["generator_conf"], config["model_conf"]
    assert (feats["fs"], feats["hop_length"], feats["n_fft"]) == (preset.fs, preset.hop, preset.n_fft)
    assert feats["win_length"] == preset.win_length
    assert math.prod(gen["upsample_rates"]) == preset.hop
    # paper-like kernels: twice the rate, plus one for an odd rate (exact official padding)
    assert gen["upsample_kernel_sizes"] == [2 * r + r % 2 for r in gen["upsample_rates"]]
    assert len(gen["upsample_rates"]) == (3 if version == "v3" else 4)
    assert model_conf["segment_size"] % preset.hop == 0
    assert model_conf["mel_loss_conf"] == {"fmin": 0, "fmax": None}  # loss mel 0..fs/2 (fmax_for_loss)
    # The preset's lines keep the template's comments (edited in place).
    text = path.read_text()
    for key in ("fs", "n_fft", "hop_length", "win_length", "upsample_rates", "upsample_kernel_sizes", "segment_size"):
        (line,) = [x for x in text.splitlines() if x.strip().startswith(f"{key}:")]
        assert re.match(rf"^\s+{key}: \S+.*\s#\s\S", line), line

    # The config as voc_train parses it (unknown keys are errors), with a tiny segment.
    from espnet_hifigan.train.task import VocoderTask

    segment = 4 * preset.hop
    args = check_config(["--config", str(path), "--model_conf", f"segment_size={segment}"])
    build_args = argparse.Namespace(**vars(args))
    build_args.normalize = None
    # check_config built the preset's own discriminator (the same at every rate); the step below
    # trains the preset's generator, features and losses against a small one (CPU time).
    build_args.discriminator_conf = dict(
        periods=[2, 3], period_discriminator_params=dict(channels=[4, 8], last_channels=8), scales=2,
        scale_discriminator_params=dict(channels=[8, 8, 8], kernel_sizes=[15, 41, 5], strides=[1, 4, 1], groups=[1, 4, 1]),
    )
    torch.manual_seed(0)
    model = VocoderTask.build_model(build_args).train()
    opt_g, opt_d = VocoderTask.build_optimizers(build_args, model)
    speech = 0.1 * torch.randn(2, 3 * segment)
    lengths = torch.tensor([3 * segment, 2 * segment + 7])
    before = model.generator.conv_post.weight_v.detach().clone()
    d_out = model(speech, lengths, forward_generator=False)
    opt_d.zero_grad()
    d_out["loss"].backward()
    opt_d.step()
    g_out = model(speech, lengths, forward_generator=True)
    opt_g.zero_grad()
    g_out["loss"].backward()
    opt_g.step()
    assert torch.isfinite(d_out["loss"]).all() and torch.isfinite(g_out["loss"]).all()
    assert not torch.equal(before, model.generator.conv_post.weight_v)
    with torch.no_grad():
        wav = model.generator(torch.zeros(1, 80, 3))
    assert wav.shape == (1, 1, 3 * preset.hop)


def test_chooser_picks_the_preset_file(tmp_path):
    for version in VERSIONS:
        assert choose_config(22050, 256, version, tmp_path) == (REPO_ROOT / "conf" / f"hifigan_{version}.yaml").resolve()
    path = choose_config(24000, 300, "v1", tmp_path)
    assert path == tmp_path / "hifigan_v1_fs24000_hop300.yaml"
    config = yaml.safe_load(path.read_text())
    assert config["generator_conf"]["upsample_rates"] == [5, 5, 4, 3]
    assert config["generator_conf"]["upsample_initial_channel"] == 512
    v2 = yaml.safe_load(choose_config(44100, 512, "v2", tmp_path).read_text())
    assert v2["generator_conf"]["upsample_initial_channel"] == 128 and v2["feats_extract_conf"]["fs"] == 44100
    v3 = yaml.safe_load(choose_config(48000, 600, "v3", tmp_path).read_text())
    assert v3["generator_conf"]["resblock"] == "2" and math.prod(v3["generator_conf"]["upsample_rates"]) == 600
    # The same request again leaves the file alone.
    mtime = path.stat().st_mtime_ns
    assert choose_config(24000, 300, "v1", tmp_path) == path and path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("fs, hop", [(16000, 200), (24000, 256), (22050, 275)])
def test_uncovered_shift_says_how_to_write_a_config(fs, hop, tmp_path, capsys):
    with pytest.raises(PresetError) as info:
        find_rate_preset(fs, hop)
    message = str(info.value)
    assert f"no HiFi-GAN preset for fs={fs} with frame shift (n_shift) {hop}" in message
    assert "upsample_rates" in message and "--train_config" in message
    for stages, suggestion in zip((4, 3), re.findall(r"e\.g\. (\[[\d, ]+\])", message)):
        rates = ast.literal_eval(suggestion)
        # as many stages as asked, or all the prime factors there are (275 = 11 x 5 x 5)
        assert math.prod(rates) == hop and (len(rates) == stages or f"({len(rates)} stages)" in message)
    assert presets.main(["choose", "--fs", str(fs), "--n_shift", str(hop), "--output_dir", str(tmp_path)]) == 1
    assert "no HiFi-GAN preset" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def _voc_sh(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./voc.sh", "--train_set", "train", "--valid_set", "valid", "--stage", "3", "--stop_stage", "3",
         "--expdir", str(tmp_path / "exp"), "--dumpdir", str(tmp_path / "dump"), *args],
        cwd=RECIPE, capture_output=True, text=True, check=False,
    )


def test_recipe_chooses_the_preset_when_no_config_is_given(tmp_path):
    proc = _voc_sh(tmp_path, "--fs", "24000", "--n_shift", "300", "--n_fft", "2048", "--win_length", "1200",
                   "--voc_version", "v3")
    chosen = tmp_path / "exp" / "conf" / "hifigan_v3_fs24000_hop300.yaml"
    assert f"--train_config {chosen} (the v3 preset for fs=24000, n_shift=300)" in proc.stderr + proc.stdout
    assert chosen.is_file()


def test_recipe_stops_on_a_shift_no_preset_covers(tmp_path):
    proc = _voc_sh(tmp_path, "--fs", "16000", "--n_shift", "200")
    assert proc.returncode != 0
    out = proc.stderr + proc.stdout
    assert "no HiFi-GAN preset for fs=16000 with frame shift (n_shift) 200" in out
    assert "no --train_config given and no preset fits" in out


# The official jik876 config_v1.json's feature and training values (fine-tuning uses the same file).
OFFICIAL_V1 = dict(sampling_rate=22050, n_fft=1024, hop_size=256, win_size=1024, num_mels=80, fmin=0, fmax=8000,
                   learning_rate=0.0002, adam_b1=0.8, adam_b2=0.99, lr_decay=0.999, segment_size=8192, batch_size=16,
                   upsample_rates=[8, 8, 2, 2], upsample_initial_channel=512)


def test_official_finetuning_preset():
    """conf/hifigan_finetune_official.yaml: check_config accepts it; the official mel, V1 generator,
    the official discriminators' shapes and config_v1.json's fine-tuning values."""
    from espnet_hifigan.contract import FeatureContract

    path = REPO_ROOT / "conf" / "hifigan_finetune_official.yaml"
    args = check_config(["--config", str(path)])
    config = yaml.safe_load(path.read_text())
    assert FeatureContract.from_train_config(config).compare(FeatureContract.from_official_config(OFFICIAL_V1)) == []
    assert config["normalize"] is None
    for optim in ("optim_conf", "optim2_conf"):
        assert config[optim]["lr"] == OFFICIAL_V1["learning_rate"]
        assert config[optim]["betas"] == [OFFICIAL_V1["adam_b1"], OFFICIAL_V1["adam_b2"]]
    for sched in ("scheduler_conf", "scheduler2_conf"):  # lr_decay per 809-step epoch, our epochs are 1000 steps
        assert config[sched]["gamma"] == pytest.approx(OFFICIAL_V1["lr_decay"] ** (config["num_iters_per_epoch"] / 809), abs=1e-6)
    assert config["model_conf"]["segment_size"] == OFFICIAL_V1["segment_size"]
    assert config["batch_size"] == OFFICIAL_V1["batch_size"]
    assert config["generator_conf"]["upsample_rates"] == OFFICIAL_V1["upsample_rates"]
    assert config["generator_conf"]["upsample_initial_channel"] == OFFICIAL_V1["upsample_initial_channel"]
    # Every line that sets a key says what it is.
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, line
    manifest = REPO_ROOT.parent / "shared" / "data" / "warmstart" / "official_do_manifest.json"
    if manifest.is_file():  # the discriminators of a real official do_ load into the preset's
        import json

        from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator

        shapes = json.loads(manifest.read_text())
        ours = HiFiGANDiscriminator(**args.discriminator_conf).state_dict()
        expected = {f"{net}.{k}": v for net in ("mpd", "msd") for k, v in shapes[net].items()}
        assert {k: list(v.shape) for k, v in ours.items()} == expected
