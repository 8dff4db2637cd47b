"""Global mean-variance normalisation from statistics we hold as tensors or bytes.

A trained vocoder carries its normalisation as ``normalize.mean``/``normalize.std`` buffers (ESPnet's
``GlobalMVN`` in training); an imported one (ParallelWaveGAN ``stats.npy``, a gan_tts model) as
mean/scale arrays. ESPnet's ``GlobalMVN`` reads a ``feats_stats.npz`` (count, sum, sum_square), so
:func:`stats_npz_bytes` writes one that reproduces a mean and std (packed models ship it), and
:class:`FeatureNorm` applies the statistics at inference.
"""

from __future__ import annotations

import io
from typing import Union

import numpy as np
import torch

# The name ESPnet's collect_stats gives the statistics.
STATS_FILE = "feats_stats.npz"


def stats_npz_bytes(mean: np.ndarray, std: np.ndarray) -> bytes:
    """ESPnet ``feats_stats.npz`` (count/sum/sum_square) reproducing ``mean`` and ``std``."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    buffer = io.BytesIO()
    np.savez(buffer, count=np.array(1.0), sum=mean, sum_square=std**2 + mean**2)
    return buffer.getvalue()


def global_mvn(feats: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, norm_means: bool, norm_vars: bool) -> torch.Tensor:
    """``(feats - mean) / std`` (..., n_mels), each part where asked: GlobalMVN's operations in its order (same numbers)."""
    if norm_means:
        feats = feats - mean
    if norm_vars:
        feats = feats / std
    return feats


class FeatureNorm:
    """The vocoder's global mean-variance normalisation at inference: ``(x - mean) / std``.

    It computes what ESPnet's ``GlobalMVN`` (which trains with it: ``tasks/vocoder.py``) computes
    on one unpadded utterance, without importing ``espnet2.layers.global_mvn``: that import pulls
    in ``torch._dynamo`` and costs ~1.3 s of start-up in every decoding job.

    Args:
        mean: Mean (n_mels,).
        std: Standard deviation (n_mels,).
        norm_means: Subtract the mean.
        norm_vars: Divide by the standard deviation.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, norm_means: bool = True, norm_vars: bool = True):
        self.mean = torch.as_tensor(mean).float().reshape(-1)
        self.std = torch.as_tensor(std).float().reshape(-1)
        self.norm_means = norm_means
        self.norm_vars = norm_vars

    def to(self, device: Union[str, torch.device]) -> "FeatureNorm":
        """Move the statistics to ``device`` (in place); returns self."""
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        """Normalise raw features (..., n_mels); returns a new tensor."""
        return global_mvn(feats, self.mean, self.std, self.norm_means, self.norm_vars)
