"""Decode features (or copy-synthesise audio) into wavs with a trained vocoder.

Writes ``<output_dir>/wav/<utt>.wav``, ``<output_dir>/wav.scp`` and ``<output_dir>/timing.json``
(audio seconds, compute seconds, real-time factor, device). Output appears only when every
utterance has been decoded: a failure leaves no partial ``wav.scp``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np
import soundfile as sf
import torch

from espnet_hifigan.api import Vocoder, read_feats_scp

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_file", required=True, help="Checkpoint (*.pth) or packed model (*.zip)")
    parser.add_argument("--train_config", default=None, help="config.yaml of the experiment (not for *.zip)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--feats_scp", help="Raw log-mel features: Kaldi ark scp or npy scp")
    src.add_argument("--wav_scp", help="Audio for copy synthesis (features are computed here)")
    parser.add_argument("--key_file", default=None, help="Decode only the utterances listed (first column)")
    parser.add_argument("--output_dir", required=True, help="Where wav/, wav.scp and timing.json go")
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: the first visible GPU")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="bfloat16: GPU autocast")
    parser.add_argument("--log_level", default="INFO")
    return parser


def _read_keys(key_file: Optional[str]) -> Optional[set]:
    if key_file is None:
        return None
    with open(key_file, encoding="utf-8") as f:
        return {line.split(maxsplit=1)[0] for line in f if line.strip()}


def _wav_items(wav_scp: str, vocoder: Vocoder) -> Iterator[Tuple[str, np.ndarray]]:
    with open(wav_scp, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            utt, path = line.strip().split(maxsplit=1)
            try:
                wav, fs = sf.read(path, dtype="float32", always_2d=False)
            except Exception as e:  # noqa: BLE001 - re-raised with the utterance named
                raise ValueError(f"{wav_scp}:{lineno}: cannot read audio of {utt} from {path}: {e}") from e
            if wav.ndim != 1:
                raise ValueError(f"{wav_scp}:{lineno}: {utt} has {wav.shape[1]} channels; expected mono")
            if fs != vocoder.fs:
                raise ValueError(f"{wav_scp}:{lineno}: {utt} is sampled at {fs} Hz; the vocoder expects {vocoder.fs} Hz")
            yield utt, vocoder.features(wav)


def decode(args: argparse.Namespace) -> dict:
    """Decode every utterance; return the timing summary."""
    device = "cuda" if args.ngpu > 0 else "cpu"
    if args.ngpu > 0 and not torch.cuda.is_available():
        raise RuntimeError("--ngpu > 0 but no CUDA device is visible")
    vocoder = Vocoder.from_pretrained(args.train_config or args.model_file, None if args.train_config is None else args.model_file, device)
    items = read_feats_scp(args.feats_scp) if args.feats_scp else _wav_items(args.wav_scp, vocoder)
    keys = _read_keys(args.key_file)
    dtype = DTYPES[args.dtype]

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".decode_", dir=output_dir))
    try:
        lines: List[str] = []
        audio_sec = compute_sec = 0.0
        for utt, feats in items:
            if keys is not None and utt not in keys:
                continue
            if feats.ndim != 2 or feats.shape[1] != vocoder.feats_extract.n_mels:
                raise ValueError(
                    f"{utt}: features have shape {feats.shape}; the vocoder expects (frames, {vocoder.feats_extract.n_mels})"
                )
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            wav = vocoder(feats, dtype=dtype)
            if device == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            compute_sec += elapsed
            audio_sec += len(wav) / vocoder.fs
            sf.write(staging / f"{utt}.wav", wav, vocoder.fs, subtype="PCM_16")
            lines.append(f"{utt} {(output_dir / 'wav' / f'{utt}.wav').resolve()}\n")
            logging.info(f"{utt}: {feats.shape[0]} frames -> {len(wav)} samples, RTF {elapsed / max(len(wav) / vocoder.fs, 1e-9):.4f}")
        if not lines:
            raise ValueError("no utterance was decoded (empty scp, or --key_file matched nothing)")
        wav_dir = output_dir / "wav"
        wav_dir.mkdir(exist_ok=True)
        for path in staging.iterdir():
            path.replace(wav_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    device_name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    timing = dict(
        num_utts=len(lines),
        audio_sec=audio_sec,
        compute_sec=compute_sec,
        rtf=compute_sec / audio_sec,
        device=device_name,
        dtype=args.dtype,
    )
    (output_dir / "wav.scp").write_text("".join(lines), encoding="utf-8")
    (output_dir / "timing.json").write_text(json.dumps(timing, indent=2) + "\n", encoding="utf-8")
    logging.info(
        f"decoded {len(lines)} utterances, {audio_sec:.2f} s of audio in {compute_sec:.2f} s: "
        f"RTF {timing['rtf']:.4f} ({1 / timing['rtf']:.1f}x real time) on {device_name}"
    )
    return timing


def main(cmd: Optional[List[str]] = None) -> None:
    """Parse options and decode; exit 1 with one error line on bad input."""
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        decode(args)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as e:
        logging.error(str(e))
        sys.exit(1)


def console_main() -> None:
    """Console entry point ``espnet-hifigan-infer``."""
    main()


if __name__ == "__main__":
    main()
