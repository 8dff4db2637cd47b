"""The experiment's listening page ``exp/<tag>/index.html``: results side by side, decode pages linked.

For each evaluation set of ``RESULTS.md`` (read with :func:`espnet_hifigan.evaluation.results.read_results_md`)
one table has a column per checkpoint (its decode page linked when it is
``decode_<checkpoint without .pth>/<set>/index.html``) and a row per metric, the best value in
bold; a checkpoint scored more than once shows its last row. Below, every decode page
(``decode_*/<set>/index.html``) is listed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from espnet_hifigan.core.fileio import write_text_atomic
from espnet_hifigan.evaluation.listening import (
    PAGE_NAME,
    ListeningPageError,
    metric_title,
)
from espnet_hifigan.evaluation.listening_html import esc, page, rel_url
from espnet_hifigan.evaluation.results import (
    LEADING_COLUMNS,
    MISSING_CELL,
    TRAILING_COLUMNS,
    cell_value,
    read_results_md,
)

logger = logging.getLogger(__name__)

RESULTS_NAME = "RESULTS.md"
CHECKPOINT_SUFFIX = ".pth"


def _metric_names(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    names: List[str] = []
    for row in rows:
        for key in row:
            if key not in (*LEADING_COLUMNS, *TRAILING_COLUMNS, "step") and key not in names:
                names.append(key)
    return names


def _best_column(values: Sequence[Optional[float]], metric: str) -> Optional[int]:
    """Index of the best value of a metric row (``None``: unknown direction or < 2 values)."""
    from espnet_hifigan.evaluation.metrics.registry import METRICS

    spec = METRICS.get(metric)
    defined = [(v, i) for i, v in enumerate(values) if v is not None]
    if spec is None or len(defined) < 2:
        return None
    return (max if spec.higher_is_better else min)(defined)[1]


def render_results_table(exp_dir: Path, set_name: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """One set's results: a column per checkpoint, a row per metric."""
    latest: Dict[str, Mapping[str, Any]] = {}
    for row in rows:
        latest.pop(row["checkpoint"], None)
        latest[row["checkpoint"]] = row
    heads = []
    for checkpoint in latest:
        stem = checkpoint[: -len(CHECKPOINT_SUFFIX)] if checkpoint.endswith(CHECKPOINT_SUFFIX) else checkpoint
        target = exp_dir / f"decode_{stem}" / set_name / PAGE_NAME
        name = esc(checkpoint)
        link = f'<a href="{rel_url(target, exp_dir)}">{name}</a>' if target.is_file() else name
        heads.append(f"<th>{link}</th>")
    lines = [f"<h2>{esc(set_name)}</h2>", f"<table><thead><tr><th></th>{''.join(heads)}</tr></thead><tbody>"]
    columns = list(latest.values())
    for key in ("n_utts", *_metric_names(columns), *TRAILING_COLUMNS):
        cells = [str(row.get(key, MISSING_CELL)) for row in columns]
        best = _best_column([cell_value(c) for c in cells], key)
        tds = "".join(
            f'<td class="num{" best" if i == best else ""}" data-key="{esc(key)}">{esc(c)}</td>'
            for i, c in enumerate(cells)
        )
        lines.append(f"<tr><th>{esc(metric_title(key))}</th>{tds}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def render_experiment_page(exp_dir: Path, results: Sequence[Mapping[str, Any]], decode_pages: Sequence[Path]) -> str:
    """The HTML of the experiment page (every link relative to ``exp_dir``)."""
    parts: List[str] = []
    if results:
        parts.append(f'<p>From <a href="{rel_url(exp_dir / RESULTS_NAME, exp_dir)}">{RESULTS_NAME}</a>; '
                     "the best value of each metric in bold.</p>")
        by_set: Dict[str, List[Mapping[str, Any]]] = {}
        for row in results:
            by_set.setdefault(str(row.get("set", MISSING_CELL)), []).append(row)
        parts.extend(render_results_table(exp_dir, name, rows) for name, rows in by_set.items())
    else:
        parts.append(f'<p class="muted">No {RESULTS_NAME} yet (voc.sh stage 7 writes it).</p>')
    parts.append("<h2>Listening pages</h2>\n<ul>")
    for target in decode_pages:
        label = target.parent.relative_to(exp_dir).as_posix()
        parts.append(f'<li><a href="{rel_url(target, exp_dir)}">{esc(label)}</a></li>')
    parts.append("</ul>")
    return page(f"Experiment: {exp_dir.resolve().name}", "\n".join(parts), subtitle=str(exp_dir))


def write_experiment_page(exp_dir: Path) -> Path:
    """Write ``<exp_dir>/index.html``; return its path.

    Raises:
        ListeningPageError: If ``exp_dir`` is missing or has neither ``RESULTS.md`` nor a decode
            page, or ``RESULTS.md`` cannot be read.
    """
    if not exp_dir.is_dir():
        raise ListeningPageError(f"experiment directory {exp_dir} does not exist")
    results_md = exp_dir / RESULTS_NAME
    decode_pages = sorted(exp_dir.glob(f"decode_*/*/{PAGE_NAME}"))
    try:
        results = read_results_md(results_md) if results_md.is_file() else []
    except (OSError, ValueError) as e:
        raise ListeningPageError(f"cannot read {results_md}: {e}") from e
    if not results and not decode_pages:
        raise ListeningPageError(
            f"{exp_dir} has no {RESULTS_NAME} rows and no decode_*/<set>/{PAGE_NAME}; "
            "decode and score first (voc.sh stages 6-7)"
        )
    out = write_text_atomic(exp_dir / PAGE_NAME, render_experiment_page(exp_dir, results, decode_pages))
    logger.info(f"wrote {out} ({len(results)} result rows, {len(decode_pages)} decode pages)")
    return out
