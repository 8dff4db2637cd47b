"""Chaining after a real ESPnet TTS experiment: contract, decoding, teacher forcing, fine-tuning.

Two recipe directories side by side, as ``egs2/<corpus>/{tts1,voc1}`` (built once per session by
``tests/tts_recipe.py``, the ``tts_recipe`` fixture of ``conftest.py``):

* ``tts1``: a tiny Tacotron 2 (tests/data/tts_tacotron2_tiny.yaml) trained for one epoch on the
  AN4 sample shipped in the espnet wheel with ESPnet's own CLIs (``espnet2.bin.tokenize_text``,
  ``espnet2.bin.tts_train``, ``espnet2.bin.tts_inference``), with ESPnet's recipe-relative paths
  (token list, statistics, ``dump/raw/<set>/wav.scp``, ``exp/``). Only the TTS feature statistics
  are computed in-process, with ESPnet's own ``LogMelFbank`` (what ``--collect_stats`` does,
  minus a 15 s process start).
* ``voc1``: a debug vocoder trained for a few steps with ``espnet_hifigan.bin.voc_train``; then
  ``chain.sh --tts_exp ../tts1/exp/tts_tiny`` runs all its stages.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from tts_recipe import (  # the shared tts1 + voc1 recipe (tests/tts_recipe.py)
    TEMPLATE,
    TTS_DECODE,
    TTS_EXP,
    TTS_MAXLENRATIO,
    TTS_MODEL,
    py,
    run,
)
from tts_recipe import best_checkpoint as _best

from espnet_hifigan.contract import ContractMismatch, FeatureContract, discover_contract
from espnet_hifigan.core.scp import read_feats_scp
from espnet_hifigan.inference.vocoder import Vocoder

REPO_ROOT = Path(__file__).resolve().parents[1]
FINETUNE_CONFIG = REPO_ROOT / "conf" / "hifigan_finetune_gta_debug.yaml"
# Feature conversion tolerance (float32 de-normalisation vs ESPnet's own).
DENORM_ATOL = 1.0e-4
# One 16-bit PCM step: decoded wavs go through PCM_16 files.
PCM16_STEP = 1.0 / 32768
# Tacotron 2 with reduction factor 2 emits frames - frames % 2: at most 1 frame short.
REDUCTION_FACTOR = 2
# Audio that is not silence.
SILENCE_LEVEL = 1.0e-3


@pytest.fixture(scope="module")
def recipe(tts_recipe) -> Path:
    """The voc1 recipe directory (debug vocoder) next to tts1 (trained tiny TTS, decoded test set)."""
    return tts_recipe


def chain(recipe: Path, *args, check: bool = True) -> subprocess.CompletedProcess:
    return run(["bash", "chain.sh", "--python", sys.executable, "--inference_nj", "1",
                "--tts_exp", TTS_EXP, *args], cwd=recipe, check=check)


@pytest.fixture(scope="module")
def chained(recipe) -> Path:
    """chain.sh stages 1-5: contract, decode, teacher forcing, fine-tuning, decode again."""
    proc = chain(recipe, "--voc_exp", "exp/voc_debug", "--gta_train_set", "train", "--gta_valid_set", "test",
                 "--finetune_config", FINETUNE_CONFIG, "--gta_max_frame_diff", str(REDUCTION_FACTOR - 1))
    (recipe / "chain.log").write_text(proc.stdout + proc.stderr)
    return recipe


def _one(parent: Path, pattern: str) -> Path:
    """The one directory under ``parent`` matching ``pattern`` (chain.sh keys them by the TTS: <name>_<hash>)."""
    found = sorted(parent.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def _wavs(decode_dir: Path, base: Path | None = None) -> Dict[str, np.ndarray]:
    """Waveforms of a decode dir's wav.scp (relative paths are relative to ``base``)."""
    out = {}
    for line in (decode_dir / "wav.scp").read_text().splitlines():
        utt, path = line.split()
        out[utt], fs = sf.read(path if base is None else base / path)
        assert fs == 16000
    return out


# ------------------------------------------------------------------------------ the TTS itself
def test_tts_experiment_is_real_espnet_output(recipe):
    decode = recipe / TTS_EXP / TTS_DECODE / "test"
    norm = dict(read_feats_scp(decode / "norm/feats.scp"))
    denorm = dict(read_feats_scp(decode / "denorm/feats.scp"))
    assert set(norm) == set(denorm) == {"cen8-fcaw-b", "cen8-mmxg-b"}
    # npy scp with recipe-relative paths, as tts_inference writes them.
    first = (decode / "norm/feats.scp").read_text().split()[1]
    assert first.endswith(".npy") and not Path(first).is_absolute()
    for utt in norm:
        assert norm[utt].shape == denorm[utt].shape and norm[utt].shape[1] == 80
        assert not np.allclose(norm[utt], denorm[utt])


def test_tts_contract_derived_from_its_config(recipe):
    contract = FeatureContract.from_espnet_tts_config(recipe / TTS_EXP / "config.yaml")
    assert (contract.fs, contract.n_fft, contract.hop_length, contract.win_length) == (16000, 1024, 256, 1024)
    assert (contract.fmin, contract.fmax, contract.log_base, contract.padding) == (80.0, 7600.0, 10.0, "center")
    assert contract.normalize is None
    normalized = FeatureContract.from_espnet_tts_config(recipe / TTS_EXP / "config.yaml", normalized=True)
    # The relative stats path of the config is found from the recipe directory.
    assert normalized.normalize.stats_file.endswith("exp/tts_stats/train/feats_stats.npz")
    assert normalized.normalize.sha256 is not None
    assert not contract.compare(FeatureContract.from_train_config(recipe / "exp/voc_debug/config.yaml"))


# ------------------------------------------------------------------------------ chain.sh
def test_chain_decodes_tts_outputs(chained):
    log = (chained / "chain.log").read_text()
    out = _one(chained / "exp/voc_debug", "chain_tts_tiny_*") / f"decode_{_best(chained / 'exp/voc_debug')[:-4]}" / TTS_DECODE / "test"
    wavs = _wavs(out, chained)
    denorm = dict(read_feats_scp(chained / TTS_EXP / TTS_DECODE / "test/denorm/feats.scp"))
    assert set(wavs) == set(denorm)
    for utt, wav in wavs.items():
        assert len(wav) == denorm[utt].shape[0] * 256
        assert np.abs(wav).max() > 0
    # The denorm/ features match the vocoder's contract exactly and were picked.
    assert "denorm/feats.scp; features match the vocoder's contract" in log
    assert FeatureContract.load(out / "feats_contract.yaml").normalize is None


def test_chain_builds_length_reconciled_gta_sets(chained):
    gta = _one(chained / "exp/voc_debug", "chain_tts_tiny_*") / "gta"
    for dset, n in (("train", 5), ("test", 2)):
        feats = dict(read_feats_scp(gta / dset / "feats.scp"))
        tf = dict(read_feats_scp(gta / "tts_inference" / dset / "denorm/feats.scp"))
        wavs = dict(line.split() for line in (gta / dset / "wav.scp").read_text().splitlines())
        assert len(feats) == len(tf) == len(wavs) == n
        for utt, mel in feats.items():
            samples = sf.info(chained / wavs[utt]).frames
            assert mel.shape[0] == samples // 256 + 1  # exact center framing of the audio
            diff = mel.shape[0] - tf[utt].shape[0]
            assert 0 <= diff < REDUCTION_FACTOR  # Tacotron 2 drops frames % r
            np.testing.assert_array_equal(mel[: tf[utt].shape[0]], tf[utt])
            if diff:
                np.testing.assert_array_equal(mel[-diff:], np.repeat(tf[utt][-1:], diff, axis=0))
        report = (gta / dset / "gta_report.tsv").read_text()
        assert report.count("\n") == n + 1
    assert "padded 1" in (gta / "train/gta_report.tsv").read_text()
    assert FeatureContract.load(gta / "train/feature_contract.yaml") == FeatureContract.from_train_config(
        chained / "exp/voc_debug/config.yaml"
    )


def test_chain_finetunes_from_the_pretrained_vocoder(chained):
    pretrained = chained / "exp/voc_debug"
    finetuned = _one(chained / "exp", "voc_debug_gta_tts_tiny_*")
    config = yaml.safe_load((finetuned / "config.yaml").read_text())
    assert config["init_param"] == [str((pretrained / _best(pretrained)).absolute())]
    assert config["optim_conf"]["lr"] == 2.0e-4 and config["optim_conf"]["betas"] == [0.8, 0.99]
    assert config["generator_conf"] == yaml.safe_load((pretrained / "config.yaml").read_text())["generator_conf"]
    assert any(d[0].endswith("gta/train/feats.scp") and d[1] == "feats" for d in config["train_data_path_and_name_and_type"])
    before = torch.load(pretrained / _best(pretrained), map_location="cpu")
    after = torch.load(finetuned / _best(finetuned), map_location="cpu")
    assert before.keys() == after.keys()
    changed = [k for k in before if k.startswith("generator.") and not torch.equal(before[k], after[k])]
    assert changed, "fine-tuning did not update the generator"
    # The vocoder's own normalisation is inherited, not re-estimated.
    torch.testing.assert_close(after["normalize.mean"], before["normalize.mean"])


def test_chain_decodes_again_with_the_finetuned_vocoder(chained):
    finetuned = _one(chained / "exp", "voc_debug_gta_tts_tiny_*")
    # Fine-tuning keeps its checkpoints by the full-utterance validation metric, as pretraining,
    # and stage 5 decodes with that checkpoint (not generator_mel_loss of the first segment).
    config = yaml.safe_load((finetuned / "config.yaml").read_text())
    assert config["best_model_criterion"][0] == ["valid", "loss_mel_l1", "min"]
    assert config["model_conf"]["validate_full_utterances"] is True
    assert _best(finetuned) == "valid.loss_mel_l1.best.pth" and (finetuned / _best(finetuned)).is_file()
    assert "loss_mel_l1" in (finetuned / "train.log").read_text()
    out = _one(finetuned, "chain_tts_tiny_*") / f"decode_{_best(finetuned)[:-4]}" / TTS_DECODE / "test"
    first = _one(chained / "exp/voc_debug", "chain_tts_tiny_*") / f"decode_{_best(chained / 'exp/voc_debug')[:-4]}" / TTS_DECODE / "test"
    after, before = _wavs(out, chained), _wavs(first, chained)
    assert set(after) == set(before)
    assert any(not np.array_equal(after[u], before[u]) for u in after)


# ------------------------------------------------------------------------------ mismatches
def _vocoder_with(recipe: Path, name: str, **feats_changes) -> Path:
    """A copy of the debug vocoder experiment whose config claims other feature settings."""
    src = recipe / "exp/voc_debug"
    dst = recipe / "exp" / name
    if not dst.exists():
        dst.mkdir()
        config = yaml.safe_load((src / "config.yaml").read_text())
        config["feats_extract_conf"].update(feats_changes)
        (dst / "config.yaml").write_text(yaml.safe_dump(config))
        for ckpt in src.glob("*.pth"):
            (dst / ckpt.name).symlink_to(ckpt.resolve())
    return dst


@pytest.mark.parametrize("stages", [("1", "2"), ("2", "2")], ids=["contract_stage", "decode_stage"])
def test_chain_stops_on_fmax_mismatch_before_decoding(recipe, stages):
    voc = _vocoder_with(recipe, "voc_fmax8000", fmax=8000)
    proc = chain(recipe, "--voc_exp", "exp/voc_fmax8000", "--stage", stages[0], "--stop_stage", stages[1], check=False)
    assert proc.returncode != 0
    log = proc.stdout + proc.stderr
    assert re.search(r"^fmax\s+\|\s+7600\.0\s+\|\s+8000\.0", log, re.M), log[-3000:]
    assert not list(voc.glob("chain_tts_tiny*/**/*.wav"))
    assert not list(voc.glob("chain_tts_tiny*/**/wav.scp"))


def test_voc_inference_refuses_natural_log_vocoder(recipe, tmp_path):
    voc = _vocoder_with(recipe, "voc_ln", log_base=None)
    out = tmp_path / "decode"
    proc = py("espnet_hifigan.bin.voc_inference", "--train_config", voc / "config.yaml",
              "--model_file", voc / _best(recipe / "exp/voc_debug"),
              "--feats_scp", f"{TTS_EXP}/{TTS_DECODE}/test/denorm/feats.scp", "--output_dir", out,
              cwd=recipe, check=False)
    assert proc.returncode == 1
    assert re.search(r"^log_base\s+\|\s+10\.0\s+\|\s+e \(natural log\)", proc.stderr, re.M), proc.stderr[-3000:]
    assert not out.exists() or not list(out.rglob("*.wav"))


def test_voc_sh_chains_as_stages_9_and_10(recipe):
    """voc.sh --tts_exp: features from the TTS config, then chain.sh stages 1-2."""
    voc = _vocoder_with(recipe, "voc_copy")
    link = recipe / "voc.sh"
    if not link.exists():
        link.symlink_to(TEMPLATE / "voc.sh")
    proc = run(["bash", "voc.sh", "--python", sys.executable, "--stage", "9", "--stop_stage", "10",
                "--train_set", "train", "--valid_set", "test", "--inference_nj", "1", "--fs", "22050",
                "--train_config", voc / "config.yaml", "--tag", "voc_copy", "--tts_exp", TTS_EXP], cwd=recipe)
    log = proc.stdout + proc.stderr
    assert f"--fs 22050 -> 16000 (from {TTS_EXP}/config.yaml)" in log
    assert "Chain stage 1" in log and "Chain stage 2" in log and "Chain stage 3" not in log
    assert len(list(_one(voc, "chain_tts_tiny_*").rglob("*.wav"))) == 2


# ------------------------------------------------------------------------------ normalisation only
def test_normalised_tts_feats_are_denormalised_exactly(recipe, sensitive_vocoder):
    decode = recipe / TTS_EXP / TTS_DECODE / "test"
    vocoder = Vocoder.from_pretrained(sensitive_vocoder)
    contract = discover_contract(decode / "norm/feats.scp")
    assert contract is not None and contract.normalize is not None
    conversion = vocoder.conversion_from(contract)
    assert not conversion.identity
    denorm = dict(read_feats_scp(decode / "denorm/feats.scp"))
    for utt, feats in read_feats_scp(decode / "norm/feats.scp"):
        np.testing.assert_allclose(conversion(feats), denorm[utt], atol=DENORM_ATOL, rtol=0)
        np.testing.assert_allclose(vocoder(feats, contract=contract), vocoder(denorm[utt]), atol=1e-5, rtol=0)
    # Without the contract the raw vocoder would be fed normalised mels: different audio.
    utt, feats = next(read_feats_scp(decode / "norm/feats.scp"))
    assert np.abs(vocoder(feats) - vocoder(denorm[utt])).max() > 1e-3


def test_voc_inference_on_norm_scp_equals_denorm(recipe, sensitive_vocoder, tmp_path):
    outs = {}
    for sub in ("norm", "denorm"):
        proc = py("espnet_hifigan.bin.voc_inference", "--model_file", sensitive_vocoder,
                  "--feats_scp", f"{TTS_EXP}/{TTS_DECODE}/test/{sub}/feats.scp",
                  "--output_dir", tmp_path / sub, cwd=recipe)
        outs[sub] = (_wavs(tmp_path / sub), proc.stderr)
    assert "de-normalising with global_mvn" in outs["norm"][1]
    assert "no conversion" in outs["denorm"][1]
    assert outs["norm"][0].keys() == outs["denorm"][0].keys()
    for utt, wav in outs["norm"][0].items():
        assert np.abs(wav - outs["denorm"][0][utt]).max() <= 2 * PCM16_STEP
        assert np.abs(wav).max() > SILENCE_LEVEL


def test_contract_on_a_vocoder_api_mel_tensor(recipe, sensitive_vocoder):
    vocoder = Vocoder.from_pretrained(sensitive_vocoder)
    tts = FeatureContract.from_espnet_tts_config(recipe / TTS_EXP / "config.yaml")
    mel = torch.randn(12, 80) - 4.0
    np.testing.assert_array_equal(vocoder(mel, contract=tts), vocoder(mel))
    with pytest.raises(ContractMismatch, match="fmax"):
        vocoder(mel, contract=dataclasses.replace(tts, fmax=8000.0))


# ------------------------------------------------------------------------------ ESPnet Text2Speech
def test_espnet_text2speech_loads_exported_vocoder(recipe, tmp_path, monkeypatch, parallel_wavegan):
    from espnet2.bin.tts_inference import Text2Speech

    exp = recipe / "exp/voc_debug"
    py("espnet_hifigan.bin.export_pwg", "--model", exp, "--outdir", tmp_path / "pwg", cwd=recipe)
    assert (tmp_path / "pwg" / "stats.npy").is_file()
    monkeypatch.chdir(recipe / "../tts1")  # where the TTS config's relative paths hold
    tts = Text2Speech(
        train_config="exp/tts_tiny/config.yaml",
        model_file=f"exp/tts_tiny/{TTS_MODEL}",
        vocoder_file=str(tmp_path / "pwg" / "checkpoint-0steps.pkl"),
        maxlenratio=TTS_MAXLENRATIO,
        minlenratio=0.0,
    )
    assert tts.fs == 16000
    output = tts("ELEVEN")
    ours = Vocoder.from_pretrained(exp, _best(exp))
    expected = ours(output["feat_gen_denorm"].numpy())
    assert output["wav"].shape == (output["feat_gen"].shape[0] * 256,)
    np.testing.assert_allclose(output["wav"].numpy(), expected, atol=1e-5, rtol=0)
