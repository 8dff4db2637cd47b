"""Losses that ESPnet does not already provide.

The adversarial (least-squares) and feature-matching losses are ESPnet's own
(``espnet2.gan_tts.hifigan.loss``); only the mel L1 loss needs our feature extractor so that
its mel can differ from the input mel (``fmax_for_loss``, natural log as in the paper).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from espnet_hifigan.contract.foreign import OFFICIAL_STYLE
from espnet_hifigan.nets.features import LogMelSpectrogram

# Fields of the loss mel that default to the official recipe (natural log, full band).
MEL_LOSS_DEFAULTS: Dict[str, Any] = dict(
    fmin=0.0,
    fmax=None,  # fmax_for_loss: None means fs / 2, as in the official config
    log_base=OFFICIAL_STYLE["log_base"],
    mel_floor=OFFICIAL_STYLE["mel_floor"],
    magnitude_eps=OFFICIAL_STYLE["magnitude_eps"],
    magnitude_eps_mode=OFFICIAL_STYLE["magnitude_eps_mode"],
    padding=OFFICIAL_STYLE["padding"],
)


class MelL1Loss(nn.Module):
    """L1 distance of log-mel spectrograms.

    Args:
        input_feats_params: ``LogMelSpectrogram.get_parameters()`` of the input features; the
            STFT geometry (fs, n_fft, hop, window, n_mels) is taken from it.
        overrides: Fields that differ for the loss mel (default :data:`MEL_LOSS_DEFAULTS`).
    """

    def __init__(self, input_feats_params: Dict[str, Any], overrides: Optional[Dict[str, Any]] = None):
        super().__init__()
        params = {**input_feats_params, **MEL_LOSS_DEFAULTS, **(overrides or {})}
        self.mel = LogMelSpectrogram(**params)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean absolute log-mel difference.

        Args:
            y_hat: Generated waveform (B, 1, T).
            y: Reference waveform (B, 1, T).

        Returns:
            Scalar loss.
        """
        mel_hat, _ = self.mel(y_hat.squeeze(1))
        with torch.no_grad():
            mel, _ = self.mel(y.squeeze(1))
        return F.l1_loss(mel_hat, mel)
