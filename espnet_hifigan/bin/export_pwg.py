"""Export a vocoder as a ParallelWaveGAN checkpoint that ESPnet's ``Text2Speech`` loads.

Writes ``<outdir>/checkpoint-<steps>steps.pkl``, ``<outdir>/config.yml`` (``generator_type:
HiFiGANGenerator``, ``generator_params``, the PWG feature keys, and our full feature contract
under ``espnet_hifigan_feature_contract``) and, if the vocoder normalises, ``<outdir>/stats.npy``
([mean, std]), so that ``parallel_wavegan.utils.load_model`` normalises the raw mels it is given
as our vocoder does. Use it as::

    python -m espnet2.bin.tts_inference ... --vocoder_file <outdir>/checkpoint-0steps.pkl
    Text2Speech(train_config, model_file, vocoder_file="<outdir>/checkpoint-0steps.pkl")

(ESPnet needs the ``parallel_wavegan`` package for this.)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_hifigan.contract import ContractError
from espnet_hifigan.formats.espnet_layout import UnsupportedConversion
from espnet_hifigan.core.safety import check_outputs_not_inputs, input_files
from espnet_hifigan.formats.pwg import PWG_CHECKPOINT_PATTERN, PWG_CONFIG, PWG_STATS_NPY, export_parallel_wavegan
from espnet_hifigan.inference.vocoder import Vocoder


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="model.zip, experiment dir, or config.yaml (+ --model_file)")
    parser.add_argument("--model_file", type=Path, default=None, help="checkpoint (with a config.yaml or an experiment dir)")
    parser.add_argument("--outdir", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=0, help="training steps, for the file name")
    return parser


def main(cmd: Optional[List[str]] = None) -> int:
    """Export; return the exit status (1 with one error line on bad input)."""
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        outputs = [args.outdir / name for name in (PWG_CONFIG, PWG_STATS_NPY, PWG_CHECKPOINT_PATTERN.format(steps=args.steps))]
        check_outputs_not_inputs(outputs, input_files(args.model, args.model_file), what="--outdir")
        vocoder = Vocoder.from_pretrained(args.model, args.model_file)
        paths = export_parallel_wavegan(vocoder, args.outdir, args.steps)
    except (ContractError, UnsupportedConversion, ValueError, KeyError, FileNotFoundError) as e:
        logging.error(f"cannot export {args.model}: {e}")
        return 1
    for name, path in paths.items():
        logging.info(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
