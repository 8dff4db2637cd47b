"""Streaming synthesis: mel chunks in, waveform chunks out, equal to offline synthesis.

>>> for wav_chunk in vocoder.stream(mel_chunks):     # mel chunks (frames, n_mels), raw log-mel
...     play(wav_chunk)                              # hop_length samples per frame

The generator is a stack of convolutions, so the samples of frame ``f`` depend only on input
frames ``f - left .. f + right``: its receptive field, computed exactly from the generator's
layers by :func:`receptive_field`. :class:`StreamingVocoder` (behind :meth:`Vocoder.stream` and
``voc_inference --chunk_frames``) runs the *stateful* engine of
:mod:`espnet_hifigan.inference.stateful_stream`: every layer keeps its own left context, so each
frame is computed once, and a frame's samples are released as soon as its ``right`` frames of
look-ahead have arrived. The concatenated chunks equal :meth:`Vocoder.__call__` on the whole
utterance (up to float rounding).

:class:`GeneratorStream` is the simpler *recomputing* path: a chunk's frames are synthesised from a
window that starts ``left`` frames before them and ends ``right`` after (or at the utterance's
edges, where the generator's own zero padding is what offline synthesis sees); only the samples
of those frames are kept. It recomputes the context of every chunk (13 + 13 frames for V1), which
costs little on long chunks: it is the reference of the tests, and what bounds memory below.

The same path bounds the memory of long utterances: :class:`Vocoder` synthesises any utterance
longer than ``long_frames`` (default :data:`LONG_FRAMES`) :data:`LONG_FRAMES` frames at a time with
:func:`generate_in_chunks`, so its memory no longer grows with the utterance's length.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from espnet_hifigan.inference.input_checks import feature_problem, torch_ready
from espnet_hifigan.inference.stateful_stream import StatefulGeneratorStream, StreamEngine
from espnet_hifigan.nets.generator import HiFiGANGenerator, ResBlock1, ResBlock2

if TYPE_CHECKING:  # pragma: no cover - typing only (api imports this module)
    from espnet_hifigan.contract import FeatureContract
    from espnet_hifigan.inference.vocoder import Vocoder

Interval = Tuple[int, int]
__all__ = [
    "LONG_FRAMES",
    "ReceptiveField",
    "receptive_field",
    "GeneratorStream",
    "StreamingVocoder",
    "split_frames",
    "synthesise_in_chunks",
    "generate_in_chunks",
]

# Utterances longer than this (frames) are synthesised this many frames at a time by Vocoder
# (generate_in_chunks): 23 s at 22.05 kHz / hop 256, 32 s at 16 kHz. Offline synthesis holds every
# layer's activations for the whole utterance: ~0.7 MB per frame for V1 (3.5 GB for 60 s), ~0.13 MB
# for the mini model (5 GB for 10 min); in chunks the peak stays that of LONG_FRAMES plus the
# receptive field (V1: 13 + 13 frames, 1.3 % more computation) whatever the length. Shorter
# utterances (nearly every TTS sentence) are synthesised whole, as before.
LONG_FRAMES = 2000
# Each vocoder's streaming step engine (by its generator), built at its first stream.
_STREAM_ENGINES: "weakref.WeakKeyDictionary[nn.Module, StreamEngine]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ReceptiveField:
    """Input frames the samples of one output frame depend on, either side of that frame.

    Attributes:
        left: Frames before it (past context).
        right: Frames after it (look-ahead: the streaming latency in frames).
    """

    left: int
    right: int


# Backward interval propagation: given the positions [a, b] of a layer's output, the positions
# of its input that they depend on (zero padding and the utterance edges aside).
def _conv_input(iv: Interval, conv: nn.Conv1d) -> Interval:
    """Stride-1 Conv1d: y[t] reads x[t - padding + j * dilation], j = 0 .. kernel - 1."""
    if conv.stride != (1,) or isinstance(conv.padding, str):
        raise ValueError(f"streaming supports stride-1 convolutions with integer padding, got {conv}")
    (k,), (d,), (p,) = conv.kernel_size, conv.dilation, conv.padding
    return iv[0] - p, iv[1] + d * (k - 1) - p


def _conv_transpose_input(iv: Interval, up: nn.ConvTranspose1d) -> Interval:
    """ConvTranspose1d: y[n] receives x[i] where i * stride + j * dilation = n + padding."""
    (k,), (d,), (p,), (s,) = up.kernel_size, up.dilation, up.padding, up.stride
    lo = iv[0] + p - d * (k - 1)
    return -(-lo // s), (iv[1] + p) // s  # ceil, floor


def _residual_input(iv: Interval, branch: Iterable[nn.Conv1d]) -> Interval:
    """``x + branch(x)``: the identity's positions and the branch's (its convs applied in order)."""
    lo, hi = iv
    for conv in reversed(list(branch)):
        lo, hi = _conv_input((lo, hi), conv)
    return min(lo, iv[0]), max(hi, iv[1])


def _resblock_input(iv: Interval, block: nn.Module) -> Interval:
    if isinstance(block, ResBlock1):
        for c1, c2 in reversed(list(zip(block.convs1, block.convs2))):
            iv = _residual_input(iv, (c1, c2))
        return iv
    if isinstance(block, ResBlock2):
        for conv in reversed(list(block.convs)):
            iv = _residual_input(iv, (conv,))
        return iv
    raise ValueError(f"streaming does not know the receptive field of {type(block).__name__}")


def receptive_field(generator: Union[HiFiGANGenerator, Mapping]) -> ReceptiveField:
    """Exact receptive field of a generator, in input frames either side of an output frame.

    Walks the layers backwards from the samples of frame 0, ``[0, hop - 1]`` at the output rate:
    ``conv_post``; per stage, last first, the MRF (the widest of its residual blocks, each the sum
    of its dilated convs' contexts at that stage's rate) and the transposed conv (whose input
    positions are rounded outwards to whole positions of the lower rate); then ``conv_pre`` at
    the frame rate. The result is independent of the frame (the network is shift-equivariant by
    ``hop`` samples per frame).

    Args:
        generator: A :class:`HiFiGANGenerator`, or its ``generator_conf`` (a tiny copy is built to
            read the layers; channels do not change the receptive field).

    Returns:
        Frames of left and right context.
    """
    if isinstance(generator, Mapping):
        conf = dict(generator)
        conf.update(in_channels=1, upsample_initial_channel=2 ** len(conf.get("upsample_rates", (8, 8, 2, 2))))
        conf.update(use_weight_norm=False)
        generator = HiFiGANGenerator(**conf)
    iv: Interval = (0, generator.upsample_factor - 1)
    iv = _conv_input(iv, generator.conv_post)
    for stage in reversed(range(generator.num_upsamples)):
        blocks = generator.resblocks[stage * generator.num_kernels : (stage + 1) * generator.num_kernels]
        spans = [_resblock_input(iv, block) for block in blocks]
        iv = min(s[0] for s in spans), max(s[1] for s in spans)
        iv = _conv_transpose_input(iv, generator.ups[stage])
    iv = _conv_input(iv, generator.conv_pre)
    return ReceptiveField(left=max(0, -iv[0]), right=max(0, iv[1]))


class GeneratorStream:
    """Chunked synthesis with a bare generator on (already normalised) features.

    Keeps the last ``context.left`` frames already synthesised and the frames still waiting for
    their look-ahead; everything else is dropped. Works in the generator's dtype and device.

    Args:
        generator: Generator mapping (B, n_mels, frames) to (B, 1, frames * upsample_factor)
            (a :class:`HiFiGANGenerator` or a :class:`~espnet_hifigan.inference.engine.FastGenerator`).
        context: Receptive field to use (default: :func:`receptive_field` of ``generator``, which
            must then be a :class:`HiFiGANGenerator`).
    """

    def __init__(self, generator: torch.nn.Module, context: Optional[ReceptiveField] = None):
        self.generator = generator
        self.context = context if context is not None else receptive_field(generator)
        self.hop = generator.upsample_factor
        self.reset()

    def reset(self) -> None:
        """Forget the current utterance."""
        self._frames: Optional[torch.Tensor] = None  # utterance frames [_offset, received)
        self._offset = 0
        self._emitted = 0

    @property
    def received(self) -> int:
        """Frames received in this utterance so far."""
        return self._offset + (0 if self._frames is None else self._frames.size(0))

    @property
    def emitted(self) -> int:
        """Frames whose audio has been returned."""
        return self._emitted

    @torch.no_grad()
    def push(self, chunk: torch.Tensor) -> torch.Tensor:
        """Add frames (frames, n_mels); return the audio of every frame whose look-ahead is complete.

        Returns:
            Waveform (emitted frames * hop,); empty while look-ahead is missing.
        """
        self._frames = chunk if self._frames is None else torch.cat([self._frames, chunk])
        return self._emit(self.received - self.context.right)

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """End of the utterance: the audio of the remaining frames; the stream is then reset."""
        wav = self._emit(self.received)
        self.reset()
        return wav

    def _emit(self, upto: int) -> torch.Tensor:
        """Audio of frames [emitted, upto), from the window [max(0, emitted - left), received)."""
        if upto <= self._emitted or self._frames is None:
            return torch.zeros(0)
        start = self._offset  # == max(0, emitted - left)
        wav = self.generator(self._frames.transpose(0, 1).unsqueeze(0)).view(-1)
        wav = wav[(self._emitted - start) * self.hop : (upto - start) * self.hop]
        self._emitted = upto
        keep_from = max(0, upto - self.context.left)
        self._frames = self._frames[keep_from - self._offset :]
        self._offset = keep_from
        return wav


class StreamingVocoder:
    """A :class:`~espnet_hifigan.inference.vocoder.Vocoder` fed chunk by chunk; output equal to offline synthesis.

    Args:
        vocoder: The vocoder (its generator, normalisation and device are used).
        contract: The chunks' feature contract (as for :meth:`Vocoder.__call__`); ``None``: raw.
        dtype: ``torch.bfloat16`` runs the generator under autocast (then not bit-equal offline).

    Raises:
        ContractMismatch: ``contract`` cannot be reconciled with the vocoder's.
    """

    def __init__(
        self,
        vocoder: "Vocoder",
        contract: Optional["FeatureContract"] = None,
        dtype: torch.dtype = torch.float32,
    ):
        self.vocoder = vocoder
        self.conversion = vocoder.conversion_from(contract) if contract is not None else None
        self.dtype = dtype
        # Stateful: each frame computed once, with the offline engine's kernels and weights; the
        # step engine is prepared once per vocoder (not per utterance).
        stream_engine = _STREAM_ENGINES.get(vocoder.generator)
        if stream_engine is None:
            engine = getattr(vocoder, "engine", None)
            stream_engine = _STREAM_ENGINES[vocoder.generator] = StreamEngine(vocoder.generator, engine)
        self.generator_stream = StatefulGeneratorStream(vocoder.generator, stream_engine=stream_engine)
        self._context = receptive_field(vocoder.generator)
        self._chunks = 0

    @property
    def context(self) -> ReceptiveField:
        """The generator's receptive field: frames of left context, and look-ahead before a frame's audio."""
        return self._context

    def reset(self) -> None:
        """Start a new utterance."""
        self.generator_stream.reset()
        self._chunks = 0

    def push(self, chunk: Union[np.ndarray, torch.Tensor]) -> np.ndarray:
        """Add a mel chunk (frames, n_mels); return the audio now complete (possibly empty).

        Raises:
            ValueError: the chunk is not (frames, n_mels); names the chunk's index.
        """
        index = self._chunks
        self._chunks += 1
        shape = tuple(chunk.shape)
        if len(shape) != 2 or shape[1] != self.vocoder.n_mels:
            raise ValueError(
                f"mel chunk {index} has shape {shape}; the vocoder expects (frames, {self.vocoder.n_mels}): "
                "pass raw log-mel with frames first"
            )
        if self.conversion is not None:
            chunk = self.conversion(chunk.detach().cpu().numpy() if isinstance(chunk, torch.Tensor) else chunk)
        feats = torch.as_tensor(torch_ready(chunk), dtype=torch.float32, device=self.vocoder.device)
        if not bool(torch.isfinite(feats).all()):  # as Vocoder.__call__ refuses them
            raise ValueError(f"mel chunk {index}: {feature_problem(feats.cpu().numpy())}: cannot synthesise them")
        feats = self.vocoder.normalize(feats)  # per frame: the same values as on the whole utterance
        with torch.autocast(self.vocoder.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.generator_stream.push(feats).float().cpu().numpy()

    def flush(self) -> np.ndarray:
        """End of the utterance: audio of the frames still waiting for look-ahead; then reset."""
        with torch.autocast(self.vocoder.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            wav = self.generator_stream.flush().float().cpu().numpy()
        self._chunks = 0
        return wav

    def stream(self, chunks: Iterable[Union[np.ndarray, torch.Tensor]]) -> Iterator[np.ndarray]:
        """Synthesise one utterance given as an iterable of mel chunks.

        Yields:
            Waveform chunks (samples,), non-empty, in order; the last comes once ``chunks`` ends.
        """
        self.reset()
        for chunk in chunks:
            wav = self.push(chunk)
            if wav.size:
                yield wav
        wav = self.flush()
        if wav.size:
            yield wav


def split_frames(
    feats: Union[np.ndarray, torch.Tensor], chunk_frames: int
) -> Iterator[Union[np.ndarray, torch.Tensor]]:
    """Consecutive chunks of ``chunk_frames`` frames (the last may be shorter)."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    for start in range(0, feats.shape[0], chunk_frames):
        yield feats[start : start + chunk_frames]


def synthesise_in_chunks(
    vocoder: "Vocoder",
    feats: Union[np.ndarray, torch.Tensor],
    chunk_frames: int,
    dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    """Synthesise a whole utterance through the streaming path, ``chunk_frames`` frames at a time.

    Returns:
        Waveform (frames * hop_length,), equal to ``vocoder(feats, dtype=dtype)``.
    """
    pieces = list(StreamingVocoder(vocoder, dtype=dtype).stream(split_frames(feats, chunk_frames)))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def generate_in_chunks(
    generator: torch.nn.Module, feats: torch.Tensor, chunk_frames: int, context: ReceptiveField
) -> torch.Tensor:
    """A generator's waveform of one whole utterance, computed ``chunk_frames`` frames at a time.

    The :class:`GeneratorStream` path: the same samples as ``generator`` on the whole utterance
    (up to float rounding), with the generator never run on more than ``chunk_frames +
    context.left + context.right`` frames, so memory does not grow with the utterance.

    Args:
        generator: As for :class:`GeneratorStream` (called in the current dtype/autocast).
        feats: Normalised features (frames, n_mels) on the generator's device.
        chunk_frames: Frames per chunk; an utterance no longer than this is synthesised whole.
        context: The generator's :func:`receptive_field`.

    Returns:
        Waveform (frames * hop,).
    """
    if feats.size(0) <= chunk_frames:
        return generator(feats.t().unsqueeze(0)).view(-1)
    stream = GeneratorStream(generator, context)
    pieces = [stream.push(chunk) for chunk in feats.split(chunk_frames)] + [stream.flush()]
    return torch.cat([piece for piece in pieces if piece.numel()])
