"""The corpus recipes egs2/{vctk,libritts,jsut,csmsc,jvs}/voc1 (made with setup.sh).

Each ``local/data.sh`` runs on a miniature of its corpus with the real directory layout and
transcript format, built from the shared LJ Speech wavs (the first second of each, flac where the
corpus ships flac); the data directories it writes are compared with the utterances, speakers,
texts and splits the corpus' ESPnet tts1 recipe would give, every ``wav.scp`` entry is read back
and must be the audio of its utterance, and ``voc.sh``'s stage 1 (with its early checks of the
recipe's feature settings against its training config) must pass.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mini_an4 import REPO_ROOT, expect_success, linked_recipe, run_recipe

from espnet_hifigan.core.wav_scp import read_audio
from espnet_hifigan.data.validation import validate_data_dir

# set -> utterance -> (speaker, text, index of the LJ Speech wav in its audio)
Expected = dict[str, dict[str, tuple[str, str, int]]]


@pytest.fixture(scope="module")
def lj(ljspeech_mini) -> list[tuple[np.ndarray, int]]:
    """The first second of each shared LJ Speech wav: (samples, rate)."""
    clips = []
    for wav in sorted((ljspeech_mini / "wavs").glob("*.wav")):
        data, rate = sf.read(wav, dtype="int16")
        clips.append((data[:rate], rate))
    return clips


def put(lj, index: int, path: Path) -> None:
    """Write clip ``index`` to ``path`` (flac or wav by its suffix, 16-bit PCM as the corpora)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data, rate = lj[index]
    sf.write(path, data, rate, subtype="PCM_16")


def build_vctk(lj, db: Path) -> tuple[list[str], Expected]:
    """VCTK 0.92: 3 speakers x 4 utterances (mic1 and mic2 flac), one transcript missing, p315
    without txt/ (left out as in ESPnet)."""
    corpus = db / "VCTK-Corpus-0.92"
    expected: Expected = {"tr_no_dev": {}, "dev": {}, "eval1": {}}
    k = 0
    for spk in ("p225", "p226", "p227"):
        kept = []
        for n in range(1, 5):
            utt = f"{spk}_{n:03d}"
            put(lj, k, corpus / "wav48_silence_trimmed" / spk / f"{utt}_mic1.flac")
            put(lj, k + 1, corpus / "wav48_silence_trimmed" / spk / f"{utt}_mic2.flac")
            text = f"Sentence {n} of {spk}."
            if utt != "p227_004":
                (corpus / "txt" / spk).mkdir(parents=True, exist_ok=True)
                (corpus / "txt" / spk / f"{utt}.txt").write_text(text + "\n")
                kept.append((utt, text, k))
            k += 2
        # --num_dev 1 --num_eval 1: per speaker the last -> dev, the one before -> eval1
        for i, (utt, text, index) in enumerate(kept):
            name = "dev" if i == len(kept) - 1 else "eval1" if i == len(kept) - 2 else "tr_no_dev"
            expected[name][utt] = (spk, text, index)
    for n in (1, 2):
        put(lj, n, corpus / "wav48_silence_trimmed" / "p315" / f"p315_{n:03d}_mic1.flac")
    return ["--db_root", str(db), "--num_dev", "1", "--num_eval", "1"], expected


def build_libritts(lj, db: Path) -> tuple[list[str], Expected]:
    """LibriTTS: 2 readers in train-clean-100 (19 and 198, whose ids sort apart), 1 in
    train-clean-360, 2 in dev-clean and in test-clean; one utterance without .normalized.txt.
    The speakers are <reader>_<chapter>, as in ESPnet."""
    corpus = db / "LibriTTS"
    layout = {
        "train-clean-100": [("19", "198"), ("198", "129742")],
        "train-clean-360": [("14", "208")],
        "dev-clean": [("84", "121123"), ("174", "50561")],
        "test-clean": [("61", "70968"), ("121", "121726")],
    }
    expected: Expected = {}
    k = 0
    for subset, readers in layout.items():
        expected[subset] = {}
        for reader, chapter in readers:
            for n in range(2):
                utt = f"{reader}_{chapter}_000000_{n:06d}"
                base = corpus / subset / reader / chapter / utt
                put(lj, k, base.with_suffix(".wav"))
                if utt == "174_50561_000000_000001":
                    k += 1
                    continue
                text = f"Normalized text {k}, of {reader}."
                Path(f"{base}.normalized.txt").write_text(text)
                Path(f"{base}.original.txt").write_text(f"ORIGINAL text {k}")
                expected[subset][utt] = (f"{reader}_{chapter}", text, k)
                k += 1
    expected["train-clean-460"] = {**expected["train-clean-100"], **expected["train-clean-360"]}
    return ["--db_root", str(db)], expected


def build_jsut(lj, db: Path) -> tuple[list[str], Expected]:
    """JSUT: basic5000 with 8 wavs and a CRLF transcript_utf8.txt without BASIC5000_0007 and with
    a line for a missing wav; voiceactress100 with 2 (to tr_no_dev, as in ESPnet)."""
    corpus = db / "jsut_ver1.1"
    expected: Expected = {"tr_no_dev": {}, "dev": {}, "eval1": {}}
    lines = []
    for n in range(1, 9):
        utt = f"BASIC5000_{n:04d}"
        put(lj, n, corpus / "basic5000" / "wav" / f"{utt}.wav")
        if n != 7:
            text = f"水をマレーシアから買わなくてはならないのです{n}。"
            lines.append(f"{utt}:{text}")
            # --num_dev 2 --num_eval 2: the first 2 -> eval1, the next 2 -> dev, the rest -> tr_no_dev
            expected["eval1" if n <= 2 else "dev" if n <= 4 else "tr_no_dev"][utt] = ("JS", text, n)
    lines.append("BASIC5000_0009:音声のない行。")
    (corpus / "basic5000" / "transcript_utf8.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    lines = []
    for n in (1, 2):
        utt = f"VOICEACTRESS100_{n:03d}"
        put(lj, 10 + n, corpus / "voiceactress100" / "wav" / f"{utt}.wav")
        lines.append(f"{utt}:また、東寺のように{n}。")
        expected["tr_no_dev"][utt] = ("JS", f"また、東寺のように{n}。", 10 + n)
    (corpus / "voiceactress100" / "transcript_utf8.txt").write_text("\n".join(lines))  # no last newline
    return ["--db_root", str(db), "--num_dev", "2", "--num_eval", "2"], expected


def build_csmsc(lj, db: Path, encoding: str = "utf-8-sig") -> tuple[list[str], Expected]:
    """CSMSC: Wave/000001-000008.wav, ProsodyLabeling/000001-010000.txt (UTF-8 with BOM or
    ``encoding``, CRLF, the prosody marks and pinyin lines)."""
    corpus = db / "CSMSC"
    lines = []
    expected: Expected = {"tr_no_dev": {}, "dev": {}, "eval1": {}}
    for n in range(1, 9):
        utt = f"{n:06d}"
        put(lj, n + 3, corpus / "Wave" / f"{utt}.wav")
        lines.append(f"{utt}\t卡尔普#2陪外孙#1玩滑梯#4{n}。")
        lines.append("\tka2 er2 pu3 pei2 wai4 sun1 wan2 hua2 ti1")
        # --num_dev 2 --num_eval 2: the last 2 -> eval1, the 2 before -> dev
        name = "eval1" if n > 6 else "dev" if n > 4 else "tr_no_dev"
        expected[name][utt] = ("csmsc", f"卡尔普陪外孙玩滑梯{n}。", n + 3)
    (corpus / "ProsodyLabeling").mkdir(parents=True)
    labels = "\r\n".join(lines) + "\r\n"
    (corpus / "ProsodyLabeling" / "000001-010000.txt").write_bytes(labels.encode(encoding))
    return ["--db_root", str(db), "--num_dev", "2", "--num_eval", "2"], expected


def build_jvs(lj, db: Path) -> tuple[list[str], Expected]:
    """JVS: jvs001 and jvs002, 2 parallel100 + 3 nonpara30 utterances each, one wav without a
    transcript line."""
    corpus = db / "jvs_ver1"
    expected: Expected = {"tr_no_dev": {}, "dev": {}, "eval1": {}}
    k = 0
    for spk in ("jvs001", "jvs002"):
        for part, ids in (("parallel100", ["VOICEACTRESS100_001", "VOICEACTRESS100_002"]),
                          ("nonpara30", ["BASIC5000_0025", "BASIC5000_0107", "BASIC5000_1013"])):
            lines = []
            for i, utt in enumerate(ids):
                put(lj, k, corpus / spk / part / "wav24kHz16bit" / f"{utt}.wav")
                text = f"{spk}の{part}、{i}番目。"
                if (spk, utt) != ("jvs002", "VOICEACTRESS100_002"):
                    lines.append(f"{utt}:{text}")
                    # --num_dev 1 --num_eval 1: nonpara30's first -> dev, last -> eval1
                    name = ("tr_no_dev" if part == "parallel100"
                            else "dev" if i == 0 else "eval1" if i == len(ids) - 1 else "tr_no_dev")
                    expected[name][f"{spk}_{utt}"] = (spk, text, k)
                k += 1
            (corpus / spk / part / "transcripts_utf8.txt").write_text("\n".join(lines) + "\n")
    return ["--db_root", str(db), "--num_dev", "1", "--num_eval", "1"], expected


BUILDERS = {
    "vctk": build_vctk,
    "libritts": build_libritts,
    "jsut": build_jsut,
    "csmsc": build_csmsc,
    "jvs": build_jvs,
}


def run_data_sh(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``local/data.sh ARGS`` in the recipe directory ``root``; stdout and stderr interleaved."""
    env = {k: v for k, v in os.environ.items() if k not in ("VCTK", "LIBRITTS", "JSUT", "CSMSC", "JVS")}
    return subprocess.run(["local/data.sh", *args], cwd=root, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120, check=False)


def read_table(path: Path) -> dict[str, str]:
    """A Kaldi table: key -> the rest of the line."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(" ")
        rows[key] = rest
    return rows


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, lj) -> dict[str, tuple[Path, list[str], Expected, str]]:
    """Every corpus' miniature and its recipe after local/data.sh: corpus -> (recipe, args,
    expected sets, output)."""
    out = {}
    for corpus, build in BUILDERS.items():
        base = tmp_path_factory.mktemp(corpus)
        args, expected = build(lj, base / "db")
        root = linked_recipe(base, REPO_ROOT / "egs2" / corpus / "voc1")
        proc = run_data_sh(root, *args)
        expect_success(proc, f"{corpus}: local/data.sh {' '.join(args)}")
        out[corpus] = (root, args, expected, proc.stdout)
    return out


@pytest.mark.parametrize("corpus", list(BUILDERS))
def test_data_sh_writes_the_sets_of_the_tts1_recipe(prepared, lj, corpus):
    root, _, expected, output = prepared[corpus]
    for name, utts in expected.items():
        data = root / "data" / name
        assert validate_data_dir(data) == [], f"{corpus}: data/{name} is not valid"
        wav_scp = read_table(data / "wav.scp")
        utt2spk = read_table(data / "utt2spk")
        text = read_table(data / "text")
        assert list(utt2spk) == sorted(utts), f"{corpus}: data/{name} holds other utterances"
        assert utt2spk == {u: spk for u, (spk, _, _) in utts.items()}
        assert text == {u: t for u, (_, t, _) in utts.items()}
        spk2utt = read_table(data / "spk2utt")
        assert {s: sorted(u.split()) for s, u in spk2utt.items()} == {
            s: sorted(u for u, (sp, _, _) in utts.items() if sp == s) for s in set(utt2spk.values())}
        for utt, (_, _, index) in utts.items():
            assert Path(wav_scp[utt]).is_absolute()
            audio, rate = read_audio(wav_scp[utt])
            want, want_rate = lj[index]
            assert rate == want_rate
            # 16-bit PCM written and read back losslessly (wav or flac): the very same samples
            np.testing.assert_array_equal(np.round(audio[:, 0] * 32768).astype(np.int16), want)
    assert "Successfully finished" in output


@pytest.mark.parametrize("corpus, held_out", [("vctk", ("dev", "eval1")), ("jvs", ("dev", "eval1")),
                                              ("libritts", ("dev-clean", "test-clean"))])
def test_multi_speaker_dev_and_eval_span_speakers(prepared, corpus, held_out):
    root = prepared[corpus][0]
    for name in held_out:
        speakers = set(read_table(root / "data" / name / "utt2spk").values())
        assert len(speakers) >= 2, f"{corpus}: data/{name} has one speaker: {speakers}"


def test_vctk_fails_clearly_on_a_speaker_with_too_few_utterances(prepared):
    root, args, _, _ = prepared["vctk"]
    before = (root / "data" / "tr_no_dev" / "utt2spk").read_text()
    proc = run_data_sh(root, *args[:2], "--num_dev", "1", "--num_eval", "2")
    assert proc.returncode != 0
    assert "speaker p227 has 3 utterances" in proc.stdout
    assert (root / "data" / "tr_no_dev" / "utt2spk").read_text() == before, "a set was rewritten"


@pytest.mark.parametrize("corpus", list(BUILDERS))
def test_data_sh_without_a_corpus_says_where_to_get_it(tmp_path, corpus):
    root = linked_recipe(tmp_path, REPO_ROOT / "egs2" / corpus / "voc1")
    proc = run_data_sh(root)
    assert proc.returncode != 0
    assert "no corpus: give --db_root DIR" in proc.stdout and "http" in proc.stdout
    proc = run_data_sh(root, "--db_root", str(tmp_path / "nowhere"))
    assert proc.returncode != 0 and "local/data.sh: " in proc.stdout
    assert not (root / "data" / "tr_no_dev").exists()


# The features and sets of ESPnet's recipes (github.com/espnet/espnet egs2/<corpus>/tts1/run.sh;
# n_mels/fmin/fmax: the defaults of egs2/TEMPLATE/tts1/tts.sh, which those run.sh keep).
ESPNET_FEATS = {"fs": "24000", "n_fft": "2048", "n_shift": "300", "win_length": "1200", "n_mels": "80",
                "fmin": "80", "fmax": "7600"}
ESPNET_SETS = {
    "vctk": ("tr_no_dev", "dev", "dev eval1"),
    "libritts": ("train-clean-460", "dev-clean", "dev-clean test-clean"),
    "jsut": ("tr_no_dev", "dev", "dev eval1"),
    "csmsc": ("tr_no_dev", "dev", "dev eval1"),
    "jvs": ("tr_no_dev", "dev", "dev eval1"),  # all speakers; spk=jvs010 gives tts1's jvs010_* sets
}


def run_sh_defaults(recipe: Path) -> dict[str, str]:
    """The variables of run.sh's corpus defaults block, as bash evaluates them."""
    names = [*ESPNET_FEATS, "train_set", "valid_set", "test_sets", "data_from"]
    script = ('eval "$(sed -n "/^# >>> corpus defaults/,/^# <<< corpus defaults/p" run.sh)"; '
              + "; ".join(f'echo "{n}=${{{n}}}"' for n in names))
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=recipe, capture_output=True,
                          text=True, check=True)
    return dict(line.split("=", 1) for line in proc.stdout.splitlines())


@pytest.mark.parametrize("corpus", list(BUILDERS))
def test_run_sh_has_the_tts1_recipe_features_and_their_preset(corpus):
    from espnet_hifigan.nets.presets import find_rate_preset
    from espnet_hifigan.train.configs import render_config

    recipe = REPO_ROOT / "egs2" / corpus / "voc1"
    values = run_sh_defaults(recipe)
    assert {k: values[k] for k in ESPNET_FEATS} == ESPNET_FEATS
    assert (values["train_set"], values["valid_set"], values["test_sets"]) == ESPNET_SETS[corpus]
    assert values["data_from"] == "", "stage 1 must run local/data.sh"
    # conf/ as setup.sh renders it for 24 kHz / hop 300 (test_presets builds and trains that
    # preset); a stale copy after a change of conf/hifigan_v1.yaml or the presets fails here
    preset = find_rate_preset(24000, 300)
    assert (recipe / "conf" / "train.yaml").read_text() == render_config(preset, "v1")
    assert (recipe / "conf" / "train_debug.yaml").read_text() == render_config(
        preset, "v3", template_name="hifigan_debug.yaml")


def test_run_sh_stage_1_on_the_vctk_miniature(prepared):
    """./run.sh --stage 1 --stop_stage 1: voc.sh's early checks of the recipe's features and
    config, local/data.sh on the flac corpus, the validation of its sets."""
    root, args, _, _ = prepared["vctk"]
    proc = run_recipe(root, "--stage", "1", "--stop_stage", "1", "--ngpu", "0",
                      "--local_data_opts", " ".join(args), fast=False)
    expect_success(proc, "vctk: ./run.sh --stage 1 --stop_stage 1")
    for name in ("tr_no_dev", "dev", "eval1"):
        assert f"data/{name}: OK" in proc.stdout


def check_sets(root: Path, expected: Expected) -> None:
    """data/<set> holds exactly the expected utterances, speakers and texts."""
    for name, utts in expected.items():
        data = root / "data" / name
        assert validate_data_dir(data) == [], f"data/{name} is not valid"
        assert read_table(data / "utt2spk") == {u: spk for u, (spk, _, _) in utts.items()}
        assert read_table(data / "text") == {u: t for u, (_, t, _) in utts.items()}


def test_vctk_080_layout(tmp_path, lj):
    """VCTK-Corpus 0.80 (ESPnet tts1's): wav48/<spk>/<utt>.wav."""
    corpus = tmp_path / "db" / "VCTK-Corpus"
    expected: Expected = {"tr_no_dev": {}, "dev": {}, "eval1": {}}
    for k, (spk, n) in enumerate((s, n) for s in ("p225", "p226") for n in (1, 2, 3)):
        utt = f"{spk}_{n:03d}"
        put(lj, k, corpus / "wav48" / spk / f"{utt}.wav")
        (corpus / "txt" / spk).mkdir(parents=True, exist_ok=True)
        (corpus / "txt" / spk / f"{utt}.txt").write_text(f"Text {k}.\n")
        expected[{3: "dev", 2: "eval1", 1: "tr_no_dev"}[n]][utt] = (spk, f"Text {k}.", k)
    root = linked_recipe(tmp_path, REPO_ROOT / "egs2" / "vctk" / "voc1")
    expect_success(run_data_sh(root, "--db_root", str(tmp_path / "db"), "--num_dev", "1", "--num_eval", "1"),
                   "vctk 0.80: local/data.sh")
    check_sets(root, expected)
    assert read_table(root / "data" / "dev" / "wav.scp")["p226_003"] == str(corpus / "wav48" / "p226" / "p226_003.wav")


def test_libritts_r_gives_train_960(tmp_path, lj):
    """LibriTTS-R (LibriTTS_R/, the same layout) with train-other-500: train-960 as libritts_r/tts1."""
    corpus = tmp_path / "db" / "LibriTTS_R"
    subsets = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean")
    for k, subset in enumerate(subsets):
        base = corpus / subset / f"{k + 1}" / "10" / f"{k + 1}_10_000000_000000"
        put(lj, k, base.with_suffix(".wav"))
        Path(f"{base}.normalized.txt").write_text(f"Text {k}.")
    root = linked_recipe(tmp_path, REPO_ROOT / "egs2" / "libritts" / "voc1")
    expect_success(run_data_sh(root, "--db_root", str(tmp_path / "db")), "libritts-r: local/data.sh")
    utts = {f"{k + 1}_10_000000_000000": (f"{k + 1}_10", f"Text {k}.", k) for k in range(4)}
    names = list(utts)
    check_sets(root, {
        "train-960": {u: utts[u] for u in names[:3]},
        "train-clean-460": {u: utts[u] for u in names[:2]},
        "dev-clean": {names[3]: utts[names[3]]},
    })
    assert not (root / "data" / "test-clean").exists()


def test_jvs_one_speaker_as_espnet(prepared, tmp_path):
    """--spk jvs002 and jvs/tts1's set names: only that speaker, parallel100 -> train."""
    _, args, expected, _ = prepared["jvs"]
    root = linked_recipe(tmp_path, REPO_ROOT / "egs2" / "jvs" / "voc1")
    expect_success(run_data_sh(root, *args, "--spk", "jvs002", "--train_set", "jvs002_tr_no_dev",
                               "--dev_set", "jvs002_dev", "--eval_set", "jvs002_eval1"), "jvs --spk jvs002")
    check_sets(root, {f"jvs002_{name}": {u: v for u, v in utts.items() if v[0] == "jvs002"}
                      for name, utts in expected.items()})
    assert not (root / "data" / "tr_no_dev").exists()


def test_csmsc_gb18030_labels(tmp_path, lj):
    args, expected = build_csmsc(lj, tmp_path / "db", encoding="gb18030")
    root = linked_recipe(tmp_path, REPO_ROOT / "egs2" / "csmsc" / "voc1")
    proc = run_data_sh(root, *args)
    expect_success(proc, "csmsc gb18030: local/data.sh")
    assert "read as GB18030" in proc.stdout
    check_sets(root, expected)
