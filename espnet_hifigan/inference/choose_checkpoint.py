"""Which checkpoint of an experiment to decode with: the one home of that rule.

``voc.sh`` (stages 6-8), ``chain.sh`` (stages 2, 4, 5) and :meth:`Vocoder.from_pretrained` all
decode an experiment directory with the checkpoint named by the first ``best_model_criterion`` of
its ``config.yaml`` (``<phase>.<key>.best.pth``, e.g. ``valid.loss_mel_l1.best.pth``), or with
``latest.pth`` when the config has no criterion.

Shell scripts ask ``python -m espnet_hifigan.bin.choose_checkpoint EXP_DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from espnet_hifigan.core.fileio import PathLike

# The checkpoint ESPnet's trainer writes after every epoch.
LATEST_CHECKPOINT = "latest.pth"


def best_checkpoint_name(config: Mapping[str, Any]) -> str:
    """File name of the checkpoint an experiment is decoded with.

    Args:
        config: The experiment's ``config.yaml`` as a mapping.

    Returns:
        ``<phase>.<key>.best.pth`` of the first ``best_model_criterion``, else ``latest.pth``.
    """
    criteria = config.get("best_model_criterion") or []
    if not criteria:
        return LATEST_CHECKPOINT
    phase, key = criteria[0][0], criteria[0][1]
    return f"{phase}.{key}.best.pth"


def load_exp_config(exp_dir: PathLike) -> Mapping[str, Any]:
    """The ``config.yaml`` of an experiment directory.

    Raises:
        FileNotFoundError: naming the missing file.
    """
    path = Path(exp_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (is {exp_dir} an experiment directory?)")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def find_checkpoint(exp_dir: PathLike, config: Optional[Mapping[str, Any]] = None) -> Path:
    """The existing checkpoint to decode ``exp_dir`` with: the best one, else ``latest.pth``.

    Args:
        exp_dir: The experiment directory.
        config: Its ``config.yaml`` (read when ``None``).

    Raises:
        FileNotFoundError: neither checkpoint exists.
    """
    exp_dir = Path(exp_dir)
    config = load_exp_config(exp_dir) if config is None else config
    names = list(dict.fromkeys([best_checkpoint_name(config), LATEST_CHECKPOINT]))
    for name in names:
        if (exp_dir / name).is_file():
            return exp_dir / name
    raise FileNotFoundError(f"{exp_dir} has none of the checkpoints {names}")
