"""Check that an ESPnet TTS experiment's mels fit a vocoder, and pick the feats.scp to decode.

Derives the feature contract of a TTS experiment from its ``config.yaml`` (``feats_extract:
fbank`` + ``feats_extract_conf`` with ``LogMelFbank``'s fixed conventions; ``normalize:
global_mvn`` + ``normalize_conf.stats_file``) and compares it with the vocoder's (an experiment
directory, its ``config.yaml``, a packed ``model.zip`` or any contract file).

* Any difference other than normalisation: the table of differing fields goes to stderr, exit 1.
* With ``--decode_dir`` (``<tts_exp>/<decode>/<set>``): the ``denorm/`` or ``norm/`` feats.scp
  that fits (raw first; normalised features are de-normalised at decoding time) is printed on
  stdout, and its contract written to ``--output_contract``.
* With ``--print_recipe_opts``: the feature options of voc.sh that reproduce the TTS's features
  are printed as ``name=value`` lines (``fs``, ``n_fft``, ``n_shift``, ``win_length``, ``n_mels``,
  ``fmin``, ``fmax``); ``--vocoder`` (then a training config) is checked for the remaining fields
  (window, log base, floors, padding), which voc.sh takes from its ``feats_extract_conf``.

Example:
    python -m espnet_hifigan.bin.tts_contract --tts_config exp/tts_train/config.yaml \\
        --vocoder exp/voc_hifigan/config.yaml --decode_dir exp/tts_train/decode_best/test \\
        --output_contract exp/voc_hifigan/chain/test/feats_contract.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_hifigan.contract import (
    ContractError,
    FeatureContract,
    format_table,
    load_target_contract,
    pick_tts_feats,
    reconcile,
)

# Exit status when the contracts cannot be reconciled or a file is unusable.
EXIT_MISMATCH = 1
# voc.sh feature options and the contract fields they set.
RECIPE_OPTS = dict(
    fs="fs", n_fft="n_fft", n_shift="hop_length", win_length="win_length", n_mels="n_mels", fmin="fmin", fmax="fmax"
)


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tts_config", required=True, type=Path, help="config.yaml of the ESPnet TTS experiment")
    parser.add_argument(
        "--vocoder", type=Path, default=None,
        help="vocoder experiment dir, its config.yaml, a packed model.zip, or any contract file",
    )
    parser.add_argument(
        "--print_recipe_opts", action="store_true", help="print voc.sh feature options (name=value) of the TTS features"
    )
    parser.add_argument("--decode_dir", type=Path, default=None, help="tts_inference output <tts_exp>/<decode>/<set>")
    parser.add_argument("--output_contract", type=Path, default=None, help="write the picked features' contract here")
    parser.add_argument("--write_tts_contract", type=Path, default=None, help="write the TTS's raw-feature contract here")
    parser.add_argument("--log_level", default="INFO")
    return parser


def recipe_opts(args: argparse.Namespace, tts_raw: FeatureContract) -> List[str]:
    """voc.sh option lines reproducing ``tts_raw``; check the other fields against --vocoder."""
    tts_raw.logmel_params()  # raises if our LogMelSpectrogram cannot compute these features
    if args.vocoder is not None:
        target = load_target_contract(args.vocoder)
        fixed = {field: getattr(tts_raw, field) for field in RECIPE_OPTS.values()}
        target = dataclasses.replace(target, **fixed)
        reconcile(
            tts_raw,
            target,
            hint=f"Set these in feats_extract_conf of {args.vocoder} to match the TTS ({args.tts_config}).",
            labels=("TTS", "vocoder"),
        )
    return recipe_option_lines(tts_raw)


def recipe_option_lines(contract: FeatureContract) -> List[str]:
    """The voc.sh feature options (``name=value`` lines, ``null`` for none) reproducing ``contract``."""
    lines = []
    for opt, field in RECIPE_OPTS.items():
        value = getattr(contract, field)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        lines.append(f"{opt}={'null' if value is None else value}")
    return lines


def check(args: argparse.Namespace) -> Optional[Path]:
    """Compare, pick and write; return the picked scp (or ``None`` without --decode_dir)."""
    tts_raw = FeatureContract.from_espnet_tts_config(args.tts_config)
    if args.write_tts_contract is not None:
        tts_raw.save(args.write_tts_contract)
    if args.vocoder is None:
        raise ContractError("--vocoder is required (unless --print_recipe_opts)")
    target = load_target_contract(args.vocoder)
    reconcile(
        tts_raw,
        target,
        hint=f"Train the vocoder with the TTS's feature settings ({args.tts_config}).",
        labels=("TTS", "vocoder"),
    )
    logging.info(f"feature contracts match: {tts_raw.source} and {target.source}")
    if args.decode_dir is None:
        return None
    scp, contract, conversion = pick_tts_feats(args.decode_dir, args.tts_config, target)
    logging.info(f"{args.decode_dir}: decoding {scp}; {conversion.describe()}")
    if not conversion.identity:
        logging.info("\n" + format_table(contract.compare(target), "features", "vocoder"))
    if args.output_contract is not None:
        contract.save(args.output_contract)
    return scp


def main(cmd: Optional[List[str]] = None) -> int:
    """Run the check; print the picked scp; return the exit status."""
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        if args.print_recipe_opts:
            tts_raw = FeatureContract.from_espnet_tts_config(args.tts_config)
            if args.write_tts_contract is not None:
                tts_raw.save(args.write_tts_contract)
            print("\n".join(recipe_opts(args, tts_raw)))
            return 0
        scp = check(args)
    except (ContractError, FileNotFoundError, KeyError) as e:
        logging.error(str(e))
        return EXIT_MISMATCH
    if scp is not None:
        print(scp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
