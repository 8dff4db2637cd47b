"""Training checkpoints that survive a kill, a full disk and preemption.

ESPnet's trainer writes ``checkpoint.pth`` (model, optimizers, schedulers, reporter) and the model
files ``<n>epoch.pth`` after every epoch with ``torch.save``. :func:`atomic_torch_saves` routes
those saves through :func:`save`: a temporary file beside the target, fsync, rename; the
checkpoint being replaced is kept as ``checkpoint.prev.pth`` (a hard link: no extra space). A
full disk gives one :class:`CheckpointError` line and leaves the previous epoch's state in place.

:func:`choose_resume_checkpoint` verifies ``checkpoint.pth`` before ``--resume`` loads it and
falls back to ``checkpoint.prev.pth``, saying so; when neither is intact it is one clear error.

A preempted epoch is not counted as finished: :func:`partial_epoch_states` is a checkpoint of the
state in the middle of epoch ``e`` (reporter as at the end of epoch ``e - 1``) recording how many
of its steps were done (:data:`PARTIAL_EPOCH_KEY`); the resumed run trains epoch ``e`` again from
the first step not done (:func:`skip_batches`), so the run ends with the configured number of
optimizer steps.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import shutil
import signal
import zipfile
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from espnet_hifigan.core.fileio import DiskFullError, PathLike, fsync_dir, write_atomic

# The checkpoint ``--resume true`` continues from, and the one it replaced.
RESUME_CHECKPOINT = "checkpoint.pth"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pth"
# Key of a preempted epoch's checkpoint: {"epoch": e, "steps_done": k}.
PARTIAL_EPOCH_KEY = "partial_epoch"
# Entries of every ESPnet training checkpoint.
REQUIRED_KEYS = ("model", "reporter", "optimizers", "schedulers")


class CheckpointError(RuntimeError):
    """A training checkpoint cannot be written or resumed from; the message says what to do."""


def _link(source: Path, target: Path) -> None:
    """Make ``target`` a hard link of ``source`` atomically (a copy where links are refused)."""
    if target.exists() and os.path.samefile(source, target):
        return  # rename() between two links of one file would do nothing
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        with open(source, "rb") as src:
            write_atomic(target, lambda dst: shutil.copyfileobj(src, dst))
    fsync_dir(target.parent)


def _keep_previous(path: Path) -> None:
    """Keep the current ``checkpoint.pth`` as ``checkpoint.prev.pth`` (no extra space)."""
    _link(path, path.with_name(PREVIOUS_CHECKPOINT))


def _restore_previous(output_dir: Path) -> str:
    """Put ``checkpoint.prev.pth`` back as ``checkpoint.pth``; says what the re-run resumes from."""
    current, previous = output_dir / RESUME_CHECKPOINT, output_dir / PREVIOUS_CHECKPOINT
    if previous.is_file():
        os.replace(previous, current)
        fsync_dir(output_dir)
        return f"the previous checkpoint {current} is intact"
    current.unlink(missing_ok=True)
    return f"no earlier checkpoint exists, so a re-run starts from epoch 1 in {output_dir}"


def save(obj: Any, path: PathLike) -> None:
    """``torch.save`` that never leaves a truncated file; ``checkpoint.pth`` keeps its predecessor.

    Raises:
        CheckpointError: the disk filled up (one line: which file, what to do, what is intact).
    """
    import torch

    path = Path(path)
    is_checkpoint = path.name == RESUME_CHECKPOINT
    if is_checkpoint and path.is_file():
        _keep_previous(path)
    try:
        write_atomic(path, lambda f: torch.save(obj, f))
    except DiskFullError as e:
        if is_checkpoint:
            intact = (f"the previous checkpoint {path} is intact" if path.is_file()
                      else f"no earlier checkpoint exists in {path.parent}")
        else:
            # The epoch's checkpoint.pth is already written but its model file is not: go back
            # to the previous epoch so that the re-run trains this epoch again.
            intact = _restore_previous(path.parent)
        raise CheckpointError(f"{e}; {intact}") from e


class _TorchWithAtomicSave:
    """The ``torch`` module as one module sees it, with :func:`save` as its ``save``."""

    def __init__(self, torch_module: Any) -> None:
        self._torch = torch_module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)

    def save(self, obj: Any, f: Any, *args, **kwargs) -> None:
        if isinstance(f, (str, os.PathLike)) and not args and not kwargs:
            save(obj, f)
        else:
            self._torch.save(obj, f, *args, **kwargs)


@contextlib.contextmanager
def atomic_torch_saves(module: Any) -> Iterator[None]:
    """Within the block, ``module``'s ``torch.save(obj, path)`` calls are atomic (:func:`save`)."""
    original = module.torch
    module.torch = _TorchWithAtomicSave(original)
    try:
        yield
    finally:
        module.torch = original


def load_verified(path: PathLike) -> Mapping[str, Any]:
    """The checkpoint's entries (tensors memory-mapped) once it is checked complete and intact.

    Raises:
        CheckpointError: naming the file and what is wrong with it (truncated, corrupted...).
    """
    import torch

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path} is truncated or not a checkpoint ({e})") from e
    if bad_member is not None:
        raise CheckpointError(f"{path} is corrupted ({bad_member} fails its CRC check)")
    try:
        states = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file cannot be resumed from
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path} cannot be read ({type(e).__name__}: {first_line})") from e
    missing = [k for k in REQUIRED_KEYS if not isinstance(states, dict) or k not in states]
    if missing:
        raise CheckpointError(f"{path} is not an ESPnet training checkpoint (no {', '.join(missing)})")
    return states


def choose_resume_checkpoint(output_dir: PathLike, repair: bool = True) -> Tuple[Path, Optional[Tuple[int, int]]]:
    """The intact checkpoint to resume from, and its preempted epoch (epoch, steps done) if any.

    ``checkpoint.pth`` is verified first; when it is damaged, ``checkpoint.prev.pth`` takes its
    place (logged, and linked as ``checkpoint.pth`` so that the next save keeps the good one).
    ``repair=False`` (the checks before a run writes anything) changes nothing and returns
    ``checkpoint.prev.pth`` itself in that case.

    Raises:
        CheckpointError: neither file is intact (one line, naming both and what to do).
    """
    output_dir = Path(output_dir)
    current, previous = output_dir / RESUME_CHECKPOINT, output_dir / PREVIOUS_CHECKPOINT
    try:
        states = load_verified(current)
    except CheckpointError as damaged:
        if not previous.is_file():
            raise CheckpointError(
                f"cannot resume: {damaged} and there is no earlier checkpoint {previous}; "
                f"remove {current} to train from epoch 1, or train into a new --output_dir"
            ) from damaged
        try:
            states = load_verified(previous)
        except CheckpointError as also_damaged:
            raise CheckpointError(
                f"cannot resume: {damaged}, and {also_damaged}; remove both to train from "
                "epoch 1, or train into a new --output_dir"
            ) from also_damaged
        if not repair:
            current = previous
        else:
            logging.warning(f"{damaged}: resuming from the previous checkpoint {previous} "
                            f"(end of epoch {states['reporter'].get('epoch')}) instead")
            _link(previous, current)
    record = states.get(PARTIAL_EPOCH_KEY)
    partial = (int(record["epoch"]), int(record["steps_done"])) if record else None
    return current, partial


def partial_epoch_states(
    output_dir: PathLike,
    epoch: int,
    steps_done: int,
    model: Any,
    optimizers: Sequence[Any],
    schedulers: Sequence[Any],
    scaler: Any,
) -> Dict[str, Any]:
    """The checkpoint of a run preempted after ``steps_done`` steps of ``epoch``.

    The reporter is the one of the end of epoch ``epoch - 1`` (read from the ``checkpoint.pth``
    ESPnet wrote then), so that ``--resume`` runs ``epoch`` again; per-epoch schedulers have not
    stepped yet, per-batch ones have stepped ``steps_done`` times, as the live objects show.
    """
    import torch
    from espnet2.train.reporter import Reporter

    if epoch > 1:
        reporter = load_verified(Path(output_dir) / RESUME_CHECKPOINT)["reporter"]
        if reporter.get("epoch") != epoch - 1:
            raise CheckpointError(f"{Path(output_dir) / RESUME_CHECKPOINT} is of epoch {reporter.get('epoch')}, "
                                  f"not {epoch - 1}: cannot record the preempted epoch {epoch}")
    else:
        reporter = Reporter().state_dict()
    if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    return {
        "model": model.state_dict(),
        "reporter": reporter,
        "optimizers": [o.state_dict() for o in optimizers],
        "schedulers": [s.state_dict() if s is not None else None for s in schedulers],
        "scaler": scaler.state_dict() if scaler is not None else None,
        PARTIAL_EPOCH_KEY: {"epoch": epoch, "steps_done": steps_done},
    }


def _ignore_signals_then(signals: Tuple[int, ...], init_fn: Optional[Callable[[int], None]], worker_id: int) -> None:
    """DataLoader worker start: leave ``signals`` to the trainer's process, then ``init_fn``."""
    for sig in signals:
        signal.signal(sig, signal.SIG_IGN)
    if init_fn is not None:
        init_fn(worker_id)


def skip_batches(iterator: Iterable, steps: int, worker_signals: Tuple[int, ...] = ()) -> Iterable:
    """The batches of an epoch after its first ``steps`` (without loading the skipped ones).

    Args:
        iterator: The epoch's batches (ESPnet's DataLoader).
        steps: How many of its first batches to skip.
        worker_signals: Signals the DataLoader workers ignore: a signal sent to the whole job
            (SIGTERM) must not kill them while the trainer checkpoints and exits.
    """
    from torch.utils.data import DataLoader

    if isinstance(iterator, DataLoader) and isinstance(iterator.batch_sampler, (list, tuple)):
        if steps <= 0 and (iterator.num_workers == 0 or not worker_signals):
            return iterator
        return DataLoader(
            iterator.dataset,
            batch_sampler=list(iterator.batch_sampler)[steps:],
            num_workers=iterator.num_workers,
            collate_fn=iterator.collate_fn,
            pin_memory=iterator.pin_memory,
            worker_init_fn=functools.partial(_ignore_signals_then, tuple(worker_signals), iterator.worker_init_fn),
        )
    return iterator if steps <= 0 else itertools.islice(iterator, steps, None)
