"""Time HiFi-GAN training steps (D turn + G turn, as GANTrainer runs them) of a preset.

Example (prints steps/s and seconds per step):
    python benchmarks/bench_train_step.py --preset v1 --batch_size 16 --segment_size 8192 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch

from espnet_hifigan.discriminator import HiFiGANDiscriminator
from espnet_hifigan.espnet_model import ESPnetHiFiGANModel
from espnet_hifigan.features import LogMelSpectrogram
from espnet_hifigan.generator import HiFiGANGenerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v1", choices=["v1", "v2", "v3"])
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--segment_size", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    feats_extract = LogMelSpectrogram(fs=22050, n_fft=1024, hop_length=256)
    model = ESPnetHiFiGANModel(
        feats_extract, None, HiFiGANGenerator.from_preset(args.preset), HiFiGANDiscriminator(),
        segment_size=args.segment_size,
    ).to(device).train()
    optim_g = torch.optim.AdamW(model.generator.parameters(), args.lr, betas=(0.8, 0.99))
    optim_d = torch.optim.AdamW(model.discriminator.parameters(), args.lr, betas=(0.8, 0.99))
    frames = args.segment_size // 256 + 1
    speech = 0.1 * torch.randn(args.batch_size, args.segment_size, device=device)
    lengths = torch.full((args.batch_size,), args.segment_size, device=device)
    feats, feats_lengths = feats_extract.to(device)(speech, lengths)
    assert feats.shape[1] == frames

    def step() -> None:
        for forward_generator, optim in ((False, optim_d), (True, optim_g)):
            out = model(speech, lengths, feats, feats_lengths, forward_generator=forward_generator)
            out["loss"].backward()
            optim.step()
            optim_g.zero_grad(set_to_none=True)
            optim_d.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / args.steps
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"{args.preset} train step, batch {args.batch_size} x {args.segment_size} samples: "
        f"{elapsed:.3f} s/step, {1 / elapsed:.3f} steps/s ({name}, torch {torch.__version__})"
    )


if __name__ == "__main__":
    main()
