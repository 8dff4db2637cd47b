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
import dataclasses
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import kaldiio
import numpy as np
import soundfile as sf
import yaml

from espnet_hifigan.contract import (
    CONTRACT_FILE,
    FEATS_CONF_FILE,
    ContractError,
    FeatureContract,
    format_table,
    load_target_contract,
    pick_tts_feats,
    reconcile,
)
from espnet_hifigan.core.fileio import resolve_relative
from espnet_hifigan.core.scp import read_feats_scp

# Default tolerance: Tacotron 2 with reduction factor 3 (ESPnet's LJSpeech recipes) emits up to
# 2 frames fewer than the audio has.
DEFAULT_MAX_FRAME_DIFF = 2
REPORT_FILE = "gta_report.tsv"
# The model sections a fine-tuning inherits from the pretrained experiment's config.yaml.
MODEL_SECTIONS = (
    "feats_extract", "feats_extract_conf", "normalize", "normalize_conf",
    "generator", "generator_conf", "discriminator", "discriminator_conf", "model_conf",
)
# Run-specific keys a fine-tuning config must not set (the chain gives them on the command line).
RUN_KEYS = (
    "output_dir", "train_data_path_and_name_and_type", "valid_data_path_and_name_and_type",
    "train_shape_file", "valid_shape_file", "resume", "ngpu", "config",
)


class GTAError(RuntimeError):
    """An utterance or file the GTA set cannot be built from (the message names it)."""


@dataclass
class Reconciled:
    """The outcome for one utterance."""

    utt: str
    samples: int
    expected: int
    frames: int
    action: str


def _str2bool(value: str) -> bool:
    from espnet2.utils.types import str2bool

    return str2bool(value)


def read_wav_scp(path: Path, audio_root: Optional[Path] = None) -> Dict[str, str]:
    """``utt -> absolute audio path`` of a wav.scp (plain files only).

    Args:
        path: The wav.scp.
        audio_root: Where relative paths hold (ESPnet writes them relative to the recipe
            directory); default: the current directory.
    """
    entries = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2:
                raise GTAError(f"{path}:{lineno}: expected '<utt> <path>', got {line.strip()!r}")
            if parts[1].endswith("|"):
                raise GTAError(f"{path}:{lineno}: {parts[0]} is a pipe; format the audio first (voc.sh stage 2)")
            audio = Path(parts[1])
            if not audio.is_absolute() and audio_root is not None:
                audio = audio_root / audio
            entries[parts[0]] = str(audio.absolute())
    return entries


def fit_length(feats: np.ndarray, expected: int, max_diff: int) -> Tuple[Optional[np.ndarray], str]:
    """Trim or edge-pad ``feats`` (frames, n_mels) to ``expected`` frames if within ``max_diff``.

    Returns:
        The fitted features (``None`` if beyond the tolerance) and what was done.
    """
    diff = feats.shape[0] - expected
    if diff == 0:
        return feats, "exact"
    if abs(diff) > max_diff:
        return None, f"{'longer' if diff > 0 else 'shorter'} by {abs(diff)} frames (> {max_diff})"
    if diff > 0:
        return feats[:expected], f"trimmed {diff}"
    return np.pad(feats, ((0, -diff), (0, 0)), mode="edge"), f"padded {-diff}"


def align(args: argparse.Namespace) -> List[Reconciled]:
    """Build the GTA training set of one data set (see the module docstring)."""
    target = load_target_contract(args.vocoder)
    scp, contract, conversion = pick_tts_feats(args.gta_dir, args.tts_config, target)
    logging.info(f"{args.gta_dir}: using {scp}; {conversion.describe()}")
    if not conversion.identity:
        logging.info("\n" + format_table(contract.compare(target), "TTS features", "vocoder"))
    wavs = read_wav_scp(args.wav_scp, args.audio_root)
    output_dir = args.output_dir.resolve()
    tmp_dir = output_dir.with_name(f".{output_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    results: List[Reconciled] = []
    try:
        kept: List[Reconciled] = []
        with kaldiio.WriteHelper(f"ark,scp:{tmp_dir}/feats.ark,{tmp_dir}/feats.scp") as writer:
            for utt, feats in read_feats_scp(scp):
                if utt not in wavs:
                    raise GTAError(f"{utt}: in {scp} but not in {args.wav_scp}")
                try:
                    info = sf.info(wavs[utt])
                except (RuntimeError, OSError) as e:
                    raise GTAError(f"{utt}: cannot read audio {wavs[utt]}: {e}") from None
                if info.samplerate != target.fs:
                    raise GTAError(f"{utt}: {wavs[utt]} is sampled at {info.samplerate} Hz; the vocoder expects {target.fs} Hz")
                if feats.ndim != 2 or feats.shape[1] != target.n_mels:
                    raise GTAError(f"{utt}: teacher-forced mel has shape {feats.shape}; expected (frames, {target.n_mels})")
                expected = target.num_frames(info.frames)
                fitted, action = fit_length(conversion(feats), expected, args.max_frame_diff)
                result = Reconciled(utt, info.frames, expected, feats.shape[0], action if fitted is not None else f"skipped: {action}")
                results.append(result)
                if fitted is None:
                    message = (
                        f"{utt}: teacher-forced mel has {feats.shape[0]} frames, the audio ({info.frames} samples) "
                        f"needs {expected}: {action}"
                    )
                    if not args.skip_mismatched:
                        raise GTAError(message + " (raise --max_frame_diff, or --skip_mismatched true to drop it)")
                    logging.warning(message + "; dropped")
                    continue
                writer(utt, fitted.astype(np.float32))
                kept.append(result)
        if not kept:
            raise GTAError(f"no utterance of {scp} could be aligned with {args.wav_scp}")
        # The scp names the final ark path.
        scp_text = (tmp_dir / "feats.scp").read_text(encoding="utf-8").replace(str(tmp_dir), str(output_dir))
        (tmp_dir / "feats.scp").write_text(scp_text, encoding="utf-8")
        (tmp_dir / "wav.scp").write_text("".join(f"{r.utt} {wavs[r.utt]}\n" for r in kept), encoding="utf-8")
        (tmp_dir / "utt2num_frames").write_text("".join(f"{r.utt} {r.expected}\n" for r in kept), encoding="utf-8")
        (tmp_dir / "speech_shape").write_text("".join(f"{r.utt} {r.samples}\n" for r in kept), encoding="utf-8")
        raw = dataclasses.replace(target.raw(), source=f"teacher-forced mels of {args.tts_config} ({scp})")
        raw.save(tmp_dir / CONTRACT_FILE)
        raw.save_feats_conf(tmp_dir / FEATS_CONF_FILE)
        (tmp_dir / REPORT_FILE).write_text(
            "utt\taudio_samples\tneeded_frames\tgta_frames\taction\n"
            + "".join(f"{r.utt}\t{r.samples}\t{r.expected}\t{r.frames}\t{r.action}\n" for r in results),
            encoding="utf-8",
        )
        shutil.rmtree(output_dir, ignore_errors=True)
        tmp_dir.replace(output_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    adjusted = sum(r.action != "exact" for r in kept)
    logging.info(
        f"{output_dir}: {len(kept)} of {len(results)} utterances, {adjusted} length-adjusted "
        f"(<= {args.max_frame_diff} frames), {len(results) - len(kept)} dropped; see {output_dir / REPORT_FILE}"
    )
    return results


def finetune_config(args: argparse.Namespace) -> Dict[str, Any]:
    """Write the fine-tuning config (see the module docstring); return it."""
    from espnet_hifigan.formats.weights import load_weights

    with open(args.pretrained_config, encoding="utf-8") as f:
        pretrained = yaml.safe_load(f)
    with open(args.finetune_config, encoding="utf-8") as f:
        overrides = yaml.safe_load(f) or {}
    bad = sorted(set(overrides) & set(RUN_KEYS + ("init_param",)))
    if bad:
        raise GTAError(f"{args.finetune_config} sets {bad}; the chain sets those")
    target = load_target_contract(args.pretrained_config)
    for data_dir in args.data_dirs:
        contract = FeatureContract.load(data_dir / CONTRACT_FILE)
        reconcile(
            contract,
            target,
            hint=f"{data_dir} cannot train {args.pretrained_config}: rebuild it (chain.sh stage 3).",
            labels=("training data", "vocoder"),
        )
        if contract.normalize is not None:
            raise GTAError(f"{data_dir}: training features must be raw log-mel (the model normalises them)")
    config: Dict[str, Any] = {k: pretrained[k] for k in MODEL_SECTIONS if k in pretrained}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    stats = (config.get("normalize_conf") or {}).get("stats_file")
    if config.get("normalize") is not None and stats is not None:
        anchors = list(Path(args.pretrained_config).resolve().parents)
        resolved = resolve_relative(stats, anchors)
        if not resolved.is_file():
            raise GTAError(f"normalisation stats {stats} of {args.pretrained_config} not found")
        config["normalize_conf"] = dict(config["normalize_conf"], stats_file=str(resolved.resolve()))
    model = Path(args.pretrained_model).absolute()
    state = load_weights(model, "TTS model file")
    if any(k.startswith("discriminator.") for k in state):
        config["init_param"] = [str(model)]
    else:
        config["init_param"] = [f"{model}:{prefix}:{prefix}" for prefix in ("generator", "normalize") if any(k.startswith(prefix + ".") for k in state)]
        logging.warning(f"{model} has no discriminator weights: the discriminator starts from scratch")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    header = (
        f"# Fine-tuning config: model sections of {args.pretrained_config}, training sections of "
        f"{args.finetune_config}, initialised from {model}.\n"
    )
    tmp.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    tmp.replace(args.output)
    logging.info(f"wrote {args.output} (init_param: {config['init_param']})")
    return config


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
            align(args)
        else:
            finetune_config(args)
    except (GTAError, ContractError, ValueError, FileNotFoundError, KeyError) as e:
        logging.error(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
