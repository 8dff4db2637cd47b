"""A real ESPnet tts1 experiment next to a voc1 recipe, for the tests that chain after a TTS.

Two recipe directories side by side, as ``egs2/<corpus>/{tts1,voc1}`` (built once per session by
the ``tts_recipe`` fixture of ``tests/conftest.py``; used by ``test_chain.py`` and
``test_text_to_wav.py``):

* ``tts1``: a tiny Tacotron 2 (tests/data/tts_tacotron2_tiny.yaml) trained for one epoch on the
  AN4 sample shipped in the espnet wheel with ESPnet's own CLIs (``espnet2.bin.tokenize_text``,
  ``espnet2.bin.tts_train``, ``espnet2.bin.tts_inference``), with ESPnet's recipe-relative paths
  (token list, statistics, ``dump/raw/<set>/wav.scp``, ``exp/``). Only the TTS feature statistics
  are computed in-process, with ESPnet's own ``LogMelFbank`` (what ``--collect_stats`` does,
  minus a 15 s process start).
* ``voc1``: a debug vocoder trained for a few steps with ``espnet_hifigan.bin.voc_train``
  (``exp/voc_debug``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict, List

import numpy as np
import soundfile as sf
import torch
import yaml

from espnet_hifigan.formats.packing import pack_vocoder
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "egs2" / "TEMPLATE" / "voc1"
TTS_CONFIG = REPO_ROOT / "tests" / "data" / "tts_tacotron2_tiny.yaml"
VOC_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
TTS_MODEL = "train.loss.ave.pth"
# The TTS experiment as seen from the vocoder recipe directory.
TTS_EXP = "../tts1/exp/tts_tiny"
TTS_DECODE = "decode_train.loss.ave"
# Tacotron 2 output length of the free-running decode: maxlenratio x input length.
TTS_MAXLENRATIO = 3.0
# tts_inference always vocodes with Griffin-Lim; one iteration keeps it cheap.
GRIFFIN_LIM_ONE_ITER = "griffin_lim_iters: 1\n"
# Weight scale of an untrained generator whose output follows its input (see pack_sensitive_vocoder).
SENSITIVE_INIT_STD = 0.1


def run(cmd: List[str], cwd: Path, check: bool = True, env_extra: Dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, VOC_CMD_BACKEND="local", **(env_extra or {}))
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def py(module: str, *args, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", module, *args], cwd=cwd, check=check)


def an4_tarball() -> Path:
    """The AN4 sample inside the installed espnet wheel (may be absent)."""
    spec = importlib.util.find_spec("espnet")
    return Path(spec.origin).resolve().parent.parent / "egs3" / "mini_an4" / "esp2_asr" / "downloads.tar.gz"


def _prepare_an4(recipe: Path) -> Dict[str, List[str]]:
    """dump/raw/{train,test}/{text,wav.scp,text_shape} from the AN4 sample (wav, 16 kHz).

    The wav.scp paths are relative to ``recipe``, as ESPnet's tts1 recipes write them.
    """
    with tarfile.open(an4_tarball()) as tar:
        tar.extractall(recipe / "downloads", filter="data")
    an4 = recipe / "downloads" / "downloads" / "an4"
    texts = {}
    for name in ("an4_train", "an4_test"):
        for line in (an4 / "etc" / f"{name}.transcription").read_text().splitlines():
            m = re.match(r"(?:<s>)?\s*(.*?)\s*(?:</s>)?\s*\((\S+)\)$", line.strip())
            texts[m.group(2)] = m.group(1)
    sets: Dict[str, List[str]] = {}
    for sph in sorted(an4.glob("wav/*/*/*.sph")):
        if sph.stem not in texts:
            continue
        name = "train" if sph.parts[-3] == "an4_clstk" else "test"
        wav, fs = sf.read(sph)
        out = recipe / "downloads" / "wav" / f"{sph.stem}.wav"
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(out, wav, fs)
        sets.setdefault(name, []).append(sph.stem)
    for name, utts in sets.items():
        d = recipe / "dump" / "raw" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "wav.scp").write_text("".join(f"{u} downloads/wav/{u}.wav\n" for u in utts))
        (d / "text").write_text("".join(f"{u} {texts[u]}\n" for u in utts))
        (d / "text_shape").write_text("".join(f"{u} {len(texts[u])}\n" for u in utts))
    return sets


def _feats_stats(extract, wav_scp: Path, recipe: Path, out: Path) -> None:
    """ESPnet feats_stats.npz (count, sum, sum_square) of ``extract`` over a wav.scp."""
    total = total_sq = None
    count = 0
    for line in wav_scp.read_text().splitlines():
        _, path = line.split(maxsplit=1)
        wav, _ = sf.read(recipe / path, dtype="float32")
        with torch.no_grad():
            feats = extract(torch.from_numpy(wav)[None])[0][0].double().numpy()
        total = feats.sum(0) if total is None else total + feats.sum(0)
        total_sq = (feats**2).sum(0) if total_sq is None else total_sq + (feats**2).sum(0)
        count += feats.shape[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, count=np.array(count), sum=total, sum_square=total_sq)


def build_recipe(root: Path) -> Path:
    """Build ``root/tts1`` (trained tiny TTS, decoded test set) and ``root/voc1`` (debug vocoder).

    Returns:
        The voc1 recipe directory.
    """
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    recipe, tts = root / "voc1", root / "tts1"
    recipe.mkdir()
    tts.mkdir()
    for name in ("scripts", "utils", "path.sh", "cmd.sh", "chain.sh"):
        (recipe / name).symlink_to(TEMPLATE / name)
    _prepare_an4(tts)
    raw = Path("dump/raw")
    all_text = tts / "all_text"
    all_text.write_text((tts / raw / "train" / "text").read_text() + (tts / raw / "test" / "text").read_text())
    py("espnet2.bin.tokenize_text", "--token_type", "char", "--input", all_text, "--field", "2-",
       "--output", "tokens.txt", "--write_vocabulary", "true", "--add_symbol", "<blank>:0",
       "--add_symbol", "<unk>:1", "--add_symbol", "<sos/eos>:-1", cwd=tts)
    tts_conf = yaml.safe_load(TTS_CONFIG.read_text())
    stats = Path("exp/tts_stats/train/feats_stats.npz")
    _feats_stats(LogMelFbank(**tts_conf["feats_extract_conf"]), tts / raw / "train" / "wav.scp", tts, tts / stats)
    py("espnet2.bin.tts_train", "--config", TTS_CONFIG, "--token_list", "tokens.txt",
       "--normalize_conf", f"stats_file={stats}",
       "--train_data_path_and_name_and_type", f"{raw}/train/text,text,text",
       "--train_data_path_and_name_and_type", f"{raw}/train/wav.scp,speech,sound",
       "--valid_data_path_and_name_and_type", f"{raw}/test/text,text,text",
       "--valid_data_path_and_name_and_type", f"{raw}/test/wav.scp,speech,sound",
       "--train_shape_file", f"{raw}/train/text_shape", "--valid_shape_file", f"{raw}/test/text_shape",
       "--output_dir", "exp/tts_tiny", "--ngpu", "0", cwd=tts)
    (tts / "griffin_lim.yaml").write_text(GRIFFIN_LIM_ONE_ITER)
    py("espnet2.bin.tts_inference", "--ngpu", "0", "--train_config", "exp/tts_tiny/config.yaml",
       "--model_file", f"exp/tts_tiny/{TTS_MODEL}", "--vocoder_config", "griffin_lim.yaml",
       "--data_path_and_name_and_type", f"{raw}/test/text,text,text",
       "--maxlenratio", str(TTS_MAXLENRATIO), "--minlenratio", "0.0",
       "--output_dir", f"exp/tts_tiny/{TTS_DECODE}/test", cwd=tts)
    # The vocoder recipe's own audio lists (absolute paths to the same recordings).
    for dset in ("train", "test"):
        lines = (tts / raw / dset / "wav.scp").read_text().splitlines()
        (recipe / raw / dset).mkdir(parents=True)
        (recipe / raw / dset / "wav.scp").write_text(
            "".join(f"{utt} {tts / path}\n" for utt, path in (line.split() for line in lines))
        )
    voc_conf = yaml.safe_load(VOC_CONFIG.read_text())
    voc_stats = Path("exp/voc_stats/train/feats_stats.npz")
    _feats_stats(LogMelSpectrogram(**voc_conf["feats_extract_conf"]), recipe / raw / "train" / "wav.scp", recipe, recipe / voc_stats)
    py("espnet_hifigan.bin.voc_train", "--config", VOC_CONFIG, "--normalize_conf", f"stats_file={voc_stats}",
       "--train_data_path_and_name_and_type", f"{raw}/train/wav.scp,speech,sound",
       "--valid_data_path_and_name_and_type", f"{raw}/test/wav.scp,speech,sound",
       "--train_shape_file", f"{raw}/train/wav.scp", "--valid_shape_file", f"{raw}/test/wav.scp",
       "--output_dir", "exp/voc_debug", "--ngpu", "0", "--max_epoch", "1", cwd=recipe)
    return recipe


def best_checkpoint(exp: Path) -> str:
    """File name of an experiment's best checkpoint by its first ``best_model_criterion``."""
    criteria = yaml.safe_load((exp / "config.yaml").read_text())["best_model_criterion"]
    return f"{criteria[0][0]}.{criteria[0][1]}.best.pth"


def pack_sensitive_vocoder(recipe: Path, outpath: Path, **feats_changes) -> Path:
    """A packed vocoder whose output depends strongly on its input.

    The debug vocoder, trained for three steps, outputs nearly the same waveform whatever the
    mel; this one has the debug experiment's config and normalisation but an untrained generator
    with N(0, SENSITIVE_INIT_STD) weights, so that feeding it other features shows in the audio.

    Args:
        recipe: The voc1 recipe directory of :func:`build_recipe`.
        outpath: The ``model.zip`` to write.
        **feats_changes: Feature settings (``feats_extract_conf``) to claim instead of the debug
            vocoder's, e.g. ``fmax=8000`` for a vocoder that does not fit the TTS.
    """
    exp = recipe / "exp/voc_debug"
    config = yaml.safe_load((exp / "config.yaml").read_text())
    config["feats_extract_conf"].update(feats_changes)
    state = torch.load(exp / best_checkpoint(exp), map_location="cpu")
    torch.manual_seed(0)
    generator = HiFiGANGenerator(in_channels=80, **dict(config["generator_conf"], init_std=SENSITIVE_INIT_STD))
    state.update({f"generator.{k}": v for k, v in generator.state_dict().items()})
    return pack_vocoder(config, state, outpath)
