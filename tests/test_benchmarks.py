"""Smoke test of the benchmark entry point (tiny sizes, CPU): every row complete, files written.

No speed is asserted: the numbers live in docs/benchmarks.md, measured side by side in one run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.decode import BASELINE_COMMIT

REPO_ROOT = Path(__file__).resolve().parents[1]


def _baseline_args():
    """Main's commit when this clone has it (a shallow clone may not): else this tree decodes both sides."""
    have = subprocess.run(["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{BASELINE_COMMIT}^{{commit}}"])
    return [] if have.returncode == 0 else ["--baseline_repo", str(REPO_ROOT)]


def test_quick_run_writes_a_complete_table(tmp_path):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "benchmarks.md"
    args = ["--device", "cpu", "--size", "quick", "--presets", "v2", "--seconds", "0.3", "--repeats", "1",
            "--decode_utts", "2", "--decode_seconds", "0.2", "--skip", "training",
            "--stream_seconds", "0.3", "--stream_chunks", "8", "--stream_backends", "pytorch",
            "--json", str(out_json), "--markdown", str(out_md), *_baseline_args()]  # fmt: skip
    run.main(args)
    result = json.loads(out_json.read_text())
    rows = result["rows"]
    names = " ".join(r["row"] for r in rows)
    for part in ("inference V2", "decode stage (decode.sh, 2 utts", "voc_inference, one process", "feature extraction",
                 "streaming V2 0.3 s, PyTorch, 8-frame chunks vs offline"):
        assert part in names
    stage = next(r for r in rows if r["row"].startswith("decode stage"))
    assert "ours: 2 jobs" in stage["note"]  # both utterances' jobs ran: each tree's utils/ was found
    stream = next(r for r in rows if r["row"].startswith("streaming"))
    assert "cost " in stream["note"] and "its convolutions alone " in stream["note"]  # the engine's floor
    assert sum(r["row"].startswith("inference") for r in rows) == 3  # fast fp32 (with and without FFT), reference
    for r in rows:
        for key in ("ours", "espnet", "ratio"):
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, (r["row"], key)
        assert r["ratio"] == pytest.approx(r["ours"] / r["espnet"])
    env = result["environment"]
    for key in ("device", "torch", "espnet", "commit", "command"):
        assert env[key]
    text = out_md.read_text()
    assert env["commit"] in text and "python -m benchmarks.run" in text and env["espnet"] in text
    for r in rows:
        assert r["row"] in text and f"**{r['ratio']:.2f}x**" in text


def test_skip_takes_commas_and_the_decode_alias():
    assert run.skipped_parts(["training,inference", "features"]) == ["training", "inference", "features"]
    assert run.skipped_parts(["decode"]) == ["decode_stage", "decode_process"]
    with pytest.raises(SystemExit):
        run.main(["--skip", "training,decoding"])


def test_training_rows_are_required_unless_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "benchmarks.training", None)  # as if the module were missing
    with pytest.raises(SystemExit, match="--skip training"):
        run.main(["--device", "cpu", "--skip", "inference", "decode", "features"])
