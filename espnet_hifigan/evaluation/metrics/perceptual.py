"""Intrusive perceptual metrics: wide-band PESQ (``pesq``) and STOI (``pystoi``)."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from espnet_hifigan.evaluation.metrics.signal import as_waveform, resample

# ITU-T P.862.2 wide-band PESQ operates on 16 kHz audio.
PESQ_WB_FS = 16000
PESQ_WB_MODE = "wb"
# Score range of the wide-band MOS-LQO mapping (identical signals give the maximum).
PESQ_WB_MIN = 1.04
PESQ_WB_MAX = 4.644
# Peak below which a signal is digitally silent (under one 16-bit step): PESQ is undefined for it
# (the pesq package fails inside with "cannot convert float NaN to integer").
SILENCE_PEAK = 1.0 / 32768
# Start of the warning pystoi emits when it cannot compute STOI.
PYSTOI_TOO_SHORT_MESSAGE = "Not enough STFT frames"

logger = logging.getLogger(__name__)


def pesq_wb(ref: np.ndarray, gen: np.ndarray, fs: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2), MOS-LQO scale.

    Both signals are resampled to 16 kHz (polyphase) before scoring.  **Higher is
    better**; range about ``[1.04, 4.64]``.

    Args:
        ref: Reference waveform, shape ``(T,)``.
        gen: Generated waveform, shape ``(T,)`` (frame-aligned with ``ref``).
        fs: Sampling rate in Hz (at least 16000).

    Returns:
        PESQ-WB score, or ``nan`` (with a warning) when it is undefined: a silent reference or
        generated signal, no speech found in the reference, or a NaN inside PESQ.

    Raises:
        ValueError: If ``fs`` is below 16 kHz, or PESQ fails otherwise.
    """
    from pesq import NoUtterancesError, PesqError, pesq

    if fs < PESQ_WB_FS:
        raise ValueError(f"wide-band PESQ needs fs >= {PESQ_WB_FS} Hz, got {fs}")
    ref16 = resample(as_waveform(ref, "reference"), fs, PESQ_WB_FS)
    gen16 = resample(as_waveform(gen, "generated"), fs, PESQ_WB_FS)
    for role, signal in (("reference", ref16), ("generated", gen16)):
        if not np.any(np.abs(signal) >= SILENCE_PEAK):
            logger.warning("PESQ undefined: the %s audio is silent", role)
            return math.nan
    try:
        return float(pesq(PESQ_WB_FS, ref16, gen16, PESQ_WB_MODE))
    except NoUtterancesError as e:
        logger.warning("PESQ undefined: no speech found (%s)", e)
        return math.nan
    except PesqError as e:
        raise ValueError(f"PESQ failed ({type(e).__name__}: {e})") from e
    except ValueError as e:  # a NaN inside PESQ (near-silent audio): "cannot convert float NaN to integer"
        if "nan" not in str(e).lower():
            raise
        logger.warning("PESQ undefined: %s", e)
        return math.nan


def stoi(ref: np.ndarray, gen: np.ndarray, fs: int, extended: bool = False) -> float:
    """Short-time objective intelligibility (Taal et al. 2011), via ``pystoi``.

    ``pystoi`` resamples to 10 kHz and removes silent frames of the reference itself.
    **Higher is better**; STOI lies in ``[0, 1]`` in practice (1 = identical), extended
    STOI (``extended=True``) can be slightly negative.

    Args:
        ref: Reference waveform, shape ``(T,)``.
        gen: Generated waveform, shape ``(T,)`` (same length as ``ref``).
        fs: Sampling rate in Hz.
        extended: Compute ESTOI instead of STOI.

    Returns:
        (E)STOI score, or ``nan`` when the reference has too few non-silent frames
        (``pystoi`` would warn and return a placeholder ``1e-5``).
    """
    from pystoi import stoi as _stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(
            _stoi(as_waveform(ref, "reference"), as_waveform(gen, "generated"), fs, extended)
        )
    for w in caught:
        if PYSTOI_TOO_SHORT_MESSAGE in str(w.message):
            logger.warning("STOI undefined: %s", w.message)
            return math.nan
    return value
