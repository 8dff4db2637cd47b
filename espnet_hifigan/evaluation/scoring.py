"""Scoring generated audio against references, utterance by utterance: reading both waveforms
(``wav.scp`` values: files, ``<command> |`` pipes, ``<ark>:<offset>``), the metrics of each pair
(in worker processes) and their summary. ``voc_score`` (:mod:`espnet_hifigan.bin.voc_score`) and
the listening pages use it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from espnet_hifigan.core.scp import scp_value_file
from espnet_hifigan.core.wav_scp import read_audio
from espnet_hifigan.evaluation.metrics.registry import METRICS, ScoreOptions, score_pair
from espnet_hifigan.evaluation.metrics.signal import resample

logger = logging.getLogger("voc_score")
# How many utterances a warning about an undefined metric lists.
MAX_UNDEFINED_SHOWN = 10


class ScoringError(Exception):
    """A user-facing error (bad input); the message names the file or utterance."""


@dataclass(frozen=True)
class UttTask:
    """One utterance to score (picklable for worker processes)."""

    utt: str
    ref: str
    gen: str
    metrics: Tuple[str, ...]
    options: ScoreOptions


# ----------------------------------------------------------------------------- input
def load_audio(utt: str, value: str, role: str) -> Tuple[np.ndarray, int]:
    """Load one mono waveform as float64 in ``[-1, 1]``.

    Args:
        utt: Utterance id (for messages).
        value: scp value: a file path, ``<command> |`` or ``<ark>:<offset>``.
        role: ``reference`` or ``generated``.

    Returns:
        ``(waveform (T,), sampling rate)``.

    Raises:
        ScoringError: If the audio is missing, unreadable, empty, not mono or not finite.
    """
    what = f"utterance {utt}: {role} audio {value!r}"
    audio = scp_value_file(value)
    if audio is not None and not os.path.isfile(audio):
        raise ScoringError(f"{what} does not exist")
    try:  # the one wav.scp reader: files, "cmd |" pipes, wav ark entries
        array, fs = read_audio(value, dtype="float64")
    except Exception as e:  # noqa: BLE001 - re-raised with the utterance named
        raise ScoringError(f"{what} cannot be read: {e}") from e
    if array.shape[0] == 0:
        raise ScoringError(f"{what} is empty (0 samples)")
    if array.shape[1] != 1:
        raise ScoringError(f"{what} has {array.shape[1]} channels; only mono is supported")
    wav = array[:, 0]
    if not np.all(np.isfinite(wav)):
        raise ScoringError(f"{what} contains NaN or Inf samples")
    return wav, int(fs)


def load_pair(task: UttTask) -> Tuple[np.ndarray, np.ndarray, int]:
    """Load reference and generated audio, resampling the latter to the reference rate."""
    ref, fs = load_audio(task.utt, task.ref, "reference")
    gen, gen_fs = load_audio(task.utt, task.gen, "generated")
    if gen_fs != fs:
        logger.warning(f"utterance {task.utt}: generated audio is {gen_fs} Hz, resampling to {fs} Hz")
        gen = resample(gen, gen_fs, fs)
    return ref, gen, fs


# --------------------------------------------------------------------------- scoring
def score_task(task: UttTask) -> Tuple[str, Dict[str, float], float]:
    """Score one utterance; return ``(utt, scores, duration in seconds)``.

    Raises:
        ScoringError: Naming the utterance, for unreadable audio or a metric failure.
    """
    ref, gen, fs = load_pair(task)
    try:
        scores = score_pair(ref, gen, fs, metrics=task.metrics, options=task.options)
    except (ValueError, RuntimeError) as e:
        raise ScoringError(f"utterance {task.utt}: {e}") from e
    return task.utt, scores, len(ref) / fs


def _init_worker(log_level: int) -> None:
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=log_level, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")


def score_all(tasks: Sequence[UttTask], nj: int) -> Dict[str, Dict[str, float]]:
    """Score every task, in ``nj`` worker processes when ``nj > 1``.

    Returns:
        ``{utt: {metric: value}}`` in task order.

    Raises:
        ScoringError: For the first utterance that fails (the others are cancelled).
    """
    results: Dict[str, Dict[str, float]] = {}
    audio_s = 0.0
    start = time.perf_counter()
    nj = max(1, min(nj, len(tasks)))
    if nj == 1:
        for task in tasks:
            utt, scores, dur = score_task(task)
            results[utt], audio_s = scores, audio_s + dur
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=nj,
            mp_context=context,
            initializer=_init_worker,
            initargs=(logging.getLogger().getEffectiveLevel(),),
        ) as pool:
            futures = [pool.submit(score_task, task) for task in tasks]
            try:
                for future in concurrent.futures.as_completed(futures):
                    utt, scores, dur = future.result()
                    results[utt], audio_s = scores, audio_s + dur
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        results = {task.utt: results[task.utt] for task in tasks}
    elapsed = time.perf_counter() - start
    logger.info(
        f"scored {len(results)} utterances ({audio_s:.1f} s of audio) in {elapsed:.1f} s with nj={nj}"
    )
    return results


def summarize(results: Mapping[str, Mapping[str, float]], metrics: Sequence[str]) -> Dict[str, Any]:
    """Mean, population std and count of the finite values of each metric.

    Returns:
        ``{metric: {mean, std, n, n_undefined, higher_is_better, unit, description}}``;
        mean/std are ``None`` when no utterance has a finite value.
    """
    out: Dict[str, Any] = {}
    for name in metrics:
        values = np.array([results[utt][name] for utt in results], dtype=np.float64)
        finite = values[np.isfinite(values)]
        spec = METRICS[name]
        out[name] = dict(
            mean=float(finite.mean()) if finite.size else None,
            std=float(finite.std()) if finite.size else None,
            n=int(finite.size),
            n_undefined=int(values.size - finite.size),
            higher_is_better=spec.higher_is_better,
            unit=spec.unit,
            description=spec.description,
        )
        if finite.size < values.size:
            undefined = [utt for utt, value in zip(results, values) if not np.isfinite(value)]
            shown = ", ".join(undefined[:MAX_UNDEFINED_SHOWN])
            more = f", ... ({len(undefined)} in all)" if len(undefined) > MAX_UNDEFINED_SHOWN else ""
            logger.warning(
                f"{name}: undefined for {len(undefined)} utterance(s), left out of its mean and shown as "
                f"missing (nan in per_utt.tsv): {shown}{more}"
            )
    return out
