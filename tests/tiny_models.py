"""The tiny ESPnetHiFiGANModel the unit tests train and inspect (one definition for all of them)."""

from __future__ import annotations

from typing import Sequence

from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel

HOP = 256


def tiny_model(
    segment_size: int = 8 * HOP,
    periods: Sequence[int] = (2, 3),
    scales: int = 2,
    scale_first_norm: str = "spectral",
    **model_conf,
) -> ESPnetHiFiGANModel:
    """A 16 kHz, hop-256 model with a 16-channel generator and a few-channel MPD + MSD.

    Args:
        segment_size: Training segment in samples.
        periods: Periods of the multi-period discriminator.
        scales: Scales of the multi-scale discriminator.
        scale_first_norm: Norm of the first scale discriminator ("weight" keeps training-mode
            forwards repeatable: spectral norm's power iteration moves at every one).
        **model_conf: Further ``ESPnetHiFiGANModel`` arguments (loss weights, warm-up, ...).
    """
    feats_extract = LogMelSpectrogram(fs=16000, n_fft=1024, hop_length=HOP)
    generator = HiFiGANGenerator(
        upsample_initial_channel=16,
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        resblock="2",
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1, 2),),
    )
    discriminator = HiFiGANDiscriminator(
        periods=tuple(periods),
        period_discriminator_params=dict(channels=(4, 8), last_channels=8),
        scales=scales,
        scale_discriminator_params=dict(
            channels=(8, 8, 8), kernel_sizes=(15, 41, 5), strides=(1, 4, 1), groups=(1, 4, 1)
        ),
        scale_first_norm=scale_first_norm,
    )
    return ESPnetHiFiGANModel(feats_extract, None, generator, discriminator, segment_size=segment_size, **model_conf)
