"""The feature settings and data sets of an ESPnet ``egs2/<corpus>/tts1`` recipe directory, read
from its shell and YAML files (best effort: what a new ``voc1`` recipe beside it starts from).

Where each value comes from, first found wins:

1. the options of the ``tts.sh`` call in ``run.sh`` (``--fs 24000`` or ``--fs "${fs}"``);
2. the top-level assignments of ``run.sh`` (``fs=24000``; the first one, not those inside ``if``);
3. the top-level defaults of ``tts.sh`` (the recipe's link to ESPnet's ``TEMPLATE/tts1/tts.sh``);
4. ``feats_extract_conf`` of the training config ``run.sh`` names (``train_config=conf/...``).

``tts.sh`` passes its feature options to training as ``--feats_extract_conf``, which win over the
YAML file, hence the order. Nothing is executed: a value built by shell code that is not a plain
assignment or option is not found, and the caller keeps its own default.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional

from espnet_hifigan.contract.base import ContractError, load_mapping
from espnet_hifigan.core.fileio import PathLike

# voc1 run.sh name -> the tts.sh option of the same setting (ESPnet's names).
RECIPE_KEYS: Dict[str, str] = {
    "fs": "fs",
    "n_fft": "n_fft",
    "n_shift": "n_shift",
    "win_length": "win_length",
    "n_mels": "n_mels",
    "fmin": "fmin",
    "fmax": "fmax",
    "train_set": "train_set",
    "valid_set": "valid_set",
    "test_sets": "test_sets",
}
# voc1 run.sh name -> key of ESPnet's feats_extract_conf (LogMelFbank).
_YAML_KEYS = {"fs": "fs", "n_fft": "n_fft", "n_shift": "hop_length", "win_length": "win_length",
              "n_mels": "n_mels", "fmin": "fmin", "fmax": "fmax"}
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_VAR = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


@dataclass
class TTSRecipeSettings:
    """Settings read from a tts1 recipe.

    Attributes:
        values: voc1 ``run.sh`` name (``fs``, ``n_shift``, ``train_set``, ...) -> value as text
            (``""`` for ESPnet's ``null``/empty).
        sources: The same names -> where the value was read (``run.sh (tts.sh --fs)``, ...).
    """

    values: Dict[str, str] = field(default_factory=dict)
    sources: Dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str, source: str) -> None:
        """Record ``name`` unless an earlier (higher-priority) source gave it."""
        if name not in self.values:
            self.values[name] = "" if value in ("null", "None") else value
            self.sources[name] = source


def _words(value: str) -> Optional[str]:
    """A shell assignment's value as text (quotes removed, comment dropped), or None if it is
    more than a literal (command substitution, arithmetic)."""
    if "$(" in value or "`" in value:
        return None
    try:
        parts = shlex.split(value, comments=True)
    except ValueError:
        return None
    return " ".join(parts) if len(parts) <= 1 else None


def shell_assignments(text: str) -> Dict[str, str]:
    """The first top-level (not indented) ``name=value`` of each name in a shell script.

    Values that are other variables (``x="${y}"``) are resolved through the earlier ones.
    """
    found: Dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGN.match(line)
        if not match or match.group(1) in found:
            continue
        value = _words(match.group(2))
        if value is None:
            continue
        var = _VAR.match(value)
        if var:
            if var.group(1) not in found:
                continue
            value = found[var.group(1)]
        found[match.group(1)] = value
    return found


def call_options(text: str, script: str, variables: Mapping[str, str]) -> Dict[str, str]:
    """The ``--name value`` options of the call of ``script`` (e.g. ``./tts.sh``) in a shell
    script, its ``\\``-continued lines joined; ``${var}`` values resolved through ``variables``."""
    joined = re.sub(r"\\\n", " ", text)
    options: Dict[str, str] = {}
    for line in joined.splitlines():
        if script not in line.split("#", 1)[0]:
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for name, value in itertools.pairwise(words):
            if not name.startswith("--") or value.startswith("--"):
                continue
            var = _VAR.match(value)
            if var:
                if var.group(1) not in variables:
                    continue
                value = variables[var.group(1)]
            elif "$" in value:
                continue
            options.setdefault(name[2:].replace("-", "_"), value)
    return options


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def read_tts1_recipe(recipe_dir: PathLike, keys: Iterable[str] = RECIPE_KEYS) -> TTSRecipeSettings:
    """The settings of an ESPnet tts1 recipe directory (see the module docstring for the order).

    Args:
        recipe_dir: The tts1 recipe (``egs2/<corpus>/tts1``: ``run.sh``, ``tts.sh``, ``conf/``).
        keys: The voc1 names wanted (default: all of :data:`RECIPE_KEYS`).

    Returns:
        The values found, each with its source; names not found are absent.

    Raises:
        ContractError: ``recipe_dir`` has no ``run.sh``.
    """
    recipe = Path(recipe_dir)
    run_sh = recipe / "run.sh"
    if not run_sh.is_file():
        raise ContractError(f"{recipe} is not a tts1 recipe: no run.sh")
    wanted: List[str] = list(keys)
    text = _read_text(run_sh)
    variables = shell_assignments(text)
    options = call_options(text, "tts.sh", variables)
    defaults = shell_assignments(_read_text(recipe / "tts.sh"))
    settings = TTSRecipeSettings()
    for name in wanted:
        option = RECIPE_KEYS[name]
        if option in options:
            settings.add(name, options[option], f"{run_sh} (tts.sh --{option})")
        elif option in variables:
            settings.add(name, variables[option], f"{run_sh} ({option}=)")
        elif option in defaults:
            settings.add(name, defaults[option], f"{recipe / 'tts.sh'} (default {option}=)")
    config_name = options.get("train_config", variables.get("train_config"))
    if config_name and (recipe / config_name).is_file():
        try:
            conf = load_mapping(recipe / config_name).get("feats_extract_conf") or {}
        except ContractError:
            conf = {}
        for name in wanted:
            key = _YAML_KEYS.get(name)
            if key and key in conf:
                value = conf[key]
                settings.add(name, "" if value is None else str(value), f"{recipe / config_name} (feats_extract_conf.{key})")
    return settings
