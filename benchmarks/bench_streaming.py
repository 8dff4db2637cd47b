"""Streaming synthesis (``Vocoder.stream``) against offline synthesis: latency and speed.

Chunks are available as soon as they are asked for (a TTS faster than the vocoder), so
"first audio" is compute only: from asking for the first chunk to the first waveform chunk.
"look-ahead" is what a real-time mel source adds: the last frame of a chunk waits for the rest
of its chunk and the generator's right context (``streaming.receptive_field``), (chunk + right)
frames of audio. Parity with offline synthesis is tested in tests/test_streaming.py.

Example (V1 with random weights, 10 s at 22.05 kHz, hop 256, two CPU threads):
    python benchmarks/bench_streaming.py --preset v1 --seconds 10 --threads 2 --chunks 8 16 32 64
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch
import yaml

from espnet_hifigan.inference.streaming import receptive_field, split_frames
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.nets.presets import GENERATOR_PRESETS

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "hifigan_v1.yaml"


def _run(vocoder: Vocoder, mel: np.ndarray, chunk_frames: int) -> Tuple[float, float]:
    """Seconds to the first audio and seconds in all; ``chunk_frames`` 0: offline."""
    start = time.perf_counter()
    if chunk_frames == 0:
        vocoder(mel)
        total = time.perf_counter() - start
        return total, total
    first = None
    for _ in vocoder.stream(split_frames(mel, chunk_frames)):
        if first is None:
            first = time.perf_counter() - start
    return first, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v1", choices=sorted(GENERATOR_PRESETS))
    parser.add_argument("--seconds", type=float, default=10.0, help="utterance length")
    parser.add_argument("--chunks", type=int, nargs="+", default=[8, 16, 32, 64], help="chunk sizes (frames)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per setting (best is shown)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["generator_conf"] = dict(GENERATOR_PRESETS[args.preset])
    generator = HiFiGANGenerator(**config["generator_conf"])  # random weights: speed does not depend on them
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    vocoder = Vocoder(config, state, source=f"random {args.preset}")
    fs, hop = vocoder.fs, vocoder.hop_length
    frames = int(args.seconds * fs / hop)
    mel = np.random.default_rng(0).normal(-4.0, 1.5, size=(frames, vocoder.n_mels)).astype(np.float32)
    audio = frames * hop / fs
    right = receptive_field(vocoder.generator).right
    _run(vocoder, mel[:64], 16)  # warm-up

    print(
        f"{args.preset} (random weights), {audio:.2f} s utterance ({frames} frames, {fs} Hz, hop {hop}), "
        f"look-ahead {right} frames, cpu {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"{'chunk':>8} | {'look-ahead ms':>13} | {'first audio ms':>14} | {'total s':>7} | {'x real time':>11}")
    for chunk in [0, *args.chunks]:
        runs: List[Tuple[float, float]] = [_run(vocoder, mel, chunk) for _ in range(args.repeats)]
        first = min(r[0] for r in runs)
        total = min(r[1] for r in runs)
        wait = (frames if chunk == 0 else chunk + right) * hop / fs * 1000
        print(
            f"{'offline' if chunk == 0 else chunk:>8} | {wait:>13.0f} | {first * 1000:>14.0f} | {total:>7.2f} | "
            f"{audio / total:>11.2f}"
        )


if __name__ == "__main__":
    main()
