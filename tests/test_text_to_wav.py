"""Text to wav in one call: a real ESPnet tts1 experiment's mels through our vocoder.

The TTS and the vocoders are those of ``tests/tts_recipe.py`` (the session's ``tts_recipe``):
a tiny Tacotron 2 that normalises its mels (GlobalMVN) and ``sensitive_vocoder``, whose audio
follows its input closely, so that feeding it the wrong mel (normalised, or another sentence's)
shows in the samples.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile as sf
import torch
from tts_recipe import TTS_EXP, TTS_MAXLENRATIO, TTS_MODEL, pack_sensitive_vocoder, run

from espnet_hifigan.bin import tts_to_wav
from espnet_hifigan.contract import ContractMismatch
from espnet_hifigan.inference.text_to_wav import TextToWav
from espnet_hifigan.inference.vocoder import Vocoder

SENTENCES = {"utt_a": "ELEVEN", "utt_b": "THREE TWO ONE"}
TTS_OPTS = dict(maxlenratio=TTS_MAXLENRATIO, minlenratio=0.0)
CLI_TTS_OPTS = ["--maxlenratio", str(TTS_MAXLENRATIO), "--minlenratio", "0.0"]
# Same mel, same generator: float32 rounding only.
WAV_ATOL = 1.0e-5
# One 16-bit PCM step: the CLI writes PCM_16 files.
PCM16_STEP = 1.0 / 32768
# Audio that is not silence; a clearly different waveform.
SILENCE_LEVEL = 1.0e-3


@pytest.fixture(scope="module")
def reference(tts_recipe, sensitive_vocoder) -> Dict[str, Dict[str, np.ndarray]]:
    """ESPnet's Text2Speech run as ESPnet users run it (in the TTS recipe directory), per sentence:
    its normalised and de-normalised mels and our vocoder's audio of the de-normalised mel."""
    from espnet2.bin.tts_inference import Text2Speech

    cwd = os.getcwd()
    os.chdir(tts_recipe / "../tts1")  # where the TTS config's relative paths hold
    try:
        tts = Text2Speech(
            train_config="exp/tts_tiny/config.yaml",
            model_file=f"exp/tts_tiny/{TTS_MODEL}",
            vocoder_config="griffin_lim.yaml",
            **TTS_OPTS,
        )
    finally:
        os.chdir(cwd)
    vocoder = Vocoder.from_pretrained(sensitive_vocoder)
    out = {}
    for text in SENTENCES.values():
        output = tts(text)
        denorm = output["feat_gen_denorm"].numpy()
        out[text] = dict(norm=output["feat_gen"].numpy(), denorm=denorm, wav=vocoder(denorm))
    return out


@pytest.fixture(scope="module")
def text_to_wav(tts_recipe, sensitive_vocoder, tmp_path_factory) -> TextToWav:
    """The pipeline, built from a directory unrelated to the TTS recipe."""
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("elsewhere"))
    try:
        return TextToWav(tts_recipe / TTS_EXP, sensitive_vocoder, **TTS_OPTS)
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def fmax8000_vocoder(tts_recipe) -> Path:
    """A packed vocoder that claims fmax 8000 (the TTS: 7600)."""
    return pack_sensitive_vocoder(tts_recipe, tts_recipe / "exp/voc_fmax8000_packed/model.zip", fmax=8000)


def _cli(tts_recipe: Path, vocoder: Path, *args: str) -> list:
    return ["--tts_exp", str(tts_recipe / TTS_EXP), "--vocoder", str(vocoder), *CLI_TTS_OPTS, *args]


# ------------------------------------------------------------------------------ Python API
def test_python_api_equals_vocoder_on_denormalised_text2speech_mel(text_to_wav, reference, sensitive_vocoder):
    assert text_to_wav.fs == 16000
    assert text_to_wav.tts_model_file.name == TTS_MODEL  # the default checkpoint
    vocoder = Vocoder.from_pretrained(sensitive_vocoder)
    for text, ref in reference.items():
        np.testing.assert_allclose(text_to_wav.mel(text), ref["denorm"], atol=0, rtol=0)
        wav = text_to_wav(text)
        assert wav.dtype == np.float32 and wav.shape == (ref["denorm"].shape[0] * 256,)
        np.testing.assert_allclose(wav, ref["wav"], atol=WAV_ATOL, rtol=0)
        assert np.abs(wav).max() > SILENCE_LEVEL
        # The TTS normalises: its raw output fed as is would be other audio.
        assert np.abs(vocoder(ref["norm"]) - wav).max() > SILENCE_LEVEL


def test_speaker_inputs_pass_through(text_to_wav, tmp_path, monkeypatch):
    xvector = np.linspace(-1, 1, 8).astype(np.float64)
    np.save(tmp_path / "xvector.npy", xvector)
    calls = []
    mel = torch.full((5, 80), -4.0)

    def fake_text2speech(text, **kwargs):
        calls.append((text, kwargs))
        return dict(feat_gen=mel + 1.0, feat_gen_denorm=mel)

    monkeypatch.setattr(text_to_wav, "text2speech", fake_text2speech)
    wav = text_to_wav("HELLO", sids=3, spembs=tmp_path / "xvector.npy", lids=1)
    (text, kwargs), = calls
    assert text == "HELLO"
    np.testing.assert_array_equal(kwargs["sids"], np.array([3]))
    np.testing.assert_array_equal(kwargs["lids"], np.array([1]))
    assert kwargs["spembs"].dtype == np.float32
    np.testing.assert_allclose(kwargs["spembs"], xvector, rtol=1e-6)
    # The de-normalised mel is vocoded.
    np.testing.assert_array_equal(wav, text_to_wav.vocoder(mel.numpy()))


def test_contract_mismatch_raised_before_the_tts_is_loaded(tts_recipe, fmax8000_vocoder, monkeypatch):
    import espnet2.bin.tts_inference

    def no_tts(*args, **kwargs):
        raise AssertionError("the TTS was loaded before the contract check")

    monkeypatch.setattr(espnet2.bin.tts_inference, "Text2Speech", no_tts)
    with pytest.raises(ContractMismatch) as err:
        TextToWav(tts_recipe / TTS_EXP, fmax8000_vocoder)
    assert re.search(r"^fmax\s+\|\s+7600\.0\s+\|\s+8000\.0", str(err.value), re.M), str(err.value)


def test_relative_paths_hold_from_the_tts_recipe_dir(tts_recipe, sensitive_vocoder, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"stats_file 'exp/tts_stats/train/feats_stats.npz' is not under .*tts_recipe_dir"):
        TextToWav(tts_recipe / TTS_EXP, sensitive_vocoder, tts_recipe_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no_such.pth"):
        TextToWav(tts_recipe / TTS_EXP, sensitive_vocoder, tts_model_file="no_such.pth")


# ------------------------------------------------------------------------------ espnet-hifigan-tts
def test_cli_text_writes_the_wav(tts_recipe, sensitive_vocoder, reference, tmp_path):
    out = tmp_path / "say" / "eleven.wav"
    assert tts_to_wav.main(_cli(tts_recipe, sensitive_vocoder, "--text", "ELEVEN", "--output", str(out))) == 0
    wav, fs = sf.read(out)
    assert fs == 16000 and sf.info(out).subtype == "PCM_16"
    np.testing.assert_allclose(wav, reference["ELEVEN"]["wav"], atol=PCM16_STEP, rtol=0)
    assert [p.name for p in out.parent.iterdir()] == ["eleven.wav"]  # no temporary left


def test_cli_text_file_writes_wav_dir_and_scp(tts_recipe, sensitive_vocoder, reference, tmp_path):
    text_file = tmp_path / "text"
    text_file.write_text("".join(f"{utt} {text}\n" for utt, text in SENTENCES.items()))
    out = tmp_path / "out"
    assert tts_to_wav.main(_cli(tts_recipe, sensitive_vocoder, "--text_file", str(text_file), "--output_dir", str(out))) == 0
    scp = dict(line.split() for line in (out / "wav.scp").read_text().splitlines())
    assert list(scp) == list(SENTENCES)
    assert sorted(p.name for p in out.iterdir()) == ["wav", "wav.scp"]
    for utt, text in SENTENCES.items():
        assert Path(scp[utt]) == (out / "wav" / f"{utt}.wav").resolve()
        wav, fs = sf.read(scp[utt])
        assert fs == 16000
        np.testing.assert_allclose(wav, reference[text]["wav"], atol=PCM16_STEP, rtol=0)


def test_cli_refuses_contract_mismatch_and_writes_nothing(tts_recipe, fmax8000_vocoder, tmp_path):
    text_file = tmp_path / "text"
    text_file.write_text("".join(f"{utt} {text}\n" for utt, text in SENTENCES.items()))
    out = tmp_path / "out"
    proc = run([sys.executable, "-m", "espnet_hifigan.bin.tts_to_wav",
                *_cli(tts_recipe, fmax8000_vocoder, "--text_file", str(text_file), "--output_dir", str(out))],
               cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert re.search(r"^fmax\s+\|\s+7600\.0\s+\|\s+8000\.0", proc.stderr, re.M), proc.stderr[-3000:]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text"]
