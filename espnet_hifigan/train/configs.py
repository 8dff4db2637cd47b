"""Training configs for every preset sampling rate / frame shift, rendered from the repository's
``conf/hifigan_<version>.yaml`` (every comment kept); the recipe asks for one when it is given no
``--train_config`` (``python -m espnet_hifigan.bin.presets choose``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict

import yaml

from espnet_hifigan.core.fileio import write_text_atomic
from espnet_hifigan.nets.presets import (
    RATE_PRESETS,
    VERSIONS,
    PresetError,
    RatePreset,
    find_rate_preset,
    upsample_kernel,
)

# Where the rendered configs come from: the repository's conf/ (the recipes link it).
DEFAULT_CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
# Lines of a template config that a preset sets: key -> preset value (rendered as YAML flow).
_RENDERED_KEYS = ("fs", "n_fft", "hop_length", "win_length", "upsample_rates", "upsample_kernel_sizes", "segment_size")


def render_config(
    preset: RatePreset, version: str, conf_dir: Path = DEFAULT_CONF_DIR, template_name: str = ""
) -> str:
    """The training config of ``version`` at ``preset``: ``conf/hifigan_<version>.yaml`` with the
    feature geometry, the upsampling and the segment of the preset (every comment kept).

    ``template_name`` (e.g. ``hifigan_debug.yaml``) renders another config of ``conf/`` with the
    upsampling of ``version`` (its stage count must be the template's: v3 for the debug config).

    Raises:
        PresetError: Unknown version, or a template line that is not where it should be.
    """
    if version not in VERSIONS:
        raise PresetError(f"unknown version {version!r}; choose from {', '.join(VERSIONS)}")
    template = conf_dir / (template_name or f"hifigan_{version}.yaml")
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
        f"# Rendered by `python -m espnet_hifigan.bin.presets render --fs {preset.fs} --n_shift {preset.hop} "
        f"--version {version}` from conf/{template.name}:",
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
