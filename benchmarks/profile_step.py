"""Where a training step's time goes on CUDA: top kernels, host syncs, GPU idle time.

Used by :mod:`benchmarks.training` (``--profile_dir``) on the fastest of our paths, after its
timed steps (compilation and cuDNN's algorithm search are done by then).
"""

from __future__ import annotations

import time
from typing import Any, Callable, List, Tuple

import torch

# CUDA runtime calls that make the host wait for the device.
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")


def _busy_seconds(intervals: List[Tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals (microseconds in, seconds out)."""
    busy, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if s > end:
            busy += e - s
            end = e
        elif e > end:
            busy += e - end
            end = e
    return busy / 1e6


def profile_step(step: Callable[[Any], None], batch: Any, steps: int = 3, top: int = 15) -> str:
    """Profile ``steps`` calls of ``step(batch)`` on CUDA; return a plain-text summary.

    The summary gives the wall time per step, the GPU's busy time (union of kernel and copy
    intervals) and so its idle share, the host-device synchronisations per step (runtime calls
    that block the host, device-to-host copies among them), and the ``top`` kernels by total
    device time.
    """
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step(batch)
        torch.cuda.synchronize()
        wall = (time.perf_counter() - start) / steps
    events = prof.events()
    device_intervals, kernels, syncs = [], {}, {}
    for e in events:
        device_type = str(getattr(e, "device_type", ""))
        if device_type.endswith("CUDA"):
            t = e.time_range
            device_intervals.append((t.start, t.end))
            total, count = kernels.get(e.name, (0.0, 0))
            kernels[e.name] = (total + (t.end - t.start), count + 1)
        elif any(e.name.startswith(name) for name in SYNC_CALLS):
            syncs[e.name] = syncs.get(e.name, 0) + 1
    busy = _busy_seconds(device_intervals) / steps
    lines = [
        f"wall per step {wall * 1e3:.1f} ms; GPU busy {busy * 1e3:.1f} ms ({100 * busy / wall:.0f}%), "
        f"idle {max(wall - busy, 0) * 1e3:.1f} ms per step",
        f"device operations per step: {len(device_intervals) / steps:.0f}",
        "host syncs per step: "
        + (", ".join(f"{k} {v / steps:.1f}" for k, v in sorted(syncs.items())) or "none"),
        f"top {top} device operations by total time (ms per step, calls per step, name):",
    ]
    ranked: List[Tuple[str, Tuple[float, int]]] = sorted(kernels.items(), key=lambda kv: -kv[1][0])
    for name, (total, count) in ranked[:top]:
        lines.append(f"  {total / 1e3 / steps:8.2f}  {count / steps:6.1f}  {name[:140]}")
    return "\n".join(lines)

