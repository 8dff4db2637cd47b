"""Pack a trained vocoder into one zip usable by ``voc_inference --model_file X.zip``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from espnet_hifigan.core.safety import check_outputs_not_inputs
from espnet_hifigan.formats.packing import pack_model


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train_config", required=True, help="config.yaml of the experiment")
    parser.add_argument("--model_file", required=True, help="Checkpoint (*.pth) to pack")
    parser.add_argument("--outpath", required=True, help="Destination .zip")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    """Write the archive; exit 1 with one error line on bad input."""
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s: %(message)s")
    try:
        check_outputs_not_inputs([args.outpath], [args.train_config, args.model_file], what="--outpath")
        path = pack_model(args.train_config, args.model_file, args.outpath)
    except (FileNotFoundError, KeyError, ValueError) as e:
        logging.error(f"cannot pack {args.model_file}: {e}")
        sys.exit(1)
    logging.info(f"packed {args.model_file} into {path}")


def console_main() -> None:
    """Console entry point ``espnet-hifigan-pack``."""
    main()


if __name__ == "__main__":
    main()
