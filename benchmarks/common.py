"""Shared pieces of the benchmarks: interleaved timing, test vocoders, peak memory."""

from __future__ import annotations

import copy
import resource
import statistics
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
import yaml

from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.nets.presets import GENERATOR_PRESETS, espnet_generator_kwargs

REPO_ROOT = Path(__file__).resolve().parents[1]
V1_CONFIG = REPO_ROOT / "conf" / "hifigan_v1.yaml"


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing on CPU."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(fns: Dict[str, Callable[[], Any]], repeats: int, device: str, warmup: int = 1) -> Dict[str, List[float]]:
    """Seconds of each call, alternating between ``fns`` every repeat (machine load hits all alike).

    Args:
        fns: Name -> zero-argument call to time.
        repeats: Timed rounds (each runs every call once).
        device: ``cpu`` or ``cuda`` (synchronised around each call).
        warmup: Untimed rounds first.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def summary(seconds: List[float], work: float) -> Dict[str, float]:
    """Median and best throughput (``work`` per second) of timed runs."""
    return dict(median=work / statistics.median(seconds), best=work / min(seconds))


def table_row(row: str, unit: str, mine: Dict[str, float], ref: Dict[str, float], reference: str, note: str = "") -> Dict:
    """One table row from the :func:`summary` of ours (``mine``) and of the reference."""
    return dict(
        row=row, unit=unit, ours=mine["median"], espnet=ref["median"], ours_best=mine["best"],
        espnet_best=ref["best"], reference=reference, note=note,
    )  # fmt: skip


def peak_mem_mb(device: str) -> Optional[float]:
    """Peak memory so far: CUDA allocator peak, or the process's max RSS on CPU (MiB)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vocoder_config(preset: str) -> Dict[str, Any]:
    """Our V1 training config (22.05 kHz, hop 256) with the ``preset`` generator."""
    config = yaml.safe_load(V1_CONFIG.read_text(encoding="utf-8"))
    config["generator_conf"] = dict(GENERATOR_PRESETS[preset])
    config["normalize_conf"] = {}
    return config


def random_state(preset: str, seed: int = 0) -> Dict[str, torch.Tensor]:
    """A model state dict with the ``preset`` generator (random weights) and GlobalMVN statistics."""
    torch.manual_seed(seed)
    generator = HiFiGANGenerator(**GENERATOR_PRESETS[preset])
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state["normalize.mean"] = torch.full((80,), -4.0)
    state["normalize.std"] = torch.full((80,), 1.5)
    return state


def build_vocoder(preset: str, device: str, **options: Any) -> Vocoder:
    """A user-facing :class:`Vocoder` (random weights: speed does not depend on them)."""
    return Vocoder(vocoder_config(preset), random_state(preset), device, source=f"random {preset}", **options)


def espnet_generator(preset: str, device: str) -> torch.nn.Module:
    """ESPnet's ``espnet2.gan_tts.hifigan.HiFiGANGenerator`` for ``preset``, weight norm removed, eval."""
    from espnet2.gan_tts.hifigan.hifigan import HiFiGANGenerator as ESPnetGenerator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        generator = ESPnetGenerator(**espnet_generator_kwargs(preset))
        generator.remove_weight_norm()
    return generator.eval().to(device)


def random_mel(frames: int, seed: int = 0) -> np.ndarray:
    """Log-mel-like input (frames, 80) around the statistics of :func:`random_state`."""
    return (np.random.default_rng(seed).standard_normal((frames, 80)) * 1.5 - 4.0).astype(np.float32)


def deep_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy (benchmarks that change dtypes keep the original intact)."""
    return copy.deepcopy(module)
