"""ONNX / TorchScript export: parity with the PyTorch vocoder, onnxruntime without torch, the CLIs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_hifigan.bin import export as export_cli
from espnet_hifigan.bin import voc_inference
from espnet_hifigan.contract import ContractMismatch, FeatureContract
from espnet_hifigan.core.scp import write_scp
from espnet_hifigan.export.exporters import DEFAULT_FORMATS, FILE_NAMES, export_vocoder
from espnet_hifigan.export.onnx_vocoder import (
    CONTRACT_SIDECAR,
    EXPORT_FILE,
    OnnxVocoder,
)
from espnet_hifigan.formats.packing import pack_loaded_vocoder
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
N_MELS = 80
PARITY_ATOL = 1e-4
LENGTHS = (1, 23, 100)  # frames; the export traced 37
# A tiny resblock-1 generator (the debug config has resblock 2).
RESBLOCK1_CONF = dict(
    upsample_initial_channel=16, upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8], resblock="1",
    resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
)


def _vocoder(stats_dir: Path, generator_conf: Dict, normalize: bool) -> Vocoder:
    """A debug-feature vocoder with random (non-trivial) weights, with or without GlobalMVN stats."""
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    config["generator_conf"] = dict(generator_conf, init_std=0.1)
    state = {}
    if normalize:
        rng = np.random.default_rng(0)
        feats = rng.normal(-4.0, 1.5, size=(400, N_MELS)) + np.linspace(0, 2, N_MELS)
        stats_file = stats_dir / "feats_stats.npz"
        np.savez(stats_file, count=np.array(len(feats)), sum=feats.sum(0), sum_square=(feats**2).sum(0))
        config["normalize_conf"] = dict(stats_file=str(stats_file))
        state["normalize.mean"] = torch.from_numpy(feats.mean(0)).float()
        state["normalize.std"] = torch.from_numpy(feats.std(0)).float()
    else:
        config["normalize"] = None
        config.pop("normalize_conf")
    torch.manual_seed(0)
    generator = HiFiGANGenerator(in_channels=N_MELS, **config["generator_conf"])
    state.update({f"generator.{k}": v for k, v in generator.state_dict().items()})
    return Vocoder(config, state, source="test")


@pytest.fixture(scope="module", params=["resblock2_mvn", "resblock1_raw"])
def exported(request, tmp_path_factory) -> Dict:
    """A vocoder (debug config + GlobalMVN, or resblock 1 without normalisation) exported to both formats."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "resblock2_mvn":
        vocoder = _vocoder(root, yaml.safe_load(DEBUG_CONFIG.read_text())["generator_conf"], normalize=True)
        assert vocoder.mean is not None and vocoder.std is not None
    else:
        vocoder = _vocoder(root, RESBLOCK1_CONF, normalize=False)
        assert vocoder.mean is None
    paths = export_vocoder(vocoder, root / "export")
    return dict(vocoder=vocoder, paths=paths, dir=root / "export")


def _real_mel(vocoder: Vocoder, synthetic_corpus: Dict) -> np.ndarray:
    path = synthetic_corpus["train_scp"].read_text().split()[1]
    wav, fs = sf.read(path, dtype="float32")
    assert fs == vocoder.fs
    return vocoder.features(wav)


def _mels(vocoder: Vocoder, synthetic_corpus: Dict) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    mels = {f"random_{n}": (rng.standard_normal((n, N_MELS)) * 1.5 - 4.0).astype(np.float32) for n in LENGTHS}
    mels["real"] = _real_mel(vocoder, synthetic_corpus)
    return mels


# ------------------------------------------------------------------------------ parity
def test_onnx_matches_pytorch(exported, synthetic_corpus):
    vocoder = exported["vocoder"]
    onnx = OnnxVocoder(exported["dir"])
    assert (onnx.fs, onnx.hop_length, onnx.n_mels) == (vocoder.fs, vocoder.hop_length, vocoder.n_mels)
    for name, mel in _mels(vocoder, synthetic_corpus).items():
        expected = vocoder(mel)
        assert np.abs(expected).max() > 1e-3, "degenerate reference: parity would prove nothing"
        got = onnx(mel)
        assert got.shape == expected.shape == (len(mel) * vocoder.hop_length,), name
        assert np.abs(got - expected).max() <= PARITY_ATOL, name
        assert np.abs(onnx(mel[None]) - expected).max() <= PARITY_ATOL, f"{name} (1, frames, n_mels)"
    # The batch axis is dynamic too.
    mels = np.stack([mel for name, mel in _mels(vocoder, synthetic_corpus).items() if name == "random_23"] * 2)
    assert np.abs(onnx.run(mels) - vocoder(mels[0])[None]).max() <= PARITY_ATOL


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_matches_pytorch(exported, synthetic_corpus):
    vocoder = exported["vocoder"]
    module = torch.jit.load(str(exported["paths"]["torchscript"]))
    for name, mel in _mels(vocoder, synthetic_corpus).items():
        expected = vocoder(mel)
        with torch.no_grad():
            got = module(torch.from_numpy(mel)[None])[0].numpy()
        assert got.shape == expected.shape, name
        assert np.abs(got - expected).max() <= PARITY_ATOL, name


def test_sidecars_describe_the_features(exported):
    vocoder = exported["vocoder"]
    assert FeatureContract.load(exported["dir"] / CONTRACT_SIDECAR) == vocoder.contract
    manifest = yaml.safe_load((exported["dir"] / EXPORT_FILE).read_text())
    assert (manifest["fs"], manifest["hop_length"], manifest["n_mels"]) == (vocoder.fs, vocoder.hop_length, N_MELS)
    written = {fmt: FILE_NAMES[fmt] for fmt in DEFAULT_FORMATS}  # the default export (onnx_stream is asked for)
    assert manifest["files"] == written
    assert sorted(p.name for p in exported["dir"].iterdir()) == sorted([*written.values(), CONTRACT_SIDECAR, EXPORT_FILE])


def test_onnx_vocoder_checks_the_contract(exported):
    onnx = OnnxVocoder(exported["dir"] / FILE_NAMES["onnx"])
    mel = np.zeros((5, N_MELS), np.float32)
    assert onnx(mel, contract=onnx.contract).shape == (5 * onnx.hop_length,)
    other = FeatureContract.from_dict(dict(onnx.contract.to_dict(), fs=22050))
    with pytest.raises(ContractMismatch, match="fs"):
        onnx(mel, contract=other)
    with pytest.raises(ValueError, match=r"\(frames, 80\)"):
        onnx(np.zeros((5, 40), np.float32))
    with pytest.raises(FileNotFoundError, match="not an exported vocoder"):
        OnnxVocoder(exported["dir"].parent)


def test_onnx_vocoder_needs_neither_torch_nor_espnet(exported, tmp_path):
    vocoder = exported["vocoder"]
    mel = (np.random.default_rng(5).standard_normal((31, N_MELS)) - 4.0).astype(np.float32)
    np.save(tmp_path / "mel.npy", mel)
    code = (
        "import sys, numpy as np\n"
        "from espnet_hifigan import OnnxVocoder\n"
        f"v = OnnxVocoder({str(exported['dir'])!r})\n"
        f"wav = v(np.load({str(tmp_path / 'mel.npy')!r}), contract=v.contract)\n"
        f"np.save({str(tmp_path / 'wav.npy')!r}, wav)\n"
        "loaded = sorted(m for m in ('torch', 'espnet2', 'espnet', 'torchaudio') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert np.abs(np.load(tmp_path / "wav.npy") - vocoder(mel)).max() <= PARITY_ATOL


def test_saved_contract_fields_are_the_extractor_arguments():
    # A complete saved contract is read without importing torch because its fields are exactly
    # LogMelSpectrogram's arguments (no defaults to look up).
    import inspect

    from espnet_hifigan.contract.model import LOGMEL_FIELDS
    from espnet_hifigan.nets.features import LogMelSpectrogram

    assert tuple(inspect.signature(LogMelSpectrogram.__init__).parameters)[1:] == LOGMEL_FIELDS


# ------------------------------------------------------------------------------ CLIs
@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Dict:
    """A packed debug vocoder (GlobalMVN) and a 2-utterance npy feats.scp with its feats_conf.yaml."""
    root = tmp_path_factory.mktemp("packed")
    vocoder = _vocoder(root, yaml.safe_load(DEBUG_CONFIG.read_text())["generator_conf"], normalize=True)
    model = pack_loaded_vocoder(vocoder, root / "model.zip")
    feats_dir = root / "feats"
    feats_dir.mkdir()
    rng = np.random.default_rng(7)
    entries = []
    for utt, frames in (("a", 19), ("b", 42)):
        np.save(feats_dir / f"{utt}.npy", (rng.standard_normal((frames, N_MELS)) * 1.5 - 4.0).astype(np.float32))
        entries.append((utt, str(feats_dir / f"{utt}.npy")))
    write_scp(feats_dir / "feats.scp", entries)
    vocoder.contract.save_feats_conf(feats_dir / "feats_conf.yaml")
    return dict(root=root, model=model, scp=feats_dir / "feats.scp")


@pytest.mark.parametrize("backend", ["onnxruntime", "torchscript"])
def test_voc_inference_backend_matches_pytorch(packed, backend):
    outputs = {}
    for name in ("pytorch", backend):
        out = packed["root"] / f"decode_{name}"
        voc_inference.main(["--model_file", str(packed["model"]), "--feats_scp", str(packed["scp"]),
                            "--output_dir", str(out), "--backend", name])
        assert json.loads((out / "timing.json").read_text())["backend"] == name
        outputs[name] = {utt: sf.read(out / "wav" / f"{utt}.wav", dtype="int16")[0] for utt in ("a", "b")}
    for utt, reference in outputs["pytorch"].items():
        assert np.abs(reference).max() > 100, "degenerate reference"
        diff = np.abs(outputs[backend][utt].astype(np.int32) - reference.astype(np.int32)).max()
        assert diff <= 1, f"{utt}: {diff} LSB"


def test_voc_inference_backend_keeps_the_contract_check(packed, tmp_path, caplog):
    contract = FeatureContract.load(packed["scp"].parent / "feats_conf.yaml")
    wrong = tmp_path / "contract.yaml"
    FeatureContract.from_dict(dict(contract.to_dict(), n_fft=512)).save(wrong)
    with pytest.raises(SystemExit) as exit_info, caplog.at_level(logging.ERROR):
        voc_inference.main(["--model_file", str(packed["model"]), "--feats_scp", str(packed["scp"]), "--feats_contract",
                            str(wrong), "--output_dir", str(tmp_path / "out"), "--backend", "onnxruntime"])
    assert exit_info.value.code == 1 and "n_fft" in caplog.text
    assert not (tmp_path / "out" / "wav.scp").exists()


def test_export_cli_writes_the_formats_asked(packed, tmp_path):
    outdir = tmp_path / "packed"
    outdir.mkdir()
    (outdir / "model.zip").write_bytes(packed["model"].read_bytes())
    export_cli.main(["--model", str(outdir / "model.zip"), "--outdir", str(outdir), "--formats", "onnx"])
    assert sorted(p.name for p in outdir.iterdir()) == sorted(["model.zip", FILE_NAMES["onnx"], CONTRACT_SIDECAR, EXPORT_FILE])
    mel = np.full((9, N_MELS), -4.0, np.float32)
    assert np.abs(OnnxVocoder(outdir)(mel) - Vocoder.from_pretrained(outdir / "model.zip")(mel)).max() <= PARITY_ATOL


@pytest.mark.parametrize("existing", [False, True])
def test_export_cli_rejects_a_bad_model_and_writes_nothing(tmp_path, caplog, existing):
    bad = tmp_path / "model.zip"
    bad.write_text("not a model\n")
    outdir = tmp_path / "out"
    if existing:
        outdir.mkdir()
        (outdir / "keep.txt").write_text("kept\n")
    with pytest.raises(SystemExit) as exit_info, caplog.at_level(logging.ERROR):
        export_cli.main(["--model", str(bad), "--outdir", str(outdir)])
    assert exit_info.value.code == 1
    assert f"cannot load a vocoder from {bad}" in caplog.text and "packed model.zip" in caplog.text
    if existing:
        assert sorted(p.name for p in outdir.iterdir()) == ["keep.txt"]
    else:
        assert not outdir.exists()


def test_export_cli_rejects_an_unknown_format(packed, tmp_path, caplog):
    with pytest.raises(SystemExit) as exit_info, caplog.at_level(logging.ERROR):
        export_cli.main(["--model", str(packed["model"]), "--outdir", str(tmp_path / "out"), "--formats", "onnx,tflite"])
    assert exit_info.value.code == 1 and "tflite" in caplog.text and not (tmp_path / "out").exists()
