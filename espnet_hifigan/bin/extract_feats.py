#!/usr/bin/env python3
"""Extract log-mel features for the vocoder recipe (stage 3).

Reads a formatted ``wav.scp`` (mono audio at ``--fs``), computes
:class:`espnet_hifigan.nets.features.LogMelSpectrogram` per utterance and writes a Kaldi
``ark``/``scp`` pair with kaldiio plus ``utt2num_frames``. Every utterance is checked:
``frames == num_frames(samples)``, and ``samples`` equals ``--utt2num_samples`` when given.

The feature settings (the feature contract, :meth:`LogMelSpectrogram.get_parameters`) are
built as training builds them: the ``LogMelSpectrogram`` defaults, updated with
``feats_extract_conf`` of ``--train_config`` (if given), updated with the explicit options.
``--write_conf FILE`` writes them as a commented YAML file (alone, or next to an extraction);
``--check_conf FILE [FILE ...]`` only compares them with stored contracts (of existing dumps)
and exits 1, listing the differences, if any differs.

The speed is logged as seconds of audio per CPU-second of this process (read, compute, write).

Example:
    python -m espnet_hifigan.bin.extract_feats --wav_scp dump/raw/train/wav.scp \\
        --fs 16000 --n_fft 1024 --hop_length 256 --n_mels 80 --fmin 80 --fmax 7600 \\
        --out_ark dump/raw/train/data/feats.1.ark --out_scp feats.1.scp \\
        --out_utt2num_frames utt2num_frames.1
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
import yaml

from espnet_hifigan.core.safety import check_outputs_not_inputs
from espnet_hifigan.data.extraction import (
    ExtractError,
    compare_contract,
    contract_yaml,
    extract,
)
from espnet_hifigan.nets.features import LogMelSpectrogram

CONF_SECTION = "feats_extract_conf"
NULL_STRINGS = ("null", "none", "")


def optional_int(value: str) -> Optional[int]:
    """Parse an int, or ``null``/``none``/empty as ``None``."""
    return None if value.lower() in NULL_STRINGS else int(value)


def optional_float(value: str) -> Optional[float]:
    """Parse a float, or ``null``/``none``/empty as ``None``."""
    return None if value.lower() in NULL_STRINGS else float(value)


def feature_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """Merge defaults, the training config's ``feats_extract_conf`` and explicit options.

    Args:
        args: Parsed options; a feature option left at ``None`` is not explicit. Options
            that accept ``null`` are explicit when given at all (see ``explicit``).

    Returns:
        Keyword arguments of :class:`LogMelSpectrogram`.
    """
    signature = inspect.signature(LogMelSpectrogram.__init__)
    settings = {
        name: p.default for name, p in signature.parameters.items() if name != "self"
    }
    if args.train_config is not None:
        with open(args.train_config, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
        conf = config.get(CONF_SECTION) or {}
        unknown = sorted(set(conf) - set(settings))
        if unknown:
            logging.warning(
                f"{args.train_config}: ignoring {CONF_SECTION} keys unknown to "
                f"LogMelSpectrogram: {unknown}"
            )
        settings.update({k: v for k, v in conf.items() if k in settings})
    for name in settings:
        if name in args.explicit:
            settings[name] = getattr(args, name)
    return settings


class _Explicit(argparse.Action):
    """Store a value and remember that the option was given."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102
        setattr(namespace, self.dest, values)
        namespace.explicit = set(getattr(namespace, "explicit", set())) | {self.dest}


def get_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    io_group = parser.add_argument_group("input/output")
    io_group.add_argument("--wav_scp", type=Path, help="formatted wav.scp (mono, at --fs)")
    io_group.add_argument("--utt2num_samples", type=Path, default=None, help="expected lengths")
    io_group.add_argument("--out_ark", type=Path, help="output ark")
    io_group.add_argument("--out_scp", type=Path, help="output feats.scp")
    io_group.add_argument("--out_utt2num_frames", type=Path, help="output utt2num_frames")
    io_group.add_argument(
        "--write_conf", type=Path, default=None, help="write the feature contract (YAML)"
    )
    io_group.add_argument(
        "--check_conf",
        type=Path,
        nargs="+",
        default=None,
        help="compare stored feature contracts with the settings and exit",
    )
    io_group.add_argument("--num_threads", type=int, default=1, help="torch intra-op threads")

    feat = parser.add_argument_group("features (default: train config's feats_extract_conf, else LogMelSpectrogram's)")
    feat.add_argument("--train_config", type=Path, default=None, help="training config with feats_extract_conf")
    feat.add_argument("--fs", type=int, action=_Explicit, help="sampling rate in Hz")
    feat.add_argument("--n_fft", type=int, action=_Explicit, help="FFT size")
    feat.add_argument("--hop_length", type=int, action=_Explicit, help="frame shift in samples")
    feat.add_argument("--win_length", type=optional_int, action=_Explicit, help="window length (null: n_fft)")
    feat.add_argument("--window", action=_Explicit, help="window function")
    feat.add_argument("--n_mels", type=int, action=_Explicit, help="number of mel bins")
    feat.add_argument("--fmin", type=optional_float, action=_Explicit, help="lowest mel frequency (Hz)")
    feat.add_argument("--fmax", type=optional_float, action=_Explicit, help="highest mel frequency (Hz)")
    feat.add_argument("--log_base", type=optional_float, action=_Explicit, help="log base (null: e)")
    feat.add_argument("--mel_floor", type=float, action=_Explicit, help="mel energy floor")
    feat.add_argument("--magnitude_eps", type=float, action=_Explicit, help="power spectrum floor")
    feat.add_argument("--magnitude_eps_mode", action=_Explicit, help="clamp or add")
    feat.add_argument("--padding", action=_Explicit, help="center or official")
    parser.set_defaults(explicit=set())
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the extractor; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    parser = get_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.num_threads)
    try:
        extractor = LogMelSpectrogram(**feature_settings(args))
    except (ValueError, TypeError) as e:
        logging.error(f"invalid feature settings: {e}")
        return 1
    parameters = extractor.get_parameters()
    if args.check_conf is not None:
        status = 0
        for path in args.check_conf:
            if not path.is_file():
                logging.error(f"{path} does not exist (run stage 3 first)")
                status = 1
                continue
            diffs = compare_contract(path, parameters)
            if diffs:
                logging.error(
                    f"the features described by {path} were extracted with other settings "
                    f"than requested now: {'; '.join(diffs)}. "
                    "Re-run from stage 3, or use the same feature options."
                )
                status = 1
        return status
    io_args = ("wav_scp", "out_ark", "out_scp", "out_utt2num_frames")
    given = [n for n in io_args if getattr(args, n) is not None]
    if given and len(given) != len(io_args) or not given and args.write_conf is None:
        missing = [f"--{n}" for n in io_args if getattr(args, n) is None]
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    logging.info(f"feature settings: {parameters}")
    outputs = [args.out_ark, args.out_scp, args.out_utt2num_frames, args.write_conf]
    try:
        check_outputs_not_inputs(
            [o for o in outputs if o is not None], [args.wav_scp, args.utt2num_samples, args.train_config], what="output"
        )
    except ValueError as e:
        logging.error(str(e))
        return 1
    if given:
        try:
            extract(args, extractor)
        except ExtractError as e:
            logging.error(str(e))
            return 1
    if args.write_conf is not None:
        args.write_conf.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.write_conf.with_name(f".{args.write_conf.name}.tmp{os.getpid()}")
        tmp.write_text(contract_yaml(parameters), encoding="utf-8")
        tmp.replace(args.write_conf)
    return 0


def console_main() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
