"""The scoring CLI: outputs, RESULTS.md rows, plots, and clean failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_hifigan.bin import voc_score
from espnet_hifigan.evaluation.metrics import DEFAULT_METRICS, higher_is_better
from espnet_hifigan.evaluation.metrics.signal import resample

REPO_ROOT = Path(__file__).resolve().parents[1]
UTTS = ("LJ001-0003", "LJ001-0004", "LJ001-0005")
CROP_SECONDS = 2.0
NOISE_SNR_DB = 20.0
VOCODER_TAIL = 57  # samples: vocoder output is frames * hop, a bit longer than the reference
GEN_FS_OTHER = 16000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def corpus(ljspeech_mini: Path, tmp_path: Path) -> dict:
    """ref.scp with 2 s LJSpeech crops; gen.scp with noisy copies (one at 16 kHz)."""
    rng = np.random.default_rng(0)
    ref_lines, gen_lines = [], []
    for i, utt in enumerate(UTTS):
        wav, fs = sf.read(ljspeech_mini / "wavs" / f"{utt}.wav", dtype="float64")
        wav = wav[: int(CROP_SECONDS * fs)]
        ref_path = tmp_path / "ref" / f"{utt}.wav"
        ref_path.parent.mkdir(exist_ok=True)
        sf.write(ref_path, wav, fs, subtype="PCM_16")
        noise = rng.standard_normal(len(wav))
        noise *= np.sqrt(np.mean(wav**2) / np.mean(noise**2) / 10 ** (NOISE_SNR_DB / 10))
        gen = np.concatenate([wav + noise, np.zeros(VOCODER_TAIL)])
        gen_fs = fs
        if i == len(UTTS) - 1:  # one output at another rate: resampled to the reference's
            gen, gen_fs = resample(gen, fs, GEN_FS_OTHER), GEN_FS_OTHER
        gen_path = tmp_path / "gen" / f"{utt}.wav"
        gen_path.parent.mkdir(exist_ok=True)
        sf.write(gen_path, np.clip(gen, -1, 1), gen_fs, subtype="PCM_16")
        ref_lines.append(f"{utt} {ref_path}\n")
        gen_lines.append(f"{utt} {gen_path}\n")
    # an extra reference without generated audio is skipped, not an error
    ref_lines.append(f"LJ999-0000 {tmp_path / 'ref' / 'missing.wav'}\n")
    (tmp_path / "ref.scp").write_text("".join(ref_lines))
    (tmp_path / "gen.scp").write_text("".join(gen_lines))
    return dict(root=tmp_path, ref_scp=tmp_path / "ref.scp", gen_scp=tmp_path / "gen.scp")


def _args(corpus: dict, out: Path, *extra: str) -> list:
    return ["--ref_scp", str(corpus["ref_scp"]), "--gen_scp", str(corpus["gen_scp"]), "--output_dir", str(out), *extra]


def _data_rows(md: Path) -> list:
    lines = md.read_text().splitlines()
    return [line for line in lines if line.startswith("| ") and not line.startswith("| checkpoint | set |")]


def test_scores_writes_outputs_and_appends_results(corpus):
    root = corpus["root"]
    out, results_md = root / "scoring", root / "exp" / "RESULTS.md"
    timing = root / "timing.json"
    timing.write_text(json.dumps({"rtf": 0.0123, "device": "cpu (2 threads)"}))
    common = ["--results_md", str(results_md), "--set", "eval1", "--num_plots", "2"]
    first = ["--checkpoint", "checkpoint_1000steps.pth", "--timing_json", str(timing)]
    assert voc_score.main(_args(corpus, out, *common, *first)) == 0

    lines = (out / "per_utt.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["utt", *DEFAULT_METRICS]
    assert [line.split("\t")[0] for line in lines[1:]] == sorted(UTTS)
    values = np.array([[float(v) for v in line.split("\t")[1:]] for line in lines[1:]])
    assert np.all(np.isfinite(values))

    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_utterances"] == len(UTTS)
    assert list(summary["metrics"]) == list(DEFAULT_METRICS)
    for name, stats in summary["metrics"].items():
        assert {"mean", "std", "n", "higher_is_better", "unit"} <= set(stats)
        assert stats["n"] == len(UTTS) and stats["higher_is_better"] == higher_is_better(name)
    # 20 dB white noise: clearly degraded but intelligible
    assert 1.0 < summary["metrics"]["pesq"]["mean"] < 3.5
    assert summary["metrics"]["stoi"]["mean"] > 0.9
    assert "mcd" in (out / "summary.md").read_text()

    pngs = sorted((out / "spectrograms").glob("*.png"))
    assert [p.stem for p in pngs] == sorted(UTTS)[:2]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left

    # second run, in two worker processes: same scores, a second row under one header
    out2 = root / "scoring2"
    second = ["--checkpoint", "checkpoint_2000steps.pth", "--nj", "2", "--rtf", "0.5"]
    assert voc_score.main(_args(corpus, out2, *common, *second)) == 0
    assert (out2 / "per_utt.tsv").read_text() == (out / "per_utt.tsv").read_text()
    text = results_md.read_text()
    assert text.count("| checkpoint | set |") == 1
    # The note above the table says which mel each mel metric uses (the corpus' default mel_conf).
    assert text.count("`feats_mel_l1`: L1 of the feature log-mel (log10, 80 Hz to 7600 Hz") == 1
    assert "validation `loss_mel_l1`: L1 of the training loss mel over whole utterances (natural log" in text
    rows = _data_rows(results_md)
    assert len(rows) == 2
    assert "checkpoint_1000steps.pth" in rows[0] and "0.0123" in rows[0] and "cpu (2 threads)" in rows[0]
    assert "checkpoint_2000steps.pth" in rows[1] and "| 0.5 |" in rows[1]

    # another metric set starts a new table rather than misaligning columns
    third = ["--metrics", "mrstft", "--num_plots", "0", "--results_md", str(results_md)]
    assert voc_score.main(_args(corpus, root / "scoring3", *third)) == 0
    assert results_md.read_text().count("| checkpoint | set |") == 2


def _assert_failed_cleanly(proc_or_rc, out: Path, message: str, stderr: str) -> None:
    assert proc_or_rc != 0
    assert message in stderr
    assert not (out / "summary.json").exists() and not (out / "per_utt.tsv").exists()


def test_missing_generated_file_fails_naming_the_utterance(corpus):
    lines = corpus["gen_scp"].read_text().splitlines()
    lines[1] = f"{UTTS[1]} {corpus['root'] / 'gen' / 'nope.wav'}"
    corpus["gen_scp"].write_text("\n".join(lines) + "\n")
    out = corpus["root"] / "scoring"
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_hifigan.bin.voc_score", *_args(corpus, out)],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )
    _assert_failed_cleanly(proc.returncode, out, f"utterance {UTTS[1]}", proc.stderr)
    assert "nope.wav" in proc.stderr and "does not exist" in proc.stderr


def test_generated_utterance_without_reference_fails(corpus, caplog):
    with corpus["gen_scp"].open("a") as f:
        f.write(f"LJ123-4567 {corpus['root'] / 'gen' / (UTTS[0] + '.wav')}\n")
    out = corpus["root"] / "scoring"
    rc = voc_score.main(_args(corpus, out))
    _assert_failed_cleanly(rc, out, "LJ123-4567", caplog.text)
    assert "without a reference" in caplog.text


def test_empty_or_unreadable_audio_fails_before_writing(corpus, caplog):
    empty = corpus["root"] / "gen" / f"{UTTS[0]}.wav"
    sf.write(empty, np.zeros(0), 22050, subtype="PCM_16")
    garbage = corpus["root"] / "gen" / f"{UTTS[2]}.wav"
    garbage.write_bytes(b"not a wav file")
    out = corpus["root"] / "scoring"
    rc = voc_score.main(_args(corpus, out, "--metrics", "mrstft", "--results_md", str(corpus["root"] / "RESULTS.md")))
    _assert_failed_cleanly(rc, out, f"utterance {UTTS[0]}", caplog.text)
    assert "empty" in caplog.text
    assert not (corpus["root"] / "RESULTS.md").exists()
    empty.unlink()
    (corpus["root"] / "gen.scp").write_text(f"{UTTS[2]} {garbage}\n")
    caplog.clear()
    rc = voc_score.main(_args(corpus, out, "--metrics", "mrstft"))
    _assert_failed_cleanly(rc, out, f"utterance {UTTS[2]}", caplog.text)
    assert "cannot be read" in caplog.text


def test_bad_options_fail(corpus, caplog):
    out = corpus["root"] / "scoring"
    assert voc_score.main(_args(corpus, out, "--metrics", "mcd,wer")) == 1
    assert "unknown metric 'wer'" in caplog.text
    with pytest.raises(SystemExit):
        voc_score.main(_args(corpus, out, "--f0_method", "yin"))
    assert not out.exists() or not (out / "summary.json").exists()
