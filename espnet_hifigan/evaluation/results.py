"""Score tables: ``RESULTS.md`` (written and read in one place), ``summary.md``, ``per_utt.tsv``.

``voc_score`` appends one row per scored decode to the experiment's ``RESULTS.md``
(:func:`append_results_row`) and renders each decode's ``summary.md``/``per_utt.tsv``; ``plots``
and the listening pages read ``RESULTS.md`` back as rows (:func:`read_results_md`), the listening
pages ``per_utt.tsv`` as scores (:func:`read_per_utt_tsv`). Columns: ``checkpoint``, ``set``,
``n_utts``, one ``<metric> [<unit>] ↑|↓`` column per metric with ``mean ± std`` cells, ``RTF``,
``device``; above each new table a note says which mel ``feats_mel_l1`` and the checkpoint
criterion ``loss_mel_l1`` use (:func:`mel_legend`).
"""

from __future__ import annotations

import fcntl
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

# Columns before and after the metric columns.
LEADING_COLUMNS = ("checkpoint", "set", "n_utts")
TRAILING_COLUMNS = ("RTF", "device")
MISSING_CELL = "-"
# Decimals of the mean ± std cells (and of voc_score's summary tables).
TABLE_DECIMALS = 3
RESULTS_LOCK_FORMAT = ".{}.lock"
# Values of per_utt.tsv.
TSV_FORMAT = "{:.6g}"
# The training step of a row: the last number in its checkpoint name.
STEP_IN_NAME = re.compile(r"(\d+)(?!.*\d)")
# Mode of a new RESULTS.md before the umask, as open() creates files.
NEW_FILE_MODE = 0o666
VALUE_IN_CELL = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan)")


def _current_umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def column_title(name: str) -> str:
    """Header of a metric column: name, unit and the better direction (``mcd [dB] ↓``)."""
    from espnet_hifigan.evaluation.metrics.registry import METRICS

    spec = METRICS[name]
    unit = f" [{spec.unit}]" if spec.unit else ""
    arrow = "↑" if spec.higher_is_better else "↓"
    return f"{name}{unit} {arrow}"


def mean_std_cell(stats: Mapping[str, Any]) -> str:
    """``mean ± std`` of a metric summary (``-`` when undefined)."""
    if stats["mean"] is None:
        return MISSING_CELL
    return f"{stats['mean']:.{TABLE_DECIMALS}f} ± {stats['std']:.{TABLE_DECIMALS}f}"


def cell_value(value: Any) -> Optional[float]:
    """Parse a number (``"3.2 ± 0.4"`` gives 3.2); ``None`` if not a finite number."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        out = float(value)
    else:
        match = VALUE_IN_CELL.match(str(value))
        if match is None:
            return None
        out = float(match.group(1))
    return out if math.isfinite(out) else None


def per_utt_tsv(results: Mapping[str, Mapping[str, float]], metrics: Sequence[str]) -> str:
    """Render per-utterance scores as TSV (``nan`` for undefined values)."""
    lines = ["\t".join(["utt", *metrics])]
    for utt, scores in results.items():
        lines.append("\t".join([utt, *(TSV_FORMAT.format(scores[m]) for m in metrics)]))
    return "\n".join(lines) + "\n"


def read_per_utt_tsv(path: Union[str, os.PathLike]) -> Tuple[List[str], Dict[str, Dict[str, float]]]:
    """Read a ``per_utt.tsv`` written by :func:`per_utt_tsv`.

    Args:
        path: The TSV file.

    Returns:
        ``(metric names, {utt: {metric: value}})``; undefined values are ``nan``.

    Raises:
        ValueError: Naming the file and line of a malformed header, row or value.
    """
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or lines[0].split("\t")[0] != "utt":
        raise ValueError(f"{path}:1: expected a header 'utt<TAB><metric>...'")
    metrics = lines[0].split("\t")[1:]
    scores: Dict[str, Dict[str, float]] = {}
    for lineno, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        if len(cells) != len(metrics) + 1:
            raise ValueError(f"{path}:{lineno}: expected {len(metrics) + 1} columns, got {len(cells)}")
        if cells[0] in scores:
            raise ValueError(f"{path}:{lineno}: utterance {cells[0]} appears twice")
        try:
            scores[cells[0]] = {m: float(v) for m, v in zip(metrics, cells[1:])}
        except ValueError as e:
            raise ValueError(f"{path}:{lineno}: {e}") from e
    return metrics, scores


def summary_markdown(summary: Mapping[str, Any], title: str) -> str:
    """Render the summary as a markdown table."""
    lines = [
        f"# {title}",
        "",
        "| metric | unit | better | mean | std | n |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in summary["metrics"].items():
        better = "higher" if s["higher_is_better"] else "lower"
        mean = MISSING_CELL if s["mean"] is None else f"{s['mean']:.{TABLE_DECIMALS}f}"
        std = MISSING_CELL if s["std"] is None else f"{s['std']:.{TABLE_DECIMALS}f}"
        lines.append(f"| {name} | {s['unit'] or MISSING_CELL} | {better} | {mean} | {std} | {s['n']} |")
    return "\n".join(lines) + "\n"


def mel_legend(summary: Mapping[str, Any]) -> str:
    """The note above a new ``RESULTS.md`` table saying which mel each mel metric uses.

    Two different log-mel distances appear in an experiment: ``feats_mel_l1`` (a scoring column:
    the *feature* mel of ``voc_score --mel_conf``) and ``loss_mel_l1`` (the validation metric that
    names ``valid.loss_mel_l1.best.pth``: the *loss* mel of ``model_conf.mel_loss_conf``).
    """
    from espnet_hifigan.evaluation.metrics.spectral import DEFAULT_MEL_CONF

    conf = {**DEFAULT_MEL_CONF, "log_base": 10.0, **(((summary.get("options") or {}).get("mel_conf")) or {})}
    log = "natural log" if conf.get("log_base") is None else f"log{conf['log_base']:g}"
    fmin = 0 if conf.get("fmin") is None else conf["fmin"]
    fmax = "fs/2" if conf.get("fmax") is None else f"{conf['fmax']:g} Hz"
    parts = []
    if "feats_mel_l1" in summary["metrics"]:
        parts.append(
            f"`feats_mel_l1`: L1 of the feature log-mel ({log}, {fmin:g} Hz to {fmax}, "
            f"{conf.get('n_mels')} bins, n_fft {conf.get('n_fft')}, hop {conf.get('hop_length')})."
        )
    parts.append(
        "Checkpoints `valid.loss_mel_l1.best*` were selected by the validation `loss_mel_l1`: L1 of the "
        "training loss mel over whole utterances (natural log, 0 Hz to fmax_for_loss, fs/2 by default)."
    )
    return " ".join(parts)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def append_results_row(
    results_md: Path,
    summary: Mapping[str, Any],
    checkpoint: str,
    set_name: str,
    rtf: Optional[float],
    device: Optional[str],
) -> None:
    """Append one row to a markdown results table (header added when needed).

    The file is locked (``.<file>.lock`` beside it) and replaced atomically, so concurrent jobs
    neither interleave nor leave a half-written file.

    Args:
        results_md: The ``RESULTS.md`` to append to (created if missing).
        summary: ``voc_score``'s summary (``metrics``: name -> mean/std, ``num_utterances``).
        checkpoint: Checkpoint name of the row.
        set_name: Evaluation set of the row.
        rtf: Real-time factor of the decode, if known.
        device: Device of the decode, if known.
    """
    metrics = list(summary["metrics"])
    columns = [*LEADING_COLUMNS, *(column_title(m) for m in metrics), *TRAILING_COLUMNS]
    header = "| " + " | ".join(columns) + " |"
    separator = "|" + "---|" * len(columns)
    cells = [
        _md_escape(checkpoint),
        _md_escape(set_name),
        str(summary["num_utterances"]),
        *(mean_std_cell(summary["metrics"][m]) for m in metrics),
        MISSING_CELL if rtf is None else f"{rtf:.4g}",
        MISSING_CELL if not device else _md_escape(device),
    ]
    row = "| " + " | ".join(cells) + " |"
    results_md.parent.mkdir(parents=True, exist_ok=True)
    lock_path = results_md.with_name(RESULTS_LOCK_FORMAT.format(results_md.name))
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = results_md.read_text(encoding="utf-8") if results_md.exists() else ""
        lines = text.rstrip("\n").splitlines()
        # The table at the end of the file, if any: the last run of lines starting with "|".
        table_start = len(lines)
        while table_start > 0 and lines[table_start - 1].lstrip().startswith("|"):
            table_start -= 1
        same_table = table_start < len(lines) and lines[table_start].strip() == header
        if same_table:
            new_text = text.rstrip("\n") + "\n" + row + "\n"
        else:
            prefix = text.rstrip("\n") + "\n\n" if text.strip() else ""
            new_text = prefix + mel_legend(summary) + "\n\n" + "\n".join([header, separator, row]) + "\n"
        fd, tmp = tempfile.mkstemp(dir=results_md.parent, prefix=f".{results_md.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(new_text)
            if results_md.exists():
                shutil.copymode(results_md, tmp)
            else:  # mkstemp creates 0600; a new RESULTS.md follows the umask like any file
                os.chmod(tmp, NEW_FILE_MODE & ~_current_umask())
            os.replace(tmp, results_md)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def read_results_md(path: Union[str, os.PathLike], set_name: Optional[str] = None) -> List[Dict[str, Any]]:
    """Rows of every ``voc_score`` table in a ``RESULTS.md``.

    Metric headers such as ``mcd [dB] ↓`` map to ``mcd``; cells keep their text (read numbers
    with :func:`cell_value`). The step is the last number in the checkpoint name
    (``checkpoint_250000steps.pth`` -> 250000), else the row index.

    Args:
        path: The markdown file.
        set_name: Keep only rows of this evaluation set.

    Returns:
        Rows as dicts with a numeric ``step`` key.
    """
    rows: List[Dict[str, Any]] = []
    header: Optional[List[str]] = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip().startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.split()[0] if c.split() else c for c in cells]
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        row = dict(zip(header, cells))
        if "checkpoint" not in row or (set_name is not None and row.get("set") != set_name):
            continue
        match = STEP_IN_NAME.search(row["checkpoint"])
        row["step"] = int(match.group(1)) if match else len(rows)
        rows.append(row)
    return rows
