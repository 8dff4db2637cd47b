"""Score generated audio against reference audio with objective metrics.

Reads two Kaldi-style ``wav.scp`` files (``<utt> <path>`` per line; a value ending in
``|`` or a Kaldi ark offset is read with kaldiio) and scores every utterance of the
generated scp against the reference with the same id.  Reference utterances without
a generated one are skipped (with a warning); a generated utterance without a
reference is an error.  A generated file at another sampling rate than its reference
is resampled to the reference rate (polyphase, with a warning).

Outputs in ``--output_dir``:

* ``per_utt.tsv``: ``utt`` and one column per metric.
* ``summary.json``: mean, std (population), n and direction per metric.
* ``summary.md``: the same as a markdown table.
* ``spectrograms/<utt>.png``: log-mel of reference / generated / difference for the
  first ``--num_plots`` utterances (sorted ids).

With ``--results_md``, one row (checkpoint, set, n_utts, ``mean ± std`` per metric,
RTF, device) is appended to that markdown file; the table header is written when the
file does not end with a table of the same columns.

Nothing is written when any utterance fails: scores are computed first, outputs are
staged in a temporary directory and moved into place at the end.

Example::

    python -m espnet_hifigan.bin.voc_score --ref_scp dump/raw/test/wav.scp \\
        --gen_scp exp/voc/decode_test/wav.scp --output_dir exp/voc/decode_test/scoring \\
        --results_md exp/voc/RESULTS.md --checkpoint valid.loss.best --set test \\
        --timing_json exp/voc/decode_test/timing.json --nj 2
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from espnet_hifigan.core.safety import check_outputs_not_inputs
from espnet_hifigan.core.scp import ScpError, read_scp
from espnet_hifigan.evaluation.metrics.registry import (
    DEFAULT_METRICS,
    METRICS,
    ScoreOptions,
    parse_metric_names,
)
from espnet_hifigan.evaluation.metrics.signal import DEFAULT_MAX_LENGTH_DIFF_S
from espnet_hifigan.evaluation.results import (
    append_results_row,
    mean_std_cell,
    per_utt_tsv,
    summary_markdown,
)
from espnet_hifigan.evaluation.scoring import (
    ScoringError,
    UttTask,
    load_pair,
    score_all,
    summarize,
)

logger = logging.getLogger("voc_score")

DEFAULT_NUM_PLOTS = 3
# How many offending utterance ids an error message lists.
MAX_IDS_IN_MESSAGE = 5


# --------------------------------------------------------------------------- outputs
def write_outputs(
    output_dir: Path,
    results: Mapping[str, Mapping[str, float]],
    summary: Mapping[str, Any],
    plot_tasks: Sequence[UttTask],
    mel_conf: Optional[Mapping[str, Any]],
) -> None:
    """Stage every output in a temporary directory, then move it into ``output_dir``."""
    from espnet_hifigan.evaluation.plots import (
        plot_spectrogram_pair,
        spectrogram_filename,
    )

    metrics = list(summary["metrics"])
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".staging_"))
    try:
        (staging / "per_utt.tsv").write_text(per_utt_tsv(results, metrics), encoding="utf-8")
        title = f"Objective scores: {summary['info'].get('set') or 'set'}"
        if summary["info"].get("checkpoint"):
            title += f" ({summary['info']['checkpoint']})"
        (staging / "summary.md").write_text(summary_markdown(summary, title), encoding="utf-8")
        (staging / "summary.json").write_text(
            json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        spec_dir = staging / "spectrograms"
        spec_dir.mkdir()
        for task in plot_tasks:
            ref, gen, fs = load_pair(task)
            png = spec_dir / spectrogram_filename(task.utt)
            plot_spectrogram_pair(ref, gen, fs, png, mel_conf, title=task.utt)
        # Move into place; summary.json last, so its presence means a complete run.
        final_specs = output_dir / "spectrograms"
        if final_specs.exists():
            shutil.rmtree(final_specs)
        spec_dir.replace(final_specs)
        for name in ("per_utt.tsv", "summary.md", "summary.json"):
            (staging / name).replace(output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------- setup
def load_mel_conf(path: Optional[Path]) -> Optional[Dict[str, Any]]:
    """Read LogMelSpectrogram arguments from YAML.

    Accepts the feature contract written by ``extract_feats --write_conf`` (a flat
    mapping) or a training ``config.yaml`` (its ``feats_extract_conf`` mapping).
    """
    if path is None:
        return None
    from espnet_hifigan.nets.features import LogMelSpectrogram

    if not path.is_file():
        raise ScoringError(f"mel config {path} does not exist")
    with path.open(encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if not isinstance(conf, dict):
        raise ScoringError(f"mel config {path} is not a mapping")
    if isinstance(conf.get("feats_extract_conf"), dict):
        conf = conf["feats_extract_conf"]
    allowed = set(inspect.signature(LogMelSpectrogram.__init__).parameters) - {"self"}
    unknown = sorted(set(conf) - allowed)
    if unknown:
        raise ScoringError(f"mel config {path}: unknown LogMelSpectrogram arguments {unknown}")
    return conf


def read_timing(path: Optional[Path]) -> Tuple[Optional[float], Optional[str]]:
    """RTF and device from ``voc_inference``'s ``timing.json`` (``None`` if absent)."""
    if path is None:
        return None, None
    try:
        timing = json.loads(path.read_text(encoding="utf-8"))
        return float(timing["rtf"]), str(timing.get("device") or "") or None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ScoringError(f"cannot read RTF from timing file {path}: {e}") from e


def build_tasks(
    ref_scp: Dict[str, str], gen_scp: Dict[str, str], metrics: Sequence[str], options: ScoreOptions
) -> List[UttTask]:
    """Pair generated utterances with references; check the files exist."""
    orphans = [utt for utt in gen_scp if utt not in ref_scp]
    if orphans:
        shown = ", ".join(orphans[:MAX_IDS_IN_MESSAGE])
        more = f" (and {len(orphans) - MAX_IDS_IN_MESSAGE} more)" if len(orphans) > MAX_IDS_IN_MESSAGE else ""
        raise ScoringError(f"generated utterance(s) without a reference: {shown}{more}")
    skipped = len(ref_scp) - len(gen_scp)
    if skipped:
        logger.warning(f"{skipped} reference utterance(s) have no generated audio and are not scored")
    tasks = [
        UttTask(utt, ref_scp[utt], gen_scp[utt], tuple(metrics), options) for utt in sorted(gen_scp)
    ]
    for task in tasks:
        for role, value in (("reference", task.ref), ("generated", task.gen)):
            is_special = value.rstrip().endswith("|") or ":" in value
            if not is_special and not os.path.isfile(value):
                raise ScoringError(f"utterance {task.utt}: {role} audio {value!r} does not exist")
    return tasks


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref_scp", required=True, type=Path, help="Reference wav.scp")
    parser.add_argument("--gen_scp", required=True, type=Path, help="Generated wav.scp")
    parser.add_argument("--output_dir", required=True, type=Path, help="Where the scoring files go")
    parser.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help=f"Comma-separated metrics among: {', '.join(METRICS)}",
    )
    parser.add_argument("--results_md", type=Path, default=None, help="Markdown file to append a row to")
    parser.add_argument("--checkpoint", default="-", help="Checkpoint name for the RESULTS.md row")
    parser.add_argument("--set", dest="set_name", default="-", help="Evaluation set name for the row")
    parser.add_argument("--rtf", type=float, default=None, help="Real-time factor of the synthesis")
    parser.add_argument("--device", default=None, help="Device the synthesis ran on")
    parser.add_argument(
        "--timing_json", type=Path, default=None,
        help="voc_inference timing.json to take RTF/device from (--rtf/--device override it)",
    )
    parser.add_argument("--num_plots", type=int, default=DEFAULT_NUM_PLOTS, help="Spectrogram PNGs to draw")
    parser.add_argument("--nj", type=int, default=1, help="Parallel worker processes")
    parser.add_argument("--mel_conf", type=Path, default=None,
                        help="YAML of LogMelSpectrogram arguments (feature contract or train config) "
                        "for feats_mel_l1 and the plots")
    parser.add_argument("--f0_method", choices=("dio", "harvest"), default=ScoreOptions.f0_method)
    parser.add_argument("--f0_min", type=float, default=ScoreOptions.f0_min, help="Hz")
    parser.add_argument("--f0_max", type=float, default=ScoreOptions.f0_max, help="Hz")
    parser.add_argument("--mcep_order", type=int, default=ScoreOptions.mcep_order)
    parser.add_argument(
        "--max_length_diff", type=float, default=DEFAULT_MAX_LENGTH_DIFF_S,
        help="Largest reference/generated length difference (s) for frame-aligned metrics; "
        "shorter differences are trimmed",
    )
    parser.add_argument("--log_level", default="INFO")
    return parser


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Score, write the outputs and the RESULTS.md row; return the summary."""
    if args.nj < 1:
        raise ScoringError(f"--nj must be >= 1, got {args.nj}")
    if args.num_plots < 0:
        raise ScoringError(f"--num_plots must be >= 0, got {args.num_plots}")
    try:
        metrics = parse_metric_names(args.metrics)
    except ValueError as e:
        raise ScoringError(str(e)) from e
    mel_conf = load_mel_conf(args.mel_conf)
    rtf, device = read_timing(args.timing_json)
    rtf = args.rtf if args.rtf is not None else rtf
    device = args.device if args.device is not None else device
    options = ScoreOptions(
        mcep_order=args.mcep_order,
        f0_method=args.f0_method,
        f0_min=args.f0_min,
        f0_max=args.f0_max,
        mel_conf=ScoreOptions.freeze_mel_conf(mel_conf),
        max_length_diff_s=args.max_length_diff,
    )
    ref_scp = read_scp(args.ref_scp, "reference")
    gen_scp = read_scp(args.gen_scp, "generated")
    tasks = build_tasks(ref_scp, gen_scp, metrics, options)
    results = score_all(tasks, args.nj)
    summary = dict(
        num_utterances=len(results),
        metrics=summarize(results, metrics),
        info=dict(
            ref_scp=str(args.ref_scp),
            gen_scp=str(args.gen_scp),
            checkpoint=args.checkpoint,
            set=args.set_name,
            rtf=rtf,
            device=device,
        ),
        options={**asdict(options), "mel_conf": mel_conf},
    )
    write_outputs(args.output_dir, results, summary, tasks[: args.num_plots], mel_conf)
    logger.info(f"wrote {args.output_dir}/summary.json and per_utt.tsv")
    for name, stats in summary["metrics"].items():
        better = "higher" if stats["higher_is_better"] else "lower"
        logger.info(f"{name}: {mean_std_cell(stats)} (n={stats['n']}, {better} is better)")
    if args.results_md is not None:
        append_results_row(args.results_md, summary, args.checkpoint, args.set_name, rtf, device)
        logger.info(f"appended a row to {args.results_md}")
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the scorer; return the exit status (0 on success, 1 on bad input)."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    outputs = [args.output_dir / name for name in ("per_utt.tsv", "summary.md", "summary.json", "spectrograms")]
    try:
        check_outputs_not_inputs(
            outputs + ([args.results_md] if args.results_md else []), [args.ref_scp, args.gen_scp, args.mel_conf],
            what="output",
        )
    except ValueError as e:
        logger.error(str(e))
        return 1
    try:
        run(args)
    except (ScoringError, ScpError) as e:
        logger.error(str(e))
        return 1
    return 0


def console_main() -> None:
    """Console-script entry point (``espnet-hifigan-score``)."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
