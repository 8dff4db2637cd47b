"""Registry of metric names and :func:`score_pair`, which scores one (ref, gen) pair.

Features shared by several metrics (F0 contours, mel-cepstra, STFT distances) are
computed once per pair.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

import numpy as np

from espnet_hifigan.evaluation.metrics import perceptual, pitch, spectral
from espnet_hifigan.evaluation.metrics.signal import (
    DEFAULT_MAX_LENGTH_DIFF_S,
    as_waveform,
    trim_to_common_length,
)


@dataclass(frozen=True)
class ScoreOptions:
    """Analysis settings shared by the metrics (all picklable, for worker processes).

    Attributes:
        mcep_order: Mel-cepstrum order for MCD (c1..c``order`` compared).
        mcep_alpha: All-pass constant; ``None`` = SPTK value for the sampling rate.
        f0_method: ``dio`` or ``harvest`` (WORLD).
        f0_min: Lowest F0 searched, Hz.
        f0_max: Highest F0 searched, Hz.
        frame_shift_s: Frame shift of the WORLD analysis (F0 and mel-cepstra), s.
        stft_resolutions: ``(n_fft, hop, win)`` triples for the MR-STFT distance.
        mel_conf: LogMelSpectrogram arguments for mel L1 (``None`` = defaults), as a
            tuple of ``(key, value)`` pairs so the options stay hashable.
        max_length_diff_s: Largest length difference tolerated by frame-aligned
            metrics, seconds; ``None`` = no check (always trim).
    """

    mcep_order: int = spectral.DEFAULT_MCEP_ORDER
    mcep_alpha: Optional[float] = None
    f0_method: str = pitch.DEFAULT_F0_METHOD
    f0_min: float = pitch.DEFAULT_F0_MIN_HZ
    f0_max: float = pitch.DEFAULT_F0_MAX_HZ
    frame_shift_s: float = pitch.DEFAULT_F0_FRAME_SHIFT_S
    stft_resolutions: Tuple[Tuple[int, int, int], ...] = spectral.DEFAULT_STFT_RESOLUTIONS
    mel_conf: Optional[Tuple[Tuple[str, Any], ...]] = None
    max_length_diff_s: Optional[float] = DEFAULT_MAX_LENGTH_DIFF_S

    @staticmethod
    def freeze_mel_conf(conf: Optional[Mapping[str, Any]]) -> Optional[Tuple[Tuple[str, Any], ...]]:
        """Turn a LogMelSpectrogram argument mapping into the stored tuple form."""
        return None if conf is None else tuple(sorted(dict(conf).items()))


class PairContext:
    """One (reference, generated) pair with lazily computed, shared features.

    Attributes:
        fs: Sampling rate in Hz.
        ref_full: Reference waveform as given, shape ``(T_ref,)``.
        gen_full: Generated waveform as given, shape ``(T_gen,)``.
        options: Analysis settings.
    """

    def __init__(self, ref: np.ndarray, gen: np.ndarray, fs: int, options: ScoreOptions):
        self.fs = int(fs)
        self.ref_full = as_waveform(ref, "reference")
        self.gen_full = as_waveform(gen, "generated")
        self.options = options
        self._aligned: Optional[Tuple[np.ndarray, np.ndarray]] = None

    @property
    def aligned(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(ref, gen)`` trimmed to the shorter length (raises if too different)."""
        if self._aligned is None:
            self._aligned = trim_to_common_length(
                self.ref_full, self.gen_full, self.fs, self.options.max_length_diff_s
            )
        return self._aligned

    def _f0(self, x: np.ndarray) -> np.ndarray:
        o = self.options
        return pitch.extract_f0(
            x, self.fs, method=o.f0_method, f0_min=o.f0_min, f0_max=o.f0_max,
            frame_shift_s=o.frame_shift_s,
        )

    def _mcep(self, x: np.ndarray, f0: np.ndarray) -> np.ndarray:
        o = self.options
        return spectral.extract_mcep(
            x, self.fs, order=o.mcep_order, alpha=o.mcep_alpha, f0=f0,
            frame_shift_s=o.frame_shift_s,
        )

    @functools.cached_property
    def f0_aligned(self) -> Tuple[np.ndarray, np.ndarray]:
        """F0 contours (Hz, 0 = unvoiced) of the trimmed pair, each ``(frames,)``."""
        ref, gen = self.aligned
        return self._f0(ref), self._f0(gen)

    @functools.cached_property
    def mcep_aligned(self) -> Tuple[np.ndarray, np.ndarray]:
        """Mel-cepstra of the trimmed pair, each ``(frames, order + 1)``."""
        (ref, gen), (ref_f0, gen_f0) = self.aligned, self.f0_aligned
        return self._mcep(ref, ref_f0), self._mcep(gen, gen_f0)

    @functools.cached_property
    def mcep_full(self) -> Tuple[np.ndarray, np.ndarray]:
        """Mel-cepstra of the untrimmed pair (for DTW)."""
        return (
            self._mcep(self.ref_full, self._f0(self.ref_full)),
            self._mcep(self.gen_full, self._f0(self.gen_full)),
        )

    @functools.cached_property
    def stft_distance(self) -> spectral.STFTDistance:
        """Multi-resolution STFT distance of the trimmed pair."""
        ref, gen = self.aligned
        return spectral.multi_resolution_stft_distance(ref, gen, self.options.stft_resolutions)

    @property
    def mel_conf(self) -> Optional[Dict[str, Any]]:
        """LogMelSpectrogram arguments as a dict (``None`` = defaults)."""
        return None if self.options.mel_conf is None else dict(self.options.mel_conf)


@dataclass(frozen=True)
class MetricSpec:
    """Description of one registered metric.

    Attributes:
        name: Registry key (column name in outputs).
        higher_is_better: Direction of improvement.
        unit: Unit shown in tables (``""`` if dimensionless).
        description: One-line description.
        frame_aligned: Whether the metric compares the pair sample by sample (and thus
            needs lengths within ``max_length_diff_s``).
        compute: Function of a :class:`PairContext` returning the value (``nan`` when
            undefined for the pair).
    """

    name: str
    higher_is_better: bool
    unit: str
    description: str
    frame_aligned: bool
    compute: Callable[[PairContext], float] = field(repr=False, compare=False)


def _mcd(ctx: PairContext) -> float:
    return spectral.mcd_from_mcep(*ctx.mcep_aligned, use_dtw=False)


def _mcd_dtw(ctx: PairContext) -> float:
    return spectral.mcd_from_mcep(*ctx.mcep_full, use_dtw=True)


def _log_f0_rmse(ctx: PairContext) -> float:
    return pitch.log_f0_rmse_from_f0(*ctx.f0_aligned)


def _vuv_error(ctx: PairContext) -> float:
    return pitch.vuv_error_from_f0(*ctx.f0_aligned)


def _pesq(ctx: PairContext) -> float:
    return perceptual.pesq_wb(*ctx.aligned, ctx.fs)


def _stoi(ctx: PairContext) -> float:
    return perceptual.stoi(*ctx.aligned, ctx.fs, extended=False)


def _estoi(ctx: PairContext) -> float:
    return perceptual.stoi(*ctx.aligned, ctx.fs, extended=True)


def _feats_mel_l1(ctx: PairContext) -> float:
    return spectral.mel_l1(*ctx.aligned, ctx.fs, mel_conf=ctx.mel_conf)


_SPECS = (
    MetricSpec("mcd", False, "dB", "mel-cepstral distortion, frame-aligned, c0 excluded", True, _mcd),
    MetricSpec("mcd_dtw", False, "dB", "mel-cepstral distortion after DTW (TTS)", False, _mcd_dtw),
    MetricSpec("log_f0_rmse", False, "cent", "log-F0 RMSE on frames voiced in both", True,
               _log_f0_rmse),
    MetricSpec("vuv_error", False, "%", "voiced/unvoiced decision error rate", True, _vuv_error),
    MetricSpec("pesq", True, "MOS", "wide-band PESQ at 16 kHz", True, _pesq),
    MetricSpec("stoi", True, "", "short-time objective intelligibility", True, _stoi),
    MetricSpec("estoi", True, "", "extended STOI", True, _estoi),
    MetricSpec("mrstft", False, "", "multi-resolution STFT distance (SC + log-mag L1)", True,
               lambda ctx: ctx.stft_distance.total),
    MetricSpec("mrstft_sc", False, "", "MR-STFT spectral convergence", True,
               lambda ctx: ctx.stft_distance.spectral_convergence),
    MetricSpec("mrstft_mag", False, "", "MR-STFT log-magnitude L1 (natural log)", True,
               lambda ctx: ctx.stft_distance.log_magnitude_l1),
    MetricSpec("feats_mel_l1", False, "", "mean |log-mel difference| of the feature mel "
               "(--mel_conf: log10, 80-7600 Hz by default), not the training loss mel", True, _feats_mel_l1),
)  # fmt: skip

#: All metrics by name.
METRICS: Dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}
#: Metrics scored by default (copy synthesis).
DEFAULT_METRICS: Tuple[str, ...] = (
    "mcd",
    "log_f0_rmse",
    "vuv_error",
    "pesq",
    "stoi",
    "mrstft",
    "feats_mel_l1",
)


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better."""
    return get_metric(name).higher_is_better


def get_metric(name: str) -> MetricSpec:
    """Look up a metric by name.

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
    """
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}") from None


def parse_metric_names(names: str | Iterable[str]) -> List[str]:
    """Parse ``"mcd,pesq"`` (or a list) into validated, de-duplicated metric names."""
    if isinstance(names, str):
        names = names.split(",")
    out: List[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        get_metric(name)
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no metric requested")
    return out


def score_pair(
    ref: np.ndarray,
    gen: np.ndarray,
    fs: int,
    metrics: Optional[Sequence[str]] = None,
    options: Optional[ScoreOptions] = None,
) -> Dict[str, float]:
    """Score one generated waveform against its reference.

    Frame-aligned metrics trim both signals to the shorter length after checking that
    they differ by at most ``options.max_length_diff_s``; ``mcd_dtw`` uses the signals
    as given.

    Args:
        ref: Reference waveform in ``[-1, 1]``, shape ``(T_ref,)``.
        gen: Generated waveform at the same sampling rate, shape ``(T_gen,)``.
        fs: Sampling rate in Hz.
        metrics: Metric names (see :data:`METRICS`); ``None`` = :data:`DEFAULT_METRICS`.
        options: Analysis settings; ``None`` = defaults.

    Returns:
        ``{metric name: value}`` in the requested order (``nan`` where undefined, e.g.
        log-F0 RMSE when no frame is voiced in both).

    Raises:
        ValueError: On invalid waveforms, unknown metrics or too different lengths.
    """
    names = parse_metric_names(DEFAULT_METRICS if metrics is None else metrics)
    ctx = PairContext(ref, gen, fs, options or ScoreOptions())
    if any(METRICS[n].frame_aligned for n in names):
        _ = ctx.aligned  # validate the lengths before any expensive analysis
    return {name: float(METRICS[name].compute(ctx)) for name in names}
