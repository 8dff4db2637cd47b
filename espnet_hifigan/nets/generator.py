"""HiFi-GAN generator (Kong et al., 2020) as a plain ``nn.Module``.

Parameter names follow the official implementation (``conv_pre``, ``ups``, ``resblocks``,
``conv_post``; weight norm as ``weight_g``/``weight_v``), so official ``g_XXXXXXXX``
checkpoints load without renaming keys.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from espnet_hifigan.nets.presets import GENERATOR_PRESETS


def _get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of a stride-1 dilated convolution."""
    return (kernel_size * dilation - dilation) // 2


def _apply_weight_norm(module: nn.Module) -> None:
    """Weight-normalise every Conv1d/ConvTranspose1d under ``module`` (official key names)."""
    with warnings.catch_warnings():
        # torch.nn.utils.weight_norm is deprecated in favour of parametrizations, but it keeps
        # the weight_g / weight_v keys that every published HiFi-GAN checkpoint uses.
        warnings.simplefilter("ignore", FutureWarning)
        for m in module.modules():
            if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
                nn.utils.weight_norm(m)


def _remove_weight_norm(module: nn.Module) -> None:
    for m in module.modules():
        if hasattr(m, "weight_g"):
            nn.utils.remove_weight_norm(m)


class ResBlock1(nn.Module):
    """Residual block type 1: pairs of (dilated conv, conv), each pair residual.

    Args:
        channels: Channels in and out.
        kernel_size: Kernel size of every conv.
        dilations: Dilation of the first conv of each pair (official: (1, 3, 5)).
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilations: Sequence[int],
        negative_slope: float,
    ):
        super().__init__()
        self.negative_slope = negative_slope
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_get_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=_get_padding(kernel_size))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, self.negative_slope))
            # In place on fresh conv outputs (the same values, fewer large buffers on the CPU).
            xt = c2(F.leaky_relu(xt, self.negative_slope, inplace=True))
            x = xt.add_(x)
        return x


class ResBlock2(nn.Module):
    """Residual block type 2: single dilated convs, each residual.

    Args are those of :class:`ResBlock1`; ``dilations`` is the dilation of each conv
    (official: (1, 3)).
    """

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int], negative_slope: float):
        super().__init__()
        self.negative_slope = negative_slope
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_get_padding(kernel_size, d))
            for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        for c in self.convs:
            x = c(F.leaky_relu(x, self.negative_slope)) + x
        return x


class HiFiGANGenerator(nn.Module):
    """HiFi-GAN generator: mel (B, n_mels, frames) -> waveform (B, 1, frames * hop).

    ``conv_pre`` -> per stage [LeakyReLU -> weight-normed ConvTranspose1d upsampler -> MRF
    (mean of residual blocks)] -> LeakyReLU -> ``conv_post`` -> tanh.

    Args:
        in_channels: Number of mel bins.
        upsample_initial_channel: Channels after ``conv_pre``; halved at every stage.
        upsample_rates: Upsampling factor of each stage; their product is the hop length.
        upsample_kernel_sizes: Kernel size of each transposed conv.
        resblock: ``"1"`` or ``"2"`` (residual block type).
        resblock_kernel_sizes: Kernel sizes of the MRF's residual blocks.
        resblock_dilation_sizes: Dilations of each residual block.
        pre_kernel_size: Kernel size of ``conv_pre``.
        post_kernel_size: Kernel size of ``conv_post``.
        negative_slope: LeakyReLU slope inside the network.
        final_negative_slope: Slope of the LeakyReLU before ``conv_post`` (official code:
            PyTorch's default 0.01).
        init_std: None (default): the official code's *effective* initialisation, PyTorch's
            default conv init with weight norm computed from it (the official code draws
            N(0, 0.01) after registering weight norm, which the norm hook then overwrites, so
            the trained weights start at std ~0.02). A float: draw every conv weight from
            N(0, init_std) before weight norm (takes effect; what the paper's text describes).
        use_weight_norm: Apply weight norm (training); remove it for inference.
    """

    def __init__(
        self,
        in_channels: int = 80,
        upsample_initial_channel: int = 512,
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        resblock: str = "1",
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        pre_kernel_size: int = 7,
        post_kernel_size: int = 7,
        negative_slope: float = 0.1,
        final_negative_slope: float = 0.01,
        init_std: Optional[float] = None,
        use_weight_norm: bool = True,
    ):
        super().__init__()
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes):
            if kernel < rate or (kernel - rate) % 2 != 0:
                raise ValueError(
                    f"upsample kernel {kernel} must be >= rate {rate} with an even difference "
                    "so that each stage upsamples exactly by its rate"
                )
        block_class = {"1": ResBlock1, "2": ResBlock2}.get(str(resblock))
        if block_class is None:
            raise ValueError(f"resblock must be '1' or '2', got {resblock!r}")
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.upsample_factor = 1
        for rate in upsample_rates:
            self.upsample_factor *= int(rate)
        self.negative_slope = negative_slope
        self.final_negative_slope = final_negative_slope

        self.conv_pre = nn.Conv1d(
            in_channels, upsample_initial_channel, pre_kernel_size, 1, padding=_get_padding(pre_kernel_size)
        )
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes):
            self.ups.append(
                nn.ConvTranspose1d(channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2)
            )
            channels //= 2
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block_class(channels, k, d, negative_slope))
        self.conv_post = nn.Conv1d(channels, 1, post_kernel_size, 1, padding=_get_padding(post_kernel_size))

        if init_std is not None:
            for m in self.modules():
                if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
                    nn.init.normal_(m.weight, 0.0, init_std)
        self.use_weight_norm = use_weight_norm
        if use_weight_norm:
            _apply_weight_norm(self)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "HiFiGANGenerator":
        """Build V1/V2/V3 with the official values; ``overrides`` replace single fields."""
        if name not in GENERATOR_PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(GENERATOR_PRESETS)}")
        return cls(**{**GENERATOR_PRESETS[name], **overrides})

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """Generate a waveform.

        Args:
            c: Mel spectrogram (B, in_channels, frames).

        Returns:
            Waveform (B, 1, frames * upsample_factor) in [-1, 1].
        """
        # In-place activations and sums act on fresh intermediate tensors only (same values).
        x = self.conv_pre(c)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, self.negative_slope, inplace=True))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs.add_(block(x))
            x = xs.div_(self.num_kernels)
        x = self.conv_post(F.leaky_relu(x, self.final_negative_slope, inplace=True))
        return torch.tanh(x)

    @torch.no_grad()
    def inference(self, c: torch.Tensor) -> torch.Tensor:
        """Generate one utterance.

        Args:
            c: Mel spectrogram (frames, in_channels).

        Returns:
            Waveform (frames * upsample_factor,).
        """
        return self.forward(c.transpose(0, 1).unsqueeze(0)).view(-1)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (for inference; outputs are unchanged)."""
        if self.use_weight_norm:
            _remove_weight_norm(self)
            self.use_weight_norm = False

    def num_parameters(self) -> int:
        """Number of parameters (with weight norm's g/v split while it is applied)."""
        return sum(p.numel() for p in self.parameters())
