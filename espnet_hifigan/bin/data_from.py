"""Data sets taken from another recipe, and the held-out sets of multi-speaker corpora (voc.sh stage 1).

    # copy ../tts1/data/{tr_no_dev,dev,eval1} into data/, relative paths made absolute
    python -m espnet_hifigan.bin.data_from copy --data_from ../tts1/data --output_dir data tr_no_dev dev eval1
    # move 2 whole speakers of data/tr_no_dev into data/tr_no_dev_unseen
    python -m espnet_hifigan.bin.data_from split --data_dir data/tr_no_dev --out_dir data/tr_no_dev_unseen --speakers 2
    # move 10 utterances drawn across the speakers of data/train into data/dev
    python -m espnet_hifigan.bin.data_from split --data_dir data/train --out_dir data/dev --utts 10
    # data_from=, train_set=, valid_set= of an ESPnet TTS experiment (lines for the shell)
    python -m espnet_hifigan.bin.data_from tts_exp --tts_exp ../tts1/exp/tts_train_raw_phn

Library: :mod:`espnet_hifigan.data.import_dirs`. Errors: one line, exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from espnet_hifigan.data.import_dirs import (
    DataImportError,
    import_data_dir,
    sets_of_tts_exp,
    split_by_speakers,
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``copy``, ``split`` or ``tts_exp``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m espnet_hifigan.bin.data_from", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("copy", help="copy sets of another recipe's data/ into this one's")
    p.add_argument("--data_from", type=Path, required=True, help="the other recipe's data/ (e.g. ../tts1/data)")
    p.add_argument("--root", type=Path, default=None, help="what its relative paths are relative to (default: <data_from>/..)")
    p.add_argument("--output_dir", type=Path, default=Path("data"), help="this recipe's data/")
    p.add_argument("sets", nargs="+", help="set names")
    p = sub.add_parser("split", help="move utterances of a set into a new set")
    p.add_argument("--data_dir", type=Path, required=True, help="the set to take them from (rewritten)")
    p.add_argument("--out_dir", type=Path, required=True, help="the new set")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--speakers", type=int, help="whole speakers to move (a held-out-speaker set)")
    group.add_argument("--utts", type=int, help="utterances to move, drawn round-robin across the speakers")
    p.add_argument("--seed", type=int, default=0, help="seed of the choice")
    p = sub.add_parser("tts_exp", help="print data_from=, train_set=, valid_set= of an ESPnet TTS experiment")
    p.add_argument("--tts_exp", type=Path, required=True, help="the experiment directory (config.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "copy":
            for name in args.sets:
                root = args.root if args.root is not None else args.data_from.parent
                files = import_data_dir(args.data_from / name, args.output_dir / name, root)
                print(f"{args.data_from / name} -> {args.output_dir / name}: {' '.join(files)}")
        elif args.command == "split":
            speakers, n = split_by_speakers(args.data_dir, args.out_dir, args.speakers or 0, args.utts or 0, args.seed)
            print(f"{args.data_dir} -> {args.out_dir}: {n} utterances of {len(speakers)} speakers ({' '.join(speakers)})")
        else:
            data_dir, sets = sets_of_tts_exp(args.tts_exp)
            if data_dir is not None:
                print(f"data_from={data_dir}")
            for key, value in sorted(sets.items()):
                print(f"{key}={value}")
    except (DataImportError, OSError, UnicodeDecodeError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
