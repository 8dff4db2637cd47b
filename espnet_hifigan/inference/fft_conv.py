"""A long dilated Conv1d computed by FFT (overlap-save) for the CPU inference engine.

A direct convolution costs ``K * C_in * C_out`` multiply-adds per output sample, whatever the
dilation. Overlap-save with blocks of ``N`` samples costs ``4 * C_in * C_out`` per frequency bin
(a complex multiply-add) for ``N / 2 + 1`` bins per ``N - span + 1`` outputs, plus
the transforms: for the wide layers of HiFi-GAN's multi-receptive-field blocks (``K`` = 7 or 11,
256 channels) that is half the arithmetic, and on a 2-core CPU where oneDNN's direct convolution
already runs near the fp32 peak it is the only way to be faster (``benchmarks/bench_fft_conv.py``).
The result equals the direct convolution within float rounding (relative error ~1e-6).

Layout: the engine keeps activations channels-last, physically (B, T, C); blocks of the padded
input are strided views, the FFT runs along time, and the per-bin channel mixing is one batched
real GEMM of ``[Re, Im]`` rows against ``[[Kr, Ki], [-Ki, Kr]]`` (F, 2 C_in, 2 C_out), held per
layer: 35-70 MB for a 256-channel layer (see :func:`use_fft` for the total). Short inputs stay direct
(:attr:`FFTConv.min_steps`): there, reading that spectrum costs more than the convolution.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F


def use_fft(in_channels: int, kernel_size: int, dilation: int) -> bool:
    """Whether a Conv1d is faster by FFT on the CPU (measured on a 2-core AVX-512 Xeon, 2 threads).

    256+ channels with a kernel of 11+, or of 7+ dilated by 3 at most; 128+ channels with an
    undilated kernel of 11+; the narrower or shorter layers stay direct (the transforms cost more
    than they save).
    """
    if in_channels >= 256:
        return kernel_size >= 11 or (kernel_size >= 7 and dilation <= 3)
    return in_channels >= 128 and kernel_size >= 11 and dilation == 1


class FFTConv:
    """A stride-1 ``Conv1d`` (zero padding ``(left, right)``, dilation) by overlap-save FFT.

    Args:
        weight: Effective weight (C_out, C_in, K).
        bias: Bias (C_out,) or ``None``.
        padding: Zero padding (left, right) of the input.
        dilation: Dilation.
        block: FFT size ``N`` (default: the power of two >= 4 x the span and >= 16384 / C_in, at
            most 128 where that exceeds twice the span: the spectrum's memory grows with ``N``).
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: Optional[torch.Tensor],
        padding: tuple,
        dilation: int,
        block: Optional[int] = None,
    ):
        c_out, c_in, kernel = weight.shape
        self.span = dilation * (kernel - 1) + 1
        self.block = block or 1 << (max(4 * self.span, 16384 // c_in) - 1).bit_length()
        if block is None and self.block > 128 >= 2 * self.span:
            self.block = 128
        if self.block <= self.span:
            raise ValueError(f"FFT block {self.block} must exceed the kernel span {self.span}")
        self.hop = self.block - self.span + 1
        self.padding = padding
        self.bias = None if bias is None else bias.detach().clone()
        # The kernel's spectrum on the block's rfft bins, conjugated (Conv1d is a cross-correlation):
        # sum_j w[o, i, j] exp(+2 pi i f j dilation / N), as two real matmuls over the K taps.
        bins = self.block // 2 + 1
        angle = torch.outer(torch.arange(kernel, dtype=torch.float64) * dilation, torch.arange(bins, dtype=torch.float64))
        angle *= 2 * math.pi / self.block
        taps = weight.detach().reshape(c_out * c_in, kernel)
        real = (taps @ torch.cos(angle).to(taps)).view(c_out, c_in, bins)
        imag = (taps @ torch.sin(angle).to(taps)).view(c_out, c_in, bins)
        # A row [Xr_0, Xi_0, Xr_1, Xi_1, ...] (view_as_real's layout) times this (F, 2 C_in, 2 C_out)
        # gives [Yr_0, Yi_0, ...]: Yr = Xr Kr - Xi Ki, Yi = Xr Ki + Xi Kr (one real GEMM per bin,
        # ~2x faster than a complex one here).
        mix = torch.stack([torch.stack([real, imag], dim=0), torch.stack([-imag, real], dim=0)], dim=0)
        # mix[in_part, out_part, o, i, f] -> (f, i, in_part, o, out_part)
        self.mix = mix.permute(4, 3, 0, 2, 1).reshape(bins, 2 * c_in, 2 * c_out).contiguous()
        self.out_channels = c_out
        # Shorter inputs (batch x steps) run direct: measured break-even ~8-12 blocks.
        self.min_steps = 12 * self.block

    def to(self, fn) -> "FFTConv":
        """Apply a tensor function (``nn.Module._apply``'s) to the stored tensors; returns self."""
        # The FFT path runs in fp32 only: the matrix follows the device, not dtype casts.
        self.mix = self.mix.to(fn(self.mix).device).contiguous()
        self.bias = None if self.bias is None else fn(self.bias)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve a channels-last (B, C_in, 1, T) tensor; returns channels-last (B, C_out, 1, T)."""
        batch, c_in, _, steps = x.shape
        left, right = self.padding
        n, hop = self.block, self.hop
        blocks = -(-(steps + left + right - self.span + 1) // hop)
        total = (blocks - 1) * hop + n
        seq = F.pad(x.permute(0, 2, 3, 1).reshape(batch, steps, c_in), (0, 0, left, total - steps - left))
        frames = seq.as_strided((batch, blocks, n, c_in), (total * c_in, hop * c_in, c_in, 1))
        spec = torch.fft.rfft(frames, dim=2)  # (B, blocks, F, C_in)
        bins = spec.size(2)
        rows = torch.view_as_real(spec).reshape(batch * blocks, bins, 2 * c_in).transpose(0, 1)
        mixed = torch.bmm(rows, self.mix)  # (F, B * blocks, 2 C_out)
        c_out = self.out_channels
        mixed = torch.view_as_complex(mixed.view(bins, batch * blocks, c_out, 2)).transpose(0, 1)
        y = torch.fft.irfft(mixed, n=n, dim=1).view(batch, blocks, n, c_out)[:, :, :hop]
        # The valid part of every block, made contiguous in the same pass as the bias sum.
        y = y + self.bias if self.bias is not None else y.contiguous()
        out_steps = steps + left + right - self.span + 1
        y = y.reshape(batch, blocks * hop, c_out)[:, :out_steps]
        if batch > 1:
            y = y.contiguous()
        return y.view(batch, 1, out_steps, c_out).permute(0, 3, 1, 2)
