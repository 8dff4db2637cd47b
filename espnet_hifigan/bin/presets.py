"""HiFi-GAN training configs for the sampling rates and frame shifts of ESPnet's TTS recipes.

The recipe asks for a config when it is given no ``--train_config``::

    python -m espnet_hifigan.bin.presets choose --fs 24000 --n_shift 300 --version v1 --output_dir exp/conf
    python -m espnet_hifigan.bin.presets render --fs 44100 --n_shift 512 --version v3 > my_config.yaml
    python -m espnet_hifigan.bin.presets list
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from espnet_hifigan.nets.presets import (
    RATE_PRESETS,
    VERSIONS,
    PresetError,
    find_rate_preset,
)
from espnet_hifigan.train.configs import choose_config, render_config


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``choose`` (the recipe) or ``render`` (a config to edit) or ``list``."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_hifigan.bin.presets",
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
