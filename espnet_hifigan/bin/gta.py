"""Ground-truth-aligned (teacher-forced) mels for fine-tuning a vocoder after an ESPnet TTS.

Two steps of the chain (``egs2/TEMPLATE/voc1/chain.sh``), after ESPnet's
``python -m espnet2.bin.tts_inference --use_teacher_forcing true`` has written the teacher-forced
mels of a set (``<gta_dir>/{norm,denorm}/feats.scp``, one ``.npy`` per utterance):

``align``
    Checks the TTS features' contract against the vocoder's (exit 1 with a table of the
    differing fields; de-normalises TTS-normalised mels when only normalisation differs), then
    reconciles every utterance's length with its audio: the vocoder's framing needs exactly
    ``num_frames(samples)`` frames (``samples // hop + 1`` for ``center``). Tacotron 2 with a
    reduction factor r emits ``frames - frames % r``, so up to ``--max_frame_diff`` frames are
    trimmed from, or repeated at, the end (logged per utterance in ``gta_report.tsv``); a larger
    difference stops with the utterance named (or, with ``--skip_mismatched true``, drops and
    reports it). Writes ``feats.ark``/``feats.scp`` (raw log-mel), ``wav.scp``,
    ``utt2num_frames``, ``speech_shape``, ``feature_contract.yaml``, ``feats_conf.yaml`` — all or
    nothing. The wav.scp written has absolute paths (``--audio_root``: where the TTS's relative
    ones hold).

``finetune_config``
    Writes the training config of the fine-tuning: the model sections (features, normalisation,
    generator, discriminator, model_conf) of the pretrained experiment, the training sections of
    ``--finetune_config`` (e.g. ``conf/hifigan_finetune_gta.yaml``), and ``init_param`` pointing at
    the pretrained checkpoint (generator + discriminator + normalisation when it has them).

Examples:
    python -m espnet_hifigan.bin.gta align --tts_config exp/tts/config.yaml \\
        --gta_dir exp/voc/gta/tr_no_dev/tts_out --wav_scp dump/raw/tr_no_dev/wav.scp \\
        --vocoder exp/voc/config.yaml --output_dir exp/voc/gta/tr_no_dev
    python -m espnet_hifigan.bin.gta finetune_config --pretrained_config exp/voc/config.yaml \\
        --pretrained_model exp/voc/valid.generator_mel_loss.best.pth \\
        --finetune_config conf/hifigan_finetune_gta.yaml --output exp/voc_gta/finetune.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_hifigan.contract import ContractError
from espnet_hifigan.core.safety import check_outputs_not_inputs, input_files
from espnet_hifigan.data.gta import (
    DEFAULT_MAX_FRAME_DIFF,
    GTAError,
    align,
    finetune_config,
)


def _str2bool(value: str) -> bool:
    from espnet2.utils.types import str2bool

    return str2bool(value)


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log_level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("align", help="teacher-forced mels -> length-reconciled ark/scp with audio")
    p.add_argument("--tts_config", required=True, type=Path, help="config.yaml of the ESPnet TTS experiment")
    p.add_argument("--gta_dir", required=True, type=Path, help="tts_inference --use_teacher_forcing output dir")
    p.add_argument("--wav_scp", required=True, type=Path, help="the audio the TTS was fed (dump/raw/<set>/wav.scp)")
    p.add_argument("--audio_root", type=Path, default=None, help="where relative wav.scp paths hold (default: .)")
    p.add_argument("--vocoder", required=True, type=Path, help="vocoder experiment dir / config.yaml / model.zip")
    p.add_argument("--output_dir", required=True, type=Path)
    p.add_argument("--max_frame_diff", type=int, default=DEFAULT_MAX_FRAME_DIFF, help="frames trimmed or padded at most")
    p.add_argument("--skip_mismatched", type=_str2bool, default=False, help="drop (and report) utterances beyond it")
    p = sub.add_parser("finetune_config", help="write the fine-tuning training config")
    p.add_argument("--pretrained_config", required=True, type=Path, help="config.yaml of the pretrained vocoder")
    p.add_argument("--pretrained_model", required=True, type=Path, help="its checkpoint (*.pth)")
    p.add_argument("--finetune_config", required=True, type=Path, help="training sections, e.g. conf/hifigan_finetune_gta.yaml")
    p.add_argument("--data_dirs", nargs="*", type=Path, default=[], help="training data dirs whose contract must fit")
    p.add_argument("--output", required=True, type=Path)
    return parser


def main(cmd: Optional[List[str]] = None) -> int:
    """Run a sub-command; return the exit status (1 with one error message on bad input)."""
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        if args.command == "align":
            if args.max_frame_diff < 0:
                raise GTAError("--max_frame_diff must be >= 0")
            inputs = [args.tts_config, args.wav_scp, args.gta_dir, *input_files(args.vocoder)]
            check_outputs_not_inputs([args.output_dir], inputs, [args.gta_dir], "--output_dir")
            align(args)
        else:
            inputs = [args.pretrained_config, args.pretrained_model, args.finetune_config]
            check_outputs_not_inputs([args.output], inputs, what="--output")
            finetune_config(args)
    except (GTAError, ContractError, ValueError, FileNotFoundError, KeyError) as e:
        logging.error(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
