"""Stateful streaming: every frame computed once, output equal to offline synthesis.

:class:`StreamEngine` runs the layers of a :class:`~espnet_hifigan.inference.engine.FastGenerator`
(its folded weights, channels-last convolutions and polyphase upsamplers) on one chunk at a time.
Every layer is a stride-1 convolution (the upsamplers in polyphase form), a LeakyReLU or a
residual sum, so each keeps a small state instead of recomputing its context:

- a convolution of span ``S = dilation * (kernel - 1)`` with padding ``(left, right)`` keeps the
  last ``S`` columns of its input (a *cache*); a chunk of ``n`` new columns gives ``n`` outputs,
  ``right`` columns behind its input (its *lag* grows by ``right``);
- a residual sum delays its skip path by the lag of its branch (a *delay* cache of that many
  columns), and the sum of a multi-receptive-field's blocks delays each block to the slowest;
- every signal has a lag (in samples of its rate) behind the input: the output column ``i`` of a
  step starting at frame ``start`` is position ``start * rate - lag + i``. Positions before 0 or
  at/after the utterance's end (``end`` frames) are zeroed after every convolution: what the
  zero padding of offline synthesis gives there.

The caches hold fixed numbers of columns (:attr:`StreamEngine.cache_specs`) and start as zeros,
so one step is a pure function ``(chunk, start, end, caches) -> (wav, caches)``, the same code for
:class:`StatefulGeneratorStream` and the ONNX export (:mod:`espnet_hifigan.export.stream_export`).
A step's waveform starts :attr:`StreamEngine.delay` samples before the chunk's first sample; at
the end of an utterance, ``ceil(delay / hop)`` frames of zeros with ``end`` set flush the rest.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from espnet_hifigan.inference.engine import FastGenerator, _Conv, _fused_conv_add, _plain_weight
from espnet_hifigan.nets.generator import HiFiGANGenerator

Position = Union[int, torch.Tensor]
_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch, "mkldnn_convolution")
# oneDNN with weights reordered once (private ops; off after a first failure): see StreamEngine._packed_conv.
_PACKED = _MKLDNN and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")
# Steady chunk sizes per engine with reordered weights (each one copy of the weights: 56 MB for V1).
_PACKED_CHUNKS = 4
# A cache: (name, columns, channels).
CacheSpec = Tuple[str, int, int]
# No end yet (frames): a stream whose end is unknown.
NO_END = 2**40

__all__ = ["CacheSpec", "NO_END", "StreamEngine", "StatefulGeneratorStream"]


def _nchw(x: torch.Tensor) -> torch.Tensor:
    """(T, C) contiguous -> its (1, C, 1, T) channels-last view."""
    steps, channels = x.shape
    return x.view(1, 1, steps, channels).permute(0, 3, 1, 2)


def _rows(y: torch.Tensor) -> torch.Tensor:
    """(1, C, 1, T) channels-last -> (T, C) (a view where the memory allows)."""
    return y.permute(0, 2, 3, 1).reshape(y.size(3), y.size(1))


def _span(conv: _Conv) -> Tuple[int, int]:
    """(span, right padding) of a conv layer; its padding must sum to its span (length kept)."""
    weight, _, (left, right), dilation, _ = conv
    span = dilation * (weight.size(-1) - 1)
    if left + right != span or left < 0 or right < 0:
        raise ValueError(f"a convolution with padding ({left}, {right}) and span {span} cannot be streamed")
    return span, right


def _causal_polyphase(up: torch.nn.ConvTranspose1d, scale: float) -> Tuple[_Conv, int]:
    """A ConvTranspose1d (kernel K, stride s, padding p) as a causal stride-1 conv with s * C_out channels.

    Unlike the offline engine's polyphase form, output step ``g`` holds the ``s`` samples
    ``g s - p .. g s - p + s - 1``: exactly those that need inputs up to ``g``, so no phase waits
    for another's look-ahead. ``y[o, g s - p + r] = sum_u x[i, g - m + u] W[i, o, (m - u) s + r]``,
    ``m = (K - 1) // s``.

    Returns:
        The conv (padding (m, 0)) and ``p``: the samples its first output step starts before 0.
    """
    w = _plain_weight(up) * scale  # (C_in, C_out, K)
    c_in, c_out, kernel = w.shape
    (stride,), (pad,), (dilation,) = up.stride, up.padding, up.dilation
    if dilation != 1 or up.output_padding[0] != 0:
        raise ValueError(f"streaming supports undilated upsamplers without output padding, got {up}")
    m = (kernel - 1) // stride
    poly = w.new_zeros(stride, c_out, c_in, m + 1)
    for r in range(stride):
        for u in range(m + 1):
            k = (m - u) * stride + r
            if k < kernel:
                poly[r, :, :, u] = w[:, :, k].t()
    weight = poly.reshape(stride * c_out, c_in, 1, m + 1).contiguous(memory_format=torch.channels_last)
    bias = None if up.bias is None else up.bias.detach().repeat(stride)
    return (weight, bias, (m, 0), 1, None), pad


class StreamEngine:
    """The step function of stateful streaming over a :class:`FastGenerator` (see the module docstring).

    Args:
        generator: The generator (weight norm removed or not; not modified).
        engine: Its offline :class:`FastGenerator`, whose folded weights are shared (default: one
            is built, without FFT layers).
        graph: Mask with tensor arithmetic and no CPU-only fused ops (for ``torch.onnx.export``),
            ``start``/``end`` then being int64 tensors; default: Python ints, masks by slicing
            only where a chunk touches an edge.
    """

    def __init__(self, generator: HiFiGANGenerator, engine: Optional[FastGenerator] = None, graph: bool = False):
        self.engine = engine if isinstance(engine, FastGenerator) else FastGenerator(generator, fft=False)
        self.graph = graph
        self._valid_fft: dict = {}
        self._packed: "OrderedDict[int, dict]" = OrderedDict()  # frames -> {(weight id, columns): reordered}
        self._last_chunk, self._pack = 0, None  # previous step's frames; this step's reordered weights or None
        self.hop = generator.upsample_factor
        self.n_mels = generator.conv_pre.in_channels
        inv = 1.0 / generator.num_kernels
        self.ups = [_causal_polyphase(up, 1.0 if st == 0 else inv) for st, up in enumerate(generator.ups)]
        ref = self.engine.pre[0]  # the engine's dtype and device
        self.ups = [((w.to(ref), None if b is None else b.to(ref), pad, d, f), p) for (w, b, pad, d, f), p in self.ups]
        engine = self.engine
        self.specs: List[CacheSpec] = []
        lag = self._plan_conv("pre", engine.pre, engine.pre[0].size(1), 0)
        for st, (((up, pad), blocks), (_, stride)) in enumerate(zip(zip(self.ups, engine.blocks), engine.ups)):
            lag = self._plan_conv(f"s{st}.up", up, up[0].size(1), lag) * stride + pad
            channels = up[0].size(0) // stride
            first = [(_span(pairs[0][0])[0], self._pair_lag(pairs[0])) for pairs in blocks]
            self._cache(f"s{st}.act", max(s for s, _ in first), channels)
            self._cache(f"s{st}.x", max(d for _, d in first), channels)
            lags = []
            for b, pairs in enumerate(blocks):
                block_lag = lag + first[b][1]
                for i, (c1, c2) in enumerate(pairs):
                    if i:
                        block_lag += self._plan_pair(f"s{st}.b{b}.p{i}", c1, c2, channels)
                    elif c2 is not None:
                        self._cache(f"s{st}.b{b}.p0.c2", _span(c2)[0], channels)
                lags.append(block_lag)
            for b, block_lag in enumerate(lags):
                self._cache(f"s{st}.b{b}.out", max(lags) - block_lag, channels)
            lag = max(lags)
        self.delay = self._plan_conv("post", engine.post, engine.post[0].size(1), lag)

    # ----------------------------------------------------------------------------------- plan
    def _cache(self, name: str, columns: int, channels: int) -> None:
        if columns > 0:
            self.specs.append((name, columns, channels))

    def _plan_conv(self, name: str, conv: _Conv, channels: int, lag: int) -> int:
        span, right = _span(conv)
        self._cache(name, span, channels)
        return lag + right

    def _pair_lag(self, pair: Tuple[_Conv, Optional[_Conv]]) -> int:
        return sum(_span(c)[1] for c in pair if c is not None)

    def _plan_pair(self, name: str, c1: _Conv, c2: Optional[_Conv], channels: int) -> int:
        self._cache(f"{name}.c1", _span(c1)[0], channels)
        if c2 is not None:
            self._cache(f"{name}.c2", _span(c2)[0], channels)
        lag = self._pair_lag((c1, c2))
        self._cache(f"{name}.skip", lag, channels)
        return lag

    @property
    def cache_specs(self) -> List[CacheSpec]:
        """The caches, in the order :meth:`step` takes and returns them: (name, columns, channels)."""
        return list(self.specs)

    def initial_caches(self, device: Optional[torch.device] = None) -> List[torch.Tensor]:
        """Zero caches (columns, channels) of a new utterance, in the engine's dtype."""
        ref = self.engine.pre[0]
        return [torch.zeros(cols, ch, dtype=ref.dtype, device=device or ref.device) for _, cols, ch in self.specs]

    # ----------------------------------------------------------------------------------- step
    def _mask(self, x: torch.Tensor, lag: int, rate: int, start: Position, end: Position) -> torch.Tensor:
        """Zero the rows of ``x`` (T, C) outside the utterance: positions ``start * rate - lag + i``."""
        steps = x.size(0)
        if self.graph:
            pos = start * rate - lag + torch.arange(steps, device=x.device)
            keep = (pos >= 0) & (pos < end * rate)
            return x * keep.to(x.dtype).unsqueeze(1)
        first = start * rate - lag
        lo, hi = max(0, -first), min(steps, end * rate - first)
        if lo > 0 or hi < steps:
            x = x.clone()
            x[: max(lo, 0)] = 0
            x[max(hi, 0) :] = 0
        return x

    def _conv(self, buf: torch.Tensor, conv: _Conv, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Valid ``conv`` of ``buf`` (span + n, C_in): n outputs (n, C_out), plus ``residual`` (n, C_out) if given."""
        weight, bias, _, dilation, fft = conv
        cpu_fp32 = buf.device.type == "cpu" and buf.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
        if fft is not None and cpu_fp32 and not self.graph and buf.size(0) >= fft.min_steps:
            # Long chunks: the offline engine's FFT form (its spectra shared), without padding.
            valid = self._valid_fft.get(id(fft))
            if valid is None:
                valid = self._valid_fft[id(fft)] = copy.copy(fft)
                valid.padding = (0, 0)
            y = _rows(valid(_nchw(buf)))
            return y if residual is None else y + residual
        if cpu_fp32 and not self.graph:
            y = self._packed_conv(buf, weight, bias, dilation, residual)
            if y is not None:
                return y
            if residual is not None:
                y = _fused_conv_add(_nchw(buf), _nchw(residual.contiguous()), weight, bias, 0, dilation)
                if y is not None:
                    return _rows(y)
            elif _MKLDNN:
                # oneDNN directly: F.conv2d sends batch-1 inputs under 20480 values (short chunks) to
                # PyTorch's slow native convolution (aten's "native is faster" heuristic for (1, K) kernels).
                y = torch.mkldnn_convolution(_nchw(buf), weight, bias, [0, 0], [1, 1], [1, dilation], 1)
                return _rows(y)
        y = _rows(F.conv2d(_nchw(buf), weight, bias, dilation=(1, dilation)))
        return y if residual is None else y + residual

    def _packed_conv(
        self, buf: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], dilation: int,
        residual: Optional[torch.Tensor],
    ) -> Optional[torch.Tensor]:
        """oneDNN's convolution (+ residual) with the weight reordered once to its blocked layout.

        Chunks are short, so reordering the weight at every call (what a dense weight costs) is a
        large share of each convolution (~20 % at 64 columns, 256 channels). The layout oneDNN picks
        depends on the input length, and a weight reordered for another length is ~50x slower, so it
        is reordered per length, for steady chunk sizes (:meth:`_choose_packing`). The ops are private:
        None where they are missing or have failed once, or for other sizes (the plain paths run).
        """
        global _PACKED
        if not _PACKED or self._pack is None:
            return None
        key = (id(weight), buf.size(0))
        try:
            packed = self._pack.get(key)
            if packed is None:
                packed = torch.ops.mkldnn._reorder_convolution_weight(
                    weight, [0, 0], [1, 1], [1, dilation], 1, [1, buf.size(1), 1, buf.size(0)]
                )
                self._pack[key] = packed
            op, x, geometry = torch.ops.mkldnn._convolution_pointwise, _nchw(buf), ([0, 0], [1, 1], [1, dilation], 1)
            if residual is None:
                return _rows(op(x, packed, bias, *geometry, "none", [], None))
            return _rows(op.binary(x, _nchw(residual.contiguous()), packed, bias, *geometry, "add", 1.0, None, [], None))
        except Exception:  # noqa: BLE001 - any failure of a private op: the plain paths from now on
            _PACKED = False
            return None

    def _choose_packing(self, frames: int, steady: Optional[bool]) -> None:
        """Reordered weights for steady chunk sizes (default: the previous step's), the last :data:`_PACKED_CHUNKS` kept.

        A stream's last chunk and its flush run on the plain paths: reordering for them costs more than it saves.
        """
        pack = self._packed.get(frames)
        if pack is None and (frames == self._last_chunk if steady is None else steady) and not self.graph:
            pack = self._packed[frames] = {}
            while len(self._packed) > _PACKED_CHUNKS:
                self._packed.popitem(last=False)
        if pack is not None:
            self._packed.move_to_end(frames)
        self._pack, self._last_chunk = pack, frames

    def step(
        self, mel: torch.Tensor, start: Position, end: Position, caches: Sequence[torch.Tensor],
        steady: Optional[bool] = None,
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """One chunk through the generator.

        Args:
            mel: Normalised features (n, n_mels) of frames ``start .. start + n - 1``, in the engine's dtype.
            start: Frames before this chunk in the utterance.
            end: Frames of the utterance (:data:`NO_END` while unknown); frames from it on are ignored (zeros).
            caches: The previous step's caches, as :attr:`cache_specs` (:meth:`initial_caches` at the first).
            steady: Whether the caller's stream keeps this chunk size (its weights are then reordered once
                for it); default: whether the engine's previous step had it.

        Returns:
            The waveform (n * hop,) of samples ``start * hop - delay ..`` (those before 0 or at/after
            ``end * hop`` are meaningless), and the new caches.
        """
        eng, slope = self.engine, self.engine.negative_slope
        self._choose_packing(mel.size(0), steady)
        old = {name: cache for (name, _, _), cache in zip(self.specs, caches)}
        new = {}

        def extend(name: str, x: torch.Tensor) -> torch.Tensor:
            """The cached columns of ``name`` followed by ``x``; the last (cache size) columns kept."""
            cache = old.get(name)
            if cache is None:
                return x
            buf = torch.cat([cache, x])
            new[name] = buf[buf.size(0) - cache.size(0) :]
            return buf

        def conv(name, x, c, lag, rate, residual=None):
            return self._mask(self._conv(extend(name, x), c, residual), lag, rate, start, end)

        def delay(name, x):
            return extend(name, x)[: x.size(0)]

        lag = _span(eng.pre)[1]
        x = conv("pre", self._mask(mel, 0, 1, start, end), eng.pre, lag, 1)  # frames from ``end`` on: zeros
        rate = 1
        for st, (((up, pad), blocks), (_, stride)) in enumerate(zip(zip(self.ups, eng.blocks), eng.ups)):
            x = self._conv(extend(f"s{st}.up", F.leaky_relu(x, slope)), up)  # (n, stride * C) == (n * stride, C)
            rate, lag = rate * stride, lag * stride + pad
            x = self._mask(x.reshape(x.size(0) * stride, x.size(1) // stride), lag, rate, start, end)
            n = x.size(0)
            act_buf = extend(f"s{st}.act", F.leaky_relu(x, slope))  # shared by the blocks' first convs
            x_buf = extend(f"s{st}.x", x)  # their skip paths
            outs = []
            for b, pairs in enumerate(blocks):
                block_lag, y = lag, x
                for i, (c1, c2) in enumerate(pairs):
                    pair_lag = self._pair_lag((c1, c2))
                    c1_lag = block_lag + _span(c1)[1]
                    if i == 0:
                        src = act_buf[act_buf.size(0) - n - _span(c1)[0] :]
                        skip = x_buf[x_buf.size(0) - n - pair_lag : x_buf.size(0) - pair_lag]
                    else:
                        src = extend(f"s{st}.b{b}.p{i}.c1", F.leaky_relu(y, slope))
                        skip = delay(f"s{st}.b{b}.p{i}.skip", y)
                    # Without c2 the skip is summed in the conv: it is zero where the mask zeroes.
                    h = self._mask(self._conv(src, c1, skip if c2 is None else None), c1_lag, rate, start, end)
                    block_lag += pair_lag
                    y = h if c2 is None else conv(f"s{st}.b{b}.p{i}.c2", F.leaky_relu(h, slope), c2, block_lag, rate, skip)
                outs.append(y)
            total = None
            for b, y in enumerate(outs):
                y = delay(f"s{st}.b{b}.out", y)
                total = y if total is None else total + y
            x, lag = total, lag + max(sum(self._pair_lag(p) for p in pairs) for pairs in blocks)
        x = conv("post", F.leaky_relu(x, eng.final_negative_slope), eng.post, self.delay, rate)
        return torch.tanh(x).view(-1), [new[name] for name, _, _ in self.specs]


class StatefulGeneratorStream:
    """Chunked synthesis of (already normalised) features, each frame computed once.

    The interface of :class:`~espnet_hifigan.inference.streaming.GeneratorStream`: :meth:`push` a
    chunk, get the audio of every frame whose look-ahead is complete (whole frames, ``hop``
    samples each); :meth:`flush` at the end. Works in the engine's dtype and device.

    Args:
        generator: The generator.
        engine: Its offline :class:`FastGenerator` (weights shared; default: one is built).
        stream_engine: A :class:`StreamEngine` of ``generator`` to reuse (its weights are prepared
            once: the causal upsamplers, oneDNN's reordered weights); default: a new one.
    """

    def __init__(
        self, generator: HiFiGANGenerator, engine: Optional[FastGenerator] = None,
        stream_engine: Optional[StreamEngine] = None,
    ):
        self.engine = stream_engine or StreamEngine(generator, engine)
        self.hop = self.engine.hop
        self.flush_frames = -(-self.engine.delay // self.hop)
        self._last_frames = 0  # the previous chunk's size
        self.reset()

    def reset(self) -> None:
        """Forget the current utterance."""
        self._caches: Optional[List[torch.Tensor]] = None
        self._received = 0
        self._emitted = 0  # samples returned
        self._pending: List[torch.Tensor] = []  # samples computed, not yet a whole frame

    @property
    def received(self) -> int:
        """Frames received in this utterance so far."""
        return self._received

    @property
    def emitted(self) -> int:
        """Frames whose audio has been returned."""
        return self._emitted // self.hop

    def _run(self, chunk: torch.Tensor, end: int) -> None:
        if self._caches is None:
            self._caches = self.engine.initial_caches(chunk.device)
        steady, self._last_frames = chunk.size(0) == self._last_frames, chunk.size(0)  # two chunks of a size: steady
        wav, self._caches = self.engine.step(chunk.to(self._caches[0].dtype), self._received, end, self._caches, steady)
        first = self._received * self.hop - self.engine.delay  # position of wav[0]
        self._received += chunk.size(0) if end == NO_END else 0
        wav = wav[max(0, -first) :]
        if end != NO_END:
            wav = wav[: max(0, end * self.hop - max(first, 0))]
        if wav.numel():
            self._pending.append(wav)

    def _release(self, whole_frames: bool = True) -> torch.Tensor:
        wav = torch.cat(self._pending) if len(self._pending) > 1 else (self._pending or [torch.zeros(0)])[0]
        size = wav.numel() // self.hop * self.hop if whole_frames else wav.numel()
        self._pending = [wav[size:]] if size < wav.numel() else []
        self._emitted += size
        return wav[:size]

    @torch.no_grad()
    def push(self, chunk: torch.Tensor) -> torch.Tensor:
        """Add frames (frames, n_mels); return the audio of every frame whose look-ahead is complete.

        Returns:
            Waveform (emitted frames * hop,); empty while look-ahead is missing.
        """
        if chunk.size(0):
            self._run(chunk, NO_END)
        return self._release()

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """End of the utterance: the audio of the remaining frames; the stream is then reset."""
        if self._received:
            zeros = self._caches[0].new_zeros(self.flush_frames, self.engine.n_mels)
            self._run(zeros, self._received)
        wav = self._release(whole_frames=False)
        self.reset()
        return wav
