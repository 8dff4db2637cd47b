"""Log-mel feature extraction of a formatted ``wav.scp`` into a Kaldi ark/scp (recipe stage 3).

The library side of ``python -m espnet_hifigan.bin.extract_feats`` (see that CLI for the whole
description): :func:`extract` computes :class:`~espnet_hifigan.nets.features.LogMelSpectrogram`
per utterance, checks ``frames == num_frames(samples)`` (and the samples against
``utt2num_samples``), and writes ark/scp/``utt2num_frames`` all-or-nothing;
:func:`contract_yaml` / :func:`compare_contract` write and compare the ``feats_conf.yaml``
beside them.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, List

import kaldiio
import numpy as np
import torch
import yaml

from espnet_hifigan.core.conventions import min_samples
from espnet_hifigan.core.wav_scp import read_audio
from espnet_hifigan.nets.features import LogMelSpectrogram

# Descriptions written as comments next to each key of feats_conf.yaml.
CONTRACT_COMMENTS: Dict[str, str] = {
    "fs": "sampling rate in Hz",
    "n_fft": "FFT size in samples",
    "hop_length": "frame shift in samples (= the generator's total upsampling)",
    "win_length": "analysis window length in samples",
    "window": "window function",
    "n_mels": "number of mel bins",
    "fmin": "lowest mel frequency in Hz (null: 0)",
    "fmax": "highest mel frequency in Hz (null: fs / 2)",
    "log_base": "base of the logarithm (null: natural log)",
    "mel_floor": "lower clamp of mel energies before the log",
    "magnitude_eps": "floor of the power spectrum before the square root",
    "magnitude_eps_mode": "clamp: sqrt(max(p, eps)) (ESPnet); add: sqrt(p + eps) (official)",
    "padding": "center: frames = samples // hop + 1; official: frames = samples // hop",
}
SPEED_TAG = "speed:"


class ExtractError(RuntimeError):
    """An utterance whose features cannot be extracted."""


def contract_yaml(parameters: Dict[str, Any]) -> str:
    """Render the feature contract as YAML with one comment per key."""
    lines = [
        "# Feature contract of the log-mel features in this directory",
        "# (espnet_hifigan.nets.features.LogMelSpectrogram.get_parameters()).",
    ]
    for key, value in parameters.items():
        rendered = yaml.safe_dump({key: value}, default_flow_style=True).strip()[1:-1]
        comment = CONTRACT_COMMENTS.get(key, "feature parameter")
        lines.append(f"{rendered}  # {comment}")
    return "\n".join(lines) + "\n"


def compare_contract(path: Path, parameters: Dict[str, Any]) -> List[str]:
    """Differences between the contract stored in ``path`` and ``parameters``."""
    with path.open(encoding="utf-8") as f:
        stored = yaml.safe_load(f) or {}
    diffs = []
    for key in sorted(set(stored) | set(parameters)):
        a, b = stored.get(key, "<missing>"), parameters.get(key, "<missing>")
        same = a == b
        if not same and isinstance(a, (int, float)) and isinstance(b, (int, float)):
            same = float(a) == float(b)
        if not same:
            diffs.append(f"{key}: dumped {a!r}, requested {b!r}")
    return diffs


def read_scp(path: Path) -> List[List[str]]:
    """Read ``key value`` lines."""
    entries = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.strip().split(maxsplit=1)
            if not fields:
                continue
            if len(fields) != 2:
                raise ExtractError(f"{path}:{lineno}: expected 'key value', got {line!r}")
            entries.append(fields)
    return entries


def extract(args: argparse.Namespace, extractor: LogMelSpectrogram) -> None:
    """Extract the features of every utterance of ``--wav_scp``."""
    expected_samples: Dict[str, int] = {}
    if args.utt2num_samples is not None:
        expected_samples = {k: int(v) for k, v in read_scp(args.utt2num_samples)}
    entries = read_scp(args.wav_scp)
    args.out_ark.parent.mkdir(parents=True, exist_ok=True)
    args.out_scp.parent.mkdir(parents=True, exist_ok=True)
    tmp_scp = args.out_scp.with_name(f".{args.out_scp.name}.tmp{os.getpid()}")
    frame_lines: List[str] = []
    audio_sec = 0.0
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    try:
        with kaldiio.WriteHelper(f"ark,scp:{args.out_ark},{tmp_scp}") as writer:
            for utt, path in entries:
                try:  # the one wav.scp reader (files, "cmd |" pipes, wav ark entries)
                    data, rate = read_audio(path)
                except (RuntimeError, OSError, ValueError) as e:  # soundfile's errors are RuntimeErrors
                    raise ExtractError(f"utterance {utt!r} ({path}): cannot read audio: {e}") from None
                wav = data[:, 0] if data.shape[1] == 1 else data
                if rate != extractor.fs:
                    raise ExtractError(
                        f"utterance {utt!r} ({path}): sampling rate {rate} Hz != fs {extractor.fs} Hz "
                        "(re-run stage 2 with the same --fs)"
                    )
                if wav.ndim != 1:
                    raise ExtractError(f"utterance {utt!r} ({path}): expected mono audio, got {wav.shape[1]} channels")
                n_samples = wav.shape[0]
                if n_samples == 0:
                    raise ExtractError(f"utterance {utt!r} ({path}): audio is empty (0 samples)")
                shortest = min_samples(extractor.padding, extractor.hop_length, extractor.n_fft)
                if n_samples < shortest:
                    raise ExtractError(
                        f"utterance {utt!r} ({path}): {n_samples} samples, fewer than the {shortest} "
                        f"the features need (n_fft={extractor.n_fft}, padding={extractor.padding}); "
                        "remove it from the data directory"
                    )
                if utt in expected_samples and expected_samples[utt] != n_samples:
                    raise ExtractError(
                        f"utterance {utt!r} ({path}): {n_samples} samples, but "
                        f"{args.utt2num_samples} says {expected_samples[utt]}"
                    )
                try:
                    with torch.no_grad():
                        feats, _ = extractor(torch.from_numpy(wav)[None])
                except RuntimeError as e:
                    raise ExtractError(
                        f"utterance {utt!r} ({path}): feature extraction failed for {n_samples} "
                        f"samples (too short for n_fft={extractor.n_fft}?): {e}"
                    ) from None
                feats_np = feats[0].numpy().astype(np.float32)
                expected_frames = int(extractor.num_frames(n_samples))
                if feats_np.shape[0] != expected_frames:
                    raise ExtractError(
                        f"utterance {utt!r}: {feats_np.shape[0]} frames, expected "
                        f"num_frames({n_samples}) = {expected_frames}"
                    )
                if not np.all(np.isfinite(feats_np)):
                    raise ExtractError(f"utterance {utt!r} ({path}): features contain NaN or Inf")
                writer(utt, feats_np)
                frame_lines.append(f"{utt} {feats_np.shape[0]}")
                audio_sec += n_samples / extractor.fs
        tmp_scp.replace(args.out_scp)
        tmp_frames = args.out_utt2num_frames.with_name(f".{args.out_utt2num_frames.name}.tmp{os.getpid()}")
        tmp_frames.write_text("".join(f"{line}\n" for line in frame_lines), encoding="utf-8")
        tmp_frames.replace(args.out_utt2num_frames)
    except BaseException:
        for path in (tmp_scp, args.out_ark, args.out_scp):
            Path(path).unlink(missing_ok=True)
        raise
    cpu_sec = time.process_time() - start_cpu
    wall_sec = time.perf_counter() - start_wall
    logging.info(
        f"{SPEED_TAG} utts={len(frame_lines)} audio_sec={audio_sec:.3f} cpu_sec={cpu_sec:.3f} "
        f"wall_sec={wall_sec:.3f} audio_sec_per_cpu_sec={audio_sec / max(cpu_sec, 1e-9):.1f}"
    )
