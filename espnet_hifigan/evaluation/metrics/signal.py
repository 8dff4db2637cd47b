"""Waveform checks, resampling and length alignment shared by all metrics.

Conventions used by every metric in :mod:`espnet_hifigan.evaluation.metrics`:

* Waveforms are 1-D ``float64`` NumPy arrays of shape ``(T,)`` in the range
  ``[-1, 1]`` (what ``soundfile.read`` returns for PCM files).
* Copy synthesis compares a reference ``ref`` with a generated ``gen`` waveform of
  (almost) the same length.  A vocoder returns ``frames * hop`` samples while the
  reference has its original length, so the two may differ by up to about one hop.
  Frame-aligned metrics trim both signals to the shorter length (the extra tail is
  dropped, never padded): see :func:`trim_to_common_length`.
"""

from __future__ import annotations

import logging
import math
from typing import Optional, Tuple

import numpy as np
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

# Default tolerated length difference for frame-aligned metrics, in seconds.  A vocoder
# output differs from its reference by less than one hop (~12 ms at 22.05 kHz / hop 256),
# so 50 ms catches mismatched pairs (wrong utterance, TTS output) without tripping on
# padding conventions.
DEFAULT_MAX_LENGTH_DIFF_S = 0.05


def as_waveform(x: np.ndarray, name: str = "signal") -> np.ndarray:
    """Validate and convert a waveform to a contiguous 1-D ``float64`` array.

    Args:
        x: Waveform, shape ``(T,)`` (a ``(T, 1)`` array is squeezed).
        name: Name used in error messages (e.g. ``"reference"``).

    Returns:
        The waveform as ``float64``, shape ``(T,)``.

    Raises:
        ValueError: If the array is not mono, is empty, or contains NaN/Inf.
    """
    arr = np.asarray(x)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a mono waveform of shape (T,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: waveform is empty (0 samples)")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: waveform contains NaN or Inf values")
    return arr


def resample(x: np.ndarray, orig_fs: int, target_fs: int) -> np.ndarray:
    """Resample with a polyphase filter (``scipy.signal.resample_poly``).

    Args:
        x: Waveform, shape ``(T,)``.
        orig_fs: Sampling rate of ``x`` in Hz.
        target_fs: Wanted sampling rate in Hz.

    Returns:
        Resampled waveform, shape ``(ceil(T * target_fs / orig_fs),)``.
    """
    orig_fs, target_fs = int(orig_fs), int(target_fs)
    if orig_fs <= 0 or target_fs <= 0:
        raise ValueError(f"sampling rates must be positive, got {orig_fs} -> {target_fs}")
    if orig_fs == target_fs:
        return x
    g = math.gcd(orig_fs, target_fs)
    return resample_poly(x, target_fs // g, orig_fs // g)


def trim_to_common_length(
    ref: np.ndarray,
    gen: np.ndarray,
    fs: int,
    max_length_diff_s: Optional[float] = DEFAULT_MAX_LENGTH_DIFF_S,
) -> Tuple[np.ndarray, np.ndarray]:
    """Trim two waveforms to the shorter of the two lengths (frame alignment).

    The tail of the longer signal is discarded; nothing is padded and nothing is
    shifted, so sample ``t`` of ``ref`` stays aligned with sample ``t`` of ``gen``.

    Args:
        ref: Reference waveform, shape ``(T_ref,)``.
        gen: Generated waveform, shape ``(T_gen,)``.
        fs: Sampling rate in Hz (only used to express the tolerance).
        max_length_diff_s: Largest tolerated ``|T_ref - T_gen|`` in seconds; ``None``
            disables the check.

    Returns:
        ``(ref, gen)`` both of shape ``(min(T_ref, T_gen),)``.

    Raises:
        ValueError: If the length difference exceeds ``max_length_diff_s``.
    """
    diff = abs(len(ref) - len(gen))
    if max_length_diff_s is not None and diff > max_length_diff_s * fs:
        raise ValueError(
            f"reference has {len(ref)} samples but generated has {len(gen)} "
            f"({diff / fs:.3f} s apart, more than the {max_length_diff_s} s tolerated for "
            "frame-aligned metrics); use a DTW metric (mcd_dtw) for outputs of a "
            "different length"
        )
    if diff:
        logger.debug("trimming %d samples to align lengths %d/%d", diff, len(ref), len(gen))
    n = min(len(ref), len(gen))
    return ref[:n], gen[:n]
