"""Kaldi's data conventions wherever a ``wav.scp``/``segments``/``feats.scp`` is read.

A tts1 recipe's data directory may hold extended filenames (``cat x.wav |``: a pipe writing a
WAV), entries of a wav ark (``wav.ark:56``, as Kaldi's ``wav-copy`` writes them), ``segments``
ending at ``-1`` (to the end of the recording) and feature entries ``feats.ark:1234[0:9]``. Each is
read through the one reader (``espnet_hifigan.core.wav_scp``) and gives the same samples as the
plain file it stands for: stage 2 (format_wav), stage 1's checks, copy synthesis
(voc_inference --wav_scp), scoring references and training lengths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_hifigan.bin import format_wav, validate_data_dir, voc_inference, voc_score
from espnet_hifigan.core.scp import read_feats_scp
from espnet_hifigan.core.wav_scp import audio_input_files, read_audio, segment_times
from espnet_hifigan.data.validation import validate_data_dir as validate
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.train.feature_lengths import read_num_frames, read_num_samples
from tests.cli_calls import call, exit_status

REPO_ROOT = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
FS = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Dict:
    """Three 16-bit recordings as plain files, the same as pipes and as wav ark entries."""
    root = tmp_path_factory.mktemp("kaldi_conventions")
    rng = np.random.default_rng(0)
    plain, piped, samples = [], [], {}
    for i, seconds in enumerate((0.5, 0.7, 0.6)):
        pcm = (rng.uniform(-0.3, 0.3, int(FS * seconds)) * 32768).astype(np.int16)
        path = root / "audio" / f"rec{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, pcm, FS, subtype="PCM_16")
        samples[f"rec{i}"] = pcm
        plain.append(f"rec{i} {path}\n")
        piped.append(f"rec{i} cat {path} |\n")
    with kaldiio.WriteHelper(f"ark,scp:{root}/wav.ark,{root}/ark_wav.scp") as writer:  # as wav-copy writes it
        for rec, pcm in samples.items():
            writer(rec, (FS, pcm))
    for name, lines in (("plain.scp", plain), ("piped.scp", piped)):
        (root / name).write_text("".join(lines))
    return dict(root=root, samples=samples, plain=root / "plain.scp", piped=root / "piped.scp",
                ark=root / "ark_wav.scp")


def _data_dir(corpus: Dict, path: Path, wav_scp: Path, segments: str = "") -> Path:
    path.mkdir(parents=True)
    (path / "wav.scp").write_text(wav_scp.read_text())
    utts = [line.split()[0] for line in segments.splitlines()] or list(corpus["samples"])
    (path / "utt2spk").write_text("".join(f"{u} spk\n" for u in utts))
    (path / "spk2utt").write_text(f"spk {' '.join(utts)}\n")
    if segments:
        (path / "segments").write_text(segments)
    return path


def test_the_reader_gives_a_pipe_and_an_ark_entry_the_samples_of_the_file(corpus):
    values = {name: dict(line.split(maxsplit=1) for line in corpus[name].read_text().splitlines())
              for name in ("plain", "piped", "ark")}
    for rec, pcm in corpus["samples"].items():
        for name in ("plain", "piped", "ark"):
            data, rate = read_audio(values[name][rec])
            assert rate == FS and data.shape == (len(pcm), 1), name
            np.testing.assert_array_equal(data[:, 0], pcm / 32768.0)  # int16 / 2**15 is exact in float32
    ark_value = values["ark"]["rec1"]
    data, _ = read_audio(ark_value + "[100:199]")  # Kaldi's slicing of an ark entry: both ends included
    np.testing.assert_array_equal(data[:, 0], corpus["samples"]["rec1"][100:200] / 32768.0)
    # The ark is the input file of every entry of it (once); a pipe names none.
    assert audio_input_files(values["ark"].values()) == [corpus["root"] / "wav.ark"]
    assert audio_input_files(values["piped"].values()) == []


def test_segment_end_minus_one_is_the_end_of_the_recording():
    assert segment_times("0.25", "-1") == (0.25, None)
    assert segment_times("0", "1.5") == (0.0, 1.5)
    for start, end in (("1.0", "0.5"), ("-1", "-1"), ("a", "1")):
        with pytest.raises(ValueError):
            segment_times(start, end)


@pytest.mark.parametrize("source", ["piped", "ark"])
def test_format_wav_reads_pipes_ark_entries_and_segments_to_the_end(corpus, tmp_path, source, caplog, capsys):
    segments = "a_rec0 rec0 0.1 -1\nb_rec1 rec1 0 0.3\nc_rec2 rec2 0.2 -1\n"
    data = _data_dir(corpus, tmp_path / "data", corpus[source], segments)
    assert validate(data) == []
    out = tmp_path / "out"
    rc, log = call(format_wav.main, ["--wav_scp", data / "wav.scp", "--segments", data / "segments", "--fs", FS,
                                     "--audio_format", "wav", "--out_dir", out, "--out_scp", tmp_path / "wav.scp",
                                     "--out_utt2num_samples", tmp_path / "utt2num_samples"], caplog, capsys)
    assert rc == 0, log
    expected = {"a_rec0": corpus["samples"]["rec0"][1600:], "b_rec1": corpus["samples"]["rec1"][:4800],
                "c_rec2": corpus["samples"]["rec2"][3200:]}
    for utt, pcm in expected.items():
        wav, rate = sf.read(out / f"{utt}.wav", dtype="int16")
        assert rate == FS
        np.testing.assert_array_equal(wav, pcm)
    lengths = dict(line.split() for line in (tmp_path / "utt2num_samples").read_text().splitlines())
    assert lengths == {utt: str(len(pcm)) for utt, pcm in expected.items()}


def test_a_segment_starting_after_the_recording_is_refused(corpus, tmp_path, caplog, capsys):
    data = _data_dir(corpus, tmp_path / "data", corpus["plain"], "a_rec0 rec0 0.9 -1\n")
    rc, log = call(format_wav.main, ["--wav_scp", data / "wav.scp", "--segments", data / "segments", "--fs", FS,
                                     "--out_dir", tmp_path / "out", "--out_scp", tmp_path / "wav.scp",
                                     "--out_utt2num_samples", tmp_path / "n"], caplog, capsys)
    assert rc != 0 and "a_rec0" in log and "starts at 0.900 s" in log
    assert not (tmp_path / "wav.scp").exists()


def test_format_wav_never_writes_over_the_ark_it_reads(corpus, tmp_path, caplog, capsys):
    ark = tmp_path / "wav.ark"
    ark.write_bytes((corpus["root"] / "wav.ark").read_bytes())
    scp = tmp_path / "in.scp"
    scp.write_text(corpus["ark"].read_text().replace(str(corpus["root"] / "wav.ark"), str(ark)))
    before = ark.read_bytes()
    rc, log = call(format_wav.main, ["--wav_scp", scp, "--fs", FS, "--out_dir", tmp_path / "out",
                                     "--out_scp", ark, "--out_utt2num_samples", tmp_path / "n"], caplog, capsys)
    assert rc != 0 and "is an input of this run" in log
    assert ark.read_bytes() == before


def test_validate_data_dir_checks_the_ark_of_an_offset_entry(corpus, tmp_path, caplog, capsys):
    data = _data_dir(corpus, tmp_path / "data", corpus["ark"])
    assert exit_status(validate_data_dir.main, [data]) == 0
    (data / "wav.scp").write_text(corpus["ark"].read_text().replace("wav.ark", "gone.ark"))
    errors = validate(data)
    assert len(errors) == 3 and all(e.endswith(f"not found: {corpus['root'] / 'gone.ark'}") for e in errors), errors


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory) -> Path:
    """A debug vocoder with random weights and unit statistics (copy synthesis needs no training)."""
    root = tmp_path_factory.mktemp("kaldi_vocoder")
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    n_mels = config["feats_extract_conf"].get("n_mels", 80)
    np.savez(root / "feats_stats.npz", count=np.array(10), sum=np.zeros(n_mels), sum_square=np.full(n_mels, 10.0))
    config["normalize_conf"] = dict(stats_file=str(root / "feats_stats.npz"))
    torch.manual_seed(0)
    generator = HiFiGANGenerator(in_channels=n_mels, **config["generator_conf"])
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state["normalize.mean"], state["normalize.std"] = torch.zeros(n_mels), torch.ones(n_mels)
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save(state, root / "model.pth")
    return root


def test_copy_synthesis_and_scoring_read_pipes_and_ark_entries_as_the_files(corpus, vocoder, tmp_path, caplog, capsys):
    decoded = {}
    for name in ("plain", "piped", "ark"):
        out = tmp_path / name
        rc, log = call(voc_inference.main, ["--train_config", vocoder / "config.yaml", "--model_file",
                                            vocoder / "model.pth", "--wav_scp", corpus[name], "--output_dir", out],
                       caplog, capsys)
        assert rc == 0, log
        decoded[name] = {p.stem: sf.read(p)[0] for p in sorted((out / "wav").glob("*.wav"))}
        assert sorted(decoded[name]) == sorted(corpus["samples"])
    for name in ("piped", "ark"):  # the same samples in, the same waveform out
        for rec, wav in decoded["plain"].items():
            np.testing.assert_array_equal(decoded[name][rec], wav)
    # The piped and ark references score as the plain files do.
    scores = {}
    for name in ("plain", "piped", "ark"):
        rc, log = call(voc_score.main, ["--ref_scp", corpus[name], "--gen_scp", tmp_path / "plain" / "wav.scp",
                                        "--output_dir", tmp_path / f"score_{name}", "--metrics", "mcd,mrstft",
                                        "--num_plots", 0], caplog, capsys)
        assert rc == 0, log
        scores[name] = (tmp_path / f"score_{name}" / "per_utt.tsv").read_text()
    assert len(scores["plain"].splitlines()) == 1 + len(corpus["samples"])
    assert scores["piped"] == scores["plain"] and scores["ark"] == scores["plain"]


def test_training_lengths_read_ark_entries_and_sliced_feature_entries(corpus, tmp_path):
    (tmp_path / "wav.scp").write_text(corpus["ark"].read_text())
    assert read_num_samples(tmp_path / "wav.scp") == {rec: len(pcm) for rec, pcm in corpus["samples"].items()}
    feats = tmp_path / "feats"
    feats.mkdir()
    mats = {f"u{i}": np.arange(12 * 4, dtype=np.float32).reshape(12, 4) + i for i in range(2)}
    with kaldiio.WriteHelper(f"ark,scp:{feats}/feats.ark,{feats}/full.scp") as writer:
        for utt, mat in mats.items():
            writer(utt, mat)
    # A relative ark path with an offset and Kaldi's row slicing, as a tts1 recipe may list them.
    lines = [line.split() for line in (feats / "full.scp").read_text().splitlines()]
    (feats / "feats.scp").write_text("".join(f"{u} feats.ark:{v.rsplit(':', 1)[1]}[2:6]\n" for u, v in lines))
    read = dict(read_feats_scp(feats / "feats.scp"))
    for utt, mat in mats.items():
        np.testing.assert_array_equal(read[utt], mat[2:7])  # Kaldi's [2:6] includes row 6
    (feats / "abs.scp").write_text("".join(f"{u} {v}[2:6]\n" for u, v in lines))
    assert read_num_frames(feats / "abs.scp") == {utt: 5 for utt in mats}
