"""Data directories taken from another recipe (``voc.sh --data_from ../tts1/data``), and the sets
a multi-speaker corpus needs (validation drawn across speakers, held-out speakers).

Kaldi paths are relative to the recipe directory they were made in (``DIR/..`` for ``DIR`` =
``../tts1/data``). :func:`import_data_dir` copies every file of ``DIR/<set>`` into ``data/<set>``
and rewrites, in each ``*.scp`` file, the relative paths to absolute ones: a plain entry
(``downloads/x.wav``, ``dump/x.ark:123``) always, a pipe command (``sox downloads/x.wav -t wav - |``)
in each word that is an existing file relative to the recipe root. Everything else is copied as is.

:func:`split_by_speakers` moves utterances out of a set into another: ``n_speakers`` whole speakers
(a held-out-speaker test set) or ``n_utts`` utterances drawn round-robin across the speakers (a
validation set no speaker dominates). Both keep the Kaldi files of each utterance together.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from espnet_hifigan.contract.base import ContractError, load_mapping
from espnet_hifigan.core.fileio import PathLike, write_text_atomic
from espnet_hifigan.core.safety import check_outputs_not_inputs
from espnet_hifigan.core.scp import split_ark_offset

# Files keyed by utterance id (split with their utterances); others are copied whole.
UTT_FILES = (
    "wav.scp", "segments", "utt2spk", "text", "utt2dur", "utt2num_frames", "utt2num_samples", "feats.scp",
    "utt2lang", "utt2uniq", "utt2warp", "utt2category", "vad.scp",
)  # fmt: skip


class DataImportError(ValueError):
    """A data directory that cannot be taken over (the message names it and what to do)."""


def _absolute(word: str, root: Path, must_exist: bool) -> str:
    """``word`` as an absolute path against ``root`` if it is a relative path (an ark offset
    ``:N[slice]`` kept); unchanged if absolute, or if ``must_exist`` and no such file exists."""
    if not word or os.path.isabs(word):
        return word
    path, offset = split_ark_offset(word)  # Kaldi's file.ark:offset[slice]
    if offset and not (root / path).is_file() and (root / word).exists():
        path, offset = word, ""  # a file name that ends in ':<digits>'
    if must_exist and not (root / path).is_file():
        return word
    return os.path.normpath(os.path.join(os.path.abspath(root), path)) + offset


def absolute_entry(value: str, root: Path) -> str:
    """The value of a Kaldi scp line (after the key) with its relative paths made absolute.

    Args:
        value: ``path``, ``path:offset`` or ``command ... |``.
        root: The directory relative paths are relative to (the source recipe's root).

    Returns:
        The value, spacing kept; in a pipe only words that are existing files change.
    """
    stripped = value.strip()
    if not stripped.endswith("|"):
        return _absolute(stripped, root, must_exist=False)
    parts = re.split(r"(\s+)", value)
    return "".join(
        p if p.isspace() or p.startswith("-") or p == "|" else _absolute(p, root, must_exist=True) for p in parts
    )


def import_data_dir(src: PathLike, dst: PathLike, root: Optional[PathLike] = None) -> List[str]:
    """Copy the Kaldi data directory ``src`` to ``dst`` with absolute paths in its scp files.

    ``dst`` is built beside itself and swapped in when complete (an earlier ``dst`` is replaced
    only then); subdirectories (``split*``, ``.backup``) are not copied.

    Args:
        src: The source set, e.g. ``../tts1/data/tr_no_dev``.
        dst: The set of this recipe, e.g. ``data/tr_no_dev``.
        root: What relative paths in ``src`` are relative to (default: ``src/../..``, the recipe
            directory of a ``<recipe>/data/<set>``).

    Returns:
        The names of the files copied.

    Raises:
        DataImportError: ``src`` is no directory or holds no ``wav.scp``, or ``dst`` is ``src``.
    """
    src, dst = Path(src), Path(dst)
    root = Path(root) if root is not None else src.parent.parent
    if not (src / "wav.scp").is_file():
        raise DataImportError(f"{src}: not a Kaldi data directory (no wav.scp); check --data_from and the set names")
    files = sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    try:
        check_outputs_not_inputs([dst], files, what="--data_from: the data directory")
    except ValueError as e:
        raise DataImportError(f"{e} (--data_from names this recipe's own data/)") from None
    tmp = dst.parent / f".{dst.name}.import.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for path in files:
            if path.name.endswith(".scp"):
                lines = []
                for line in path.read_text(encoding="utf-8").splitlines():
                    match = re.match(r"(\S+)(\s+)(.*)", line)  # Kaldi: any whitespace after the key
                    lines.append(match.group(1) + match.group(2) + absolute_entry(match.group(3), root) if match else line)
                write_text_atomic(tmp / path.name, "".join(f"{line}\n" for line in lines))
            else:
                shutil.copyfile(path, tmp / path.name)
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        elif dst.exists() or dst.is_symlink():
            dst.unlink()
        tmp.replace(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [p.name for p in files]


def _read_pairs(path: Path) -> List[Tuple[str, str]]:
    return [tuple(line.split(maxsplit=1) + [""])[:2] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def speakers_of(data_dir: PathLike) -> Dict[str, List[str]]:
    """Speaker -> its utterances (``utt2spk`` order) of a data directory."""
    spk2utts: Dict[str, List[str]] = {}
    for utt, spk in _read_pairs(Path(data_dir) / "utt2spk"):
        spk2utts.setdefault(spk.strip(), []).append(utt)
    return spk2utts


def draw_across_speakers(spk2utts: Dict[str, List[str]], n_utts: int, seed: int = 0) -> Set[str]:
    """``n_utts`` utterances taken round-robin over the speakers (each speaker's in a seeded
    random order; speakers in a seeded random order), so that no speaker dominates."""
    rng = random.Random(seed)
    queues = {spk: rng.sample(utts, len(utts)) for spk, utts in sorted(spk2utts.items())}
    order = sorted(queues)
    rng.shuffle(order)
    chosen: Set[str] = set()
    while len(chosen) < n_utts and any(queues.values()):
        for spk in order:
            if queues[spk] and len(chosen) < n_utts:
                chosen.add(queues[spk].pop())
    return chosen


def split_by_speakers(
    data_dir: PathLike, out_dir: PathLike, n_speakers: int = 0, n_utts: int = 0, seed: int = 0
) -> Tuple[List[str], int]:
    """Move utterances of ``data_dir`` into a new data directory ``out_dir``.

    Args:
        data_dir: The set to take them from (rewritten without them).
        out_dir: The new set (replaced if it exists).
        n_speakers: Take every utterance of this many speakers (seeded choice): a held-out-speaker set.
        n_utts: Else take this many utterances round-robin across the speakers.
        seed: The choice's seed.

    Returns:
        The speakers of ``out_dir`` and its utterance count.

    Raises:
        DataImportError: Too few speakers (at least one must stay), or nothing to move.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if out_dir.resolve() == data_dir.resolve():
        raise DataImportError(f"{out_dir}: the new set cannot be the set it is drawn from ({data_dir})")
    spk2utts = speakers_of(data_dir)
    if n_speakers > 0:
        if n_speakers >= len(spk2utts):
            raise DataImportError(
                f"{data_dir}: {len(spk2utts)} speakers; cannot hold out {n_speakers} and train on the rest "
                "(lower --unseen_speakers)"
            )
        held = sorted(random.Random(seed).sample(sorted(spk2utts), n_speakers))
        moved = {utt for spk in held for utt in spk2utts[spk]}
    else:
        total = sum(len(u) for u in spk2utts.values())
        if not 0 < n_utts < total:
            raise DataImportError(f"{data_dir}: {total} utterances; cannot draw {n_utts} and keep some")
        moved = draw_across_speakers(spk2utts, n_utts, seed)
    recordings = {fields[1] for fields in (line.split() for line in _lines(data_dir / "segments")) if len(fields) > 1 and fields[0] in moved}
    tmp = out_dir.parent / f".{out_dir.name}.split.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    kept_parts: Dict[str, str] = {}
    for path in sorted(p for p in data_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        lines = _lines(path)
        if path.name in UTT_FILES and not (path.name == "wav.scp" and (data_dir / "segments").is_file()):
            out = [line for line in lines if line.split(maxsplit=1)[0] in moved]
            kept = [line for line in lines if line.split(maxsplit=1)[0] not in moved]
        elif path.name == "wav.scp":  # with segments: the recordings of the moved segments go along, all stay
            out = [line for line in lines if line.split(maxsplit=1)[0] in recordings]
            kept = lines
        elif path.name == "spk2utt":
            continue
        else:
            shutil.copyfile(path, tmp / path.name)
            continue
        write_text_atomic(tmp / path.name, "".join(f"{line}\n" for line in out))
        kept_parts[path.name] = "".join(f"{line}\n" for line in kept)
    write_text_atomic(tmp / "spk2utt", _spk2utt(_lines(tmp / "utt2spk")))
    kept_parts["spk2utt"] = _spk2utt(kept_parts["utt2spk"].splitlines())
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.replace(out_dir)
    for name, text in kept_parts.items():
        write_text_atomic(data_dir / name, text)
    return sorted(speakers_of(out_dir)), len(moved)


def _spk2utt(utt2spk_lines: List[str]) -> str:
    """spk2utt text of utt2spk lines (speakers sorted, utterances in utt2spk order)."""
    spk2utt: Dict[str, List[str]] = {}
    for line in utt2spk_lines:
        utt, spk = line.split(maxsplit=1)
        spk2utt.setdefault(spk.strip(), []).append(utt)
    return "".join(f"{spk} {' '.join(utts)}\n" for spk, utts in sorted(spk2utt.items()))


def _lines(path: Path) -> List[str]:
    if not path.is_file():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sets_of_tts_exp(tts_exp: PathLike) -> Tuple[Optional[Path], Dict[str, str]]:
    """The data directory and sets an ESPnet TTS experiment was trained on.

    Its ``config.yaml`` names ``dump/<type>/<set>/<file>`` in ``train_data_path_and_name_and_type``
    and ``valid_...`` (paths relative to the tts1 recipe, an ancestor of the experiment); the
    recipe's ``data/<set>`` holds the Kaldi directory they were made from.

    Returns:
        The recipe's ``data/`` (``None`` if not found) and ``train_set``/``valid_set`` -> name, for
        those found.

    Raises:
        DataImportError: its ``config.yaml`` cannot be read or parsed (named, with the reason).
    """
    exp = Path(tts_exp)
    try:
        config = load_mapping(exp / "config.yaml")
    except ContractError as e:
        raise DataImportError(f"the TTS experiment's config: {e}") from e
    sets: Dict[str, str] = {}
    for key, name in (("train_data_path_and_name_and_type", "train_set"), ("valid_data_path_and_name_and_type", "valid_set")):
        for entry in config.get(key) or []:
            parts = Path(str(entry[0] if isinstance(entry, (list, tuple)) else entry).split(",")[0]).parts
            if "dump" in parts and len(parts) > parts.index("dump") + 3:
                rest = [p for p in parts[parts.index("dump") + 2 : -1] if p != "org"]
                if rest:
                    sets[name] = rest[0]
                    break
    for root in [exp.resolve(), *exp.resolve().parents]:
        if sets and all((root / "data" / s / "wav.scp").is_file() for s in sets.values()):
            return root / "data", sets
    return None, sets
