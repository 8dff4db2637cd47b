"""Writes stay inside the output and never land on an input (issue 20, classes A and B).

Every case runs one CLI in process inside a small "world" directory (a corpus, a vocoder
experiment, features, a victim directory of someone else's files) and asserts: exit status 1, one
error naming the culprit (the utterance id, or the output and the input it would overwrite), and
the whole world byte-identical afterwards: nothing written outside (or inside) the output, every
input untouched. Controls run the same CLIs with a sound output and must succeed, so the refusals
are not blanket failures.

A. Utterance ids become file names: one rule (``espnet_hifigan.core.safety.check_utt_ids``) for
   every CLI that turns an id into a file, checked before any work; ``merge_decode_dirs`` moves only
   files a job wrote into its own ``wav/``.
B. Outputs over inputs: ``check_outputs_not_inputs`` in every CLI that writes, symlinks resolved.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from cli_calls import ErrorLines, exit_status

from espnet_hifigan.bin import (
    convert_checkpoint,
    extract_feats,
    format_wav,
    pack,
    plot_metrics,
    tts_to_wav,
    validate_data_dir,
    voc_inference,
    voc_score,
)
from espnet_hifigan.core.safety import check_outputs_not_inputs, utt_id_problem
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
MERGE = REPO_ROOT / "egs2" / "TEMPLATE" / "voc1" / "scripts" / "merge_decode_dirs.py"
LONG_ID = "u" * 300


def _load_merge():
    spec = importlib.util.spec_from_file_location("merge_decode_dirs", MERGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest(root: Path) -> Dict[str, str]:
    """Every file and link under ``root`` (path -> sha256 or link target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_file():
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[key] = "dir"
    return out



def _call(main: Callable, argv: Sequence[str], capsys) -> Tuple[int, str]:
    """Run a CLI's ``main(argv)`` in process: (exit status, its ERROR lines and stderr)."""
    with ErrorLines() as errors:
        rc = exit_status(main, argv)
    return rc, "\n".join(errors.lines) + capsys.readouterr().err


def _features(wav: Path, config: dict) -> np.ndarray:
    extractor = LogMelSpectrogram(**dict(config["feats_extract_conf"], fs=16000))
    audio, _ = sf.read(wav, dtype="float32")
    return extractor(torch.from_numpy(audio))[0][0].numpy()


@pytest.fixture(scope="module")
def world_template(synthetic_corpus, tmp_path_factory) -> Path:
    """corpus/ (wavs + wav.scp), exp/ (a random debug vocoder), feats/ (ark/scp + contract), victim/."""
    root = tmp_path_factory.mktemp("trust_world")
    corpus = root / "corpus"
    corpus.mkdir()
    lines = []
    for line in Path(synthetic_corpus["valid_scp"]).read_text().splitlines():
        utt, path = line.split()
        shutil.copy(path, corpus / f"{utt}.wav")
        lines.append(f"{utt} {corpus / f'{utt}.wav'}\n")
    (corpus / "wav.scp").write_text("".join(lines))
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    config["feats_extract_conf"]["fs"] = 16000
    config.pop("normalize", None)
    config.pop("normalize_conf", None)
    torch.manual_seed(0)
    generator = HiFiGANGenerator(in_channels=80, **config["generator_conf"])
    exp = root / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save({f"generator.{k}": v for k, v in generator.state_dict().items()}, exp / "model.pth")
    feats = root / "feats"
    feats.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{feats}/feats.ark,{feats}/feats.scp") as writer:
        for line in lines:
            utt, path = line.split()
            writer[utt] = _features(Path(path), config)
    assert extract_feats.main(["--write_conf", str(feats / "feats_conf.yaml"), "--train_config", str(exp / "config.yaml")]) == 0
    victim = root / "victim"
    victim.mkdir()
    (victim / "keep.wav").write_bytes(b"someone else's file")
    (root / "metrics.tsv").write_text("step\tloss\n1\t2.0\n2\t1.0\n")
    return root


@pytest.fixture
def world(world_template, tmp_path) -> Path:
    root = tmp_path / "world"
    shutil.copytree(world_template, root, symlinks=True)
    # Absolute paths inside the template's lists point at the copy.
    for scp in (root / "corpus" / "wav.scp", root / "feats" / "feats.scp"):
        scp.write_text(scp.read_text().replace(str(world_template), str(root)))
    return root


def _decode(w: Path, *args) -> Tuple[Callable, List]:
    return voc_inference.main, ["--train_config", w / "exp/config.yaml", "--model_file", w / "exp/model.pth", *args]


def _format(w: Path, wav_scp: Path, out_dir: Path, out_scp: Path, *extra) -> Tuple[Callable, List]:
    """format_wav of ``wav_scp`` at 16 kHz (utt2num_samples in ``out/``)."""
    return format_wav.main, ["--wav_scp", wav_scp, "--fs", "16000", "--out_dir", out_dir, "--out_scp", out_scp,
                             "--out_utt2num_samples", w / "out/utt2num_samples", *extra]


def _wav_scp_with(w: Path, utt: str) -> Path:
    """A copy-synthesis wav.scp whose first id is ``utt``."""
    scp = w / "lists" / "wav.scp"
    scp.parent.mkdir(exist_ok=True)
    first = (w / "corpus" / "wav.scp").read_text().splitlines()[0].split()[1]
    scp.write_text(f"{utt} {first}\n")
    return scp


def _feats_scp_with(w: Path, utt: str) -> Path:
    """A feats.scp (next to its contract) whose first id is ``utt``."""
    scp = w / "feats" / "evil.scp"
    first = (w / "feats" / "feats.scp").read_text().splitlines()[0].split()[1]
    scp.write_text(f"{utt} {first}\n")
    return scp


def _text_file_with(w: Path, utt: str) -> Path:
    path = w / "lists" / "text"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"{utt} hello world\n")
    return path


def _data_dir_with(w: Path, utt: str) -> Path:
    d = w / "data"
    d.mkdir()
    audio = (w / "corpus" / "wav.scp").read_text().splitlines()[0].split()[1]
    (d / "wav.scp").write_text(f"{utt} {audio}\n")
    (d / "utt2spk").write_text(f"{utt} spk\n")
    (d / "spk2utt").write_text(f"spk {utt}\n")
    return d


def _merge_job_naming(w: Path, target: Path) -> Tuple[Callable, List]:
    """A finished decode job whose wav.scp names ``target`` instead of a wav it wrote."""
    job = w / "decode" / "logdir" / "output.1"
    (job / "wav").mkdir(parents=True)
    (job / "timing.json").write_text('{"num_utts": 1, "audio_sec": 1.0, "compute_sec": 0.1, "device": "cpu"}\n')
    (job / "wav.scp").write_text(f"keep {target}\n")
    return _load_merge().main, ["--output_dir", w / "decode", job]


# Each case: (world -> (main, argv), strings the error must contain).
Case = Callable[[Path], Tuple[Callable, List]]
A_CASES: List = [
    pytest.param(lambda w: _decode(w, "--wav_scp", _wav_scp_with(w, "../../escaped"), "--output_dir", w / "out"),
                 ["'../../escaped'", "cannot be a file name"], id="A-copy-synthesis-id-climbs-out"),
    pytest.param(lambda w: _decode(w, "--feats_scp", _feats_scp_with(w, str(w / "victim" / "keep")),
                                   "--output_dir", w / "out"),
                 ["victim/keep", "cannot be a file name"], id="A-feats-id-is-an-absolute-path"),
    pytest.param(lambda w: _decode(w, "--feats_scp", _feats_scp_with(w, "spk1/utt1"), "--output_dir", w / "out"),
                 ["'spk1/utt1'", "path separator"], id="A-id-with-a-slash"),
    pytest.param(lambda w: _decode(w, "--feats_scp", _feats_scp_with(w, LONG_ID), "--output_dir", w / "out"),
                 [LONG_ID[:20], "too long"], id="A-300-character-id"),
    pytest.param(lambda w: _format(w, _wav_scp_with(w, "../escaped"), w / "out/data", w / "out/wav.scp"),
                 ["'../escaped'"], id="A-format-wav-id-climbs-out"),
    pytest.param(lambda w: (tts_to_wav.main, ["--tts_exp", w / "no_tts", "--vocoder", w / "exp",
                                              "--text_file", _text_file_with(w, "../escaped"), "--output_dir", w / "out"]),
                 ["'../escaped'"], id="A-tts-text-file-id-climbs-out"),
    pytest.param(lambda w: (validate_data_dir.main, [_data_dir_with(w, "..")]),
                 ["'..'", "cannot be a file name"], id="A-data-dir-id-is-a-directory-name"),
    pytest.param(lambda w: _merge_job_naming(w, w / "victim" / "keep.wav"),
                 ["victim/keep.wav", "refusing to move it"], id="A-merge-moves-only-the-jobs-own-wavs"),
]


def _earlier_decode(w: Path) -> Path:
    """A wav.scp of the wavs of an earlier decode (``earlier/wav/``), to copy-synthesise again."""
    (w / "earlier" / "wav").mkdir(parents=True)
    shutil.copy(w / "corpus" / "utt4.wav", w / "earlier" / "wav" / "utt4.wav")
    (w / "lists").mkdir(exist_ok=True)
    (w / "lists" / "earlier.scp").write_text(f"utt4 {w / 'earlier' / 'wav' / 'utt4.wav'}\n")
    return w / "lists" / "earlier.scp"


def _symlink(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


B_CASES: List = [
    pytest.param(lambda w: _decode(w, "--feats_scp", w / "feats/feats.scp", "--output_dir", w / "feats"),
                 ["feats/feats.scp", "data directory"], id="B-decode-output-dir-is-the-data-dir-of-its-feats-scp"),
    pytest.param(lambda w: _decode(w, "--wav_scp", w / "corpus/wav.scp", "--output_dir", w / "corpus"),
                 ["corpus/wav.scp", "data directory"], id="B-copy-synthesis-output-dir-holds-its-wav-scp"),
    pytest.param(lambda w: _decode(w, "--wav_scp", _earlier_decode(w), "--output_dir", w / "earlier"),
                 ["earlier/wav", "an input of this run"], id="B-copy-synthesis-of-earlier-wavs-into-their-decode-dir"),
    pytest.param(lambda w: _format(w, w / "corpus/wav.scp", w / "corpus", w / "out/wav.scp", "--audio_format", "wav"),
                 ["corpus", "an input of this run"], id="B-format-wav-out-dir-is-the-audio-dir"),
    pytest.param(lambda w: _format(w, w / "corpus/wav.scp", w / "out/data", w / "corpus/wav.scp"),
                 ["corpus/wav.scp", "is an input"], id="B-format-wav-out-scp-is-the-wav-scp"),
    pytest.param(lambda w: _format(w, w / "corpus/wav.scp", w / "out/data", _symlink(w / "out/link.scp", w / "corpus/wav.scp")),
                 ["link.scp", "is an input"], id="B-format-wav-out-scp-links-to-the-wav-scp"),
    pytest.param(lambda w: _format(w, w / "corpus/wav.scp", w / "corpus", w / "out/wav.scp"),
                 ["corpus/utt4.flac", "reads audio from"], id="B-format-wav-flac-among-the-original-wavs"),
    pytest.param(lambda w: (tts_to_wav.main, ["--tts_exp", w / "no_tts", "--vocoder", w / "exp",
                                              "--text_file", _text_file_with(w, "utt1"), "--output_dir", w / "lists"]),
                 ["lists/text", "data directory"], id="B-tts-output-dir-is-the-data-dir-of-its-text"),
    pytest.param(lambda w: (pack.main, ["--train_config", w / "exp/config.yaml", "--model_file", w / "exp/model.pth",
                                        "--outpath", w / "exp/model.pth"]),
                 ["model.pth", "is an input"], id="B-pack-outpath-is-the-model-file"),
    pytest.param(lambda w: (convert_checkpoint.main, ["--input", w / "exp", "--outpath", w / "exp/config.yaml"]),
                 ["config.yaml", "is an input"], id="B-convert-outpath-is-a-file-of-the-input-experiment"),
    pytest.param(lambda w: (extract_feats.main, ["--wav_scp", w / "corpus/wav.scp", "--out_ark", w / "out/feats.ark",
                                                 "--out_scp", w / "corpus/wav.scp",
                                                 "--out_utt2num_frames", w / "out/utt2num_frames"]),
                 ["corpus/wav.scp", "is an input"], id="B-extract-feats-out-scp-is-the-wav-scp"),
    pytest.param(lambda w: (plot_metrics.main, ["--input", w / "metrics.tsv", "--output", w / "metrics.tsv"]),
                 ["metrics.tsv", "is an input"], id="B-plot-output-is-its-input"),
    pytest.param(lambda w: (voc_score.main, ["--ref_scp", w / "corpus/wav.scp", "--gen_scp", w / "corpus/wav.scp",
                                             "--output_dir", w / "out", "--results_md", w / "corpus/wav.scp"]),
                 ["corpus/wav.scp", "is an input"], id="B-score-results-md-is-the-reference-list"),
]


@pytest.mark.parametrize("build, needles", A_CASES + B_CASES)
def test_refused_before_any_write_and_the_world_unchanged(world, capsys, build, needles):
    main, argv = build(world)
    before = _digest(world)
    rc, error = _call(main, argv, capsys)
    assert rc == 1, error
    for needle in needles:
        assert needle in error, f"{needle!r} not in {error!r}"
    assert _digest(world) == before  # nothing created, changed or moved anywhere: inputs intact


CONTROLS: List = [
    pytest.param(lambda w: _decode(w, "--feats_scp", w / "feats/feats.scp", "--output_dir", w / "out"),
                 ["out/wav.scp", "out/wav/utt4.wav", "out/wav/utt5.wav"], id="decode-into-a-fresh-dir"),
    pytest.param(lambda w: _decode(w, "--wav_scp", w / "corpus/wav.scp", "--output_dir", w / "out"),
                 ["out/wav.scp", "out/wav/utt4.wav"], id="copy-synthesis-into-a-fresh-dir"),
    pytest.param(lambda w: _format(w, w / "corpus/wav.scp", w / "out/data", w / "out/wav.scp", "--audio_format", "wav"),
                 ["out/wav.scp", "out/data/utt4.wav"], id="format-wav-into-a-fresh-dir"),
    pytest.param(lambda w: _format(w, w / "corpus/wav.scp", w / "out", w / "out/wav.scp"),
                 ["out/wav.scp", "out/utt4.flac"], id="format-wav-into-the-dir-of-its-lists"),
    pytest.param(lambda w: (pack.main, ["--train_config", w / "exp/config.yaml", "--model_file", w / "exp/model.pth",
                                        "--outpath", w / "out/model.zip"]),
                 ["out/model.zip"], id="pack-into-a-fresh-file"),
]


@pytest.mark.parametrize("build, created", CONTROLS)
def test_the_same_cli_with_a_sound_output_writes_only_there(world, capsys, build, created):
    main, argv = build(world)
    outside = {k: v for k, v in _digest(world).items() if not k.startswith("out")}
    rc, error = _call(main, argv, capsys)
    assert rc == 0, error
    after = _digest(world)
    for path in created:
        assert path in after, f"{path} not written"
    assert {k: v for k, v in after.items() if not k.startswith("out")} == outside


def test_merge_moves_the_wavs_a_job_wrote(world, capsys):
    job = world / "decode" / "logdir" / "output.1"
    (job / "wav").mkdir(parents=True)
    sf.write(job / "wav" / "a.wav", np.zeros(160, np.float32), 16000)
    (job / "timing.json").write_text('{"num_utts": 1, "audio_sec": 0.01, "compute_sec": 0.1, "device": "cpu"}\n')
    (job / "wav.scp").write_text(f"a {job / 'wav' / 'a.wav'}\n")
    rc, error = _call(_load_merge().main, ["--output_dir", world / "decode", job], capsys)
    assert rc == 0, error
    assert (world / "decode" / "wav" / "a.wav").is_file() and not (job / "wav" / "a.wav").exists()


@pytest.mark.parametrize(
    "utt, problem",
    [("utt_1-a.b", None), ("", "empty"), (".", "directory"), ("..", "directory"), (".hidden", "'.'"),
     ("a/b", "separator"), ("a\\b", "separator"), ("/abs", "separator"), ("-rf", "'-'"), ("a\tb", "control"),
     ("é" * 125, None), ("é" * 126, "too long"), (LONG_ID, "too long")],
)
def test_utt_id_rule(utt: str, problem: Optional[str]):
    found = utt_id_problem(utt)
    assert (found is None) if problem is None else (problem in found), found


def test_outputs_resolve_through_dot_dot_and_links(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "wav.scp").write_text("a x\n")
    with pytest.raises(ValueError, match="is an input"):
        check_outputs_not_inputs([tmp_path / "out" / ".." / "in" / "wav.scp"], [tmp_path / "in" / "wav.scp"])
    with pytest.raises(ValueError, match="holds"):
        check_outputs_not_inputs([tmp_path / "in"], [tmp_path / "in" / "wav.scp"])
    check_outputs_not_inputs([tmp_path / "out" / "wav.scp"], [tmp_path / "in" / "wav.scp", None], [tmp_path / "in"])
