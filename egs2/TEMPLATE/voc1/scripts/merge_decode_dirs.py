#!/usr/bin/env python3
"""Merge the output directories of parallel ``voc_inference`` jobs (voc.sh stage 6).

Each input directory holds ``wav/``, ``wav.scp`` and ``timing.json`` (``num_utts``,
``audio_sec``, ``compute_sec``, ``rtf``, ``device``). The wavs are moved into
``<output_dir>/wav/``, ``<output_dir>/wav.scp`` lists them (sorted, paths as
``<output_dir>/wav/<file>``) and ``<output_dir>/timing.json`` sums the jobs:
``rtf = sum(compute_sec) / sum(audio_sec)`` (compute time per second of audio, all jobs
together), with the per-job entries under ``jobs``. A summary line is printed. Once the merged
``wav.scp`` is in place, ``*.wav`` files in ``<output_dir>/wav/`` that it does not list (an earlier,
larger decode's) are removed.

Example:
    python scripts/merge_decode_dirs.py --output_dir exp/voc/decode/test \\
        exp/voc/decode/test/logdir/output.1 exp/voc/decode/test/logdir/output.2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

TIMING_FILE = "timing.json"
SUM_FIELDS = ("num_utts", "audio_sec", "compute_sec")


class MergeError(RuntimeError):
    """Job outputs that cannot be merged."""


def merge(input_dirs: Sequence[Path], output_dir: Path) -> Dict[str, Any]:
    """Merge job directories into ``output_dir``; return the merged timing.

    Every job's ``wav.scp`` and timing are checked before anything moves, and only files the job
    wrote itself are moved: ``<job_dir>/wav/<utt>.wav``, a regular file (no symlink). A line naming
    any other path (an id that was a path, an edited scp) stops the merge with nothing changed.
    """
    wav_dir = output_dir / "wav"
    entries: Dict[str, str] = {}
    moves: List[tuple] = []
    jobs: List[Dict[str, Any]] = []
    for job_dir in input_dirs:
        scp = job_dir / "wav.scp"
        timing_path = job_dir / TIMING_FILE
        for path in (scp, timing_path):
            if not path.is_file():
                raise MergeError(f"{path} not found (did the job finish?)")
        with timing_path.open(encoding="utf-8") as f:
            timing = json.load(f)
        missing = [k for k in (*SUM_FIELDS, "device") if k not in timing]
        if missing:
            raise MergeError(f"{timing_path}: missing fields {missing}")
        jobs.append({"dir": str(job_dir), **timing})
        own_wav_dir = (job_dir / "wav").resolve()
        with scp.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                fields = line.strip().split(maxsplit=1)
                if not fields:
                    continue
                if len(fields) != 2:
                    raise MergeError(f"{scp}:{lineno}: expected '<utt> <path>', got {line!r}")
                utt, src = fields
                if utt in entries:
                    raise MergeError(f"{scp}:{lineno}: utterance {utt!r} decoded by two jobs")
                src_path = Path(src)
                if (
                    src_path.name != f"{utt}.wav"
                    or src_path.is_symlink()
                    or src_path.resolve().parent != own_wav_dir
                ):
                    raise MergeError(
                        f"{scp}:{lineno}: {src} is not {own_wav_dir}/{utt}.wav, a file this job wrote; "
                        "refusing to move it (re-run the decoding stage)"
                    )
                if not src_path.is_file():
                    raise MergeError(f"{scp}:{lineno}: {src} not found")
                dest = wav_dir / src_path.name
                moves.append((src_path, dest))
                entries[utt] = str(dest)
    if not entries:
        raise MergeError("no decoded utterance in " + ", ".join(map(str, input_dirs)))
    wav_dir.mkdir(parents=True, exist_ok=True)
    for src_path, dest in moves:
        os.replace(src_path, dest)
    tmp = output_dir / ".wav.scp.tmp"
    tmp.write_text("".join(f"{u} {entries[u]}\n" for u in sorted(entries)), encoding="utf-8")
    tmp.replace(output_dir / "wav.scp")
    merged: Dict[str, Any] = {k: sum(job[k] for job in jobs) for k in SUM_FIELDS}
    merged["rtf"] = merged["compute_sec"] / max(merged["audio_sec"], 1e-12)
    merged["device"] = ", ".join(sorted({str(job["device"]) for job in jobs}))
    merged["num_jobs"] = len(jobs)
    merged["jobs"] = jobs
    (output_dir / TIMING_FILE).write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    # The merged list is complete: wavs of an earlier decode that wav.scp no longer lists go
    # (only *.wav files directly in wav/; nothing else is touched).
    listed = {Path(path).name for path in entries.values()}
    for path in sorted(wav_dir.iterdir()):
        if path.name.endswith(".wav") and path.name not in listed and (path.is_symlink() or path.is_file()):
            path.unlink()
            logging.info(f"removed {path}: an earlier decode's wav that {output_dir}/wav.scp no longer lists")
    return merged


def get_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output_dir", type=Path, required=True, help="merged decode directory")
    parser.add_argument("input_dirs", type=Path, nargs="+", help="job output directories")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Merge; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        t = merge(args.input_dirs, args.output_dir)
    except MergeError as e:
        logging.error(str(e))
        return 1
    logging.info(
        f"{args.output_dir}: {t['num_utts']} utterances, {t['audio_sec']:.2f} s of audio, "
        f"{t['compute_sec']:.2f} s of compute in {t['num_jobs']} jobs: RTF {t['rtf']:.4f} "
        f"({1.0 / max(t['rtf'], 1e-12):.1f}x real time) on {t['device']}"
    )
    return 0


def console_main() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
