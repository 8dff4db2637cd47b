"""ESPnet's ``GlobalMVN`` built from statistics we hold as tensors or bytes.

A trained vocoder carries its normalisation as ``normalize.mean``/``normalize.std`` buffers; an
imported one (ParallelWaveGAN ``stats.npy``, a gan_tts model) as mean/scale arrays. ESPnet's
``GlobalMVN`` reads a ``feats_stats.npz`` (count, sum, sum_square), so :func:`stats_npz_bytes`
writes one that reproduces a mean and std, and :func:`global_mvn` builds the module with the
exact buffers.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from espnet2.layers.global_mvn import GlobalMVN

# The name ESPnet's collect_stats gives the statistics.
STATS_FILE = "feats_stats.npz"


def stats_npz_bytes(mean: np.ndarray, std: np.ndarray) -> bytes:
    """ESPnet ``feats_stats.npz`` (count/sum/sum_square) reproducing ``mean`` and ``std``."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    buffer = io.BytesIO()
    np.savez(buffer, count=np.array(1.0), sum=mean, sum_square=std**2 + mean**2)
    return buffer.getvalue()


def global_mvn(mean: torch.Tensor, std: torch.Tensor, norm_means: bool = True, norm_vars: bool = True) -> GlobalMVN:
    """ESPnet's ``GlobalMVN`` with exactly these buffers.

    Args:
        mean: Mean (n_mels,).
        std: Standard deviation (n_mels,).
        norm_means: Subtract the mean.
        norm_vars: Divide by the standard deviation.
    """
    mean = torch.as_tensor(mean).float().reshape(-1)
    std = torch.as_tensor(std).float().reshape(-1)
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / STATS_FILE
        stats.write_bytes(stats_npz_bytes(mean.numpy(), std.numpy()))
        module = GlobalMVN(stats, norm_means=norm_means, norm_vars=norm_vars)
    module.load_state_dict({"mean": mean, "std": std})
    return module
