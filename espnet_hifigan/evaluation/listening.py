"""Listening pages: one HTML page per decode directory and one per experiment.

A decode page (``exp/<tag>/decode_<ckpt>/<set>/index.html``) has one row per generated
utterance: the reference and generated audio players, the reference-vs-generated spectrogram
(``scoring/spectrograms/<utt>.png``; those ``voc_score`` did not draw are drawn here, at most
``max_plots``) and the utterance's scores from ``scoring/per_utt.tsv``. Clicking a column header
sorts the table; ``index.html#sort=-pesq`` opens it sorted (``-``: descending). References are
copied (hard-linked where possible) into ``ref/`` (audio a browser cannot play, such as a pipe,
a Kaldi ark or sph, is decoded to wav), so every link of the page is relative and the directory
can be moved or served as it is.

The experiment page (``exp/<tag>/index.html``) shows the ``RESULTS.md`` rows of each set with the
checkpoints side by side (the best value of each metric in bold) and links every decode page.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_hifigan.core.fileio import write_text_atomic
from espnet_hifigan.core.scp import ScpError, read_scp, resolve_scp_path, scp_value_file
from espnet_hifigan.evaluation.listening_html import (
    audio_tag,
    esc,
    image_tag,
    page,
    rel_url,
)
from espnet_hifigan.evaluation.plots import spectrogram_filename
from espnet_hifigan.evaluation.results import (
    MISSING_CELL,
    TABLE_DECIMALS,
    column_title,
    mean_std_cell,
    read_per_utt_tsv,
)

logger = logging.getLogger(__name__)

PAGE_NAME = "index.html"
REF_DIR = "ref"
# Generated audio outside the decode directory is copied here.
GEN_DIR = "gen"
SCORING_DIR = "scoring"
SPECTROGRAM_DIR = "spectrograms"
# Spectrograms the page generator draws itself (those voc_score drew are not counted).
DEFAULT_MAX_PLOTS = 50
# Audio files a browser plays as they are; anything else is decoded to wav.
BROWSER_AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".webm"})


class ListeningPageError(Exception):
    """Bad input for a page (the message names the file and what to do)."""


@dataclass
class UttRow:
    """One utterance of a decode page: its audio (scp values and the page's files) and scores."""

    utt: str
    gen_source: str
    gen: Path
    ref_source: Optional[str] = None
    ref: Optional[Path] = None
    spectrogram: Optional[Path] = None
    scores: Dict[str, float] = field(default_factory=dict)


def _inside(path: Path, directory: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(directory))


class _AudioCopies:
    """Audio copied into ``<decode_dir>/<subdir>/``: staged, then moved into place by ``commit``."""

    def __init__(self, decode_dir: Path, subdir: str, role: str) -> None:
        self.final = decode_dir / subdir
        self.role = role
        self.staging: Optional[Path] = None

    def add(self, utt: str, value: str, scp: Path) -> Path:
        """Copy (or decode to wav) the audio of ``utt``; return its final path.

        Raises:
            ListeningPageError: If the audio does not exist or cannot be read.
        """
        if self.staging is None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(dir=self.final.parent, prefix=f".{self.final.name}.staging_"))
            self.staging.chmod(0o755)  # mkdtemp makes it private; the copies are as readable as wav/
        stem = Path(spectrogram_filename(utt)).stem
        source = Path(value)
        if source.is_file() and source.suffix.lower() in BROWSER_AUDIO_SUFFIXES:
            dest = self.staging / f"{stem}{source.suffix.lower()}"
            try:
                os.link(source, dest)
            except OSError:
                shutil.copyfile(source, dest)
            return self.final / dest.name
        audio = scp_value_file(value)  # None for a "cmd |" pipe; an ark entry's ark
        if audio is not None and not Path(audio).is_file():
            raise ListeningPageError(
                f"{scp}: {self.role} audio of utterance {utt} ({value}) does not exist; fix the scp or re-run its stage"
            )
        import soundfile as sf

        from espnet_hifigan.evaluation.scoring import ScoringError, load_audio

        try:
            wav, fs = load_audio(utt, value, self.role)
        except ScoringError as e:
            raise ListeningPageError(f"{scp}: {e}") from e
        dest = self.staging / f"{stem}.wav"
        sf.write(dest, wav, fs, subtype="PCM_16")
        return self.final / dest.name

    def commit(self) -> None:
        """Replace ``<decode_dir>/<subdir>/`` with the staged copies (or remove a stale one)."""
        if self.final.exists():
            shutil.rmtree(self.final)
        if self.staging is not None:
            self.staging.replace(self.final)
            self.staging = None

    def abort(self) -> None:
        """Drop the staged copies."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ListeningPageError(f"{path} is not valid JSON ({e}); re-run scoring (voc.sh stage 7)") from e


def _reference_scp(ref_scp: Optional[Path], summary: Optional[Mapping[str, Any]], summary_path: Path) -> Optional[Path]:
    """The reference scp: given, else the one voc_score recorded in summary.json, else none."""
    if ref_scp is not None:
        if not ref_scp.is_file():
            raise ListeningPageError(f"reference scp {ref_scp} does not exist; give an existing --ref_scp")
        return ref_scp
    recorded = ((summary or {}).get("info") or {}).get("ref_scp")
    if not recorded:
        return None
    if not Path(recorded).is_file():
        raise ListeningPageError(
            f"{summary_path} names the reference scp {recorded}, which does not exist from {os.getcwd()}; "
            "run from the recipe directory or give --ref_scp"
        )
    return Path(recorded)


def collect_rows(
    decode_dir: Path, ref_scp: Optional[Path], max_plots: int, copies: Sequence[_AudioCopies]
) -> Tuple[List[UttRow], List[str], Optional[Dict[str, Any]]]:
    """Gather the utterances of a decode directory, copying audio into ``copies`` (gen, ref).

    Returns:
        ``(rows sorted by utterance id, metric names, summary.json or None)``.

    Raises:
        ListeningPageError: For a missing or inconsistent input.
    """
    gen_copies, ref_copies = copies
    wav_scp = decode_dir / "wav.scp"
    if not wav_scp.is_file():
        raise ListeningPageError(f"{wav_scp} not found; decode first (voc.sh stage 6)")
    scoring = decode_dir / SCORING_DIR
    summary = _read_json(scoring / "summary.json")
    ref_scp = _reference_scp(ref_scp, summary, scoring / "summary.json")
    try:
        gen_entries = read_scp(wav_scp, "generated")
        ref_entries = read_scp(ref_scp, "reference") if ref_scp is not None else {}
        metrics, scores = read_per_utt_tsv(scoring / "per_utt.tsv") if (scoring / "per_utt.tsv").is_file() else ([], {})
    except (ScpError, ValueError) as e:
        raise ListeningPageError(f"{e}; fix the file or re-run its stage") from e
    stale = sorted(set(scores) - set(gen_entries))
    if stale:
        raise ListeningPageError(
            f"{scoring / 'per_utt.tsv'} scores {len(stale)} utterance(s) not in {wav_scp} (e.g. {stale[0]}); "
            "re-run scoring (voc.sh stage 7)"
        )
    rows: List[UttRow] = []
    for utt in sorted(gen_entries):
        gen_source = resolve_scp_path(gen_entries[utt], [wav_scp.parent])
        gen = Path(gen_source)
        if not gen.is_file():
            raise ListeningPageError(
                f"{wav_scp}: generated audio of {utt} ({gen_entries[utt]}) does not exist; re-decode (voc.sh stage 6)"
            )
        if not _inside(gen, decode_dir) or gen.suffix.lower() not in BROWSER_AUDIO_SUFFIXES:
            gen = gen_copies.add(utt, gen_source, wav_scp)
        row = UttRow(utt=utt, gen_source=gen_source, gen=gen, scores=scores.get(utt, {}))
        if utt in ref_entries:
            assert ref_scp is not None
            row.ref_source = resolve_scp_path(ref_entries[utt], [ref_scp.parent])
            row.ref = ref_copies.add(utt, row.ref_source, ref_scp)
        png = scoring / SPECTROGRAM_DIR / spectrogram_filename(utt)
        row.spectrogram = png if png.is_file() else None
        rows.append(row)
    mel_conf = ((summary or {}).get("options") or {}).get("mel_conf")
    _draw_missing_spectrograms(rows, max_plots, scoring / SPECTROGRAM_DIR, mel_conf)
    return rows, metrics, summary


def _draw_missing_spectrograms(
    rows: Sequence[UttRow], max_plots: int, out_dir: Path, mel_conf: Optional[Mapping[str, Any]]
) -> None:
    """Draw up to ``max_plots`` spectrogram pairs voc_score did not (rows with a reference)."""
    todo = [row for row in rows if row.spectrogram is None and row.ref_source is not None][:max_plots]
    if not todo:
        return
    from espnet_hifigan.evaluation.metrics.registry import ScoreOptions
    from espnet_hifigan.evaluation.plots import plot_spectrogram_pair
    from espnet_hifigan.evaluation.scoring import ScoringError, UttTask, load_pair

    logger.info(f"drawing {len(todo)} spectrogram(s) in {out_dir}")
    for row in todo:
        assert row.ref_source is not None
        try:
            ref, gen, fs = load_pair(UttTask(row.utt, row.ref_source, row.gen_source, (), ScoreOptions()))
        except ScoringError as e:
            raise ListeningPageError(str(e)) from e
        png = out_dir / spectrogram_filename(row.utt)
        plot_spectrogram_pair(ref, gen, fs, png, mel_conf, title=row.utt)
        row.spectrogram = png


def _format_score(value: Optional[float]) -> Tuple[str, str]:
    """(cell text, data-value) of a score; undefined values sort last."""
    if value is None or value != value:
        return MISSING_CELL, ""
    return f"{value:.{TABLE_DECIMALS}f}", repr(float(value))


def metric_title(name: str) -> str:
    """A metric's column title (``mcd [dB] ↓``), or its bare name when it is not registered."""
    try:
        return column_title(name)
    except KeyError:
        return name


def render_decode_page(
    decode_dir: Path, rows: Sequence[UttRow], metrics: Sequence[str],
    summary: Optional[Mapping[str, Any]], exp_page: Optional[Path] = None,
) -> str:
    """The HTML of a decode page (every link relative to ``decode_dir``)."""
    parts: List[str] = []
    if exp_page is not None:
        parts.append(f'<p><a href="{rel_url(exp_page, decode_dir)}">&larr; experiment page</a></p>')
    if summary is not None:
        info = summary.get("info") or {}
        cells = "".join(f"<th>{esc(metric_title(m))}</th>" for m in summary["metrics"])
        means = "".join(f'<td class="num">{esc(mean_std_cell(s))}</td>' for s in summary["metrics"].values())
        rtf = MISSING_CELL if info.get("rtf") is None else f"{info['rtf']:.4g}"
        parts.append(
            f"<h2>Mean &plusmn; std over {esc(summary.get('num_utterances'))} utterances</h2>\n"
            f"<table><thead><tr>{cells}<th>RTF</th><th>device</th></tr></thead>\n"
            f"<tbody><tr>{means}<td class=\"num\">{esc(rtf)}</td><td>{esc(info.get('device') or MISSING_CELL)}"
            "</td></tr></tbody></table>"
        )
    elif not metrics:
        parts.append('<p class="muted">Not scored yet (voc.sh stage 7 writes scoring/).</p>')
    descriptions = {m: s.get("description") or "" for m, s in ((summary or {}).get("metrics") or {}).items()}
    heads = "".join(
        f'<th data-key="{esc(m)}" data-type="num" title="{esc(descriptions.get(m, ""))}">{esc(metric_title(m))}</th>'
        for m in metrics
    )
    parts.append(
        f"<h2>Utterances ({len(rows)})</h2>\n"
        '<p>Click a column header to sort; <code>#sort=-pesq</code> after the address opens the page sorted '
        '(<code>-</code>: descending).</p>\n<p id="load-status"></p>\n'
        '<table class="sortable" id="utts"><thead><tr><th data-key="utt" data-type="text">utt</th>'
        f"<th>reference</th><th>generated</th><th>spectrogram (reference / generated / difference)</th>{heads}"
        "</tr></thead>\n<tbody>"
    )
    for row in rows:
        ref = audio_tag(row.ref, decode_dir) if row.ref is not None else '<span class="muted">no reference</span>'
        spec = (
            image_tag(row.spectrogram, decode_dir, f"spectrogram of {row.utt}")
            if row.spectrogram is not None else '<span class="muted">not drawn</span>'
        )
        cells = []
        for m in metrics:
            text, value = _format_score(row.scores.get(m))
            cells.append(f'<td class="num" data-key="{esc(m)}" data-value="{value}">{text}</td>')
        parts.append(
            f'<tr data-utt="{esc(row.utt)}"><td data-key="utt">{esc(row.utt)}</td><td>{ref}</td>'
            f"<td>{audio_tag(row.gen, decode_dir)}</td><td>{spec}</td>{''.join(cells)}</tr>"
        )
    parts.append("</tbody></table>")
    names = decode_dir.resolve().parts
    title = " / ".join(names[-3:])
    return page(f"Listening page: {title}", "\n".join(parts), subtitle=str(decode_dir))


def write_decode_page(
    decode_dir: Path,
    ref_scp: Optional[Path] = None,
    max_plots: int = DEFAULT_MAX_PLOTS,
    exp_page: Optional[Path] = None,
) -> Path:
    """Write ``<decode_dir>/index.html`` (and ``ref/``, missing spectrograms); return its path.

    Args:
        decode_dir: ``exp/<tag>/decode_<ckpt>/<set>`` with ``wav.scp`` (and ``scoring/``).
        ref_scp: Reference wav.scp; default: the one ``scoring/summary.json`` records.
        max_plots: Spectrograms to draw at most (beyond those ``voc_score`` drew).
        exp_page: The experiment page to link back to, if any.

    Raises:
        ListeningPageError: For bad input; nothing is written then (``ref/`` and the page
            are staged and moved into place at the end).
    """
    if max_plots < 0:
        raise ListeningPageError(f"max_plots must be >= 0, got {max_plots}")
    if not decode_dir.is_dir():
        raise ListeningPageError(f"decode directory {decode_dir} does not exist; decode first (voc.sh stage 6)")
    copies = (_AudioCopies(decode_dir, GEN_DIR, "generated"), _AudioCopies(decode_dir, REF_DIR, "reference"))
    try:
        rows, metrics, summary = collect_rows(decode_dir, ref_scp, max_plots, copies)
        text = render_decode_page(decode_dir, rows, metrics, summary, exp_page)
        for c in copies:
            c.commit()
    finally:
        for c in copies:
            c.abort()
    out = write_text_atomic(decode_dir / PAGE_NAME, text)
    logger.info(f"wrote {out} ({len(rows)} utterances)")
    return out
