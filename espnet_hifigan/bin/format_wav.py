#!/usr/bin/env python3
"""Format the audio of a Kaldi data directory for vocoder training (recipe stage 2).

For every utterance: read the audio (a file soundfile can read, or a ``command |`` pipe that
writes a WAV to stdout), cut the segment when a ``segments`` file is given, reduce it to one
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
utterance; ``--multi_channel first`` keeps the first channel.

On any error the job stops with a message naming the utterance and its source, and removes
every file it wrote, so that no half-written output remains.

Example:
    python -m espnet_hifigan.bin.format_wav --wav_scp data/train/wav.scp --fs 16000 \\
        --out_dir dump/raw/train/data/format.1 --out_scp wav.1.scp \\
        --out_utt2num_samples utt2num_samples.1
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

AUDIO_FORMATS = ("flac", "wav")
MULTI_CHANNEL_POLICIES = ("error", "first")
DEFAULT_SUBTYPE = "PCM_16"
DEFAULT_SEGMENT_TOLERANCE_SEC = 0.1
# Bytes of a WAV file read to find its data chunk; data sizes meaning "unknown" (streamed WAVs).
WAV_HEADER_BYTES = 1 << 16
WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class FormatError(RuntimeError):
    """An utterance that cannot be formatted."""


def read_table(path: Path, min_fields: int) -> List[Tuple[str, List[str], str]]:
    """Read a Kaldi table as ``(key, fields, rest-of-line)`` tuples, in file order.

    Args:
        path: Table file.
        min_fields: Fewest fields a line may have, key included.

    Returns:
        The entries.

    Raises:
        FormatError: A line has too few fields.
    """
    entries = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < min_fields:
                raise FormatError(f"{path}:{lineno}: expected at least {min_fields} fields: {line!r}")
            entries.append((fields[0], fields[1:], line.strip().split(maxsplit=1)[1]))
    return entries


def wav_shortfall(head: bytes, total_size: int) -> Optional[Tuple[int, int]]:
    """Samples a RIFF/WAVE header promises and the file holds, when it holds fewer.

    Args:
        head: The first bytes of the file (at least up to the ``data`` chunk header).
        total_size: The size of the whole file in bytes.

    Returns:
        ``(promised, held)`` sample frames for a truncated WAV; None for a complete one, another
        format or a header that does not say (streamed WAVs, a data chunk beyond ``head``).
    """
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block_align = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = struct.unpack("<H", head[pos + 20 : pos + 22])[0]
        if chunk == b"data":
            held = total_size - (pos + 8)
            if size in WAV_UNKNOWN_SIZES or block_align == 0 or size <= held:
                return None
            return size // block_align, max(held, 0) // block_align
        pos += 8 + size + (size & 1)
    return None


def check_complete(head: bytes, total_size: int) -> None:
    """Raise :class:`FormatError` for a truncated WAV (see :func:`wav_shortfall`)."""
    shortfall = wav_shortfall(head, total_size)
    if shortfall is not None:
        promised, held = shortfall
        raise FormatError(
            f"truncated WAV: its header promises {promised} samples but it holds {held}; "
            "copy or download the file again"
        )


def read_audio(source: str) -> Tuple[np.ndarray, int]:
    """Read audio from a file or a ``command |`` pipe.

    Args:
        source: The ``wav.scp`` value.

    Returns:
        Samples (frames, channels) as float32, and the sampling rate.
    """
    if source.endswith("|"):
        proc = subprocess.run(source[:-1], shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", errors="replace").strip()
            raise FormatError(f"command failed with code {proc.returncode}: {stderr}")
        check_complete(proc.stdout[:WAV_HEADER_BYTES], len(proc.stdout))
        data, rate = soundfile.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    else:
        if not os.path.isfile(source):
            raise FormatError("audio file not found")
        with open(source, "rb") as f:
            check_complete(f.read(WAV_HEADER_BYTES), os.path.getsize(source))
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    return data, int(rate)


def to_mono(data: np.ndarray, policy: str) -> np.ndarray:
    """Reduce (frames, channels) audio to one channel according to ``policy``."""
    if data.shape[1] == 1:
        return data[:, 0]
    if policy == "first":
        return data[:, 0]
    raise FormatError(
        f"audio has {data.shape[1]} channels; a vocoder needs one "
        "(use --multi_channel first to keep the first channel)"
    )


def peak_normalize(wav: np.ndarray, peak: float) -> np.ndarray:
    """Scale ``wav`` so that ``max |wav| == peak`` (digital silence is returned unchanged).

    Args:
        wav: Waveform, shape ``(T,)``.
        peak: Target peak in ``(0, 1]``.

    Returns:
        The scaled waveform, shape ``(T,)``.
    """
    current = float(np.max(np.abs(wav)))
    if current == 0.0:
        return wav
    return wav * (peak / current)


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


def resample(wav: np.ndarray, orig_fs: int, new_fs: int) -> np.ndarray:
    """Resample a 1-D signal with :func:`torchaudio.functional.resample`."""
    if orig_fs == new_fs:
        return wav
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav)), orig_freq=orig_fs, new_freq=new_fs)
    return out.numpy()


class Segmenter:
    """Iterates over the utterances of a job, reading each recording once."""

    def __init__(
        self,
        wav_scp: Path,
        segments: Optional[Path],
        segment_tolerance: float,
    ) -> None:
        self.wav_scp = read_table(wav_scp, min_fields=2)
        self.sources: Dict[str, str] = {key: rest for key, _, rest in self.wav_scp}
        self.segments = read_table(segments, min_fields=4) if segments is not None else None
        self.segment_tolerance = segment_tolerance
        self._cache: Optional[Tuple[str, np.ndarray, int]] = None

    def _read(self, recording: str) -> Tuple[np.ndarray, int]:
        if self._cache is None or self._cache[0] != recording:
            data, rate = read_audio(self.sources[recording])
            self._cache = (recording, data, rate)
        return self._cache[1], self._cache[2]

    def __iter__(self) -> Iterator[Tuple[str, str, np.ndarray, int]]:
        """Yield ``(utt, source description, (frames, channels) audio, rate)``."""
        if self.segments is None:
            for utt, _, source in self.wav_scp:
                yield utt, source, *self._read_checked(utt, source)
            return
        for utt, fields, _ in self.segments:
            recording, start_s, end_s = fields[0], fields[1], fields[2]
            if recording not in self.sources:
                raise FormatError(f"utterance {utt!r}: recording {recording!r} is not in wav.scp")
            source = self.sources[recording]
            data, rate = self._read_checked(utt, source, recording)
            try:
                start_t, end_t = float(start_s), float(end_s)
            except ValueError:
                raise FormatError(f"utterance {utt!r}: bad segment times {start_s!r} {end_s!r}") from None
            duration = data.shape[0] / rate
            if not 0.0 <= start_t < end_t:
                raise FormatError(f"utterance {utt!r}: need 0 <= start < end, got {start_t} {end_t}")
            if end_t > duration + self.segment_tolerance:
                raise FormatError(
                    f"utterance {utt!r}: segment ends at {end_t:.3f} s but recording "
                    f"{recording!r} ({source}) lasts {duration:.3f} s"
                )
            start, end = int(round(start_t * rate)), min(int(round(end_t * rate)), data.shape[0])
            yield utt, f"{source} [{start_t}, {end_t}]", data[start:end], rate

    def _read_checked(
        self, utt: str, source: str, recording: Optional[str] = None
    ) -> Tuple[np.ndarray, int]:
        try:
            return self._read(recording if recording is not None else utt)
        except FormatError as e:
            raise FormatError(f"utterance {utt!r} ({source}): {e}") from None
        except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
            raise FormatError(f"utterance {utt!r} ({source}): cannot read audio: {e}") from None


def write_text_atomic(path: Path, lines: List[str]) -> None:
    """Write lines to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    tmp.replace(path)


def format_wav(args: argparse.Namespace) -> None:
    """Format every utterance of the job; see the module docstring."""
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    scp_lines: List[str] = []
    len_lines: List[str] = []
    n_clipped = 0
    resampled: Counter = Counter()
    total_sec = 0.0
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    try:
        for utt, source, data, rate in Segmenter(args.wav_scp, args.segments, args.segment_tolerance):
            if "/" in utt:
                raise FormatError(f"utterance id {utt!r} contains '/'")
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
        write_text_atomic(args.out_scp, scp_lines)
        written.append(args.out_scp)
        write_text_atomic(args.out_utt2num_samples, len_lines)
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
        "--segments", type=Path, default=None, help="optional segments file (utt rec start end)"
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
