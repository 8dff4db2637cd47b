"""Decode-side strictness (issue 10): bad features, audio, scps and model files give one clear error.

Every case runs ``voc_inference`` (in process) into an output directory that already holds an
earlier good decode, and checks the exit status, that the error line names the file/utterance,
and that the earlier result is untouched (no partial or stale output).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from cli_calls import ErrorLines, exit_status

from espnet_hifigan.bin import voc_inference
from espnet_hifigan.contract import FeatureContract
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"


class Evil:
    """A pickle that runs a command when loaded without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _feats(scp: Path, **overrides) -> Dict[str, np.ndarray]:
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    extractor = LogMelSpectrogram(**dict(config["feats_extract_conf"], fs=16000, **overrides))
    out = {}
    for line in scp.read_text().splitlines():
        utt, path = line.split()
        wav, _ = sf.read(path, dtype="float32")
        out[utt] = extractor(torch.from_numpy(wav))[0][0].numpy()
    return out


def _write_feats(directory: Path, feats: Dict[str, np.ndarray], contract: bool = True, **contract_overrides) -> Path:
    """An ark/scp of ``feats`` (and a feats_conf.yaml of the debug settings with overrides)."""
    directory.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{directory}/feats.ark,{directory}/feats.scp") as writer:
        for utt, mat in feats.items():
            writer(utt, mat)
    if contract:
        config = yaml.safe_load(DEBUG_CONFIG.read_text())
        params = dict(config["feats_extract_conf"], fs=16000, **contract_overrides)
        FeatureContract.from_logmel(params).save_feats_conf(directory / "feats_conf.yaml")
    return directory / "feats.scp"


@pytest.fixture(scope="module")
def env(synthetic_corpus, tmp_path_factory) -> Dict:
    """A GlobalMVN debug vocoder (random weights, real statistics), good features and a good decode."""
    root = tmp_path_factory.mktemp("rel_decode")
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    config["feats_extract_conf"]["fs"] = 16000
    train = np.concatenate(list(_feats(synthetic_corpus["train_scp"]).values()))
    np.savez(root / "feats_stats.npz", count=np.array(len(train)), sum=train.sum(0), sum_square=(train**2).sum(0))
    config["normalize_conf"] = dict(stats_file=str(root / "feats_stats.npz"))
    torch.manual_seed(0)
    generator = HiFiGANGenerator(in_channels=80, **config["generator_conf"])
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state["normalize.mean"] = torch.from_numpy(train.mean(0)).float()
    state["normalize.std"] = torch.from_numpy(train.std(0)).float()
    exp = root / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save(state, exp / "valid.loss_mel_l1.best.pth")
    valid = _feats(synthetic_corpus["valid_scp"])
    env = dict(root=root, exp=exp, config=config, state=state, valid=valid, corpus=synthetic_corpus,
               good_scp=_write_feats(root / "good", valid))
    previous = root / "previous"
    assert _run(env, ["--feats_scp", str(env["good_scp"])], previous)[0] == 0
    env["previous"] = previous
    return env


def _run(env: Dict, args: List[str], out: Path, model: Path = None) -> Tuple[int, str]:
    """voc_inference in process: (exit status, the ERROR lines)."""
    model = model or env["exp"] / "valid.loss_mel_l1.best.pth"
    cmd = ["--train_config", str(env["exp"] / "config.yaml"), "--model_file", str(model), "--output_dir", str(out),
           *args]
    with ErrorLines() as errors:
        rc = exit_status(voc_inference.main, cmd)
    assert len(errors.lines) <= 1, errors.lines
    return rc, "\n".join(errors.lines)



def _digest(directory: Path) -> Dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- the cases
# Each builder gets (env, case dir) and returns (voc_inference args, model file or None, the
# strings the error line must contain).
Case = Callable[[Dict, Path], Tuple[List[str], object, List[str]]]


def _no_contract(env, d):
    scp = _write_feats(d / "feats", env["valid"], contract=False)
    return ["--feats_scp", str(scp)], None, [str(scp), "--feats_contract", "--assume_raw_features"]


def _ln_features(env, d):  # natural-log features whose contract says log10: the statistics check
    scp = _write_feats(d / "feats", _feats(env["corpus"]["valid_scp"], log_base=None))
    return ["--feats_scp", str(scp)], None, [str(scp), "standard deviations"]


def _normalised_features(env, d):  # GlobalMVN-normalised features declared raw
    mean, std = env["state"]["normalize.mean"].numpy(), env["state"]["normalize.std"].numpy()
    scp = _write_feats(d / "feats", {u: (f - mean) / std for u, f in env["valid"].items()})
    return ["--feats_scp", str(scp)], None, [str(scp), "standard deviations"]


def _fmax_contract(env, d):  # fmax 8000 features against a 7600 vocoder: the contract table
    scp = _write_feats(d / "feats", _feats(env["corpus"]["valid_scp"], fmax=8000), fmax=8000)
    return ["--feats_scp", str(scp)], None, ["fmax", "8000"]


def _bad_values(value: float, frames=None):
    def build(env, d):
        feats = dict(env["valid"])
        bad = feats["utt5"].copy() if frames is None else np.zeros((0, 80), np.float32)
        if frames is None:
            bad[3, 7] = value
        feats["utt5"] = bad
        return ["--feats_scp", str(_write_feats(d / "feats", feats))], None, ["utt5", "--skip_bad_utts"]
    return build


def _duplicate_ids(env, d):
    scp = _write_feats(d / "feats", env["valid"])
    scp.write_text(scp.read_text() + scp.read_text().splitlines()[0] + "\n")
    return ["--feats_scp", str(scp)], None, [str(scp), "utt4", "twice"]


def _duplicate_across_jobs(env, d):  # a split job's own scp is fine, the original repeats an id
    origin = _write_feats(d / "feats", env["valid"])
    job = d / "feats.1.scp"
    job.write_text(origin.read_text().splitlines()[0] + "\n")
    origin.write_text(origin.read_text() + origin.read_text().splitlines()[0] + "\n")
    return ["--feats_scp", str(job), "--origin_scp", str(origin)], None, [str(origin), "utt4", "twice"]


def _missing_ark(env, d):
    scp = _write_feats(d / "feats", env["valid"])
    (d / "feats" / "feats.ark").unlink()
    return ["--feats_scp", str(scp)], None, [str(scp), "utt4", "feats.ark"]


def _malformed_line(env, d):
    scp = _write_feats(d / "feats", env["valid"])
    scp.write_text(scp.read_text() + "lonely_utt\n")
    return ["--feats_scp", str(scp)], None, [f"{scp}:3", "lonely_utt"]


def _key_file_nothing(env, d):
    d.mkdir(parents=True)
    (d / "keys").write_text("nobody\n")
    return ["--feats_scp", str(env["good_scp"]), "--key_file", str(d / "keys")], None, [str(d / "keys"), "matches none"]


def _wav(kind: str):
    def build(env, d):
        d.mkdir(parents=True)
        wav, fs = sf.read(str(env["corpus"]["dir"] / "utt4.wav"), dtype="float32")
        path = d / "bad.wav"
        if kind == "nan":
            wav[100:110] = np.nan
            sf.write(path, wav, fs, subtype="FLOAT")
        elif kind == "stereo":
            sf.write(path, np.stack([wav, wav], 1), fs)
        else:
            sf.write(path, wav, 22050)
        (d / "wav.scp").write_text(f"utt4 {env['corpus']['dir'] / 'utt4.wav'}\nbad_utt {path}\n")
        needle = {"nan": "NaN", "stereo": "channels", "rate": "22050"}[kind]
        return ["--wav_scp", str(d / "wav.scp")], None, ["bad_utt", needle]
    return build


def _model(kind: str):
    def build(env, d):
        d.mkdir(parents=True)
        path = d / "model.pth"
        needles = [str(path)]
        if kind == "text":
            path.write_text("epoch 1: loss 0.3\n")
            needles.append("text file")
        elif kind == "random":
            path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
            needles.append("not a readable PyTorch checkpoint")
        elif kind == "wav":
            shutil.copy(env["corpus"]["dir"] / "utt4.wav", path)
            needles.append("audio file")
        elif kind == "trainer":
            torch.save(dict(model=env["state"], reporter=dict(epoch=1), optimizers=[{}, {}], schedulers=[None, None],
                            scaler=None), path)
            needles += ["resume checkpoint", "valid.loss_mel_l1.best.pth"]
        elif kind == "other_config":
            conf = dict(env["config"]["generator_conf"], upsample_initial_channel=64)
            other = HiFiGANGenerator(in_channels=80, **conf)
            torch.save({f"generator.{k}": v for k, v in other.state_dict().items()}, path)
            needles += ["shape mismatches", "--train_config"]
        elif kind == "missing":
            path = d / "nothing.pth"
            needles = [str(path), "does not exist"]
        else:  # a crafted pickle: refused by weights-only loading, the command never runs
            torch.save({"generator.x": Evil(d / "pwned")}, path)
            needles.append("weights-only")
        return ["--feats_scp", str(env["good_scp"])], path, needles
    return build


CASES = [
    # item 1: features nobody describes; features whose statistics contradict their contract
    pytest.param(_no_contract, 1, id="feats-without-contract"),
    pytest.param(_ln_features, 1, id="natural-log-features-stats-check"),
    pytest.param(_normalised_features, 1, id="normalised-features-stats-check"),
    pytest.param(_fmax_contract, 1, id="fmax-8000-contract-table"),
    # item 2 and 11: NaN/Inf and zero frames
    pytest.param(_bad_values(np.nan), 1, id="nan-in-features"),
    pytest.param(_bad_values(np.inf), 1, id="inf-in-features"),
    pytest.param(_bad_values(0.0, frames=0), 1, id="zero-frame-features"),
    pytest.param(_wav("nan"), 1, id="nan-in-copy-synthesis-wav"),
    # item 5: duplicate ids
    pytest.param(_duplicate_ids, 1, id="duplicate-utt-id"),
    pytest.param(_duplicate_across_jobs, 1, id="duplicate-utt-id-across-split-jobs"),
    # already handled: scp and audio problems
    pytest.param(_missing_ark, 1, id="missing-ark-file"),
    pytest.param(_malformed_line, 1, id="malformed-scp-line"),
    pytest.param(_key_file_nothing, 1, id="key-file-matches-nothing"),
    pytest.param(_wav("stereo"), 1, id="stereo-copy-synthesis-wav"),
    pytest.param(_wav("rate"), 1, id="wrong-rate-copy-synthesis-wav"),
    # item 10 and 14: model files
    pytest.param(_model("text"), 1, id="model-text-file"),
    pytest.param(_model("random"), 1, id="model-random-bytes"),
    pytest.param(_model("wav"), 1, id="model-wav-file"),
    pytest.param(_model("trainer"), 1, id="model-trainer-checkpoint"),
    pytest.param(_model("other_config"), 1, id="model-other-config"),
    pytest.param(_model("missing"), 1, id="model-missing"),
    pytest.param(_model("pickle"), 1, id="model-crafted-pickle"),
]


@pytest.mark.parametrize("build, expected_rc", CASES)
def test_bad_input_one_error_and_earlier_result_kept(env, tmp_path, monkeypatch, build, expected_rc):
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    args, model, needles = build(env, tmp_path / "case")
    out = tmp_path / "decode"
    shutil.copytree(env["previous"], out)
    before = _digest(out)
    rc, error = _run(env, args, out, model)
    assert rc == expected_rc, error
    # One ERROR record, one line (the contract mismatch adds its table of fields).
    assert error and ("\n" not in error or "field | features | vocoder" in error), f"not one error line: {error!r}"
    for needle in needles:
        assert needle in error, f"{needle!r} not in {error!r}"
    assert _digest(out) == before  # the earlier decode untouched, nothing added
    assert not (tmp_path / "case" / "pwned").exists()


def test_crafted_pickle_refused_even_when_torch_is_told_to_trust_pickles(env, tmp_path, monkeypatch):
    # We pass weights_only=True explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot undo it.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    args, model, needles = _model("pickle")(env, tmp_path / "case")
    rc, error = _run(env, args, tmp_path / "decode", model)
    assert rc == 1 and all(n in error for n in needles), error
    assert not (tmp_path / "case" / "pwned").exists()
    assert not (tmp_path / "decode" / "wav.scp").exists()


def test_every_torch_load_is_weights_only():
    # One home for loading users' model files (formats/weights.py: load_weights) and one for
    # verifying the trainer's own resume checkpoints (train/resume.py); both always weights_only=True.
    calls = []
    for path in (REPO_ROOT / "espnet_hifigan").rglob("*.py"):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if "torch.load(" in line and not line.lstrip().startswith(("#", '"', "Every")):
                calls.append((path.name, lineno, line))
    assert sorted(c[0] for c in calls) == ["resume.py", "weights.py"], calls
    assert all("weights_only=True" in c[2] for c in calls), calls


@pytest.mark.parametrize("extra, skipped", [
    pytest.param(["--assume_raw_features", "true"], [], id="declared-raw-features-decode"),
    pytest.param(["--skip_bad_utts", "true"], ["utt5"], id="skip-bad-utts-lists-them"),
    pytest.param(["--check_feats_stats", "false"], [], id="stats-check-disabled"),
])
def test_declared_input_decodes(env, tmp_path, extra, skipped):
    feats = dict(env["valid"])
    if skipped:
        feats["utt5"] = feats["utt5"].copy()
        feats["utt5"][0, 0] = np.nan
    contract = "--assume_raw_features" not in extra
    if "--check_feats_stats" in extra:  # natural-log features, contract saying so is wrong: only the check sees it
        feats = _feats(env["corpus"]["valid_scp"], log_base=None)
    scp = _write_feats(tmp_path / "feats", feats, contract=contract)
    rc, error = _run(env, ["--feats_scp", str(scp), *extra], tmp_path / "out")
    assert rc == 0, error
    decoded = [line.split()[0] for line in (tmp_path / "out" / "wav.scp").read_text().splitlines()]
    assert decoded == [u for u in feats if u not in skipped]
    timing = yaml.safe_load((tmp_path / "out" / "timing.json").read_text())
    assert timing["skipped"] == skipped


def test_training_refuses_feats_without_contract(env, tmp_path):
    scp = _write_feats(tmp_path / "feats", env["valid"], contract=False)
    out = tmp_path / "exp"
    corpus = env["corpus"]
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_hifigan.bin.voc_train", "--config", str(DEBUG_CONFIG), "--normalize", "none",
         "--feats_extract_conf", "fs=16000",
         "--train_data_path_and_name_and_type", f"{corpus['train_scp']},speech,sound",
         "--train_data_path_and_name_and_type", f"{scp},feats,kaldi_ark",
         "--valid_data_path_and_name_and_type", f"{corpus['valid_scp']},speech,sound",
         "--train_shape_file", str(corpus["train_scp"]), "--valid_shape_file", str(corpus["valid_scp"]),
         "--output_dir", str(out), "--ngpu", "0"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and str(scp) in errors[0] and "--assume_raw_features" in errors[0], errors
    assert not out.exists()
