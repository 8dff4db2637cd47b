"""Real-time factor of generator inference (weight norm folded) on one utterance.

Example:
    python benchmarks/bench_inference.py --preset v1 --seconds 10 --device cpu
    python benchmarks/bench_inference.py --preset v1 --seconds 10 --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import time

import torch

from espnet_hifigan.generator import HiFiGANGenerator
from espnet_hifigan.presets import espnet_generator_kwargs

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v1", choices=["v1", "v2", "v3"])
    parser.add_argument("--seconds", type=float, default=10.0, help="utterance length")
    parser.add_argument("--fs", type=int, default=22050)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--impl", default="ours", choices=["ours", "espnet"], help="espnet: espnet2.gan_tts modules")
    args = parser.parse_args()

    device = torch.device(args.device)
    generator = HiFiGANGenerator.from_preset(args.preset)
    if args.impl == "espnet":
        from espnet2.gan_tts.hifigan.hifigan import HiFiGANGenerator as ESPnetGenerator

        generator = ESPnetGenerator(**espnet_generator_kwargs(args.preset))
    generator.remove_weight_norm()
    generator.eval().to(device)
    frames = int(args.seconds * args.fs / generator.upsample_factor)
    mel = torch.randn(frames, 80, device=device)
    dtype = DTYPES[args.dtype]
    timings = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        generator.inference(mel)  # warm-up
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            generator.inference(mel)
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
    best = min(timings)
    audio = frames * generator.upsample_factor / args.fs
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"{args.impl} {args.preset} inference, {audio:.2f} s utterance, batch 1, {args.dtype}: "
        f"{best:.3f} s, {audio / best:.2f}x real time ({name}, torch {torch.__version__})"
    )


if __name__ == "__main__":
    main()
