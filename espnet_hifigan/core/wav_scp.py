"""The one ``wav.scp`` reader: Kaldi's rxfilenames as audio, Kaldi tables, ``segments`` times.

Every place that reads the audio a ``wav.scp`` (or a generated/reference list) names comes here:
stage 2 (:mod:`espnet_hifigan.data.audio`), copy synthesis (``voc_inference --wav_scp``), stage 3,
scoring and the listening pages (:mod:`espnet_hifigan.evaluation.scoring`), training lengths.

- :func:`read_audio`: a ``wav.scp`` value — a file soundfile reads, Kaldi's extended filename
  ``command |`` (a pipe writing a WAV to stdout: ``sox x.wav -t wav - |``,
  ``flac -c -d -s x.flac |``), or an entry of a wav ark (``wav.ark:56``, as Kaldi's ``wav-copy``
  writes it, read with kaldiio) — as ``(frames, channels)`` samples in ``[-1, 1]`` and the rate;
  a WAV whose header promises more samples than it holds (a truncated copy) is an error.
- :func:`audio_num_frames`: the length of a file or ark entry without decoding a pipe.
- :func:`audio_input_files`: the files a list of values reads (for the output-over-input checks).
- :func:`read_table`: a Kaldi table as ``(key, fields, rest, line)``.
- :func:`segment_times`: a ``segments`` line's start and end; Kaldi's end ``-1`` ("to the end of
  the recording") is ``None``.

soundfile and kaldiio are imported where used, so importing this module stays cheap. Errors are
:class:`AudioError`; callers add the utterance and file.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import numpy as np

from espnet_hifigan.core.scp import scp_value_file, split_ark_offset

# Bytes of a WAV file read to find its data chunk; data sizes meaning "unknown" (streamed WAVs).
WAV_HEADER_BYTES = 1 << 16
WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
# Kaldi's segments end time meaning "to the end of the recording".
SEGMENT_END_OF_RECORDING = -1.0


class AudioError(RuntimeError):
    """Audio (or a table) that cannot be read; the message says why."""


def is_pipe(value: str) -> bool:
    """Whether a ``wav.scp`` value is Kaldi's extended filename ``command |``."""
    return value.rstrip().endswith("|")


def is_ark_entry(value: str) -> bool:
    """Whether a ``wav.scp`` value points into an ark (``file.ark:offset``, optionally ``[slice]``)."""
    return not is_pipe(value) and split_ark_offset(value.strip())[1] != ""


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
        AudioError: A line has too few or too many fields.
    """
    entries = []
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < min_fields:
                raise AudioError(f"{path}:{lineno}: expected at least {min_fields} fields: {line!r}")
            if max_fields is not None and len(fields) > max_fields:
                raise AudioError(f"{path}:{lineno}: expected {usage or f'at most {max_fields} fields'}, got {line.strip()!r}")
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
    """Raise :class:`AudioError` for a truncated WAV (see :func:`wav_shortfall`)."""
    shortfall = wav_shortfall(head, total_size)
    if shortfall is not None:
        promised, held = shortfall
        raise AudioError(
            f"truncated WAV: its header promises {promised} samples but it holds {held}; "
            "copy or download the file again"
        )


def _ark_audio(value: str) -> Tuple[np.ndarray, int]:
    """An entry of a wav ark (``wav.ark:56``) as ``(frames, channels)`` floats in ``[-1, 1]``."""
    import kaldiio

    loaded = kaldiio.load_mat(value)
    if not isinstance(loaded, tuple):
        raise AudioError("the ark entry holds a matrix (features?), not audio; a wav.scp needs a wav ark (wav-copy)")
    rate, array = loaded
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float64) / float(2 ** (8 * array.dtype.itemsize - 1))
    if array.ndim == 1:
        array = array[:, None]
    return array, int(rate)


def read_audio(source: str, dtype: str = "float32") -> Tuple[np.ndarray, int]:
    """Read the audio a ``wav.scp`` value names: a file, a ``command |`` pipe or a wav ark entry.

    Args:
        source: The ``wav.scp`` value.
        dtype: ``float32`` or ``float64`` samples (PCM is scaled to ``[-1, 1]`` either way).

    Returns:
        Samples, shape ``(frames, channels)``, and the sampling rate.

    Raises:
        AudioError: The file is missing or truncated, the command failed, or the ark entry is
            not audio. soundfile's and kaldiio's own errors pass through (callers name the
            utterance).
    """
    import soundfile

    source = source.strip()
    if is_pipe(source):
        proc = subprocess.run(source[:-1], shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", errors="replace").strip()
            raise AudioError(f"command failed with code {proc.returncode}: {stderr}")
        check_complete(proc.stdout[:WAV_HEADER_BYTES], len(proc.stdout))
        data, rate = soundfile.read(io.BytesIO(proc.stdout), dtype=dtype, always_2d=True)
        return data, int(rate)
    if is_ark_entry(source):
        if not os.path.isfile(split_ark_offset(source)[0]):
            raise AudioError(f"ark file {split_ark_offset(source)[0]} not found")
        data, rate = _ark_audio(source)
        return data.astype(dtype, copy=False), rate
    if not os.path.isfile(source):
        raise AudioError("audio file not found")
    with open(source, "rb") as f:
        check_complete(f.read(WAV_HEADER_BYTES), os.path.getsize(source))
    data, rate = soundfile.read(source, dtype=dtype, always_2d=True)
    return data, int(rate)


def audio_num_frames(source: str) -> Optional[int]:
    """Samples of the audio a ``wav.scp`` value names, from the file header (an ark entry is
    read); ``None`` for a pipe, whose length is unknown without running it.

    Raises:
        AudioError, RuntimeError, OSError: The audio cannot be read.
    """
    source = source.strip()
    if is_pipe(source):
        return None
    if is_ark_entry(source):
        return _ark_audio(source)[0].shape[0]
    import soundfile

    return soundfile.info(source).frames


def audio_input_files(values: Iterable[str]) -> List[Path]:
    """The files ``wav.scp`` values read (ark offsets stripped, each ark once; pipes skipped),
    for :func:`espnet_hifigan.core.safety.check_outputs_not_inputs`."""
    files = {scp_value_file(value) for value in values}
    return [Path(f) for f in sorted(f for f in files if f is not None)]


def segment_times(start_s: str, end_s: str) -> Tuple[float, Optional[float]]:
    """A ``segments`` line's start and end in seconds; end ``None`` for Kaldi's ``-1``.

    Raises:
        ValueError: The times are not numbers, or not ``0 <= start < end`` (end ``-1`` aside).
    """
    try:
        start, end = float(start_s), float(end_s)
    except ValueError:
        raise ValueError(f"start/end are not numbers: {start_s!r} {end_s!r}") from None
    if end == SEGMENT_END_OF_RECORDING and start >= 0.0:
        return start, None
    if not 0.0 <= start < end:
        raise ValueError(f"need 0 <= start < end (or end -1: to the end of the recording), got {start_s} {end_s}")
    return start, end
