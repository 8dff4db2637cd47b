"""Objective metrics on known cases: identity, noise at falling SNR, pitch shift, DTW."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_hifigan.evaluation.metrics import (
    DEFAULT_METRICS,
    METRICS,
    ScoreOptions,
    extract_f0,
    higher_is_better,
    log_f0_rmse,
    log_f0_rmse_from_f0,
    mel_cepstral_distortion,
    multi_resolution_stft_distance,
    parse_metric_names,
    score_pair,
    trim_to_common_length,
    vuv_error_from_f0,
)
from espnet_hifigan.evaluation.metrics.perceptual import PESQ_WB_MAX
from espnet_hifigan.evaluation.plots import (
    plot_metric_curves,
    plot_spectrogram_pair,
    read_metric_rows,
)

SNRS_DB = (30.0, 20.0, 10.0, 0.0)
SEMITONE = 2.0 ** (1.0 / 12.0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Crop of a real utterance used where speech matters (PESQ/STOI need speech).
SPEECH_OFFSET_S = 0.3
SPEECH_SECONDS = 3.0


@pytest.fixture(scope="module")
def speech(ljspeech_mini: Path):
    """A 3 s LJSpeech excerpt (22.05 kHz) as (wav, fs)."""
    wav, fs = sf.read(ljspeech_mini / "wavs" / "LJ001-0002.wav", dtype="float64")
    start = int(SPEECH_OFFSET_S * fs)
    return wav[start : start + int(SPEECH_SECONDS * fs)], fs


def add_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """x plus white Gaussian noise at the given SNR."""
    noise = np.random.default_rng(seed).standard_normal(len(x))
    noise *= math.sqrt(np.mean(x**2) / np.mean(noise**2) / 10.0 ** (snr_db / 10.0))
    return x + noise


def harmonic_tone(f0: float, fs: int = 16000, seconds: float = 1.0, n_harmonics: int = 10) -> np.ndarray:
    """A steady voiced-like tone: harmonics of f0 with 1/k amplitudes, peak ~0.5."""
    t = np.arange(int(fs * seconds)) / fs
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, n_harmonics + 1))
    return 0.5 * x / np.max(np.abs(x))


def test_registry_directions_and_defaults():
    assert set(DEFAULT_METRICS) <= set(METRICS)
    assert higher_is_better("pesq") and higher_is_better("stoi")
    for name in ("mcd", "mcd_dtw", "log_f0_rmse", "vuv_error", "mrstft", "feats_mel_l1"):
        assert not higher_is_better(name)
    assert parse_metric_names("mcd, pesq,mcd") == ["mcd", "pesq"]
    with pytest.raises(ValueError, match="unknown metric 'mdc'"):
        parse_metric_names("mdc")


def test_identical_signals_score_perfectly(speech):
    x, fs = speech
    scores = score_pair(x, x.copy(), fs, metrics=list(METRICS))
    for name in ("mcd", "mcd_dtw", "log_f0_rmse", "vuv_error", "mrstft", "mrstft_sc", "mrstft_mag", "feats_mel_l1"):
        assert scores[name] == pytest.approx(0.0, abs=1e-6), name
    assert scores["pesq"] == pytest.approx(PESQ_WB_MAX, abs=0.01)
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-4)
    assert scores["estoi"] == pytest.approx(1.0, abs=1e-4)


def test_noise_degrades_every_metric_monotonically(speech):
    x, fs = speech
    metrics = ["mcd", "pesq", "stoi", "mrstft", "feats_mel_l1"]
    rows = [score_pair(x, add_noise(x, snr), fs, metrics=metrics) for snr in SNRS_DB]
    for name in metrics:
        values = [row[name] for row in rows]
        steps = np.diff(values)
        if higher_is_better(name):
            assert np.all(steps < 0), f"{name} should fall as SNR falls: {values}"
        else:
            assert np.all(steps > 0), f"{name} should rise as SNR falls: {values}"
    # 0 dB white noise is clearly audible: far from the identity scores.
    assert rows[-1]["pesq"] < 2.0 and rows[-1]["stoi"] < 0.95 and rows[-1]["mcd"] > 5.0


def test_semitone_shift_gives_100_cents():
    fs, f0 = 16000, 150.0
    ref, gen = harmonic_tone(f0, fs), harmonic_tone(f0 * SEMITONE, fs)
    value = log_f0_rmse(ref, gen, fs)
    assert value == pytest.approx(100.0, abs=5.0)
    scores = score_pair(ref, gen, fs, metrics=["log_f0_rmse", "vuv_error"])
    assert scores["log_f0_rmse"] == pytest.approx(100.0, abs=5.0)
    assert scores["vuv_error"] < 5.0
    f0_ref = extract_f0(ref, fs)
    voiced = f0_ref[f0_ref > 0]
    assert np.median(voiced) == pytest.approx(f0, rel=0.01)


def test_f0_metric_definitions():
    ref = np.array([0.0, 100.0, 100.0, 200.0, 0.0])
    gen = np.array([0.0, 200.0, 100.0, 0.0, 150.0])
    # voiced in both: frames 1 (+1200 cents) and 2 (0 cents)
    assert log_f0_rmse_from_f0(ref, gen) == pytest.approx(math.sqrt(1200.0**2 / 2))
    # decisions differ on frames 3 and 4 of 5
    assert vuv_error_from_f0(ref, gen) == pytest.approx(40.0)
    assert math.isnan(log_f0_rmse_from_f0(np.zeros(4), gen[:4]))


def test_dtw_mcd_not_above_aligned_on_shifted_signal(speech):
    x, fs = speech
    shift = int(0.03 * fs)
    shifted = np.concatenate([np.zeros(shift), x[:-shift]])  # same length, 30 ms late
    aligned = mel_cepstral_distortion(x, shifted, fs, use_dtw=False)
    warped = mel_cepstral_distortion(x, shifted, fs, use_dtw=True)
    assert warped <= aligned
    assert warped < 0.5 * aligned  # DTW undoes most of a pure delay


def test_dtw_mcd_accepts_different_lengths(speech):
    x, fs = speech
    slower = x[: len(x) // 2]
    scores = score_pair(x, slower, fs, metrics=["mcd_dtw"])
    assert math.isfinite(scores["mcd_dtw"]) and scores["mcd_dtw"] > 0


@pytest.mark.parametrize("extra", [100, -100])
def test_small_length_mismatch_is_trimmed(speech, extra):
    x, fs = speech
    gen = np.concatenate([x, np.zeros(extra)]) if extra > 0 else x[:extra]
    scores = score_pair(x, gen, fs, metrics=["mcd", "mrstft", "feats_mel_l1", "stoi"])
    if extra > 0:  # the extra tail is dropped, what remains is identical
        assert scores["mrstft"] == pytest.approx(0.0, abs=1e-6)
        assert scores["feats_mel_l1"] == pytest.approx(0.0, abs=1e-6)
        assert scores["stoi"] == pytest.approx(1.0, abs=1e-4)
    assert all(math.isfinite(v) for v in scores.values())
    ref_t, gen_t = trim_to_common_length(x, gen, fs)
    assert len(ref_t) == len(gen_t) == min(len(x), len(gen))


def test_large_length_mismatch_is_an_error_for_aligned_metrics(speech):
    x, fs = speech
    with pytest.raises(ValueError, match="mcd_dtw"):
        score_pair(x, x[: len(x) // 2], fs, metrics=["mcd"])
    # an explicit None tolerance trims whatever the difference
    options = ScoreOptions(max_length_diff_s=None)
    scores = score_pair(x, x[: len(x) // 2], fs, metrics=["mrstft"], options=options)
    assert scores["mrstft"] == pytest.approx(0.0, abs=1e-6)


def test_invalid_waveforms_are_rejected():
    fs = 16000
    tone = harmonic_tone(150.0, fs)
    with pytest.raises(ValueError, match="empty"):
        score_pair(np.zeros(0), tone, fs, metrics=["mrstft"])
    with pytest.raises(ValueError, match="NaN"):
        score_pair(tone, np.full_like(tone, np.nan), fs, metrics=["mrstft"])
    with pytest.raises(ValueError, match="mono"):
        score_pair(np.stack([tone, tone], 1), tone, fs, metrics=["mrstft"])
    with pytest.raises(ValueError, match="16000"):
        score_pair(tone[::2], tone[::2], fs // 2, metrics=["pesq"])


def test_mrstft_resolutions_are_parameters():
    fs = 16000
    x = harmonic_tone(150.0, fs)
    y = add_noise(x, 20.0)
    one = multi_resolution_stft_distance(x, y, resolutions=((256, 64, 256),))
    three = multi_resolution_stft_distance(x, y)
    assert one.total > 0 and three.total > 0 and one.total != three.total
    assert one.total == pytest.approx(one.spectral_convergence + one.log_magnitude_l1)
    with pytest.raises(ValueError, match="too short"):
        multi_resolution_stft_distance(x[:100], y[:100])


def test_plots_write_png(speech, tmp_path):
    x, fs = speech
    plot_spectrogram_pair(x, add_noise(x, 10.0), fs, tmp_path / "sub" / "pair.png", title="utt")
    rows = [{"step": s, "mcd": 5.0 - s / 1000, "pesq": 2.0 + s / 1000} for s in (1000, 2000, 3000)]
    plot_metric_curves(rows, tmp_path / "curves.png")
    for name in ("sub/pair.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    tsv = tmp_path / "curves.tsv"
    tsv.write_text("step\tmcd\n1000\t5.0\n2000\t4.0\n")
    assert [float(r["mcd"]) for r in read_metric_rows(tsv)] == [5.0, 4.0]
