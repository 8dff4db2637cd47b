"""The corpus files of a new voc1 recipe (``egs2/TEMPLATE/voc1/setup.sh`` calls it): ``run.sh``
with the corpus defaults, and ``conf/train.yaml`` / ``conf/train_debug.yaml`` for its rate.

    python -m espnet_hifigan.bin.setup_recipe --recipe_dir egs2/vctk/voc1 \\
        --template egs2/TEMPLATE/voc1/template/run.sh [--tts1_dir egs2/vctk/tts1 --data_from ../tts1/data]

Beside a tts1 recipe, the feature settings and sets are read from it
(:func:`espnet_hifigan.contract.tts_recipe.read_tts1_recipe`; each value's source is written as
a comment). The configs: the V1 preset of the sampling rate / frame shift and the debug config
with its upsampling (``python -m espnet_hifigan.bin.presets list``); at 22.05 kHz / 256 links to
the repository's ``conf/hifigan_v1.yaml`` and ``conf/hifigan_debug.yaml``. Without a preset for
the rate nothing is written to ``conf/`` and a warning says to write ``conf/train.yaml``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_hifigan.contract.base import ContractError
from espnet_hifigan.contract.tts_recipe import read_tts1_recipe, shell_assignments
from espnet_hifigan.core.fileio import write_text_atomic
from espnet_hifigan.nets.presets import RATE_PRESETS, PresetError, find_rate_preset
from espnet_hifigan.train.configs import DEFAULT_CONF_DIR, render_config

BEGIN, END = "# >>> corpus defaults (setup.sh)", "# <<< corpus defaults"


def fill_defaults(template: str, values: Dict[str, str], notes: Dict[str, str]) -> str:
    """``template`` (a run.sh) with the ``name=value`` lines between :data:`BEGIN` and
    :data:`END` set to ``values`` (each with its ``notes`` entry as a comment).

    Raises:
        ValueError: The template has no such block, or lacks a name of ``values``.
    """
    lines = template.splitlines()
    try:
        first, last = lines.index(BEGIN), lines.index(END)
    except ValueError:
        raise ValueError(f"the template has no '{BEGIN}' ... '{END}' block") from None
    missing = set(values)
    for i in range(first + 1, last):
        match = re.match(r"^([a-z_]+)=", lines[i])
        if match and match.group(1) in values:
            name = match.group(1)
            value = values[name]
            quoted = f'"{value}"' if value == "" or not re.fullmatch(r"[\w./-]+", value) else value
            note = f"  # {notes[name]}" if name in notes else ""
            lines[i] = f"{name}={quoted}{note}"
            missing.discard(name)
    if missing:
        raise ValueError(f"the template's defaults block has no {', '.join(sorted(missing))}")
    return "\n".join(lines) + "\n"


def write_configs(conf_dir: Path, fs: int, n_shift: int) -> List[str]:
    """``conf/train.yaml`` and ``conf/train_debug.yaml`` of ``fs``/``n_shift``; returns messages.

    Raises:
        PresetError: No preset fits ``fs``/``n_shift``.
    """
    preset = find_rate_preset(fs, n_shift)
    conf_dir.mkdir(parents=True, exist_ok=True)
    if preset is RATE_PRESETS[0]:  # the repository's own configs: linked, as mini_an4 does
        for name, target in (("train.yaml", "hifigan_v1.yaml"), ("train_debug.yaml", "hifigan_debug.yaml")):
            (conf_dir / name).symlink_to(os.path.relpath(DEFAULT_CONF_DIR / target, conf_dir))
        return [(f"conf/train.yaml -> conf/hifigan_v1.yaml, conf/train_debug.yaml -> conf/hifigan_debug.yaml"
                 f" (fs={fs}, n_shift={n_shift})")]
    write_text_atomic(conf_dir / "train.yaml", render_config(preset, "v1"))
    write_text_atomic(conf_dir / "train_debug.yaml", render_config(preset, "v3", template_name="hifigan_debug.yaml"))
    return [(f"conf/train.yaml: the V1 preset for fs={fs}, n_shift={n_shift}; conf/train_debug.yaml: the debug "
             f"config with upsampling {list(preset.rates('v3'))}")]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write run.sh and conf/ of a new recipe; exit 1 with one line on an error."""
    parser = argparse.ArgumentParser(prog="python -m espnet_hifigan.bin.setup_recipe", description=__doc__.split("\n")[0])
    parser.add_argument("--recipe_dir", type=Path, required=True, help="the new recipe directory (exists)")
    parser.add_argument("--template", type=Path, required=True, help="the run.sh template")
    parser.add_argument("--tts1_dir", type=Path, default=None, help="an ESPnet tts1 recipe to read settings from")
    parser.add_argument("--data_from", default="", help="run.sh's data_from default (e.g. ../tts1/data)")
    args = parser.parse_args(argv)
    try:
        template = args.template.read_text(encoding="utf-8")
        values = shell_assignments(template.split(BEGIN, 1)[-1].split(END, 1)[0])
        notes: Dict[str, str] = {}
        if args.tts1_dir is not None:
            found = read_tts1_recipe(args.tts1_dir)
            for name, value in found.values.items():
                values[name], notes[name] = value, f"from {found.sources[name]}"
        values["data_from"] = args.data_from
        if args.data_from:
            notes["data_from"] = "stage 1 copies the sets from there (empty: local/data.sh)"
        run_sh = args.recipe_dir / "run.sh"
        write_text_atomic(run_sh, fill_defaults(template, values, notes))
        run_sh.chmod(0o755)
        try:
            messages = write_configs(args.recipe_dir / "conf", int(values["fs"]), int(values["n_shift"]))
        except (PresetError, ValueError) as e:
            messages = [(f"WARNING: no preset config for fs={values['fs']} n_shift={values['n_shift']} ({e});"
                         " write conf/train.yaml and conf/train_debug.yaml (python -m espnet_hifigan.bin.presets list)")]
    except (OSError, ValueError, ContractError) as e:
        print(f"ERROR: setup_recipe: {e}", file=sys.stderr)
        return 1
    for name in sorted(notes):
        print(f"run.sh: {name}={values[name]} ({notes[name]})")
    for message in messages:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
