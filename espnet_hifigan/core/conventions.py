"""The vocabulary of log-mel settings, shared by the extractor and the feature contract.

Torch-free, so that contract checks stay cheap. The named conventions of the foreign formats
(ESPnet ``LogMelFbank``, the official HiFi-GAN mel, ParallelWaveGAN) live in
:mod:`espnet_hifigan.contract.foreign`.
"""

from __future__ import annotations

from typing import Any, Dict

# The log-mel settings of LogMelSpectrogram (espnet_hifigan.nets.features) when a config leaves
# them out: its constructor's defaults, and what a contract missing a field assumes.
LOGMEL_DEFAULTS: Dict[str, Any] = dict(
    fs=22050, n_fft=1024, hop_length=256, win_length=None, window="hann", n_mels=80, fmin=80.0, fmax=7600.0,
    log_base=10.0, mel_floor=1.0e-10, magnitude_eps=1.0e-10, magnitude_eps_mode="clamp", padding="center",
)  # fmt: skip

# STFT framing: ``center`` (torch.stft(center=True), reflect; frames = samples // hop + 1),
# ``official`` (reflect padding of (n_fft - hop) / 2 each side, center=False; frames =
# samples // hop), ``none`` (no padding; frames = (samples - n_fft) // hop + 1: ESPnet features
# with center=false, which LogMelSpectrogram does not compute).
PADDING_MODES = ("center", "official", "none")
# How the power-spectrum floor is applied: sqrt(max(p, eps)) or sqrt(p + eps).
MAGNITUDE_EPS_MODES = ("clamp", "add")
# Mel scale and filter normalisation: Slaney (librosa's default) or HTK.
MEL_SCALES = ("slaney", "htk")


def num_frames(num_samples: Any, padding: str, hop_length: int, n_fft: int) -> Any:
    """Frames of an utterance of ``num_samples`` samples (an int or an integer tensor).

    Raises:
        ValueError: an unknown ``padding``.
    """
    if padding == "center":
        return num_samples // hop_length + 1
    if padding == "official":
        return num_samples // hop_length
    if padding == "none":
        frames = (num_samples - n_fft) // hop_length + 1
        return frames.clamp(min=0) if hasattr(frames, "clamp") else max(0, frames)
    raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")


def min_samples(padding: str, hop_length: int, n_fft: int) -> int:
    """Fewest samples an utterance needs to give features (the stage-3 and training minimum).

    ``center`` and ``official`` framing reflect-pad the signal, which needs more samples than
    the padding; ``none`` needs one full window. Training and validation minimums build on it
    (:mod:`espnet_hifigan.train.feature_lengths`).

    Raises:
        ValueError: an unknown ``padding``.
    """
    if padding == "center":
        return n_fft // 2 + 1
    if padding == "official":
        return max((n_fft - hop_length) // 2 + 1, hop_length)
    if padding == "none":
        return n_fft
    raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
