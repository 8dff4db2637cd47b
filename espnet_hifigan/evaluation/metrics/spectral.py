"""Spectral metrics: mel-cepstral distortion, multi-resolution STFT distance, mel L1.

Mel-cepstra follow the usual WORLD/SPTK recipe for vocoder evaluation: F0 by DIO +
StoneMask, the pitch-adaptive spectral envelope by CheapTrick (``pyworld``), then
SPTK's ``sp2mc`` (``pysptk``) with the all-pass constant chosen for the sampling rate
(``pysptk.util.mcepalpha``: 0.41 at 16 kHz, 0.455 at 22.05 kHz, 0.466 at 24 kHz,
0.554 at 48 kHz).  CheapTrick removes the harmonic ripple a plain periodogram would
leave, and all steps are deterministic.  (SPTK's iterative ``mcep`` on fixed frames
gives similar values but is about 4x slower.)
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from espnet_hifigan.evaluation.metrics import pitch
from espnet_hifigan.evaluation.metrics.pitch import _import_quietly
from espnet_hifigan.evaluation.metrics.signal import as_waveform

# ----------------------------------------------------------------------------- MCD
DEFAULT_MCEP_ORDER = 24  # c1..c24 are compared; c0 (energy) is excluded
# CheapTrick's lower F0 bound (WORLD default); it also sets the FFT size
# (1024 points at 16-24 kHz).
CHEAPTRICK_F0_FLOOR_HZ = 71.0
# 10 / ln(10) * sqrt(2): converts the Euclidean cepstral distance to dB.
MCD_DB_FACTOR = 10.0 / math.log(10.0) * math.sqrt(2.0)

# --------------------------------------------------------------------------- MRSTFT
# (n_fft, hop_length, win_length) in samples, as in Parallel WaveGAN / HiFi-GAN papers.
DEFAULT_STFT_RESOLUTIONS: Tuple[Tuple[int, int, int], ...] = (
    (512, 128, 512),
    (1024, 256, 1024),
    (2048, 512, 2048),
)
# Floor of the power spectrum before the square root (as in Parallel WaveGAN's loss).
STFT_POWER_FLOOR = 1.0e-7

# --------------------------------------------------------------------------- mel L1
# LogMelSpectrogram arguments used when none are given (HiFi-GAN at 22.05 kHz, ESPnet
# conventions).  ``fmax`` is lowered to fs/2 when the sampling rate is too low for it.
DEFAULT_MEL_CONF: Dict[str, Any] = dict(
    n_fft=1024, hop_length=256, win_length=None, n_mels=80, fmin=80.0, fmax=7600.0
)


def mcep_alpha(fs: int) -> float:
    """All-pass constant approximating the mel scale at ``fs`` Hz (SPTK convention)."""
    return float(_import_quietly("pysptk").util.mcepalpha(fs))


def extract_mcep(
    x: np.ndarray,
    fs: int,
    order: int = DEFAULT_MCEP_ORDER,
    alpha: Optional[float] = None,
    f0: Optional[np.ndarray] = None,
    frame_shift_s: float = pitch.DEFAULT_F0_FRAME_SHIFT_S,
    **f0_kwargs: Any,
) -> np.ndarray:
    """Mel-cepstra of the WORLD (CheapTrick) spectral envelope.

    Args:
        x: Waveform in ``[-1, 1]``, shape ``(T,)``.
        fs: Sampling rate in Hz.
        order: Mel-cepstrum order (``order + 1`` coefficients, c0 included).
        alpha: All-pass constant; ``None`` picks :func:`mcep_alpha` for ``fs``.
        f0: F0 contour of ``x`` from :func:`~espnet_hifigan.evaluation.metrics.pitch.extract_f0`
            with the same ``frame_shift_s``; ``None`` computes it.
        frame_shift_s: Frame shift in seconds.
        **f0_kwargs: Passed to :func:`~espnet_hifigan.evaluation.metrics.pitch.extract_f0` when
            ``f0`` is ``None``.

    Returns:
        Mel-cepstra, shape ``(frames, order + 1)`` with ``frames = len(f0)``.
    """
    pw = _import_quietly("pyworld")
    pysptk = _import_quietly("pysptk")
    x = as_waveform(x)
    alpha = mcep_alpha(fs) if alpha is None else float(alpha)
    if f0 is None:
        f0 = pitch.extract_f0(x, fs, frame_shift_s=frame_shift_s, **f0_kwargs)
    f0 = np.ascontiguousarray(f0, dtype=np.float64)
    times = np.arange(len(f0), dtype=np.float64) * frame_shift_s
    envelope = pw.cheaptrick(x, f0, times, fs, f0_floor=CHEAPTRICK_F0_FLOOR_HZ)
    return np.asarray(pysptk.sp2mc(envelope, order=order, alpha=alpha), dtype=np.float64)


def mcd_per_frame(ref_mcep: np.ndarray, gen_mcep: np.ndarray) -> np.ndarray:
    """Per-frame mel-cepstral distortion in dB, c0 excluded.

    ``MCD_t = 10 / ln(10) * sqrt(2 * sum_{d >= 1} (c_ref[t, d] - c_gen[t, d])^2)``.

    Args:
        ref_mcep: Reference mel-cepstra, shape ``(N, D + 1)``.
        gen_mcep: Generated mel-cepstra, shape ``(N, D + 1)``.

    Returns:
        Distortion per frame in dB, shape ``(N,)``.
    """
    diff = ref_mcep[:, 1:] - gen_mcep[:, 1:]
    return MCD_DB_FACTOR * np.sqrt(np.sum(diff**2, axis=1))


def mcd_from_mcep(ref_mcep: np.ndarray, gen_mcep: np.ndarray, use_dtw: bool = False) -> float:
    """Mean mel-cepstral distortion in dB between two mel-cepstrum sequences.

    Without DTW, frame ``t`` is compared with frame ``t`` (both cut to the shorter
    sequence).  With DTW (``librosa.sequence.dtw``, Euclidean cost on c1..cD, steps
    (1,1), (1,0), (0,1)), the mean is taken over the pairs of the optimal warping path,
    so for equal lengths it is never larger than the aligned value.

    Args:
        ref_mcep: Reference mel-cepstra, shape ``(N, D + 1)``.
        gen_mcep: Generated mel-cepstra, shape ``(M, D + 1)``.
        use_dtw: Align the sequences with dynamic time warping first.

    Returns:
        Mean MCD in dB (**lower is better**, 0 = identical).
    """
    if use_dtw:
        import librosa

        _, path = librosa.sequence.dtw(
            X=np.ascontiguousarray(ref_mcep[:, 1:].T),
            Y=np.ascontiguousarray(gen_mcep[:, 1:].T),
            metric="euclidean",
        )
        ref_mcep, gen_mcep = ref_mcep[path[:, 0]], gen_mcep[path[:, 1]]
    else:
        n = min(len(ref_mcep), len(gen_mcep))
        ref_mcep, gen_mcep = ref_mcep[:n], gen_mcep[:n]
    return float(np.mean(mcd_per_frame(ref_mcep, gen_mcep)))


def mel_cepstral_distortion(
    ref: np.ndarray,
    gen: np.ndarray,
    fs: int,
    use_dtw: bool = False,
    order: int = DEFAULT_MCEP_ORDER,
    alpha: Optional[float] = None,
    **f0_kwargs: Any,
) -> float:
    """Mel-cepstral distortion (MCD) in dB between two waveforms.

    ``MCD = mean_t 10 / ln(10) * sqrt(2 * sum_{d=1..order} (c_ref - c_gen)^2)``, c0
    excluded, over all frames (silence included).  Use ``use_dtw=False`` for copy
    synthesis (frame-aligned; pass equal-length signals, see
    :func:`~espnet_hifigan.evaluation.metrics.signal.trim_to_common_length`) and ``use_dtw=True``
    for outputs of a different length (TTS).

    Args:
        ref: Reference waveform, shape ``(T_ref,)``.
        gen: Generated waveform, shape ``(T_gen,)``.
        fs: Sampling rate in Hz.
        use_dtw: Align with DTW instead of frame by frame.
        order: Mel-cepstrum order (24 -> c1..c24 compared).
        alpha: All-pass constant; ``None`` picks the SPTK value for ``fs``.
        **f0_kwargs: F0 analysis settings (``method``, ``f0_min``, ``f0_max``,
            ``frame_shift_s``), see :func:`~espnet_hifigan.evaluation.metrics.pitch.extract_f0`.

    Returns:
        MCD in dB (**lower is better**).
    """
    return mcd_from_mcep(
        extract_mcep(ref, fs, order=order, alpha=alpha, **f0_kwargs),
        extract_mcep(gen, fs, order=order, alpha=alpha, **f0_kwargs),
        use_dtw=use_dtw,
    )


@dataclass(frozen=True)
class STFTDistance:
    """Multi-resolution STFT distance, averaged over resolutions.

    Attributes:
        spectral_convergence: ``||S_ref - S_gen||_F / ||S_ref||_F`` (dimensionless).
        log_magnitude_l1: ``mean |ln S_ref - ln S_gen|`` (natural-log magnitude).
        total: ``spectral_convergence + log_magnitude_l1``.
    """

    spectral_convergence: float
    log_magnitude_l1: float

    @property
    def total(self) -> float:
        return self.spectral_convergence + self.log_magnitude_l1


def _stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    spec = torch.stft(
        x,
        n_fft=n_fft,
        hop_length=hop,
        win_length=win,
        window=torch.hann_window(win, dtype=x.dtype, device=x.device),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = spec.real.pow(2) + spec.imag.pow(2)
    return power.clamp(min=STFT_POWER_FLOOR).sqrt()


def stft_distance_terms(
    ref: torch.Tensor,
    gen: torch.Tensor,
    resolutions: Sequence[Tuple[int, int, int]] = DEFAULT_STFT_RESOLUTIONS,
) -> torch.Tensor:
    """Multi-resolution STFT distance terms of two equal-length waveforms, on their device.

    The one implementation behind :func:`multi_resolution_stft_distance` (the scorer) and the
    model's full-utterance validation metric; nothing is read back to the host.

    Args:
        ref: Reference waveform, shape ``(T,)``.
        gen: Generated waveform, shape ``(T,)``, same dtype and device.
        resolutions: ``(n_fft, hop_length, win_length)`` settings in samples.

    Returns:
        ``(spectral convergence, log-magnitude L1)`` averaged over resolutions, shape ``(2,)``.

    Raises:
        ValueError: If the lengths differ, a resolution is invalid or the signal is too short.
    """
    if ref.shape != gen.shape or ref.dim() != 1:
        raise ValueError(
            f"waveforms must be 1-D of equal length, got {tuple(ref.shape)} and {tuple(gen.shape)}; trim them first"
        )
    if not resolutions:
        raise ValueError("at least one STFT resolution is needed")
    terms = []
    for n_fft, hop, win in resolutions:
        if not (0 < hop and 0 < win <= n_fft):
            raise ValueError(f"invalid STFT resolution (n_fft={n_fft}, hop={hop}, win={win})")
        if ref.numel() <= n_fft // 2:
            raise ValueError(
                f"signal of {ref.numel()} samples is too short for an STFT with n_fft={n_fft}"
            )
        ref_mag = _stft_magnitude(ref, n_fft, hop, win)
        gen_mag = _stft_magnitude(gen, n_fft, hop, win)
        sc = torch.linalg.norm(ref_mag - gen_mag) / torch.linalg.norm(ref_mag)
        mag = torch.mean(torch.abs(ref_mag.log() - gen_mag.log()))
        terms.append(torch.stack([sc, mag]))
    return torch.stack(terms).mean(dim=0)


def multi_resolution_stft_distance(
    ref: np.ndarray,
    gen: np.ndarray,
    resolutions: Sequence[Tuple[int, int, int]] = DEFAULT_STFT_RESOLUTIONS,
) -> STFTDistance:
    """Multi-resolution STFT distance between two equal-length waveforms.

    For each ``(n_fft, hop_length, win_length)`` (Hann window, centred frames), the
    spectral convergence and the mean absolute difference of natural-log magnitudes
    are computed; both are averaged over resolutions (in float64, see
    :func:`stft_distance_terms`).  **Lower is better**; 0 means identical magnitudes.

    Args:
        ref: Reference waveform, shape ``(T,)``.
        gen: Generated waveform, shape ``(T,)``.
        resolutions: STFT settings in samples.

    Returns:
        The averaged components; ``.total`` is their sum.

    Raises:
        ValueError: If the lengths differ or a resolution is invalid.
    """
    if len(ref) != len(gen):
        raise ValueError(f"lengths differ ({len(ref)} vs {len(gen)}); trim them first")
    ref_t = torch.from_numpy(as_waveform(ref, "reference"))
    gen_t = torch.from_numpy(as_waveform(gen, "generated"))
    sc, mag = stft_distance_terms(ref_t, gen_t, resolutions).tolist()
    return STFTDistance(spectral_convergence=sc, log_magnitude_l1=mag)


def resolve_mel_conf(fs: int, mel_conf: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Complete :class:`~espnet_hifigan.nets.features.LogMelSpectrogram` arguments for ``fs``.

    Args:
        fs: Sampling rate in Hz.
        mel_conf: Arguments overriding :data:`DEFAULT_MEL_CONF` (``fs`` may be given but
            must then equal ``fs``).

    Returns:
        Keyword arguments including ``fs``.
    """
    conf = dict(DEFAULT_MEL_CONF)
    user = dict(mel_conf or {})
    if "fs" in user and int(user.pop("fs")) != int(fs):
        raise ValueError(f"mel_conf fs does not match the audio sampling rate {fs}")
    conf.update(user)
    if "fmax" not in user and conf["fmax"] is not None and conf["fmax"] > fs / 2.0:
        conf["fmax"] = None
    conf["fs"] = int(fs)
    return conf


@functools.lru_cache(maxsize=8)
def _mel_extractor(conf_json: str):
    from espnet_hifigan.nets.features import LogMelSpectrogram

    return LogMelSpectrogram(**json.loads(conf_json)).eval()


def log_mel(x: np.ndarray, fs: int, mel_conf: Optional[Mapping[str, Any]] = None) -> np.ndarray:
    """Log-mel spectrogram with the project's :class:`LogMelSpectrogram`.

    Args:
        x: Waveform, shape ``(T,)``.
        fs: Sampling rate in Hz.
        mel_conf: LogMelSpectrogram arguments (see :func:`resolve_mel_conf`).

    Returns:
        Log-mel, shape ``(frames, n_mels)``.
    """
    conf = resolve_mel_conf(fs, mel_conf)
    extractor = _mel_extractor(json.dumps(conf, sort_keys=True))
    with torch.no_grad():
        feats, _ = extractor(torch.from_numpy(as_waveform(x)).float().unsqueeze(0))
    return feats[0].numpy()


def mel_l1(
    ref: np.ndarray, gen: np.ndarray, fs: int, mel_conf: Optional[Mapping[str, Any]] = None
) -> float:
    """Mean absolute difference of log-mel spectrograms (mel L1).

    Units are those of the log-mel features (``log10`` of mel energies with the default
    configuration).  Both waveforms must have the same length (frame-aligned).
    **Lower is better**; 0 means identical.

    Args:
        ref: Reference waveform, shape ``(T,)``.
        gen: Generated waveform, shape ``(T,)``.
        fs: Sampling rate in Hz.
        mel_conf: LogMelSpectrogram arguments (see :func:`resolve_mel_conf`).

    Returns:
        Mean over frames and mel bins of ``|logmel_ref - logmel_gen|``.
    """
    if len(ref) != len(gen):
        raise ValueError(f"lengths differ ({len(ref)} vs {len(gen)}); trim them first")
    return float(np.mean(np.abs(log_mel(ref, fs, mel_conf) - log_mel(gen, fs, mel_conf))))
