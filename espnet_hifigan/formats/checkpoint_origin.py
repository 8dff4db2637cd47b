"""Whether a checkpoint belongs to the experiment whose config decodes (or resumes) it.

A trained vocoder applies the ``normalize.mean``/``normalize.std`` buffers its checkpoint
carries: ESPnet's ``GlobalMVN`` copied them from the ``feats_stats.npz`` it was trained with.
The experiment's ``config.yaml`` names that file (``normalize_conf.stats_file``) and its feature
contract records it. A checkpoint of another experiment (other corpus, sampling rate or
features) may fit the generator's shapes and yet carry other statistics, or come from a
directory whose ``config.yaml`` describes other features; it would decode into wrong audio
without a word. :func:`check_checkpoint_origin` refuses such a checkpoint with a table of the
differing fields, naming both files and what to do.

The checkpoint itself carries no feature settings (the log-mel buffers are not saved): they are
read from the ``config.yaml`` next to it when that is another experiment's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

from espnet_hifigan.contract import (
    ContractError,
    ContractMismatch,
    FeatureContract,
    FieldDiff,
    format_table,
    load_mapping,
)
from espnet_hifigan.core.fileio import PathLike, resolve_relative

# The buffers of ESPnet's GlobalMVN in a model state dict.
MEAN_KEY, STD_KEY = "normalize.mean", "normalize.std"
# Buffers equal the statistics when they differ by at most this fraction of the standard deviation
# (in normalised units): float32 buffers, and statistics summed in float32 lose digits to the
# cancellation in sum_square / count - mean ** 2; another experiment's differ by far more.
STATS_TOLERANCE = 0.01


class StatisticsMismatch(ContractError):
    """A checkpoint normalises with other statistics than its config names (the message has a table)."""


def stats_mean_std(stats_file: PathLike, eps: float = 1.0e-20) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of a statistics file, as ESPnet's ``GlobalMVN`` computes them.

    Args:
        stats_file: ``feats_stats.npz`` (count, sum, sum_square) or Kaldi-style ``.npy`` stats.
        eps: Floor of the variance (GlobalMVN's default).

    Raises:
        ContractError: the file cannot be read or holds no statistics (naming it).
    """
    path = Path(stats_file)
    try:
        stats = np.load(path, allow_pickle=False)
        if isinstance(stats, np.ndarray):  # Kaldi-style: [[sum..., count], [sum_square..., 0]]
            count = stats[0].flatten()[-1]
            mean = stats[0, :-1] / count
            var = stats[1, :-1] / count - mean * mean
        else:
            with stats:
                count, total, square = stats["count"], stats["sum"], stats["sum_square"]
            mean = total / count
            var = square / count - mean * mean
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise ContractError(f"cannot read normalisation statistics {path}: {e}") from e
    return np.asarray(mean, dtype=np.float64).reshape(-1), np.sqrt(np.maximum(var, eps)).reshape(-1)


def _summary(values: np.ndarray) -> str:
    return f"{values.size} bins, avg {values.mean():.4g}, range [{values.min():.4g}, {values.max():.4g}]"


def _delta(left: np.ndarray, right: np.ndarray) -> str:
    if left.shape != right.shape:
        return f"{left.size} vs {right.size} bins"
    diff = np.abs(left - right)
    return f"{diff.max():.4g} (bin {int(diff.argmax())})"


def check_statistics(
    config: Mapping[str, Any],
    state: Mapping[str, Any],
    checkpoint: str,
    config_file: str,
    hint: str,
    stats_dirs: Sequence[PathLike] = (),
) -> None:
    """Refuse a checkpoint whose normalisation is not the one ``config`` names.

    Nothing is compared when the config names no statistics file or the file is not found (a
    config of another machine): the checkpoint's buffers are then all there is.

    Args:
        config: The training configuration (``config.yaml`` as a mapping, or ``vars(args)``).
        state: The checkpoint's model state dict.
        checkpoint: The checkpoint, for messages.
        config_file: The config, for messages.
        hint: What to do (the last sentence of the message).
        stats_dirs: Directories a relative ``stats_file`` is also looked up under.

    Raises:
        StatisticsMismatch: buffers missing, unexpected or different from the statistics file.
    """
    has_buffers = MEAN_KEY in state or STD_KEY in state
    if config.get("normalize") is None:
        if has_buffers:
            raise StatisticsMismatch(
                f"checkpoint {checkpoint} normalises its input ({MEAN_KEY}/{STD_KEY}) but {config_file} says "
                f"normalize: none: it was trained with another config; {hint}"
            )
        return
    stats = (config.get("normalize_conf") or {}).get("stats_file")
    if stats is None:
        return
    stats_file = resolve_relative(stats, [Path(d) for d in stats_dirs])
    if not stats_file.is_file():
        return
    if not has_buffers:
        raise StatisticsMismatch(
            f"checkpoint {checkpoint} carries no normalisation statistics ({MEAN_KEY}/{STD_KEY}) but {config_file} "
            f"normalises with {stats_file}: it was trained without normalisation; {hint}"
        )
    mean, std = stats_mean_std(stats_file)
    diffs, deltas = [], []
    for key, expected in ((MEAN_KEY, mean), (STD_KEY, std)):
        value = state.get(key)
        if value is None:
            diffs.append(FieldDiff(key, "missing", _summary(expected)))
            continue
        got = np.asarray(value.detach().cpu().double() if hasattr(value, "detach") else value, np.float64).reshape(-1)
        if got.shape != expected.shape or np.any(np.abs(got - expected) > STATS_TOLERANCE * std):
            diffs.append(FieldDiff(key, _summary(got), _summary(expected)))
            deltas.append(f"max |Δ{key.split('.')[-1]}| = {_delta(got, expected)}")
    if diffs:
        raise StatisticsMismatch(
            f"checkpoint {checkpoint} was trained with other normalisation statistics than {config_file} names:\n"
            f"  checkpoint: {checkpoint} ({MEAN_KEY}/{STD_KEY})\n"
            f"  statistics: {stats_file} (normalize_conf.stats_file of {config_file})\n"
            f"{format_table(diffs, 'checkpoint', 'statistics', describe=False)}\n"
            f"{', '.join(deltas)}: the checkpoint belongs to another experiment (other data, sampling rate or "
            f"features); {hint}"
        )


def sibling_config(checkpoint: PathLike, config_file: Optional[PathLike]) -> Optional[Path]:
    """The ``config.yaml`` next to ``checkpoint`` when it is not ``config_file`` (another experiment's)."""
    sibling = Path(checkpoint).parent / "config.yaml"
    if not sibling.is_file():
        return None
    if config_file is not None and Path(config_file).is_file() and sibling.resolve() == Path(config_file).resolve():
        return None
    return sibling


def check_checkpoint_origin(
    config: Mapping[str, Any],
    state: Mapping[str, Any],
    checkpoint: PathLike,
    config_file: PathLike,
    hint: str = "",
) -> None:
    """Refuse a checkpoint of another experiment than the one ``config_file`` describes.

    Two checks: the ``config.yaml`` next to the checkpoint (when it is another file) describes
    the same features (fields table ``field | checkpoint's experiment | config``), and the
    checkpoint's normalisation buffers equal the statistics the config names (:func:`check_statistics`).

    Args:
        config: ``config_file`` as a mapping.
        state: The checkpoint's model state dict.
        checkpoint: The checkpoint file.
        config_file: The experiment's ``config.yaml``.
        hint: What to do; a default names ``--train_config`` and ``--inference_model``.

    Raises:
        ContractMismatch: the checkpoint's experiment used other feature settings.
        StatisticsMismatch: its normalisation statistics differ from the config's.
    """
    hint = hint or (
        f"decode {checkpoint} with the config.yaml of the experiment it comes from (--train_config), or choose a "
        f"checkpoint of the experiment of {config_file} (voc.sh --inference_model)"
    )
    sibling = sibling_config(checkpoint, config_file)
    if sibling is not None:
        try:
            data = load_mapping(sibling)
            theirs = None  # not one of our training configs: nothing to compare
            if "feats_extract_conf" in data and "generator_conf" in data:
                theirs = FeatureContract.from_train_config(data, source=str(sibling))
        except ContractError:
            theirs = None
        if theirs is not None:
            ours = FeatureContract.from_train_config(config, source=str(config_file))
            diffs = theirs.compare(ours, include_normalization=False)
            if diffs:
                raise ContractMismatch(
                    diffs, theirs, ours, hint=f"{checkpoint} comes from another experiment; {hint}",
                    labels=("checkpoint's experiment", "config"),
                )
    # A recipe's config.yaml (exp/<tag>/config.yaml) names the statistics relative to the recipe.
    anchors = [Path(config_file).parent, *list(Path(config_file).resolve().parents)[:3]]
    check_statistics(config, state, str(checkpoint), str(config_file), hint, stats_dirs=anchors)
