"""Fast tests of the recipe plumbing: utils/*.sh, the data/feature CLIs and the decode merger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_hifigan.bin import extract_feats, format_wav, validate_data_dir
from espnet_hifigan.nets.features import LogMelSpectrogram

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "egs2" / "TEMPLATE" / "voc1"
UTILS = TEMPLATE / "scripts"  # the recipe helpers (utils/ holds the Kaldi-compatible scripts)
KALDI_UTILS = TEMPLATE / "utils"


def sh(*args, cwd=None, check=True, env=None) -> subprocess.CompletedProcess:
    """Run a command, capturing text output."""
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


# ----------------------------------------------------------------------------- parse_options.sh


@pytest.fixture
def po_script(tmp_path) -> Path:
    script = tmp_path / "script.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "# script.sh: a test script.\n"
        "# Usage: script.sh [options] <args>\n"
        "set -euo pipefail\n"
        "foo_bar=1\n"
        "flag=false\n"
        "name=default\n"
        f". {KALDI_UTILS / 'parse_options.sh'}\n"
        'echo "foo_bar=${foo_bar} flag=${flag} name=${name} rest=$*"\n'
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--foo-bar", "3"], "foo_bar=3 flag=false name=default rest="),
        (["--foo_bar=4", "--flag", "true", "a", "b"], "foo_bar=4 flag=true name=default rest=a b"),
        (["--name", "with space", "--", "--not-an-option"], "name=with space rest=--not-an-option"),
        (["--name", ""], "name= rest="),
    ],
)
def test_parse_options_sets_variables(po_script, args, expected):
    out = sh(po_script, *args).stdout
    assert expected in out


def test_parse_options_config_file_is_overridden_by_command_line(po_script, tmp_path):
    conf = tmp_path / "opts.conf"
    conf.write_text("name=from_config\nfoo_bar=7\n")
    out = sh(po_script, "--name", "cli", "--config", conf).stdout
    assert "foo_bar=7" in out and "name=cli" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--unknown", "1"], "invalid option --unknown"),
        (["--flag", "yes"], "expects true or false"),
        (["--foo_bar"], "needs a value"),
        (["--config", "/nonexistent.conf"], "does not exist"),
        (["--PATH", "x"], "invalid option --PATH"),
    ],
)
def test_parse_options_rejects_bad_options(po_script, args, message):
    proc = sh(po_script, *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_parse_options_help_prints_header_comment(po_script):
    proc = sh(po_script, "--help")
    assert proc.returncode == 0
    assert "script.sh: a test script." in proc.stdout
    assert "set -euo" not in proc.stdout


def test_voc_sh_help_lists_stages_and_options():
    proc = sh(TEMPLATE / "voc.sh", "--help", cwd=TEMPLATE)
    assert "Stages" in proc.stdout
    for option in ("--stage", "--nj", "--n_shift", "--train_config", "--inference_model", "--decode_feats_scp"):
        assert option in proc.stdout


# ----------------------------------------------------------------------------- run_local.sh


def test_run_local_job_array_substitutes_job_and_writes_kaldi_logs(tmp_path):
    sh(
        UTILS / "run_local.sh", "--gpu", "1", "--mem", "4G", "--time", "1:00:00",
        "JOB=1:3", tmp_path / "log" / "echo.JOB.log",
        "echo", "arg with spaces", "job-JOB",
    )
    for job in (1, 2, 3):
        log = (tmp_path / "log" / f"echo.{job}.log").read_text()
        lines = log.splitlines()
        assert lines[0].startswith("# echo") and f"job-{job}" in lines[0]
        assert f"arg with spaces job-{job}" in log
        assert "# Accounting: time=" in log
        assert "# Ended (code 0)" in log


def test_run_local_failure_names_the_failing_log(tmp_path):
    proc = sh(
        UTILS / "run_local.sh", "JOB=1:3", tmp_path / "fail.JOB.log",
        "if [ JOB -eq 2 ]; then echo bad input >&2; exit 3; fi",
        check=False,
    )
    assert proc.returncode != 0
    assert f"job 2 failed, see {tmp_path / 'fail.2.log'}" in proc.stderr
    assert "job 1 failed" not in proc.stderr and "job 3 failed" not in proc.stderr
    log = (tmp_path / "fail.2.log").read_text()
    assert "bad input" in log and "# Ended (code 3)" in log


def test_run_local_single_command_failure(tmp_path):
    proc = sh(UTILS / "run_local.sh", tmp_path / "one.log", "false", check=False)
    assert proc.returncode != 0
    assert f"see {tmp_path / 'one.log'}" in proc.stderr


def test_run_local_max_jobs_run_serialises_jobs(tmp_path):
    order = tmp_path / "order"
    sh(
        UTILS / "run_local.sh", "--max_jobs_run", "1", "JOB=1:4", tmp_path / "s.JOB.log",
        f"echo start JOB >> {order}; sleep 0.1; echo end JOB >> {order}",
    )
    expected = [f"{what} {job}" for job in (1, 2, 3, 4) for what in ("start", "end")]
    assert order.read_text().split("\n")[:-1] == expected


def test_run_local_rejects_array_with_single_log(tmp_path):
    proc = sh(UTILS / "run_local.sh", "JOB=1:2", tmp_path / "same.log", "true", check=False)
    assert proc.returncode != 0 and "does not contain 'JOB'" in proc.stderr


# ----------------------------------------------------------------------------- split / spk2utt / subset


def test_split_scp_keeps_order_and_balances(tmp_path):
    scp = tmp_path / "in.scp"
    lines = [f"utt{i} /x/{i}.wav" for i in range(7)]
    scp.write_text("\n".join(lines) + "\n")
    outs = [tmp_path / f"out.{n}" for n in (1, 2, 3)]
    sh(UTILS / "split_scp.sh", scp, *outs)
    parts = [o.read_text().splitlines() for o in outs]
    assert [len(p) for p in parts] == [3, 2, 2]
    assert sum(parts, []) == lines


def test_split_scp_refuses_empty_parts(tmp_path):
    scp = tmp_path / "in.scp"
    scp.write_text("a x\nb y\n")
    proc = sh(UTILS / "split_scp.sh", scp, tmp_path / "1", tmp_path / "2", tmp_path / "3", check=False)
    assert proc.returncode != 0 and "cannot split" in proc.stderr


def test_utt2spk_to_spk2utt(tmp_path):
    """Kaldi's utt2spk_to_spk2utt.pl: speakers in the order of their first utterance."""
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("a-1 a\nb-1 b\na-2 a\n")
    out = sh(KALDI_UTILS / "utt2spk_to_spk2utt.pl", utt2spk).stdout
    assert out == "a a-1 a-2\nb b-1\n"


def make_data_dir(root: Path, n: int = 4, fs: int = 16000, seconds: float = 0.5) -> Path:
    """A valid data dir of ``n`` sine-wave utterances from two speakers."""
    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(fs * seconds)) / fs
    wav_lines, u2s = [], []
    for i in range(n):
        spk = "spkA" if i % 2 == 0 else "spkB"
        utt = f"{spk}-utt{i}"
        path = root / f"{utt}.wav"
        sf.write(path, 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t), fs)
        wav_lines.append(f"{utt} {path}")
        u2s.append(f"{utt} {spk}")
    (root / "wav.scp").write_text("\n".join(sorted(wav_lines)) + "\n")
    (root / "utt2spk").write_text("\n".join(sorted(u2s)) + "\n")
    (root / "text").write_text("".join(f"{line.split()[0]} HELLO\n" for line in sorted(u2s)))
    (root / "spk2utt").write_text(sh(KALDI_UTILS / "utt2spk_to_spk2utt.pl", root / "utt2spk").stdout)
    return root


def test_subset_data_dir_first_last_list(tmp_path):
    src = make_data_dir(tmp_path / "src", n=5)
    utts = [line.split()[0] for line in (src / "utt2spk").read_text().splitlines()]
    # Kaldi's syntax: [--first|--last] <src> <num-utt> <dest>; --utt-list <list> <src> <dest>
    sh(KALDI_UTILS / "subset_data_dir.sh", "--first", src, "3", tmp_path / "first")
    sh(KALDI_UTILS / "subset_data_dir.sh", "--last", src, "1", tmp_path / "last")
    (tmp_path / "list").write_text(f"{utts[3]}\n")
    sh(KALDI_UTILS / "subset_data_dir.sh", "--utt-list", tmp_path / "list", src, tmp_path / "listed")
    for name, expected in (("first", utts[:3]), ("last", utts[-1:]), ("listed", [utts[3]])):
        d = tmp_path / name
        assert [line.split()[0] for line in (d / "wav.scp").read_text().splitlines()] == expected
        assert validate_data_dir.validate_data_dir(d) == []


# ----------------------------------------------------------------------------- validate_data_dir


def test_validate_accepts_a_good_dir(tmp_path):
    assert validate_data_dir.validate_data_dir(make_data_dir(tmp_path / "d")) == []


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (lambda d: (d / "utt2spk").write_text("spkB-utt1 spkB\nspkA-utt0 spkA\nspkA-utt2 spkA\nspkB-utt3 spkB\n"),
         "utt2spk:2: not sorted"),
        (lambda d: (d / "text").write_text((d / "text").read_text() + "spkB-utt3 AGAIN\n"),
         "text:5: duplicate id 'spkB-utt3' (first at line 4)"),
        (lambda d: (d / "spkA-utt2.wav").unlink(), "wav.scp:2: audio file of 'spkA-utt2' not found"),
        (lambda d: (d / "spk2utt").write_text("spkA spkA-utt0\nspkB spkB-utt1 spkB-utt3\n"),
         "spk2utt:1: speaker 'spkA' disagrees"),
        (lambda d: (d / "wav.scp").write_text("\n".join((d / "wav.scp").read_text().splitlines()[:3]) + "\n"),
         "utterance 'spkB-utt3' is missing from"),
        (lambda d: (d / "utt2spk").write_text("spkA-utt0 spkA extra\n"), "utt2spk:1: expected 2 fields"),
        (lambda d: (d / "spk2utt").unlink(), "spk2utt: required file is missing"),
        (lambda d: (d / "text").write_bytes(b"spkA-utt0 \xff\n"), "text:1: not valid UTF-8"),
    ],
)
def test_validate_names_file_and_line(tmp_path, corrupt, expected):
    d = make_data_dir(tmp_path / "d")
    corrupt(d)
    errors = validate_data_dir.validate_data_dir(d)
    assert any(expected in e for e in errors), errors


def test_validate_segments(tmp_path):
    d = make_data_dir(tmp_path / "d", n=2)
    (d / "segments").write_text("spkA-utt0 spkA-utt0 0.0 0.2\nspkB-utt1 nosuchrec 0.3 0.1\n")
    errors = validate_data_dir.validate_data_dir(d)
    assert any("segments:2: recording 'nosuchrec'" in e for e in errors)
    assert any("segments:2: need 0 <= start < end" in e for e in errors)


def test_validate_cli_exit_status(tmp_path, capsys):
    d = make_data_dir(tmp_path / "d")
    assert validate_data_dir.main([str(d)]) == 0
    (d / "utt2spk").write_text("")
    assert validate_data_dir.main([str(d)]) == 1
    assert "utt2spk: file is empty" in capsys.readouterr().err


# ----------------------------------------------------------------------------- format_wav


def run_format(tmp_path, wav_scp: Path, *extra) -> int:
    return format_wav.main([
        "--wav_scp", str(wav_scp), "--fs", "16000", "--out_dir", str(tmp_path / "out"),
        "--out_scp", str(tmp_path / "wav.scp"), "--out_utt2num_samples", str(tmp_path / "u2n"),
        *map(str, extra),
    ])


def test_format_wav_resamples_to_fs(tmp_path):
    src = tmp_path / "a.wav"
    n_in = 22050
    sf.write(src, 0.5 * np.sin(2 * np.pi * 440 * np.arange(n_in) / 22050), 22050)
    (tmp_path / "in.scp").write_text(f"utt1 {src}\n")
    assert run_format(tmp_path, tmp_path / "in.scp") == 0
    utt, path = (tmp_path / "wav.scp").read_text().split()
    wav, rate = sf.read(path)
    assert utt == "utt1" and rate == 16000 and path.endswith(".flac")
    assert len(wav) == 16000
    assert (tmp_path / "u2n").read_text() == "utt1 16000\n"
    # the tone survives resampling: its peak frequency stays at 440 Hz
    spectrum = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spectrum) * rate / len(wav) - 440) < 2


def test_format_wav_multichannel_error_or_first(tmp_path):
    src = tmp_path / "stereo.wav"
    stereo = np.stack([np.full(1600, 0.25), np.full(1600, -0.5)], axis=1)
    sf.write(src, stereo, 16000)
    (tmp_path / "in.scp").write_text(f"utt1 {src}\n")
    assert run_format(tmp_path, tmp_path / "in.scp") == 1
    assert not (tmp_path / "wav.scp").exists()
    assert run_format(tmp_path, tmp_path / "in.scp", "--multi_channel", "first", "--audio_format", "wav") == 0
    wav, _ = sf.read((tmp_path / "wav.scp").read_text().split()[1])
    assert np.allclose(wav, 0.25, atol=1e-4)


def test_format_wav_cuts_segments(tmp_path):
    src = tmp_path / "rec.wav"
    sf.write(src, np.linspace(-0.5, 0.5, 16000), 16000)
    (tmp_path / "in.scp").write_text(f"rec1 {src}\n")
    (tmp_path / "segments").write_text("rec1-a rec1 0.0 0.25\nrec1-b rec1 0.5 1.0\n")
    assert run_format(tmp_path, tmp_path / "in.scp", "--segments", tmp_path / "segments") == 0
    assert (tmp_path / "u2n").read_text() == "rec1-a 4000\nrec1-b 8000\n"


def test_format_wav_bad_utterance_leaves_nothing(tmp_path, caplog):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(1600), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    (tmp_path / "in.scp").write_text(f"utt1 {good}\nutt2 {bad}\n")
    assert run_format(tmp_path, tmp_path / "in.scp") == 1
    assert "utterance 'utt2'" in caplog.text and str(bad) in caplog.text
    assert not (tmp_path / "wav.scp").exists() and not (tmp_path / "u2n").exists()
    assert list((tmp_path / "out").iterdir()) == []


def _format_then_extract(tmp_path, src_scp: Path, *format_opts):
    """Stage 2 then stage 3 on one utterance: the formatted audio and its features."""
    assert run_format(tmp_path, src_scp, "--audio_format", "wav", *format_opts) == 0
    rc = extract_feats.main([
        "--wav_scp", str(tmp_path / "wav.scp"), "--out_ark", str(tmp_path / "feats.ark"),
        "--out_scp", str(tmp_path / "feats.scp"), "--out_utt2num_frames", str(tmp_path / "u2f"),
        "--fs", "16000", "--n_fft", "512", "--hop_length", "128", "--n_mels", "40",
    ])
    assert rc == 0
    wav, _ = sf.read((tmp_path / "wav.scp").read_text().split()[1])
    (_, feats), = kaldiio.load_scp_sequential(str(tmp_path / "feats.scp"))
    return wav, feats


def test_format_wav_peak_normalisation_feeds_the_features(tmp_path):
    src = tmp_path / "quiet.wav"
    t = np.arange(16000) / 16000
    quiet = 0.3 * np.sin(2 * np.pi * 220 * t) * np.hanning(t.size)
    sf.write(src, quiet, 16000, subtype="FLOAT")
    (tmp_path / "in.scp").write_text(f"utt1 {src}\n")
    extractor = LogMelSpectrogram(fs=16000, n_fft=512, hop_length=128, n_mels=40)

    def mel(x):
        return extractor(torch.from_numpy(np.asarray(x, dtype=np.float32))[None])[0][0].numpy()

    off_dir, on_dir = tmp_path / "off", tmp_path / "on"
    off_dir.mkdir(), on_dir.mkdir()
    # Off (the default): the audio is written untouched (up to 16-bit quantisation).
    off_wav, off_feats = _format_then_extract(off_dir, tmp_path / "in.scp")
    np.testing.assert_allclose(off_wav, quiet, atol=1 / 32768)
    # On: the official pretraining's normalize(audio) * 0.95, and stage 3 reads the scaled audio.
    on_wav, on_feats = _format_then_extract(on_dir, tmp_path / "in.scp", "--peak_normalize", "0.95")
    assert np.max(np.abs(on_wav)) == pytest.approx(0.95, abs=1 / 32768)
    np.testing.assert_allclose(on_wav, quiet * (0.95 / np.max(np.abs(quiet))), atol=1 / 32768)
    np.testing.assert_allclose(on_feats, mel(on_wav), atol=1e-4)
    np.testing.assert_allclose(off_feats, mel(off_wav), atol=1e-4)
    # the loudest mel bin (magnitude mel, log10) rises by log10 of the gain
    assert on_feats.max() - off_feats.max() == pytest.approx(np.log10(0.95 / 0.3), abs=1e-3)
    # A bad value is refused by the option parser.
    with pytest.raises(SystemExit):
        run_format(tmp_path, tmp_path / "in.scp", "--peak_normalize", "1.5")


def test_voc_sh_refuses_peak_normalisation_with_a_tts_experiment():
    proc = sh(TEMPLATE / "voc.sh", "--train_set", "a", "--valid_set", "b", "--tts_exp", "/none",
              "--peak_normalize", "0.95", cwd=REPO_ROOT / "egs2" / "mini_an4" / "voc1", check=False)
    assert proc.returncode != 0
    assert "--peak_normalize would change the level of the audio the TTS's mels match" in proc.stderr


# ----------------------------------------------------------------------------- extract_feats


FEATS = ["--fs", "16000", "--n_fft", "512", "--hop_length", "128", "--n_mels", "40", "--fmin", "0", "--fmax", "null"]


def test_extract_feats_frames_and_contract(tmp_path):
    d = make_data_dir(tmp_path / "d", n=3)
    rc = extract_feats.main([
        "--wav_scp", str(d / "wav.scp"), "--out_ark", str(tmp_path / "feats.ark"),
        "--out_scp", str(tmp_path / "feats.scp"), "--out_utt2num_frames", str(tmp_path / "u2f"),
        "--write_conf", str(tmp_path / "feats_conf.yaml"), *FEATS,
    ])
    assert rc == 0
    extractor = LogMelSpectrogram(fs=16000, n_fft=512, hop_length=128, n_mels=40, fmin=0, fmax=None)
    frames = dict(line.split() for line in (tmp_path / "u2f").read_text().splitlines())
    for utt, feats in kaldiio.load_scp_sequential(str(tmp_path / "feats.scp")):
        assert feats.shape == (int(frames[utt]), 40)
        assert feats.shape[0] == extractor.num_frames(8000)
    conf = yaml.safe_load((tmp_path / "feats_conf.yaml").read_text())
    assert conf == extractor.get_parameters()
    # every key is commented
    keys = [line for line in (tmp_path / "feats_conf.yaml").read_text().splitlines() if not line.startswith("#")]
    assert all("  # " in line for line in keys)
    # the stored contract matches the same options and not others
    assert extract_feats.main(["--check_conf", str(tmp_path / "feats_conf.yaml"), *FEATS]) == 0
    changed = [v if v != "128" else "256" for v in FEATS]
    assert extract_feats.main(["--check_conf", str(tmp_path / "feats_conf.yaml"), *changed]) == 1


def test_extract_feats_takes_defaults_from_train_config(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"feats_extract_conf": {"padding": "official", "log_base": None}}))
    rc = extract_feats.main(["--train_config", str(config), "--write_conf", str(tmp_path / "c.yaml"), *FEATS])
    assert rc == 0
    conf = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert conf["padding"] == "official" and conf["log_base"] is None and conf["hop_length"] == 128


@pytest.mark.parametrize("problem", ["empty", "rate", "length"])
def test_extract_feats_bad_utterance_fails_cleanly(tmp_path, caplog, problem):
    d = make_data_dir(tmp_path / "d", n=2)
    u2n = tmp_path / "u2n"
    u2n.write_text("spkA-utt0 8000\nspkB-utt1 8000\n")
    if problem == "empty":
        sf.write(tmp_path / "d" / "spkB-utt1.wav", np.zeros(0), 16000)
        u2n.write_text("spkA-utt0 8000\nspkB-utt1 0\n")
    elif problem == "rate":
        sf.write(tmp_path / "d" / "spkB-utt1.wav", np.zeros(8000), 8000)
    else:
        u2n.write_text("spkA-utt0 8000\nspkB-utt1 7999\n")
    rc = extract_feats.main([
        "--wav_scp", str(d / "wav.scp"), "--utt2num_samples", str(u2n),
        "--out_ark", str(tmp_path / "feats.ark"), "--out_scp", str(tmp_path / "feats.scp"),
        "--out_utt2num_frames", str(tmp_path / "u2f"), *FEATS,
    ])
    assert rc == 1
    assert "utterance 'spkB-utt1'" in caplog.text
    for name in ("feats.ark", "feats.scp", "u2f"):
        assert not (tmp_path / name).exists(), name


# ----------------------------------------------------------------------------- merge_decode_dirs


def test_merge_decode_dirs_moves_wavs_and_sums_timing(tmp_path):
    jobs = []
    for job, utts in ((1, ["b", "a"]), (2, ["c"])):
        d = tmp_path / f"output.{job}"
        (d / "wav").mkdir(parents=True)
        lines = []
        for utt in utts:
            sf.write(d / "wav" / f"{utt}.wav", np.zeros(1600), 16000)
            lines.append(f"{utt} {(d / 'wav' / f'{utt}.wav').resolve()}\n")
        (d / "wav.scp").write_text("".join(lines))
        (d / "timing.json").write_text(json.dumps(
            {"num_utts": len(utts), "audio_sec": 0.1 * len(utts), "compute_sec": 0.01 * job, "rtf": 0.0, "device": "cpu"}
        ))
        jobs.append(d)
    out = tmp_path / "merged"
    proc = sh(sys.executable, UTILS / "merge_decode_dirs.py", "--output_dir", out, *jobs)
    assert "RTF" in proc.stderr
    scp = [line.split() for line in (out / "wav.scp").read_text().splitlines()]
    assert [u for u, _ in scp] == ["a", "b", "c"]
    assert all(Path(p).is_file() and Path(p).parent == out / "wav" for _, p in scp)
    timing = json.loads((out / "timing.json").read_text())
    assert timing["num_utts"] == 3 and timing["num_jobs"] == 2
    assert timing["rtf"] == pytest.approx(0.03 / 0.3)
    assert timing["device"] == "cpu"


def test_merge_decode_dirs_missing_job_output(tmp_path):
    proc = sh(sys.executable, UTILS / "merge_decode_dirs.py", "--output_dir", tmp_path / "m", tmp_path / "nope", check=False)
    assert proc.returncode != 0 and "not found" in proc.stderr


# ----------------------------------------------------------------------------- decode.sh

# The caller's part of scripts/decode.sh (as voc.sh sets it up), then one decode_feats_scp; the job
# commands come from the environment (word-split like recipe_options).
DECODE_DRIVER = """set -euo pipefail
. scripts/common.sh
. scripts/decode.sh
python_arr=("${PYTHON}")
read -r -a decode_cmd_arr <<<"${DECODE_CMD}"
read -r -a cuda_cmd_arr <<<"${CUDA_CMD}"
gpu_inference="${GPU_INFERENCE}"
inference_nj=32
decode_feats_scp test feats.scp out exp/config.yaml exp/model.pth \\
    --assume_raw_features true --check_feats_stats false --log_level WARNING
"""


def decode_recipe(root: Path, utts: int, nproc: int) -> Path:
    """``root`` as a recipe directory (``utils`` linked) with a debug-config experiment of random
    weights, a ``feats.scp`` of ``utts`` short mels and an ``nproc`` that prints ``nproc`` first on PATH."""
    from espnet_hifigan.nets.generator import HiFiGANGenerator

    (root / "scripts").symlink_to(UTILS)
    (root / "utils").symlink_to(KALDI_UTILS)
    config = yaml.safe_load((REPO_ROOT / "conf" / "hifigan_debug.yaml").read_text())
    config["normalize_conf"] = {}
    (root / "exp").mkdir()
    (root / "exp" / "config.yaml").write_text(yaml.safe_dump(config))
    generator = HiFiGANGenerator(in_channels=80, **config["generator_conf"])
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state.update({"normalize.mean": torch.zeros(80), "normalize.std": torch.ones(80)})
    torch.save(state, root / "exp" / "model.pth")
    rng = np.random.default_rng(0)
    with kaldiio.WriteHelper(f"ark,scp:{root}/feats.ark,{root}/feats.scp") as writer:
        for i in range(utts):
            writer(f"utt{i}", rng.standard_normal((10 + i, 80)).astype(np.float32))
    (root / "bin").mkdir()
    fake_nproc = root / "bin" / "nproc"
    fake_nproc.write_text(f"#!/bin/sh\necho {nproc}\n")
    fake_nproc.chmod(0o755)
    return root


def run_decode(root: Path, decode_cmd: str, gpu_inference: bool = False, cuda_cmd: str = "scripts/run_local.sh"):
    env = dict(
        os.environ, PATH=f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO_ROOT),
        PYTHON=sys.executable, DECODE_CMD=decode_cmd, CUDA_CMD=cuda_cmd, GPU_INFERENCE=str(gpu_inference).lower(),
    )  # fmt: skip
    return sh("bash", "-c", DECODE_DRIVER, cwd=root, env=env, check=False)


@pytest.mark.parametrize(
    "nproc, decode_cmd, at_once, jobs, threads",
    [
        (2, "scripts/run_local.sh", 2, 2, 1),  # inference_nj 32, 3 utterances: capped at nproc
        (4, "scripts/run_local.sh --max_jobs_run 1", 1, 1, 4),  # one job at once: one job, every core
    ],
)
def test_decode_on_the_local_cpu_backend_runs_the_jobs_that_fit_with_threads_split(
    tmp_path, nproc, decode_cmd, at_once, jobs, threads
):
    root = decode_recipe(tmp_path, utts=3, nproc=nproc)
    proc = run_decode(root, decode_cmd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        f"local CPU backend: {jobs} jobs x {threads} thread(s) each (min of inference_nj 32, 3 utterances "
        f"and {at_once} jobs at once; nproc {nproc})"
    ) in proc.stdout
    logs = sorted((root / "out" / "logdir").glob("inference.*.log"))
    assert len(logs) == jobs
    for log in logs:
        assert f"--num_threads {threads} " in log.read_text().splitlines()[0]
    assert [line.split()[0] for line in (root / "out" / "wav.scp").read_text().splitlines()] == ["utt0", "utt1", "utt2"]
    timing = json.loads((root / "out" / "timing.json").read_text())
    assert timing["num_jobs"] == jobs and timing["device"] == f"cpu ({threads} threads)"


@pytest.mark.parametrize("backend", ["slurm", "gpu"])
def test_decode_on_slurm_or_a_gpu_keeps_inference_nj_jobs_and_default_threads(tmp_path, backend):
    root = decode_recipe(tmp_path, utts=3, nproc=2)
    # A job command that records its arguments and fails (nothing is decoded); the GPU one is
    # even named run_local.sh: GPU jobs are not capped whatever the backend.
    record = root / "bin" / ("slurm.sh" if backend == "slurm" else "run_local.sh")
    record.write_text(f'#!/bin/sh\necho "$@" >{root}/args\nexit 1\n')
    record.chmod(0o755)
    if backend == "slurm":
        proc = run_decode(root, str(record))
    else:
        proc = run_decode(root, "scripts/run_local.sh", gpu_inference=True, cuda_cmd=str(record))
    assert proc.returncode != 0 and "decoding test failed" in proc.stderr
    args = (root / "args").read_text()
    assert args.startswith("--gpu 1 JOB=1:3 " if backend == "gpu" else "JOB=1:3 ")
    assert "--num_threads" not in args and "local CPU backend" not in proc.stdout
    assert "3 jobs, logs in" in proc.stdout


def test_voc_inference_rejects_negative_num_threads(tmp_path, capsys):
    from espnet_hifigan.bin import voc_inference

    with pytest.raises(SystemExit):
        voc_inference.main(["--model_file", "x.pth", "--feats_scp", "x.scp", "--output_dir", str(tmp_path / "out"),
                            "--num_threads", "-1"])  # fmt: skip
    assert "--num_threads must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- recipes' local/data.sh


def copy_recipe(recipe: Path, dest: Path) -> Path:
    """Link a recipe's files into ``dest`` (outputs then go to ``dest``)."""
    dest.mkdir(parents=True)
    for item in recipe.iterdir():
        if item.name in ("data", "dump", "exp", "downloads"):
            continue
        os.symlink(item.resolve(), dest / item.name)
    return dest


def test_ljspeech_local_corpus_split(ljspeech_mini, tmp_path):
    recipe = copy_recipe(REPO_ROOT / "egs2" / "ljspeech" / "voc1", tmp_path / "lj")
    sh("local/data.sh", "--local_corpus", ljspeech_mini, "--n_dev", "2", "--n_eval", "3", cwd=recipe)
    utts = sorted(p.stem for p in (ljspeech_mini / "wavs").glob("*.wav"))
    expected = {"tr_no_dev": utts[:-5], "dev": utts[-5:-3], "eval1": utts[-3:]}
    for name, ids in expected.items():
        d = recipe / "data" / name
        assert validate_data_dir.validate_data_dir(d) == []
        assert [line.split()[0] for line in (d / "wav.scp").read_text().splitlines()] == ids
        assert set((d / "spk2utt").read_text().split()[:1]) == {"LJ"}


def test_ljspeech_split_too_large_fails(ljspeech_mini, tmp_path):
    recipe = copy_recipe(REPO_ROOT / "egs2" / "ljspeech" / "voc1", tmp_path / "lj")
    proc = sh("local/data.sh", "--local_corpus", ljspeech_mini, "--n_dev", "20", "--n_eval", "20", cwd=recipe, check=False)
    assert proc.returncode != 0 and "cannot give" in proc.stderr


# ----------------------------------------------------------------------------- every core (issue 22, item 4)
def test_num_cpus_ignores_the_thread_variables_path_sh_exports():
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_THREAD_LIMIT="1")
    assert sh(UTILS / "num_cpus.sh", env=env).stdout.strip() == str(len(os.sched_getaffinity(0)))


def test_local_backend_runs_jobs_at_once_with_omp_num_threads_1_exported(tmp_path):
    """path.sh exports OMP_NUM_THREADS=1, which GNU nproc honours: run_local.sh ran one job at a
    time on every machine. Two jobs that each wait for the other can only finish together."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # Each job announces itself, then waits (up to 60 s) until the other has announced itself too.
    job = ("touch here.JOB; for i in $(seq 600); do [ -e here.1 ] && [ -e here.2 ] && break; sleep 0.1; done; "
           "[ -e here.1 ] && [ -e here.2 ] && echo \"met, threads $OMP_NUM_THREADS\"")
    proc = sh(UTILS / "run_local.sh", "--num_threads", "3", "JOB=1:2", "log/meet.JOB.log", job, cwd=tmp_path, env=env,
              check=False)
    assert proc.returncode == 0, proc.stderr + "".join(p.read_text() for p in (tmp_path / "log").glob("*.log"))
    for n in (1, 2):
        log = (tmp_path / "log" / f"meet.{n}.log").read_text()
        assert "met, threads 3" in log, log  # ran at the same time as the other; its threads set explicitly
