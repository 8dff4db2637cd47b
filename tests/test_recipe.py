"""End-to-end test of the embedded default recipe (egs2/mini_an4/voc1, stages 1-8, ``--fast``: debug config).

The recipe runs once per module in a temporary directory whose entries link to the recipe's
files, so that data/, dump/ and exp/ are written there and the repository stays clean. The
tests then check its outputs and re-run single stages (decoding, resumed training, a feature
extraction that must fail).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import yaml
from mini_an4 import copy_prepared, expect_success, run_recipe

from espnet_hifigan.nets.features import LogMelSpectrogram

REPO_ROOT = Path(__file__).resolve().parents[1]
SETS = {"train": 5, "dev": 1, "test": 1}
DECODED_SETS = ("dev", "test")


@pytest.fixture(scope="module")
def recipe(trained_mini_an4, tmp_path_factory) -> Dict:
    """The mini_an4 recipe run through stages 1-8 (a copy of the session's run)."""
    root = copy_prepared(trained_mini_an4, tmp_path_factory.mktemp("mini_an4"))
    output = trained_mini_an4["output"]
    exp = root / "exp" / "voc_train_debug"  # --fast: conf/train_debug.yaml
    config = yaml.safe_load((exp / "config.yaml").read_text())
    decode_dirs = sorted(exp.glob("decode_*"))
    assert len(decode_dirs) == 1, decode_dirs
    return dict(root=root, output=output, exp=exp, config=config, decode=decode_dirs[0])


def read_table(path: Path) -> Dict[str, str]:
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines())


def feats_contract(root: Path, dset: str) -> Dict:
    return yaml.safe_load((root / "dump" / "raw" / dset / "feats_conf.yaml").read_text())


def test_every_stage_logs_start_and_end(recipe):
    for stage in range(1, 9):
        assert f"Stage {stage}: " in recipe["output"] and f"Stage {stage}: finished in" in recipe["output"]
    # log lines carry a timestamp
    assert any(line[:4].isdigit() and line[10] == "T" for line in recipe["output"].splitlines())


def test_data_dirs(recipe):
    for dset, n_utts in SETS.items():
        d = recipe["root"] / "data" / dset
        assert len((d / "wav.scp").read_text().splitlines()) == n_utts
        utt2spk = read_table(d / "utt2spk")
        assert all(utt.startswith(spk + "-") for utt, spk in utt2spk.items())


def test_formatted_audio(recipe):
    for dset, n_utts in SETS.items():
        dump = recipe["root"] / "dump" / "raw" / dset
        wav_scp = read_table(dump / "wav.scp")
        lengths = read_table(dump / "utt2num_samples")
        assert len(wav_scp) == n_utts and wav_scp.keys() == lengths.keys()
        for utt, path in wav_scp.items():
            info = sf.info(recipe["root"] / path)
            assert info.samplerate == 16000 and info.channels == 1
            assert info.frames == int(lengths[utt])


def test_feats_load_and_match_utt2num_frames(recipe):
    for dset in SETS:
        dump = recipe["root"] / "dump" / "raw" / dset
        contract = feats_contract(recipe["root"], dset)
        extractor = LogMelSpectrogram(**contract)
        frames = read_table(dump / "utt2num_frames")
        samples = read_table(dump / "utt2num_samples")
        cwd = os.getcwd()
        os.chdir(recipe["root"])  # scp paths are relative to the recipe directory
        try:
            loaded = dict(kaldiio.load_scp_sequential(str(dump / "feats.scp")))
        finally:
            os.chdir(cwd)
        assert loaded.keys() == frames.keys() == samples.keys()
        for utt, feats in loaded.items():
            assert feats.shape == (int(frames[utt]), contract["n_mels"])
            assert feats.shape[0] == extractor.num_frames(int(samples[utt]))
            assert np.all(np.isfinite(feats))
        assert contract["fs"] == 16000 and contract["hop_length"] == 256


def test_stage3_reports_speed(recipe):
    assert "s of audio per CPU-second" in recipe["output"]


def test_decoded_wavs_have_frames_times_hop_samples(recipe):
    for dset in DECODED_SETS:
        out = recipe["decode"] / dset
        frames = read_table(recipe["root"] / "dump" / "raw" / dset / "utt2num_frames")
        hop = feats_contract(recipe["root"], dset)["hop_length"]
        wav_scp = read_table(out / "wav.scp")
        assert wav_scp.keys() == frames.keys()
        for utt, path in wav_scp.items():
            wav, rate = sf.read(recipe["root"] / path)
            assert rate == 16000
            assert len(wav) == int(frames[utt]) * hop
            assert (recipe["root"] / path).parent == out / "wav"
        timing = yaml.safe_load((out / "timing.json").read_text())
        assert timing["num_utts"] == len(wav_scp)
        assert timing["rtf"] == pytest.approx(timing["compute_sec"] / timing["audio_sec"])
        assert list((out / "logdir").glob("inference.*.log"))


def test_scoring_writes_results(recipe):
    results = recipe["exp"] / "RESULTS.md"
    assert results.is_file()
    text = results.read_text()
    for metric in ("mcd", "log_f0_rmse", "vuv_error", "pesq", "stoi", "mrstft", "feats_mel_l1"):
        assert metric in text
    for dset in DECODED_SETS:
        assert dset in text
        scoring = recipe["decode"] / dset / "scoring"
        assert (scoring / "per_utt.tsv").is_file() and (scoring / "summary.json").is_file()
        pngs = list(scoring.glob("spectrograms/*.png"))
        assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # the validation metric curve over training (one point per ESPnet epoch)
    assert (recipe["exp"] / "images" / "loss_mel_l1.png").is_file()


def test_scoring_writes_listening_pages(recipe):
    exp_page = (recipe["exp"] / "index.html").read_text()
    for dset in DECODED_SETS:
        page = (recipe["decode"] / dset / "index.html").read_text()
        for utt in read_table(recipe["decode"] / dset / "wav.scp"):
            assert f'<tr data-utt="{utt}">' in page
            assert list((recipe["decode"] / dset / "ref").glob(f"{utt}.*"))
        assert f'href="{recipe["decode"].name}/{dset}/index.html"' in exp_page


def test_packed_model_exists_and_decodes(recipe):
    packed = recipe["exp"] / "packed" / "model.zip"
    assert packed.is_file() and packed.stat().st_size > 0
    check = recipe["exp"] / "packed" / "check"
    (utt, path), = read_table(check / "wav.scp").items()
    dset = next(d for d in ("test", "dev") if utt in read_table(recipe["root"] / "dump" / "raw" / d / "utt2num_frames"))
    frames = int(read_table(recipe["root"] / "dump" / "raw" / dset / "utt2num_frames")[utt])
    wav, _ = sf.read(path)
    assert len(wav) == frames * feats_contract(recipe["root"], dset)["hop_length"]
    assert "--model_file" in (check / "inference.log").read_text()
    assert "--train_config" not in (check / "inference.log").read_text().splitlines()[0]


def test_stage8_pack_exports_writes_onnx_next_to_the_packed_model(recipe):
    from espnet_hifigan.core.scp import read_feats_scp
    from espnet_hifigan.export.onnx_vocoder import OnnxVocoder
    from espnet_hifigan.inference.vocoder import Vocoder

    proc = run_recipe(recipe["root"], "--stage", "8", "--stop_stage", "8", "--pack_exports", "onnx")
    expect_success(proc, "./run.sh --stage 8 --stop_stage 8 --pack_exports onnx")
    packed = recipe["exp"] / "packed"
    names = {p.name for p in packed.iterdir()}
    assert {"model.zip", "vocoder.onnx", "export.yaml", "feature_contract.yaml"} <= names
    assert "vocoder.torchscript.pt" not in names
    (utt, feats), = read_feats_scp(packed / "check" / "input" / "feats.scp")
    expected = Vocoder.from_pretrained(packed / "model.zip")(feats)
    assert np.abs(OnnxVocoder(packed)(feats) - expected).max() <= 1e-4


def snapshot(paths) -> Dict[str, int]:
    """mtime (ns) of every file under ``paths``."""
    return {str(f): f.stat().st_mtime_ns for p in paths for f in sorted(p.rglob("*")) if f.is_file()}


def test_stage6_alone_redecodes_without_redoing_earlier_stages(recipe):
    root = recipe["root"]
    before = snapshot([root / "data", root / "dump", root / "exp" / "voc_stats"])
    checkpoints = snapshot([recipe["exp"]])
    decoded = recipe["decode"] / "test" / "wav.scp"
    decoded_mtime = decoded.stat().st_mtime_ns
    proc = run_recipe(root, "--stage", "6", "--stop_stage", "6")
    expect_success(proc, "./run.sh --stage 6 --stop_stage 6")
    for stage in (1, 2, 3, 4, 5, 7, 8):
        assert f"Stage {stage}:" not in proc.stdout
    assert snapshot([root / "data", root / "dump", root / "exp" / "voc_stats"]) == before
    after = snapshot([recipe["exp"]])
    for name in ("checkpoint.pth", "config.yaml", "train.log"):
        key = str(recipe["exp"] / name)
        assert after[key] == checkpoints[key], name
    assert decoded.stat().st_mtime_ns != decoded_mtime


def test_stage5_again_resumes_training(recipe):
    exp = recipe["exp"]
    max_epoch = int(recipe["config"]["max_epoch"])
    proc = run_recipe(
        recipe["root"], "--stage", "5", "--stop_stage", "5", "--train_args", f"--max_epoch {max_epoch + 1}"
    )
    expect_success(proc, "./run.sh --stage 5 --stop_stage 5 (resume)")
    assert "Resuming from" in proc.stdout
    log = (exp / "train.log").read_text()
    assert "The training was resumed using" in log
    assert f"{max_epoch + 1}epoch results" in log and f"{max_epoch}epoch results" not in log
    assert (exp / f"{max_epoch + 1}epoch.pth").is_file()
    assert (exp / "train.1.log").is_file()  # the first run's log is kept


@pytest.mark.parametrize("damage", ["empty", "corrupt"])
def test_stage3_job_failure_names_its_log(recipe, damage):
    """A bad wav in job 2 of stage 3: non-zero exit, the message names job 2's log, no feats."""
    root = recipe["root"]
    src = root / "dump" / "raw" / "train"
    bad_root = root / f"dump_{damage}"
    dest = bad_root / "raw" / "train"
    dest.mkdir(parents=True)
    for name in ("utt2spk", "spk2utt", "utt2num_samples"):
        shutil.copy(src / name, dest / name)
    wav_scp = read_table(src / "wav.scp")
    lines = []
    utts = sorted(wav_scp)
    victim = utts[3]  # 5 utterances in 2 jobs: 3 + 2, so the 4th is in job 2
    for utt in utts:
        copy = dest / Path(wav_scp[utt]).name
        if utt == victim:
            if damage == "empty":
                sf.write(copy, np.zeros(0, dtype=np.float32), 16000, format="FLAC")
            else:
                copy.write_bytes(b"fLaC this is not audio")
        else:
            shutil.copy(root / wav_scp[utt], copy)
        lines.append(f"{utt} {copy.relative_to(root)}\n")
    (dest / "wav.scp").write_text("".join(lines))

    proc = run_recipe(
        root, "--stage", "3", "--stop_stage", "3", "--dumpdir", bad_root.name,
        "--train_set", "train", "--valid_set", "train", "--test_sets", "",
    )
    assert proc.returncode != 0
    job_log = f"{bad_root.name}/raw/train/logdir/extract_feats/extract_feats.2.log"
    assert f"job 2 failed, see {job_log}" in proc.stdout
    assert "extract_feats.1.log" not in proc.stdout
    log = (root / job_log).read_text()
    assert victim in log and "# Ended (code 1)" in log
    assert not (dest / "feats.scp").exists()
    assert not list((dest / "data").glob("feats.*.ark"))
