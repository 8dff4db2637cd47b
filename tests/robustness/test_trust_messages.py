"""Weak messages made clear (issue 20, class E): the right outcome, now in the right words.

Every case runs a CLI (in process) or a recipe script (a subprocess) on one bad input and returns
its exit status and output; the table says what one line of that output must name (the file,
utterance, key or option, and what to do), and which paths must not exist afterwards (a refusal
writes nothing) or must still exist. The cases that now succeed (a skipped utterance, a metric
undefined for silent audio, stale wavs removed) check their results too.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from cli_calls import call
from mini_an4 import linked_recipe

from espnet_hifigan.bin import check_config, voc_inference, voc_score
from espnet_hifigan.formats.packing import pack_vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
UTILS = REPO_ROOT / "egs2" / "TEMPLATE" / "voc1" / "scripts"
FS = 16000
# Samples of the too-short utterance; the debug config (n_fft 1024, center padding) needs 513.
SHORT = 100
TIMEOUT_S = 600


@dataclass
class Outcome:
    """What a case did: exit status, output, and what must (not) be found afterwards."""

    rc: int
    text: str
    needles: Sequence[str]
    absent: Sequence[Path] = ()
    present: Sequence[Path] = ()
    forbidden: Sequence[str] = ("Traceback",)



def sh(cmd: Sequence[object], cwd: Path, **env: str) -> Tuple[int, str]:
    """A script as a subprocess: (exit status, stdout and stderr interleaved)."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=dict(os.environ, **env), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S, check=False)
    return proc.returncode, proc.stdout


def tab_indented(config: Dict) -> Tuple[str, int]:
    """``config`` as YAML indented with tabs, and the (1-based) line of the first tab."""
    lines = [("\t" + line[2:]) if line.startswith("  ") else line
             for line in yaml.safe_dump(config, sort_keys=False).splitlines()]
    return "\n".join(lines) + "\n", next(i for i, line in enumerate(lines, 1) if line.startswith("\t"))


@pytest.fixture(scope="module")
def env(synthetic_corpus, tmp_path_factory) -> Dict:
    """A debug vocoder (random weights, no normalisation): config.yaml, model.pth, a packed model.zip
    and a wav.scp of two 16 kHz utterances."""
    root = tmp_path_factory.mktemp("trust")
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    config["feats_extract_conf"]["fs"] = FS
    config["normalize"] = None
    config.pop("normalize_conf", None)
    torch.manual_seed(0)
    generator = HiFiGANGenerator(in_channels=80, **config["generator_conf"])
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    exp = root / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save(state, exp / "model.pth")
    packed = pack_vocoder(config, state, root / "packed" / "model.zip")
    wav_scp = root / "wav.scp"
    wav_scp.write_text("".join(f"utt{i} {synthetic_corpus['dir'] / f'utt{i}.wav'}\n" for i in (0, 1)))
    return dict(root=root, config=config, exp=exp, packed=packed, wav_scp=wav_scp, corpus=synthetic_corpus)


def infer(env: Dict, args: Sequence[object], caplog, capsys, model: Optional[Path] = None) -> Tuple[int, str]:
    """voc_inference with the debug vocoder (``model``: a zip, or a checkpoint of exp/config.yaml)."""
    model_args = ["--model_file", model] if model is not None else [
        "--train_config", env["exp"] / "config.yaml", "--model_file", env["exp"] / "model.pth"]
    return call(voc_inference.main, [*model_args, *args], caplog, capsys)


# ------------------------------------------------------------------ item 1: broken model.zip
def _zip(kind: str):
    def case(env, tmp, caplog, capsys) -> Outcome:
        model = tmp / "model.zip"
        data = env["packed"].read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {name: zf.read(name) for name in zf.namelist()}
        if kind == "truncated":
            model.write_bytes(data[: len(data) // 2])
            needles = [str(model), "truncated or corrupt zip"]
        else:
            if kind == "no_config":
                del members["config.yaml"]
                needles = [str(model), "without config.yaml", "model.pth", "pack it again"]
            elif kind == "no_model":
                del members["model.pth"]
                needles = [str(model), "no model.pth", "config.yaml", "pack it again"]
            else:  # a tab-indented config inside the zip
                text, line = tab_indented(env["config"])
                members["config.yaml"] = text.encode()
                needles = [f"{model}:config.yaml", f"line {line}, column 1", "YAML forbids tabs for indentation"]
            with zipfile.ZipFile(model, "w") as zf:
                for name, content in members.items():
                    zf.writestr(name, content)
        out = tmp / "out"
        rc, text = infer(env, ["--wav_scp", env["wav_scp"], "--output_dir", out], caplog, capsys, model)
        return Outcome(rc, text, needles, absent=[out], forbidden=("Traceback", "without its config"))
    return case


def _zip_with_train_config(env, tmp, caplog, capsys) -> Outcome:
    out = tmp / "out"
    rc, text = call(voc_inference.main, ["--train_config", env["exp"] / "config.yaml", "--model_file", env["packed"],
                                         "--wav_scp", env["wav_scp"], "--output_dir", out], caplog, capsys)
    return Outcome(rc, text, [str(env["packed"]), "is a packed model", "without --train_config"], absent=[out])


# ------------------------------------------------------------------ item 2: tabs in a YAML config
def _tabs_train_config(env, tmp, caplog, capsys) -> Outcome:
    text, line = tab_indented(env["config"])
    config = tmp / "config.yaml"
    config.write_text(text)
    out = tmp / "out"
    rc, log = call(voc_inference.main, ["--train_config", config, "--model_file", env["exp"] / "model.pth",
                                        "--wav_scp", env["wav_scp"], "--output_dir", out], caplog, capsys)
    return Outcome(rc, log, [str(config), f"line {line}, column 1", "YAML forbids tabs"], absent=[out])


def _tabs_check_config(env, tmp, caplog, capsys) -> Outcome:
    config = tmp / "train.yaml"
    text, line = tab_indented(yaml.safe_load(DEBUG_CONFIG.read_text()))
    config.write_text(text)
    rc, log = call(check_config.main, ["--config", config, "--feats_extract_conf", f"fs={FS}"], caplog, capsys)
    return Outcome(rc, log, [str(config), f"line {line}, column 1", "YAML forbids tabs"])


# ------------------------------------------------------------------ item 3: invalid numbers
def _bad_number(key: str, value: object):
    def case(env, tmp, caplog, capsys) -> Outcome:
        conf = yaml.safe_load(DEBUG_CONFIG.read_text())
        if key == "segment_size":
            conf["model_conf"]["segment_size"] = value
        else:
            conf[key] = value
        config = tmp / "train.yaml"
        config.write_text(yaml.safe_dump(conf))
        rc, log = call(check_config.main, ["--config", config, "--feats_extract_conf", f"fs={FS}"], caplog, capsys)
        return Outcome(rc, log, [str(config), key, str(value)])
    return case


def _recipe_batch_size_zero(env, tmp, caplog, capsys) -> Outcome:
    """voc.sh stops before stage 5 creates exp/<tag>/ (check_config refuses batch_size: 0)."""
    recipe = linked_recipe(tmp)
    conf = yaml.safe_load(DEBUG_CONFIG.read_text())
    conf["batch_size"] = 0
    config = tmp / "bad.yaml"
    config.write_text(yaml.safe_dump(conf))
    rc, text = sh(["./voc.sh", "--stage", "5", "--stop_stage", "5", "--ngpu", "0", "--fs", FS, "--train_set", "tr",
                   "--valid_set", "dv", "--train_config", config], recipe)
    return Outcome(rc, text, [str(config), "batch_size", "must be an integer >= 1"], absent=[recipe / "exp"])


# ------------------------------------------------------------------ item 4: --ngpu without CUDA
def _launch_train_no_cuda(env, tmp, caplog, capsys) -> Outcome:
    rc, text = sh([UTILS / "launch_train.sh", "--cmd", UTILS / "run_local.sh", "--log", tmp / "exp" / "train.log",
                   "--ngpu", "1", "--", sys.executable, "-m", "espnet_hifigan.bin.voc_train", "--config", "x.yaml"],
                  tmp, CUDA_VISIBLE_DEVICES="")
    return Outcome(rc, text, ["--ngpu 1", "no CUDA device is visible", "--ngpu 0", "GPU node"], absent=[tmp / "exp"])


def _recipe_no_cuda(env, tmp, caplog, capsys) -> Outcome:
    recipe = linked_recipe(tmp)
    rc, text = sh(["./voc.sh", "--stage", "5", "--stop_stage", "5", "--ngpu", "1", "--fs", FS, "--train_set", "tr",
                   "--valid_set", "dv", "--train_config", "conf/train_debug.yaml"], recipe, CUDA_VISIBLE_DEVICES="")
    return Outcome(rc, text, ["no CUDA device is visible", "--ngpu 0"], absent=[recipe / "exp"],
                   forbidden=("Traceback", "training failed"))


# ------------------------------------------------------------------ item 5: too short for its features
def _short_wav(skip: bool):
    def case(env, tmp, caplog, capsys) -> Outcome:
        short = tmp / "short.wav"
        sf.write(short, np.full(SHORT, 0.1, np.float32), FS)
        scp = tmp / "wav.scp"
        scp.write_text(env["wav_scp"].read_text().splitlines()[0] + f"\nshort_utt {short}\n")
        out = tmp / "out"
        extra = ["--skip_bad_utts", "true"] if skip else []
        rc, text = infer(env, ["--wav_scp", scp, "--output_dir", out, *extra], caplog, capsys)
        needles = ["short_utt", f"too short: {SHORT} samples, need at least 513"]
        if skip:
            assert [line.split()[0] for line in (out / "wav.scp").read_text().splitlines()] == ["utt0"]
            assert json.loads((out / "timing.json").read_text())["skipped"] == ["short_utt"]
            return Outcome(rc, text, needles + ["skipped (--skip_bad_utts)"], present=[out / "wav" / "utt0.wav"],
                           absent=[out / "wav" / "short_utt.wav"])
        return Outcome(rc, text, needles + ["--skip_bad_utts true"], absent=[out / "wav.scp", out / "wav"])
    return case


# ------------------------------------------------------------------ item 6: silent audio in scoring
def _silent_scoring(env, tmp, caplog, capsys) -> Outcome:
    wavs = {u: sf.read(env["corpus"]["dir"] / f"{u}.wav", dtype="float32")[0] for u in ("utt0", "utt1", "utt2")}
    silent = {u: np.zeros_like(w) for u, w in wavs.items()}
    pairs = {"utt0": (wavs["utt0"], wavs["utt0"] * 0.9),  # a good pair
             "utt1": (wavs["utt1"], silent["utt1"]),  # silent generated audio
             "utt2": (silent["utt2"], wavs["utt2"])}  # silent reference
    for role, index in (("ref", 0), ("gen", 1)):
        (tmp / role).mkdir()
        for utt, pair in pairs.items():
            sf.write(tmp / role / f"{utt}.wav", pair[index], FS)
        (tmp / f"{role}.scp").write_text("".join(f"{u} {tmp / role / f'{u}.wav'}\n" for u in pairs))
    out = tmp / "scoring"
    rc, text = call(voc_score.main, ["--ref_scp", tmp / "ref.scp", "--gen_scp", tmp / "gen.scp", "--output_dir", out,
                                     "--num_plots", "3"], caplog, capsys)
    if rc == 0:
        rows = [line.split("\t") for line in (out / "per_utt.tsv").read_text().splitlines()]
        pesq = {row[0]: float(row[rows[0].index("pesq")]) for row in rows[1:]}
        assert np.isfinite(pesq["utt0"]) and np.isnan(pesq["utt1"]) and np.isnan(pesq["utt2"]), pesq
        summary = json.loads((out / "summary.json").read_text())["metrics"]["pesq"]
        assert summary["n"] == 1 and summary["n_undefined"] == 2, summary
    return Outcome(rc, text, ["pesq: undefined for 2 utterance(s)", "utt1", "utt2"], present=[out / "summary.json"])


# ------------------------------------------------------------------ item 7: run.sh from elsewhere
def _run_sh_elsewhere(env, tmp, caplog, capsys) -> Outcome:
    recipe = linked_recipe(tmp / "recipe")
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    rc, text = sh([recipe / "run.sh", "--stage", "0"], elsewhere)
    return Outcome(rc, text, ["--stage must be within 1-"], absent=[recipe / "exp", recipe / "data"],
                   forbidden=("No such file",))


# ------------------------------------------------------------------ item 8: stale wavs after a subset
def _redecode_subset(env, tmp, caplog, capsys) -> Outcome:
    out = tmp / "out"
    rc, text = infer(env, ["--wav_scp", env["wav_scp"], "--output_dir", out], caplog, capsys)
    assert rc == 0, text
    (out / "wav" / "notes.txt").write_text("not a wav: kept\n")
    (out / "wav" / "sub.wav").mkdir()  # not a file: kept
    keys = tmp / "keys"
    keys.write_text("utt0\n")
    rc, text = infer(env, ["--wav_scp", env["wav_scp"], "--output_dir", out, "--key_file", keys], caplog, capsys)
    assert (out / "wav.scp").read_text().split()[0::2] == ["utt0"]
    return Outcome(rc, text, ["removed 1 wav(s)", str(out)], absent=[out / "wav" / "utt1.wav"],
                   present=[out / "wav" / "utt0.wav", out / "wav" / "notes.txt", out / "wav" / "sub.wav"])


def _merge_subset(env, tmp, caplog, capsys) -> Outcome:
    out, job = tmp / "decode", tmp / "decode" / "logdir" / "output.1"
    (job / "wav").mkdir(parents=True)
    (out / "wav").mkdir()
    for path in (out / "wav" / "old.wav", out / "wav" / "utt0.wav", job / "wav" / "utt0.wav"):
        sf.write(path, np.zeros(FS // 10, np.float32), FS)
    (out / "wav" / "readme.txt").write_text("kept\n")
    (job / "wav.scp").write_text(f"utt0 {job / 'wav' / 'utt0.wav'}\n")
    (job / "timing.json").write_text(json.dumps(dict(num_utts=1, audio_sec=0.1, compute_sec=0.01, device="cpu")))
    rc, text = sh([sys.executable, UTILS / "merge_decode_dirs.py", "--output_dir", out, job], tmp)
    assert (out / "wav.scp").read_text().split() == ["utt0", str(out / "wav" / "utt0.wav")]
    return Outcome(rc, text, ["removed", "old.wav", "no longer lists"], absent=[out / "wav" / "old.wav"],
                   present=[out / "wav" / "utt0.wav", out / "wav" / "readme.txt"])


CASES = [
    pytest.param(_zip("truncated"), 1, id="model-zip-truncated"),
    pytest.param(_zip("no_config"), 1, id="model-zip-without-config"),
    pytest.param(_zip("no_model"), 1, id="model-zip-without-model-pth"),
    pytest.param(_zip("tabs"), 1, id="model-zip-config-with-tabs"),
    pytest.param(_zip_with_train_config, 1, id="model-zip-given-with-train-config"),
    pytest.param(_tabs_train_config, 1, id="train-config-with-tabs"),
    pytest.param(_tabs_check_config, 1, id="check-config-with-tabs"),
    pytest.param(_bad_number("batch_size", 0), 1, id="check-config-batch-size-0"),
    pytest.param(_bad_number("batch_bins", 0), 1, id="check-config-batch-bins-0"),
    pytest.param(_bad_number("num_iters_per_epoch", -1), 1, id="check-config-num-iters-negative"),
    pytest.param(_bad_number("max_epoch", 0), 1, id="check-config-max-epoch-0"),
    pytest.param(_bad_number("accum_grad", 0), 1, id="check-config-accum-grad-0"),
    pytest.param(_bad_number("segment_size", 0), 1, id="check-config-segment-size-0"),
    pytest.param(_recipe_batch_size_zero, 1, id="recipe-batch-size-0-writes-nothing"),
    pytest.param(_launch_train_no_cuda, 1, id="launch-train-ngpu-without-cuda"),
    pytest.param(_recipe_no_cuda, 1, id="recipe-ngpu-without-cuda-writes-nothing"),
    pytest.param(_short_wav(skip=False), 1, id="copy-synthesis-too-short-wav"),
    pytest.param(_short_wav(skip=True), 0, id="copy-synthesis-too-short-wav-skipped"),
    pytest.param(_silent_scoring, 0, id="scoring-silent-audio-metric-missing"),
    pytest.param(_run_sh_elsewhere, 1, id="run-sh-from-another-directory"),
    pytest.param(_redecode_subset, 0, id="redecode-subset-removes-stale-wavs"),
    pytest.param(_merge_subset, 0, id="merge-subset-removes-stale-wavs"),
]


@pytest.mark.parametrize("case, expected_rc", CASES)
def test_message_names_the_culprit(env, tmp_path, caplog, capsys, case, expected_rc):
    (tmp_path / "case").mkdir()
    outcome = case(env, tmp_path / "case", caplog, capsys)
    tail = outcome.text[-4000:]
    assert outcome.rc == expected_rc, tail
    lines: List[str] = outcome.text.splitlines()
    assert any(all(n in line for n in outcome.needles) for line in lines), f"no line names all of {outcome.needles}:\n{tail}"
    for text in outcome.forbidden:
        assert text not in outcome.text, f"{text!r} in the output:\n{tail}"
    for path in outcome.absent:
        assert not path.exists(), f"{path} was written"
    for path in outcome.present:
        assert path.exists(), f"{path} is missing"
