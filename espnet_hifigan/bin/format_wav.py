#!/usr/bin/env python3
"""Format the audio of a Kaldi data directory for vocoder training (recipe stage 2).

For every utterance: read the audio (a file soundfile can read, a ``command |`` pipe that
writes a WAV to stdout, or a wav ark entry ``wav.ark:56``: :mod:`espnet_hifigan.core.wav_scp`),
cut the segment when a ``segments`` file is given (end ``-1``: to the end of the recording, as
Kaldi), reduce it to one
channel, resample it to ``--fs`` with :func:`torchaudio.functional.resample`, and write it as
``<out_dir>/<utt>.<audio_format>``. Writes a ``wav.scp`` that points at the written files and
``utt2num_samples`` (length in samples at ``--fs``).

A WAV whose header promises more samples than the file holds (a truncated copy) is an error;
audio at another sampling rate than ``--fs`` is resampled and counted per rate in the log.

Peak normalisation (``--peak_normalize 0.95``, off by default): every utterance is scaled so
that its largest absolute sample is 0.95, as the official HiFi-GAN pretraining does when it loads
a file (``librosa.util.normalize(audio) * 0.95``). Applied here, before feature extraction, the
features and the training targets stay consistent. Leave it off for vocoders that must match an
ESPnet TTS's features: the TTS learnt the level of the un-normalised audio.

Multi-channel input: ``--multi_channel error`` (default) stops with an error naming the
utterance; ``--multi_channel first`` keeps the first channel. A ``segments`` line with a fifth column
cuts that channel (0-based, as Kaldi's ``extract-segments``) whatever ``--multi_channel`` says; a
channel the recording lacks is an error naming the segments line.

On any error the job stops with a message naming the utterance and its source, and removes
every file it wrote, so that no half-written output remains.

Example:
    python -m espnet_hifigan.bin.format_wav --wav_scp data/train/wav.scp --fs 16000 \\
        --out_dir dump/raw/train/data/format.1 --out_scp wav.1.scp \\
        --out_utt2num_samples utt2num_samples.1
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import soundfile
import torch

from espnet_hifigan.core.fileio import write_text_atomic
from espnet_hifigan.core.safety import check_outputs_not_inputs, check_utt_ids
from espnet_hifigan.core.wav_scp import audio_input_files
from espnet_hifigan.data.audio import (
    DEFAULT_SEGMENT_TOLERANCE_SEC,
    MULTI_CHANNEL_POLICIES,
    FormatError,
    Segmenter,
    peak_normalize,
    resample,
    to_mono,
)

AUDIO_FORMATS = ("flac", "wav")
DEFAULT_SUBTYPE = "PCM_16"


def optional_peak(text: str) -> Optional[float]:
    """``--peak_normalize``: a peak in (0, 1], or ``""``/``none``/``null``/``false`` for off."""
    if text.strip().lower() in ("", "none", "null", "false"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a peak in (0, 1] or 'none', got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"the peak must be in (0, 1], got {value}")
    return value


def check_paths(args: argparse.Namespace, segmenter: Segmenter) -> None:
    """Refuse, before anything is written, ids that cannot be file names and outputs over inputs.

    Raises:
        FormatError: naming the utterance id, or the output and the input it would overwrite.
    """
    entries = segmenter.segments if segmenter.segments is not None else segmenter.wav_scp
    try:
        check_utt_ids((utt for utt, _, _, _ in entries), args.segments or args.wav_scp, f".{args.audio_format}")
        audio = audio_input_files(segmenter.sources.values())  # ark offsets stripped, pipes skipped
        # The files written (out_dir itself is not replaced or cleaned: it may hold other things);
        # the audio never among the originals.
        inputs = [args.wav_scp, args.segments, *audio]
        check_outputs_not_inputs([args.out_scp, args.out_utt2num_samples], inputs, what="output")
        written = [args.out_dir / f"{utt}.{args.audio_format}" for utt, _, _, _ in entries]
        check_outputs_not_inputs(written, inputs, {path.parent for path in audio}, "output")
    except ValueError as e:
        raise FormatError(str(e)) from None


def format_wav(args: argparse.Namespace) -> None:
    """Format every utterance of the job; see the module docstring."""
    out_dir: Path = args.out_dir
    segmenter = Segmenter(args.wav_scp, args.segments, args.segment_tolerance)
    check_paths(args, segmenter)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    scp_lines: List[str] = []
    len_lines: List[str] = []
    n_clipped = 0
    resampled: Counter = Counter()
    total_sec = 0.0
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    try:
        for utt, source, data, rate in segmenter:
            if data.shape[0] == 0:
                raise FormatError(f"utterance {utt!r} ({source}): audio is empty (0 samples)")
            try:
                wav = to_mono(data, args.multi_channel)
            except FormatError as e:
                raise FormatError(f"utterance {utt!r} ({source}): {e}") from None
            if rate != args.fs:
                resampled[rate] += 1
            wav = resample(wav, rate, args.fs)
            if not np.all(np.isfinite(wav)):
                raise FormatError(f"utterance {utt!r} ({source}): audio contains NaN or Inf")
            if args.peak_normalize is not None:
                wav = peak_normalize(wav, args.peak_normalize)
            peak = float(np.max(np.abs(wav)))
            if peak > 1.0:
                n_clipped += 1
                logging.warning(f"{utt}: peak {peak:.3f} > 1 after resampling; clipped to [-1, 1]")
                wav = np.clip(wav, -1.0, 1.0)
            path = out_dir / f"{utt}.{args.audio_format}"
            tmp = path.with_name(f".{path.name}.tmp")
            written.append(tmp)
            soundfile.write(tmp, wav, args.fs, subtype=args.audio_subtype, format=args.audio_format.upper())
            tmp.replace(path)
            written[-1] = path
            scp_lines.append(f"{utt} {path}")
            len_lines.append(f"{utt} {wav.shape[0]}")
            total_sec += wav.shape[0] / args.fs
        write_text_atomic(args.out_scp, "".join(f"{line}\n" for line in scp_lines))
        written.append(args.out_scp)
        write_text_atomic(args.out_utt2num_samples, "".join(f"{line}\n" for line in len_lines))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    if resampled:
        counts = ", ".join(f"{n} from {rate} Hz" for rate, n in sorted(resampled.items()))
        logging.warning(f"resampled to {args.fs} Hz: {counts} (of {len(scp_lines)} utterances)")
    logging.info(
        f"formatted {len(scp_lines)} utterances ({total_sec:.1f} s of audio at {args.fs} Hz, "
        f"{'peak-normalised to ' + str(args.peak_normalize) + ', ' if args.peak_normalize else ''}"
        f"{n_clipped} clipped) in {time.process_time() - start_cpu:.2f} CPU-s, "
        f"{time.perf_counter() - start_wall:.2f} s"
    )


def get_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--wav_scp", type=Path, required=True, help="input wav.scp")
    parser.add_argument(
        "--segments", type=Path, default=None, help="optional segments file (utt rec start end [0-based channel])"
    )
    parser.add_argument("--fs", type=int, required=True, help="output sampling rate in Hz")
    parser.add_argument("--audio_format", choices=AUDIO_FORMATS, default="flac", help="output format")
    parser.add_argument(
        "--audio_subtype", default=DEFAULT_SUBTYPE, help="soundfile subtype of the written audio"
    )
    parser.add_argument(
        "--multi_channel",
        choices=MULTI_CHANNEL_POLICIES,
        default="error",
        help="what to do with multi-channel audio",
    )
    parser.add_argument(
        "--segment_tolerance",
        type=float,
        default=DEFAULT_SEGMENT_TOLERANCE_SEC,
        help="seconds a segment may end after its recording (the end is clipped)",
    )
    parser.add_argument(
        "--peak_normalize",
        type=optional_peak,
        default=None,
        help="scale every utterance to this peak (official pretraining: 0.95); none = off",
    )
    parser.add_argument("--out_dir", type=Path, required=True, help="directory of the written audio")
    parser.add_argument("--out_scp", type=Path, required=True, help="output wav.scp")
    parser.add_argument(
        "--out_utt2num_samples", type=Path, required=True, help="output utt2num_samples"
    )
    parser.add_argument("--num_threads", type=int, default=1, help="torch intra-op threads")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the formatter; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.num_threads)
    try:
        format_wav(args)
    except FormatError as e:
        logging.error(str(e))
        return 1
    return 0


def console_main() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
