"""The contract's error type and its reader of YAML/JSON mappings (errors name the file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import yaml

from espnet_hifigan.core.fileio import PathLike


class ContractError(ValueError):
    """A contract that cannot be read, built or applied (the message names the file)."""


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
