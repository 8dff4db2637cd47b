#!/usr/bin/env python3
"""Validate a Kaldi-style data directory before the recipe uses it.

Checks ``wav.scp``, ``utt2spk``, ``spk2utt`` and, when present, ``segments`` and ``text``:

* every line is valid UTF-8 with the expected number of fields, no CR (Windows line ends);
* ids are unique and sorted in C-locale (byte) order, as Kaldi tools require;
* utterances agree across files (``utt2spk`` vs ``wav.scp`` or ``segments`` vs ``text``);
* ``spk2utt`` is exactly the inverse of ``utt2spk``;
* ``segments`` times are numbers with ``0 <= start < end`` (or end ``-1``: to the end of the
  recording, as Kaldi) and name recordings of ``wav.scp`` (an optional 5th field is Kaldi's
  0-based channel);
* utterance ids can be file names (no path: ``../x``, ``spk/utt``; not too long);
* audio files named in ``wav.scp`` exist (pipe commands ``... |`` are not run; for a wav ark
  entry ``wav.ark:56`` the ark must exist).

Each problem is reported as ``FILE:LINE: message``; the exit status is 1 if there is any.

Example:
    python -m espnet_hifigan.bin.validate_data_dir data/train
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from espnet_hifigan.data.validation import validate_data_dir

DEFAULT_MAX_ERRORS = 20


def get_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("data_dir", type=Path, help="Kaldi-style data directory")
    parser.add_argument(
        "--check_files",
        type=lambda s: s.lower() in ("true", "1", "yes"),
        default=True,
        help="check that the audio files of wav.scp exist (true/false)",
    )
    parser.add_argument(
        "--max_errors",
        type=int,
        default=DEFAULT_MAX_ERRORS,
        help="print at most this many errors",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the validator; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    errors = validate_data_dir(args.data_dir, check_files=args.check_files)
    if errors:
        print(f"validate_data_dir: {args.data_dir} is invalid ({len(errors)} errors):", file=sys.stderr)
        for error in errors[: args.max_errors]:
            print(f"  {error}", file=sys.stderr)
        if len(errors) > args.max_errors:
            print(f"  ... and {len(errors) - args.max_errors} more", file=sys.stderr)
        return 1
    n_utts = len((args.data_dir / "utt2spk").read_text(encoding="utf-8").splitlines())
    n_spks = len((args.data_dir / "spk2utt").read_text(encoding="utf-8").splitlines())
    logging.info(f"{args.data_dir}: OK ({n_utts} utterances, {n_spks} speakers)")
    return 0


def console_main() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
