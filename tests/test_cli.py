"""The real CLIs: train (+ resume, --print_config), inference, packing, official checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_hifigan.formats.official import load_official_generator
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"


def run(module: str, *args, check: bool = True, cwd=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=cwd
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def train_args(corpus: dict, output_dir: Path, *extra) -> list:
    return [
        "--config", DEBUG_CONFIG,
        "--normalize", "none",
        "--feats_extract_conf", f"fs={corpus['fs']}",
        "--train_data_path_and_name_and_type", f"{corpus['train_scp']},speech,sound",
        "--valid_data_path_and_name_and_type", f"{corpus['valid_scp']},speech,sound",
        "--train_shape_file", corpus["train_scp"],
        "--valid_shape_file", corpus["valid_scp"],
        "--output_dir", output_dir,
        "--ngpu", "0",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(synthetic_corpus, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("exp") / "hifigan_debug"
    run("espnet_hifigan.bin.voc_train", *train_args(synthetic_corpus, exp, "--max_epoch", "1"))
    return exp


def test_training_writes_checkpoints(trained):
    for name in ("config.yaml", "checkpoint.pth", "1epoch.pth", "valid.loss_mel_l1.best.pth"):
        assert (trained / name).is_file(), name
    # per-epoch synthesis of the fixed validation utterances, and the metric curves
    assert sorted(p.name for p in (trained / "att_ws").glob("*/1ep.*")) == ["1ep.png", "1ep.png", "1ep.wav", "1ep.wav"]
    assert (trained / "images" / "loss_mel_l1.png").is_file()
    assert (trained / "images" / "mrstft.png").is_file()
    state = torch.load(trained / "1epoch.pth", map_location="cpu")
    assert any(k.startswith("generator.conv_pre") for k in state)
    assert any(k.startswith("discriminator.mpd") for k in state)


def test_resume_continues_from_checkpoint(trained, synthetic_corpus, tmp_path):
    resumed = tmp_path / "resumed"
    # copy the finished 1-epoch experiment, then ask for 2 epochs with --resume
    subprocess.run(["cp", "-r", str(trained), str(resumed)], check=True)
    proc = run("espnet_hifigan.bin.voc_train", *train_args(synthetic_corpus, resumed, "--max_epoch", "2", "--resume", "true"))
    log = proc.stdout + proc.stderr
    assert "resumed" in log
    assert "1/2epoch started" not in log and "2/2epoch started" in log
    assert (resumed / "2epoch.pth").is_file()


def test_print_config_round_trip(tmp_path, capsys, monkeypatch):
    """voc_train --print_config, then that printout given back as --config, prints the same config
    (the CLI's main in this process: ESPnet prints and exits 0)."""
    from espnet_hifigan.bin import voc_train
    from espnet_hifigan.train.task import VocoderTask

    # ESPnet's print_config(file=sys.stdout) bound the stream when it was imported: print to the
    # stream this test captures.
    print_to = VocoderTask.print_config.__func__
    monkeypatch.setattr(VocoderTask, "print_config", classmethod(lambda cls: print_to(cls, file=sys.stdout)))

    def print_config(config: Path) -> str:
        with pytest.raises(SystemExit) as done:
            voc_train.main(["--config", str(config), "--print_config"])
        assert done.value.code in (0, None)
        return capsys.readouterr().out

    first = print_config(DEBUG_CONFIG)
    config = yaml.safe_load(first)
    assert config["generator"] == "hifigan" and config["model_conf"]["lambda_mel"] == 45.0
    saved = tmp_path / "printed.yaml"
    saved.write_text(first)
    assert yaml.safe_load(print_config(saved)) == config


def test_invalid_config_fails_before_training(synthetic_corpus, tmp_path):
    proc = run(
        "espnet_hifigan.bin.voc_train",
        *train_args(synthetic_corpus, tmp_path / "bad", "--feats_extract_conf", "hop_length=200"),
        check=False,
    )
    assert proc.returncode != 0
    assert "hop_length" in proc.stderr
    assert not (tmp_path / "bad" / "checkpoint.pth").exists()


@pytest.fixture(scope="module")
def feats_scps(synthetic_corpus, tmp_path_factory) -> dict:
    """The valid set's features as a Kaldi ark/scp and as an ESPnet-style npy scp."""
    from espnet_hifigan.nets.features import LogMelSpectrogram

    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    extractor = LogMelSpectrogram(**dict(config["feats_extract_conf"], fs=synthetic_corpus["fs"]))
    root = tmp_path_factory.mktemp("feats")
    frames = {}
    npy_lines = []
    with kaldiio.WriteHelper(f"ark,scp:{root}/feats.ark,{root}/feats.scp") as writer:
        for line in Path(synthetic_corpus["valid_scp"]).read_text().splitlines():
            utt, path = line.split()
            wav, _ = sf.read(path, dtype="float32")
            feats = extractor(torch.from_numpy(wav))[0][0].numpy()
            writer(utt, feats)
            np.save(root / f"{utt}.npy", feats)
            npy_lines.append(f"{utt} {root / (utt + '.npy')}\n")
            frames[utt] = feats.shape[0]
    (root / "npy.scp").write_text("".join(npy_lines))
    from espnet_hifigan.contract import FeatureContract

    FeatureContract.from_logmel(extractor.get_parameters()).save_feats_conf(root / "feats_conf.yaml")
    return dict(ark=root / "feats.scp", npy=root / "npy.scp", frames=frames)


@pytest.mark.parametrize("kind", ["ark", "npy"])
def test_inference_writes_wavs_of_frames_times_hop(trained, feats_scps, tmp_path, kind):
    out = tmp_path / "decode"
    run(
        "espnet_hifigan.bin.voc_inference",
        "--train_config", trained / "config.yaml",
        "--model_file", trained / "valid.loss_mel_l1.best.pth",
        "--feats_scp", feats_scps[kind],
        "--output_dir", out,
    )
    lines = (out / "wav.scp").read_text().splitlines()
    assert len(lines) == len(feats_scps["frames"])
    for line in lines:
        utt, path = line.split()
        wav, fs = sf.read(path)
        assert fs == 16000
        assert len(wav) == feats_scps["frames"][utt] * 256
        assert np.abs(wav).max() > 0
    timing = json.loads((out / "timing.json").read_text())
    assert timing["num_utts"] == len(lines) and timing["rtf"] > 0 and "cpu" in timing["device"]


def test_inference_rejects_wrong_feature_dims(trained, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{bad}/feats.ark,{bad}/feats.scp") as writer:
        writer("good_utt", np.zeros((10, 80), dtype=np.float32))
        writer("broken_utt", np.zeros((10, 40), dtype=np.float32))
    out = tmp_path / "decode"
    proc = run(
        "espnet_hifigan.bin.voc_inference",
        "--train_config", trained / "config.yaml",
        "--model_file", trained / "1epoch.pth",
        "--feats_scp", bad / "feats.scp",
        "--assume_raw_features", "true",
        "--output_dir", out,
        check=False,
    )
    assert proc.returncode != 0
    assert "broken_utt" in proc.stderr
    assert not (out / "wav.scp").exists()
    assert not (out / "wav").exists()


def test_packed_model_decodes_like_the_experiment(trained, synthetic_corpus, tmp_path):
    packed = tmp_path / "model.zip"
    run("espnet_hifigan.bin.pack", "--train_config", trained / "config.yaml",
        "--model_file", trained / "1epoch.pth", "--outpath", packed)
    outs = {}
    for name, args in {
        "exp": ["--train_config", trained / "config.yaml", "--model_file", trained / "1epoch.pth"],
        "packed": ["--model_file", packed],
    }.items():
        run("espnet_hifigan.bin.voc_inference", *args, "--wav_scp", synthetic_corpus["valid_scp"],
            "--output_dir", tmp_path / name)
        outs[name] = sorted((tmp_path / name / "wav").glob("*.wav"))
    assert [p.name for p in outs["exp"]] == [p.name for p in outs["packed"]]
    for a, b in zip(outs["exp"], outs["packed"]):
        np.testing.assert_array_equal(sf.read(a)[0], sf.read(b)[0])


def test_official_checkpoint_loads_with_same_outputs(tmp_path):
    official_config = {
        "resblock": "1", "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
        "upsample_initial_channel": 512, "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "segment_size": 8192,
        "num_mels": 80, "n_fft": 1024, "hop_size": 256, "win_size": 1024, "sampling_rate": 22050,
        "fmin": 0, "fmax": 8000, "fmax_for_loss": None,
    }
    (tmp_path / "config.json").write_text(json.dumps(official_config))
    torch.manual_seed(0)
    source = HiFiGANGenerator.from_preset("v1").eval()
    # An official g_XXXXXXXX file: {"generator": state_dict} with weight_g / weight_v keys.
    torch.save({"generator": source.state_dict()}, tmp_path / "g_02500000")
    loaded, config = load_official_generator(tmp_path / "g_02500000", tmp_path / "config.json")
    assert config["feats_extract_conf"]["padding"] == "official"
    assert config["feats_extract_conf"]["log_base"] is None
    mel = torch.randn(1, 80, 20)
    with torch.no_grad():
        expected = source(mel)
        torch.testing.assert_close(loaded.eval()(mel), expected, atol=0, rtol=0)
    vocoder = Vocoder.from_official(tmp_path / "g_02500000", tmp_path / "config.json")
    wav = vocoder(mel[0].T.numpy())
    np.testing.assert_allclose(wav, expected.view(-1).numpy(), atol=1e-5)


def test_sigusr1_checkpoints_and_exits_for_resume(synthetic_corpus, tmp_path):
    """Preemption: the signal ends the epoch early, checkpoint.pth is written, exit 99, resume."""
    import signal
    import time

    exp = tmp_path / "preempted"
    cmd = [sys.executable, "-m", "espnet_hifigan.bin.voc_train",
           *map(str, train_args(synthetic_corpus, exp, "--max_epoch", "50", "--num_iters_per_epoch", "1000"))]
    log = tmp_path / "train.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while "1epoch:train:" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        proc.send_signal(signal.SIGUSR1)
        returncode = proc.wait(timeout=300)
    text = log.read_text()
    assert returncode == 99, text[-2000:]
    assert "SIGUSR1 received" in text
    checkpoint = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)
    # the state in the middle of epoch 1: the re-run trains the rest of it instead of starting over
    assert checkpoint["reporter"]["epoch"] == 0
    done = checkpoint["partial_epoch"]["steps_done"]
    assert checkpoint["partial_epoch"]["epoch"] == 1 and done >= 1
    proc = run("espnet_hifigan.bin.voc_train",
               *train_args(synthetic_corpus, exp, "--max_epoch", "1", "--num_iters_per_epoch", done + 1, "--resume", "true"))
    assert f"epoch 1 was preempted after {done} steps" in proc.stdout + proc.stderr


def test_training_refuses_features_with_other_settings(synthetic_corpus, tmp_path):
    """feats.scp dumped with fmax 8000 cannot train a vocoder whose features use fmax 7600."""
    feats_dir = tmp_path / "dump"
    feats_dir.mkdir()
    run("espnet_hifigan.bin.extract_feats", "--wav_scp", synthetic_corpus["train_scp"],
        "--out_ark", feats_dir / "feats.ark", "--out_scp", feats_dir / "feats.scp",
        "--out_utt2num_frames", feats_dir / "utt2num_frames",
        "--write_conf", feats_dir / "feats_conf.yaml", "--train_config", DEBUG_CONFIG,
        "--fs", synthetic_corpus["fs"], "--fmax", "8000")
    exp = tmp_path / "exp"
    proc = run(
        "espnet_hifigan.bin.voc_train",
        *train_args(synthetic_corpus, exp, "--train_data_path_and_name_and_type", f"{feats_dir / 'feats.scp'},feats,kaldi_ark"),
        check=False,
    )
    assert proc.returncode != 0
    assert "fmax" in proc.stderr
    assert not (exp / "checkpoint.pth").exists()
