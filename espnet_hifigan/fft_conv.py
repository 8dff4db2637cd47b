"""A long dilated Conv1d computed by FFT (overlap-save) for the CPU inference engine.

A direct convolution costs ``K * C_in * C_out`` multiply-adds per output sample, whatever the
dilation. Overlap-save with blocks of ``N`` samples costs ``4 * C_in * C_out`` per frequency bin
(a complex product as one real GEMM) for ``N / 2 + 1`` bins per ``N - span + 1`` outputs, plus
the transforms: for the wide layers of HiFi-GAN's multi-receptive-field blocks (``K`` = 7 or 11,
256 channels) that is half the arithmetic, and on a 2-core CPU where oneDNN's direct convolution
already runs near the fp32 peak it is the only way to be faster (``benchmarks/bench_fft_conv.py``).
The result equals the direct convolution within float rounding (relative error ~1e-6).

Layout: the engine keeps activations channels-last, physically (B, T, C); blocks of the padded
input are strided views, the FFT runs along time, and the per-bin channel mixing is one batched
real GEMM of ``[Re, Im]`` rows against ``[[Kr, Ki], [-Ki, Kr]]``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def use_fft(in_channels: int, kernel_size: int, dilation: int) -> bool:
    """Whether a Conv1d is faster by FFT on the CPU (measured on a 2-core AVX-512 Xeon, 2 threads).

    256+ channels with a kernel of 7+, or 128+ channels with an undilated kernel of 11+; the
    narrower or shorter layers stay direct (the transforms cost more than they save).
    """
    if in_channels >= 256:
        return kernel_size >= 7
    return in_channels >= 128 and kernel_size >= 11 and dilation == 1


class FFTConv:
    """A stride-1 ``Conv1d`` (zero padding ``(left, right)``, dilation) by overlap-save FFT.

    Args:
        weight: Effective weight (C_out, C_in, K).
        bias: Bias (C_out,) or ``None``.
        padding: Zero padding (left, right) of the input.
        dilation: Dilation.
        block: FFT size ``N`` (default: a power of two >= 4 x the span, >= 16384 / C_in).
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
        if self.block <= self.span:
            raise ValueError(f"FFT block {self.block} must exceed the kernel span {self.span}")
        self.hop = self.block - self.span + 1
        self.padding = padding
        self.bias = None if bias is None else bias.detach().clone()
        taps = weight.detach().new_zeros(c_out, c_in, self.block)
        taps[:, :, : self.span : dilation] = weight.detach()
        # Cross-correlation (as Conv1d): conj of the kernel's spectrum. (F, C_in, C_out) each.
        spectrum = torch.fft.rfft(taps.double(), dim=-1).conj().permute(2, 1, 0)
        real, imag = spectrum.real.float(), spectrum.imag.float()
        bins = real.size(0)
        # Row [Xr | Xi] (interleaved per channel, as view_as_real lays it) times this = [Yr | Yi].
        mix = real.new_zeros(bins, c_in, 2, c_out, 2)
        mix[:, :, 0, :, 0], mix[:, :, 1, :, 0] = real, -imag
        mix[:, :, 0, :, 1], mix[:, :, 1, :, 1] = imag, real
        self.mix = mix.reshape(bins, 2 * c_in, 2 * c_out).contiguous()
        self.out_channels = c_out

    def to(self, fn) -> "FFTConv":
        """Apply a tensor function (``nn.Module._apply``'s) to the stored tensors; returns self."""
        self.mix = fn(self.mix).contiguous()
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
