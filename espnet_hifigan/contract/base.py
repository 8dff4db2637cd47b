"""The contract's error type and its reader of YAML/JSON mappings (errors name the file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import yaml

from espnet_hifigan.core.fileio import PathLike


class ContractError(ValueError):
    """A contract that cannot be read, built or applied (the message names the file)."""


def yaml_error_line(source: str, error: yaml.YAMLError) -> str:
    """One line for a YAML parse error: the source, the line and column, and the problem.

    Args:
        source: The file (or ``zip:member``) the text came from.
        error: What ``yaml.safe_load`` raised.

    Returns:
        ``<source> is not valid YAML: line L, column C: <problem>``; a tab used for indentation
        is named as such.
    """
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(error, "problem", None) or (str(error).splitlines() or [type(error).__name__])[0]
    if "'\\t'" in problem or "\t" in problem:
        problem = "YAML forbids tabs for indentation; indent with spaces"
    context = getattr(error, "context", None)
    if context and "tabs" not in problem:
        problem = f"{problem} ({context})"
    return f"{source} is not valid YAML: {where}{' '.join(problem.split())}"


def parse_mapping(text: str, source: str, fmt: str = "yaml") -> Dict[str, Any]:
    """Parse YAML or JSON text that must hold a mapping, naming ``source`` on failure.

    Args:
        text: The text.
        source: Where it came from (a file, or ``zip:member``), for messages.
        fmt: ``yaml`` or ``json``.

    Raises:
        ContractError: one line: the text does not parse (line and column) or holds no mapping.
    """
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ContractError(yaml_error_line(source, e)) from None
    except json.JSONDecodeError as e:
        raise ContractError(f"{source} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{source} does not hold a mapping")
    return data


def load_mapping(path: PathLike) -> Dict[str, Any]:
    """Read a YAML or JSON mapping, naming the file on failure.

    Raises:
        ContractError: the file cannot be read, does not parse (one line with the line and
            column) or holds no mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ContractError(f"cannot read {path}: {e}") from e
    return parse_mapping(text, str(path), "json" if path.suffix == ".json" else "yaml")
