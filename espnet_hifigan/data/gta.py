"""Ground-truth-aligned (teacher-forced) mels for fine-tuning a vocoder after an ESPnet TTS.

The library side of ``python -m espnet_hifigan.bin.gta`` (the chain's GTA steps; see that CLI for
the full description): :func:`align` checks the TTS features' contract against the vocoder's and
reconciles every utterance's length with its audio (all-or-nothing output directory);
:func:`finetune_config` writes the fine-tuning training config from the pretrained experiment.
Both take the CLI's options (an ``argparse.Namespace``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
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
    FeatureContract,
    format_table,
    load_target_contract,
    pick_tts_feats,
    reconcile,
)
from espnet_hifigan.core.fileio import resolve_relative
from espnet_hifigan.core.scp import read_feats_scp
from espnet_hifigan.core.wav_scp import is_ark_entry, is_pipe

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
            if is_pipe(parts[1]) or is_ark_entry(parts[1]):  # ESPnet's "sound" loader reads files only
                kind = "a pipe" if is_pipe(parts[1]) else "an ark entry"
                raise GTAError(f"{path}:{lineno}: {parts[0]} is {kind}; format the audio first (voc.sh stage 2)")
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
