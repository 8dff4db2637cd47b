"""Trust, round 2 (issue 20): no wrong audio with exit 0.

* ``format_wav`` cuts the channel a Kaldi ``segments`` line names (5th column, 0-based, as
  ``extract-segments``) and refuses, naming the line, a channel the recording lacks;
* ``espnet-hifigan-tts`` refuses empty and all-``<unk>`` text and ``--text_file`` lines of one
  field, and warns about (and lists) outputs of a few frames;
* every synthesis entry point (``Vocoder``, its batch, its stream, chunked synthesis,
  ``OnnxVocoder``, ``ExportedVocoder``) refuses NaN/Inf features as ``Vocoder()`` does;
* read-only features (kaldiio's views of an ark) reach torch without its "not writable"
  warning, and writable ones without a copy;
* an utterance over ``Vocoder(long_frames=...)`` is synthesised in chunks: the offline audio,
  with the generator never run on more than a chunk plus its receptive field.

Every refusal: an exception or exit status != 0, the culprit named, nothing written and an
earlier result untouched. Models are the debug generator with random order-1 weights.
"""

from __future__ import annotations

import hashlib
import logging
import math
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from torch import nn

from espnet_hifigan.bin import format_wav, tts_to_wav, voc_inference
from espnet_hifigan.core.scp import read_feats_scp
from espnet_hifigan.export.exporters import ExportedVocoder, export_vocoder
from espnet_hifigan.export.onnx_vocoder import OnnxVocoder
from espnet_hifigan.inference.input_checks import torch_ready
from espnet_hifigan.inference.streaming import (
    LONG_FRAMES,
    receptive_field,
    split_frames,
    synthesise_in_chunks,
)
from espnet_hifigan.inference.text_to_wav import SHORT_OUTPUT_FRAMES
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBUG_CONFIG = yaml.safe_load((REPO_ROOT / "conf" / "hifigan_debug.yaml").read_text())
N_MELS = 80
FS = 16000
CHUNK = 16  # frames per streamed chunk
# One 16-bit PCM step (format_wav writes PCM_16) plus rounding.
PCM16_STEP = 1.0 / 32768
# onnxruntime against PyTorch (tests/test_export.py).
PARITY_ATOL = 1e-4


def _digest(directory: Path) -> Dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _errors(caplog) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# ============================================================================ format_wav: segments channel
@pytest.fixture
def recordings(tmp_path) -> Dict:
    """A stereo recording (channel 0 silent, channel 1 a tone), a mono one, their wav.scp and an
    earlier run's output list."""
    t = np.arange(FS) / FS
    tone = (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = np.stack([np.zeros_like(tone), tone], axis=1)
    audio = tmp_path / "audio"  # outputs may not go where the audio is read from
    audio.mkdir()
    sf.write(audio / "stereo.wav", stereo, FS, subtype="FLOAT")
    sf.write(audio / "mono.wav", tone, FS, subtype="FLOAT")
    (tmp_path / "wav.scp").write_text(f"rec1 {audio / 'stereo.wav'}\nmono1 {audio / 'mono.wav'}\n")
    (tmp_path / "out.scp").write_text("earlier run\n")
    return dict(dir=tmp_path, stereo=stereo, tone=tone)


def _format(rec: Dict, segments: str, *extra: str) -> int:
    d = rec["dir"]
    (d / "segments").write_text(segments)
    return format_wav.main([
        "--wav_scp", str(d / "wav.scp"), "--segments", str(d / "segments"), "--fs", str(FS), "--audio_format", "wav",
        "--out_dir", str(d / "out"), "--out_scp", str(d / "out.scp"), "--out_utt2num_samples", str(d / "u2n"), *extra,
    ])


@pytest.mark.parametrize("policy", ["error", "first"])
def test_segments_channel_is_the_channel_cut(recordings, policy):
    segments = "a-ch1 rec1 0.25 0.75 1\na-ch0 rec1 0.0 0.5 0\nb-mono mono1 0.5 1.0 0\n"
    assert _format(recordings, segments, "--multi_channel", policy) == 0
    scp = dict(line.split() for line in (recordings["dir"] / "out.scp").read_text().splitlines())
    expected = {"a-ch1": recordings["stereo"][4000:12000, 1], "a-ch0": np.zeros(8000),
                "b-mono": recordings["tone"][8000:16000]}
    assert list(scp) == list(expected)
    for utt, want in expected.items():
        wav, fs = sf.read(scp[utt])
        assert fs == FS and wav.shape == want.shape, utt
        assert np.abs(wav - want).max() <= PCM16_STEP, utt
    # channel 1 is the tone, not channel 0's silence
    assert np.abs(sf.read(scp["a-ch1"])[0]).max() > 0.2


SEGMENT_REFUSALS = [
    pytest.param("a rec1 0 0.5 0\nb rec1 0 0.5 2\n", ["segments:2", "'b'", "channel 2", "has 2 channel(s)"],
                 id="channel-beyond-the-recording"),
    pytest.param("a mono1 0 0.5 1\n", ["segments:1", "'a'", "channel 1", "has 1 channel(s)"], id="channel-1-of-mono"),
    pytest.param("a rec1 0 0.5 0\nb rec1 0 0.5 -1\n", ["segments:2", "'-1'", "0-based"], id="negative-channel"),
    pytest.param("a rec1 0 0.5 left\n", ["segments:1", "'left'", "0-based"], id="channel-not-a-number"),
    pytest.param("a rec1 0 0.5 1 extra\n", ["segments:1", "[<channel>]"], id="six-fields"),
]


@pytest.mark.parametrize("segments, needles", SEGMENT_REFUSALS)
def test_bad_segments_channel_refused(recordings, caplog, segments, needles):
    assert _format(recordings, segments) == 1
    (error,) = _errors(caplog)
    for needle in needles:
        assert needle in error, f"{needle!r} not in {error!r}"
    d = recordings["dir"]
    assert (d / "out.scp").read_text() == "earlier run\n"  # the earlier result untouched
    assert not (d / "u2n").exists()
    assert not (d / "out").exists() or not any((d / "out").iterdir())  # what was cut is removed


# ============================================================================ vocoders
def _unit_gain_(generator: HiFiGANGenerator) -> HiFiGANGenerator:
    """Weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2): order-1 activations and audible output, so
    that a tolerance of float rounding can fail (the default init gives audio of ~1e-4)."""
    torch.manual_seed(0)
    for m in generator.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
            nn.init.normal_(m.weight, 0.0, _fan_in(m) ** -0.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
    return generator


def _fan_in(m: nn.Module) -> int:
    """Taps summed into one output sample (a transposed conv: in_channels * kernel / stride)."""
    if isinstance(m, nn.ConvTranspose1d):
        return m.weight.shape[0] * m.weight.shape[2] // m.stride[0]
    return m.weight.shape[1] * m.weight.shape[2]


def _vocoder(**options) -> Vocoder:
    """The debug vocoder with GlobalMVN (mean -4, std 2) and unit-gain weights."""
    generator_conf = dict(DEBUG_CONFIG["generator_conf"], use_weight_norm=False)
    generator = _unit_gain_(HiFiGANGenerator(in_channels=N_MELS, **generator_conf))
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state.update({"normalize.mean": torch.full((N_MELS,), -4.0), "normalize.std": torch.full((N_MELS,), 2.0)})
    return Vocoder(dict(DEBUG_CONFIG, generator_conf=generator_conf), state, source="debug", **options)


def _mel(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(-4.0, 2.0, size=(frames, N_MELS)).astype(np.float32)


@pytest.fixture(scope="module")
def entry(tmp_path_factory) -> Dict:
    """The vocoder, the same in chunks of 24 frames, its ONNX export and its TorchScript backend."""
    vocoder = _vocoder()
    export = tmp_path_factory.mktemp("export")
    export_vocoder(vocoder, export, ["onnx"])
    return dict(vocoder=vocoder, long=_vocoder(long_frames=24), onnx=OnnxVocoder(export),
                torchscript=ExportedVocoder(vocoder, "torchscript"), good=_mel(30, seed=1))


# Each synthesises ``mel`` (frames, n_mels) through one entry point.
ENTRY_POINTS: Dict[str, Callable[[Dict, np.ndarray], object]] = {
    "vocoder": lambda e, mel: e["vocoder"](mel),
    "vocoder-long-path": lambda e, mel: e["long"](mel),
    "synthesise_batch": lambda e, mel: e["vocoder"].synthesise_batch([e["good"], mel], names=["good", "bad_utt"]),
    "stream": lambda e, mel: list(e["vocoder"].stream(split_frames(mel, CHUNK))),
    "synthesise_in_chunks": lambda e, mel: synthesise_in_chunks(e["vocoder"], mel, CHUNK),
    "onnx_vocoder": lambda e, mel: e["onnx"](mel),
    "exported_torchscript": lambda e, mel: e["torchscript"](mel),
}
# What the message names besides the values: the utterance of a batch, the chunk of a stream.
CULPRIT = {"synthesise_batch": "bad_utt", "stream": "mel chunk 2", "synthesise_in_chunks": "mel chunk 2"}


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_refuses_non_finite_features(entry, name, value):
    mel = _mel(60)
    mel[2 * CHUNK + 3, 7] = value  # in chunk 2 of a stream
    with pytest.raises(ValueError, match=r"1 NaN/Inf values: cannot synthesise") as err:
        ENTRY_POINTS[name](entry, mel)
    assert CULPRIT.get(name, "") in str(err.value)


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_synthesises_clean_features_as_offline(entry, name):
    mel = _mel(60)
    offline = entry["vocoder"](mel)
    assert offline.std() > 0.05  # audible: the tolerance can fail
    out = ENTRY_POINTS[name](entry, mel)
    wav = out[1] if name == "synthesise_batch" else np.concatenate(out) if name == "stream" else out
    assert wav.shape == offline.shape
    assert np.abs(wav - offline).max() <= PARITY_ATOL, name


# ============================================================================ read-only features
@pytest.fixture
def handed_to_torch(monkeypatch) -> List[bool]:
    """Whether each numpy array given to ``torch.as_tensor`` / ``torch.from_numpy`` was writable.

    Torch warns about a read-only array once per process, so the absence of the warning in a
    test process proves little; this sees every call.
    """
    writable: List[bool] = []
    for name in ("as_tensor", "from_numpy"):
        def spy(data, *args, _original=getattr(torch, name), **kwargs):
            if isinstance(data, np.ndarray):
                writable.append(bool(data.flags.writeable))
            return _original(data, *args, **kwargs)

        monkeypatch.setattr(torch, name, spy)
    return writable


def test_read_only_features_reach_torch_without_a_warning(entry, tmp_path, handed_to_torch):
    mel = _mel(50)
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/feats.ark,{tmp_path}/feats.scp") as writer:
        writer("utt1", mel)
    ((_, feats),) = read_feats_scp(tmp_path / "feats.scp")
    assert not feats.flags.writeable  # the cause: kaldiio returns read-only views of the ark
    vocoder = entry["vocoder"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wavs = [vocoder(feats), vocoder.synthesise_batch([feats, feats])[0], entry["long"](feats),
                np.concatenate(list(vocoder.stream(split_frames(feats, CHUNK)))), entry["torchscript"](feats)]
        wavs += [wav for _, wav in vocoder.decode_scp(tmp_path / "feats.scp", assume_raw=True)]
    assert [str(w.message) for w in caught if "not writable" in str(w.message)] == []
    assert handed_to_torch and all(handed_to_torch), handed_to_torch
    for wav in wavs:
        assert np.abs(wav - vocoder(mel)).max() <= PARITY_ATOL
    # Copied only when read-only (or not float32): a writable float32 array is handed over as is.
    assert torch_ready(mel) is mel
    copy = torch_ready(feats)
    assert copy.flags.writeable and copy.dtype == np.float32 and np.array_equal(copy, feats)


def test_decode_log_has_no_numpy_warning(entry, tmp_path, caplog, handed_to_torch):
    vocoder = entry["vocoder"]
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "config.yaml").write_text(yaml.safe_dump(vocoder.config))
    torch.save({f"generator.{k}": v for k, v in vocoder.generator.state_dict().items()}
               | {"normalize.mean": torch.full((N_MELS,), -4.0), "normalize.std": torch.full((N_MELS,), 2.0)},
               tmp_path / "exp" / "model.pth")
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/feats.ark,{tmp_path}/feats.scp") as writer:
        writer("utt1", _mel(40))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            voc_inference.main(["--train_config", str(tmp_path / "exp" / "config.yaml"), "--model_file",
                                str(tmp_path / "exp" / "model.pth"), "--feats_scp", str(tmp_path / "feats.scp"),
                                "--output_dir", str(tmp_path / "out"), "--assume_raw_features", "true",
                                "--check_feats_stats", "false"])
        except SystemExit as e:
            pytest.fail(f"voc_inference exited with {e.code}: {_errors(caplog)}")
    assert (tmp_path / "out" / "wav.scp").is_file(), _errors(caplog)
    assert [str(w.message) for w in caught if "not writable" in str(w.message)] == []
    assert handed_to_torch and all(handed_to_torch), handed_to_torch
    assert "not writable" not in caplog.text


# ============================================================================ long utterances
def _rounding_tolerance(vocoder: Vocoder, peak: float) -> float:
    """What float32 rounding can change between two blockings of the same sums.

    Both paths sum the same taps with the same weights; only how the convolutions' sums are
    blocked differs (window lengths, oneDNN's or the FFT's blocks). A sum of n order-1 terms
    rounds by ~sqrt(n) * eps relative; it passes through every convolution of the generator (at
    unit gain), so the bound is layers * sqrt(largest fan-in) * eps * peak.
    """
    convs = [m for m in vocoder.generator.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    return len(convs) * math.sqrt(max(_fan_in(m) for m in convs)) * float(np.finfo(np.float32).eps) * max(peak, 1.0)


class _Windows:
    """Wraps a vocoder's engine and records the frames of every call."""

    def __init__(self, engine):
        self.engine, self.frames = engine, []
        self.upsample_factor = engine.upsample_factor

    def __call__(self, mel, *args):
        self.frames.append(mel.shape[-1])
        return self.engine(mel, *args)


@pytest.mark.parametrize("long_frames", [24, 61])
def test_long_utterance_in_chunks_equals_offline(long_frames):
    mel = _mel(700)
    offline = _vocoder(long_frames=0)(mel)
    assert offline.std() > 0.05
    vocoder = _vocoder(long_frames=long_frames)
    windows = vocoder.engine = _Windows(vocoder.engine)
    chunked = vocoder(mel)
    assert chunked.shape == offline.shape == (700 * vocoder.hop_length,)
    assert np.abs(chunked - offline).max() <= _rounding_tolerance(vocoder, np.abs(offline).max())
    # Bounded: the generator never sees more than a chunk and its receptive field.
    context = receptive_field(vocoder.generator)
    assert len(windows.frames) > 700 // long_frames
    assert max(windows.frames) <= long_frames + context.left + context.right


def test_batch_with_a_long_utterance_equals_offline():
    mels = [_mel(30, seed=1), _mel(200, seed=2), _mel(45, seed=3)]
    offline = _vocoder(long_frames=0)
    vocoder = _vocoder(long_frames=64)
    for got, mel in zip(vocoder.synthesise_batch(mels), mels):
        want = offline(mel)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= _rounding_tolerance(vocoder, np.abs(want).max())


# Peak RSS growth (MiB) from decoding 2000 frames to decoding 8000: measured (debug generator, 1
# thread) +20 MiB in chunks of 300 frames (the longer output and input only), +548 MiB whole
# (~90 KiB of activations per frame).
MEMORY_PROBE = """
import resource, sys, numpy as np, torch, yaml
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator
torch.set_num_threads(1)
config = yaml.safe_load(open(sys.argv[1]))
config.update(normalize=None, generator_conf=dict(config["generator_conf"], use_weight_norm=False))
generator = HiFiGANGenerator(in_channels=80, **config["generator_conf"])
vocoder = Vocoder(config, {f"generator.{k}": v for k, v in generator.state_dict().items()}, long_frames=300)
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
mel = np.random.default_rng(0).normal(-4.0, 2.0, (8000, 80)).astype(np.float32)
vocoder(mel[:2000])
before = peak()
vocoder(mel)
print(peak() - before)
"""
MEMORY_GROWTH_LIMIT_MIB = 100


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_long_utterance_memory_does_not_grow_with_its_length():
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(REPO_ROOT / "conf" / "hifigan_debug.yaml")],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) < MEMORY_GROWTH_LIMIT_MIB, done.stdout


def test_long_frames_default_and_off():
    assert _vocoder().long_frames == LONG_FRAMES == 2000
    vocoder = _vocoder(long_frames=0)
    windows = vocoder.engine = _Windows(vocoder.engine)
    vocoder.synthesise_batch([_mel(300)])
    assert windows.frames == [300]  # off: one call on the whole utterance


# ============================================================================ espnet-hifigan-tts
def _tts(tts_recipe: Path, vocoder: Path, *args: str) -> int:
    from tts_recipe import TTS_EXP, TTS_MAXLENRATIO

    return tts_to_wav.main(["--tts_exp", str(tts_recipe / TTS_EXP), "--vocoder", str(vocoder),
                            "--maxlenratio", str(TTS_MAXLENRATIO), "--minlenratio", "0.0", *args])


def _text_case(lines: str):
    def build(d: Path) -> Tuple[List[str], Path]:
        (d / "text").write_text(lines)
        return ["--text_file", str(d / "text"), "--output_dir", str(d / "out")], d / "out"
    return build


def _one_text(text: str):
    def build(d: Path) -> Tuple[List[str], Path]:
        return ["--text", text, "--output", str(d / "out" / "say.wav")], d / "out"
    return build


# Lowercase: the AN4 TTS's character list holds upper case letters only.
TTS_REFUSALS = [
    pytest.param(_one_text(""), ["--text", "empty"], id="empty-text"),
    pytest.param(_one_text("   "), ["--text", "empty"], id="blank-text"),
    pytest.param(_one_text("hello"), ["--text", "<unk>", "token list"], id="all-unknown-text"),
    pytest.param(_text_case("utt_a ELEVEN\nutt_b hello there\n"), ["text:2", "utt_b", "<unk>"],
                 id="all-unknown-line"),
    pytest.param(_text_case("utt_a ELEVEN\nTHREE\n"), ["text:2", "'THREE'", "one field"], id="one-field-line"),
    pytest.param(_text_case("utt_a ELEVEN\nutt_b\n"), ["text:2", "'utt_b'", "<utt> <text>"], id="id-without-text"),
]


@pytest.mark.parametrize("build, needles", TTS_REFUSALS)
def test_tts_refuses_text_it_cannot_say(tts_recipe, sensitive_vocoder, tmp_path, caplog, build, needles):
    args, out = build(tmp_path)
    out.mkdir()
    (out / "earlier.txt").write_text("an earlier result\n")
    before = _digest(out)
    assert _tts(tts_recipe, sensitive_vocoder, *args) == 1
    (error,) = _errors(caplog)
    for needle in needles:
        assert needle in error, f"{needle!r} not in {error!r}"
    assert _digest(out) == before  # nothing written, the earlier file untouched


def test_tts_warns_about_outputs_of_a_few_frames(tts_recipe, sensitive_vocoder, tmp_path, caplog):
    # maxlenratio 0.01: Tacotron 2 stops after its first step (reduction factor 2: 2 frames).
    (tmp_path / "text").write_text("utt_a ELEVEN\nutt_b THREE TWO ONE\n")
    rc = _tts(tts_recipe, sensitive_vocoder, "--text_file", str(tmp_path / "text"),
              "--output_dir", str(tmp_path / "out"), "--maxlenratio", "0.01")
    assert rc == 0, _errors(caplog)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("utt_a: 2 frame(s)") for m in warned), warned
    assert f"2 of 2 outputs are shorter than {SHORT_OUTPUT_FRAMES} frames: utt_a utt_b" in warned, warned
    assert len((tmp_path / "out" / "wav.scp").read_text().splitlines()) == 2  # written all the same
