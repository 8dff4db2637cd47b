"""Discriminator convolutions laid out faster for the CPU (same function, same parameters).

Both classes are ``nn.Conv1d``/``nn.Conv2d`` subclasses: same parameters, state-dict keys, hooks
(weight or spectral norm) and values within float rounding; on a GPU, in another dtype or under
autocast they are the plain modules. Which layers use them was measured on a 2-core AVX-512 Xeon
(batch 4 x 8192, forward + backward, 2 threads unless said):

- :class:`GroupedConv1d`, the multi-scale discriminator's strided grouped convs 1-3. oneDNN
  computes the first (128 -> 128 channels, kernel 41, stride 2, 4 groups) ~2.3x faster forward and
  ~1.6x faster input gradient as a channels-last (1, K) Conv2d than as an NCW Conv1d, but its
  weight gradient ~1.5x slower; so forward and input gradient run channels-last, the weight
  gradient NCW: 197 -> 169 ms (1 thread, NCW backward: forward 100 -> 43 ms). The next two gain
  5-15%, the wider ones nothing.
- :class:`PeriodConv2d`, the period discriminators' (K, 1) convs for periods 2 and 3 from 128
  input channels: as one GEMM over (batch x time x period) rows of unfolded (C_in x K) columns
  (autograd through ``unfold``/``addmm``) instead of a (K, 1) Conv2d over a 2- or 3-wide image:
  period 2: 512 -> 1024 stride 3 42 -> 25 ms, 1024 -> 1024 65 -> 45 ms; period 3: 33 -> 26 and
  53 -> 46 ms; periods 5+ gain nothing.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def channels_last_pays(in_channels: int, out_channels: int, stride: int, groups: int) -> bool:
    """The layer shapes measured faster: strided, grouped, at most 256 input channels.

    In the official MSD those are its convs 1-3 (128->128/4 groups, 128->256/16, 256->512/16);
    the wider grouped convs are as fast or slower channels-last.
    """
    return groups > 1 and stride > 1 and in_channels <= 256


class _ChannelsLastForward(torch.autograd.Function):
    """conv1d: forward and input gradient computed channels-last, weight gradient NCW."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride: int, padding: int, groups: int):  # noqa: D102
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, groups, bias is not None)
        x2d = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        y = F.conv2d(x2d, weight.unsqueeze(2), bias, stride=(1, stride), padding=(0, padding), groups=groups)
        return y.squeeze(2).contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        x, weight = ctx.saved_tensors
        stride, padding, groups, has_bias = ctx.conf
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # channels-last: ~1.5x faster here
            grad_x = torch.ops.aten.convolution_backward(
                grad.unsqueeze(2).contiguous(memory_format=torch.channels_last),
                x.unsqueeze(2).contiguous(memory_format=torch.channels_last), weight.unsqueeze(2), None,
                [1, stride], [0, padding], [1, 1], False, [0, 0], groups, [True, False, False],
            )[0].squeeze(2).contiguous()  # fmt: skip
        if ctx.needs_input_grad[1] or (has_bias and ctx.needs_input_grad[2]):  # NCW: ~1.5x faster here
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad.contiguous(), x, weight, [weight.size(0)] if has_bias else None,
                [stride], [padding], [1], False, [0], groups,
                [False, ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]],
            )  # fmt: skip
        return grad_x, grad_w, grad_b if has_bias else None, None, None, None


def _on_cpu_fp32(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")


class GroupedConv1d(nn.Conv1d):
    """``nn.Conv1d`` (zero padding, no dilation) whose fp32 CPU forward runs channels-last."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        if _on_cpu_fp32(x):
            return _ChannelsLastForward.apply(x, weight, bias, self.stride[0], self.padding[0], self.groups)
        return super()._conv_forward(x, weight, bias)


def conv1d(in_ch: int, out_ch: int, kernel: int, stride: int, groups: int, padding: int) -> nn.Conv1d:
    """A :class:`GroupedConv1d` where :func:`channels_last_pays`, else a plain ``nn.Conv1d``."""
    cls = GroupedConv1d if channels_last_pays(in_ch, out_ch, stride, groups) else nn.Conv1d
    return cls(in_ch, out_ch, kernel, stride, groups=groups, padding=padding)


def gemm_pays(in_channels: int, period: int) -> bool:
    """The period discriminator layers measured faster as one GEMM (periods 2-3, 128+ channels)."""
    return period <= 3 and in_channels >= 128


class PeriodConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a (K, 1) kernel (stride (s, 1), padding (p, 0)) computed as one GEMM on the CPU."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        if not _on_cpu_fp32(x):
            return super()._conv_forward(x, weight, bias)
        batch, c_in, _, width = x.shape
        c_out, _, kernel, _ = weight.shape
        pad = self.padding[0]
        cols = F.pad(x, (0, 0, pad, pad)).unfold(2, kernel, self.stride[0])  # (B, C_in, H', W, K)
        steps = cols.size(2)
        cols = cols.permute(0, 2, 3, 1, 4).reshape(batch * steps * width, c_in * kernel)
        w = weight.reshape(c_out, c_in * kernel).t()
        y = torch.mm(cols, w) if bias is None else torch.addmm(bias, cols, w)  # (B H' W, C_out)
        return y.view(batch, steps, width, c_out).permute(0, 3, 1, 2)


def conv2d_k1(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, period: int) -> nn.Conv2d:
    """A (kernel, 1) conv of a period discriminator: :class:`PeriodConv2d` where :func:`gemm_pays`."""
    cls = PeriodConv2d if gemm_pays(in_ch, period) else nn.Conv2d
    return cls(in_ch, out_ch, (kernel, 1), (stride, 1), padding=(padding, 0))
