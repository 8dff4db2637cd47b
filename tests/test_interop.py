"""Checkpoint interop: ESPnet gan_tts / ParallelWaveGAN / official weights in, PWG format out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from espnet2.gan_tts.hifigan.hifigan import HiFiGANGenerator as ESPnetGenerator
from espnet2.layers.global_mvn import GlobalMVN

from espnet_hifigan.bin import convert_checkpoint
from espnet_hifigan.contract import FeatureContract
from espnet_hifigan.contract.foreign import PWG_CONTRACT_KEY
from espnet_hifigan.core.fileio import file_sha256
from espnet_hifigan.formats.espnet_layout import (
    UnsupportedConversion,
    convert_espnet_generator,
    espnet_generator_to_ours,
    generator_conf_to_espnet_params,
    ours_to_espnet_generator,
)
from espnet_hifigan.formats.packing import pack_vocoder
from espnet_hifigan.formats.pwg import export_parallel_wavegan
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
PARITY_ATOL = 1e-5
N_MELS = 80
FRAMES = 23
# Small ESPnet/PWG HiFiGANGenerator arguments for both residual block types.
TINY_PARAMS = {
    "resblock1": dict(channels=32, upsample_scales=[8, 8, 2, 2], upsample_kernel_sizes=[16, 16, 4, 4],
                      resblock_kernel_sizes=[3, 7], resblock_dilations=[[1, 3, 5], [1, 3, 5]], use_additional_convs=True),
    "resblock2": dict(channels=32, upsample_scales=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8],
                      resblock_kernel_sizes=[3, 5], resblock_dilations=[[1, 2], [2, 6]], use_additional_convs=False),
}
TTS_FEATS = dict(fs=16000, n_fft=1024, hop_length=256, win_length=None, n_mels=N_MELS, fmin=80, fmax=7600)


def espnet_generator(name: str, seed: int = 0, init_std: float = 0.05) -> ESPnetGenerator:
    """An ESPnet generator with weights large enough for its output to follow its input."""
    torch.manual_seed(seed)
    gen = ESPnetGenerator(in_channels=N_MELS, **TINY_PARAMS[name])
    with torch.no_grad():
        for p in gen.parameters():
            if p.dim() > 1:
                p.normal_(0.0, init_std)
    return gen.eval()


def espnet_out(gen: torch.nn.Module, mel: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return gen.inference(mel).view(-1).numpy()


@pytest.fixture
def stats_file(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    feats = rng.normal(-4.0, 1.5, size=(400, N_MELS)) + np.linspace(0, 2, N_MELS)
    path = tmp_path / "feats_stats.npz"
    np.savez(path, count=np.array(len(feats)), sum=feats.sum(0), sum_square=(feats**2).sum(0))
    return path


@pytest.fixture
def mel() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(FRAMES, N_MELS) - 4.0


# ------------------------------------------------------------------------------ ESPnet generator
@pytest.mark.parametrize("name", sorted(TINY_PARAMS))
def test_espnet_generator_converts_with_parity(name, mel):
    ref = espnet_generator(name)
    contract = FeatureContract.from_espnet_tts_config(dict(feats_extract="fbank", feats_extract_conf=TTS_FEATS))
    config, state = convert_espnet_generator(ref.state_dict(), dict(TINY_PARAMS[name], in_channels=N_MELS), contract)
    vocoder = Vocoder(config, state)
    assert vocoder.contract == contract
    diff = np.abs(vocoder(mel) - espnet_out(ref, mel)).max()
    assert diff <= PARITY_ATOL


@pytest.mark.parametrize("name", sorted(TINY_PARAMS))
def test_ours_to_espnet_is_the_inverse(name, mel):
    ref = espnet_generator(name)
    resblock = "1" if TINY_PARAMS[name]["use_additional_convs"] else "2"
    ours = espnet_generator_to_ours(ref.state_dict(), resblock)
    back = ours_to_espnet_generator(ours, resblock)
    assert back.keys() == ref.state_dict().keys()
    for key, value in ref.state_dict().items():
        assert torch.equal(back[key], value)
    conf = dict(upsample_initial_channel=32, upsample_rates=TINY_PARAMS[name]["upsample_scales"],
                upsample_kernel_sizes=TINY_PARAMS[name]["upsample_kernel_sizes"], resblock=resblock,
                resblock_kernel_sizes=TINY_PARAMS[name]["resblock_kernel_sizes"],
                resblock_dilation_sizes=TINY_PARAMS[name]["resblock_dilations"])
    params = generator_conf_to_espnet_params(conf, N_MELS)
    rebuilt = ESPnetGenerator(**params).eval()
    rebuilt.load_state_dict(back)
    np.testing.assert_allclose(espnet_out(rebuilt, mel), espnet_out(ref, mel), atol=PARITY_ATOL, rtol=0)


def test_joint_text2wav_vocoder_is_extracted(tmp_path, stats_file, mel):
    """The vocoder of a real (tiny) ESPnet JointText2Wav, as saved by ESPnetGANTTSModel."""
    from espnet2.gan_tts.joint.joint_text2wav import JointText2Wav

    vocoder_params = dict(TINY_PARAMS["resblock2"], out_channels=1)
    text2mel_params = dict(adim=16, aheads=2, elayers=1, eunits=16, dlayers=1, dunits=16, postnet_layers=0,
                           duration_predictor_layers=1, duration_predictor_chans=8, pitch_predictor_layers=1,
                           pitch_predictor_chans=8, energy_predictor_layers=1, energy_predictor_chans=8)
    discriminator_params = dict(
        scales=1, follow_official_norm=False, periods=[2],
        scale_discriminator_params=dict(in_channels=1, out_channels=1, kernel_sizes=[15, 41, 5, 3], channels=8,
                                        max_downsample_channels=16, max_groups=4, bias=True, downsample_scales=[2, 2],
                                        nonlinear_activation="LeakyReLU", nonlinear_activation_params={"negative_slope": 0.1}),
        period_discriminator_params=dict(in_channels=1, out_channels=1, kernel_sizes=[5, 3], channels=4,
                                         downsample_scales=[3, 3], max_downsample_channels=8, bias=True,
                                         nonlinear_activation="LeakyReLU", nonlinear_activation_params={"negative_slope": 0.1},
                                         use_weight_norm=True, use_spectral_norm=False),
    )
    torch.manual_seed(0)
    joint = JointText2Wav(idim=10, odim=N_MELS, text2mel_params=text2mel_params, vocoder_params=vocoder_params,
                          discriminator_params=discriminator_params).eval()
    with torch.no_grad():
        for p in joint.generator["vocoder"].parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.05)
    mvn = GlobalMVN(stats_file)
    state = {f"tts.{k}": v for k, v in joint.state_dict().items()}
    state.update({f"normalize.{k}": v for k, v in mvn.state_dict().items()})
    torch.save(state, tmp_path / "train.total_count.best.pth")
    config = dict(
        tts="joint_text2wav",
        tts_conf=dict(text2mel_type="fastspeech2", text2mel_params=text2mel_params, vocoder_type="hifigan_generator",
                      vocoder_params=vocoder_params),
        feats_extract="fbank",
        feats_extract_conf=TTS_FEATS,
        normalize="global_mvn",
        normalize_conf=dict(stats_file=str(stats_file)),
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    vocoder = Vocoder.from_pretrained(tmp_path / "config.yaml", tmp_path / "train.total_count.best.pth")
    # The joint vocoder consumes normalised mels; ours takes raw ones and normalises them itself.
    normalized = (mel - mvn.mean.float()) / mvn.std.float()
    expected = espnet_out(joint.generator["vocoder"], normalized)
    assert np.abs(vocoder(mel) - expected).max() <= PARITY_ATOL
    assert vocoder.contract == FeatureContract.from_espnet_tts_config(tmp_path / "config.yaml")
    assert vocoder.normalization.sha256 == FeatureContract.from_espnet_tts_config(
        tmp_path / "config.yaml", normalized=True
    ).normalize.sha256
    with pytest.raises(UnsupportedConversion, match="vits"):
        (tmp_path / "vits.yaml").write_text(yaml.safe_dump(dict(config, tts="vits")))
        Vocoder.from_espnet(tmp_path / "train.total_count.best.pth", tmp_path / "vits.yaml")


# ------------------------------------------------------------------------------ ParallelWaveGAN
def write_pwg_dir(root: Path, generator: torch.nn.Module, with_stats: bool = True):
    """A ParallelWaveGAN training output: checkpoint-*.pkl, config.yml, stats.npy."""
    root.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"generator": generator.state_dict(), "discriminator": {}}, "steps": 1000, "epochs": 3},
               root / "checkpoint-1000steps.pkl")
    config = dict(sampling_rate=16000, fft_size=1024, hop_size=256, win_length=None, window="hann", num_mels=N_MELS,
                  fmin=80, fmax=7600, global_gain_scale=1.0, trim_silence=False, format="npy",
                  generator_type="HiFiGANGenerator",
                  generator_params=dict(TINY_PARAMS["resblock1"], in_channels=N_MELS, out_channels=1, kernel_size=7,
                                        bias=True, nonlinear_activation="LeakyReLU",
                                        nonlinear_activation_params={"negative_slope": 0.1}, use_causal_conv=False,
                                        use_weight_norm=True))
    (root / "config.yml").write_text(yaml.safe_dump(config))
    mean = scale = None
    if with_stats:
        rng = np.random.default_rng(0)
        mean, scale = rng.normal(-4, 1, N_MELS).astype(np.float32), rng.uniform(0.5, 2, N_MELS).astype(np.float32)
        np.save(root / "stats.npy", np.stack([mean, scale]))
    return root / "checkpoint-1000steps.pkl", mean, scale


def test_parallel_wavegan_checkpoint_imports_with_parity(tmp_path, mel):
    generator = espnet_generator("resblock1")  # PWG's HiFiGANGenerator has ESPnet's layout and names
    ckpt, mean, scale = write_pwg_dir(tmp_path / "pwg", generator)
    vocoder = Vocoder.from_pretrained(ckpt)
    with torch.no_grad():
        expected = generator.inference((mel - torch.from_numpy(mean)) / torch.from_numpy(scale)).view(-1).numpy()
    assert np.abs(vocoder(mel) - expected).max() <= PARITY_ATOL
    assert vocoder.contract.magnitude_eps == 0.0 and vocoder.contract.log_base == 10.0
    assert vocoder.normalization.stats_file.endswith("stats.npy")


def test_parallel_wavegan_checkpoint_matches_its_own_load_model(tmp_path, mel, parallel_wavegan):
    torch.manual_seed(0)
    generator = parallel_wavegan.models.HiFiGANGenerator(in_channels=N_MELS, **TINY_PARAMS["resblock1"])
    with torch.no_grad():
        for p in generator.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.05)
    ckpt, _, _ = write_pwg_dir(tmp_path / "pwg", generator.eval())
    vocoder = Vocoder.from_pretrained(ckpt)
    config = yaml.safe_load((tmp_path / "pwg/config.yml").read_text())
    pwg = parallel_wavegan.utils.load_model(str(ckpt), config).eval()
    with torch.no_grad():
        pwg_out = pwg.inference(mel, normalize_before=True).view(-1).numpy()
    assert np.abs(vocoder(mel) - pwg_out).max() <= PARITY_ATOL


def test_parallel_wavegan_without_stats_takes_features_as_they_are(tmp_path, mel):
    generator = espnet_generator("resblock1")
    ckpt, _, _ = write_pwg_dir(tmp_path / "pwg", generator, with_stats=False)
    vocoder = Vocoder.from_pretrained(ckpt)
    assert vocoder.normalization is None
    with torch.no_grad():
        expected = generator.inference(mel).view(-1).numpy()
    assert np.abs(vocoder(mel) - expected).max() <= PARITY_ATOL


def _vocoder_with_stats(stats_file: Path) -> Vocoder:
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    config["normalize_conf"] = dict(stats_file=str(stats_file))
    torch.manual_seed(0)
    generator = HiFiGANGenerator(in_channels=N_MELS, **dict(config["generator_conf"], init_std=0.1))
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state.update({f"normalize.{k}": v for k, v in GlobalMVN(stats_file).state_dict().items()})
    return Vocoder(config, state, source="debug")


def test_export_parallel_wavegan_round_trip(tmp_path, stats_file, mel):
    vocoder = _vocoder_with_stats(stats_file)
    paths = export_parallel_wavegan(vocoder, tmp_path / "pwg", steps=7)
    assert paths["checkpoint"].name == "checkpoint-7steps.pkl" and paths["stats"].is_file()
    expected = vocoder(mel)
    # 1. Back into ours: same audio, same full contract.
    again = Vocoder.from_pretrained(paths["checkpoint"])
    assert np.abs(again(mel) - expected).max() <= PARITY_ATOL
    assert again.contract == vocoder.contract
    # 2. What parallel_wavegan.utils.load_model builds: ESPnet's layout, strict load, stats.npy.
    config = yaml.safe_load(paths["config"].read_text())
    assert config["generator_type"] == "HiFiGANGenerator" and config["format"] == "npy"
    assert FeatureContract.from_dict(config[PWG_CONTRACT_KEY]) == vocoder.contract
    params = dict(config["generator_params"])
    assert params.pop("use_causal_conv") is False
    reference = ESPnetGenerator(**params).eval()
    reference.load_state_dict(torch.load(paths["checkpoint"])["model"]["generator"])
    stats = np.load(paths["stats"])
    normalized = (mel - torch.from_numpy(stats[0])) / torch.from_numpy(stats[1])
    assert np.abs(espnet_out(reference, normalized) - expected).max() <= PARITY_ATOL


def test_export_refuses_what_espnet_cannot_express(stats_file):
    vocoder = _vocoder_with_stats(stats_file)
    vocoder.config = dict(vocoder.config, generator_conf=dict(vocoder.config["generator_conf"], post_kernel_size=5))
    with pytest.raises(UnsupportedConversion, match="post_kernel_size"):
        export_parallel_wavegan(vocoder, "/nonexistent/never/written")
    with pytest.raises(UnsupportedConversion, match="multi-band"):
        convert_espnet_generator({}, dict(TINY_PARAMS["resblock1"], out_channels=4), vocoder.contract)


# ------------------------------------------------------------------------------ official, CLI
def test_official_checkpoint_via_from_pretrained(tmp_path, mel):
    official = dict(resblock="2", upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8], upsample_initial_channel=32,
                    resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 2], [2, 6]], segment_size=8192,
                    num_mels=N_MELS, n_fft=1024, hop_size=256, win_size=1024, sampling_rate=22050, fmin=0, fmax=8000,
                    fmax_for_loss=None)
    (tmp_path / "config.json").write_text(json.dumps(official))
    torch.manual_seed(0)
    source = HiFiGANGenerator(in_channels=N_MELS, upsample_initial_channel=32, upsample_rates=[8, 8, 4],
                              upsample_kernel_sizes=[16, 16, 8], resblock="2", resblock_kernel_sizes=[3, 5],
                              resblock_dilation_sizes=[[1, 2], [2, 6]], init_std=0.1).eval()
    torch.save({"generator": source.state_dict()}, tmp_path / "g_00100000")
    vocoder = Vocoder.from_pretrained(tmp_path / "g_00100000")
    with torch.no_grad():
        expected = source(mel.T.unsqueeze(0)).view(-1).numpy()
    assert np.abs(vocoder(mel) - expected).max() <= PARITY_ATOL
    assert (vocoder.contract.padding, vocoder.contract.log_base, vocoder.contract.fmax) == ("official", None, 8000.0)
    # ESPnet tts1 mels cannot feed it: the mismatch names every differing convention.
    tts = FeatureContract.from_espnet_tts_config(dict(feats_extract="fbank", feats_extract_conf=dict(TTS_FEATS, fs=22050)))
    assert {"fmax", "log_base", "padding", "mel_floor"} <= {d.name for d in tts.compare(vocoder.contract)}


def test_convert_checkpoint_cli_packs_a_pwg_model(tmp_path, mel):
    generator = espnet_generator("resblock1")
    ckpt, _, _ = write_pwg_dir(tmp_path / "pwg", generator)
    out = tmp_path / "model.zip"
    assert convert_checkpoint.main(["--input", str(ckpt), "--outpath", str(out)]) == 0
    packed = Vocoder.from_pretrained(out)
    original = Vocoder.from_pretrained(ckpt)
    assert np.abs(packed(mel) - original(mel)).max() <= PARITY_ATOL
    assert FeatureContract.load(out) == original.contract
    assert packed.normalization is not None and packed.normalization.sha256 is not None
    assert convert_checkpoint.main(["--input", str(tmp_path / "missing.pkl"), "--outpath", str(tmp_path / "x.zip")]) == 1
    assert not (tmp_path / "x.zip").exists()


def test_packed_model_records_its_contract_and_stats(tmp_path, stats_file, mel):
    vocoder = _vocoder_with_stats(stats_file)
    state = {f"generator.{k}": v for k, v in vocoder.generator.state_dict().items()}
    state.update({"normalize.mean": vocoder.mean, "normalize.std": vocoder.std})
    config = dict(vocoder.config, generator_conf=dict(vocoder.config["generator_conf"], use_weight_norm=False))
    path = pack_vocoder(config, state, tmp_path / "model.zip", stats_bytes=stats_file.read_bytes())
    packed = Vocoder.from_pretrained(path)
    assert FeatureContract.load(path) == vocoder.contract
    assert packed.normalization.sha256 == file_sha256(stats_file)
    assert np.abs(packed(mel) - vocoder(mel)).max() <= PARITY_ATOL


def test_convert_checkpoint_cli_bare_espnet_generator(tmp_path, stats_file, mel):
    """A bare ESPnet generator state dict trained on normalised mels: the vocoder normalises."""
    ref = espnet_generator("resblock2")
    torch.save(ref.state_dict(), tmp_path / "generator.pth")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dict(TINY_PARAMS["resblock2"], in_channels=N_MELS)))
    tts = dict(tts="tacotron2", feats_extract="fbank", feats_extract_conf=TTS_FEATS, normalize="global_mvn",
               normalize_conf=dict(stats_file=str(stats_file)))
    FeatureContract.from_espnet_tts_config(tts, normalized=True).save(tmp_path / "contract.yaml")
    out = tmp_path / "model.zip"
    assert convert_checkpoint.main([
        "--input", str(tmp_path / "generator.pth"), "--type", "espnet_generator",
        "--generator_params", str(tmp_path / "params.yaml"), "--feats_contract", str(tmp_path / "contract.yaml"),
        "--outpath", str(out),
    ]) == 0
    vocoder = Vocoder.from_pretrained(out)
    mvn = GlobalMVN(stats_file)
    expected = espnet_out(ref, (mel - mvn.mean.float()) / mvn.std.float())
    assert np.abs(vocoder(mel) - expected).max() <= PARITY_ATOL
    assert vocoder.contract.normalize is None  # takes raw mels


# ------------------------------------------------------------------------------ official checkpoint
OFFICIAL_V3 = REPO_ROOT.parent / "shared" / "data" / "official_v3"
# Tolerances against the official code's own fp32 CPU output and mel (float32 round-off only:
# measured max 9.4e-4 in a bin near the 1e-5 mel floor, where the log amplifies it; mean 1.0e-6).
OFFICIAL_WAV_ATOL = 1e-4
OFFICIAL_MEL_MAX_ATOL = 2e-3
OFFICIAL_MEL_MEAN_ATOL = 1e-5


@pytest.fixture
def official_v3() -> Path:
    """A V3 checkpoint written by the official jik876 code, with its mel and output."""
    if not (OFFICIAL_V3 / "g_00000000").is_file():
        pytest.skip(f"{OFFICIAL_V3} is absent (it is only in the developers' shared data)")
    return OFFICIAL_V3


def test_official_v3_checkpoint_reproduces_the_official_output(official_v3):
    vocoder = Vocoder.from_pretrained(official_v3 / "g_00000000")
    mel = np.load(official_v3 / "mel.npy")
    ref = np.load(official_v3 / "ref.npy")
    wav = vocoder(mel)
    assert wav.shape == ref.shape
    assert np.abs(wav - ref).max() <= OFFICIAL_WAV_ATOL


def test_official_v3_mel_of_the_wav_matches_the_official_mel(official_v3):
    import soundfile as sf

    vocoder = Vocoder.from_pretrained(official_v3 / "g_00000000")
    wav, fs = sf.read(official_v3.parent / "ljspeech_mini" / "wavs" / "LJ001-0001.wav", dtype="float32")
    assert fs == vocoder.fs
    ours = vocoder.features(wav)
    expected = np.load(official_v3 / "mel.npy")
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= OFFICIAL_MEL_MAX_ATOL
    assert np.abs(ours - expected).mean() <= OFFICIAL_MEL_MEAN_ATOL
