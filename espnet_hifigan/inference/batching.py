"""How a decode groups utterances and in which precision it runs: the batches of
``voc_inference --batch_size`` (by padded frames) and ``--dtype auto``."""

from __future__ import annotations

from typing import List

import torch

# Default --batch_size of voc_inference (frames per call, padding included): on a 2-core CPU ~800
# frames per call decodes fastest (V1, 50 short utterances: 5.0x real time at 800, 3.8x at 1600,
# 3.8x one by one); GPUs gain from more.
CPU_BATCH_FRAMES, GPU_BATCH_FRAMES = 800, 3000


def resolve_dtype(name: str, device: str) -> str:
    """``--dtype``: ``auto`` is bfloat16 on a CUDA device that supports it, else float32 (the fallback)."""
    if name != "auto":
        return name
    return "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"


def length_batches(lengths: List[int], budget: int) -> List[List[int]]:
    """Indices grouped into batches, longest first, each at most ``budget`` padded frames.

    Args:
        lengths: Frames of each utterance.
        budget: Most frames a batch may hold, padding included (batch size x its longest);
            0: one utterance per batch. An utterance longer than the budget is a batch alone.

    Returns:
        Batches of indices into ``lengths``, sorted by decreasing length.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: List[List[int]] = []
    for i in order:
        if batches and budget > 0 and lengths[batches[-1][0]] * (len(batches[-1]) + 1) <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
