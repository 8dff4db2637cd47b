"""Convert another implementation's HiFi-GAN into a packed espnet-hifigan model (``model.zip``).

Sources (``--type``, detected when ``auto``):

* ``official``: jik876/hifi-gan ``g_XXXXXXXX`` with its ``config.json`` (``--config``, default:
  next to it). Features: the official mel (natural log, ``center=False``).
* ``pwg``: ParallelWaveGAN ``checkpoint-*.pkl`` (``generator_type: HiFiGANGenerator``) with its
  ``config.yml`` and ``stats.npy``/``stats.h5`` next to it.
* ``espnet``: an ESPnet ``gan_tts`` experiment's ``*.pth`` with its ``config.yaml``
  (``tts: joint_text2wav`` with ``vocoder_type: hifigan_generator``): the ``tts.generator.vocoder.*``
  weights; the experiment's normalisation statistics travel with it.
* ``espnet_generator``: a bare ESPnet/PWG-layout generator state dict; give its constructor
  arguments (``--generator_params`` YAML) and features (``--feats_contract``).
* ``ours``: one of our experiment directories / ``config.yaml`` + ``--model_file``.

The result decodes with ``voc_inference --model_file model.zip`` and
``espnet_hifigan.Vocoder.from_pretrained("model.zip")``; the feature contract inside makes
mismatched mels fail loudly. Output parity with the source implementation is tested in
``tests/test_interop.py``.

``--for_training --outdir DIR`` (``official``, ``pwg``, ``espnet``) converts the generator AND
the discriminators it was trained against, for a warm start
(:mod:`espnet_hifigan.train.warmstart`): ``DIR/config.yaml`` (a complete training config),
``DIR/model.pth`` (``voc_train --init_param DIR/model.pth``), ``DIR/feature_contract.yaml``.
An official ``g_XXXXXXXX`` takes its ``do_XXXXXXXX`` from next to it or ``--discriminator``.
A source whose discriminator cannot be mapped exactly is refused (nothing written).

Example:
    python -m espnet_hifigan.bin.convert_checkpoint --for_training \\
        --input LJ_V1/g_02500000 --discriminator LJ_V1/do_02500000 --outdir exp/pretrained
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

import yaml

from espnet_hifigan.contract import ContractError, FeatureContract
from espnet_hifigan.core.safety import check_outputs_not_inputs, input_files
from espnet_hifigan.formats.espnet_layout import (
    UnsupportedConversion,
    convert_espnet_generator,
    espnet_generator_state,
)
from espnet_hifigan.formats.packing import pack_loaded_vocoder
from espnet_hifigan.formats.weights import load_weights
from espnet_hifigan.inference.vocoder import Vocoder

TYPES = ("auto", "official", "pwg", "espnet", "espnet_generator", "ours")
# The sources --for_training converts (generator and discriminators).
TRAINING_TYPES = ("official", "pwg", "espnet")


def detect_type(path: Path, config: Optional[Path]) -> str:
    """Guess the source type from file names and contents."""
    if path.suffix == ".pkl":
        return "pwg"
    if path.is_dir() or path.suffix in (".yaml", ".yml"):
        return "ours"
    config = config or (path.parent / "config.json" if (path.parent / "config.json").is_file() else path.parent / "config.yaml")
    if config.suffix == ".json":
        return "official"
    if config.is_file():
        with open(config, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        if "tts" in data:
            return "espnet"
        if "feats_extract_conf" in data:
            return "ours"
    raise ValueError(f"cannot tell what {path} is; give --type")


def load(args: argparse.Namespace) -> Vocoder:
    """Load the source as a :class:`Vocoder`."""
    kind = detect_type(args.input, args.config) if args.type == "auto" else args.type
    logging.info(f"{args.input}: reading it as '{kind}'")
    if kind == "official":
        return Vocoder.from_official(args.input, args.config or args.input.parent / "config.json")
    if kind == "pwg":
        return Vocoder.from_parallel_wavegan(args.input, args.config)
    if kind == "espnet":
        return Vocoder.from_espnet(args.input, args.config or args.input.parent / "config.yaml")
    if kind == "ours":
        if args.input.is_dir():
            return Vocoder.from_pretrained(args.input, args.model_file)
        return Vocoder.from_pretrained(args.config or args.input, args.model_file if args.config is None else args.input)
    if args.generator_params is None or args.feats_contract is None:
        raise ValueError("--type espnet_generator needs --generator_params and --feats_contract")
    with open(args.generator_params, encoding="utf-8") as f:
        params = yaml.safe_load(f)
    contract = FeatureContract.load(args.feats_contract)
    state = espnet_generator_state(load_weights(args.input, "checkpoint"))
    # A generator trained on normalised features: the vocoder normalises raw ones itself.
    norm = contract.normalize
    mean = std = None
    if norm is not None:
        mvn = norm.module()
        mean, std = mvn.mean, mvn.std
    config, ours = convert_espnet_generator(state, params, contract.raw(), norm, mean, std)
    return Vocoder(config, ours, source=str(args.input), normalization=norm)


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, type=Path, help="checkpoint (or experiment dir) to convert")
    parser.add_argument("--type", choices=TYPES, default="auto")
    parser.add_argument("--config", type=Path, default=None, help="its config (config.json / config.yml / config.yaml)")
    parser.add_argument("--model_file", type=Path, default=None, help="checkpoint, for --type ours")
    parser.add_argument("--generator_params", type=Path, default=None, help="YAML of HiFiGANGenerator args (espnet_generator)")
    parser.add_argument("--feats_contract", type=Path, default=None, help="the generator's features (espnet_generator)")
    parser.add_argument("--outpath", type=Path, default=None, help="destination model.zip (without --for_training)")
    parser.add_argument(
        "--for_training", action="store_true",
        help="convert generator AND discriminators into --outdir for voc_train --config/--init_param",
    )
    parser.add_argument("--discriminator", type=Path, default=None, help="official do_XXXXXXXX (default: next to g_)")
    parser.add_argument("--outdir", type=Path, default=None, help="output directory of --for_training")
    return parser


def convert_for_training(args: argparse.Namespace) -> int:
    """``--for_training``: write the warm-start directory; return the exit status."""
    from espnet_hifigan.formats.weights import ModelFileError
    from espnet_hifigan.train import warmstart

    try:
        if args.outdir is None:
            raise ValueError("--for_training needs --outdir")
        kind = detect_type(args.input, args.config) if args.type == "auto" else args.type
        if kind not in TRAINING_TYPES:
            raise ValueError(f"--for_training converts {', '.join(TRAINING_TYPES)} checkpoints, not '{kind}'")
        if args.discriminator is not None and kind != "official":
            raise ValueError("--discriminator is for official do_ files; the other sources hold their discriminator")
        inputs = input_files(args.input, args.config, args.discriminator)
        check_outputs_not_inputs([args.outdir], inputs, what="--outdir")
        logging.info(f"{args.input}: reading it as '{kind}' (generator and discriminators)")
        if kind == "official":
            warm = warmstart.import_official(args.input, args.discriminator, args.config or args.input.parent / "config.json")
        elif kind == "pwg":
            warm = warmstart.import_pwg(args.input, args.config)
        else:
            warm = warmstart.import_espnet(args.input, args.config or args.input.parent / "config.yaml")
        paths = warmstart.write_warm_start(warm, args.outdir)
    except (ContractError, UnsupportedConversion, ModelFileError, ValueError, KeyError, FileNotFoundError) as e:
        logging.error(f"cannot convert {args.input} for training: {e}")
        return 1
    sizes = ", ".join(f"{net} {n / 1e6:.2f} M" for net, n in warmstart.summary(warm))
    logging.info(f"wrote {paths['config']} and {paths['model']} ({sizes}); optimiser states not carried")
    return 0


def main(cmd: Optional[List[str]] = None) -> int:
    """Convert; return the exit status (1 with one error line on bad input)."""
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level="INFO", format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    if args.for_training:
        return convert_for_training(args)
    if args.outpath is None:
        logging.error("give --outpath (model.zip), or --for_training with --outdir")
        return 1
    try:
        inputs = input_files(args.input, args.config, args.model_file, args.generator_params, args.feats_contract)
        check_outputs_not_inputs([args.outpath], inputs, what="--outpath")
        vocoder = load(args)
        path = pack_loaded_vocoder(vocoder, args.outpath)
    except (ContractError, UnsupportedConversion, ValueError, KeyError, FileNotFoundError) as e:
        logging.error(f"cannot convert {args.input}: {e}")
        return 1
    logging.info(f"wrote {path}: {vocoder.contract.source}, {vocoder.fs} Hz, hop {vocoder.hop_length}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
