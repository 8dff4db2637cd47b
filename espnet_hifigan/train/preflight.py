"""Every check that may refuse a training run, made before the run writes into its output directory.

ESPnet's ``AbsTask.main_worker`` writes ``<output_dir>/config.yaml`` (and ``VocoderTask``
``feature_contract.yaml``) before its trainer resumes from ``checkpoint.pth``. A run refused
there (another config into an existing experiment) would leave the experiment's
``config.yaml`` describing a model its checkpoints do not fit: they would no longer decode. So
:func:`check_resume` makes the resume's refusals first, loading nothing into the real model:

* the checkpoint is verified (``checkpoint.prev.pth`` when it is damaged; nothing is repaired
  here, the trainer does that when the run goes on);
* the experiment's recorded feature contract (``feature_contract.yaml``) equals this run's;
* the checkpoint's model fits the model this configuration builds (keys and shapes), and its
  optimizer states the optimizers; schedulers configured now were saved then;
* its normalisation buffers are the statistics this configuration names.

``VocoderTask.main_worker`` calls it (with the training-data checks) before ESPnet's worker, and
``check_config`` (voc.sh stage 5, before it writes ``run.sh`` or rotates ``train.log``) too.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Sequence

from espnet_hifigan.contract import ContractMismatch, FeatureContract
from espnet_hifigan.contract.model import CONTRACT_FILE
from espnet_hifigan.formats.checkpoint_origin import check_statistics
from espnet_hifigan.train.resume import (
    RESUME_CHECKPOINT,
    CheckpointError,
    choose_resume_checkpoint,
    load_verified,
)

# What a refused resume leaves the user to do.
RESUME_HINT = "train into a new --output_dir (voc.sh --tag), or resume with the configuration it was trained with"


def _shape_problems(own: Mapping[str, Any], saved: Mapping[str, Any]) -> List[str]:
    """What a strict ``load_state_dict(saved)`` into a model whose state is ``own`` refuses."""
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(saved[k].shape)} vs config {tuple(own[k].shape)}"
        for k in own
        if k in saved and hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    for label, items in (("shape mismatches", mismatched), ("missing", missing), ("unexpected", unexpected)):
        if items:
            parts.append(f"{len(items)} {label} (e.g. {'; '.join(items[:2])})")
    return parts


def _check_contract(args: argparse.Namespace, output_dir: Path) -> None:
    """The experiment's recorded feature contract must be this run's (log-mel fields)."""
    recorded = output_dir / CONTRACT_FILE
    if not recorded.is_file():
        return
    theirs = FeatureContract.load(recorded)
    ours = FeatureContract.from_train_config(vars(args), source="this run's feats_extract_conf")
    diffs = theirs.compare(ours, include_normalization=False)
    if diffs:
        raise ContractMismatch(
            diffs, theirs, ours, hint=f"cannot resume {output_dir} with other features: {RESUME_HINT}",
            labels=("experiment", "this run"),
        )


def check_resume(
    args: argparse.Namespace,
    build_model: Callable[[argparse.Namespace], Any],
    build_optimizers: Callable[[argparse.Namespace, Any], Sequence[Any]],
) -> Optional[Path]:
    """Refuse, before anything is written, a ``--resume`` its checkpoint cannot continue.

    Args:
        args: The training arguments (left unchanged: the builders get a copy).
        build_model: ``VocoderTask.build_model``.
        build_optimizers: ``VocoderTask.build_optimizers``.

    Returns:
        The checkpoint the run will resume from; ``None`` when it does not resume.

    Raises:
        CheckpointError: no intact checkpoint, or one that does not fit this model, its
            optimizers or schedulers (one line: the file, what differs, what to do).
        ContractMismatch: the experiment was trained on other features (a table).
        StatisticsMismatch: its normalisation statistics are not the ones this run names (a table).
    """
    import torch

    if getattr(args, "collect_stats", False) or not getattr(args, "resume", False) or args.output_dir is None:
        return None
    output_dir = Path(args.output_dir)
    if not (output_dir / RESUME_CHECKPOINT).exists():
        return None
    checkpoint, _ = choose_resume_checkpoint(output_dir, repair=False)
    states = load_verified(checkpoint)
    _check_contract(args, output_dir)
    build_args = argparse.Namespace(**vars(args))
    with torch.device("cpu"):
        model = build_model(build_args)
    problems = _shape_problems(model.state_dict(), states["model"])
    if not problems:
        try:
            model.load_state_dict(states["model"], strict=True)
        except (RuntimeError, ValueError, KeyError) as e:
            problems = [str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__]
    if problems:
        raise CheckpointError(
            f"cannot resume from {checkpoint}: it does not fit this model configuration ({', '.join(problems)}); "
            f"{RESUME_HINT}"
        )
    optimizers = build_optimizers(build_args, model)
    saved = states["optimizers"]
    problem = "" if len(saved) == len(optimizers) else f"{len(saved)} optimizers saved, {len(optimizers)} configured"
    for i, (optimizer, state) in enumerate(zip(optimizers, saved), 1):
        # What torch's Optimizer.load_state_dict validates, without copying the states.
        groups, saved_groups = optimizer.param_groups, (state or {}).get("param_groups", [])
        sizes, saved_sizes = [len(g["params"]) for g in groups], [len(g["params"]) for g in saved_groups]
        if not problem and sizes != saved_sizes:
            problem = f"optimizer {i}: parameter groups of {saved_sizes} tensors saved, {sizes} configured"
    for i, name in enumerate(("scheduler", "scheduler2")[: len(optimizers)]):
        if not problem and getattr(args, name, None) is not None and i < len(states["schedulers"]):
            if states["schedulers"][i] is None:
                problem = f"--{name} {getattr(args, name)} is configured but the checkpoint has no state of it"
    if problem:
        raise CheckpointError(
            f"cannot resume from {checkpoint}: it does not fit this optimizer configuration ({problem}); {RESUME_HINT}"
        )
    check_statistics(vars(args), states["model"], str(checkpoint), "this run's configuration", RESUME_HINT)
    return checkpoint
