"""Checks of decoding input that no contract can make: broken utterances and gross feature mismatches.

* :func:`feature_problem` / :func:`audio_problem`: an utterance that cannot be synthesised
  (no frames, NaN/Inf values, audio too short to frame), which would otherwise give a convolution or
  padding error or a full-scale burst.
* :func:`check_feature_statistics`: the input's per-bin mean against the vocoder's own GlobalMVN
  statistics, catching features that are not what their contract (or the user) says they are.
* :func:`torch_ready`: features as float32 that torch can share without a copy or a warning.

Every synthesis entry point (``Vocoder``, its stream, ``OnnxVocoder``, ``ExportedVocoder``) refuses
input by :func:`feature_problem`. This module imports neither torch nor ESPnet: the onnxruntime
vocoder, which must run with numpy and onnxruntime alone, imports it.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np

from espnet_hifigan.contract import ContractError

# Threshold of the statistics check: mean over mel bins of |input mean - vocoder mean| / vocoder std,
# the input pooled over the first STATS_CHECK_UTTS utterances. Measured (LJSpeech mini, 16 kHz and
# 22.05 kHz, vocoder statistics of 16 utterances, the other 8 decoded):
#   matched features            0.04 pooled over 8 utterances, at most 0.16 for a single utterance
#   natural log instead of log10  3.7 - 3.8
#   normalised instead of raw     2.8 - 2.9
#   fmax 8000 instead of 7600     0.07  (indistinguishable from matched: only the contract catches it)
#   fmin 0 instead of 80          0.11 - 0.16 (ditto)
# 1.0 passes matched features with a margin of 6x (single utterance) and stops log-base and
# normalisation mix-ups with a margin of almost 3x.
STATS_CHECK_THRESHOLD = 1.0
STATS_CHECK_UTTS = 8


def feature_problem(feats: np.ndarray) -> Optional[str]:
    """Why features (frames, n_mels) cannot be synthesised, or ``None`` when they can."""
    if feats.ndim >= 1 and feats.shape[0] == 0:
        return "features have 0 frames"
    bad = int(np.size(feats) - np.count_nonzero(np.isfinite(feats)))
    if bad:
        return f"features hold {bad} NaN/Inf values"
    return None


def torch_ready(feats: Any) -> Any:
    """``feats`` as torch can wrap them: a numpy array as writable float32, anything else unchanged.

    Only read-only arrays (kaldiio's views of an ark, ``np.frombuffer``) or other dtypes are copied;
    a writable float32 array is returned as is. Torch warns on read-only memory ("The given NumPy
    array is not writable") because its tensors would share it.
    """
    return np.require(feats, np.float32, ["W"]) if isinstance(feats, np.ndarray) else feats


def audio_problem(wav: np.ndarray, min_samples: int = 1) -> Optional[str]:
    """Why a waveform cannot be copy-synthesised, or ``None`` when it can.

    Args:
        wav: The waveform.
        min_samples: Fewest samples its features can be computed from (the feature extractor's
            ``min_samples``: reflect padding needs more samples than it pads).
    """
    if wav.size == 0:
        return "audio has no samples"
    if wav.size < min_samples:
        return f"audio too short: {wav.size} samples, need at least {min_samples} for its features"
    bad = int(wav.size - np.count_nonzero(np.isfinite(wav)))
    if bad:
        return f"audio holds {bad} NaN/Inf samples"
    return None


def check_feature_statistics(
    feats: Sequence[np.ndarray],
    mean: Optional[np.ndarray],
    std: Optional[np.ndarray],
    source: str,
    threshold: float = STATS_CHECK_THRESHOLD,
) -> Optional[float]:
    """Compare input features with the vocoder's normalisation statistics.

    Args:
        feats: Raw log-mel utterances (frames, n_mels), as the vocoder receives them.
        mean: The vocoder's per-bin mean (``None``: no statistics, the check is skipped).
        std: The vocoder's per-bin standard deviation (``None``: skipped).
        source: The features' origin (the scp) for messages.
        threshold: Largest accepted mean over bins of ``|input mean - mean| / std``.

    Returns:
        The distance measured, or ``None`` when skipped.

    Raises:
        ContractError: the features are grossly unlike the vocoder's training features.
    """
    if mean is None or std is None:
        logging.info(f"{source}: the vocoder has no normalisation statistics; feature statistics not checked")
        return None
    if not feats:
        return None
    pooled = np.concatenate([np.asarray(f, dtype=np.float64) for f in feats])
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.maximum(np.asarray(std, dtype=np.float64).reshape(-1), 1e-5)
    z = (pooled.mean(axis=0) - mean) / std
    distance = float(np.abs(z).mean())
    if distance <= threshold:
        logging.info(
            f"{source}: feature statistics match the vocoder's (mean |z| {distance:.2f} <= {threshold}, "
            f"{len(feats)} utterances)"
        )
        return distance
    ratio = float(np.median(pooled.std(axis=0) / std))
    raise ContractError(
        f"{source}: the features do not look like the vocoder's training features: their per-bin mean is "
        f"{distance:.2f} vocoder standard deviations away (limit {threshold}; matched features: < 0.2) over "
        f"{len(feats)} utterances (input mean {pooled.mean():.2f}, std ratio {ratio:.2f}; vocoder mean "
        f"{mean.mean():.2f}): wrong log base, normalised instead of raw, or other feature settings? Fix the "
        "features or their contract; --check_feats_stats false skips this check"
    )
