"""Rules that keep a run's writes inside its output: file names from utterance ids, outputs vs inputs.

One home for both rules, applied by every CLI and stage *before* any work starts:

- :func:`check_utt_ids`: an utterance id that becomes a file name (``wav/<utt>.wav``, ``<utt>.png``)
  must be a plain name: no ``/`` or ``\\``, not ``.``/``..``, no leading ``.`` or ``-``, no control
  characters, and short enough for the file system (255 bytes with its suffix). ``../../x`` or
  ``/data/x/keep`` would otherwise write outside the output directory or over someone's file.
- :func:`check_output_dir_not_data_dir`: a run never writes its ``wav.scp``/``wav/`` into the
  directory of its input list (a Kaldi data directory, whose other files it would replace).
- :func:`check_outputs_not_inputs`: no output path is (or resolves to, through symlinks) one of the
  run's inputs or a directory holding one, and none is, or lies directly in, a directory the run
  reads audio from. Writing the output list over the input list, or resampled copies over (or
  among) the originals, destroys the input.

Both raise ``ValueError`` with one line naming the culprit and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

# Longest file name most file systems take (ext4, xfs, btrfs: NAME_MAX bytes).
NAME_MAX = 255


def utt_id_problem(utt: str, suffix: str = ".wav") -> Optional[str]:
    """Why ``utt`` cannot be the stem of a file name in an output directory; ``None`` when it can.

    Args:
        utt: The utterance id.
        suffix: What is appended to make the file name (its length counts).

    Returns:
        A short reason, or ``None``.
    """
    if not utt:
        return "it is empty"
    if "/" in utt or "\\" in utt:
        return "it contains a path separator ('/' or '\\')"
    if utt in (".", ".."):
        return "it is a directory name"
    if utt.startswith("."):
        return "it starts with '.' (a hidden file, or a relative path)"
    if utt.startswith("-"):
        return "it starts with '-' (read as an option by shell tools)"
    if any(ord(c) < 32 or ord(c) == 127 for c in utt):
        return "it contains a control character"
    if len((utt + suffix).encode("utf-8")) > NAME_MAX:
        return f"it is too long for a file name ({len(utt.encode('utf-8'))} bytes + '{suffix}' > {NAME_MAX})"
    return None


def check_utt_ids(ids: Iterable[str], source: PathLike, suffix: str = ".wav") -> None:
    """Refuse the first utterance id of ``source`` that cannot be a file name (:func:`utt_id_problem`).

    Args:
        ids: The utterance ids, in file order.
        source: Where they come from (named in the error).
        suffix: The suffix the ids get as file names.

    Raises:
        ValueError: ``<source>: utterance id '<id>' cannot be a file name: <reason>; ...``.
    """
    for utt in ids:
        problem = utt_id_problem(utt, suffix)
        if problem is not None:
            raise ValueError(
                f"{source}: utterance id {utt!r} cannot be a file name: {problem}; rename it "
                "(Kaldi ids: letters, digits, '-', '_', '.'; no path)"
            )


def input_files(*paths: Optional[PathLike]) -> List[Path]:
    """The files an input option stands for: a file itself, a directory's files (not recursive).

    Used for options that name a model as a file *or* an experiment directory, so that an export
    into that directory cannot replace the files it was made from. ``None`` entries are skipped.
    """
    files: List[Path] = []
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        files.extend(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
    return files


def _resolved(path: PathLike) -> Path:
    return Path(os.path.abspath(os.path.realpath(os.fspath(path))))


def check_outputs_not_inputs(
    outputs: Iterable[PathLike],
    inputs: Iterable[Optional[PathLike]],
    input_dirs: Iterable[Optional[PathLike]] = (),
    what: str = "output",
) -> None:
    """Refuse a run whose outputs would overwrite its inputs.

    Paths are compared after resolving symlinks and ``..``, so ``out/../in/wav.scp`` or a link to
    the input counts as the input. An output directory (replaced as a whole, or cleaned of stale
    files) must not hold an input either. ``None`` entries (options not given) are ignored.

    Args:
        outputs: Every file or directory the run will write (or replace).
        inputs: Every file the run reads (lists, configs, models, audio).
        input_dirs: Directories the run reads audio from: no output may be one, or lie directly in
            one (a subdirectory of it is another place).
        what: How the outputs are named in the message (e.g. ``"--output_dir"``).

    Raises:
        ValueError: naming the output and the input it would overwrite.
    """
    ins = {_resolved(p): p for p in inputs if p is not None}
    # Every directory holding an input, and the audio directories: one look-up per output, so
    # that a run of N utterances (N outputs, N audio inputs) is checked in O(N).
    holders = {parent: given for path, given in ins.items() for parent in path.parents}
    dirs = {_resolved(d): d for d in input_dirs if d is not None}
    for out in outputs:
        resolved = _resolved(out)
        if resolved in ins:
            raise ValueError(
                f"{what} {out} is an input of this run ({ins[resolved]}): writing it would destroy the input; "
                "choose another output"
            )
        if resolved in holders:
            raise ValueError(
                f"{what} {out} holds {holders[resolved]}, an input of this run: replacing it would destroy the "
                "input; choose another output"
            )
        directory = resolved if resolved in dirs else resolved.parent
        if directory in dirs:  # the audio directory itself, or directly in it
            raise ValueError(
                f"{what} {out} is in {dirs[directory]}, the directory this run reads audio from: its outputs would "
                "overwrite or mix with the originals; choose another output directory"
            )


def check_output_dir_not_data_dir(output_dir: PathLike, lists: Iterable[Optional[PathLike]], what: str = "--output_dir") -> None:
    """Refuse an output directory that is the directory of one of the run's input lists.

    A Kaldi data directory holds ``wav.scp``, ``feats.scp``, ``text``... side by side: decoding its
    ``feats.scp`` into it would replace its ``wav.scp`` (the reference audio list) even though that
    file is not an input of this run.

    Args:
        output_dir: The directory the run writes ``wav.scp``/``wav/`` into.
        lists: The input lists (scp files, text files); ``None`` entries are skipped.
        what: How the output is named in the message.

    Raises:
        ValueError: naming the output directory and the list it holds.
    """
    resolved = _resolved(output_dir)
    for path in lists:
        if path is not None and _resolved(path).parent == resolved:
            raise ValueError(
                f"{what} {output_dir} is the directory of the input {path} (a data directory): its wav.scp and "
                "wav/ would be replaced; choose another output directory"
            )
