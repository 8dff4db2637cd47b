"""Plot metrics over training steps (metric curves from a TSV with a ``step`` column or from
RESULTS.md)::

    python -m espnet_hifigan.bin.plot_metrics --input exp/voc/RESULTS.md --output curves.png \\
        [--metrics mcd,pesq] [--set test]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from espnet_hifigan.core.safety import check_outputs_not_inputs
from espnet_hifigan.evaluation.plots import plot_metric_curves, read_metric_rows

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Command-line options of the curve plotter."""
    parser = argparse.ArgumentParser(
        description="Plot metrics over training steps from a TSV (step, metric...) or RESULTS.md"
    )
    parser.add_argument("--input", required=True, type=Path, help="TSV with a step column or RESULTS.md")
    parser.add_argument("--output", required=True, type=Path, help="PNG to write")
    parser.add_argument("--metrics", default=None, help="Comma-separated metrics (default: all)")
    parser.add_argument("--set", dest="set_name", default=None, help="RESULTS.md: only this set")
    parser.add_argument("--log_level", default="INFO")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Plot metric curves; return the exit status."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
    try:
        check_outputs_not_inputs([args.output], [args.input], what="--output")
        rows = read_metric_rows(args.input, args.set_name)
        plot_metric_curves(rows, args.output, metrics=metrics)
    except (OSError, ValueError) as e:
        logger.error(f"cannot plot {args.input}: {e}")
        return 1
    logger.info(f"wrote {args.output} ({len(rows)} rows)")
    return 0


def console_main() -> None:
    """Console entry point ``espnet-hifigan-plot-metrics``."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
