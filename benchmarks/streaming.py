"""Streaming rows: stateful streaming against offline synthesis, PyTorch and ONNX, interleaved.

For each preset, one utterance is synthesised offline (``Vocoder.__call__``; ``OnnxVocoder.__call__``)
and streamed in chunks of 1, 8, 32 and 128 frames (``Vocoder.stream``; ``OnnxVocoder.stream`` on
the ``onnx_stream`` export of that chunk size), all timed alternately in one process. A row's
ratio is streaming / offline throughput (1 / ratio: the cost of streaming per second of audio).
Chunks are available as soon as they are asked for (a TTS faster than the vocoder), so "first
audio" is compute only; a real-time mel source adds the look-ahead: the chunk plus the
generator's right context (``streaming.receptive_field``), in the row's note. On the CPU, PyTorch
rows also note what the convolution ops alone cost (one more stream under the profiler): the floor
of that chunk size's cost in this engine.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

from benchmarks.common import build_vocoder, interleaved, random_mel, summary, table_row
from espnet_hifigan.inference.streaming import receptive_field, split_frames

FS, HOP = 22050, 256
CHUNKS = (1, 8, 32, 128)
BACKENDS = ("pytorch", "onnx")


def _timed_stream(stream: Callable[[], object], firsts: List[float]) -> Callable[[], None]:
    """A call consuming ``stream()``'s chunks that records the seconds to its first chunk."""

    def run() -> None:
        start = time.perf_counter()
        first = None
        for _ in stream():
            if first is None:
                first = time.perf_counter() - start
        firsts.append(first if first is not None else time.perf_counter() - start)

    return run


def _conv_seconds(run: Callable[[], None]) -> float:
    """CPU seconds spent inside the direct convolution ops (self time, under the profiler) in one ``run()``.

    The floor of a streaming step's cost: the same kernels with no Python, copies or activations
    around them. Chunks long enough for the FFT layers (V1 at 128 frames) run those as transforms
    and batched products, which this does not count.
    """
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run()
    return sum(e.self_cpu_time_total for e in prof.key_averages() if "conv" in e.key) / 1e6


def streaming_rows(
    device: str,
    presets: Sequence[str],
    seconds: float,
    repeats: int,
    chunks: Sequence[int] = CHUNKS,
    backends: Sequence[str] = BACKENDS,
) -> List[Dict]:
    """Rows (x real time, median) of streaming per preset x backend x chunk size; reference: offline."""
    rows: List[Dict] = []
    frames = max(1, int(seconds * FS / HOP))
    audio = frames * HOP / FS
    mel = random_mel(frames)
    for preset in presets:
        vocoder = build_vocoder(preset, device)
        right = receptive_field(vocoder.generator).right
        fns: Dict[str, Callable[[], None]] = {"pytorch offline": lambda v=vocoder: v(mel)}
        firsts: Dict[str, List[float]] = {}
        for chunk in chunks:
            name = f"pytorch {chunk}"
            firsts[name] = []
            fns[name] = _timed_stream(lambda c=chunk, v=vocoder: v.stream(split_frames(mel, c)), firsts[name])
        tmp = None
        if "onnx" in backends and device == "cpu":
            from espnet_hifigan.export.exporters import export_vocoder
            from espnet_hifigan.export.onnx_vocoder import OnnxVocoder

            tmp = tempfile.TemporaryDirectory(prefix="bench_stream_")
            onnx = {}
            for chunk in chunks:  # one step graph per chunk size (fixed in the graph)
                directory = Path(tmp.name) / str(chunk)
                export_vocoder(vocoder, directory, ["onnx_stream"], stream_chunk_frames=chunk)
                onnx[chunk] = OnnxVocoder(directory, num_threads=torch.get_num_threads())
            fns["onnx offline"] = lambda o=onnx[chunks[0]]: o(mel)
            for chunk in chunks:
                name = f"onnx {chunk}"
                firsts[name] = []
                fns[name] = _timed_stream(lambda c=chunk, o=onnx[chunk]: o.stream(split_frames(mel, c)), firsts[name])
        try:
            times = interleaved(fns, repeats, device)
        finally:
            if tmp is not None:
                tmp.cleanup()
        convs = {chunk: _conv_seconds(fns[f"pytorch {chunk}"]) for chunk in chunks} if device == "cpu" else {}
        for backend in [b for b in backends if f"{b} offline" in fns]:
            ref = summary(times[f"{backend} offline"], audio)
            label = "PyTorch" if backend == "pytorch" else "ONNX Runtime"
            for chunk in chunks:
                name = f"{backend} {chunk}"
                first_ms = float(np.median(firsts[name][-repeats:])) * 1000
                look_ahead_ms = (chunk + right) * HOP / FS * 1000
                mine = summary(times[name], audio)
                floor = ""
                if backend == "pytorch" and chunk in convs:
                    floor = f"; its convolutions alone {convs[chunk] * ref['median'] / audio:.2f}x offline"
                rows.append(
                    table_row(
                        f"streaming {preset.upper()} {seconds:g} s, {label}, {chunk}-frame chunks vs offline",
                        "x real time", mine, ref, f"{label} offline",
                        f"first audio {first_ms:.0f} ms compute + {look_ahead_ms:.0f} ms look-ahead "
                        f"({chunk} + {right} frames); cost {ref['median'] / mine['median']:.2f}x offline{floor}",
                    )  # fmt: skip
                )
    return rows
