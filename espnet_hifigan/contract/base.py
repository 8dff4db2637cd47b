"""The contract's error type and the small file helpers every contract module uses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterable, Union

import yaml

PathLike = Union[str, Path]


class ContractError(ValueError):
    """A contract that cannot be read, built or applied (the message names the file)."""


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_mapping(path: PathLike) -> Dict[str, Any]:
    """Read a YAML or JSON mapping, naming the file on failure.

    Raises:
        ContractError: the file cannot be read, does not parse or holds no mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ContractError(f"cannot read {path}: {e}") from e
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise ContractError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}") from e
    if not isinstance(data, dict):
        raise ContractError(f"{path} does not hold a mapping")
    return data


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

