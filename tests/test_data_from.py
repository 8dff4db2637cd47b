"""A voc1 recipe made with egs2/TEMPLATE/voc1/setup.sh next to a tts1 recipe, trained from its data.

The tts1 recipe is built here in the layout ESPnet's recipes write (``data/<set>/`` with piped
``wav.scp`` entries, ``segments`` with ``-1`` ends, paths relative to the recipe directory); its
audio are LJSpeech wavs (22.05 kHz) of ``../shared/data/ljspeech_mini``, linked, never copied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile as sf
import yaml
from mini_an4 import RUN_TIMEOUT_S
from test_shellcheck import SEVERITY, find_shellcheck

from espnet_hifigan.data.import_dirs import (
    DataImportError,
    absolute_entry,
    import_data_dir,
    sets_of_tts_exp,
    split_by_speakers,
)
from espnet_hifigan.data.validation import validate_data_dir
from espnet_hifigan.evaluation.results import read_results_md

REPO_ROOT = Path(__file__).resolve().parents[1]
SETUP = REPO_ROOT / "egs2" / "TEMPLATE" / "voc1" / "setup.sh"
LJ = REPO_ROOT.parent / "shared" / "data" / "ljspeech_mini" / "wavs"
FS = 22050

# Recordings (wav.scp) and utterances (segments: recording, start, end; -1 = to the end).
RECORDINGS = {  # id -> (LJ file, piped)
    "rec1": ("LJ001-0002.wav", True),
    "rec2": ("LJ001-0008.wav", False),
    "rec3": ("LJ001-0004.wav", True),
}
SETS = {
    "tr_no_dev": {
        "spka-u1": ("rec1", 0.0, -1),
        "spka-u2": ("rec3", 0.0, 1.2),
        "spkb-u3": ("rec2", 0.5, -1),
        "spkb-u4": ("rec3", 2.0, 3.5),
        "spkc-u5": ("rec3", 3.6, -1),
    },
    "dev": {"spka-d1": ("rec3", 1.3, 1.9), "spkb-d2": ("rec2", 0.0, 0.9)},
    "eval1": {"spkb-e1": ("rec1", 0.2, -1)},
}
TTS1_RUN_SH = """#!/usr/bin/env bash
set -euo pipefail
fs=22050
n_fft=1024
n_shift=256
win_length=null

train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"

./tts.sh --lang en --fs "${fs}" --n_fft "${n_fft}" --n_shift "${n_shift}" --win_length "${win_length}" \\
    --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" "$@"
"""


def write_set(data: Path, utts: Dict[str, tuple]) -> None:
    """A Kaldi data directory as a tts1 recipe's local/data.sh writes it (paths relative to the recipe)."""
    data.mkdir(parents=True)
    recs = sorted({rec for rec, _, _ in utts.values()})
    lines = []
    for rec in recs:
        name, piped = RECORDINGS[rec]
        path = f"downloads/wavs/{name}"
        lines.append(f"{rec} cat {path} |" if piped else f"{rec} {path}")
    (data / "wav.scp").write_text("".join(f"{line}\n" for line in lines))
    (data / "segments").write_text("".join(f"{u} {r} {s:.2f} {e:.2f}\n" if e != -1 else f"{u} {r} {s:.2f} -1\n"
                                           for u, (r, s, e) in sorted(utts.items())))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(utts)))
    spk2utt: Dict[str, list] = {}
    for u in sorted(utts):
        spk2utt.setdefault(u.split("-")[0], []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    (data / "text").write_text("".join(f"{u} some text\n" for u in sorted(utts)))


def make_tts1(corpus: Path) -> Path:
    """``corpus/tts1``: run.sh, downloads/ (links to the LJ wavs) and data/<set> of :data:`SETS`."""
    if not LJ.is_dir():
        pytest.skip(f"{LJ} not found (the shared fixtures)")
    tts1 = corpus / "tts1"
    (tts1 / "downloads" / "wavs").mkdir(parents=True)
    for name, _ in RECORDINGS.values():
        os.symlink(LJ / name, tts1 / "downloads" / "wavs" / name)
    (tts1 / "run.sh").write_text(TTS1_RUN_SH)
    for name, utts in SETS.items():
        write_set(tts1 / "data" / name, utts)
    return tts1


def setup_recipe(target: Path, *opts: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SETUP), *opts, str(target)], capture_output=True, text=True, check=False, timeout=120)


def test_run_sh_from_tts1_data_through_stage_8(tmp_path):
    corpus = tmp_path / "egs2" / "mycorpus"
    tts1 = make_tts1(corpus)
    proc = setup_recipe(corpus / "voc1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    voc1 = corpus / "voc1"
    run_sh = (voc1 / "run.sh").read_text()
    assert "data_from=../tts1/data" in run_sh and "train_set=tr_no_dev" in run_sh
    assert 'test_sets="dev eval1"' in run_sh and "fs=22050" in run_sh

    run = subprocess.run(
        ["./run.sh", "--fast", "--ngpu", "0", "--nj", "1", "--inference_nj", "1", "--test_sets", "eval1",
         "--unseen_speakers", "1"],
        cwd=voc1, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:]

    # Stage 1: the sets copied, paths absolute (in the pipes too), segments kept with their -1 ends.
    wav_scp = dict(line.split(" ", 1) for line in (voc1 / "data" / "eval1" / "wav.scp").read_text().splitlines())
    assert wav_scp["rec1"] == f"cat {tts1.resolve()}/downloads/wavs/LJ001-0002.wav |"
    assert "spkb-e1 rec1 0.20 -1" in (voc1 / "data" / "eval1" / "segments").read_text()
    # The held-out speaker: out of the training set, into its own test set.
    unseen = {line.split()[1] for line in (voc1 / "data" / "tr_no_dev_unseen" / "utt2spk").read_text().splitlines()}
    trained = {line.split()[1] for line in (voc1 / "data" / "tr_no_dev" / "utt2spk").read_text().splitlines()}
    assert len(unseen) == 1 and not unseen & trained and unseen | trained == {"spka", "spkb", "spkc"}

    # Stage 2: the -1 segments run to the end of their recording (as soundfile reads it).
    samples = dict(line.split() for line in (voc1 / "dump" / "raw" / "eval1" / "utt2num_samples").read_text().splitlines())
    total = sf.info(str(LJ / "LJ001-0002.wav")).frames
    assert int(samples["spkb-e1"]) == total - round(0.2 * FS)

    # Stages 6-8: every test set decoded and scored (the unseen speakers as their own row); packed.
    exp = voc1 / "exp" / "voc_train_debug"
    rows = {row["set"]: row for row in read_results_md(exp / "RESULTS.md")}
    assert set(rows) == {"eval1", "tr_no_dev_unseen"}
    assert (exp / "packed" / "model.zip").is_file()


def test_setup_reads_the_tts1_recipe_and_refuses_a_non_empty_dir(tmp_path):
    corpus = tmp_path / "egs2" / "vctk"
    (corpus / "tts1").mkdir(parents=True)
    (corpus / "tts1" / "run.sh").write_text(
        "fs=24000\nn_fft=2048\nn_shift=300\nwin_length=1200\nif true; then\n    fs=48000\nfi\n"
        "train_set=tr_no_dev\nvalid_set=dev\ntest_sets=\"dev eval1\"\n"
        './tts.sh --fs "${fs}" --n_fft "${n_fft}" --n_shift "${n_shift}" --win_length "${win_length}" \\\n'
        '    --fmax 12000 --train_set "${train_set}"\n'
    )
    (corpus / "tts1" / "tts.sh").write_text("#!/bin/bash\nfs=16000\nfmin=80\nfmax=7600\nn_mels=80\n")
    proc = setup_recipe(corpus / "voc1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    voc1 = corpus / "voc1"
    values = dict(line.split("  #")[0].split("=", 1) for line in (voc1 / "run.sh").read_text().splitlines()
                  if "=" in line and "# from" in line)
    assert values == {"fs": "24000", "n_fft": "2048", "n_shift": "300", "win_length": "1200", "n_mels": "80",
                      "fmin": "80", "fmax": "12000", "train_set": "tr_no_dev", "valid_set": "dev",
                      "test_sets": '"dev eval1"'}
    for name in ("train.yaml", "train_debug.yaml"):
        conf = yaml.safe_load((voc1 / "conf" / name).read_text())
        assert conf["feats_extract_conf"]["hop_length"] == 300
        assert int(np.prod(conf["generator_conf"]["upsample_rates"])) == 300
    for link in ("voc.sh", "chain.sh", "path.sh", "scripts", "utils"):
        assert (voc1 / link).is_symlink() and not os.path.isabs(os.readlink(voc1 / link))
        assert (voc1 / link).resolve() == (SETUP.parent / link).resolve()
    shellcheck = find_shellcheck()
    for script in (voc1 / "run.sh", voc1 / "local" / "data.sh", voc1 / "cmd.sh"):
        assert os.access(script, os.X_OK) or script.name == "cmd.sh"
        if shellcheck:
            check = subprocess.run([shellcheck, "-x", "-S", SEVERITY, str(script.relative_to(voc1))], cwd=voc1,
                                   capture_output=True, text=True, check=False)
            assert check.returncode == 0, check.stdout
    stub = subprocess.run(["local/data.sh"], cwd=voc1, capture_output=True, text=True, check=False)
    assert stub.returncode != 0 and "not written yet" in stub.stderr

    before = sorted(str(p.relative_to(voc1)) for p in voc1.rglob("*"))
    again = setup_recipe(voc1)
    assert again.returncode != 0 and "nothing was changed" in again.stderr
    assert sorted(str(p.relative_to(voc1)) for p in voc1.rglob("*")) == before
    assert sorted(p.name for p in corpus.iterdir()) == ["tts1", "voc1"]  # no half-made directory left


def test_a_valid_set_missing_from_data_from_is_drawn_across_speakers(tmp_path):
    corpus = tmp_path / "egs2" / "mycorpus"
    tts1 = make_tts1(corpus)
    shutil.rmtree(tts1 / "data" / "dev")
    assert setup_recipe(corpus / "voc1").returncode == 0
    run = subprocess.run(["./run.sh", "--fast", "--ngpu", "0", "--stop_stage", "1"], cwd=corpus / "voc1",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert run.returncode == 0, run.stdout[-6000:]
    data = corpus / "voc1" / "data"
    dev = dict(line.split() for line in (data / "dev" / "utt2spk").read_text().splitlines())
    train = dict(line.split() for line in (data / "tr_no_dev" / "utt2spk").read_text().splitlines())
    assert sorted(dev.values()) == ["spka", "spkb", "spkc"]  # one utterance of each of the 3 speakers
    assert not set(dev) & set(train) and len(dev) + len(train) == len(SETS["tr_no_dev"])


def test_tts_exp_gives_the_sets_and_data_of_its_recipe(tmp_path):
    corpus = tmp_path / "egs2" / "mycorpus"
    tts1 = make_tts1(corpus)
    exp = tts1 / "exp" / "tts_train_raw_phn"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump({
        "feats_extract": "fbank",
        "feats_extract_conf": {"fs": FS, "n_fft": 1024, "hop_length": 256, "win_length": None, "n_mels": 80,
                               "fmin": 80, "fmax": 7600},
        "normalize": None,
        "train_data_path_and_name_and_type": [["dump/raw/tr_no_dev/text", "text", "text"]],
        "valid_data_path_and_name_and_type": [["dump/raw/dev/text", "text", "text"]],
    }))
    # Made without reading tts1: no data_from in run.sh, the local/data.sh stub.
    assert setup_recipe(corpus / "voc1", "--tts1_dir", "none").returncode == 0
    assert 'data_from=""' in (corpus / "voc1" / "run.sh").read_text()
    run = subprocess.run(["./run.sh", "--fast", "--ngpu", "0", "--stop_stage", "1", "--tts_exp", str(exp),
                          "--train_set", "", "--valid_set", "", "--test_sets", "eval1"], cwd=corpus / "voc1",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert run.returncode == 0, run.stdout[-6000:]
    for name in ("tr_no_dev", "dev", "eval1"):
        assert (corpus / "voc1" / "data" / name / "utt2spk").read_text() == (tts1 / "data" / name / "utt2spk").read_text()
    # A config that does not parse stops the run with its name, before anything is written.
    shutil.rmtree(corpus / "voc1" / "data")
    (exp / "config.yaml").write_text("feats_extract: [unclosed\n")
    run = subprocess.run(["./run.sh", "--fast", "--ngpu", "0", "--stop_stage", "1", "--tts_exp", str(exp),
                          "--train_set", "", "--valid_set", ""], cwd=corpus / "voc1",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert run.returncode != 0 and f"{exp}/config.yaml" in run.stdout and "could not be read" in run.stdout, run.stdout[-3000:]
    assert not (corpus / "voc1" / "data").exists()


def test_absolute_entry():
    root = Path(__file__).resolve().parent
    here = str(root)
    assert absolute_entry("data/x.wav", root) == f"{here}/data/x.wav"
    assert absolute_entry("dump/feats.ark:123", root) == f"{here}/dump/feats.ark:123"
    assert absolute_entry("/abs/x.wav", root) == "/abs/x.wav"
    # In a pipe, only the words that are files of the recipe change; options and the rest stay.
    assert absolute_entry("sox conftest.py -t wav - remix 1 |", root) == f"sox {here}/conftest.py -t wav - remix 1 |"
    assert absolute_entry("flac -c -d -s missing.flac |", root) == "flac -c -d -s missing.flac |"


def test_split_draws_across_speakers_and_holds_out_whole_speakers(tmp_path):
    utts = {f"spk{s}-u{i}": ("rec1", 0.1 * i, 0.1 * i + 0.1) for s in "abcd" for i in range(5)}
    data = tmp_path / "data"
    write_set(data / "train", utts)
    speakers, n = split_by_speakers(data / "train", data / "dev", n_utts=4)
    assert n == 4 and speakers == ["spka", "spkb", "spkc", "spkd"]  # one of each, not 4 of one
    speakers, n = split_by_speakers(data / "train", data / "unseen", n_speakers=1)
    assert len(speakers) == 1 and n == 4  # the speaker's 5 minus the one drawn into dev
    for name in ("train", "dev", "unseen"):
        assert validate_data_dir(data / name, check_files=False) == [], name
    left = (data / "train" / "utt2spk").read_text()
    assert len(left.splitlines()) == 12 and speakers[0] not in left
    with pytest.raises(DataImportError, match="cannot hold out 3"):
        split_by_speakers(data / "train", data / "x", n_speakers=3)


def test_import_refuses_own_data_and_missing_sets(tmp_path):
    data = tmp_path / "data"
    write_set(data / "train", {"spka-u1": ("rec1", 0.0, -1)})
    with pytest.raises(DataImportError, match="own data"):
        import_data_dir(data / "train", data / "train")
    assert (data / "train" / "segments").is_file()
    with pytest.raises(DataImportError, match="no wav.scp"):
        import_data_dir(tmp_path / "missing", data / "x")
    assert not (data / "x").exists()


def test_sets_of_tts_exp(tmp_path):
    tts1 = tmp_path / "tts1"
    write_set(tts1 / "data" / "tr_no_dev", {"spka-u1": ("rec1", 0.0, -1)})
    write_set(tts1 / "data" / "dev", {"spka-u2": ("rec1", 0.0, -1)})
    exp = tts1 / "exp" / "tts_train_raw_phn"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump({
        "train_data_path_and_name_and_type": [["dump/raw/tr_no_dev/text", "text", "text"],
                                              ["dump/raw/tr_no_dev/wav.scp", "speech", "sound"]],
        "valid_data_path_and_name_and_type": [["dump/raw/dev/text", "text", "text"]],
    }))
    data_dir, sets = sets_of_tts_exp(exp)
    assert data_dir == (tts1 / "data").resolve() and sets == {"train_set": "tr_no_dev", "valid_set": "dev"}
    shutil.rmtree(tts1 / "data" / "dev")
    assert sets_of_tts_exp(exp)[0] is None
    (exp / "config.yaml").write_text("train_data_path_and_name_and_type: [unclosed\n")
    with pytest.raises(DataImportError, match="config.yaml"):
        sets_of_tts_exp(exp)
