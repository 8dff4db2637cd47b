#!/usr/bin/env python3
"""Write the listening pages of a decode directory and/or an experiment (voc.sh stage 7).

``--decode_dir exp/<tag>/decode_<ckpt>/<set>`` writes ``<set>/index.html``: per utterance the
reference and generated audio, the spectrogram pair and the scores of ``scoring/per_utt.tsv``,
sortable by clicking a column header. References are copied into ``<set>/ref/`` so that the page
only has relative links (open it from disk, copy the directory anywhere). ``--exp_dir exp/<tag>``
writes ``exp/<tag>/index.html``: the ``RESULTS.md`` rows, checkpoints side by side, and a link to
every decode page. With both, the decode page links back to the experiment page.

Example:
    python -m espnet_hifigan.bin.listening_page --decode_dir exp/voc/decode_valid.loss_mel_l1.best/test \\
        --ref_scp dump/raw/test/wav.scp --exp_dir exp/voc
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from espnet_hifigan.evaluation.listening import (
    DEFAULT_MAX_PLOTS,
    PAGE_NAME,
    ListeningPageError,
    write_decode_page,
)
from espnet_hifigan.evaluation.listening_experiment import write_experiment_page

logger = logging.getLogger("listening_page")


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decode_dir", type=Path, default=None,
                        help="Decode directory (wav.scp, wav/, scoring/) to write index.html in")
    parser.add_argument("--ref_scp", type=Path, default=None,
                        help="Reference wav.scp (default: the one scoring/summary.json records)")
    parser.add_argument("--max_plots", type=int, default=DEFAULT_MAX_PLOTS,
                        help="Spectrograms to draw at most, beyond those voc_score drew")
    parser.add_argument("--exp_dir", type=Path, default=None,
                        help="Experiment directory (RESULTS.md, decode_*/) to write index.html in")
    parser.add_argument("--log_level", default="INFO")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the pages; return the exit status (0 on success, 1 on bad input)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    if args.decode_dir is None and args.exp_dir is None:
        parser.error("give --decode_dir, --exp_dir or both")
    if args.ref_scp is not None and args.decode_dir is None:
        parser.error("--ref_scp needs --decode_dir")
    try:
        if args.decode_dir is not None:
            exp_page = args.exp_dir / PAGE_NAME if args.exp_dir is not None else None
            write_decode_page(args.decode_dir, args.ref_scp, args.max_plots, exp_page)
        if args.exp_dir is not None:
            write_experiment_page(args.exp_dir)
    except ListeningPageError as e:
        logger.error(str(e))
        return 1
    return 0


def console_main() -> None:
    """Console-script entry point (``espnet-hifigan-listening-page``)."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
