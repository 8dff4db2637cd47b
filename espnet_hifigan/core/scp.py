"""Kaldi-style scp files: reading (generic, feature scps as Kaldi ark or ESPnet npy, key files) and writing.

ESPnet's ``tts_inference`` writes npy scp files (one ``.npy`` per utterance) with paths relative
to the recipe directory; our recipe writes Kaldi ark/scp with kaldiio. Both are read here.
kaldiio is imported only to read an ark entry, so the onnxruntime-only install (numpy, PyYAML)
reads npy scps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional, Sequence, Set, Tuple

import numpy as np

from espnet_hifigan.core.fileio import PathLike, write_text_atomic


class ScpError(ValueError):
    """An scp file that is missing or malformed (the message names the file and line)."""


def read_scp(path: PathLike, role: str) -> Dict[str, str]:
    """Read a Kaldi-style scp (``<utt> <value>`` per line) whose ids must be unique.

    Args:
        path: The scp file.
        role: What the scp holds, e.g. ``reference`` (for messages).

    Returns:
        Mapping utterance id -> value, in file order.

    Raises:
        ScpError: If the file is missing or empty, a line is malformed or an id repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise ScpError(f"{role} scp {path} does not exist")
    entries: Dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().split(maxsplit=1)
            if len(parts) != 2:
                raise ScpError(f"{path}:{lineno}: expected '<utt> <path>', got {line.strip()!r}")
            utt, value = parts
            if utt in entries:
                raise ScpError(f"{path}:{lineno}: utterance {utt} appears twice")
            entries[utt] = value
    if not entries:
        raise ScpError(f"{role} scp {path} is empty")
    return entries


# Kaldi's rxfilename with an offset: ``file.ark:1234``, optionally sliced ``file.ark:1234[0:99]``.
_ARK_OFFSET = re.compile(r"^(?P<path>.+):(?P<offset>[0-9]+)(?P<slice>\[[0-9:, ]*\])?$")


def split_ark_offset(value: str) -> Tuple[str, str]:
    """Split Kaldi's ``file.ark:offset[slice]`` into the file and the ``:offset[slice]`` suffix.

    A value naming an existing file as a whole (``a:1.wav`` is a file) and one without an
    offset are returned as ``(value, "")``.

    Args:
        value: An scp value (not a pipe).

    Returns:
        ``(path, suffix)`` with ``path + suffix == value``.
    """
    match = _ARK_OFFSET.match(value)
    if match is None or Path(value).exists():
        return value, ""
    return match.group("path"), value[len(match.group("path")) :]


def scp_value_file(value: str) -> Optional[str]:
    """The file a Kaldi rxfilename reads (``:offset``/``[slice]`` stripped); ``None`` for a
    ``command |`` pipe or ``-`` (stdin), whose input is not a file named here."""
    value = value.strip()
    if value.endswith("|") or value == "-":
        return None
    return split_ark_offset(value)[0]


def resolve_scp_path(value: str, scp_dirs: Sequence[Path]) -> str:
    """Resolve a relative path (``.npy``, audio, ``file.ark:offset[slice]``) of an scp line.

    Tried as given (absolute, or relative to the current directory), then relative to each of
    ``scp_dirs`` and their parents; returned unchanged when nothing exists (and for pipes).
    """
    if value.rstrip().endswith("|"):
        return value
    path_part, suffix = split_ark_offset(value)
    path = Path(path_part)
    if path.is_absolute() or path.exists():
        return value
    # ESPnet writes paths relative to the recipe directory, an ancestor of the scp.
    for scp_dir in scp_dirs:
        for parent in [scp_dir, *scp_dir.parents]:
            if (parent / path).exists():
                return f"{parent / path}{suffix}"
    return value


def _load_ark(value: str) -> np.ndarray:
    """One Kaldi ark entry (``file.ark:offset``) as an array, read with kaldiio (imported here).

    Raises:
        ImportError: kaldiio is not installed (the onnxruntime-only install), with what to do.
    """
    try:
        import kaldiio
    except ImportError as e:
        raise ImportError(
            "Kaldi ark features need kaldiio, which this install lacks: `pip install kaldiio`, or give .npy features"
        ) from e
    return kaldiio.load_mat(value)


def read_feats_scp(
    path: PathLike, keys: Optional[Set[str]] = None, origin: Optional[PathLike] = None
) -> Iterator[Tuple[str, np.ndarray]]:
    """Iterate ``(utt, feats)`` over an scp of Kaldi ark entries or ``.npy`` files.

    ESPnet's ``tts_inference`` writes npy scp files (one ``.npy`` per utterance) with paths
    relative to the recipe directory; our recipe writes Kaldi ark/scp. Both are read here, line
    by line, in file order; relative paths are found from the current directory or the scp's
    parent directories (and ``origin``'s, for a split copy of an scp).

    Args:
        path: The scp file.
        keys: Only these utterances (``None``: all).
        origin: The scp ``path`` was split from, if any.

    Yields:
        Utterance id and float32 features (frames, dims).

    Raises:
        ValueError: naming the scp line that is malformed, repeats an utterance id or cannot be read.
    """
    scp_dirs = [Path(path).resolve().parent] + ([Path(origin).resolve().parent] if origin is not None else [])
    seen: Dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected '<utt> <path>', got {line!r}")
            utt, value = parts
            if utt in seen:
                raise ValueError(f"{path}:{lineno}: utterance {utt} appears twice (first on line {seen[utt]})")
            seen[utt] = lineno
            if keys is not None and utt not in keys:
                continue
            value = resolve_scp_path(value, scp_dirs)
            try:
                feats = np.load(value) if value.endswith(".npy") else _load_ark(value)
            except Exception as e:  # noqa: BLE001 - re-raised with the utterance named
                raise ValueError(f"{path}:{lineno}: cannot read features of {utt} from {value}: {e}") from e
            yield utt, np.asarray(feats, dtype=np.float32)



def read_key_file(path: Optional[PathLike]) -> Optional[Set[str]]:
    """The utterance ids of a key file (first column of each line); ``None`` for no file."""
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        return {line.split(maxsplit=1)[0] for line in f if line.strip()}


def write_scp(path: PathLike, entries: Iterable[Tuple[str, str]]) -> Path:
    """Write ``<utt> <value>`` lines through a temporary file and a rename.

    Returns:
        The written path.
    """
    return write_text_atomic(path, "".join(f"{utt} {value}\n" for utt, value in entries))
