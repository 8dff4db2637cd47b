"""PNG figures for evaluation: spectrogram comparisons and metric-vs-step curves.

Uses matplotlib's object-oriented API with the Agg canvas (no ``pyplot`` state, no
display needed), so it is safe in batch jobs and worker processes.

Command line: ``espnet-hifigan-plot-metrics`` (:mod:`espnet_hifigan.bin.plot_metrics`).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from espnet_hifigan.evaluation.results import (
    LEADING_COLUMNS,
    TRAILING_COLUMNS,
    cell_value,
    read_results_md,
)

logger = logging.getLogger(__name__)

SPECTROGRAM_FIGSIZE_IN = (12.0, 8.0)
CURVE_PANEL_SIZE_IN = (6.0, 3.0)
CURVE_COLUMNS = 2
FIGURE_DPI = 100
SPECTROGRAM_CMAP = "magma"
DIFFERENCE_CMAP = "coolwarm"
# Keys of a metric row that are not metric values.
NON_METRIC_KEYS = ("step", *LEADING_COLUMNS, *TRAILING_COLUMNS, "utt")


def _save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Render ``fig`` to ``path`` as PNG atomically (temporary file, then rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=FIGURE_DPI)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def spectrogram_filename(utt: str) -> str:
    """File name of an utterance's spectrogram PNG (``voc_score`` and the listening page)."""
    return f"{utt.replace(os.sep, '_')}.png"


def plot_spectrogram_pair(
    ref_wav: np.ndarray,
    gen_wav: np.ndarray,
    fs: int,
    path: str | os.PathLike,
    mel_conf: Optional[Mapping[str, Any]] = None,
    title: Optional[str] = None,
) -> None:
    """Save reference, generated and difference log-mel spectrograms as one PNG.

    The three panels share the time axis and the reference/generated panels share one
    colour scale, so artefacts (missing high band, buzz in silences, smearing) line up.

    Args:
        ref_wav: Reference waveform, shape ``(T_ref,)``.
        gen_wav: Generated waveform, shape ``(T_gen,)``; both are cut to the shorter.
        fs: Sampling rate in Hz.
        path: Output PNG file (parents are created).
        mel_conf: LogMelSpectrogram arguments (see
            :func:`espnet_hifigan.evaluation.metrics.spectral.resolve_mel_conf`).
        title: Figure title (e.g. the utterance id).
    """
    from matplotlib.figure import Figure

    from espnet_hifigan.evaluation.metrics.spectral import log_mel, resolve_mel_conf

    n = min(len(ref_wav), len(gen_wav))
    ref_mel = log_mel(np.asarray(ref_wav)[:n], fs, mel_conf).T  # (n_mels, frames)
    gen_mel = log_mel(np.asarray(gen_wav)[:n], fs, mel_conf).T
    hop = resolve_mel_conf(fs, mel_conf)["hop_length"]
    duration_s = ref_mel.shape[1] * hop / fs
    extent = (0.0, duration_s, 0, ref_mel.shape[0])
    vmin = float(min(ref_mel.min(), gen_mel.min()))
    vmax = float(max(ref_mel.max(), gen_mel.max()))
    diff = gen_mel - ref_mel
    diff_lim = float(np.max(np.abs(diff))) or 1.0

    fig = Figure(figsize=SPECTROGRAM_FIGSIZE_IN)
    axes = fig.subplots(3, 1, sharex=True)
    panels = (
        ("reference", ref_mel, SPECTROGRAM_CMAP, vmin, vmax),
        ("generated", gen_mel, SPECTROGRAM_CMAP, vmin, vmax),
        ("generated - reference", diff, DIFFERENCE_CMAP, -diff_lim, diff_lim),
    )
    for ax, (label, data, cmap, lo, hi) in zip(axes, panels):
        image = ax.imshow(
            data, origin="lower", aspect="auto", cmap=cmap, vmin=lo, vmax=hi, extent=extent
        )
        ax.set_ylabel("mel bin")
        ax.set_title(label)
        fig.colorbar(image, ax=ax, label="log-mel")
    axes[-1].set_xlabel("time [s]")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save_figure(fig, path)


def plot_metric_curves(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    metrics: Optional[Sequence[str]] = None,
    step_key: str = "step",
) -> None:
    """Plot metric values over training steps, one panel per metric.

    Args:
        rows: One mapping per evaluation, e.g. ``{"step": 10000, "mcd": 3.2, ...}``.
            Missing or non-numeric values are skipped.
        path: Output PNG file.
        metrics: Metrics to plot; ``None`` = every numeric key except ``step_key`` and
            bookkeeping columns.  Panel titles note whether higher or lower is better
            for registered metrics.
        step_key: Key holding the x value.

    Raises:
        ValueError: If there is nothing to plot.
    """
    from matplotlib.figure import Figure

    from espnet_hifigan.evaluation.metrics.registry import METRICS

    if not rows:
        raise ValueError("no rows to plot")
    if metrics is None:
        metrics = []
        for row in rows:
            for key, value in row.items():
                if key != step_key and key not in NON_METRIC_KEYS and key not in metrics:
                    if cell_value(value) is not None:
                        metrics.append(key)
    if not metrics:
        raise ValueError("no numeric metric columns to plot")
    n_cols = min(CURVE_COLUMNS, len(metrics))
    n_rows = math.ceil(len(metrics) / n_cols)
    fig = Figure(figsize=(CURVE_PANEL_SIZE_IN[0] * n_cols, CURVE_PANEL_SIZE_IN[1] * n_rows))
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax, name in zip(axes, metrics):
        points = sorted(
            (float(row[step_key]), cell_value(row.get(name)))
            for row in rows
            if cell_value(row.get(step_key)) is not None and cell_value(row.get(name)) is not None
        )
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o")
        spec = METRICS.get(name)
        direction = "" if spec is None else (" (higher is better)" if spec.higher_is_better
                                             else " (lower is better)")
        unit = f" [{spec.unit}]" if spec is not None and spec.unit else ""
        ax.set_title(f"{name}{unit}{direction}")
        ax.set_xlabel(step_key)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    fig.tight_layout()
    _save_figure(fig, path)


def read_metric_rows(path: str | os.PathLike, set_name: Optional[str] = None) -> List[Dict[str, Any]]:
    """Read metric rows from a TSV (with a ``step`` column) or a RESULTS.md table.

    * TSV: first line is the header; a ``step`` column is required.
    * Markdown (``*.md``): every table row of tables written by ``voc_score`` (columns
      ``checkpoint``, ``set``, metrics ...).  Metric headers such as ``mcd [dB] ↓`` map
      to ``mcd``; cells ``mean ± std`` give the mean.  The step is the last number in
      the checkpoint name (``checkpoint_250000steps.pth`` -> 250000), else the row
      index.

    Args:
        path: TSV or markdown file.
        set_name: For markdown, keep only rows of this evaluation set.

    Returns:
        Rows as dicts with a numeric ``step`` key.
    """
    path = Path(path)
    rows: List[Dict[str, Any]] = []
    if path.suffix.lower() == ".md":
        rows = read_results_md(path, set_name)
    else:
        header_line, *body = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        header = header_line.split("\t")
        if "step" not in header:
            raise ValueError(f"{path}: TSV needs a 'step' column, header is {header}")
        for lineno, line in enumerate(body, 2):
            cells = line.split("\t")
            if len(cells) != len(header):
                raise ValueError(f"{path}:{lineno}: expected {len(header)} columns, got {len(cells)}")
            rows.append(dict(zip(header, cells)))
    if not rows:
        raise ValueError(f"{path}: no metric rows found")
    return rows
