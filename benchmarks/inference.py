"""Generator inference rows: ours through the user-facing ``Vocoder`` vs ESPnet's bare generator.

For each preset (V1/V2/V3) and batch size, every variant of ours and ESPnet's
``espnet2.gan_tts.hifigan.HiFiGANGenerator`` (fp32, weight norm removed, ``inference_mode``) are
timed interleaved on the same mel; the reference of every row is ESPnet's fp32 x real time.
Ours is what a user runs: ``Vocoder(...)(mel)`` for batch 1, ``Vocoder.synthesise_batch`` for
larger batches (input checks, normalisation, copies to/from numpy included).

Variants: ``fast fp32`` (the default engine), ``reference fp32`` (the plain generator module, the
path main used), on the CPU ``fast fp32 without FFT`` (``fft=False``), on CUDA also ``fast bf16``/``fast fp16`` (autocast) and ``fast fp32/bf16 +
compile`` (``torch.compile``, dynamic time axis; compile time in the row's note) and ``fast bf16 +
compile, CUDA graphs`` (mode ``reduce-overhead``). A path whose first call fails is logged and left out.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List

import numpy as np
import torch

from benchmarks.common import (
    build_vocoder,
    espnet_generator,
    interleaved,
    random_mel,
    summary,
    table_row,
)

FS, HOP = 22050, 256


def _variants(preset: str, device: str, paths: str = "all") -> Dict[str, Dict[str, Any]]:
    """Name -> (vocoder options, dtype) of the paths measured on ``device``: ``paths`` ``all``,
    ``plain`` (without ``torch.compile``) or ``compiled`` (only the compiled ones, CUDA)."""
    out = {
        "fast fp32": dict(options=dict(engine="fast"), dtype=torch.float32),
        "reference fp32": dict(options=dict(engine="reference"), dtype=torch.float32),
    }
    if not device.startswith("cuda"):  # the FFT layers' share of the fast engine (CPU only)
        out["fast fp32 without FFT"] = dict(options=dict(engine="fast", fft=False), dtype=torch.float32)
    if device.startswith("cuda"):
        out["fast bf16"] = dict(options=dict(engine="fast"), dtype=torch.bfloat16)
        out["fast fp16"] = dict(options=dict(engine="fast"), dtype=torch.float16)
    if device.startswith("cuda"):
        out["fast fp32 + compile"] = dict(options=dict(engine="fast", compile=True), dtype=torch.float32)
        out["fast bf16 + compile"] = dict(options=dict(engine="fast", compile=True), dtype=torch.bfloat16)
        out["fast bf16 + compile, CUDA graphs"] = dict(
            options=dict(engine="fast", compile="reduce-overhead"), dtype=torch.bfloat16
        )
    if paths != "all":
        out = {name: v for name, v in out.items() if ("compile" in name) == (paths == "compiled")}
    return out


def inference_rows(
    device: str, presets: List[str], batches: List[int], seconds: float, repeats: int, paths: str = "all"
) -> List[Dict]:
    """Rows ``{"row", "unit", "ours", "espnet", ...}`` (x real time, median) for every preset x batch x variant
    (``paths``: ``all``, ``plain`` or ``compiled``, see :func:`_variants`)."""
    rows: List[Dict] = []
    frames = int(seconds * FS / HOP)
    audio = frames * HOP / FS
    for preset in presets:
        espnet = espnet_generator(preset, device)
        variants = _variants(preset, device, paths)
        if not variants:
            continue
        vocoders = {name: build_vocoder(preset, device, **v["options"]) for name, v in variants.items()}
        for batch in batches:
            mels = [random_mel(frames, seed=i) for i in range(batch)]
            ref_input = torch.from_numpy(np.stack(mels)).transpose(1, 2).to(device)  # (B, 80, frames)

            def run_espnet() -> None:
                with torch.inference_mode():
                    (espnet.inference(ref_input[0].t()) if batch == 1 else espnet(ref_input)).cpu()

            def ours(name: str) -> Callable[[], Any]:
                vocoder, dtype = vocoders[name], variants[name]["dtype"]
                if batch == 1:
                    return lambda: vocoder(mels[0], dtype=dtype)
                return lambda: vocoder.synthesise_batch(mels, dtype)

            fns = {name: ours(name) for name in variants}
            notes: Dict[str, str] = {}
            for name in list(fns):  # the first call compiles: time it apart (not in the table's numbers)
                start = time.perf_counter()
                try:
                    fns[name]()
                except Exception:  # a path that fails is reported and left out, the others are measured
                    logging.exception(f"inference {preset} batch {batch}: {name} failed; left out")
                    del fns[name]
                    continue
                if "compile" in name:
                    notes[name] = f"compile + first call {time.perf_counter() - start:.1f} s"
                    print(f"[inference {preset} batch {batch}] {name}: {notes[name]}", flush=True)
            fns["espnet"] = run_espnet
            times = interleaved(fns, repeats, device)
            ref = summary(times["espnet"], audio * batch)
            for name in [n for n in variants if n in fns]:
                mine = summary(times[name], audio * batch)
                rows.append(
                    table_row(
                        f"inference {preset.upper()} {seconds:g} s batch {batch}, ours {name} vs ESPnet fp32",
                        "x real time", mine, ref, "ESPnet generator", notes.get(name, ""),
                    )  # fmt: skip
                )
    return rows
