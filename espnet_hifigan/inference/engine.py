"""A fast inference engine computing exactly the HiFi-GAN generator's function.

:class:`FastGenerator` is built from a trained :class:`~espnet_hifigan.nets.generator.HiFiGANGenerator`
(its state dict and keys are untouched: the engine holds derived copies of the weights) and maps
mel (B, n_mels, frames) to waveform (B, 1, frames * hop) like ``HiFiGANGenerator.forward``. The
math is the same up to float rounding; what changes is how it is laid out for the CPU:

- **channels-last 2-D convolutions**: every Conv1d runs as a (1, K) Conv2d on an NHWC tensor, the
  layout oneDNN computes without reordering input and output at every call (on a 2-core Xeon
  ~1.5x faster per convolution than PyTorch's NCW Conv1d);
- **polyphase upsamplers**: each ConvTranspose1d (stride ``s``) is a stride-1 convolution with
  ``s * C_out`` output channels whose phases are interleaved for free: in channels-last memory the
  (T, s, C_out) output *is* the (T * s, C_out) upsampled signal, so no copy is made;
- **weight norm folded, MRF mean folded**: the 1/num_kernels of each multi-receptive-field mean is
  folded into the next layer's weights (LeakyReLU is positively homogeneous), the LeakyReLU of
  the MRF input is computed once for all its residual blocks, and residual sums are in place or,
  in fp32 on the CPU, added by oneDNN in the convolution's epilogue;
- **FFT convolutions** on the CPU for the wide layers of the first stages (overlap-save,
  :mod:`espnet_hifigan.inference.fft_conv`): half the arithmetic of a direct convolution there;
- **padding masks** for batches of different lengths: the input of every convolution is zeroed
  beyond each item's length, which is what the convolution's own zero padding gives one utterance
  alone, so a batch's outputs equal one-by-one synthesis (within float rounding).

It holds no parameters and builds no autograd graph of its weights; call it under
``torch.inference_mode`` (as :meth:`Vocoder.synthesise_batch` does), in any dtype/device
(``autocast`` for bf16/fp16 on GPU).
"""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from espnet_hifigan.inference.fft_conv import FFTConv, use_fft
from espnet_hifigan.nets.generator import HiFiGANGenerator, ResBlock1

# conv + residual in one oneDNN call (fp32 CPU), where this torch build has it: a private op,
# so any failure of a call turns it off for good (conv then add instead; see _fused_conv_add).
_FUSED_ADD = getattr(getattr(torch.ops.mkldnn, "_convolution_pointwise", None), "binary", None)
logger = logging.getLogger(__name__)


def _fused_conv_add(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], pad: int, dilation: int
) -> Optional[torch.Tensor]:
    """``conv(x) + residual`` by oneDNN's fused op; None where the op is missing or has failed.

    The op is private (13 positional arguments, no stability promise): the first failure is
    logged at debug level and the op is not tried again in this process.
    """
    global _FUSED_ADD
    if _FUSED_ADD is None:
        return None
    try:
        return _FUSED_ADD(x, residual, weight, bias, [0, pad], [1, 1], [1, dilation], 1, "add", 1.0, None, [], None)
    except Exception as e:  # noqa: BLE001 - any failure of a private op: fall back to conv then add
        logger.debug(f"oneDNN fused convolution + add failed ({type(e).__name__}: {e}); using conv then add")
        _FUSED_ADD = None
        return None

# A conv layer: channels-last weight (C_out, C_in, 1, K), bias, padding (left, right), dilation,
# and its FFT form where that is faster on the CPU (else None).
_Conv = Tuple[torch.Tensor, Optional[torch.Tensor], Tuple[int, int], int, Optional[FFTConv]]


def _plain_weight(conv: nn.Module) -> torch.Tensor:
    """The effective weight of a (possibly weight-normed) conv, detached."""
    if hasattr(conv, "weight_g"):
        g, v = conv.weight_g.detach(), conv.weight_v.detach()
        dims = tuple(range(1, v.dim()))
        return v * (g / v.norm(dim=dims, keepdim=True))
    return conv.weight.detach()


def _conv(conv: nn.Conv1d, scale: float = 1.0, fft: bool = False) -> _Conv:
    """A Conv1d as a channels-last (1, K) Conv2d; ``scale`` multiplies its input (folded into W).

    With ``fft``, also its FFT form where :func:`~espnet_hifigan.inference.fft_conv.use_fft` says it pays.
    """
    plain = _plain_weight(conv) * scale
    weight = plain.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    pad, dilation = conv.padding[0], conv.dilation[0]
    bias = None if conv.bias is None else conv.bias.detach().clone()
    c_out, c_in, kernel = plain.shape
    fft = FFTConv(plain, bias, (pad, pad), dilation) if fft and use_fft(c_in, kernel, dilation) else None
    return weight, bias, (pad, pad), dilation, fft


def _polyphase(up: nn.ConvTranspose1d, scale: float = 1.0) -> Tuple[_Conv, int]:
    """A ConvTranspose1d (stride s) as a stride-1 conv with s * C_out channels ordered (phase, out).

    Output sample ``q * s + r`` of channel ``o`` is output ``(r * C_out + o)`` at step ``q``:
    ``y[o, q s + r] = sum_i sum_j x[i, q - j] W[i, o, j s + r + p]``.
    """
    w = _plain_weight(up) * scale  # (C_in, C_out, K)
    c_in, c_out, kernel = w.shape
    stride, pad = up.stride[0], up.padding[0]
    taps = [j for r in range(stride) for j in range(-kernel, kernel + 1) if 0 <= j * stride + r + pad < kernel]
    j_min, j_max = min(taps), max(taps)
    if j_min > 0 or j_max < 0:
        raise ValueError(f"upsampler kernel {kernel}, stride {stride}, padding {pad} has no polyphase form here")
    length = j_max - j_min + 1
    poly = w.new_zeros(stride, c_out, c_in, length)
    for r in range(stride):
        for t in range(length):
            k = (j_max - t) * stride + r + pad
            if 0 <= k < kernel:
                poly[r, :, :, t] = w[:, :, k].t()
    weight = poly.reshape(stride * c_out, c_in, 1, length).contiguous(memory_format=torch.channels_last)
    bias = None if up.bias is None else up.bias.detach().repeat(stride)
    return (weight, bias, (j_max, -j_min), 1, None), stride


class FastGenerator(nn.Module):
    """Inference-only HiFi-GAN generator (see the module docstring).

    Args:
        generator: A :class:`HiFiGANGenerator` (weight norm applied or removed); not modified.
        fft: Compute the wide multi-receptive-field convolutions by FFT
            (:mod:`espnet_hifigan.inference.fft_conv`) when running in fp32 on the CPU on long enough inputs
            (elsewhere they are direct whatever this says); ``False`` also saves the memory of
            their spectra (~520 MiB for V1).
    """

    def __init__(self, generator: HiFiGANGenerator, fft: bool = True):
        super().__init__()
        g = generator
        self.negative_slope = g.negative_slope
        self.final_negative_slope = g.final_negative_slope
        self.upsample_factor = g.upsample_factor
        self.num_kernels = g.num_kernels
        inv = 1.0 / g.num_kernels
        self.pre = _conv(g.conv_pre)
        self.ups: List[Tuple[_Conv, int]] = []
        self.blocks: List[List[List[Tuple[_Conv, Optional[_Conv]]]]] = []
        for stage, up in enumerate(g.ups):
            conv, stride = _polyphase(up, 1.0 if stage == 0 else inv)
            self.ups.append((conv, stride))
            stage_blocks = []
            for block in g.resblocks[stage * g.num_kernels : (stage + 1) * g.num_kernels]:
                if isinstance(block, ResBlock1):
                    pairs = [(_conv(c1, fft=fft), _conv(c2, fft=fft)) for c1, c2 in zip(block.convs1, block.convs2)]
                else:
                    pairs = [(_conv(c, fft=fft), None) for c in block.convs]
                stage_blocks.append(pairs)
            self.blocks.append(stage_blocks)
        self.post = _conv(g.conv_post, inv)
        self._dtype = self.pre[0].dtype

    @property
    def fft_layers(self) -> int:
        """How many layers have an FFT form (built only where ``fft`` was asked for)."""
        return sum(c is not None and c[4] is not None for st in self.blocks for pairs in st for ab in pairs for c in ab)

    def _apply(self, fn, recurse=True):  # noqa: D401 - nn.Module hook: .to()/.half() move the weights too
        def move(conv: _Conv) -> _Conv:
            w, b, pad, dil, fft = conv
            w = fn(w).contiguous(memory_format=torch.channels_last)
            return w, None if b is None else fn(b), pad, dil, None if fft is None else fft.to(fn)

        self.pre = move(self.pre)
        self.ups = [(move(c), s) for c, s in self.ups]
        self.blocks = [[[(move(a), None if b is None else move(b)) for a, b in pairs] for pairs in st] for st in self.blocks]
        self.post = move(self.post)
        self._dtype = self.pre[0].dtype
        return super()._apply(fn, recurse)

    def _run(self, x: torch.Tensor, conv: _Conv, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The conv of ``x``; plus ``residual`` (a new tensor) when given."""
        weight, bias, (left, right), dilation, fft = conv
        cpu_fp32 = x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
        if fft is not None and cpu_fp32 and x.size(0) * x.size(-1) >= fft.min_steps:
            y = fft(x)
            return y if residual is None else y.add_(residual)
        if residual is not None:
            if cpu_fp32 and left == right:  # oneDNN adds it in the conv's epilogue
                fused = _fused_conv_add(x, residual, weight, bias, left, dilation)
                if fused is not None:
                    return fused
            return self._run(x, conv).add_(residual)
        if left == right:
            return F.conv2d(x, weight, bias, padding=(0, left), dilation=(1, dilation))
        return F.conv2d(F.pad(x, (left, right)), weight, bias, dilation=(1, dilation))

    @staticmethod
    def _mask(x: torch.Tensor, zeros: Sequence[Tuple[int, int, Optional[int]]], scale: int) -> torch.Tensor:
        """Zero (in place) the spans ``(item, start, end)`` (frames; ``end`` None: to the end) x ``scale``."""
        for b, start, end in zeros:
            x[b, :, :, start * scale : None if end is None else end * scale] = 0
        return x

    @property
    def min_gap(self) -> int:
        """Fewest zero frames between packed utterances so that no convolution reaches across.

        A convolution at ``scale`` samples per frame with padding (left, right) reads at most
        ``max(left, right)`` samples beyond an utterance's edge; the gap is masked to zero before
        every convolution, which is exactly the zero padding the utterance gets alone.
        """
        reach = [(self.pre[2], 1)]
        scale = 1
        for (up, stride), stage_blocks in zip(self.ups, self.blocks):
            reach.append((up[2], scale))
            scale *= stride
            reach += [(conv[2], scale) for pairs in stage_blocks for pair in pairs for conv in pair if conv is not None]
        reach.append((self.post[2], scale))
        return max(1, max(-(-max(pad) // s) for pad, s in reach))

    def synthesise_packed(self, mels: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Synthesise several utterances as one sequence: mels joined by :attr:`min_gap` zero frames.

        Unlike a padded batch, nothing is computed for padding (only the short gaps), and each
        waveform equals its one-by-one synthesis within float rounding (the gaps are masked at
        every layer).

        Args:
            mels: Mel spectrograms (n_mels, frames_i).

        Returns:
            Waveforms (frames_i * upsample_factor,).
        """
        gap, hop = self.min_gap, self.upsample_factor
        pieces: List[torch.Tensor] = []
        spans: List[Tuple[int, int]] = []
        zeros: List[Tuple[int, int, Optional[int]]] = []
        t = 0
        for i, mel in enumerate(mels):
            if i:
                pieces.append(mel.new_zeros(mel.size(0), gap))
                zeros.append((0, t, t + gap))
                t += gap
            pieces.append(mel)
            spans.append((t, t + mel.size(1)))
            t += mel.size(1)
        wav = self._generate(torch.cat(pieces, dim=1).unsqueeze(0), zeros)[0, 0]
        return [wav[start * hop : end * hop] for start, end in spans]

    def forward(self, c: torch.Tensor, lengths: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Generate waveforms.

        Args:
            c: Mel spectrogram (B, n_mels, frames).
            lengths: Frames of each item (B,) when the batch is padded (``None``: all full).
                Samples beyond ``lengths[b] * hop`` are zero.

        Returns:
            Waveform (B, 1, frames * upsample_factor).
        """
        zeros = [(b, n, None) for b, n in enumerate(lengths or []) if n < c.size(-1)]
        out = self._generate(c, zeros)
        for b, n, _ in zeros:
            out[b, :, n * self.upsample_factor :] = 0
        return out

    def _generate(self, c: torch.Tensor, zeros: Sequence[Tuple[int, int, Optional[int]]]) -> torch.Tensor:
        """The generator on mel (B, n_mels, T) with the frame spans ``zeros`` masked in every layer."""
        x = c.to(self._dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = self._run(self._mask(x, zeros, 1), self.pre)
        scale = 1
        for (up, stride), stage_blocks in zip(self.ups, self.blocks):
            # Stage input: the previous MRF's sum (its 1/num_kernels is folded into ``up``).
            x = self._mask(F.leaky_relu(x, self.negative_slope), zeros, scale)
            x = self._run(x, up)  # (B, stride * C, 1, T) channels-last == (B, C, 1, T * stride)
            batch, channels, _, steps = x.shape
            x = x.permute(0, 2, 3, 1).reshape(batch, 1, steps * stride, channels // stride).permute(0, 3, 1, 2)
            scale *= stride
            act = self._mask(F.leaky_relu(x, self.negative_slope), zeros, scale)
            total = None
            for pairs in stage_blocks:
                y = x
                for i, (c1, c2) in enumerate(pairs):
                    h = act if i == 0 else self._mask(F.leaky_relu(y, self.negative_slope), zeros, scale)
                    h = self._run(h, c1)
                    if c2 is not None:
                        y = self._run(self._mask(F.leaky_relu_(h, self.negative_slope), zeros, scale), c2, y)
                    else:
                        y = h.add_(y)
                total = y if total is None else total.add_(y)
            x = total
        x = self._mask(F.leaky_relu_(x, self.final_negative_slope), zeros, scale)
        x = torch.tanh_(self._run(x, self.post))
        return x.squeeze(2).contiguous()  # (B, 1, T)
