"""HiFi-GAN presets: the official generators (config_v1/v2/v3.json of jik876/hifi-gan) and the
generator upsampling for each sampling rate / frame shift of ESPnet's TTS recipes.

Data only: the training configs rendered from them are :mod:`espnet_hifigan.train.configs`, the
command line ``python -m espnet_hifigan.bin.presets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

_V1_V2_BLOCKS: Dict[str, Any] = dict(
    resblock="1",
    upsample_rates=(8, 8, 2, 2),
    upsample_kernel_sizes=(16, 16, 4, 4),
    resblock_kernel_sizes=(3, 7, 11),
    resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
)

GENERATOR_PRESETS: Dict[str, Dict[str, Any]] = {
    # V1: the high-quality model (13.92M parameters).
    "v1": dict(upsample_initial_channel=512, **_V1_V2_BLOCKS),
    # V2: the same topology with fewer channels (0.92M parameters).
    "v2": dict(upsample_initial_channel=128, **_V1_V2_BLOCKS),
    # V3: three stages, residual block type 2 (1.46M parameters).
    "v3": dict(
        resblock="2",
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=256,
        resblock_kernel_sizes=(3, 5, 7),
        resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    ),
}


def espnet_generator_kwargs(preset: str, in_channels: int = 80) -> Dict[str, Any]:
    """Arguments of ESPnet's ``espnet2.gan_tts.hifigan.HiFiGANGenerator`` for the same preset."""
    p = GENERATOR_PRESETS[preset]
    return dict(
        in_channels=in_channels,
        channels=p["upsample_initial_channel"],
        upsample_scales=list(p["upsample_rates"]),
        upsample_kernel_sizes=list(p["upsample_kernel_sizes"]),
        resblock_kernel_sizes=list(p["resblock_kernel_sizes"]),
        resblock_dilations=[list(d) for d in p["resblock_dilation_sizes"]],
        use_additional_convs=p["resblock"] == "1",
    )


# ----------------------------------------------------------------------------- sample rates
# The feature geometries of ESPnet's TTS recipes (egs2/*/tts1, svs1) and, for each, the
# V1/V2 (four stages) and V3 (three stages) upsampling whose product is the hop, with the
# paper's transposed-conv kernel of twice the rate. conf/hifigan_v{1,2,3}.yaml are the
# 22.05 kHz / hop 256 presets (LJSpeech) and the templates the others are rendered from.
@dataclass(frozen=True)
class RatePreset:
    """One sampling rate / frame shift and the generator upsampling that fits it.

    Attributes:
        fs: Sampling rate (Hz).
        hop: Frame shift (samples) = the generator's total upsampling.
        n_fft: FFT size of the features.
        win_length: Window length (None = n_fft).
        segment_size: Training segment (samples), a multiple of ``hop`` near 0.35 s.
        rates_v1: Upsampling of V1/V2 (four stages).
        rates_v3: Upsampling of V3 (three stages).
        source: Where the feature geometry comes from.
    """

    fs: int
    hop: int
    n_fft: int
    win_length: Optional[int]
    segment_size: int
    rates_v1: Tuple[int, ...]
    rates_v3: Tuple[int, ...]
    source: str

    def rates(self, version: str) -> Tuple[int, ...]:
        """Upsampling rates of ``version`` (v1, v2 or v3)."""
        return self.rates_v3 if version == "v3" else self.rates_v1


RATE_PRESETS: Tuple[RatePreset, ...] = (
    RatePreset(22050, 256, 1024, None, 8192, (8, 8, 2, 2), (8, 8, 4),
               "the paper (LJSpeech); ESPnet ljspeech/tts1"),
    RatePreset(24000, 300, 2048, 1200, 8400, (5, 5, 4, 3), (10, 6, 5),
               "ESPnet libritts, vctk, jvs tts1 (n_fft 2048, hop 300, win 1200)"),
    RatePreset(44100, 512, 2048, 2048, 16384, (8, 8, 4, 2), (8, 8, 8),
               "ESPnet 44.1 kHz tts1/svs1 recipes (n_fft 2048, hop 512, win 2048)"),
    RatePreset(48000, 480, 2048, 1920, 17280, (8, 5, 4, 3), (10, 8, 6),
               "48 kHz with a 10 ms shift (n_fft 2048, hop 480, win 1920)"),
    RatePreset(48000, 600, 4096, 2400, 16800, (10, 5, 4, 3), (10, 10, 6),
               "48 kHz with the 24 kHz frames doubled (n_fft 4096, hop 600, win 2400)"),
)
VERSIONS = ("v1", "v2", "v3")
class PresetError(ValueError):
    """No preset fits the requested sampling rate and frame shift."""


def find_rate_preset(fs: int, hop: int) -> RatePreset:
    """The preset of ``(fs, hop)``.

    Raises:
        PresetError: When none fits; the message says how to write a config for it.
    """
    for preset in RATE_PRESETS:
        if (preset.fs, preset.hop) == (int(fs), int(hop)):
            return preset
    covered = ", ".join(f"fs={p.fs} hop={p.hop}" for p in RATE_PRESETS)
    raise PresetError(
        f"no HiFi-GAN preset for fs={fs} with frame shift (n_shift) {hop}; presets exist for {covered}. "
        f"Write a config: copy conf/hifigan_v1.yaml, set feats_extract_conf fs/n_fft/hop_length/win_length, "
        f"set generator_conf.upsample_rates to factors whose product is {hop} "
        f"({_suggest_rates(hop, 4)} for V1/V2, {_suggest_rates(hop, 3)} for V3) with upsample_kernel_sizes "
        f"twice each rate (plus one for an odd rate), and model_conf.segment_size to a multiple of {hop}; pass it as --train_config"
    )


def _suggest_rates(hop: int, stages: int) -> str:
    """Upsampling rates (largest first) whose product is ``hop``, as even as possible."""
    factors: List[int] = []
    n, p = int(hop), 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1:
        factors.append(n)
    if len(factors) < stages:
        return f"e.g. {sorted(factors, reverse=True)} ({len(factors)} stages)"
    rates = [1] * stages
    for f in sorted(factors, reverse=True):  # largest factor onto the smallest stage
        rates[rates.index(min(rates))] *= f
    return f"e.g. {sorted(rates, reverse=True)}"


def upsample_kernel(rate: int) -> int:
    """The paper's transposed-conv kernel for an upsampling ``rate``: ``2 * rate``, plus one for an
    odd rate (the official padding ``(kernel - rate) // 2`` upsamples exactly only when
    ``kernel - rate`` is even)."""
    return 2 * rate + rate % 2
