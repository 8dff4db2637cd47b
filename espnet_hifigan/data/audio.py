"""The audio of a Kaldi data directory: segments, channels, rates (stage 2).

- :func:`read_audio` (home: :mod:`espnet_hifigan.core.wav_scp`, the one ``wav.scp`` reader): a
  file, Kaldi's extended filename ``command |`` or a wav ark entry ``wav.ark:56``, as
  ``(frames, channels)`` float32 and its rate; a truncated WAV is an error.
- :class:`Segmenter`: the utterances of a data directory (``wav.scp``, optional ``segments``
  with Kaldi's 5th channel column and end ``-1``: to the end of the recording), each recording
  read once.
- :func:`to_mono`, :func:`resample`, :func:`peak_normalize`: what stage 2 does to each.

Errors are :class:`FormatError` naming the utterance, its source and, for tables, the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

# The one reader's home is core/ (scoring and inference read wav.scp too); re-exported here.
from espnet_hifigan.core.wav_scp import AudioError as FormatError
from espnet_hifigan.core.wav_scp import read_audio, read_table, segment_times

__all__ = ["FormatError", "Segmenter", "peak_normalize", "read_audio", "read_table", "resample", "segment_channel", "to_mono"]

DEFAULT_SEGMENT_TOLERANCE_SEC = 0.1
MULTI_CHANNEL_POLICIES = ("error", "first")


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
                start_t, end_or_none = segment_times(start_s, end_s)
            except ValueError as e:
                raise FormatError(f"{self.segments_path}:{lineno}: utterance {utt!r}: {e}") from None
            duration = data.shape[0] / rate
            end_t = duration if end_or_none is None else end_or_none  # Kaldi's -1: to the end
            if start_t >= duration:
                raise FormatError(
                    f"utterance {utt!r}: segment starts at {start_t:.3f} s but recording {recording!r} ({source}) "
                    f"lasts {duration:.3f} s"
                )
            if end_t > duration + self.segment_tolerance:
                raise FormatError(
                    f"utterance {utt!r}: segment ends at {end_t:.3f} s but recording "
                    f"{recording!r} ({source}) lasts {duration:.3f} s"
                )
            where = f"{source} [{start_s}, {end_s}]"
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
