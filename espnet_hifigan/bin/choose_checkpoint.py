"""Print the checkpoint an experiment directory is decoded with (the rule:
:mod:`espnet_hifigan.inference.choose_checkpoint`)::

    python -m espnet_hifigan.bin.choose_checkpoint exp/voc_hifigan_v1      # prints valid.loss_mel_l1.best.pth
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import yaml

from espnet_hifigan.inference.choose_checkpoint import (
    best_checkpoint_name,
    load_exp_config,
)


def main(argv: Optional[List[str]] = None) -> int:
    """Print the checkpoint name an experiment directory is decoded with."""
    parser = argparse.ArgumentParser(description=__doc__.split("::")[0])
    parser.add_argument("exp_dir", help="experiment directory with config.yaml")
    args = parser.parse_args(argv)
    try:
        print(best_checkpoint_name(load_exp_config(args.exp_dir)))
    except (OSError, yaml.YAMLError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
