"""The input normalisation of the exported graphs (offline and streaming): ESPnet's GlobalMVN folded in."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from espnet_hifigan.nets.mvn import global_mvn

__all__ = ["MelNormalising"]


class MelNormalising(nn.Module):
    """An exported graph's input normalisation: ESPnet's GlobalMVN as buffers ``mean``/``std`` (n_mels,).

    Args:
        n_mels: Mel channels.
        mean: Mean subtracted from the input (n_mels,), or ``None``.
        std: Standard deviation the input is divided by (n_mels,), or ``None``.
    """

    def __init__(self, n_mels: int, mean: Optional[torch.Tensor], std: Optional[torch.Tensor]):
        super().__init__()
        self.norm_means, self.norm_vars = mean is not None, std is not None
        self.register_buffer("mean", torch.zeros(n_mels) if mean is None else mean.detach().float().cpu().clone())
        self.register_buffer("std", torch.ones(n_mels) if std is None else std.detach().float().cpu().clone())

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Raw log-mel (..., n_mels) -> normalised (:func:`~espnet_hifigan.nets.mvn.global_mvn`)."""
        return global_mvn(x, self.mean, self.std, self.norm_means, self.norm_vars)
