"""The full-utterance validation metric: batched on the device vs one utterance at a time.

``ESPnetHiFiGANModel.full_utterance_metrics`` synthesises the padded batch in one generator call
and computes ``loss_mel_l1`` and the MR-STFT distance with torch where the batch lives; the
previous code synthesised each utterance alone and scored it with the numpy MR-STFT scorer (a
host read per utterance). Both run interleaved in one process; the ratio is printed.

Example:
    python benchmarks/bench_validation_metric.py --preset v2 --batch 8 --seconds 3 --device cpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from espnet_hifigan.evaluation.metrics.spectral import multi_resolution_stft_distance
from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel


@torch.no_grad()
def per_utterance(model: ESPnetHiFiGANModel, speech: torch.Tensor, lengths: torch.Tensor) -> dict:
    """The former implementation: inference and numpy scoring one utterance at a time."""
    feats, feats_lengths = model.feats_extract(speech, lengths)
    mel_l1, mrstft = 0.0, 0.0
    for i in range(speech.size(0)):
        wav = model.inference(feats[i, : feats_lengths[i]])["wav"]
        n = min(wav.numel(), int(lengths[i]))
        ref, gen = speech[i, :n].float(), wav[:n].float()
        mel_l1 += model.mel_loss(gen.view(1, 1, -1), ref.view(1, 1, -1)).item()
        mrstft += multi_resolution_stft_distance(ref.cpu().numpy(), gen.cpu().numpy()).total
    return dict(loss_mel_l1=mel_l1 / speech.size(0), mrstft=mrstft / speech.size(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v2", choices=["v1", "v2", "v3"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="longest utterance; others 60-100 %% of it")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    fs = 22050
    model = ESPnetHiFiGANModel(
        LogMelSpectrogram(fs=fs), None, HiFiGANGenerator.from_preset(args.preset), HiFiGANDiscriminator()
    ).eval().to(device)
    rng = np.random.default_rng(0)
    longest = int(args.seconds * fs)
    lengths = torch.tensor(sorted((rng.uniform(0.6, 1.0, args.batch) * longest).astype(int), reverse=True))
    lengths[0] = longest
    speech = 0.1 * torch.randn(args.batch, longest)
    speech[torch.arange(longest)[None, :] >= lengths[:, None]] = 0.0
    speech, lengths = speech.to(device), lengths.to(device)

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = {k: float(v) for k, v in fn().items()}
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, out

    times = {"per-utterance (before)": [], "batched (now)": []}
    results = {}
    for _ in range(args.repeats):  # interleaved
        t, results["per-utterance (before)"] = timed(lambda: per_utterance(model, speech, lengths))
        times["per-utterance (before)"].append(t)
        t, results["batched (now)"] = timed(lambda: model.full_utterance_metrics(speech, lengths))
        times["batched (now)"].append(t)
    print(f"device={device} preset={args.preset} batch={args.batch} longest={args.seconds}s "
          f"threads={torch.get_num_threads()}")
    for name, ts in times.items():
        r = results[name]
        print(f"{name:24s} median {statistics.median(ts):.3f} s  loss_mel_l1={r['loss_mel_l1']:.5f} mrstft={r['mrstft']:.5f}")
    ratio = statistics.median(times["per-utterance (before)"]) / statistics.median(times["batched (now)"])
    print(f"speed-up batched vs per-utterance: x{ratio:.2f}")


if __name__ == "__main__":
    main()
