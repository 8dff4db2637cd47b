"""Validation of a Kaldi-style data directory (``wav.scp``, ``utt2spk``, ``spk2utt``, ``segments``, ``text``).

The checks behind ``python -m espnet_hifigan.bin.validate_data_dir`` (see that CLI for the
list): :func:`validate_data_dir` returns every problem as ``FILE:LINE: message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from espnet_hifigan.core.safety import utt_id_problem
from espnet_hifigan.core.scp import scp_value_file
from espnet_hifigan.core.wav_scp import segment_times

REQUIRED_FILES = ("wav.scp", "utt2spk", "spk2utt")


@dataclass
class Table:
    """A Kaldi table file read as ``key -> (line number, rest of the line)``."""

    path: Path
    entries: Dict[str, "Entry"] = field(default_factory=dict)
    keys: List[str] = field(default_factory=list)


@dataclass
class Entry:
    """One line of a table."""

    lineno: int
    value: str


class Report:
    """Collects ``FILE:LINE: message`` errors."""

    def __init__(self) -> None:
        self.errors: List[str] = []

    def add(self, path: Path, lineno: Optional[int], message: str) -> None:
        """Record an error at ``path:lineno``."""
        where = f"{path}:{lineno}" if lineno is not None else f"{path}"
        self.errors.append(f"{where}: {message}")


def read_table(path: Path, report: Report, min_fields: int, max_fields: Optional[int]) -> Table:
    """Read a table, reporting format errors.

    Args:
        path: File to read.
        report: Error sink.
        min_fields: Fewest whitespace-separated fields a line may have (key included).
        max_fields: Most fields a line may have; ``None`` for any number.

    Returns:
        The table (lines with errors are skipped).
    """
    table = Table(path=path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        report.add(path, None, f"cannot read: {e.strerror}")
        return table
    if not raw:
        report.add(path, None, "file is empty")
        return table
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    previous: Optional[bytes] = None
    for lineno, line in enumerate(lines, start=1):
        if line.endswith(b"\r"):
            report.add(path, lineno, "line ends with CR (Windows line ending); convert with dos2unix")
            line = line[:-1]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            report.add(path, lineno, f"not valid UTF-8 ({e.reason} at byte {e.start})")
            continue
        fields = text.split()
        if not fields:
            report.add(path, lineno, "empty line")
            continue
        if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
            expected = (
                f"{min_fields}" if max_fields == min_fields else f"at least {min_fields}"
            )
            report.add(path, lineno, f"expected {expected} fields, got {len(fields)}: {text!r}")
            continue
        key = fields[0]
        if text[0].isspace():
            report.add(path, lineno, "line starts with whitespace")
        if key in table.entries:
            first = table.entries[key].lineno
            report.add(path, lineno, f"duplicate id {key!r} (first at line {first})")
            continue
        encoded = key.encode("utf-8")
        if previous is not None and encoded < previous:
            report.add(
                path,
                lineno,
                f"not sorted: {key!r} comes after {previous.decode('utf-8')!r} "
                "(sort with LC_ALL=C sort)",
            )
        previous = encoded
        value = text.split(maxsplit=1)[1] if len(fields) > 1 else ""
        table.entries[key] = Entry(lineno=lineno, value=value.strip())
        table.keys.append(key)
    return table


def compare_keys(a: Table, b: Table, report: Report, what: str) -> None:
    """Report ids present in one table and missing from the other."""
    for key in a.keys:
        if key not in b.entries:
            report.add(a.path, a.entries[key].lineno, f"{what} {key!r} is missing from {b.path}")
    for key in b.keys:
        if key not in a.entries:
            report.add(b.path, b.entries[key].lineno, f"{what} {key!r} is missing from {a.path}")


def check_wav_paths(wav_scp: Table, report: Report) -> None:
    """Report audio files of ``wav.scp`` that do not exist (pipe commands are skipped; the ark
    of a ``wav.ark:offset`` entry is checked)."""
    for key in wav_scp.keys:
        entry = wav_scp.entries[key]
        audio = scp_value_file(entry.value)
        if audio is not None and not Path(audio).is_file():
            report.add(wav_scp.path, entry.lineno, f"audio file of {key!r} not found: {audio}")


def check_segments(segments: Table, wav_scp: Table, report: Report) -> None:
    """Report malformed segments and segments of unknown recordings (Kaldi: ``utt rec start end [channel]``)."""
    for key in segments.keys:
        entry = segments.entries[key]
        recording, start_s, end_s, *channel = entry.value.split()
        if channel and not channel[0].isdigit():
            report.add(segments.path, entry.lineno, f"channel (5th field) must be a 0-based index, got {channel[0]!r}")
        if recording not in wav_scp.entries:
            report.add(segments.path, entry.lineno, f"recording {recording!r} is not in {wav_scp.path}")
        try:
            segment_times(start_s, end_s)  # Kaldi's end -1: to the end of the recording
        except ValueError as e:
            report.add(segments.path, entry.lineno, str(e))


def check_speakers(utt2spk: Table, spk2utt: Table, report: Report) -> None:
    """Report any difference between ``spk2utt`` and the inverse of ``utt2spk``."""
    expected: Dict[str, List[str]] = {}
    for utt in utt2spk.keys:
        expected.setdefault(utt2spk.entries[utt].value, []).append(utt)
    for spk in spk2utt.keys:
        entry = spk2utt.entries[spk]
        listed = entry.value.split()
        if spk not in expected:
            report.add(spk2utt.path, entry.lineno, f"speaker {spk!r} has no utterance in {utt2spk.path}")
            continue
        if sorted(listed) != sorted(expected[spk]):
            extra = sorted(set(listed) - set(expected[spk]))
            missing = sorted(set(expected[spk]) - set(listed))
            report.add(
                spk2utt.path,
                entry.lineno,
                f"speaker {spk!r} disagrees with {utt2spk.path}: "
                f"extra {extra[:5]}, missing {missing[:5]} (rebuild with utils/utt2spk_to_spk2utt.pl or utils/fix_data_dir.sh)",
            )
    for spk in expected:
        if spk not in spk2utt.entries:
            first = utt2spk.entries[expected[spk][0]].lineno
            report.add(utt2spk.path, first, f"speaker {spk!r} is missing from {spk2utt.path}")


def validate_data_dir(data_dir: Path, check_files: bool = True) -> List[str]:
    """Validate a data directory.

    Args:
        data_dir: Kaldi-style data directory.
        check_files: Whether to check that audio files of ``wav.scp`` exist.

    Returns:
        The errors found (``FILE:LINE: message``); empty when the directory is valid.
    """
    report = Report()
    if not data_dir.is_dir():
        report.add(data_dir, None, "data directory does not exist")
        return report.errors
    for name in REQUIRED_FILES:
        if not (data_dir / name).is_file():
            report.add(data_dir / name, None, "required file is missing")
    if report.errors:
        return report.errors
    wav_scp = read_table(data_dir / "wav.scp", report, min_fields=2, max_fields=None)
    utt2spk = read_table(data_dir / "utt2spk", report, min_fields=2, max_fields=2)
    spk2utt = read_table(data_dir / "spk2utt", report, min_fields=2, max_fields=None)
    for key in utt2spk.keys:
        problem = utt_id_problem(key)
        if problem is not None:
            report.add(utt2spk.path, utt2spk.entries[key].lineno, f"utterance id {key!r} cannot be a file name: {problem}")
    segments_path = data_dir / "segments"
    if segments_path.is_file():
        segments = read_table(segments_path, report, min_fields=4, max_fields=5)
        compare_keys(utt2spk, segments, report, "utterance")
        check_segments(segments, wav_scp, report)
    else:
        compare_keys(utt2spk, wav_scp, report, "utterance")
    text_path = data_dir / "text"
    if text_path.is_file():
        text = read_table(text_path, report, min_fields=1, max_fields=None)
        compare_keys(utt2spk, text, report, "utterance")
    check_speakers(utt2spk, spk2utt, report)
    if check_files:
        check_wav_paths(wav_scp, report)
    return report.errors
