"""The voc.sh feature options of a converted pretrained vocoder (``voc.sh --pretrained_model``).

A pretrained generator only fits the features it was trained on: the recipe takes ``--fs``,
``--n_fft``, ``--n_shift``, ``--win_length``, ``--n_mels``, ``--fmin``, ``--fmax`` from the
contract of the ``convert_checkpoint --for_training`` directory, printed as ``name=value`` lines
(as ``tts_contract --print_recipe_opts`` does for ``--tts_exp``). Options the user gave
explicitly (``--given fs=16000``) and an ESPnet TTS's features (``--tts_config``) must equal the
pretrained model's: otherwise the table of the differing fields goes to stderr, exit status 1.

``--train_config FILE --write_config OUT`` writes the training config of the warm start: the model
sections (features, normalisation, generator, discriminator) of the pretrained model, the
training sections of ``FILE`` (optimisers, batches, run length, ...), and ``model_conf`` of the
pretrained model updated with FILE's (segment, loss weights: the user's choice).

Example:
    python -m espnet_hifigan.bin.pretrained_opts --pretrained exp/voc_finetune/pretrained \\
        --given fmax=8000 --tts_config ../tts1/exp/tts_train/config.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from espnet_hifigan.bin.tts_contract import RECIPE_OPTS, recipe_option_lines
from espnet_hifigan.contract import (
    ContractError,
    FeatureContract,
    load_target_contract,
    reconcile,
)
from espnet_hifigan.contract.base import load_mapping
from espnet_hifigan.core.fileio import write_text_atomic
from espnet_hifigan.data.gta import MODEL_SECTIONS


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", required=True, type=Path, help="convert_checkpoint --for_training directory")
    parser.add_argument("--given", action="append", default=[], help="an explicit voc.sh feature option, name=value")
    parser.add_argument("--tts_config", type=Path, default=None, help="config.yaml of an ESPnet TTS (--tts_exp)")
    parser.add_argument("--train_config", type=Path, default=None, help="training sections for --write_config")
    parser.add_argument("--write_config", type=Path, default=None, help="write the merged training config here")
    return parser


def merged_config(pretrained_config: Path, train_config: Path) -> Dict[str, Any]:
    """Model sections of the pretrained config, training sections of ``train_config``."""
    pretrained = load_mapping(pretrained_config)
    config = {k: v for k, v in load_mapping(train_config).items() if k not in MODEL_SECTIONS}
    for key in MODEL_SECTIONS:
        if key in pretrained:
            config[key] = pretrained[key]
        elif key.startswith("normalize"):
            config[key] = None if key == "normalize" else {}
    config["model_conf"] = {**(pretrained.get("model_conf") or {}), **(load_mapping(train_config).get("model_conf") or {})}
    return config


def _parse(name: str, text: str) -> Any:
    if text in ("", "null", "None", "none"):
        return None
    number = float(text)
    return int(number) if number.is_integer() and name not in ("fmin", "fmax") else number


def recipe_lines(args: argparse.Namespace) -> List[str]:
    """The option lines; raises ``ContractMismatch`` on a conflict."""
    pretrained = load_target_contract(args.pretrained).raw()
    given = {}
    for item in args.given:
        name, _, value = item.partition("=")
        if name not in RECIPE_OPTS:
            raise ContractError(f"--given {item}: not a voc.sh feature option ({', '.join(RECIPE_OPTS)})")
        given[RECIPE_OPTS[name]] = _parse(name, value)
    if given:
        explicit = dataclasses.replace(pretrained, **given, source="the recipe's options")
        reconcile(explicit, pretrained, hint=f"Leave these options out: {args.pretrained} was trained on its features.",
                  labels=("recipe options", "pretrained"))
    if args.tts_config is not None:
        tts = FeatureContract.from_espnet_tts_config(args.tts_config)
        reconcile(tts, pretrained, hint=f"The TTS ({args.tts_config}) and the pretrained vocoder use different features.",
                  labels=("TTS", "pretrained"))
    return recipe_option_lines(pretrained)


def main(cmd: Optional[List[str]] = None) -> int:
    """Print the option lines; return the exit status (1 with the table on a conflict)."""
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        lines = recipe_lines(args)
        if args.write_config is not None:
            if args.train_config is None:
                raise ValueError("--write_config needs --train_config")
            config = merged_config(Path(args.pretrained) / "config.yaml", args.train_config)
            header = (
                f"# Warm start: model sections of {args.pretrained}/config.yaml (the pretrained model), training sections "
                f"of {args.train_config}, model_conf of both ({args.train_config} wins).\n"
            )
            write_text_atomic(args.write_config, header + yaml.safe_dump(config, sort_keys=False))
        print("\n".join(lines))
    except (ContractError, FileNotFoundError, ValueError) as e:
        logging.error(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
