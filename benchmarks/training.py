"""One full HiFi-GAN training step (V1, or V1/V2/V3): ours vs ESPnet's modules and the official step.

A step is what ``GANTrainer`` runs per batch: the discriminator turn (forward, losses,
backward, AdamW step), then the generator turn (the cached generator output, all losses,
backward, AdamW step), and the statistics read to the host the way each trainer reads them.

* ours: :class:`ESPnetHiFiGANModel` built from ``conf/hifigan_<preset>.yaml`` as the task builds it,
  its statistics kept on the device by :class:`espnet_hifigan.train.trainer.DeferredReporter` and read
  once per step here (the trainer reads them once per ``log_interval``); variants (:data:`VARIANTS`):
  ``bf16`` autocast, ``compile``, ``cudnn`` (cuDNN benchmark mode on, deterministic off, instead of
  ESPnet's defaults).
* espnet: ``espnet2.gan_tts.hifigan``'s ``HiFiGANGenerator``,
  ``HiFiGANMultiScaleMultiPeriodDiscriminator``, ``MelSpectrogramLoss``,
  ``GeneratorAdversarialLoss``, ``FeatureMatchLoss``, ``DiscriminatorAdversarialLoss`` and AdamW,
  in the structure of ESPnet's GAN TTS models (one generator forward cached per batch, real and
  fake scored by two discriminator calls, ``.item()`` of every statistic, then ESPnet's reporter).
* official (CUDA): :mod:`benchmarks.official_step`, the jik876 ``train.py`` loop.

All run interleaved in one process (ours, espnet, official, ours, ...), same shapes, same device;
the medians are reported. ``rows`` is imported by ``benchmarks/run.py``.

Example::

    python -m benchmarks.training --device cpu --size quick
"""

from __future__ import annotations

import argparse
import logging
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

from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.nets.presets import espnet_generator_kwargs
from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel
from espnet_hifigan.train.trainer import DeferredReporter

V1_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "hifigan_v1.yaml"
SIZES = {
    "quick": dict(batch=2, segment=8192, steps=5, presets=["v1"]),
    "full": dict(batch=16, segment=8192, steps=10, presets=["v1", "v2", "v3"]),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _mvn_stats(path: Path, n_mels: int) -> None:
    """Unit-variance zero-mean GlobalMVN statistics (the recipe's feats_stats.npz format)."""
    np.savez(path, count=np.array(1000), sum=np.zeros(n_mels), sum_square=np.full(n_mels, 1000.0))


# cuDNN settings of each side as its own trainer sets them: ESPnet's AbsTask defaults
# (--cudnn_deterministic true, --cudnn_benchmark false), the official train.py (benchmark on), and
# ours from the training config's cudnn_* keys (conf/hifigan_v*.yaml).
ESPNET_CUDNN = dict(benchmark=False, deterministic=True)
OFFICIAL_CUDNN = dict(benchmark=True, deterministic=False)
# Our variants: "+"-joined fp32 | bf16, compile, cudnn (benchmark mode on, deterministic off); fused
# AdamW and any cudnn_* keys come from the config.
VARIANTS = {"cpu": ["fp32"], "cuda": ["fp32", "fp32+cudnn", "bf16+cudnn", "bf16+compile+cudnn"]}


def preset_config(preset: str) -> Dict:
    """The training config conf/hifigan_<preset>.yaml."""
    return yaml.safe_load((V1_CONFIG.parent / f"hifigan_{preset}.yaml").read_text())


def config_cudnn(conf: Dict) -> Dict[str, bool]:
    """cuDNN flags a training config sets (ESPnet's defaults where it says nothing)."""
    return dict(
        benchmark=bool(conf.get("cudnn_benchmark", ESPNET_CUDNN["benchmark"])),
        deterministic=bool(conf.get("cudnn_deterministic", ESPNET_CUDNN["deterministic"])),
    )


def build_ours(
    device: torch.device, stats_file: Path, preset: str = "v1", variant: str = "fp32"
) -> Callable[[Dict[str, torch.Tensor]], None]:
    """ESPnetHiFiGANModel from conf/hifigan_<preset>.yaml and its two AdamW optimizers; returns a step.

    ``variant``: ``fp32``, ``bf16`` (model_conf autocast_dtype bfloat16), ``+compile`` (model_conf
    compile true), ``+cudnn`` (cudnn_benchmark true, cudnn_deterministic false); every other
    setting (fused AdamW included) is the config's.
    """
    conf = preset_config(preset)
    parts = set(variant.split("+"))
    model_conf = dict(conf["model_conf"], validate_full_utterances=False)
    model_conf["autocast_dtype"] = "bfloat16" if "bf16" in parts else None
    model_conf["compile"] = "compile" in parts
    feats_extract = LogMelSpectrogram(**conf["feats_extract_conf"])
    _mvn_stats(stats_file, feats_extract.n_mels)
    model = ESPnetHiFiGANModel(
        feats_extract=feats_extract,
        normalize=GlobalMVN(stats_file=str(stats_file)),
        generator=HiFiGANGenerator(in_channels=feats_extract.n_mels, **conf["generator_conf"]),
        discriminator=HiFiGANDiscriminator(**conf["discriminator_conf"]),
        **model_conf,
    ).to(device).train()
    optimizers = [
        torch.optim.AdamW(model.generator.parameters(), **conf["optim_conf"]),
        torch.optim.AdamW(model.discriminator.parameters(), **conf["optim2_conf"]),
    ]
    reporter = DeferredReporter(SubReporter("train", 1, 0))
    cudnn = OFFICIAL_CUDNN if "cudnn" in parts else config_cudnn(conf)

    def step(batch: Dict[str, torch.Tensor]) -> None:
        _set_cudnn(cudnn)
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


def _set_cudnn(flags: Dict[str, bool]) -> None:
    torch.backends.cudnn.benchmark = flags["benchmark"]
    torch.backends.cudnn.deterministic = flags["deterministic"]


def build_espnet(device: torch.device, preset: str = "v1") -> Callable[[Dict[str, torch.Tensor]], None]:
    """The same step from ESPnet's HiFi-GAN modules and losses, as ESPnet's GAN TTS models run it
    (fp32, cuDNN as ESPnet's trainer sets it by default)."""
    conf = preset_config(preset)
    fx = conf["feats_extract_conf"]
    generator = ESPnetGenerator(**espnet_generator_kwargs(preset, fx["n_mels"])).to(device).train()
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
        _set_cudnn(ESPNET_CUDNN)
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


def label_of(preset: str, shape: Dict, where: str) -> str:
    """The start of a training row's name."""
    return f"{preset.upper()} training step, batch {shape['batch']} x {shape['segment']} ({where})"


def rows(
    device: str,
    size: str,
    steps: Optional[int] = None,
    warmup: Optional[int] = None,
    clock: str = "wall",
    presets: Optional[List[str]] = None,
    variants: Optional[List[str]] = None,
    references: Optional[List[str]] = None,
    profile_dir: Optional[Path] = None,
    reference_rows: bool = True,
) -> List[dict]:
    """Measure training steps of ours and of the references, interleaved, preset by preset.

    Args:
        device: ``cpu`` or ``cuda``.
        size: ``quick`` (V1, batch 2 x 8192) or ``full`` (V1/V2/V3, batch 16 x 8192).
        steps: Timed steps of each (default: 5 quick, 10 full).
        warmup: Untimed steps of each first (default: 1 on the CPU, 2 on CUDA: compilation and
            cuDNN's algorithm search happen there; the first step's time is in the row's note).
        clock: ``wall`` (steps/s as a user sees them) or ``cpu`` (this process's CPU seconds per
            step, summed over its threads: steadier on a machine shared with other work).
        presets: Generators measured (default by size).
        variants: Our paths (default :data:`VARIANTS` of the device): ``fp32``, ``bf16``,
            ``bf16+compile``, ...
        references: ``espnet`` (ESPnet's modules, as ESPnet's GAN TTS models train) and/or
            ``official`` (:mod:`benchmarks.official_step`); default: both on CUDA, ESPnet on the CPU.
        profile_dir: On CUDA, write ``profile_<preset>_<path>.txt`` here: the profile of our
            fastest path's step (:func:`benchmarks.profile_step.profile_step`).
        reference_rows: Also the row of the official step against ESPnet's modules.

    Returns:
        Per preset, one row per variant of ours against ESPnet's modules (steps/s, medians over
        the timed steps; the ratio against the official step in the note) and, with both
        references, a row of the official step against ESPnet's. Peak memory only on CUDA.
    """
    from benchmarks.official_step import build_official

    dev = torch.device(device)
    shape = SIZES[size]
    steps = shape["steps"] if steps is None else steps
    warmup = (2 if dev.type == "cuda" else 1) if warmup is None else warmup
    presets = presets or shape["presets"]
    variants = variants or VARIANTS[dev.type]
    references = references or (["espnet", "official"] if dev.type == "cuda" else ["espnet"])
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu {torch.get_num_threads()} threads"
    out: List[dict] = []
    for preset in presets:
        torch.manual_seed(0)
        runners: Dict[str, Callable] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for variant in variants:
                runners[f"ours {variant}"] = build_ours(dev, Path(tmp) / f"{variant}.npz", preset, variant)
        if "espnet" in references:
            runners["espnet"] = build_espnet(dev, preset)
        if "official" in references:
            runners["official"] = build_official(dev, preset_config(preset), preset)
        batch = make_batch(dev, shape["batch"], shape["segment"])
        times: Dict[str, List[float]] = {name: [] for name in runners}
        peaks: Dict[str, List[float]] = {name: [] for name in runners}
        first: Dict[str, float] = {}
        _set_cudnn(ESPNET_CUDNN)
        for i in range(warmup + steps):
            for name, step in list(runners.items()):
                try:
                    elapsed, peak = _time(step, batch, dev, CLOCKS[clock])
                except Exception:
                    if i > 0 or not name.startswith("ours"):
                        raise
                    # one of our paths that cannot run here is reported and left out
                    logging.exception(f"{preset} {name}: the first step failed; left out")
                    del runners[name]
                    continue
                if name not in first:
                    first[name] = elapsed
                    print(f"[training {preset}] {name}: first step {elapsed:.1f} s", flush=True)
                if i >= warmup:
                    times[name].append(elapsed)
                    if peak is not None:
                        peaks[name].append(peak)
        rate = {name: 1.0 / statistics.median(times[name]) for name in runners}
        best = {name: 1.0 / min(times[name]) for name in runners}
        if profile_dir is not None and dev.type == "cuda":
            from benchmarks.profile_step import profile_step

            fastest = max((n for n in runners if n.startswith("ours")), key=rate.get)
            text = profile_step(runners[fastest], batch)
            Path(profile_dir).mkdir(parents=True, exist_ok=True)
            name = f"profile_{preset}_{fastest.split()[-1].replace('+', '_')}.txt"
            (Path(profile_dir) / name).write_text(f"{label_of(preset, shape, where)}, {fastest}\n{text}\n")
        reference = "espnet" if "espnet" in runners else references[0]
        label = label_of(preset, shape, where)
        for name in [n for n in runners if n.startswith("ours")] + (["official"] if reference_rows and reference != "official" and "official" in runners else []):
            note = f"first step {first[name]:.1f} s" if "compile" in name else ""
            if "official" in runners and name != "official":
                note = "; ".join(x for x in (f"{rate[name] / rate['official']:.2f}x the official step", note) if x)
            out.append(
                {
                    "row": f"{label}, {name}" + (" formulation fp32" if name == "official" else ""),
                    "unit": "steps/s" if clock == "wall" else "steps per CPU-second",
                    "ours": rate[name],
                    "espnet": rate[reference],
                    "ours_best": best[name],
                    "espnet_best": best[reference],
                    "reference": "ESPnet modules fp32" if reference == "espnet" else "official step fp32",
                    "note": note,
                    "ours_peak_mem_mb": max(peaks[name]) if peaks[name] else None,
                    "espnet_peak_mem_mb": max(peaks[reference]) if peaks[reference] else None,
                }
            )
        del runners
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return out


def _fmt_mem(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="quick", choices=sorted(SIZES))
    parser.add_argument("--steps", type=int, default=None, help="timed steps of each (default by size)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="wall time or process CPU time")
    parser.add_argument("--presets", nargs="+", default=None, choices=["v1", "v2", "v3"])
    parser.add_argument("--variants", nargs="+", default=None, help="ours: fp32, bf16, bf16+compile, ...")
    parser.add_argument("--references", nargs="+", default=None, choices=["espnet", "official"])
    parser.add_argument("--profile_dir", default=None, help="CUDA: write the profile of our fastest path here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print("| row | unit | ours | ESPnet | ours/ESPnet | peak MiB ours | peak MiB ESPnet |")
    print("|---|---|---|---|---|---|---|")
    for r in rows(args.device, args.size, args.steps, args.warmup, args.clock, args.presets, args.variants, args.references,
                  args.profile_dir):
        print(
            f"| {r['row']} | {r['unit']} | {r['ours']:.3f} | {r['espnet']:.3f} | {r['ours'] / r['espnet']:.2f}x "
            f"| {_fmt_mem(r['ours_peak_mem_mb'])} | {_fmt_mem(r['espnet_peak_mem_mb'])} |"
        )


if __name__ == "__main__":
    main()
