"""HiFi-GAN presets: the official generators (config_v1/v2/v3.json of jik876/hifi-gan) and the
training configs for each sampling rate / frame shift of ESPnet's TTS recipes.

The recipe asks for a config when it is given no ``--train_config``::

    python -m espnet_hifigan.presets choose --fs 24000 --n_shift 300 --version v1 --output_dir exp/conf
    python -m espnet_hifigan.presets render --fs 44100 --n_shift 512 --version v3 > my_config.yaml
    python -m espnet_hifigan.presets list
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from espnet_hifigan.fileio import write_text_atomic

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
# Where the rendered configs come from: the repository's conf/ (the recipes link it).
DEFAULT_CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# Lines of a template config that a preset sets: key -> preset value (rendered as YAML flow).
_RENDERED_KEYS = ("fs", "n_fft", "hop_length", "win_length", "upsample_rates", "upsample_kernel_sizes", "segment_size")


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


def render_config(preset: RatePreset, version: str, conf_dir: Path = DEFAULT_CONF_DIR) -> str:
    """The training config of ``version`` at ``preset``: ``conf/hifigan_<version>.yaml`` with the
    feature geometry, the upsampling and the segment of the preset (every comment kept).

    Raises:
        PresetError: Unknown version, or a template line that is not where it should be.
    """
    if version not in VERSIONS:
        raise PresetError(f"unknown version {version!r}; choose from {', '.join(VERSIONS)}")
    template = conf_dir / f"hifigan_{version}.yaml"
    if not template.is_file():
        raise PresetError(f"{template} not found: the presets are rendered from the repository's conf/")
    rates = preset.rates(version)
    values: Dict[str, Any] = dict(
        fs=preset.fs,
        n_fft=preset.n_fft,
        hop_length=preset.hop,
        win_length=preset.win_length,
        upsample_rates=list(rates),
        upsample_kernel_sizes=[upsample_kernel(r) for r in rates],
        segment_size=preset.segment_size,
    )
    lines = template.read_text(encoding="utf-8").splitlines()
    for key in _RENDERED_KEYS:
        pattern = re.compile(rf"^(\s+{key}:\s+)(\S.*?)(\s+#.*)?$")
        hits = [i for i, line in enumerate(lines) if pattern.match(line)]
        if len(hits) != 1:
            raise PresetError(f"{template}: expected one '{key}:' line, found {len(hits)}")
        head, old, comment = pattern.match(lines[hits[0]]).groups()
        value = yaml.safe_dump(values[key], default_flow_style=True).removesuffix("\n...\n").strip()
        lines[hits[0]] = f"{head}{value.ljust(len(old))}{comment or ''}"  # the comment column kept
    header = [
        f"# HiFi-GAN {version.upper()} at {preset.fs} Hz, frame shift {preset.hop}: {preset.source}.",
        f"# Rendered by `python -m espnet_hifigan.presets render --fs {preset.fs} --n_shift {preset.hop} "
        f"--version {version}` from conf/hifigan_{version}.yaml:",
        f"# upsampling {list(rates)} (product {preset.hop}), kernels 2 x rate (+1 if odd), segment "
        f"{preset.segment_size} samples; everything else as the template. The input mel's fmin/fmax are",
        "# the recipe's --fmin/--fmax (ESPnet tts.sh: 80/7600); the loss mel spans 0..fs/2 (fmax_for_loss null).",
    ]
    return "\n".join(header + lines) + "\n"


def config_name(preset: RatePreset, version: str) -> str:
    """File name of a rendered preset config."""
    return f"hifigan_{version}_fs{preset.fs}_hop{preset.hop}.yaml"


def choose_config(
    fs: int, hop: int, version: str, output_dir: Path, conf_dir: Path = DEFAULT_CONF_DIR
) -> Path:
    """The training config the recipe uses when it is given none.

    22.05 kHz / hop 256 is ``conf/hifigan_<version>.yaml`` itself; any other preset is rendered
    into ``output_dir`` (rewritten only when its text changes).

    Raises:
        PresetError: No preset fits (the message says how to write a config).
    """
    preset = find_rate_preset(fs, hop)
    if version not in VERSIONS:
        raise PresetError(f"unknown version {version!r}; choose from {', '.join(VERSIONS)}")
    if preset is RATE_PRESETS[0]:
        return (conf_dir / f"hifigan_{version}.yaml").resolve()
    text = render_config(preset, version, conf_dir)
    path = Path(output_dir) / config_name(preset, version)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``choose`` (the recipe) or ``render`` (a config to edit) or ``list``."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_hifigan.presets",
        description="HiFi-GAN configs for the sampling rates and frame shifts of ESPnet's TTS recipes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("choose", "print the config path for --fs/--n_shift (rendered into --output_dir)"),
                           ("render", "print the rendered config of --fs/--n_shift")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--fs", type=int, required=True, help="sampling rate (Hz)")
        p.add_argument("--n_shift", type=int, required=True, help="frame shift (samples)")
        p.add_argument("--version", choices=VERSIONS, default="v1", help="generator class")
        if name == "choose":
            p.add_argument("--output_dir", type=Path, required=True, help="where a rendered config is written")
    sub.add_parser("list", help="the presets")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for p in RATE_PRESETS:
                print(f"fs={p.fs} n_shift={p.hop} n_fft={p.n_fft} win_length={p.win_length} "
                      f"v1/v2 {list(p.rates_v1)} v3 {list(p.rates_v3)}: {p.source}")
        elif args.command == "render":
            print(render_config(find_rate_preset(args.fs, args.n_shift), args.version), end="")
        else:
            print(choose_config(args.fs, args.n_shift, args.version, args.output_dir))
    except PresetError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
