"""Issue 10, training data and config: bad input stops with one clear error, nothing half-written.

One table: every case runs a real CLI (in-process where it can, for speed; ``voc.sh`` as a
subprocess) on a small dump made once per module, then checks the exit status, that the message
names the utterance or file (and what is wrong), and that nothing partial or stale is left while
earlier results stay. Cases cover the items fixed here (feature/audio lengths, truncated WAVs,
resampling counts, short validation utterances, unknown config keys before any stage writes)
and neighbouring bad inputs that were already handled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import yaml
from cli_calls import call

from espnet_hifigan.bin import (
    check_config,
    extract_feats,
    format_wav,
    validate_data_dir,
    voc_train,
)
from espnet_hifigan.train.feature_lengths import LengthError, check_lengths

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
RECIPE = REPO_ROOT / "egs2" / "mini_an4" / "voc1"
FS = 16000


# ----------------------------------------------------------------------------- helpers
def tone(seconds: float, fs: int = FS, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    wav = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return wav if channels == 1 else np.stack([wav] * channels, axis=1)


def write_scp(path: Path, entries: Dict[str, object]) -> Path:
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(entries.items())), encoding="utf-8")
    return path


@dataclass
class Result:
    """What a case observed: exit status, output, paths that must be absent / present."""

    rc: int
    text: str
    absent: List[Path] = field(default_factory=list)
    present: List[Path] = field(default_factory=list)



def make_dump(root: Path, wavs: Dict[str, np.ndarray], fs: int = FS) -> Path:
    """A stage-2/3 dump directory: wav.scp, utt2num_samples, feats.scp, utt2num_frames, feats_conf.yaml."""
    (root / "wav").mkdir(parents=True)
    for utt, wav in wavs.items():
        sf.write(root / "wav" / f"{utt}.wav", wav, fs)
    write_scp(root / "wav.scp", {u: root / "wav" / f"{u}.wav" for u in wavs})
    write_scp(root / "utt2num_samples", {u: len(w) for u, w in wavs.items()})
    rc = extract_feats.main([
        "--train_config", str(DEBUG_CONFIG), "--fs", str(fs), "--wav_scp", str(root / "wav.scp"),
        "--utt2num_samples", str(root / "utt2num_samples"), "--out_ark", str(root / "feats.ark"),
        "--out_scp", str(root / "feats.scp"), "--out_utt2num_frames", str(root / "utt2num_frames"),
        "--write_conf", str(root / "feats_conf.yaml"),
    ])
    assert rc == 0
    return root


def rewrite_feats(dump: Path, utt: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    """Replace one utterance's features in a dump (a new ark/scp pair)."""
    feats = dict(kaldiio.load_scp_sequential(str(dump / "feats.scp")))
    feats[utt] = change(feats[utt])
    (dump / "feats.scp").unlink()
    with kaldiio.WriteHelper(f"ark,scp:{dump / 'feats2.ark'},{dump / 'feats.scp'}") as writer:
        for key in sorted(feats):
            writer(key, feats[key])


def train_argv(train: Path, valid: Path, out: Path) -> List[object]:
    return [
        "--config", DEBUG_CONFIG, "--normalize", "none", "--feats_extract_conf", f"fs={FS}",
        "--train_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
        "--train_data_path_and_name_and_type", f"{train}/feats.scp,feats,kaldi_ark",
        "--valid_data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{valid}/feats.scp,feats,kaldi_ark",
        "--train_shape_file", f"{train}/wav.scp", "--valid_shape_file", f"{valid}/wav.scp",
        "--output_dir", out, "--ngpu", "0", "--max_epoch", "1",
    ]


def bad_config(tmp: Path, edit: Callable[[dict], None]) -> Path:
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    edit(config)
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> Dict[str, Path]:
    """A train dump (4 utterances) and a valid dump (2), made once."""
    root = tmp_path_factory.mktemp("dumps")
    train = make_dump(root / "train", {f"tr{i}": tone(0.5 + 0.1 * i) for i in range(4)})
    valid = make_dump(root / "valid", {f"dv{i}": tone(0.6 + 0.1 * i) for i in range(2)})
    return dict(train=train, valid=valid)


def copy_dumps(dumps: Dict[str, Path], tmp: Path) -> Dict[str, Path]:
    return {name: Path(shutil.copytree(d, tmp / name)) for name, d in dumps.items()}


# ----------------------------------------------------------------------------- the cases
def case_feats_8x_longer(dumps, tmp, caplog, capsys) -> Result:
    """Item 3: features 8x longer than their audio (e.g. another hop) must not train silently."""
    d = copy_dumps(dumps, tmp)
    rewrite_feats(d["train"], "tr2", lambda f: np.repeat(f, 8, axis=0))
    out = tmp / "exp"
    rc, text = call(voc_train.main, train_argv(d["train"], d["valid"], out), caplog, capsys)
    return Result(rc, text, absent=[out / "checkpoint.pth", out / "1epoch.pth"])


def case_feats_3_frames_short(dumps, tmp, caplog, capsys) -> Result:
    """Item 3: beyond the tolerance (2 frames) in the validation set."""
    d = copy_dumps(dumps, tmp)
    rewrite_feats(d["valid"], "dv1", lambda f: f[:-3])
    out = tmp / "exp"
    rc, text = call(voc_train.main, train_argv(d["train"], d["valid"], out), caplog, capsys)
    return Result(rc, text, absent=[out / "checkpoint.pth", out / "1epoch.pth"])


def case_batch_lengths_in_collate(dumps, tmp, caplog, capsys) -> Result:
    """Item 3: what escapes the check before training (e.g. piped audio) stops in the batch."""
    from espnet_hifigan.train.task import VocoderTask

    args = VocoderTask.get_parser().parse_args(["--config", str(DEBUG_CONFIG), "--normalize", "none"])
    collate = VocoderTask.build_collate_fn(args, train=True)
    speech = np.zeros(4096, dtype=np.float32)
    batch = [("utt_ok", dict(speech=speech, feats=np.zeros((17, 80), np.float32))),
             ("utt_8x", dict(speech=speech, feats=np.zeros((17 * 8, 80), np.float32)))]
    try:
        collate(batch)
    except ValueError as e:
        return Result(1, str(e))
    return Result(0, "no error")


def case_short_valid_utterance(dumps, tmp, caplog, capsys) -> Result:
    """Item 11: a validation utterance too short for the full-utterance MR-STFT metric."""
    d = copy_dumps({"train": dumps["train"]}, tmp)
    valid = make_dump(tmp / "valid", {"dv_ok": tone(0.7), "dv_short": tone(0.05)})  # 800 samples
    out = tmp / "exp"
    rc, text = call(voc_train.main, train_argv(d["train"], valid, out), caplog, capsys)
    return Result(rc, text, absent=[out / "checkpoint.pth", out / "1epoch.pth"])


def case_too_short_for_features(dumps, tmp, caplog, capsys) -> Result:
    """Stage 3 minimum (the same function training uses): 300 samples < n_fft // 2 + 1."""
    root = tmp / "short"
    root.mkdir()
    sf.write(root / "u.wav", tone(300 / FS), FS)
    write_scp(root / "wav.scp", {"utt_short": root / "u.wav"})
    rc, text = call(extract_feats.main, [
        "--train_config", DEBUG_CONFIG, "--fs", FS, "--wav_scp", root / "wav.scp",
        "--out_ark", root / "feats.ark", "--out_scp", root / "feats.scp",
        "--out_utt2num_frames", root / "utt2num_frames",
    ], caplog, capsys)
    return Result(rc, text, absent=[root / "feats.ark", root / "feats.scp", root / "utt2num_frames"])


def _format(tmp: Path, wavs: Dict[str, Path], caplog, capsys, *extra) -> Result:
    scp = write_scp(tmp / "in.scp", wavs)
    out = tmp / "out"
    rc, text = call(format_wav.main, [
        "--wav_scp", scp, "--fs", FS, "--out_dir", out, "--out_scp", tmp / "wav.1.scp",
        "--out_utt2num_samples", tmp / "utt2num_samples.1", *extra,
    ], caplog, capsys)
    written = sorted(out.glob("*")) if out.is_dir() else []
    return Result(rc, text + f"\nwritten: {written}", absent=[tmp / "wav.1.scp", tmp / "utt2num_samples.1"])


def case_truncated_wav(dumps, tmp, caplog, capsys) -> Result:
    """Item 4: a WAV whose header promises more samples than the file holds."""
    good, bad = tmp / "good.wav", tmp / "cut.wav"
    sf.write(good, tone(0.5), FS, subtype="PCM_16")
    bad.write_bytes(good.read_bytes()[: 44 + 2 * 3000])
    res = _format(tmp, {"utt_good": good, "utt_cut": bad}, caplog, capsys)
    res.absent += [tmp / "out" / "utt_good.flac", tmp / "out" / "utt_cut.flac"]
    return res


def case_truncated_flac(dumps, tmp, caplog, capsys) -> Result:
    """Already handled: a truncated FLAC fails to decode, naming the utterance."""
    good, bad = tmp / "good.flac", tmp / "cut.flac"
    sf.write(good, tone(0.5), FS)
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    res = _format(tmp, {"utt_good": good, "utt_cut": bad}, caplog, capsys)
    res.absent += [tmp / "out" / "utt_good.flac"]
    return res


def case_resampled_rates_counted(dumps, tmp, caplog, capsys) -> Result:
    """Item 4: audio at other rates is resampled, and the log counts it per rate."""
    wavs = {}
    for utt, rate in (("a", 22050), ("b", 22050), ("c", 8000), ("d", FS)):
        wavs[utt] = tmp / f"{utt}.wav"
        sf.write(wavs[utt], tone(0.3, rate), rate)
    res = _format(tmp, wavs, caplog, capsys)
    return Result(res.rc, res.text, present=[tmp / "wav.1.scp", tmp / "out" / "a.flac"])


def case_missing_wav(dumps, tmp, caplog, capsys) -> Result:
    """Already handled (stage 2): an audio file of wav.scp that does not exist."""
    sf.write(tmp / "here.wav", tone(0.3), FS)
    res = _format(tmp, {"utt_here": tmp / "here.wav", "utt_gone": tmp / "gone.wav"}, caplog, capsys)
    res.absent += [tmp / "out" / "utt_here.flac"]
    return res


def case_multi_channel(dumps, tmp, caplog, capsys) -> Result:
    """Already handled (stage 2): stereo input with --multi_channel error."""
    sf.write(tmp / "st.wav", tone(0.3, channels=2), FS)
    return _format(tmp, {"utt_stereo": tmp / "st.wav"}, caplog, capsys, "--multi_channel", "error")


def case_bad_data_dir(dumps, tmp, caplog, capsys) -> Result:
    """Already handled (stage 1): spk2utt that is not the inverse of utt2spk."""
    data = tmp / "data"
    data.mkdir()
    sf.write(tmp / "x.wav", tone(0.3), FS)
    write_scp(data / "wav.scp", {"s1-u1": tmp / "x.wav", "s1-u2": tmp / "x.wav"})
    write_scp(data / "utt2spk", {"s1-u1": "s1", "s1-u2": "s1"})
    write_scp(data / "spk2utt", {"s1": "s1-u1"})
    rc, text = call(validate_data_dir.main, [data], caplog, capsys)
    return Result(rc, text)


def case_valid_feats_conf_differs(dumps, tmp, caplog, capsys) -> Result:
    """Already handled (stages 4-6): the valid dump's features were made with other settings."""
    d = copy_dumps(dumps, tmp)
    conf = yaml.safe_load((d["valid"] / "feats_conf.yaml").read_text())
    conf["fmax"] = 8000
    (d["valid"] / "feats_conf.yaml").write_text(yaml.safe_dump(conf))
    rc, text = call(extract_feats.main, [
        "--train_config", DEBUG_CONFIG, "--fs", FS, "--check_conf",
        d["train"] / "feats_conf.yaml", d["valid"] / "feats_conf.yaml",
    ], caplog, capsys)
    return Result(rc, text)


def _check_config(tmp: Path, edit: Callable[[dict], None], caplog, capsys) -> Result:
    config = bad_config(tmp, edit)
    rc, text = call(check_config.main, ["--config", config, "--feats_extract_conf", f"fs={FS}"], caplog, capsys)
    return Result(rc, text)


def case_unknown_generator_key(dumps, tmp, caplog, capsys) -> Result:
    """Item 13: a misspelt key inside generator_conf."""
    return _check_config(tmp, lambda c: c["generator_conf"].update(pre_kernal_size=7), caplog, capsys)


def case_unknown_feats_extract_key(dumps, tmp, caplog, capsys) -> Result:
    """Item 13: a misspelt key inside feats_extract_conf."""
    return _check_config(tmp, lambda c: c["feats_extract_conf"].update(n_mel=80), caplog, capsys)


def case_unknown_model_key(dumps, tmp, caplog, capsys) -> Result:
    """Item 13: a misspelt key inside model_conf."""
    return _check_config(tmp, lambda c: c["model_conf"].update(lambda_mels=45.0), caplog, capsys)


def case_unknown_nested_discriminator_key(dumps, tmp, caplog, capsys) -> Result:
    """Item 13: a misspelt key one level deeper (discriminator_conf.period_discriminator_params)."""
    return _check_config(
        tmp, lambda c: c["discriminator_conf"]["period_discriminator_params"].update(kernel=5), caplog, capsys
    )


def case_unknown_top_level_key(dumps, tmp, caplog, capsys) -> Result:
    """Already handled (ESPnet's parser): a misspelt top-level key."""
    return _check_config(tmp, lambda c: c.update(max_epochs=3), caplog, capsys)


def case_recipe_keeps_stats(dumps, tmp, caplog, capsys) -> Result:
    """Item 13 in the recipe: voc.sh --stage 4 stops before stage 4 removes the old statistics."""
    recipe = tmp / "voc1"
    recipe.mkdir()
    for item in RECIPE.iterdir():
        if item.name not in ("data", "dump", "exp", "downloads"):
            os.symlink(item.resolve(), recipe / item.name)
    for name, dset in (("train", "tr"), ("valid", "dv")):  # good dumps: stage 4 would start
        shutil.copytree(dumps[name], recipe / "dump" / "raw" / dset)
    stats = recipe / "exp" / "voc_stats" / "train" / "feats_stats.npz"
    stats.parent.mkdir(parents=True)
    stats.write_bytes(b"earlier statistics")
    config = bad_config(tmp, lambda c: c["generator_conf"].update(pre_kernal_size=7))
    proc = subprocess.run(
        ["./voc.sh", "--stage", "4", "--stop_stage", "5", "--ngpu", "0", "--fs", str(FS),
         "--train_set", "tr", "--valid_set", "dv", "--train_config", str(config)],
        cwd=recipe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, check=False,
    )
    return Result(proc.returncode, proc.stdout, absent=[recipe / "exp" / "voc_train"], present=[stats])


@dataclass
class Case:
    run: Callable[..., Result]
    rc: int
    expect: Sequence[str]


CASES = {
    # fixed here
    "feats_8x_longer": Case(case_feats_8x_longer, 1, ["tr2", "feature frames", "samples"]),
    "feats_3_frames_short": Case(case_feats_3_frames_short, 1, ["dv1", "feats_length_tolerance=2"]),
    "batch_lengths_in_collate": Case(case_batch_lengths_in_collate, 1, ["utt_8x", "136 feature frames", "4096"]),
    "short_valid_utterance": Case(case_short_valid_utterance, 1, ["dv_short", "800 samples", "validate_full_utt"]),
    "too_short_for_features": Case(case_too_short_for_features, 1, ["utt_short", "300 samples", "n_fft=1024"]),
    "truncated_wav": Case(case_truncated_wav, 1, ["utt_cut", "cut.wav", "truncated", "3000"]),
    "resampled_rates_counted": Case(case_resampled_rates_counted, 0, ["2 from 22050 Hz", "1 from 8000 Hz"]),
    "unknown_generator_key": Case(case_unknown_generator_key, 1, ["bad.yaml", "generator_conf", "pre_kernal_size"]),
    "unknown_feats_extract_key": Case(case_unknown_feats_extract_key, 1, ["bad.yaml", "feats_extract_conf", "n_mel'"]),
    "unknown_model_key": Case(case_unknown_model_key, 1, ["bad.yaml", "model_conf", "lambda_mels"]),
    "unknown_nested_discriminator_key": Case(
        case_unknown_nested_discriminator_key, 1, ["bad.yaml", "discriminator_conf.period_discriminator_params.kernel"]
    ),
    "recipe_keeps_stats": Case(case_recipe_keeps_stats, 1, ["bad.yaml", "pre_kernal_size", "nothing was changed"]),
    # already handled
    "truncated_flac": Case(case_truncated_flac, 1, ["utt_cut", "cut.flac", "cannot read audio"]),
    "missing_wav": Case(case_missing_wav, 1, ["utt_gone", "gone.wav", "not found"]),
    "multi_channel": Case(case_multi_channel, 1, ["utt_stereo", "2 channels", "--multi_channel first"]),
    "bad_data_dir": Case(case_bad_data_dir, 1, ["spk2utt", "s1-u2"]),
    "valid_feats_conf_differs": Case(case_valid_feats_conf_differs, 1, ["valid/feats_conf.yaml", "fmax"]),
    "unknown_top_level_key": Case(case_unknown_top_level_key, 2, ["max_epochs", "bad.yaml"]),
}


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_bad_training_data_and_config(name, dumps, tmp_path, caplog, capsys):
    case = CASES[name]
    res = case.run(dumps, tmp_path, caplog, capsys)
    assert res.rc == case.rc, f"exit status {res.rc}, expected {case.rc}:\n{res.text[-3000:]}"
    for text in case.expect:
        assert text in res.text, f"{text!r} not in the output:\n{res.text[-3000:]}"
    for path in res.absent:
        assert not path.exists(), f"{path} was left behind"
    for path in res.present:
        assert path.exists(), f"{path} is gone"


@pytest.mark.parametrize(
    "change, ok",
    [(lambda f: f, True), (lambda f: f[:-2], True), (lambda f: np.concatenate([f, f[:2]]), True),
     (lambda f: f[:-3], False), (lambda f: np.concatenate([f, f[:3]]), False)],
    ids=["equal", "2_short", "2_long", "3_short", "3_long"],
)
def test_length_tolerance(change, ok, dumps, tmp_path):
    """The tolerance is model_conf feats_length_tolerance (default 2 frames), both ways."""
    d = copy_dumps(dumps, tmp_path)
    rewrite_feats(d["train"], "tr1", change)
    config = dict(yaml.safe_load(DEBUG_CONFIG.read_text()), **{
        "feats_extract_conf": dict(yaml.safe_load(DEBUG_CONFIG.read_text())["feats_extract_conf"], fs=FS),
        "train_data_path_and_name_and_type": [(f"{d['train']}/wav.scp", "speech", "sound"),
                                              (f"{d['train']}/feats.scp", "feats", "kaldi_ark")],
    })
    if ok:
        check_lengths(config)
    else:
        with pytest.raises(LengthError, match="tr1"):
            check_lengths(config)
        config["model_conf"]["feats_length_tolerance"] = 3
        check_lengths(config)
