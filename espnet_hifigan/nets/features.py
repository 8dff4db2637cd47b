"""Log-mel spectrogram extraction shared by training, dumping and scoring.

One class, :class:`LogMelSpectrogram`, covers the two conventions our users meet:

* ``padding: center`` (ESPnet ``LogMelFbank``): ``torch.stft(center=True)`` with reflect
  padding, magnitude ``sqrt(clamp(power, 1e-10))``, mel ``clamp(min=1e-10)``, ``log10``.
  ``frames = samples // hop + 1``.
* ``padding: official`` (jik876/hifi-gan ``mel_spectrogram``): reflect padding of
  ``(n_fft - hop) / 2`` on both sides, ``center=False``, magnitude ``sqrt(power + 1e-9)``,
  mel ``clamp(min=1e-5)``, natural log. ``frames = samples // hop``.

Every field is explicit, so a feature dump or a model can record them all
(:meth:`LogMelSpectrogram.get_parameters`) and compare them with another's.
The mel filterbank is torchaudio's Slaney-scale, Slaney-normalised bank, which equals
``librosa.filters.mel(htk=False)`` used by ESPnet and the official code. The two conventions as
complete settings are :data:`espnet_hifigan.contract.foreign.ESPNET_STYLE` and
:data:`espnet_hifigan.contract.foreign.OFFICIAL_STYLE`.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import torch
import torchaudio.functional as AF
from espnet2.tts.feats_extract.abs_feats_extract import AbsFeatsExtract

from espnet_hifigan.core.conventions import (
    LOGMEL_DEFAULTS,
    MAGNITUDE_EPS_MODES,
    PADDING_MODES,
    num_frames,
)

# The framings LogMelSpectrogram computes: all but ``none`` (ESPnet center=false features).
COMPUTED_PADDING_MODES = tuple(m for m in PADDING_MODES if m != "none")


class LogMelSpectrogram(AbsFeatsExtract):
    """Waveform to log-mel spectrogram with every convention made explicit.

    Args:
        fs: Sampling rate in Hz.
        n_fft: FFT size.
        hop_length: Frame shift in samples (the vocoder's upsampling factor).
        win_length: Window length; ``None`` means ``n_fft``.
        window: Window name (``hann``, ``hamming``, ``blackman``, ``bartlett``).
        n_mels: Number of mel bins.
        fmin: Lowest mel frequency in Hz; ``None`` means 0.
        fmax: Highest mel frequency in Hz; ``None`` means ``fs / 2``.
        log_base: Base of the logarithm; ``None`` means natural log.
        mel_floor: Lower clamp applied to the mel energies before the log.
        magnitude_eps: Floor of the power spectrum before the square root.
        magnitude_eps_mode: ``clamp`` (``sqrt(max(p, eps))``, ESPnet) or ``add``
            (``sqrt(p + eps)``, official HiFi-GAN).
        padding: ``center`` (``torch.stft(center=True)``, reflect) or ``official``
            (reflect pad ``(n_fft - hop) // 2`` each side, ``center=False``).
    """

    def __init__(
        self,
        fs: int = LOGMEL_DEFAULTS["fs"],
        n_fft: int = LOGMEL_DEFAULTS["n_fft"],
        hop_length: int = LOGMEL_DEFAULTS["hop_length"],
        win_length: Optional[int] = LOGMEL_DEFAULTS["win_length"],
        window: str = LOGMEL_DEFAULTS["window"],
        n_mels: int = LOGMEL_DEFAULTS["n_mels"],
        fmin: Optional[float] = LOGMEL_DEFAULTS["fmin"],
        fmax: Optional[float] = LOGMEL_DEFAULTS["fmax"],
        log_base: Optional[float] = LOGMEL_DEFAULTS["log_base"],
        mel_floor: float = LOGMEL_DEFAULTS["mel_floor"],
        magnitude_eps: float = LOGMEL_DEFAULTS["magnitude_eps"],
        magnitude_eps_mode: str = LOGMEL_DEFAULTS["magnitude_eps_mode"],
        padding: str = LOGMEL_DEFAULTS["padding"],
    ):
        super().__init__()
        if padding not in COMPUTED_PADDING_MODES:
            raise ValueError(f"padding must be one of {COMPUTED_PADDING_MODES}, got {padding!r}")
        if magnitude_eps_mode not in MAGNITUDE_EPS_MODES:
            raise ValueError(
                f"magnitude_eps_mode must be one of {MAGNITUDE_EPS_MODES}, "
                f"got {magnitude_eps_mode!r}"
            )
        win_length = n_fft if win_length is None else win_length
        if win_length > n_fft:
            raise ValueError(f"win_length ({win_length}) must be <= n_fft ({n_fft})")
        fmin_hz = 0.0 if fmin is None else float(fmin)
        fmax_hz = fs / 2.0 if fmax is None else float(fmax)
        if not 0.0 <= fmin_hz < fmax_hz <= fs / 2.0:
            raise ValueError(
                f"need 0 <= fmin < fmax <= fs/2, got fmin={fmin_hz}, fmax={fmax_hz}, fs={fs}"
            )
        if log_base is not None and (log_base <= 0 or log_base == 1):
            raise ValueError(f"log_base must be positive and != 1, got {log_base}")
        self.fs = int(fs)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = int(win_length)
        self.window = window
        self.n_mels = int(n_mels)
        self.fmin = fmin
        self.fmax = fmax
        self.log_base = log_base
        self.mel_floor = float(mel_floor)
        self.magnitude_eps = float(magnitude_eps)
        self.magnitude_eps_mode = magnitude_eps_mode
        self.padding = padding

        window_fn = getattr(torch, f"{window}_window", None)
        if window_fn is None:
            raise ValueError(f"unknown window {window!r}")
        self.register_buffer("window_tensor", window_fn(self.win_length), persistent=False)
        # (n_fft // 2 + 1, n_mels)
        melmat = AF.melscale_fbanks(
            n_freqs=self.n_fft // 2 + 1,
            f_min=fmin_hz,
            f_max=fmax_hz,
            n_mels=self.n_mels,
            sample_rate=self.fs,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("melmat", melmat, persistent=False)
        self.register_buffer("silence_tensor", self._silence(), persistent=False)

    def output_size(self) -> int:
        """Return the number of mel bins."""
        return self.n_mels

    def get_parameters(self) -> Dict[str, Any]:
        """Return every field that determines the features (the feature contract)."""
        return dict(
            fs=self.fs,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            log_base=self.log_base,
            mel_floor=self.mel_floor,
            magnitude_eps=self.magnitude_eps,
            magnitude_eps_mode=self.magnitude_eps_mode,
            padding=self.padding,
        )

    def num_frames(self, num_samples: torch.Tensor | int) -> torch.Tensor | int:
        """Number of frames produced for ``num_samples`` samples."""
        return num_frames(num_samples, self.padding, self.hop_length, self.n_fft)

    @property
    def min_samples(self) -> int:
        """Fewest samples a waveform needs: reflect padding needs more samples than it pads, and
        ``official`` framing at least one ``n_fft`` window after padding."""
        if self.padding == "official":
            pad = (self.n_fft - self.hop_length) // 2
            return max(pad + 1, self.n_fft - 2 * pad)
        return self.n_fft // 2 + 1

    def spectrogram(self, wav: torch.Tensor) -> torch.Tensor:
        """Magnitude spectrogram.

        Args:
            wav: Waveform (B, T).

        Returns:
            Magnitude (B, frames, n_fft // 2 + 1).
        """
        if self.padding == "official":
            pad = (self.n_fft - self.hop_length) // 2
            wav = torch.nn.functional.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            wav,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window_tensor.to(dtype=wav.dtype),
            center=self.padding == "center",
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.real.pow(2) + spec.imag.pow(2)
        if self.magnitude_eps_mode == "clamp":
            magnitude = power.clamp(min=self.magnitude_eps).sqrt()
        else:
            magnitude = (power + self.magnitude_eps).sqrt()
        return magnitude.transpose(1, 2)

    def forward(
        self, input: torch.Tensor, input_lengths: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Compute log-mel features.

        Args:
            input: Waveform (B, T) (or (T,) for one utterance).
            input_lengths: Valid samples per utterance (B,); ``None`` means all.

        Returns:
            Tuple of log-mel (B, frames, n_mels) and frame counts (B,).
            Frames past each utterance's length are zero, as in ESPnet.
        """
        if input.dim() == 1:
            input = input.unsqueeze(0)
        mel = torch.matmul(self.spectrogram(input.float()), self.melmat)
        logmel = self._log(mel.clamp(min=self.mel_floor))
        if input_lengths is None:
            feats_lengths = input.new_full((input.size(0),), logmel.size(1), dtype=torch.long)
        else:
            feats_lengths = self.num_frames(input_lengths.long())
            frame_idx = torch.arange(logmel.size(1), device=logmel.device)
            pad_mask = frame_idx[None, :] >= feats_lengths[:, None]
            logmel = logmel.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        return logmel, feats_lengths

    def silence_value(self) -> torch.Tensor:
        """Features of a digitally silent frame, (n_mels,) (used to pad short utterances)."""
        return self.silence_tensor

    def _silence(self) -> torch.Tensor:
        magnitude = torch.full((1, self.n_fft // 2 + 1), self.magnitude_eps, device=self.melmat.device).sqrt()
        return self._log(torch.matmul(magnitude, self.melmat).clamp(min=self.mel_floor))[0]

    def _log(self, mel: torch.Tensor) -> torch.Tensor:
        if self.log_base is None:
            return mel.log()
        if self.log_base == 10.0:
            return mel.log10()
        if self.log_base == 2.0:
            return mel.log2()
        return mel.log() / math.log(self.log_base)
