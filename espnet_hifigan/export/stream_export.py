"""ONNX export of the stateful streaming step: the caches are the graph's explicit inputs and outputs.

The graph (``vocoder_stream.onnx``) is one step of
:class:`~espnet_hifigan.inference.stateful_stream.StreamEngine` on a fixed chunk of
``chunk_frames`` frames, the vocoder's normalisation folded in front:

* inputs: ``mel`` float32 (1, chunk_frames, n_mels) raw log-mel; ``start`` int64 scalar (frames of
  the utterance before this chunk); ``end`` int64 scalar (frames of the utterance, or
  :data:`~espnet_hifigan.inference.stateful_stream.NO_END` while unknown); then one float32 cache
  per entry of :attr:`StreamEngine.cache_specs`, named ``cache.<name>``, shape (columns, channels),
  zeros at the start of an utterance;
* outputs: ``wav`` float32 (1, chunk_frames * hop_length): samples ``start * hop - delay`` on
  (those before 0 are dropped); then ``new_cache.<name>``, fed back as ``cache.<name>`` next step.

At the end of an utterance of ``T`` frames, the last chunk is zero-padded to ``chunk_frames`` and
run with ``end = T``, then chunks of zeros with ``end = T`` until sample ``T * hop - 1`` has come
out. ``export.yaml``'s ``stream`` section records all of it for a runtime in another language;
:meth:`espnet_hifigan.export.onnx_vocoder.OnnxVocoder.stream` is the reference driver.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from espnet_hifigan.core.fileio import PathLike
from espnet_hifigan.export.normalising import MelNormalising
from espnet_hifigan.inference.engine import FastGenerator
from espnet_hifigan.inference.stateful_stream import NO_END, StreamEngine
from espnet_hifigan.inference.vocoder import Vocoder

STREAM_FILE = "vocoder_stream.onnx"
DEFAULT_CHUNK_FRAMES = 8

__all__ = ["DEFAULT_CHUNK_FRAMES", "STREAM_FILE", "ExportableStreamStep", "export_onnx_stream", "stream_manifest"]


class ExportableStreamStep(MelNormalising):
    """Normalisation + one streaming step: (mel chunk, start, end, caches) -> (wav, new caches).

    Args:
        vocoder: The vocoder (its generator is copied to CPU float32).
        chunk_frames: Frames per step (fixed in the graph).
    """

    def __init__(self, vocoder: Vocoder, chunk_frames: int = DEFAULT_CHUNK_FRAMES):
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        super().__init__(vocoder.generator.conv_pre.in_channels, vocoder.mean, vocoder.std)
        generator = copy.deepcopy(vocoder.generator).float().cpu().eval()
        self.engine = StreamEngine(generator, FastGenerator(generator, fft=False), graph=True)
        self.chunk_frames = chunk_frames
        self.eval()

    @property
    def cache_names(self) -> List[str]:
        """The cache inputs' names, in order (outputs: ``new_`` + these)."""
        return [f"cache.{name}" for name, _, _ in self.engine.cache_specs]

    def forward(self, mel: torch.Tensor, start: torch.Tensor, end: torch.Tensor, *caches: torch.Tensor) -> Tuple:
        """One step.

        Args:
            mel: Raw log-mel (1, chunk_frames, n_mels).
            start: Frames before this chunk (int64 scalar).
            end: Frames of the utterance, or ``NO_END`` (int64 scalar).
            caches: (columns, channels) each, as :attr:`cache_names`.

        Returns:
            Waveform (1, chunk_frames * hop) followed by the new caches.
        """
        wav, new = self.engine.step(self.normalise(mel[0]), start, end, list(caches))
        return (wav.unsqueeze(0), *new)


def stream_manifest(step: ExportableStreamStep, file_name: str = STREAM_FILE) -> Dict:
    """The ``stream`` section of ``export.yaml``: how a runtime drives the step graph."""
    engine = step.engine
    hop, delay = engine.hop, engine.delay
    return dict(
        file=file_name,
        chunk_frames=step.chunk_frames,
        hop_length=hop,
        delay_samples=delay,
        look_ahead_frames=-(-delay // hop),
        flush_frames=-(-delay // hop),
        no_end=NO_END,
        inputs=[
            dict(name="mel", shape=[1, step.chunk_frames, int(step.mean.numel())], dtype="float32",
                 features="raw log-mel, as the offline graph's input; a short last chunk padded with zeros"),
            dict(name="start", shape=[], dtype="int64", meaning="frames of the utterance before this chunk"),
            dict(name="end", shape=[], dtype="int64", meaning="frames of the utterance; no_end until it is known"),
        ] + [dict(name=name, shape=[cols, ch], dtype="float32", initial="zeros")
             for name, (_, cols, ch) in zip(step.cache_names, engine.cache_specs)],
        outputs=[dict(name="wav", shape=[1, step.chunk_frames * hop], dtype="float32",
                      meaning="samples start * hop_length - delay_samples onwards; drop those before 0 "
                              "and from end * hop_length on")]
        + [dict(name="new_" + name, feeds=name) for name in step.cache_names],
        protocol=[
            "new utterance: every cache zeros, start = 0",
            "each step: chunk_frames frames of mel, end = no_end; feed each new_cache.* back as cache.*; "
            "start += chunk_frames",
            "end of an utterance of T frames: zero-pad the last chunk to chunk_frames and run it with end = T, "
            "then chunks of zeros (start += chunk_frames, end = T) until sample T * hop_length - 1 has come out",
            "the audio of a frame is complete delay_samples samples (look_ahead_frames frames, rounded up) "
            "after its last sample's mel frame has been fed",
        ],
    )


def export_onnx_stream(step: ExportableStreamStep, path: PathLike) -> Path:
    """Write the step graph as ONNX (fixed chunk size; the caches as inputs and outputs)."""
    path = Path(path)
    n_mels = int(step.mean.numel())
    mel = torch.randn(1, step.chunk_frames, n_mels, generator=torch.Generator().manual_seed(0))
    args = (mel, torch.tensor(3, dtype=torch.int64), torch.tensor(NO_END, dtype=torch.int64),
            *step.engine.initial_caches(torch.device("cpu")))
    names = step.cache_names
    with torch.no_grad():
        program = torch.onnx.export(
            step,
            args,
            dynamo=True,
            input_names=["mel", "start", "end", *names],
            output_names=["wav", *("new_" + n for n in names)],
            optimize=True,
            verbose=False,
        )
    program.save(str(path))
    return path

