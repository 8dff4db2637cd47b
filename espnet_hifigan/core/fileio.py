"""File handling every layer uses: writes that never leave a half-written file behind, the
SHA-256 of a file, finding a relative path under several anchors, and removing the files of an
output directory that its new list no longer names."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, List, Union

PathLike = Union[str, Path]


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_relative(path: PathLike, anchors: Iterable[Path]) -> Path:
    """Find a relative path as given (cwd) or under one of ``anchors`` (first that exists)."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    for anchor in anchors:
        candidate = anchor / path
        if candidate.exists():
            return candidate
    return path


def write_text_atomic(path: Union[str, Path], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


class DiskFullError(OSError):
    """The disk (or quota) filled up while writing ``path``; nothing was left half-written."""

    def __init__(self, path: Union[str, Path]) -> None:
        super().__init__(errno.ENOSPC, f"disk full while writing {path}: free space and re-run")
        self.path = Path(path)

    def __str__(self) -> str:
        return self.strerror


def _is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it was raised from) is ENOSPC / EDQUOT."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


def write_atomic(path: Union[str, Path], write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through ``write(f)`` on a temporary file beside it, fsync, then rename.

    A kill or a full disk leaves either the old file or the new one, never a truncated one.

    Args:
        path: The file to (re)write.
        write: Writes the content to the open binary file it is given.

    Returns:
        The written path.

    Raises:
        DiskFullError: the disk filled up (the temporary file is removed; ``path`` is untouched).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if _is_disk_full(e):
            raise DiskFullError(path) from e
        raise
    fsync_dir(path.parent)
    return path


def remove_unlisted(directory: PathLike, keep: Iterable[str], suffix: str = ".wav") -> List[str]:
    """Remove the ``*<suffix>`` files directly in ``directory`` whose names are not in ``keep``.

    For an output directory written again with fewer files (a subset decoded into a used
    directory): call it once the new list (``wav.scp``) is complete and its files are in place, so
    that no file it does not name is left next to it. Only files (or links) ending in ``suffix``
    directly in ``directory`` go; subdirectories and other files stay.

    Args:
        directory: The directory (nothing happens when it does not exist).
        keep: The file names to keep.
        suffix: The suffix of the files that may go.

    Returns:
        The names removed, sorted.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    keep = set(keep)
    removed = []
    for path in sorted(directory.iterdir()):
        if path.name.endswith(suffix) and path.name not in keep and (path.is_symlink() or path.is_file()):
            path.unlink()
            removed.append(path.name)
    return removed


def fsync_dir(directory: Union[str, Path]) -> None:
    """Flush a directory's entries (a rename in it) to disk, where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
