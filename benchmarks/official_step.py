"""The official training step (jik876/hifi-gan ``train.py``) as a benchmark reference.

The step is formulated as the official loop runs it, on ESPnet's network modules (the same
architecture as the official ``Generator``, ``MultiPeriodDiscriminator`` and
``MultiScaleDiscriminator``; the official code is not a dependency):

- one generator forward, then the loss mel of its output (``torch.stft`` of the reflect-padded
  signal, ``center=False``, ``sqrt(|X|^2 + 1e-9)``, librosa's Slaney mel basis,
  ``log(clamp(x, 1e-5))``); the target mel comes from the data loader (made once here, untimed);
- the discriminator step: both discriminators on the real and on the detached fake waveform,
  LSGAN losses, backward, AdamW step;
- the generator step: both discriminators on the real and on the fake waveform again (the real
  one with gradients enabled, as the official code does), 45 x mel L1 + 2 x feature matching +
  the LSGAN generator loss, backward, AdamW step;
- ``torch.backends.cudnn.benchmark = True``, no ``.item()`` per step (the official loop reads a
  statistic every ``stdout_interval`` = 5 steps).

``autocast_dtype`` wraps the networks' forwards in ``torch.autocast`` with the losses in fp32:
the "naive" mixed-precision variant one would add to the official code.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from espnet2.gan_tts.hifigan.hifigan import HiFiGANGenerator as ESPnetGenerator
from espnet2.gan_tts.hifigan.hifigan import HiFiGANMultiScaleMultiPeriodDiscriminator

from espnet_hifigan.nets.presets import espnet_generator_kwargs

CUDNN = dict(benchmark=True, deterministic=False)


class OfficialMel(torch.nn.Module):
    """The official ``meldataset.mel_spectrogram`` (natural log, reflect padding, ``center=False``)."""

    def __init__(self, fs: int, n_fft: int, hop: int, win: int, n_mels: int, fmin: float, fmax: Optional[float]):
        super().__init__()
        import librosa

        basis = librosa.filters.mel(sr=fs, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("basis", torch.from_numpy(basis).float())
        self.register_buffer("window", torch.hann_window(win))
        self.n_fft, self.hop, self.win = n_fft, hop, win

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T) waveform -> (B, n_mels, frames) log-mel."""
        pad = (self.n_fft - self.hop) // 2
        y = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            y, self.n_fft, hop_length=self.hop, win_length=self.win, window=self.window, center=False,
            normalized=False, onesided=True, return_complex=True,
        )  # fmt: skip
        spec = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
        return torch.log(torch.clamp(torch.matmul(self.basis, spec), min=1e-5))


def _disc_loss(real: List[List[torch.Tensor]], fake: List[List[torch.Tensor]]) -> torch.Tensor:
    return sum(torch.mean((1 - r[-1]) ** 2) + torch.mean(g[-1] ** 2) for r, g in zip(real, fake))


def _gen_loss(fake: List[List[torch.Tensor]]) -> torch.Tensor:
    return sum(torch.mean((1 - g[-1]) ** 2) for g in fake)


def _feature_loss(real: List[List[torch.Tensor]], fake: List[List[torch.Tensor]]) -> torch.Tensor:
    return 2 * sum(torch.mean(torch.abs(rl - gl)) for r, g in zip(real, fake) for rl, gl in zip(r, g))


def build_official(
    device: torch.device, conf: Dict, preset: str = "v1", autocast_dtype: Optional[torch.dtype] = None
) -> Callable[[Dict[str, torch.Tensor]], None]:
    """The official training step for ``preset`` with the feature geometry of ``conf``; returns a step.

    Args:
        device: Where it runs.
        conf: A training config (its ``feats_extract_conf``, ``model_conf.segment_size`` and
            ``optim_conf`` learning rate and betas are used).
        preset: ``v1``, ``v2`` or ``v3``.
        autocast_dtype: None (fp32, the official code) or a dtype for the networks' forwards.
    """
    fx = conf["feats_extract_conf"]
    segment = conf["model_conf"]["segment_size"]
    generator = ESPnetGenerator(**espnet_generator_kwargs(preset, fx["n_mels"])).to(device).train()
    discriminator = HiFiGANMultiScaleMultiPeriodDiscriminator().to(device).train()
    win = fx.get("win_length") or fx["n_fft"]
    loss_mel = OfficialMel(fx["fs"], fx["n_fft"], fx["hop_length"], win, fx["n_mels"], 0, None).to(device)
    adamw = dict(lr=conf["optim_conf"]["lr"], betas=tuple(conf["optim_conf"]["betas"]))
    optim_g = torch.optim.AdamW(generator.parameters(), **adamw)
    optim_d = torch.optim.AdamW(discriminator.parameters(), **adamw)
    frames = segment // fx["hop_length"]
    targets: Dict[int, torch.Tensor] = {}

    def networks():
        if autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=autocast_dtype)

    def fp32(outs: List[List[torch.Tensor]]) -> List[List[torch.Tensor]]:
        return [[t.float() for t in o] for o in outs]

    def step(batch: Dict[str, torch.Tensor]) -> None:
        torch.backends.cudnn.benchmark = CUDNN["benchmark"]
        torch.backends.cudnn.deterministic = CUDNN["deterministic"]
        x = batch["feats"][:, :frames].transpose(1, 2)
        y = batch["speech"][:, :segment]
        key = id(batch["speech"])
        if key not in targets:  # the data loader's y_mel (computed in its workers, not in the step)
            with torch.no_grad():
                targets[key] = loss_mel(y)
        y_mel, y = targets[key], y.unsqueeze(1)
        with networks():
            y_g_hat = generator(x)
        y_g_hat = y_g_hat.float()
        y_g_hat_mel = loss_mel(y_g_hat.squeeze(1))
        optim_d.zero_grad()
        with networks():
            real, fake = discriminator(y), discriminator(y_g_hat.detach())
        loss_disc = _disc_loss(fp32(real), fp32(fake))
        loss_disc.backward()
        optim_d.step()
        optim_g.zero_grad()
        loss_mel_l1 = F.l1_loss(y_mel, y_g_hat_mel) * 45
        with networks():
            real, fake = discriminator(y), discriminator(y_g_hat)
        real, fake = fp32(real), fp32(fake)
        loss_gen = _gen_loss(fake) + _feature_loss(real, fake) + loss_mel_l1
        loss_gen.backward()
        optim_g.step()

    return step
