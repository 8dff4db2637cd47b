"""Quality guard of the fast inference paths (issue 11): each against the fp32 reference.

The reference is the plain ``HiFiGANGenerator`` in fp32 and, for the real-signal checks, the
official jik876 code's own output: the official V3 fixture (``../shared/data/official_v3``, a
checkpoint written by the official code -- its seeded initial weights, not a trained model --
with the official log-mel of a real LJSpeech utterance and the official generator's output for
it; see its README). Its output has speech-like scale (std > 0.05), so an SNR is meaningful; the
weights are untrained, which the SNR threshold (30 dB) does not depend on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet_hifigan.bin import voc_inference
from espnet_hifigan.inference.batching import length_batches, resolve_dtype
from espnet_hifigan.inference.engine import FastGenerator
from espnet_hifigan.inference.fft_conv import FFTConv, use_fft
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.nets.presets import GENERATOR_PRESETS

REPO_ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_V3 = REPO_ROOT.parent / "shared" / "data" / "official_v3"
MIN_SNR_DB = 30.0
BATCH_ATOL = 1e-4


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` (dB)."""
    noise = np.sum((reference.astype(np.float64) - test) ** 2)
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / max(noise, 1e-30)))


@pytest.fixture(scope="module")
def official_v3() -> Path:
    if not (OFFICIAL_V3 / "g_00000000").is_file():
        pytest.skip(f"{OFFICIAL_V3} is absent (it is only in the developers' shared data)")
    return OFFICIAL_V3


@pytest.mark.parametrize("preset", sorted(GENERATOR_PRESETS))
@pytest.mark.parametrize("weight_norm", [True, False])
def test_fast_engine_computes_the_generator(preset, weight_norm):
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset(preset).eval()
    if not weight_norm:
        generator.remove_weight_norm()
    fast = FastGenerator(generator)
    mel = torch.randn(2, 80, 23)
    with torch.inference_mode():
        ref = generator(mel)
        out = fast(mel)
    assert out.shape == ref.shape == (2, 1, 23 * generator.upsample_factor)
    assert ref.std() > 1e-3  # not a constant output, where any engine would agree
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()  # float rounding only
    assert "weight_g" in "".join(generator.state_dict()) or not weight_norm  # the module is untouched


def test_padding_is_masked_in_every_layer():
    """A padded batch equals one-by-one synthesis; padding only the input (no masks) does not."""
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset("v3").eval()
    generator.remove_weight_norm()
    fast = FastGenerator(generator)
    lengths = [30, 17, 5]
    mel = torch.randn(3, 80, 30)
    for b, n in enumerate(lengths):
        mel[b, :, n:] = 0
    hop = generator.upsample_factor
    with torch.inference_mode():
        batched = fast(mel, lengths)
        unmasked = generator(mel)
        for b, n in enumerate(lengths):
            alone = generator(mel[b : b + 1, :, :n])[0, 0]
            scale = alone.abs().max()
            assert (batched[b, 0, : n * hop] - alone).abs().max() <= 1e-5 * scale
            if n < 30:  # padding is silent; the plain generator's padded item differs: the masks matter
                assert batched[b, 0, n * hop :].abs().max() == 0
                assert (unmasked[b, 0, : n * hop] - alone).abs().max() > 1e-2 * scale


@pytest.mark.parametrize(
    "c_in, c_out, kernel, dilation, steps, batch, bias",
    [(256, 256, 11, 1, 300, 1, True), (256, 128, 7, 5, 40, 2, False), (128, 128, 11, 3, 5, 3, True),
     (32, 48, 3, 1, 1000, 1, True)],
)  # fmt: skip
def test_fft_convolution_equals_conv1d(c_in, c_out, kernel, dilation, steps, batch, bias):
    """Overlap-save FFT = Conv1d with 'same' zero padding: long, short (< one block) and batched inputs."""
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2, bias=bias)
    x = torch.randn(batch, c_in, steps)
    fft = FFTConv(conv.weight, conv.bias, conv.padding * 2, dilation)
    with torch.inference_mode():
        ref = conv(x)
        out = fft(x.unsqueeze(2).contiguous(memory_format=torch.channels_last))
    assert out.shape == (batch, c_out, 1, steps)
    assert (out[:, :, 0] - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_fft_is_used_only_where_it_pays_and_only_in_fp32_on_the_cpu(monkeypatch):
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset("v1").eval()
    fast = FastGenerator(generator)
    ffts = [conv[4] for stage in fast.blocks for pairs in stage for pair in pairs for conv in pair if conv is not None]
    assert any(f is not None for f in ffts) and any(f is None for f in ffts)
    assert use_fft(256, 11, 5) and use_fft(256, 7, 3) and use_fft(128, 11, 1)
    assert not use_fft(256, 7, 5) and not use_fft(64, 11, 1) and not use_fft(256, 3, 1) and not use_fft(128, 11, 3)
    calls = []
    real_call = FFTConv.__call__
    monkeypatch.setattr(FFTConv, "__call__", lambda self, x: calls.append(x.size(-1)) or real_call(self, x))
    direct = FastGenerator(generator, fft=False)
    with torch.inference_mode():
        fast(torch.randn(1, 80, 12))
        assert not calls  # too short: every layer direct
        mel = torch.randn(1, 80, 120)
        out, ref = fast(mel), direct(mel)
        assert calls and min(calls) >= 8 * 120  # the wide layers of stage 1 (and long enough ones)
        calls.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the direct path under autocast
            low = fast(mel)
        assert not calls
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert 0 < (low.float() - ref).abs().max() <= 0.1 * ref.abs().max()


@pytest.mark.parametrize("preset", ["v1", "v3"])
def test_packed_synthesis_equals_one_by_one(preset, monkeypatch):
    """Utterances joined by min_gap zero frames give each one's own output; without the gap they do not."""
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset(preset).eval()
    generator.remove_weight_norm()
    fast = FastGenerator(generator)
    mels = [torch.randn(80, n) for n in (9, 1, 31, 2)]
    with torch.inference_mode():
        alone = [fast(m[None])[0, 0] for m in mels]
        packed = fast.synthesise_packed(mels)
        scale = max(float(a.abs().max()) for a in alone)
        for a, p in zip(alone, packed):
            assert p.shape == a.shape
            assert (p - a).abs().max() <= 1e-5 * scale
        monkeypatch.setattr(FastGenerator, "min_gap", property(lambda self: 1))  # too short: neighbours leak in
        leaky = fast.synthesise_packed(mels)
    assert max(float((p - a).abs().max()) for a, p in zip(alone, leaky)) > 1e-3 * scale


def _official(official_v3: Path, **options) -> Vocoder:
    return Vocoder.from_pretrained(official_v3 / "g_00000000", **options)


@pytest.mark.parametrize(
    "engine, dtype",
    [("fast", torch.float32), ("fast", torch.bfloat16), ("reference", torch.bfloat16), ("fast", torch.float16)],
)
def test_fast_paths_keep_30_db_against_the_official_output(official_v3, engine, dtype):
    mel = np.load(official_v3 / "mel.npy")
    ref = np.load(official_v3 / "ref.npy")
    assert ref.std() > 0.01  # a signal, not silence
    vocoder = _official(official_v3, engine=engine)
    try:
        wav = vocoder(mel, dtype=dtype)
    except RuntimeError as e:  # fp16 autocast is not implemented for CPU convolutions in every torch
        pytest.skip(f"{dtype} autocast on CPU: {e}")
    assert wav.shape == ref.shape
    assert snr_db(ref, wav) >= MIN_SNR_DB
    if dtype == torch.float32:
        assert snr_db(ref, wav) >= 80  # fp32: float rounding only


def test_batched_synthesis_equals_one_by_one(official_v3):
    vocoder = _official(official_v3)
    mel = np.load(official_v3 / "mel.npy")
    feats = [mel, mel[:57], mel[100:311], mel[:9]]
    batched = vocoder.synthesise_batch(feats)
    for f, wav in zip(feats, batched):
        alone = vocoder(f)
        assert wav.shape == alone.shape == (f.shape[0] * vocoder.hop_length,)
        assert np.abs(wav - alone).max() <= BATCH_ATOL


def test_batched_synthesis_names_the_bad_utterance(official_v3):
    vocoder = _official(official_v3)
    mel = np.load(official_v3 / "mel.npy")
    bad = mel[:20].copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="utt_b"):
        vocoder.synthesise_batch([mel, bad], names=["utt_a", "utt_b"])


def test_length_batches_respect_the_budget():
    lengths = [5, 40, 12, 40, 3, 25, 100]
    batches = length_batches(lengths, budget=80)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 80
    assert [len(b) for b in length_batches(lengths, budget=0)] == [1] * len(lengths)


def test_dtype_auto_falls_back_to_float32_on_cpu():
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"


def _decode(official_v3: Path, wav_scp: Path, out: Path, extra: List[str]) -> None:
    voc_inference.main(["--model_file", str(official_v3 / "g_00000000"), "--wav_scp", str(wav_scp),
                        "--output_dir", str(out), *extra])  # fmt: skip


def test_batched_decoding_writes_the_same_wavs(official_v3, ljspeech_mini, tmp_path):
    wavs = sorted((ljspeech_mini / "wavs").glob("*.wav"))[:4]
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"{p.stem} {p}\n" for p in wavs))
    _decode(official_v3, scp, tmp_path / "single", ["--batch_size", "0"])
    _decode(official_v3, scp, tmp_path / "batched", ["--batch_size", "100000", "--engine", "fast"])
    single = (tmp_path / "single" / "wav.scp").read_text().split("\n")
    batched = (tmp_path / "batched" / "wav.scp").read_text().split("\n")
    assert [line.split(" ")[0] for line in single] == [line.split(" ")[0] for line in batched]  # scp order
    for p in wavs:
        a, fs = sf.read(tmp_path / "single" / "wav" / f"{p.stem}.wav", dtype="int16")
        b, _ = sf.read(tmp_path / "batched" / "wav" / f"{p.stem}.wav", dtype="int16")
        n_frames = Vocoder.from_pretrained(official_v3 / "g_00000000").features(sf.read(p, dtype="float32")[0]).shape[0]
        assert a.shape == b.shape == (n_frames * 256,)
        assert np.abs(a.astype(np.int32) - b).max() <= 1  # within 1 LSB
        assert np.abs(a).max() > 1000


def test_fused_residual_sum_equals_the_separate_one(monkeypatch):
    """oneDNN's conv + residual epilogue (fp32 CPU) = conv then add, and the fallback is taken without it."""
    from espnet_hifigan.inference import engine as fast_inference

    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset("v2").eval()
    mel = torch.randn(1, 80, 20)
    with torch.inference_mode():
        fused = FastGenerator(generator)(mel)
        monkeypatch.setattr(fast_inference, "_FUSED_ADD", None)
        separate = FastGenerator(generator)(mel)
        ref = generator(mel)
    assert (fused - separate).abs().max() <= 1e-6 * ref.abs().max()
    assert (separate - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.parametrize("norm_means, norm_vars", [(True, True), (True, False), (False, True)])
def test_feature_norm_equals_espnet_global_mvn(tmp_path, norm_means, norm_vars):
    """The vocoder's inference normalisation computes what ESPnet's GlobalMVN (training) computes."""
    from espnet2.layers.global_mvn import GlobalMVN

    from espnet_hifigan.nets.mvn import FeatureNorm, stats_npz_bytes

    rng = np.random.default_rng(0)
    mean, std = rng.normal(-4, 1, 80), rng.uniform(0.5, 2.0, 80)
    (tmp_path / "feats_stats.npz").write_bytes(stats_npz_bytes(mean, std))
    espnet = GlobalMVN(tmp_path / "feats_stats.npz", norm_means=norm_means, norm_vars=norm_vars)
    feats = torch.from_numpy(rng.normal(-4, 2, (37, 80)).astype(np.float32))
    ref, _ = espnet(feats.unsqueeze(0).clone())
    ours = FeatureNorm(espnet.mean, espnet.std, norm_means=norm_means, norm_vars=norm_vars)(feats)
    torch.testing.assert_close(ours, ref[0], rtol=1e-6, atol=1e-6)


def test_decoding_starts_without_importing_espnet_global_mvn():
    """voc_inference's start-up leaves out espnet2.layers.global_mvn (and the torch._dynamo it pulls in)."""
    code = "import sys, espnet_hifigan.bin.voc_inference; print('espnet2.layers.global_mvn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert done.stdout.strip() == "False"
