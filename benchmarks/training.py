"""One full HiFi-GAN V1 training step: ours vs a reference built from ESPnet's modules.

A step is what ``GANTrainer`` runs per batch: the discriminator turn (forward, losses,
backward, AdamW step), then the generator turn (the cached generator output, all losses,
backward, AdamW step), and the statistics read to the host the way each trainer reads them.

* ours: :class:`ESPnetHiFiGANModel` built from ``conf/hifigan_v1.yaml`` as the task builds it,
  its statistics kept on the device by :class:`espnet_hifigan.trainer.DeferredReporter` and read
  once per step here (the trainer reads them once per ``log_interval``).
* espnet: ``espnet2.gan_tts.hifigan``'s ``HiFiGANGenerator``,
  ``HiFiGANMultiScaleMultiPeriodDiscriminator``, ``MelSpectrogramLoss``,
  ``GeneratorAdversarialLoss``, ``FeatureMatchLoss``, ``DiscriminatorAdversarialLoss`` and AdamW,
  in the structure of ESPnet's GAN TTS models (one generator forward cached per batch, real and
  fake scored by two discriminator calls, ``.item()`` of every statistic, then ESPnet's reporter).

The two run interleaved in one process (ours, espnet, ours, ...), same shapes, same device;
the medians are reported. ``rows`` is imported by ``benchmarks/run.py``.

Example::

    python -m benchmarks.training --device cpu --size quick
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import yaml
from espnet2.gan_tts.hifigan.hifigan import HiFiGANGenerator as ESPnetGenerator
from espnet2.gan_tts.hifigan.hifigan import HiFiGANMultiScaleMultiPeriodDiscriminator
from espnet2.gan_tts.hifigan.loss import (
    DiscriminatorAdversarialLoss,
    FeatureMatchLoss,
    GeneratorAdversarialLoss,
    MelSpectrogramLoss,
)
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.reporter import SubReporter

from espnet_hifigan.discriminator import HiFiGANDiscriminator
from espnet_hifigan.espnet_model import ESPnetHiFiGANModel
from espnet_hifigan.features import LogMelSpectrogram
from espnet_hifigan.generator import HiFiGANGenerator
from espnet_hifigan.presets import espnet_generator_kwargs
from espnet_hifigan.trainer import DeferredReporter

V1_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "hifigan_v1.yaml"
SIZES = {"quick": dict(batch=2, segment=8192, steps=5), "full": dict(batch=16, segment=8192, steps=20)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _mvn_stats(path: Path, n_mels: int) -> None:
    """Unit-variance zero-mean GlobalMVN statistics (the recipe's feats_stats.npz format)."""
    np.savez(path, count=np.array(1000), sum=np.zeros(n_mels), sum_square=np.full(n_mels, 1000.0))


def build_ours(device: torch.device, stats_file: Path) -> Callable[[Dict[str, torch.Tensor]], None]:
    """ESPnetHiFiGANModel from conf/hifigan_v1.yaml and its two AdamW optimizers; returns a step."""
    conf = yaml.safe_load(V1_CONFIG.read_text())
    feats_extract = LogMelSpectrogram(**conf["feats_extract_conf"])
    _mvn_stats(stats_file, feats_extract.n_mels)
    model = ESPnetHiFiGANModel(
        feats_extract=feats_extract,
        normalize=GlobalMVN(stats_file=str(stats_file)),
        generator=HiFiGANGenerator(in_channels=feats_extract.n_mels, **conf["generator_conf"]),
        discriminator=HiFiGANDiscriminator(**conf["discriminator_conf"]),
        **conf["model_conf"],
    ).to(device).train()
    optimizers = [
        torch.optim.AdamW(model.generator.parameters(), **conf["optim_conf"]),
        torch.optim.AdamW(model.discriminator.parameters(), **conf["optim2_conf"]),
    ]
    reporter = DeferredReporter(SubReporter("train", 1, 0))

    def step(batch: Dict[str, torch.Tensor]) -> None:
        for turn in ("discriminator", "generator"):
            retval = model(forward_generator=turn == "generator", **batch)
            reporter.register(retval["stats"], retval["weight"])
            retval["loss"].backward()
            optimizers[retval["optim_idx"]].step()
            for optimizer in optimizers:
                optimizer.zero_grad()
        reporter.next()
        reporter.flush()

    return step


def build_espnet(device: torch.device) -> Callable[[Dict[str, torch.Tensor]], None]:
    """The same step from ESPnet's HiFi-GAN modules and losses, as ESPnet's GAN TTS models run it."""
    conf = yaml.safe_load(V1_CONFIG.read_text())
    fx = conf["feats_extract_conf"]
    generator = ESPnetGenerator(**espnet_generator_kwargs("v1", fx["n_mels"])).to(device).train()
    discriminator = HiFiGANMultiScaleMultiPeriodDiscriminator().to(device).train()
    mel_loss = MelSpectrogramLoss(
        fs=fx["fs"], n_fft=fx["n_fft"], hop_length=fx["hop_length"], n_mels=fx["n_mels"], fmin=0, fmax=None,
        log_base=None,
    ).to(device)
    adv_loss_fn = GeneratorAdversarialLoss(average_by_discriminators=False, loss_type="mse")
    disc_loss_fn = DiscriminatorAdversarialLoss(average_by_discriminators=False, loss_type="mse")
    fm_loss_fn = FeatureMatchLoss(average_by_layers=False, average_by_discriminators=False, include_final_outputs=True)
    optimizers = [
        torch.optim.AdamW(generator.parameters(), **conf["optim_conf"]),
        torch.optim.AdamW(discriminator.parameters(), **conf["optim2_conf"]),
    ]
    mc = conf["model_conf"]
    frames = mc["segment_size"] // fx["hop_length"]
    reporter = SubReporter("train", 1, 0)

    def step(batch: Dict[str, torch.Tensor]) -> None:
        speech = batch["speech"][:, : mc["segment_size"]].unsqueeze(1)
        feats = batch["feats"][:, :frames].transpose(1, 2)
        batch_size = speech.size(0)
        speech_hat = generator(feats)  # cached for the generator turn
        # Discriminator turn.
        p_hat = discriminator(speech_hat.detach())
        p = discriminator(speech)
        real_loss, fake_loss = disc_loss_fn(p_hat, p)
        loss = real_loss + fake_loss
        stats = dict(discriminator_loss=loss.item(), real_loss=real_loss.item(), fake_loss=fake_loss.item())
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        reporter.register(stats, weight)
        loss.backward()
        optimizers[1].step()
        for optimizer in optimizers:
            optimizer.zero_grad()
        # Generator turn.
        p_hat = discriminator(speech_hat)
        with torch.no_grad():
            p = discriminator(speech)
        adv_loss = adv_loss_fn(p_hat) * mc["lambda_adv"]
        fm_loss = fm_loss_fn(p_hat, p) * mc["lambda_feat_match"]
        m_loss = mel_loss(speech_hat, speech) * mc["lambda_mel"]
        loss = adv_loss + fm_loss + m_loss
        stats = dict(
            feat_match_loss=fm_loss.item(), mel_loss=m_loss.item(), adv_loss=adv_loss.item(), loss=loss.item()
        )
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        reporter.register(stats, weight)
        loss.backward()
        optimizers[0].step()
        for optimizer in optimizers:
            optimizer.zero_grad()
        reporter.next()

    return step


def make_batch(device: torch.device, batch: int, segment: int, hop: int = 256, n_mels: int = 80) -> Dict[str, torch.Tensor]:
    """Segment-sized utterances (what the training collate delivers) with matching log-mels."""
    g = torch.Generator().manual_seed(0)
    speech = 0.1 * torch.randn(batch, segment, generator=g)
    frames = segment // hop
    return {
        "speech": speech.to(device),
        "speech_lengths": torch.full((batch,), segment, dtype=torch.long, device=device),
        "feats": torch.randn(batch, frames, n_mels, generator=g).to(device) - 5.0,
        "feats_lengths": torch.full((batch,), frames, dtype=torch.long, device=device),
    }


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _time(
    step: Callable, batch: Dict[str, torch.Tensor], device: torch.device, clock: Callable[[], float]
) -> tuple[float, Optional[float]]:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = clock()
    step(batch)
    _sync(device)
    elapsed = clock() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return elapsed, peak


def rows(device: str, size: str, steps: Optional[int] = None, warmup: int = 1, clock: str = "wall") -> List[dict]:
    """Measure the V1 training step of ours and of ESPnet's modules, interleaved.

    Args:
        device: ``cpu`` or ``cuda``.
        size: ``quick`` (batch 2 x 8192) or ``full`` (batch 16 x 8192).
        steps: Timed steps of each (default: 5 quick, 20 full).
        warmup: Untimed steps of each first.
        clock: ``wall`` (steps/s as a user sees them) or ``cpu`` (this process's CPU seconds per
            step, summed over its threads: steadier on a machine shared with other work).

    Returns:
        One row dict(row, unit, ours, espnet, ours_peak_mem_mb, espnet_peak_mem_mb); steps/s are
        medians over the timed steps; peak memory only on CUDA (else None).
    """
    dev = torch.device(device)
    shape = SIZES[size]
    steps = shape["steps"] if steps is None else steps
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        runners = {"ours": build_ours(dev, Path(tmp) / "feats_stats.npz"), "espnet": build_espnet(dev)}
    batch = make_batch(dev, shape["batch"], shape["segment"])
    times: Dict[str, List[float]] = {name: [] for name in runners}
    peaks: Dict[str, List[float]] = {name: [] for name in runners}
    for i in range(warmup + steps):
        for name, step in runners.items():
            elapsed, peak = _time(step, batch, dev, CLOCKS[clock])
            if i >= warmup:
                times[name].append(elapsed)
                if peak is not None:
                    peaks[name].append(peak)
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu {torch.get_num_threads()} threads"
    return [
        {
            "row": f"V1 training step, batch {shape['batch']} x {shape['segment']} ({where})",
            "unit": "steps/s" if clock == "wall" else "steps per CPU-second",
            "ours": 1.0 / statistics.median(times["ours"]),
            "espnet": 1.0 / statistics.median(times["espnet"]),
            "ours_peak_mem_mb": max(peaks["ours"]) if peaks["ours"] else None,
            "espnet_peak_mem_mb": max(peaks["espnet"]) if peaks["espnet"] else None,
        }
    ]


def _fmt_mem(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="quick", choices=sorted(SIZES))
    parser.add_argument("--steps", type=int, default=None, help="timed steps of each (default by size)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="wall time or process CPU time")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print("| row | unit | ours | ESPnet | ours/ESPnet | peak MiB ours | peak MiB ESPnet |")
    print("|---|---|---|---|---|---|---|")
    for r in rows(args.device, args.size, args.steps, args.warmup, args.clock):
        print(
            f"| {r['row']} | {r['unit']} | {r['ours']:.3f} | {r['espnet']:.3f} | {r['ours'] / r['espnet']:.2f}x "
            f"| {_fmt_mem(r['ours_peak_mem_mb'])} | {_fmt_mem(r['espnet_peak_mem_mb'])} |"
        )


if __name__ == "__main__":
    main()
