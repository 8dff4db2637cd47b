"""The ONNX streaming step (``--formats onnx_stream``): OnnxVocoder.stream equals PyTorch offline synthesis."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch
import yaml
from test_streaming import DEBUG_CONFIG, N_MELS, _unit_gain_

from espnet_hifigan.bin import export as export_cli
from espnet_hifigan.export.exporters import FILE_NAMES, export_vocoder
from espnet_hifigan.export.onnx_vocoder import EXPORT_FILE, OnnxVocoder
from espnet_hifigan.inference.streaming import split_frames
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator

ATOL = 1e-5  # fp32 sums of <= 3 * 256 * 7 terms of order 1 per layer: ~1e-6, as PyTorch streaming
CHUNK = 5


def _mvn_vocoder(frames: np.ndarray) -> Vocoder:
    """The debug generator (unit-gain weights) with GlobalMVN statistics: the export folds them in."""
    conf = dict(DEBUG_CONFIG["generator_conf"], use_weight_norm=False)
    generator = _unit_gain_(HiFiGANGenerator(in_channels=N_MELS, **conf))
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state["normalize.mean"] = torch.from_numpy(frames.mean(0)).float()
    state["normalize.std"] = torch.from_numpy(frames.std(0)).float()
    return Vocoder(dict(DEBUG_CONFIG, generator_conf=conf), state, source="stream test")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Dict:
    rng = np.random.default_rng(0)
    mel = rng.normal(-4.0, 1.5, size=(61, N_MELS)).astype(np.float32)
    vocoder = _mvn_vocoder(mel)
    root = tmp_path_factory.mktemp("onnx_stream")
    paths = export_vocoder(vocoder, root, ["onnx_stream"], stream_chunk_frames=CHUNK)
    return dict(vocoder=vocoder, paths=paths, dir=root, mel=mel)


def test_export_writes_the_step_and_its_protocol(exported):
    assert sorted(exported["paths"]) == ["contract", "manifest", "onnx", "onnx_stream"]  # onnx comes along
    manifest = yaml.safe_load((exported["dir"] / EXPORT_FILE).read_text())
    stream = manifest["stream"]
    assert stream["file"] == FILE_NAMES["onnx_stream"] and stream["chunk_frames"] == CHUNK
    assert stream["look_ahead_frames"] == 6  # the debug generator's receptive field (tests/test_streaming.py)
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported["dir"] / stream["file"]), providers=["CPUExecutionProvider"])
    documented = [(i["name"], i["shape"]) for i in stream["inputs"]]
    assert documented == [(i.name, list(i.shape)) for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    assert outputs == ["wav"] + ["new_" + name for name, _ in documented[3:]]


@pytest.mark.parametrize("chunk_frames", [1, 3, 5, 8, 61, 100])
def test_onnx_stream_equals_pytorch_offline(exported, chunk_frames):
    """Any chunking of the input (the graph buffers to its own 5 frames), edges included."""
    vocoder, mel = exported["vocoder"], exported["mel"]
    offline = vocoder(mel)
    assert offline.std() > 0.05
    onnx = OnnxVocoder(exported["dir"], num_threads=1)
    pieces = list(onnx.stream(split_frames(mel, chunk_frames)))
    assert all(p.size % vocoder.hop_length == 0 for p in pieces[:-1])
    streamed = np.concatenate(pieces)
    assert streamed.shape == offline.shape
    assert np.abs(streamed - offline).max() <= ATOL
    short = np.concatenate(list(onnx.stream([mel[:2]])))  # shorter than a chunk and the look-ahead
    assert np.abs(short - vocoder(mel[:2])).max() <= ATOL


def test_onnx_stream_names_a_bad_chunk(exported):
    onnx = OnnxVocoder(exported["dir"], num_threads=1)
    bad = exported["mel"][:4].copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="mel chunk 1"):
        list(onnx.stream([exported["mel"][:3], bad]))


def test_onnx_stream_needs_the_stream_export(tmp_path):
    vocoder = _mvn_vocoder(np.random.default_rng(1).normal(-4.0, 1.5, size=(20, N_MELS)))
    export_vocoder(vocoder, tmp_path, ["onnx"])
    with pytest.raises(FileNotFoundError, match="--formats onnx_stream"):
        list(OnnxVocoder(tmp_path).stream([np.zeros((3, N_MELS), np.float32)]))


def test_export_cli_rejects_a_bad_stream_chunk(tmp_path, caplog):
    with pytest.raises(SystemExit), caplog.at_level("ERROR"):
        export_cli.main(["--model", str(tmp_path / "model.zip"), "--outdir", str(tmp_path / "out"),
                         "--formats", "onnx_stream", "--stream_chunk_frames", "0"])
    assert "--stream_chunk_frames must be >= 1" in caplog.text  # refused for the chunk, before the model is read
    assert not Path(tmp_path / "out").exists()
