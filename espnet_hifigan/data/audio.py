"""The audio of a Kaldi data directory: one reader for every ``wav.scp``, segments, channels, rates.

- :func:`read_audio`: a ``wav.scp`` value — a file soundfile reads, or Kaldi's extended filename
  ``command |`` (a pipe writing a WAV to stdout) — as ``(frames, channels)`` float32 and its
  rate; a WAV whose header promises more samples than it holds (a truncated copy) is an error.
- :class:`Segmenter`: the utterances of a data directory (``wav.scp``, optional ``segments``
  with Kaldi's 5th channel column), each recording read once.
- :func:`to_mono`, :func:`resample`, :func:`peak_normalize`: what stage 2 does to each.

Errors are :class:`FormatError` naming the utterance, its source and, for tables, the line.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

DEFAULT_SEGMENT_TOLERANCE_SEC = 0.1
# Bytes of a WAV file read to find its data chunk; data sizes meaning "unknown" (streamed WAVs).
WAV_HEADER_BYTES = 1 << 16
WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
MULTI_CHANNEL_POLICIES = ("error", "first")


class FormatError(RuntimeError):
    """An utterance that cannot be formatted."""


def read_table(
    path: Path, min_fields: int, max_fields: Optional[int] = None, usage: str = ""
) -> List[Tuple[str, List[str], str, int]]:
    """Read a Kaldi table as ``(key, fields, rest-of-line, line number)`` tuples, in file order.

    Args:
        path: Table file.
        min_fields: Fewest fields a line may have, key included.
        max_fields: Most fields a line may have (``None``: no limit).
        usage: The line's layout, for the message of a line with too many fields.

    Returns:
        The entries.

    Raises:
        FormatError: A line has too few or too many fields.
    """
    entries = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < min_fields:
                raise FormatError(f"{path}:{lineno}: expected at least {min_fields} fields: {line!r}")
            if max_fields is not None and len(fields) > max_fields:
                raise FormatError(f"{path}:{lineno}: expected {usage or f'at most {max_fields} fields'}, got {line.strip()!r}")
            entries.append((fields[0], fields[1:], line.strip().split(maxsplit=1)[1], lineno))
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


def resample(wav: np.ndarray, orig_fs: int, new_fs: int) -> np.ndarray:
    """Resample a 1-D signal with :func:`torchaudio.functional.resample`."""
    if orig_fs == new_fs:
        return wav
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav)), orig_freq=orig_fs, new_freq=new_fs)
    return out.numpy()


def segment_channel(fields: List[str], path: Path, lineno: int, utt: str) -> Optional[int]:
    """The 0-based channel a ``segments`` line's optional 5th column names (Kaldi's
    ``extract-segments``), ``None`` without one.

    Raises:
        FormatError: the column is not 0, 1, 2, ... (naming the line).
    """
    if len(fields) < 4:
        return None
    channel = fields[3]
    if not (channel.isascii() and channel.isdigit()):
        raise FormatError(f"{path}:{lineno}: channel {channel!r} of utterance {utt!r} is not a channel "
                          "index (0, 1, ...: 0-based, as Kaldi's extract-segments)")
    return int(channel)


class Segmenter:
    """Iterates over the utterances of a job, reading each recording once."""

    def __init__(
        self,
        wav_scp: Path,
        segments: Optional[Path],
        segment_tolerance: float,
    ) -> None:
        self.wav_scp = read_table(wav_scp, min_fields=2)
        self.sources: Dict[str, str] = {key: rest for key, _, rest, _ in self.wav_scp}
        self.segments = None
        if segments is not None:
            self.segments = read_table(segments, 4, 5, "'<utt> <recording> <start> <end> [<channel>]'")
            for utt, fields, _, lineno in self.segments:
                segment_channel(fields, segments, lineno, utt)  # refused before anything is written
        self.segments_path = segments
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
            for utt, _, source, _ in self.wav_scp:
                yield utt, source, *self._read_checked(utt, source)
            return
        for utt, fields, _, lineno in self.segments:
            recording, start_s, end_s = fields[0], fields[1], fields[2]
            channel = segment_channel(fields, self.segments_path, lineno, utt)
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
            where = f"{source} [{start_t}, {end_t}]"
            if channel is not None and channel >= data.shape[1]:
                raise FormatError(f"{self.segments_path}:{lineno}: utterance {utt!r} asks for channel {channel} (0-based) "
                                  f"of recording {recording!r} ({source}), which has {data.shape[1]} channel(s)")
            if channel is not None:  # that channel alone, as Kaldi's extract-segments
                data, where = data[:, channel : channel + 1], f"{where} channel {channel}"
            start, end = int(round(start_t * rate)), min(int(round(end_t * rate)), data.shape[0])
            yield utt, where, data[start:end], rate

    def _read_checked(
        self, utt: str, source: str, recording: Optional[str] = None
    ) -> Tuple[np.ndarray, int]:
        try:
            return self._read(recording if recording is not None else utt)
        except FormatError as e:
            raise FormatError(f"utterance {utt!r} ({source}): {e}") from None
        except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
            raise FormatError(f"utterance {utt!r} ({source}): cannot read audio: {e}") from None
