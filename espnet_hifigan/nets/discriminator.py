"""HiFi-GAN multi-period and multi-scale discriminators as plain ``nn.Module``s.

Each sub-discriminator returns the list of its layer outputs, the last one being its final
score map, which is the format ESPnet's ``GeneratorAdversarialLoss``,
``DiscriminatorAdversarialLoss`` and ``FeatureMatchLoss`` consume. Parameter names follow the
official implementation (``convs``, ``conv_post``).
"""

from __future__ import annotations

import warnings
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from espnet_hifigan.nets import cpu_convs


def _normed(module: nn.Module, norm: str) -> nn.Module:
    if norm == "weight":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return nn.utils.weight_norm(module)
    if norm == "spectral":
        return nn.utils.spectral_norm(module)
    if norm == "none":
        return module
    raise ValueError(f"norm must be 'weight', 'spectral' or 'none', got {norm!r}")


def _layer_outputs(x: torch.Tensor, convs: nn.ModuleList, conv_post: nn.Module, negative_slope: float) -> List[torch.Tensor]:
    """Every conv's output (LeakyReLU after each but ``conv_post``): feature maps, then the score."""
    outs = []
    for conv in convs:
        # In place on the fresh conv output (its backward needs only the result): no extra buffer.
        x = F.leaky_relu(conv(x), negative_slope, inplace=True)
        outs.append(x)
    outs.append(conv_post(x))
    return outs


class PeriodDiscriminator(nn.Module):
    """One period discriminator: 2-D convs over the waveform folded by ``period``.

    Args:
        period: Folding period in samples.
        channels: Output channels of each strided conv (official: 32, 128, 512, 1024).
        last_channels: Channels of the final stride-1 conv.
        kernel_size: Kernel length along time.
        stride: Stride along time of the strided convs.
        post_kernel_size: Kernel length of ``conv_post``.
        post_padding: Padding of ``conv_post`` along time; ``None`` keeps the length (official).
            ESPnet's modules use a (2, 1) kernel with padding 1.
        negative_slope: LeakyReLU slope.
        norm: ``weight``, ``spectral`` or ``none``.
    """

    def __init__(
        self,
        period: int,
        channels: Sequence[int] = (32, 128, 512, 1024),
        last_channels: int = 1024,
        kernel_size: int = 5,
        stride: int = 3,
        post_kernel_size: int = 3,
        post_padding: Optional[int] = None,
        negative_slope: float = 0.1,
        norm: str = "weight",
    ):
        super().__init__()
        self.period = period
        self.negative_slope = negative_slope
        pad = (kernel_size - 1) // 2
        convs = []
        in_ch = 1
        for out_ch in channels:
            convs.append(cpu_convs.conv2d_k1(in_ch, out_ch, kernel_size, stride, pad, period))
            in_ch = out_ch
        convs.append(cpu_convs.conv2d_k1(in_ch, last_channels, kernel_size, 1, pad, period))
        self.convs = nn.ModuleList(_normed(c, norm) for c in convs)
        self.conv_post = _normed(
            nn.Conv2d(
                last_channels,
                1,
                (post_kernel_size, 1),
                1,
                padding=((post_kernel_size - 1) // 2 if post_padding is None else post_padding, 0),
            ),
            norm,
        )

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Score a waveform.

        Args:
            x: Waveform (B, 1, T).

        Returns:
            Layer outputs; the last is the score map (B, 1, T', period).
        """
        b, c, t = x.shape
        if t % self.period != 0:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
            t = x.size(-1)
        x = x.view(b, c, t // self.period, self.period)
        return _layer_outputs(x, self.convs, self.conv_post, self.negative_slope)


class ScaleDiscriminator(nn.Module):
    """One scale discriminator: grouped strided 1-D convs.

    Args:
        channels: Output channels of each conv but the last (official values by default).
        kernel_sizes: Kernel size of each conv.
        strides: Stride of each conv.
        groups: Groups of each conv.
        post_kernel_size: Kernel size of ``conv_post``.
        negative_slope: LeakyReLU slope.
        norm: ``weight``, ``spectral`` or ``none``.
    """

    def __init__(
        self,
        channels: Sequence[int] = (128, 128, 256, 512, 1024, 1024, 1024),
        kernel_sizes: Sequence[int] = (15, 41, 41, 41, 41, 41, 5),
        strides: Sequence[int] = (1, 2, 2, 4, 4, 1, 1),
        groups: Sequence[int] = (1, 4, 16, 16, 16, 16, 1),
        post_kernel_size: int = 3,
        negative_slope: float = 0.1,
        norm: str = "weight",
    ):
        super().__init__()
        if not len(channels) == len(kernel_sizes) == len(strides) == len(groups):
            raise ValueError("channels, kernel_sizes, strides and groups differ in length")
        self.negative_slope = negative_slope
        convs = []
        in_ch = 1
        for out_ch, k, s, g in zip(channels, kernel_sizes, strides, groups):
            convs.append(cpu_convs.conv1d(in_ch, out_ch, k, s, groups=g, padding=(k - 1) // 2))
            in_ch = out_ch
        self.convs = nn.ModuleList(_normed(c, norm) for c in convs)
        self.conv_post = _normed(
            nn.Conv1d(in_ch, 1, post_kernel_size, 1, padding=(post_kernel_size - 1) // 2), norm
        )

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Score a waveform (B, 1, T); returns layer outputs, the last (B, 1, T')."""
        return _layer_outputs(x, self.convs, self.conv_post, self.negative_slope)


class MultiPeriodDiscriminator(nn.Module):
    """Period discriminators for each of ``periods`` (official: 2, 3, 5, 7, 11).

    Args:
        periods: Folding periods.
        discriminator_params: Keyword arguments of every :class:`PeriodDiscriminator`.
    """

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), discriminator_params: Dict | None = None):
        super().__init__()
        params = dict(discriminator_params or {})
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, **params) for p in periods)

    def forward(self, x: torch.Tensor) -> List[List[torch.Tensor]]:
        """(B, 1, T) -> one list of layer outputs per period."""
        return [d(x) for d in self.discriminators]


class MultiScaleDiscriminator(nn.Module):
    """Scale discriminators on the waveform and its average-pooled versions.

    Args:
        scales: Number of scales (official: 3).
        pool_kernel_size: AvgPool1d kernel between scales.
        pool_stride: AvgPool1d stride.
        pool_padding: AvgPool1d padding.
        first_norm: Norm of the first (full-rate) discriminator (official: ``spectral``).
        discriminator_params: Keyword arguments of every :class:`ScaleDiscriminator`
            (``norm`` applies to all but the first).
    """

    def __init__(
        self,
        scales: int = 3,
        pool_kernel_size: int = 4,
        pool_stride: int = 2,
        pool_padding: int = 2,
        first_norm: str = "spectral",
        discriminator_params: Dict | None = None,
    ):
        super().__init__()
        params = dict(discriminator_params or {})
        rest_norm = params.pop("norm", "weight")
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(norm=first_norm if i == 0 else rest_norm, **params) for i in range(scales)
        )
        self.meanpools = nn.ModuleList(
            nn.AvgPool1d(pool_kernel_size, pool_stride, padding=pool_padding) for _ in range(scales - 1)
        )

    def forward(self, x: torch.Tensor) -> List[List[torch.Tensor]]:
        """(B, 1, T) -> one list of layer outputs per scale."""
        outs = []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = self.meanpools[i - 1](x)
            outs.append(d(x))
        return outs


class HiFiGANDiscriminator(nn.Module):
    """Multi-period + multi-scale discriminator (the HiFi-GAN pair).

    Args:
        periods: MPD periods.
        period_discriminator_params: Keyword arguments of each period discriminator.
        scales: Number of MSD scales (0 disables the MSD).
        scale_discriminator_params: Keyword arguments of each scale discriminator.
        scale_pool_kernel_size: AvgPool1d kernel between scales.
        scale_pool_stride: AvgPool1d stride between scales.
        scale_pool_padding: AvgPool1d padding between scales.
        scale_first_norm: Norm of the first scale discriminator.
    """

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        period_discriminator_params: Dict | None = None,
        scales: int = 3,
        scale_discriminator_params: Dict | None = None,
        scale_pool_kernel_size: int = 4,
        scale_pool_stride: int = 2,
        scale_pool_padding: int = 2,
        scale_first_norm: str = "spectral",
    ):
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(periods, period_discriminator_params)
        self.msd = MultiScaleDiscriminator(
            scales,
            scale_pool_kernel_size,
            scale_pool_stride,
            scale_pool_padding,
            scale_first_norm,
            scale_discriminator_params,
        )

    def forward(self, x: torch.Tensor) -> List[List[torch.Tensor]]:
        """Score a batch of waveforms.

        Args:
            x: Waveform (B, 1, T).

        Returns:
            For every sub-discriminator (MPD first, then MSD) the list of its layer outputs,
            the last of which is its score map.
        """
        return self.mpd(x) + self.msd(x)
