"""Streaming synthesis equals offline synthesis; the receptive field is exact and tight."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from torch import nn

from espnet_hifigan.bin import voc_inference
from espnet_hifigan.contract import Normalization
from espnet_hifigan.inference.engine import FastGenerator
from espnet_hifigan.inference import stateful_stream
from espnet_hifigan.inference.stateful_stream import (
    NO_END,
    StatefulGeneratorStream,
    StreamEngine,
)
from espnet_hifigan.inference.streaming import (
    GeneratorStream,
    ReceptiveField,
    StreamingVocoder,
    receptive_field,
    split_frames,
    synthesise_in_chunks,
)
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.nets.presets import GENERATOR_PRESETS

REPO_ROOT = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = yaml.safe_load((REPO_ROOT / "conf" / "hifigan_debug.yaml").read_text())
N_MELS = 80
FRAMES = 97  # prime: no chunk size below divides it
ATOL = 1e-5
# Two small generators, one per residual block type; hop 256 both.
GENERATOR_CONFS: Dict[str, dict] = {
    "debug_resblock2": dict(DEBUG_CONFIG["generator_conf"], use_weight_norm=False),
    "v1_shaped_resblock1": dict(GENERATOR_PRESETS["v1"], upsample_initial_channel=32, use_weight_norm=False),
    "v3_shaped_resblock2": dict(GENERATOR_PRESETS["v3"], upsample_initial_channel=32, use_weight_norm=False),
}


def _unit_gain_(generator: HiFiGANGenerator, seed: int = 0) -> HiFiGANGenerator:
    """Weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2): order-1 activations and audio of std ~0.3.

    The default init (std 0.01) gives audio of ~1e-4, where a 1e-5 tolerance could not fail.
    """
    torch.manual_seed(seed)
    for m in generator.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
            fan_in = m.weight.shape[1] * m.weight.shape[2]
            if isinstance(m, nn.ConvTranspose1d):  # each output sees in_channels * kernel / stride taps
                fan_in = m.weight.shape[0] * m.weight.shape[2] // m.stride[0]
            nn.init.normal_(m.weight, 0.0, fan_in**-0.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
    return generator.eval()


def _state(name: str, mean=None, std=None) -> Dict[str, torch.Tensor]:
    """A model state dict: unit-gain generator, GlobalMVN with ``mean``/``std`` (default 0/1)."""
    generator = _unit_gain_(HiFiGANGenerator(in_channels=N_MELS, **GENERATOR_CONFS[name]))
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state["normalize.mean"] = torch.zeros(N_MELS) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
    state["normalize.std"] = torch.ones(N_MELS) if std is None else torch.as_tensor(std, dtype=torch.float32)
    return state


def _vocoder(name: str, mean=None, std=None) -> Vocoder:
    return Vocoder(dict(DEBUG_CONFIG, generator_conf=GENERATOR_CONFS[name]), _state(name, mean, std), source=name)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Chunk-by-chunk synthesis is many small convolutions: on a busy 2-core runner two threads
    contend and run ~20x slower than one. Results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=sorted(GENERATOR_CONFS))
def vocoder(request) -> Vocoder:
    return _vocoder(request.param)


@pytest.fixture(scope="module")
def random_mel() -> np.ndarray:
    return np.random.default_rng(0).normal(-4.0, 2.0, size=(FRAMES, N_MELS)).astype(np.float32)


def _stream(vocoder: Vocoder, mel: np.ndarray, chunk_frames: int) -> np.ndarray:
    pieces = list(vocoder.stream(split_frames(mel, chunk_frames)))
    for piece in pieces:
        assert piece.ndim == 1 and piece.size % vocoder.hop_length == 0
    return np.concatenate(pieces)


# ----------------------------------------------------------------------------- receptive field
def test_receptive_field_of_the_presets():
    # debug by hand, backwards from frame 0's samples [0, 255]: conv_post (k7) [-3, 258]; stage 3:
    # MRF widest block k5 d(2, 6) +-16 -> [-19, 274], ConvTranspose(k8, s4, p2) -> [-6, 69];
    # stage 2: [-22, 85] -> (k16, s8, p4) [-4, 11]; stage 1: [-20, 27] -> [-3, 3]; conv_pre (k7): [-6, 6].
    assert receptive_field(DEBUG_CONFIG["generator_conf"]) == ReceptiveField(6, 6)
    assert receptive_field(GENERATOR_PRESETS["v1"]) == ReceptiveField(13, 13)
    assert receptive_field(GENERATOR_PRESETS["v2"]) == ReceptiveField(13, 13)
    assert receptive_field(GENERATOR_PRESETS["v3"]) == ReceptiveField(11, 11)
    # conv_pre, the 3 stages' upsampler, shared MRF input/skip, 2nd/3rd pairs (c1, c2, skip), block delays; post
    engine = StreamEngine(HiFiGANGenerator(**dict(GENERATOR_PRESETS["v1"], upsample_initial_channel=16)))
    assert len(engine.cache_specs) == 1 + 4 * (1 + 2 + 3 * (1 + 2 * 3) + 2) + 1
    # from the built module: the same as from its config
    for conf in GENERATOR_CONFS.values():
        assert receptive_field(HiFiGANGenerator(in_channels=N_MELS, **conf)) == receptive_field(conf)


@pytest.mark.parametrize("name", sorted(GENERATOR_CONFS))
def test_receptive_field_is_exact_and_tight(name, random_mel):
    """float64 (rounding ~1e-16): the computed context reproduces offline; one frame less does not.

    The outermost context frame reaches the output through one extreme tap of every conv, so its
    weight is small (~1e-9 for V1's shape with these weights): hence float64 and 1e-11.
    """
    generator = _unit_gain_(HiFiGANGenerator(in_channels=N_MELS, **GENERATOR_CONFS[name])).double()
    mel = torch.from_numpy(random_mel[:60]).double()
    with torch.no_grad():
        offline = generator.inference(mel)
    rf = receptive_field(generator)

    def streamed_error(context: ReceptiveField) -> float:
        stream = GeneratorStream(generator, context)
        wav = torch.cat([stream.push(chunk) for chunk in split_frames(mel, 1)] + [stream.flush()])
        assert wav.shape == offline.shape
        return (wav - offline).abs().max().item()

    assert streamed_error(rf) <= 1e-12
    assert streamed_error(ReceptiveField(rf.left - 1, rf.right)) > 1e-11
    assert streamed_error(ReceptiveField(rf.left, rf.right - 1)) > 1e-11


# ----------------------------------------------------------------------------- stateful engine
@pytest.mark.parametrize("name", sorted(GENERATOR_CONFS))
def test_stateful_engine_is_exact_in_float64(name, random_mel):
    """float64: every cache and delay is exact, down to the outermost context taps (~1e-9 here).

    In float32 a cache one column short would hide below the 1e-5 tolerance; in float64 it cannot.
    Chunk sizes 1, 3, 8, 32; frames 0 and 59 see offline's zero padding at every layer.
    """
    generator = _unit_gain_(HiFiGANGenerator(in_channels=N_MELS, **GENERATOR_CONFS[name])).double()
    mel = torch.from_numpy(random_mel[:60]).double()
    with torch.no_grad():
        offline = generator.inference(mel)
    stream = StatefulGeneratorStream(generator, FastGenerator(generator))
    assert stream.engine.delay <= receptive_field(generator).right * stream.hop  # released on time
    for chunk_frames in (1, 3, 8, 32):
        wav = torch.cat([stream.push(chunk) for chunk in split_frames(mel, chunk_frames)] + [stream.flush()])
        assert wav.shape == offline.shape
        assert (wav - offline).abs().max().item() <= 1e-12, chunk_frames


def test_stateful_step_is_a_pure_function_of_its_caches(random_mel):
    """Two utterances interleaved step by step with their own caches: each equals its offline audio."""
    vocoder = _vocoder("v3_shaped_resblock2")
    engine = StreamEngine(vocoder.generator, vocoder.engine)
    hop, chunk = engine.hop, 8
    raw = [random_mel, random_mel[::-1][:50].copy()]
    mels = [vocoder.normalize(torch.from_numpy(m)) for m in raw]
    caches = [engine.initial_caches(), engine.initial_caches()]
    outs = [[], []]
    with torch.no_grad():
        for start in range(0, FRAMES, chunk):
            for u, mel in enumerate(mels):
                if start < mel.size(0):
                    wav, caches[u] = engine.step(mel[start : start + chunk], start, NO_END, caches[u])
                    outs[u].append(wav)
        for u, mel in enumerate(mels):  # flush: zeros past the end, the end declared
            flush = -(-engine.delay // hop)
            wav, _ = engine.step(mel.new_zeros(flush, N_MELS), mel.size(0), mel.size(0), caches[u])
            got = torch.cat(outs[u] + [wav])[engine.delay : engine.delay + mel.size(0) * hop].numpy()
            assert np.abs(got - vocoder(raw[u])).max() <= ATOL


def test_stateful_stream_with_the_fft_layers_of_a_real_v1(random_mel):
    """The real V1 widths: chunks of 128 frames run stage 1's FFT layers (as offline); 8 frames direct."""
    conf = dict(GENERATOR_PRESETS["v1"], use_weight_norm=False)
    generator = _unit_gain_(HiFiGANGenerator(in_channels=N_MELS, **conf))
    engine = FastGenerator(generator)
    assert engine.fft_layers > 0
    mel = torch.from_numpy(np.concatenate([random_mel, random_mel[:60]]))
    with torch.no_grad():
        offline = engine(mel.t()[None]).view(-1)
    stream = StatefulGeneratorStream(generator, engine)
    for chunk_frames in (128, 8):
        wav = torch.cat([stream.push(chunk) for chunk in split_frames(mel, chunk_frames)] + [stream.flush()])
        assert (wav - offline).abs().max().item() <= ATOL, chunk_frames
    assert stream.engine._valid_fft  # the FFT path ran


def test_stream_abandoned_mid_utterance_restarts_clean(random_mel):
    vocoder = _vocoder("v1_shaped_resblock1")
    stream = StreamingVocoder(vocoder)
    for chunk in split_frames(random_mel[:40], 8):  # no flush: the utterance is abandoned
        stream.push(chunk)
    stream.reset()
    again = np.concatenate([stream.push(c) for c in split_frames(random_mel, 8)] + [stream.flush()])
    assert np.abs(again - vocoder(random_mel)).max() <= ATOL
    one = np.concatenate(list(stream.stream(split_frames(random_mel[:1], 1))))  # one frame: all edges
    assert np.abs(one - vocoder(random_mel[:1])).max() <= ATOL


# ----------------------------------------------------------------------------- stream == offline
@pytest.mark.parametrize("chunk_frames", [1, 3, 7, 8, 13, 32, 50, FRAMES, 500])
def test_stream_equals_offline_on_random_mels(vocoder, random_mel, chunk_frames):
    offline = vocoder(random_mel)
    assert offline.std() > 0.05  # audible-scale output: the tolerance below can fail
    streamed = _stream(vocoder, random_mel, chunk_frames)
    assert streamed.shape == offline.shape == (FRAMES * vocoder.hop_length,)
    assert np.abs(streamed - offline).max() <= ATOL


@pytest.mark.parametrize("name", sorted(GENERATOR_CONFS))
def test_stream_equals_offline_on_a_real_mel(name, synthetic_corpus):
    wav, fs = sf.read(Path(synthetic_corpus["dir"]) / "utt1.wav", dtype="float32")
    plain = _vocoder(name)
    mel = plain.features(wav)  # 16 kHz, hop 256
    assert fs == plain.fs and mel.shape[0] > 40
    # A vocoder normalising with the utterance's own statistics: GlobalMVN applied chunk by chunk.
    vocoder = _vocoder(name, mean=mel.mean(0), std=mel.std(0))
    offline = vocoder(mel)
    assert offline.std() > 0.05
    for chunk_frames in (1, 7, 32):
        assert np.abs(_stream(vocoder, mel, chunk_frames) - offline).max() <= ATOL, chunk_frames


def test_audio_is_released_as_soon_as_its_look_ahead_arrives(random_mel):
    vocoder = _vocoder("debug_resblock2")
    stream = StreamingVocoder(vocoder)
    right = stream.context.right
    emitted = 0
    for i, frame in enumerate(split_frames(random_mel, 1)):
        emitted += stream.push(frame).size
        assert emitted == max(0, i + 1 - right) * vocoder.hop_length
    assert emitted + stream.flush().size == FRAMES * vocoder.hop_length


def test_utterance_shorter_than_the_look_ahead(random_mel):
    vocoder = _vocoder("v1_shaped_resblock1")
    mel = random_mel[:3]
    pieces = list(vocoder.stream(split_frames(mel, 1)))
    assert len(pieces) == 1  # everything at the end of the stream
    assert np.abs(pieces[0] - vocoder(mel)).max() <= ATOL


def test_stream_restarts_for_each_utterance(random_mel):
    vocoder = _vocoder("debug_resblock2")
    stream = StreamingVocoder(vocoder)
    first = np.concatenate(list(stream.stream(split_frames(random_mel, 7))))
    second = np.concatenate(list(stream.stream(split_frames(random_mel[:40], 7))))
    assert np.abs(first - vocoder(random_mel)).max() <= ATOL
    assert np.abs(second - vocoder(random_mel[:40])).max() <= ATOL


def test_stream_with_a_contract_denormalises_each_chunk(random_mel, tmp_path):
    vocoder = _vocoder("debug_resblock2")
    rng = np.random.default_rng(1)
    feats = rng.normal(-4.0, 1.5, size=(300, N_MELS))
    stats = tmp_path / "feats_stats.npz"
    np.savez(stats, count=np.array(len(feats)), sum=feats.sum(0), sum_square=(feats**2).sum(0))
    tts = dataclasses.replace(vocoder.contract, normalize=Normalization.from_stats_file(stats))
    normalised = ((random_mel - feats.mean(0)) / feats.std(0)).astype(np.float32)
    offline = vocoder(normalised, contract=tts)
    assert np.abs(offline - vocoder(random_mel)).max() <= ATOL  # de-normalised: the raw mel's audio
    streamed = np.concatenate(list(vocoder.stream(split_frames(normalised, 7), contract=tts)))
    assert np.abs(streamed - offline).max() <= ATOL


def test_bad_chunk_names_its_index(random_mel):
    vocoder = _vocoder("debug_resblock2")
    chunks = [random_mel[:5], random_mel[5:10, :40]]
    with pytest.raises(ValueError, match=r"mel chunk 1 has shape \(5, 40\)"):
        list(vocoder.stream(chunks))


# ----------------------------------------------------------------------------- voc_inference
def test_chunked_synthesis_equals_offline_before_quantisation(random_mel):
    vocoder = _vocoder("debug_resblock2")
    offline = vocoder(random_mel)
    for chunk_frames in (1, 7, 32):
        assert np.abs(synthesise_in_chunks(vocoder, random_mel, chunk_frames) - offline).max() <= ATOL


def _decode(tmp_path: Path, feats_scp: Path, name: str, *extra: str) -> Dict[str, np.ndarray]:
    out = tmp_path / name
    voc_inference.main(
        ["--train_config", str(tmp_path / "exp" / "config.yaml"), "--model_file", str(tmp_path / "exp" / "model.pth"),
         "--feats_scp", str(feats_scp), "--output_dir", str(out), *extra,
         # random mels, placeholder statistics (mean 0, std 1): declared raw, statistics not compared
         "--assume_raw_features", "true", "--check_feats_stats", "false"]
    )
    wavs = {}
    for line in (out / "wav.scp").read_text().splitlines():
        utt, path = line.split()
        wavs[utt], _ = sf.read(path, dtype="int16")
    return wavs


def test_voc_inference_chunk_frames_writes_the_offline_wavs(tmp_path, random_mel):
    vocoder = _vocoder("debug_resblock2")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "config.yaml").write_text(yaml.safe_dump(vocoder.config))
    torch.save(_state("debug_resblock2"), tmp_path / "exp" / "model.pth")
    feats_scp = tmp_path / "feats.scp"
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/feats.ark,{feats_scp}") as writer:
        writer("utt_a", random_mel)
        writer("utt_b", random_mel[:23])
    offline = _decode(tmp_path, feats_scp, "offline")
    streamed = _decode(tmp_path, feats_scp, "streamed", "--chunk_frames", "7")
    assert sorted(streamed) == sorted(offline) == ["utt_a", "utt_b"]
    for utt, wav in offline.items():
        assert np.abs(wav).max() > 1000  # not silence
        assert wav.shape == streamed[utt].shape
        assert np.abs(wav.astype(np.int32) - streamed[utt]).max() <= 1  # within 1 LSB
    with pytest.raises(SystemExit):
        voc_inference.main(["--model_file", "x.zip", "--feats_scp", str(feats_scp), "--output_dir",
                            str(tmp_path / "bad"), "--chunk_frames", "-1"])
    assert not (tmp_path / "bad").exists()


def test_reordered_weights_are_kept_for_the_steady_chunk_sizes(random_mel):
    """One engine streaming five chunk sizes in turn: exact at each; oneDNN's reordered weights (where this
    torch has them) are kept for the last four steady sizes, not for a last chunk or a flush."""
    vocoder = _vocoder("v1_shaped_resblock1")
    engine = StreamEngine(vocoder.generator, vocoder.engine)
    stream = StatefulGeneratorStream(vocoder.generator, stream_engine=engine)
    mel = vocoder.normalize(torch.from_numpy(random_mel))
    offline = vocoder(random_mel)
    assert stream.flush_frames == 13 and FRAMES % 12 == 1  # neither the flush nor a last chunk repeats a size
    for chunk_frames in (3, 8, 12, 32, 5):
        with torch.no_grad():
            wav = torch.cat([stream.push(chunk) for chunk in split_frames(mel, chunk_frames)] + [stream.flush()])
        assert np.abs(wav.numpy() - offline).max() <= ATOL, chunk_frames
    if stateful_stream._PACKED:
        assert list(engine._packed) == [8, 12, 32, 5]
        assert all(engine._packed.values())  # each holds reordered weights


def test_interleaved_streams_of_two_chunk_sizes_each_keep_reordered_weights(random_mel):
    """Two streams of one engine alternating chunk by chunk (8 and 12 frames): each stream's size is steady
    for it, though the engine never sees one size twice in a row; both exact."""
    vocoder = _vocoder("v3_shaped_resblock2")
    engine = StreamEngine(vocoder.generator, vocoder.engine)
    streams = [StatefulGeneratorStream(vocoder.generator, stream_engine=engine) for _ in range(2)]
    mel = vocoder.normalize(torch.from_numpy(random_mel))
    chunks = [list(split_frames(mel, 8)), list(split_frames(mel, 12))]
    outs = [[], []]
    with torch.no_grad():
        for i in range(max(map(len, chunks))):
            for s, stream in enumerate(streams):
                if i < len(chunks[s]):
                    outs[s].append(stream.push(chunks[s][i]))
        for s, stream in enumerate(streams):
            wav = torch.cat(outs[s] + [stream.flush()])
            assert np.abs(wav.numpy() - vocoder(random_mel)).max() <= ATOL, s
    if stateful_stream._PACKED:
        assert set(engine._packed) == {8, 12} and all(engine._packed.values())
