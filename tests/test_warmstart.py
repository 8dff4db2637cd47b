"""Warm start from published checkpoints (issue 21): ``convert_checkpoint --for_training`` writes a
training config + ``model.pth`` whose generator AND discriminators reproduce the source
implementation's outputs, and ``voc_train --init_param`` starts from them.

References are never our own code: the ParallelWaveGAN fixture's outputs were written by
``parallel_wavegan`` itself; the official discriminators are recomputed here from the official
formulation with ``torch.nn.functional`` on the raw ``do_`` tensors; ESPnet's are its own modules.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from cli_calls import call
from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

from espnet_hifigan.bin import convert_checkpoint
from espnet_hifigan.bin.check_config import check_config
from espnet_hifigan.train.task import VocoderTask

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "data"
PWG_SMALL = SHARED / "warmstart" / "pwg_hifigan_small"
OFFICIAL_DO_MANIFEST = SHARED / "warmstart" / "official_do_manifest.json"
OFFICIAL_V3 = SHARED / "official_v3"
LJSPEECH_MINI = SHARED / "ljspeech_mini"
EPS32 = float(np.finfo(np.float32).eps)
# Layers of the deepest sub-discriminator (official MSD: 7 convs + conv_post).
DISC_DEPTH = 8
# Convolutions on the deepest generator path (conv_pre, per upsampling stage the transposed conv
# and two convs per resblock layer, conv_post): an upper bound for the V1-V3 layouts and PWG's.
GEN_DEPTH = 40


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (it is only in the developers' shared data)")
    return path


def fp32_atol(ref: np.ndarray, n_terms: int, depth: int) -> float:
    """Round-off bound of an fp32 network output: ``depth`` layers of sums over ``n_terms``
    products, each off by ~sqrt(n_terms) ulp of the layer's scale (x4 margin)."""
    return 4.0 * depth * math.sqrt(n_terms) * EPS32 * max(float(np.abs(ref).max()), 1e-3)


def max_fan_in(state: Dict[str, torch.Tensor]) -> int:
    """The longest sum of products of any conv in a state dict (in_channels / groups x kernel)."""
    fans = [math.prod(v.shape[1:]) for k, v in state.items() if k.endswith(("weight", "weight_v", "weight_orig")) and v.dim() > 1]
    return max(fans)


def convert(tmp_path: Path, *args) -> Path:
    outdir = tmp_path / "pretrained"
    rc = convert_checkpoint.main([*map(str, args), "--for_training", "--outdir", str(outdir)])
    assert rc == 0
    for name in ("config.yaml", "model.pth", "feature_contract.yaml"):
        assert (outdir / name).is_file(), name
    return outdir


def built_model(outdir: Path) -> torch.nn.Module:
    """The model ``voc_train --config DIR/config.yaml --init_param DIR/model.pth`` starts from
    (the config parsed as voc_train parses it, ESPnet's own --init_param loader)."""
    args = check_config(["--config", str(outdir / "config.yaml")])
    model = VocoderTask.build_model(args)
    load_pretrained_model(init_param=str(outdir / "model.pth"), model=model, ignore_init_mismatch=False, map_location="cpu")
    return model.eval()


def assert_layers_match(ours: Sequence[Sequence[torch.Tensor]], refs: Sequence[Sequence[np.ndarray]], n_terms: int) -> None:
    """Every sub-discriminator's feature maps and final output (flattened score maps compared by value)."""
    assert len(ours) == len(refs)
    for i, (outs, ref_outs) in enumerate(zip(ours, refs)):
        assert len(outs) == len(ref_outs), f"sub-discriminator {i}: {len(outs)} layers vs {len(ref_outs)}"
        for j, (out, ref) in enumerate(zip(outs, ref_outs)):
            got = out.detach().numpy()
            assert got.size == ref.size, f"d{i} layer {j}: {got.shape} vs {ref.shape}"
            err = np.abs(got.reshape(ref.shape) - ref).max()
            assert err <= fp32_atol(ref, n_terms, DISC_DEPTH), f"d{i} layer {j}: max error {err}"


# ------------------------------------------------------------------------------ ParallelWaveGAN
@pytest.fixture(scope="module")
def pwg_converted(tmp_path_factory) -> Path:
    _need(PWG_SMALL / "checkpoint-1steps.pkl")
    return convert(tmp_path_factory.mktemp("pwg"), "--input", PWG_SMALL / "checkpoint-1steps.pkl")


@pytest.fixture(scope="module")
def pwg_model(pwg_converted) -> torch.nn.Module:
    return built_model(pwg_converted)


def test_pwg_discriminators_reproduce_parallel_wavegan(pwg_model):
    model = pwg_model
    x = torch.from_numpy(np.load(PWG_SMALL / "disc_in.npy")).float().view(1, 1, -1)
    ref = np.load(PWG_SMALL / "disc_ref.npz")
    with torch.no_grad():
        ours = model.discriminator(x)
    # PWG: 3 scales then periods 2, 3, 5, 7, 11; ours: periods then scales.
    n_sub = len(ours)
    refs = [[ref[f"d{i}_{j}"] for j in range(len(ours[(i + 5) % n_sub]))] for i in range(n_sub)]
    state = {k: v for k, v in model.discriminator.state_dict().items()}
    assert_layers_match(ours[5:] + ours[:5], refs, max_fan_in(state))


def test_pwg_generator_reproduces_parallel_wavegan(pwg_model):
    model = pwg_model
    mel = torch.from_numpy(np.load(PWG_SMALL / "mel.npy")).float()  # raw log10 mel; PWG normalised it itself
    ref = np.load(PWG_SMALL / "ref.npy").reshape(-1)
    with torch.no_grad():
        wav = model.inference(mel)["wav"].view(-1).numpy()
    assert wav.shape == ref.shape
    gen_state = model.generator.state_dict()
    assert np.abs(wav - ref).max() <= fp32_atol(ref, max_fan_in(gen_state), GEN_DEPTH)


def test_pwg_config_carries_the_source_settings(pwg_converted, pwg_model):
    config = yaml.safe_load((pwg_converted / "config.yaml").read_text())
    pwg = yaml.safe_load((PWG_SMALL / "config.yml").read_text())
    feats = config["feats_extract_conf"]
    assert (feats["fs"], feats["n_fft"], feats["hop_length"], feats["fmin"], feats["fmax"], feats["log_base"]) == (
        pwg["sampling_rate"], pwg["fft_size"], pwg["hop_size"], pwg["fmin"], pwg["fmax"], 10.0)
    assert config["model_conf"]["lambda_mel"] == pwg["lambda_aux"]
    assert config["model_conf"]["segment_size"] == pwg["batch_max_steps"]
    assert config["optim"] == "adam" and config["optim_conf"]["betas"] == pwg["generator_optimizer_params"]["betas"]
    assert config["normalize_conf"]["stats_file"] == str(pwg_converted / "feats_stats.npz")
    stats = np.load(PWG_SMALL / "stats.npy")
    model = pwg_model
    np.testing.assert_allclose(model.normalize.mean.numpy(), stats[0], rtol=1e-6)
    np.testing.assert_allclose(model.normalize.std.numpy(), stats[1], rtol=1e-5)
    text = (pwg_converted / "config.yaml").read_text()
    assert "# discriminator_conf: config.yml discriminator_params" in text and "NOT carried" in text


# ------------------------------------------------------------------------------ official
def _official_reference(mpd: Dict[str, torch.Tensor], msd: Dict[str, torch.Tensor], x: torch.Tensor) -> List[List[np.ndarray]]:
    """The official discriminators' forward (jik876 models.py) on the raw ``do_`` tensors:
    weight norm g * v / ||v||, spectral norm W / (u . W v) with the stored u, v (eval),
    leaky ReLU 0.1 after every conv but conv_post; periods 2, 3, 5, 7, 11 then 3 scales."""

    def weight(sd: Dict[str, torch.Tensor], p: str) -> torch.Tensor:
        if p + "weight_g" in sd:
            v = sd[p + "weight_v"]
            return sd[p + "weight_g"] * v / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
        w = sd[p + "weight_orig"]
        return w / torch.dot(sd[p + "weight_u"], w.flatten(1) @ sd[p + "weight_v"])

    outs = []
    for i, period in enumerate((2, 3, 5, 7, 11)):
        y = x
        if y.size(-1) % period:
            y = F.pad(y, (0, period - y.size(-1) % period), "reflect")
        y = y.view(1, 1, -1, period)
        fmap = []
        for c in range(5):
            p = f"discriminators.{i}.convs.{c}."
            y = F.leaky_relu(F.conv2d(y, weight(mpd, p), mpd[p + "bias"], stride=(3 if c < 4 else 1, 1), padding=(2, 0)), 0.1)
            fmap.append(y.numpy())
        p = f"discriminators.{i}.conv_post."
        fmap.append(F.conv2d(y, weight(mpd, p), mpd[p + "bias"], padding=(1, 0)).numpy())
        outs.append(fmap)
    spec = [(15, 1, 1, 7), (41, 2, 4, 20), (41, 2, 16, 20), (41, 4, 16, 20), (41, 4, 16, 20), (41, 1, 16, 20), (5, 1, 1, 2)]
    y = x
    for i in range(3):
        if i > 0:
            y = F.avg_pool1d(y, 4, 2, padding=2)
        z, fmap = y, []
        for c, (_, stride, groups, pad) in enumerate(spec):
            p = f"discriminators.{i}.convs.{c}."
            z = F.leaky_relu(F.conv1d(z, weight(msd, p), msd[p + "bias"], stride=stride, padding=pad, groups=groups), 0.1)
            fmap.append(z.numpy())
        p = f"discriminators.{i}.conv_post."
        fmap.append(F.conv1d(z, weight(msd, p), msd[p + "bias"], padding=1).numpy())
        outs.append(fmap)
    return outs


def _official_do(manifest: dict, seed: int = 0) -> dict:
    """An official-layout ``do_`` with random values of the manifest's keys and shapes."""
    gen = torch.Generator().manual_seed(seed)
    nets = {}
    for net in ("mpd", "msd"):
        sd = {}
        for key, shape in manifest[net].items():
            sd[key] = torch.randn(shape, generator=gen) * (0.1 if key.endswith("bias") else 1.0)
            if key.endswith("weight_g"):
                sd[key] = 1.0 + 0.5 * torch.rand(shape, generator=gen)
        for key in [k for k in sd if k.endswith("weight_orig")]:  # u, v as power iteration leaves them
            p = key[: -len("weight_orig")]
            w = sd[key].flatten(1)
            u = F.normalize(torch.randn(w.size(0), generator=gen), dim=0)
            sd[p + "weight_v"] = F.normalize(w.t() @ u, dim=0)
            sd[p + "weight_u"] = F.normalize(w @ sd[p + "weight_v"], dim=0)
        nets[net] = sd
    optim = {
        name: {"state": {}, "param_groups": [dict(g, params=list(range(g.pop("n_params", 0)))) for g in json.loads(json.dumps(manifest[name]["param_groups"]))]}
        for name in ("optim_d", "optim_g")
    }
    return dict(nets, **optim, steps=manifest["steps"], epoch=manifest["epoch"])


@pytest.fixture(scope="module")
def official_pair(tmp_path_factory):
    manifest = json.loads(_need(OFFICIAL_DO_MANIFEST).read_text())
    _need(OFFICIAL_V3 / "g_00000000")
    root = tmp_path_factory.mktemp("official")
    do = _official_do(manifest)
    torch.save(do, root / "do_00000001")
    outdir = convert(root, "--input", OFFICIAL_V3 / "g_00000000", "--discriminator", root / "do_00000001")
    (root / "do_00000001").unlink()  # 280 MB
    return outdir, do, built_model(outdir)


def test_official_discriminators_reproduce_the_official_formulation(official_pair):
    outdir, do, model = official_pair
    x = torch.from_numpy(np.load(PWG_SMALL / "disc_in.npy")[:4096] if PWG_SMALL.is_dir() else np.random.default_rng(0).uniform(-0.5, 0.5, 4096)).float().view(1, 1, -1)
    with torch.no_grad():
        ours = model.discriminator(x)
        refs = _official_reference(do["mpd"], do["msd"], x)
    assert_layers_match(ours, refs, max_fan_in({**do["mpd"], **do["msd"]}))


def test_official_generator_and_settings(official_pair):
    outdir, do, model = official_pair
    mel = torch.from_numpy(np.load(OFFICIAL_V3 / "mel.npy")).float()
    ref = np.load(OFFICIAL_V3 / "ref.npy").reshape(-1)
    with torch.no_grad():
        wav = model.inference(mel)["wav"].view(-1).numpy()
    assert wav.shape == ref.shape
    assert np.abs(wav - ref).max() <= fp32_atol(ref, max_fan_in(model.generator.state_dict()), GEN_DEPTH)
    config = yaml.safe_load((outdir / "config.yaml").read_text())
    official = json.loads((OFFICIAL_V3 / "config.json").read_text())
    assert config["normalize"] is None and config["feats_extract_conf"]["padding"] == "official"
    assert config["optim_conf"]["lr"] == do["optim_g"]["param_groups"][0]["lr"]
    assert config["optim2_conf"]["betas"] == do["optim_d"]["param_groups"][0]["betas"]
    assert config["batch_size"] == official["batch_size"]
    assert config["model_conf"]["segment_size"] == official["segment_size"]


# ------------------------------------------------------------------------------ ESPnet joint_text2wav
N_MELS = 80
TTS_FEATS = dict(fs=22050, n_fft=1024, hop_length=256, win_length=None, n_mels=N_MELS, fmin=80, fmax=7600)
VOCODER_PARAMS = dict(channels=32, upsample_scales=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8], resblock_kernel_sizes=[3, 5],
                      resblock_dilations=[[1, 2], [2, 6]], use_additional_convs=False, out_channels=1)
TEXT2MEL_PARAMS = dict(adim=16, aheads=2, elayers=1, eunits=16, dlayers=1, dunits=16, postnet_layers=0,
                       duration_predictor_layers=1, duration_predictor_chans=8, pitch_predictor_layers=1,
                       pitch_predictor_chans=8, energy_predictor_layers=1, energy_predictor_chans=8)
_LRELU = dict(nonlinear_activation="LeakyReLU", nonlinear_activation_params={"negative_slope": 0.1})
DISCRIMINATOR_PARAMS = dict(
    scales=2, follow_official_norm=True, periods=[2, 3],
    scale_discriminator_params=dict(in_channels=1, out_channels=1, kernel_sizes=[15, 41, 5, 3], channels=8,
                                    max_downsample_channels=16, max_groups=4, bias=True, downsample_scales=[2, 2], **_LRELU),
    period_discriminator_params=dict(in_channels=1, out_channels=1, kernel_sizes=[5, 3], channels=4, downsample_scales=[3, 3, 1],
                                     max_downsample_channels=8, bias=True, use_weight_norm=True, use_spectral_norm=False, **_LRELU),
)


def write_joint_text2wav(root: Path, discriminator_params: dict, feats_conf: dict = TTS_FEATS) -> torch.nn.Module:
    """A tiny ESPnet joint_text2wav experiment (config.yaml + model .pth as ESPnetGANTTSModel saves it)."""
    from espnet2.gan_tts.joint.joint_text2wav import JointText2Wav
    from espnet2.layers.global_mvn import GlobalMVN

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    feats = rng.normal(-4.0, 1.5, size=(400, N_MELS)) + np.linspace(0, 2, N_MELS)
    np.savez(root / "feats_stats.npz", count=np.array(len(feats)), sum=feats.sum(0), sum_square=(feats**2).sum(0))
    torch.manual_seed(0)
    joint = JointText2Wav(idim=10, odim=N_MELS, segment_size=16, text2mel_params=TEXT2MEL_PARAMS, vocoder_params=VOCODER_PARAMS,
                          discriminator_params=discriminator_params).eval()
    with torch.no_grad():
        for p in joint.generator["vocoder"].parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.05)
    state = {f"tts.{k}": v for k, v in joint.state_dict().items()}
    state.update({f"normalize.{k}": v for k, v in GlobalMVN(root / "feats_stats.npz").state_dict().items()})
    torch.save(state, root / "train.total_count.best.pth")
    config = dict(
        tts="joint_text2wav",
        tts_conf=dict(text2mel_type="fastspeech2", text2mel_params=TEXT2MEL_PARAMS, vocoder_type="hifigan_generator",
                      vocoder_params=VOCODER_PARAMS, discriminator_params=discriminator_params, segment_size=16,
                      lambda_mel=40.0),
        feats_extract="fbank", feats_extract_conf=feats_conf,
        normalize="global_mvn", normalize_conf=dict(stats_file=str(root / "feats_stats.npz")),
        optim="adamw", optim_conf=dict(lr=2.0e-4, betas=[0.8, 0.99], eps=1.0e-9, weight_decay=0.0),
    )
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return joint


def test_espnet_joint_text2wav_discriminator_and_vocoder(tmp_path):
    from espnet2.layers.global_mvn import GlobalMVN

    joint = write_joint_text2wav(tmp_path / "exp", DISCRIMINATOR_PARAMS)
    outdir = convert(tmp_path, "--input", tmp_path / "exp" / "train.total_count.best.pth")
    model = built_model(outdir)
    torch.manual_seed(3)
    x = 0.3 * torch.randn(1, 1, 2000)
    with torch.no_grad():
        ours = model.discriminator(x)
        ref = joint.discriminator(x)  # ESPnet: scales then periods
    n_scales = DISCRIMINATOR_PARAMS["scales"]
    refs = [[t.numpy() for t in outs] for outs in ref[n_scales:] + ref[:n_scales]]
    assert_layers_match(ours, refs, max_fan_in(joint.discriminator.state_dict()))
    assert model.discriminator.msd.discriminators[0].conv_post.weight_orig is not None  # spectral norm carried
    mel = torch.randn(20, N_MELS) - 4.0
    mvn = GlobalMVN(tmp_path / "exp" / "feats_stats.npz")
    with torch.no_grad():
        expected = joint.generator["vocoder"].inference((mel - mvn.mean.float()) / mvn.std.float()).view(-1).numpy()
        wav = model.inference(mel)["wav"].view(-1).numpy()
    assert np.abs(wav - expected).max() <= fp32_atol(expected, max_fan_in(model.generator.state_dict()), GEN_DEPTH)
    config = yaml.safe_load((outdir / "config.yaml").read_text())
    assert config["model_conf"]["segment_size"] == 16 * 256 and config["model_conf"]["lambda_mel"] == 40.0
    assert config["optim_conf"]["eps"] == 1.0e-9


# ------------------------------------------------------------------------------ refusals
def _pwg_copy(root: Path, edit_config=None, edit_blob=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((PWG_SMALL / "config.yml").read_text())
    blob = torch.load(PWG_SMALL / "checkpoint-1steps.pkl", map_location="cpu", weights_only=True)
    if edit_config:
        edit_config(config)
    if edit_blob:
        edit_blob(blob)
    (root / "config.yml").write_text(yaml.safe_dump(config))
    (root / "stats.npy").write_bytes((PWG_SMALL / "stats.npy").read_bytes())
    torch.save(blob, root / "checkpoint-1steps.pkl")
    return root / "checkpoint-1steps.pkl"


@pytest.mark.parametrize("case, expected", [
    ("no_discriminator", "no ['model']['discriminator'] entry"),
    ("strides", "downsample_scales=[2, 3, 3, 3, 1]"),
    ("bias", "bias=false"),
    ("type", "discriminator_type MelGANMultiScaleDiscriminator"),
])
def test_unmappable_discriminators_are_refused(case, expected, tmp_path, caplog, capsys):
    _need(PWG_SMALL / "checkpoint-1steps.pkl")

    def edit_config(c):
        if case == "strides":
            c["discriminator_params"]["period_discriminator_params"]["downsample_scales"] = [2, 3, 3, 3, 1]
        elif case == "bias":
            c["discriminator_params"]["scale_discriminator_params"]["bias"] = False
        elif case == "type":
            c["discriminator_type"] = "MelGANMultiScaleDiscriminator"

    def edit_blob(b):
        if case == "no_discriminator":
            del b["model"]["discriminator"]

    checkpoint = _pwg_copy(tmp_path / "src", edit_config, edit_blob)
    outdir = tmp_path / "pretrained"
    rc, log = call(convert_checkpoint.main, ["--input", checkpoint, "--for_training", "--outdir", outdir], caplog, capsys)
    assert rc == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and expected in errors[0] and str(checkpoint) in errors[0], errors
    assert not outdir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # nothing half-written beside it


def test_official_generator_without_its_discriminator_is_refused(tmp_path, caplog, capsys):
    _need(OFFICIAL_V3 / "g_00000000")
    rc, log = call(convert_checkpoint.main, ["--input", OFFICIAL_V3 / "g_00000000", "--for_training", "--outdir", tmp_path / "out"],
                   caplog, capsys)
    assert rc == 1 and "--discriminator do_XXXXXXXX" in log
    assert not (tmp_path / "out").exists()


def test_outdir_holding_the_source_is_refused(tmp_path, caplog, capsys):
    _need(PWG_SMALL / "checkpoint-1steps.pkl")
    checkpoint = _pwg_copy(tmp_path / "src")
    rc, log = call(convert_checkpoint.main, ["--input", checkpoint, "--for_training", "--outdir", tmp_path / "src"], caplog, capsys)
    assert rc == 1 and "--outdir" in log
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["checkpoint-1steps.pkl", "config.yml", "stats.npy"]


# ------------------------------------------------------------------------------ voc_train starts from it
def test_voc_train_starts_from_the_converted_model(pwg_converted, pwg_model, tmp_path):
    """voc_train --config DIR/config.yaml --init_param DIR/model.pth trains (a step on LJSpeech
    audio); with the learning rates at 0 every trained parameter stays what model.pth holds, so
    both networks were loaded."""
    wavs = sorted((_need(LJSPEECH_MINI) / "wavs").glob("*.wav"))[:4]
    (tmp_path / "train.scp").write_text("".join(f"{p.stem} {p}\n" for p in wavs[:3]))
    (tmp_path / "valid.scp").write_text(f"{wavs[3].stem} {wavs[3]}\n")
    exp = tmp_path / "exp"
    cmd = [
        sys.executable, "-m", "espnet_hifigan.bin.voc_train", "--config", pwg_converted / "config.yaml",
        "--init_param", pwg_converted / "model.pth",
        "--train_data_path_and_name_and_type", f"{tmp_path / 'train.scp'},speech,sound",
        "--valid_data_path_and_name_and_type", f"{tmp_path / 'valid.scp'},speech,sound",
        "--train_shape_file", tmp_path / "train.scp", "--valid_shape_file", tmp_path / "valid.scp",
        "--output_dir", exp, "--ngpu", "0", "--num_workers", "0", "--batch_size", "1", "--num_att_plot", "0",
        "--num_iters_per_epoch", "1", "--max_epoch", "1", "--model_conf", "segment_size=2048",
        "--model_conf", "validate_full_utterances=false",
        "--optim_conf", "lr=0.0", "--optim2_conf", "lr=0.0", "--optim_conf", "fused=false", "--optim2_conf", "fused=false",
    ]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = torch.load(exp / "1epoch.pth", map_location="cpu", weights_only=True)
    start = torch.load(pwg_converted / "model.pth", map_location="cpu", weights_only=True)
    params = {k for k, _ in pwg_model.named_parameters()}
    assert any(k.startswith("discriminator.") for k in params) and any(k.startswith("generator.") for k in params)
    for key in params:
        assert torch.equal(trained[key], start[key]), key


# ------------------------------------------------------------------------------ the recipe's options
def test_pretrained_opts_prints_the_features_and_refuses_conflicts(pwg_converted, tmp_path, caplog, capsys):
    from espnet_hifigan.bin import pretrained_opts

    rc, out = call(pretrained_opts.main, ["--pretrained", pwg_converted, "--given", "fs=22050", "--given", "win_length="],
                   caplog, capsys)
    assert rc == 0
    assert "fs=22050\nn_fft=1024\nn_shift=256\nwin_length=1024\nn_mels=80\nfmin=80\nfmax=7600" in out
    rc, out = call(pretrained_opts.main, ["--pretrained", pwg_converted, "--given", "fmax=8000"], caplog, capsys)
    assert rc == 1 and "fmax" in out and "recipe options" in out and "7600" in out and "8000" in out
    tts_config = REPO_ROOT / "tests" / "data" / "tts_tacotron2_tiny.yaml"  # 16 kHz
    rc, out = call(pretrained_opts.main, ["--pretrained", pwg_converted, "--tts_config", tts_config], caplog, capsys)
    assert rc == 1 and "fs" in out and "16000" in out and "22050" in out
    # --write_config: the pretrained model's sections, the training sections of another config.
    debug = REPO_ROOT / "conf" / "hifigan_debug.yaml"
    rc, _ = call(pretrained_opts.main, ["--pretrained", pwg_converted, "--train_config", debug, "--write_config",
                                        tmp_path / "train.yaml"], caplog, capsys)
    assert rc == 0
    merged = yaml.safe_load((tmp_path / "train.yaml").read_text())
    converted = yaml.safe_load((pwg_converted / "config.yaml").read_text())
    training = yaml.safe_load(debug.read_text())
    for key in ("feats_extract_conf", "normalize_conf", "generator_conf", "discriminator_conf"):
        assert merged[key] == converted[key], key
    assert merged["max_epoch"] == training["max_epoch"] and merged["optim_conf"] == training["optim_conf"]
    assert merged["model_conf"]["segment_size"] == training["model_conf"]["segment_size"]
    assert merged["model_conf"]["lambda_mel"] == converted["model_conf"]["lambda_mel"]
