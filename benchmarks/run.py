"""Side-by-side speed benchmark: ours vs ESPnet's HiFi-GAN modules (and vs main for decoding).

One process, one device, the same shapes for both sides, the two sides alternating every repeat
(machine load hits both alike); each row reports the median (and best) throughput of each side
and their ratio, ours / reference (> 1: ours is faster). Rows:

- ``training`` (:mod:`benchmarks.training`): the V1 GAN training step, steps/s and peak memory;
- ``inference`` (:mod:`benchmarks.inference`): V1/V2/V3 generator inference of a 10 s utterance,
  x real time, through our user-facing ``Vocoder`` vs ESPnet's bare generator, fp32 and fast paths;
- ``decode_stage`` (:mod:`benchmarks.decode`): the decode stage as users run it (each tree's
  ``scripts/decode.sh``: ``inference_nj`` 32, local backend) on an scp of 50 utterances, ours vs main;
- ``decode_process`` (:mod:`benchmarks.decode`): one ``voc_inference`` process on that scp, ours vs
  main (``--skip decode`` skips both decode rows);
- ``features`` (:mod:`benchmarks.features`): log-mel extraction, seconds of audio per second;
- ``streaming`` (:mod:`benchmarks.streaming`): stateful streaming (chunks of 1, 8, 32, 128 frames)
  vs offline synthesis, PyTorch and ONNX Runtime, interleaved; first-audio latency in the notes.

Examples:
    python -m benchmarks.run --device cpu --size quick --markdown docs/benchmarks.md --json bench.json
    python -m benchmarks.run --device cuda --size full --json bench_gpu.json
    python -m benchmarks.run --device cpu --size quick --seconds 1 --repeats 1 --decode_utts 4 --skip training
    python -m benchmarks.run --device cpu --repeats 1 --decode_seconds 0.6 --skip training,inference,features
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

from benchmarks.common import REPO_ROOT

SIZES = {
    # quick: the 2-core CPU sizes; full: a GPU (batch 16 inference, longer decode utterances).
    "quick": dict(presets=["v1", "v2", "v3"], batches=[1], seconds=10.0, repeats=3, decode_utts=50, decode_seconds=1.0),
    "full": dict(presets=["v1", "v2", "v3"], batches=[1, 16], seconds=10.0, repeats=5, decode_utts=50, decode_seconds=3.0),
}
PARTS = ("training", "inference", "streaming", "decode_stage", "decode_process", "features")
ALIASES = {"decode": ("decode_stage", "decode_process")}


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch CPU threads (both sides; the one-process decode row too; the decode stage's "
        "threads are its decode.sh's)",
    )
    parser.add_argument("--seconds", type=float, default=None, help="utterance length of the inference rows")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per row (after a warm-up round)")
    parser.add_argument("--presets", nargs="+", default=None, choices=["v1", "v2", "v3"])
    parser.add_argument(
        "--compile_presets",
        nargs="*",
        default=None,
        choices=["v1", "v2", "v3"],
        help="presets whose torch.compile variants are measured (CUDA; default: all; none: no compile rows)",
    )
    parser.add_argument("--decode_utts", type=int, default=None, help="utterances of the decode-stage scp")
    parser.add_argument("--decode_seconds", type=float, default=None, help="mean utterance length of the decode scp")
    parser.add_argument(
        "--baseline_repo", default=None, help="a checkout of main to decode with (default: git archive of beae2cf)"
    )
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        help=f"parts not measured, space- or comma-separated: {', '.join(PARTS)} (decode: both decode rows)",
    )
    parser.add_argument(
        "--stream_chunks", type=int, nargs="+", default=None, help="chunk sizes of the streaming rows (frames)"
    )
    parser.add_argument(
        "--stream_backends", nargs="+", default=None, choices=["pytorch", "onnx"], help="streaming rows' backends"
    )
    parser.add_argument(
        "--stream_seconds", type=float, default=3.0, help="utterance length of the streaming rows"
    )
    parser.add_argument("--profile_dir", default=None, help="CUDA: profiles of our fastest training step per preset")
    parser.add_argument("--note", default="", help="a line about the machine (load, sharing) for the markdown")
    parser.add_argument("--json", default=None, help="write the rows and the environment here")
    parser.add_argument("--markdown", default=None, help="rewrite this markdown file (docs/benchmarks.md)")
    return parser


def environment(device: str, threads: int) -> Dict[str, str]:
    """Device, versions and the commit measured."""
    import espnet

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip()

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = f"{platform.processor() or platform.machine()} CPU, {threads} torch threads"
    return dict(
        device=name,
        torch=torch.__version__,
        espnet=espnet.__version__,
        python=platform.python_version(),
        commit=git("rev-parse", "HEAD") + dirty,
        command="python -m benchmarks.run " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


def with_ratios(rows: List[Dict]) -> List[Dict]:
    """Every row completed with ``ratio`` = ours / reference (throughputs: > 1 is faster)."""
    for row in rows:
        missing = [k for k in ("row", "unit", "ours", "espnet") if row.get(k) is None]
        if missing:
            raise ValueError(f"benchmark row {row.get('row')!r} lacks {missing}")
        row.setdefault("reference", "ESPnet")
        row["ratio"] = row["ours"] / row["espnet"]
    return rows


def table(rows: List[Dict]) -> str:
    """A markdown table of the rows."""
    lines = [
        "| row | unit | ours (median / best) | reference (median / best) | ours / reference | note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        best = lambda key: f" / {r[key]:.3g}" if r.get(key) is not None else ""  # noqa: E731
        mem = ""
        if r.get("ours_peak_mem_mb") is not None:
            mem = f"peak mem {r['ours_peak_mem_mb']:.0f} vs {r.get('espnet_peak_mem_mb') or 0:.0f} MiB"
        note = "; ".join(x for x in (r.get("note", ""), mem) if x)
        lines.append(
            f"| {r['row']} | {r['unit']} | {r['ours']:.3g}{best('ours_best')} | "
            f"{r['espnet']:.3g}{best('espnet_best')} ({r['reference']}) | **{r['ratio']:.2f}x** | {note} |"
        )
    return "\n".join(lines)


def markdown(rows: List[Dict], env: Dict[str, str], skipped: List[str], note: str = "") -> str:
    """The text of docs/benchmarks.md."""
    skipped_line = f"\nParts not measured in this run: {', '.join(skipped)}.\n" if skipped else ""
    note_line = f"- note: {note}\n" if note else ""
    return f"""# Benchmarks

Written by `python -m benchmarks.run` (benchmarks/run.py); rerun it to refresh this page.
Both sides of a row run in one process (the decode rows: alternating subprocesses; the decode
stage: each tree's `scripts/decode.sh`, as the recipes run it) on the same device and shapes,
alternating every repeat; numbers are throughputs (higher is faster), the median and best of the
repeats, and the ratio is ours / reference on the medians. Inference rows
time our user-facing `Vocoder` (input checks, normalisation, numpy in/out included) against
ESPnet's bare `espnet2.gan_tts.hifigan.HiFiGANGenerator` in fp32 (random weights: speed does not
depend on them).

- device: {env['device']}
- torch {env['torch']}, espnet {env['espnet']}, Python {env['python']}
- commit measured: `{env['commit']}`
- date: {env['date']}
- command: `{env['command']}`
{note_line}{skipped_line}
{table(rows)}
"""


def training_presets(size: str) -> List[str]:
    """The presets of the training rows at ``size`` (quick: V1 only)."""
    from benchmarks.training import SIZES as TRAINING_SIZES

    return TRAINING_SIZES[size]["presets"]


def _variants(args: argparse.Namespace, preset: str, compiled: bool) -> List[str]:
    """Our training variants for ``preset``: the device's default ones that are (``compiled``) or
    are not compiled; none compiled where ``--compile_presets`` leaves ``preset`` out."""
    from benchmarks.training import VARIANTS

    names = [v for v in VARIANTS["cuda" if args.device == "cuda" else "cpu"] if ("compile" in v) == compiled]
    if compiled and args.compile_presets is not None and preset not in args.compile_presets:
        return []
    return names


def skipped_parts(values: List[str]) -> List[str]:
    """The parts named by ``--skip`` (space- or comma-separated, aliases expanded), in :data:`PARTS` order.

    Raises:
        ValueError: A name that is no part.
    """
    names = {name for value in values for name in value.split(",") if name}
    unknown = sorted(names - set(PARTS) - set(ALIASES))
    if unknown:
        raise ValueError(f"--skip: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}, decode")
    names |= {part for alias in names & set(ALIASES) for part in ALIASES[alias]}
    return [part for part in PARTS if part in names]


def main(cmd: List[str] | None = None) -> Dict:
    """Measure, print the table, write JSON/markdown; return the result."""
    parser = get_parser()
    args = parser.parse_args(cmd)
    try:
        args.skip = skipped_parts(args.skip)
    except ValueError as e:
        parser.error(str(e))
    size = dict(SIZES[args.size])
    for key in ("seconds", "repeats", "presets", "decode_utts", "decode_seconds"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA device is visible")
    torch.set_num_threads(args.threads)
    env = environment(args.device, args.threads)  # the commit as the run starts
    rows: List[Dict] = []

    def save(rows: List[Dict]) -> Dict:
        """The result so far, also written to --json (after every part: a run stopped by a time
        limit keeps what it measured)."""
        result = dict(environment=env, size=size, skipped=args.skip, rows=with_ratios(rows))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return result

    if "training" not in args.skip:
        try:
            from benchmarks.training import rows as training_rows
        except ImportError as e:
            raise SystemExit(
                f"benchmarks.training cannot be imported ({e}): the training rows need it; "
                "pass --skip training to measure the other parts only"
            ) from e
    if "inference" not in args.skip:
        from benchmarks.inference import inference_rows

    # Two passes: every path without torch.compile first (quick), then the compiled ones (minutes
    # of compilation each), so that a run cut short by a time limit has the plain rows.
    for compiled in (False, True):
        if compiled and args.device != "cuda":
            break
        if "training" not in args.skip:
            for preset in args.presets or training_presets(args.size):
                variants = _variants(args, preset, compiled)
                if variants:
                    rows += training_rows(
                        args.device, args.size, presets=[preset], variants=variants, profile_dir=args.profile_dir,
                        reference_rows=not compiled,
                    )  # fmt: skip
                    save(rows)
        if "inference" not in args.skip:
            for preset in size["presets"]:
                if compiled and args.compile_presets is not None and preset not in args.compile_presets:
                    continue
                rows += inference_rows(
                    args.device, [preset], size["batches"], size["seconds"], size["repeats"],
                    paths="compiled" if compiled else "plain",
                )  # fmt: skip
                save(rows)
    if "streaming" not in args.skip:
        from benchmarks.streaming import BACKENDS, CHUNKS, streaming_rows

        rows += streaming_rows(
            args.device, size["presets"], args.stream_seconds, size["repeats"], args.stream_chunks or CHUNKS,
            args.stream_backends or BACKENDS,
        )  # fmt: skip
        save(rows)
    decode_parts = [p for p in ("stage", "process") if f"decode_{p}" not in args.skip]
    if decode_parts:
        from benchmarks.decode import decode_rows

        rows += decode_rows(
            args.device, size["decode_utts"], size["decode_seconds"], max(1, size["repeats"] - 1), args.threads,
            args.baseline_repo, decode_parts,
        )  # fmt: skip
        save(rows)
    if "features" not in args.skip:
        from benchmarks.features import feature_rows

        rows += feature_rows(args.device, size["seconds"], 4, size["repeats"])
    result = save(rows)
    print(f"{env['device']}; torch {env['torch']}, espnet {env['espnet']}; commit {env['commit']}")
    print(table(result["rows"]))
    if args.markdown:
        Path(args.markdown).write_text(markdown(result["rows"], env, args.skip, args.note), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
