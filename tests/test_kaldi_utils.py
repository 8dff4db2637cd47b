"""The recipe's utils/: Kaldi's data-directory scripts and job launchers, with Kaldi's names,
options and behaviour (each script on a small data directory against its expected output), and
a recipe whose local/data.sh and cmd.sh are written the Kaldi/ESPnet way."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile as sf

from tests.mini_an4 import expect_success, linked_recipe, run_recipe

REPO_ROOT = Path(__file__).resolve().parents[1]
UTILS = REPO_ROOT / "egs2" / "TEMPLATE" / "voc1" / "utils"


def run(*args, check=True, stdin=None, cwd=None, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, input=stdin, cwd=cwd, env=env,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def write(directory: Path, files: Dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def read(directory: Path) -> Dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir()) if p.is_file()}


# Two speakers, four utterances; "b-2" has no text and "b-3" no audio (fix_data_dir drops both).
MESSY = {
    "wav.scp": "b-2 /d/b2.wav\na-1 cat /d/a1.wav |\nb-1 /d/b1.wav\na-2 /d/a2.wav\n",
    "utt2spk": "b-1 b\na-2 a\na-1 a\nb-2 b\nb-3 b\n",
    "spk2utt": "a a-1\n",
    "text": "a-1 ONE\nb-1 THREE\na-2 TWO  WORDS\nb-3 FOUR\n",
    "utt2num_samples": "a-1 100\na-2 300\nb-1 200\nb-2 400\nb-3 50\n",
    "spk2gender": "a f\nb m\nc m\n",
}


def test_filter_scp(tmp_path):
    scp = tmp_path / "in.scp"
    scp.write_text("a x 1\nb y 2\nc z 3\n")
    ids = tmp_path / "ids"
    ids.write_text("c whatever\na\n")
    assert run(UTILS / "filter_scp.pl", ids, scp).stdout == "a x 1\nc z 3\n"
    assert run(UTILS / "filter_scp.pl", "--exclude", ids, scp).stdout == "b y 2\n"
    (tmp_path / "fields").write_text("y\n")
    assert run(UTILS / "filter_scp.pl", "-f", 2, tmp_path / "fields", stdin=scp.read_text()).stdout == "b y 2\n"
    assert run(UTILS / "filter_scp.pl", "-f", 4, ids, scp, check=False).returncode != 0


def test_speaker_maps():
    spk2utt = run(UTILS / "utt2spk_to_spk2utt.pl", stdin="s2-1 s2\ns1-1 s1\ns2-2 s2\n").stdout
    assert spk2utt == "s2 s2-1 s2-2\ns1 s1-1\n"  # Kaldi: speakers in the order of their first utterance
    assert run(UTILS / "spk2utt_to_utt2spk.pl", stdin=spk2utt).stdout == "s2-1 s2\ns2-2 s2\ns1-1 s1\n"


def test_split_scp(tmp_path):
    scp = tmp_path / "in.scp"
    scp.write_text("".join(f"u{i} x\n" for i in range(7)))
    parts = [tmp_path / f"part.{i}" for i in range(1, 4)]
    run(UTILS / "split_scp.pl", scp, *parts)
    assert [p.read_text() for p in parts] == ["u0 x\nu1 x\nu2 x\n", "u3 x\nu4 x\n", "u5 x\nu6 x\n"]
    assert run(UTILS / "split_scp.pl", "-j", 3, 1, scp).stdout == parts[1].read_text()
    assert run(UTILS / "split_scp.pl", "-j", 3, 3, "--one-based", scp).stdout == parts[2].read_text()
    too_many = run(UTILS / "split_scp.pl", scp, *[tmp_path / f"x.{i}" for i in range(8)], check=False)
    assert too_many.returncode != 0 and "too many pieces" in too_many.stderr


def test_fix_data_dir(tmp_path):
    data = write(tmp_path / "data", MESSY)
    proc = run(UTILS / "fix_data_dir.sh", data)
    assert "kept 3 utterances out of 5" in proc.stdout
    # b-2 has no text, b-3 no wav.scp entry; speaker c has no utterance; spk2utt rebuilt.
    assert read(data) == {
        "spk2gender": "a f\nb m\n",
        "spk2utt": "a a-1 a-2\nb b-1\n",
        "text": "a-1 ONE\na-2 TWO  WORDS\nb-1 THREE\n",
        "utt2num_samples": "a-1 100\na-2 300\nb-1 200\n",
        "utt2spk": "a-1 a\na-2 a\nb-1 b\n",
        "wav.scp": "a-1 cat /d/a1.wav |\na-2 /d/a2.wav\nb-1 /d/b1.wav\n",
    }
    assert read(data / ".backup") == MESSY  # Kaldi keeps the originals in .backup/


def test_fix_data_dir_with_segments_keeps_the_channel_and_drops_unused_recordings(tmp_path):
    data = write(tmp_path / "data", {
        "wav.scp": "r1 /d/r1.wav\nr2 /d/r2.wav\nr3 /d/r3.wav\n",
        "segments": "s-1 r1 0 1.5 1\ns-2 r1 1.5 -1\ns-3 r2 0 1\ns-4 r9 0 1\n",
        "utt2spk": "s-1 s\ns-2 s\ns-3 s\ns-4 s\n",
        "spk2utt": "s s-1 s-2 s-3 s-4\n",
        "text": "s-1 A\ns-2 B\ns-4 D\n",
    })
    run(UTILS / "fix_data_dir.sh", data)
    assert read(data) == {
        "segments": "s-1 r1 0 1.5 1\ns-2 r1 1.5 -1\n",
        "spk2utt": "s s-1 s-2\n",
        "text": "s-1 A\ns-2 B\n",
        "utt2spk": "s-1 s\ns-2 s\n",
        "wav.scp": "r1 /d/r1.wav\n",
    }


def test_fix_data_dir_refuses_speaker_ids_that_do_not_prefix_utterance_ids(tmp_path):
    files = {"utt2spk": "a-1 z\nb-1 a\n", "spk2utt": "a b-1\nz a-1\n", "wav.scp": "a-1 /x\nb-1 /y\n"}
    data = write(tmp_path / "data", files)
    proc = run(UTILS / "fix_data_dir.sh", data, check=False)
    assert proc.returncode != 0 and "prefixes of utterance ids" in proc.stderr
    assert read(data) == files  # nothing changed


def test_copy_data_dir_renames_utterances_and_speakers(tmp_path):
    src = write(tmp_path / "src", {
        "wav.scp": "a-1 sox /d/a 1.wav -t wav - |\nb-1 /d/b1.wav\n",
        "utt2spk": "a-1 a\nb-1 b\n",
        "spk2utt": "a a-1\nb b-1\n",
        "text": "a-1 HI  THERE\nb-1 BYE\n",
    })
    run(UTILS / "copy_data_dir.sh", "--utt-prefix", "c1_", "--spk-prefix", "c1_", "--utt-suffix", "-x", src,
        tmp_path / "dest")
    assert read(tmp_path / "dest") == {
        "spk2utt": "c1_a c1_a-1-x\nc1_b c1_b-1-x\n",
        "text": "c1_a-1-x HI  THERE\nc1_b-1-x BYE\n",  # the rest of each line byte for byte
        "utt2spk": "c1_a-1-x c1_a\nc1_b-1-x c1_b\n",
        "wav.scp": "c1_a-1-x sox /d/a 1.wav -t wav - |\nc1_b-1-x /d/b1.wav\n",
    }


@pytest.fixture
def speakers_dir(tmp_path) -> Path:
    """Seven utterances of two speakers, with lengths."""
    utts = sorted(f"s{i % 2}-u{i}" for i in range(1, 8))
    return write(tmp_path / "src", {
        "utt2spk": "".join(f"{u} {u[:2]}\n" for u in utts),
        "spk2utt": "s0 s0-u2 s0-u4 s0-u6\ns1 s1-u1 s1-u3 s1-u5 s1-u7\n",
        "wav.scp": "".join(f"{u} /d/{u}.wav\n" for u in utts),
        "utt2num_samples": "".join(f"{u} {900 - 100 * int(u[-1])}\n" for u in utts),
    })


@pytest.mark.parametrize("args, expected", [
    ([], ["s0-u2", "s0-u6", "s1-u3"]),  # spread evenly: lines 0, 2, 4 of 7
    (["--first"], ["s0-u2", "s0-u4", "s0-u6"]),
    (["--last"], ["s1-u3", "s1-u5", "s1-u7"]),
    (["--shortest"], ["s0-u6", "s1-u5", "s1-u7"]),
    (["--per-spk"], ["s0-u2", "s0-u4", "s0-u6", "s1-u1", "s1-u3", "s1-u5"]),
])
def test_subset_data_dir_by_count(speakers_dir, tmp_path, args, expected):
    run(UTILS / "subset_data_dir.sh", *args, speakers_dir, 3, tmp_path / "sub")
    sub = read(tmp_path / "sub")
    assert [line.split()[0] for line in sub["utt2spk"].splitlines()] == expected
    assert [line.split()[0] for line in sub["wav.scp"].splitlines()] == expected
    assert [line.split()[0] for line in sub["utt2num_samples"].splitlines()] == expected
    assert sub["spk2utt"] == run(UTILS / "utt2spk_to_spk2utt.pl", tmp_path / "sub" / "utt2spk").stdout


def test_subset_data_dir_by_speakers_and_lists(speakers_dir, tmp_path):
    run(UTILS / "subset_data_dir.sh", "--speakers", speakers_dir, 3, tmp_path / "spk")
    spk2utt = read(tmp_path / "spk")["spk2utt"].splitlines()
    assert spk2utt in (["s0 s0-u2 s0-u4 s0-u6"], ["s1 s1-u1 s1-u3 s1-u5 s1-u7"])  # whole speakers, >= 3 utterances
    (tmp_path / "utts").write_text("s1-u5 x\ns0-u4\n")
    run(UTILS / "subset_data_dir.sh", "--utt-list", tmp_path / "utts", speakers_dir, tmp_path / "listed")
    assert read(tmp_path / "listed")["utt2spk"] == "s0-u4 s0\ns1-u5 s1\n"
    (tmp_path / "spks").write_text("s0\n")
    run(UTILS / "subset_data_dir.sh", "--spk-list", tmp_path / "spks", speakers_dir, tmp_path / "s0")
    assert read(tmp_path / "s0")["wav.scp"] == "s0-u2 /d/s0-u2.wav\ns0-u4 /d/s0-u4.wav\ns0-u6 /d/s0-u6.wav\n"
    proc = run(UTILS / "subset_data_dir.sh", speakers_dir, 8, tmp_path / "too_many", check=False)
    assert proc.returncode != 0 and "more utterances" in proc.stderr


def test_subset_data_dir_keeps_the_recordings_of_its_segments(tmp_path):
    src = write(tmp_path / "src", {
        "wav.scp": "r1 /d/r1.wav\nr2 /d/r2.wav\n",
        "segments": "s-1 r1 0 1\ns-2 r2 0 -1\n",
        "utt2spk": "s-1 s\ns-2 s\n",
        "spk2utt": "s s-1 s-2\n",
    })
    run(UTILS / "subset_data_dir.sh", "--last", src, 1, tmp_path / "sub")
    assert read(tmp_path / "sub") == {"segments": "s-2 r2 0 -1\n", "spk2utt": "s s-2\n", "utt2spk": "s-2 s\n",
                                      "wav.scp": "r2 /d/r2.wav\n"}


def test_combine_data(tmp_path):
    one = write(tmp_path / "one", {"wav.scp": "a-1 /d/a1.wav\n", "utt2spk": "a-1 a\n", "spk2utt": "a a-1\n",
                                   "text": "a-1 A\n"})
    two = write(tmp_path / "two", {"wav.scp": "rec /d/rec.wav\n", "segments": "b-1 rec 0.5 -1\n",
                                   "utt2spk": "b-1 b\n", "spk2utt": "b b-1\n", "text": "b-1 B\n",
                                   "utt2dur": "b-1 1.0\n"})
    proc = run(UTILS / "combine_data.sh", tmp_path / "all", one, two)
    assert "utt2dur is in 1 of the 2 sources" in proc.stderr
    assert read(tmp_path / "all") == {
        # the source without segments gets Kaldi's whole-recording segments (end -1)
        "segments": "a-1 a-1 0 -1\nb-1 rec 0.5 -1\n",
        "spk2utt": "a a-1\nb b-1\n",
        "text": "a-1 A\nb-1 B\n",
        "utt2spk": "a-1 a\nb-1 b\n",
        "wav.scp": "a-1 /d/a1.wav\nrec /d/rec.wav\n",
    }
    shutil.copytree(one, tmp_path / "one_again")
    clash = run(UTILS / "combine_data.sh", tmp_path / "clash", one, tmp_path / "one_again", check=False)
    assert clash.returncode != 0 and "more than one source: a-1" in clash.stderr


def test_validate_data_dir_options(tmp_path):
    data = write(tmp_path / "data", {
        "wav.scp": "a-1 cat /d/a1.wav |\nb-1 /d/b1.wav\n",
        "utt2spk": "a-1 a\nb-1 b\n",
        "spk2utt": "a a-1\nb b-1\n",
        "text": "a-1 A\nb-1 B\n",
    })
    ok = run(UTILS / "validate_data_dir.sh", "--no-feats", data)
    assert "successfully validated" in ok.stdout
    no_feats = run(UTILS / "validate_data_dir.sh", data, check=False)  # Kaldi requires feats.scp unless --no-feats
    assert no_feats.returncode != 0 and "feats.scp" in no_feats.stderr
    (data / "text").write_text("a-1 A\x07\nb-1 B\n")
    bad_text = run(UTILS / "validate_data_dir.sh", "--no-feats", data, check=False)
    assert bad_text.returncode != 0 and "text:1: non-printable" in bad_text.stderr
    run(UTILS / "validate_data_dir.sh", "--no-feats", "--non-print", data)
    (data / "text").unlink()
    run(UTILS / "validate_data_dir.sh", "--no-feats", "--no-text", data)
    (data / "utt2spk").write_text("a-1 z\nb-1 a\n")
    (data / "spk2utt").write_text("a b-1\nz a-1\n")
    unsorted = run(UTILS / "validate_data_dir.sh", "--no-feats", "--no-text", data, check=False)
    assert unsorted.returncode != 0 and "sorted on the speaker" in unsorted.stderr
    run(UTILS / "validate_data_dir.sh", "--no-feats", "--no-text", "--no-spk-sort", data)
    (data / "spk2utt").write_text("a b-1\n")
    broken = run(UTILS / "validate_data_dir.sh", "--no-feats", "--no-text", "--no-spk-sort", data, check=False)
    assert broken.returncode != 0 and "not the inverse of utt2spk" in broken.stderr


def test_kaldi_job_launchers(tmp_path):
    proc = run(UTILS / "run.pl", "--max-jobs-run", 2, "--mem", "2G", "JOB=1:3", tmp_path / "log" / "a.JOB.log",
               "echo", "job", "JOB")
    assert proc.returncode == 0
    assert ["job 2" in (tmp_path / "log" / f"a.{i}.log").read_text() for i in (1, 2, 3)] == [False, True, False]
    failed = run(UTILS / "run.pl", tmp_path / "log" / "f.log", "false", check=False)
    assert failed.returncode != 0 and "f.log" in failed.stderr
    env = dict(os.environ, VOC_QUEUE_BACKEND="local")
    queued = run(UTILS / "queue.pl", "-q", "all.q", "-l", "mem_free=2G", "--mem", "2G", "JOB=1:2",
                 tmp_path / "log" / "q.JOB.log", "echo", "queued", "JOB", env=env)
    assert "SGE is not supported" in queued.stderr and "-q all.q" in queued.stderr
    assert "queued 2" in (tmp_path / "log" / "q.2.log").read_text()
    # slurm.pl is scripts/slurm.sh: its own usage error comes back.
    usage = run(UTILS / "slurm.pl", "--mem", "2G", check=False)
    assert usage.returncode != 0 and "slurm.sh" in usage.stderr


def _wav(path: Path, seconds: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * (150 + 30 * seed) * t) + 0.01 * rng.standard_normal(t.size)), 16000)


DATA_SH = """#!/usr/bin/env bash
# local/data.sh the Kaldi way: a messy data dir, utils/fix_data_dir.sh, utils/filter_scp.pl.
set -euo pipefail
. ./path.sh
audio="{audio}"
mkdir -p data/all
# unsorted, one pipe, one utterance without text (fix_data_dir.sh drops it)
printf '%s\\n' "spk2-c cat ${{audio}}/c.wav |" "spk1-a ${{audio}}/a.wav" "spk1-b ${{audio}}/b.wav" \\
    "spk2-d ${{audio}}/d.wav" "spk2-e ${{audio}}/e.wav" >data/all/wav.scp
printf '%s\\n' spk2-c spk1-a spk2-d spk1-b spk2-e | awk '{{ print $1, substr($1, 1, 4) }}' >data/all/utt2spk
printf '%s\\n' "spk1-a A" "spk1-b B" "spk2-c C" "spk2-d D" >data/all/text
utils/utt2spk_to_spk2utt.pl data/all/utt2spk >data/all/spk2utt
utils/fix_data_dir.sh data/all
echo spk2-d >data/heldout
for set in dev test; do
    utils/subset_data_dir.sh --utt-list data/heldout data/all "data/${{set}}"
done
utils/filter_scp.pl --exclude data/heldout data/all/utt2spk >data/train.list
utils/subset_data_dir.sh --utt-list data/train.list data/all data/train
utils/validate_data_dir.sh --no-feats data/train
"""

CMD_SH = """# a site cmd.sh written for Kaldi/ESPnet
export train_cmd="run.pl --mem 2G"
export cuda_cmd="run.pl --gpu 1"
export decode_cmd="queue.pl --mem 4G"
"""


def test_a_kaldi_style_local_data_and_cmd_run_stages_1_to_3(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    for seed, name in enumerate("abcde"):
        _wav(audio / f"{name}.wav", 0.4 + 0.05 * seed, seed)
    recipe = linked_recipe(tmp_path)
    (recipe / "local").unlink()
    (recipe / "local").mkdir()
    (recipe / "local" / "data.sh").write_text(DATA_SH.format(audio=audio))
    (recipe / "local" / "data.sh").chmod(0o755)
    (recipe / "cmd.sh").unlink()
    (recipe / "cmd.sh").write_text(CMD_SH)
    proc = run_recipe(recipe, "--stage", 1, "--stop_stage", 3)
    expect_success(proc, "./run.sh --stage 1 --stop_stage 3 (Kaldi-style local/data.sh and cmd.sh)")
    assert "fix_data_dir.sh: kept 4 utterances out of 5" in proc.stdout
    train = recipe / "dump" / "raw" / "train"
    assert [line.split()[0] for line in (train / "wav.scp").read_text().splitlines()] == ["spk1-a", "spk1-b", "spk2-c"]
    assert [line.split()[0] for line in (train / "feats.scp").read_text().splitlines()] == ["spk1-a", "spk1-b", "spk2-c"]
    # the piped utterance was read through the pipe: its formatted samples are those of c.wav
    formatted = dict(line.split() for line in (train / "wav.scp").read_text().splitlines())
    np.testing.assert_array_equal(sf.read(recipe / formatted["spk2-c"])[0], sf.read(audio / "c.wav")[0])  # 16-bit both
    logs = list((train / "logdir").rglob("format_wav.*.log"))
    assert logs and all("# Accounting:" in log.read_text() for log in logs)  # run.pl's (run_local.sh's) logs
