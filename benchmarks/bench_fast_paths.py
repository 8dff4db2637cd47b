"""Training step of each fast path (fp32, bf16 autocast, compiled, fused AdamW), interleaved.

All the paths are built from the same initial weights in one process and their steps are timed
round-robin (one step of each path per round), so that a shared, noisy machine slows them alike.
The first step of each path is untimed; for compiled paths its time (compilation included) is
printed as the compile time.

Example (prints seconds per step and the ratio to fp32 for every path):
    python -m benchmarks.bench_fast_paths --preset v1 --batch_size 2 --device cpu --rounds 3
    python -m benchmarks.bench_fast_paths --preset v1 --batch_size 16 --device cuda \\
        --paths fp32 bf16 bf16+compile+fused
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List

import torch

from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel

# A path is a "+"-joined set of: fp32 | bf16 | fp16, compile, fused.
DEFAULT_PATHS = ["fp32", "bf16", "fused", "compile"]


def make_step(model: ESPnetHiFiGANModel, fused: bool, speech: torch.Tensor, lengths: torch.Tensor) -> Callable[[], None]:
    """One GANTrainer step (D turn, G turn, optimizer steps) of ``model``."""
    optim_g = torch.optim.AdamW(model.generator.parameters(), 2e-4, betas=(0.8, 0.99), fused=fused)
    optim_d = torch.optim.AdamW(model.discriminator.parameters(), 2e-4, betas=(0.8, 0.99), fused=fused)
    scaler = torch.amp.GradScaler(speech.device.type) if model.run_network.autocast_dtype == torch.float16 else None

    def step() -> None:
        for forward_generator, optim in ((False, optim_d), (True, optim_g)):
            with torch.autocast(speech.device.type, enabled=scaler is not None):
                loss = model(speech, lengths, forward_generator=forward_generator)["loss"]
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optim)
                scaler.update()
            else:
                loss.backward()
                optim.step()
            optim_g.zero_grad(set_to_none=True)
            optim_d.zero_grad(set_to_none=True)
        if speech.device.type == "cuda":
            torch.cuda.synchronize()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v1", choices=["v1", "v2", "v3"])
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--segment_size", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3, help="timed steps of each path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: torch's default)")
    parser.add_argument("--paths", nargs="+", default=DEFAULT_PATHS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    speech = 0.1 * torch.randn(args.batch_size, args.segment_size, device=device)
    lengths = torch.full((args.batch_size,), args.segment_size, device=device)

    steps: Dict[str, Callable[[], None]] = {}
    for path in args.paths:
        parts = set(path.split("+"))
        dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(next((p for p in parts if p in ("bf16", "fp16")), ""), None)
        torch.manual_seed(0)  # the same initial weights for every path
        model = ESPnetHiFiGANModel(
            LogMelSpectrogram(fs=22050, n_fft=1024, hop_length=256), None,
            HiFiGANGenerator.from_preset(args.preset), HiFiGANDiscriminator(),
            segment_size=args.segment_size, autocast_dtype=dtype, compile="compile" in parts,
        ).to(device).train()
        steps[path] = make_step(model, "fused" in parts, speech, lengths)

    times: Dict[str, List[float]] = {path: [] for path in steps}
    for path, step in steps.items():  # first steps: warm-up and compilation
        start = time.perf_counter()
        step()
        print(f"{path}: first step {time.perf_counter() - start:.1f} s" + (" (compilation included)" if "compile" in path else ""))
    for _ in range(args.rounds):
        for path, step in steps.items():
            start = time.perf_counter()
            step()
            times[path].append(time.perf_counter() - start)

    print(f"\nV{args.preset[1:]} training step, batch {args.batch_size} x {args.segment_size}, {device}, "
          f"{torch.get_num_threads()} threads, {args.rounds} interleaved rounds (median s/step)")
    reference = sorted(times[args.paths[0]])[len(times[args.paths[0]]) // 2]
    for path, values in times.items():
        median = sorted(values)[len(values) // 2]
        print(f"{path:>24s}  {median:7.3f} s/step  {reference / median:5.2f}x {args.paths[0]}  "
              f"(all: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
