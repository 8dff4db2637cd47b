"""Feature contracts: derivation from ESPnet/official/PWG configs, comparison, reconciliation."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from espnet2.layers.global_mvn import GlobalMVN
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from espnet_hifigan.bin import tts_contract
from espnet_hifigan.contract import (
    ContractError,
    ContractMismatch,
    FeatureContract,
    Normalization,
    discover_contract,
    format_table,
    pick_tts_feats,
    reconcile,
)
from espnet_hifigan.core.fileio import file_sha256
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.train.data_checks import check_training_data, write_vocoder_contract

REPO_ROOT = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = REPO_ROOT / "conf" / "hifigan_debug.yaml"
LOGMEL_ATOL = 1e-4  # float32 STFT/filterbank rounding, in log units
N_MELS = 80


def tts_config(**conf_overrides) -> dict:
    """An ESPnet tts1 config.yaml as tts.sh writes it (fbank + global_mvn)."""
    conf = dict(fs=16000, n_fft=1024, hop_length=256, win_length=None, n_mels=N_MELS, fmin=80, fmax=7600)
    conf.update(conf_overrides)
    return dict(
        tts="tacotron2",
        feats_extract="fbank",
        feats_extract_conf=conf,
        normalize="global_mvn",
        normalize_conf=dict(stats_file="exp/tts_stats/train/feats_stats.npz"),
    )


@pytest.fixture
def stats_file(tmp_path) -> Path:
    """ESPnet feats_stats.npz with a non-trivial mean and variance."""
    rng = np.random.default_rng(0)
    feats = rng.normal(-4.0, 1.5, size=(500, N_MELS)) + np.linspace(0, 2, N_MELS)
    path = tmp_path / "exp/tts_stats/train/feats_stats.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, count=np.array(len(feats)), sum=feats.sum(0), sum_square=(feats**2).sum(0))
    return path


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


# ------------------------------------------------------------------------------ derivation
def test_espnet_tts_config_equals_our_espnet_style_vocoder():
    tts = FeatureContract.from_espnet_tts_config(tts_config())
    vocoder = FeatureContract.from_train_config(DEBUG_CONFIG)
    assert tts.compare(vocoder) == []
    assert (tts.log_base, tts.mel_floor, tts.magnitude_eps, tts.padding) == (10.0, 1e-10, 1e-10, "center")


def test_missing_fbank_fields_take_logmelfbank_defaults():
    contract = FeatureContract.from_espnet_tts_config(dict(feats_extract="fbank", feats_extract_conf=dict(fs=22050)))
    assert (contract.n_fft, contract.hop_length, contract.win_length, contract.n_mels) == (1024, 256, 1024, 80)
    assert (contract.fmin, contract.fmax, contract.window) == (80.0, 7600.0, "hann")


@pytest.mark.parametrize(
    "conf",
    [
        dict(fs=22050, n_fft=1024, hop_length=256, win_length=None, n_mels=80, fmin=80, fmax=7600),
        dict(fs=16000, n_fft=512, hop_length=128, win_length=400, n_mels=64, fmin=None, fmax=None, log_base=None),
        dict(fs=24000, n_fft=2048, hop_length=300, win_length=1200, n_mels=100, fmin=50, fmax=12000, log_base=2.0),
    ],
)
def test_derived_contract_reproduces_espnet_features(conf):
    """Our extractor built from the derived contract computes ESPnet's LogMelFbank features."""
    contract = FeatureContract.from_espnet_tts_config(dict(feats_extract="fbank", feats_extract_conf=conf))
    torch.manual_seed(0)
    wav = 0.3 * torch.randn(1, conf["fs"] // 2)
    ref, _ = LogMelFbank(**conf)(wav, torch.tensor([wav.size(1)]))
    ours, _ = LogMelSpectrogram(**contract.logmel_params())(wav)
    assert ours.shape == ref.shape
    assert ours.shape[1] == contract.num_frames(wav.size(1))
    assert (ours - ref).abs().max().item() <= LOGMEL_ATOL


def test_official_and_parallel_wavegan_conventions():
    official = FeatureContract.from_official_config(
        dict(sampling_rate=22050, n_fft=1024, hop_size=256, win_size=1024, num_mels=80, fmin=0, fmax=8000)
    )
    assert (official.log_base, official.mel_floor, official.padding, official.magnitude_eps_mode) == (None, 1e-5, "official", "add")
    tts = FeatureContract.from_espnet_tts_config(tts_config(fs=22050))
    names = [d.name for d in official.compare(tts)]
    assert names == ["fmin", "fmax", "log_base", "mel_floor", "magnitude_eps", "magnitude_eps_mode", "padding"]
    pwg = FeatureContract.from_pwg_config(
        dict(sampling_rate=22050, fft_size=1024, hop_size=256, win_length=None, window="hann", num_mels=80, fmin=80, fmax=7600)
    )
    # PWG takes |stft| without a power floor; everything else matches ESPnet's mels.
    assert [d.name for d in pwg.compare(tts)] == ["magnitude_eps"]


def test_unrepresentable_espnet_settings_are_recorded_and_refused():
    htk = FeatureContract.from_espnet_tts_config(tts_config(htk=True))
    assert htk.mel_scale == "htk"
    assert [d.name for d in htk.compare(FeatureContract.from_espnet_tts_config(tts_config()))] == ["mel_scale"]
    with pytest.raises(ContractError, match="mel_scale=htk"):
        htk.logmel_params()
    assert FeatureContract.from_espnet_tts_config(tts_config(center=False)).padding == "none"
    with pytest.raises(ContractError, match="'spectrogram'"):
        FeatureContract.from_espnet_tts_config(dict(feats_extract="spectrogram", feats_extract_conf={}))
    with pytest.raises(ContractError, match="unknown feats_extract_conf keys"):
        FeatureContract.from_espnet_tts_config(tts_config(n_fftt=512))


@pytest.mark.parametrize("padding, samples, frames", [("center", 1000, 4), ("official", 1000, 3), ("none", 2048, 5)])
def test_num_frames_follows_padding(padding, samples, frames):
    contract = dataclasses.replace(FeatureContract.from_train_config(DEBUG_CONFIG), padding=padding)
    assert contract.num_frames(samples) == frames


# ------------------------------------------------------------------------------ comparison
@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("fmax", 8000, "8000.0"),
        ("log_base", None, "e (natural log)"),
        ("n_mels", 64, "64"),
        ("hop_length", 300, "300"),
        ("window", "hamming", "hamming"),
        ("win_length", 800, "800"),
    ],
)
def test_compare_names_the_differing_field(field, value, shown):
    tts = FeatureContract.from_espnet_tts_config(tts_config())
    other = FeatureContract.from_train_config({"feats_extract_conf": {**tts.logmel_params(), field: value}})
    diffs = tts.compare(other)
    assert [d.name for d in diffs] == [field]
    table = format_table(diffs, "TTS", "vocoder")
    row = [line for line in table.splitlines() if line.startswith(field)]
    assert len(row) == 1 and shown in row[0]
    with pytest.raises(ContractMismatch) as err:
        reconcile(tts, other, labels=("TTS", "vocoder"))
    assert field in str(err.value) and shown in str(err.value)


def test_equal_values_in_other_spellings_are_equal():
    a = FeatureContract.from_logmel(dict(fs=16000, win_length=None, fmin=None, fmax=None, log_base=math.e))
    b = FeatureContract.from_logmel(dict(fs=16000, win_length=1024, fmin=0, fmax=8000.0, log_base=None))
    assert a.compare(b) == []
    assert a == b


# ------------------------------------------------------------------------------ normalisation
def test_normalisation_only_difference_is_reconciled(stats_file):
    raw = FeatureContract.from_espnet_tts_config(tts_config())
    normalized = dataclasses.replace(raw, normalize=Normalization.from_stats_file(stats_file))
    assert [d.name for d in normalized.compare(raw)] == ["normalize"]
    conversion = reconcile(normalized, raw)
    assert not conversion.identity and "de-normalising" in conversion.describe()
    mvn = GlobalMVN(stats_file)
    x = torch.randn(37, N_MELS)
    expected = x * mvn.std.float() + mvn.mean.float()
    np.testing.assert_allclose(conversion(x.numpy()), expected.numpy(), atol=1e-5, rtol=0)
    # And the other way round: raw features for a consumer of normalised ones.
    back = reconcile(raw, normalized)(expected.numpy())
    np.testing.assert_allclose(back, x.numpy(), atol=1e-5, rtol=0)
    assert reconcile(raw, raw).identity


def test_normalisation_does_not_excuse_other_differences(stats_file):
    normalized = FeatureContract.from_espnet_tts_config(tts_config(), normalized=True, base_dirs=[stats_file.parents[3]])
    assert normalized.normalize is not None
    vocoder = FeatureContract.from_train_config({"feats_extract_conf": {**normalized.logmel_params(), "fmax": 8000}})
    with pytest.raises(ContractMismatch, match="fmax") as err:
        reconcile(normalized, vocoder)
    assert [d.name for d in err.value.diffs] == ["fmax"]


def test_changed_stats_are_refused(stats_file):
    contract = dataclasses.replace(
        FeatureContract.from_espnet_tts_config(tts_config()), normalize=Normalization.from_stats_file(stats_file)
    )
    np.savez(stats_file, count=np.array(10), sum=np.zeros(N_MELS), sum_square=np.ones(N_MELS) * 10)
    with pytest.raises(ContractError, match="changed"):
        reconcile(contract, contract.raw())


def test_relative_stats_path_is_found_from_the_recipe_dir(tmp_path, stats_file):
    config = write_yaml(tmp_path / "exp/tts_train/config.yaml", tts_config())
    contract = FeatureContract.from_espnet_tts_config(config, normalized=True)
    assert Path(contract.normalize.stats_file).resolve() == stats_file.resolve()
    assert contract.normalize.sha256 is not None


# ------------------------------------------------------------------------------ files
def test_save_load_round_trip(tmp_path, stats_file):
    contract = dataclasses.replace(
        FeatureContract.from_espnet_tts_config(tts_config(htk=True)), normalize=Normalization.from_stats_file(stats_file)
    )
    path = contract.save(tmp_path / "feature_contract.yaml", vocoder_normalize=Normalization(stats_file="x.npz"))
    loaded = FeatureContract.load(path)
    assert loaded == contract
    assert loaded.compare(contract) == []
    assert "# highest mel frequency" in path.read_text()


def test_feats_conf_yaml_is_the_recipe_flat_format(tmp_path):
    """save_feats_conf writes exactly LogMelSpectrogram's arguments, as voc.sh stage 3 does."""
    contract = FeatureContract.from_train_config(DEBUG_CONFIG)
    data = yaml.safe_load(contract.save_feats_conf(tmp_path / "feats_conf.yaml").read_text())
    config = yaml.safe_load(DEBUG_CONFIG.read_text())["feats_extract_conf"]
    params = LogMelSpectrogram(**config).get_parameters()
    assert set(data) == set(params)
    assert FeatureContract.load(tmp_path / "feats_conf.yaml") == contract
    with pytest.raises(ContractError, match="raw features only"):
        dataclasses.replace(contract, normalize=Normalization()).save_feats_conf(tmp_path / "x.yaml")


def test_load_detects_the_file_kind(tmp_path):
    tts = write_yaml(tmp_path / "tts/config.yaml", tts_config())
    official = tmp_path / "config.json"
    official.write_text('{"sampling_rate": 22050, "n_fft": 1024, "hop_size": 256, "win_size": 1024, '
                        '"num_mels": 80, "fmin": 0, "fmax": 8000}')
    pwg = write_yaml(tmp_path / "pwg/config.yml", dict(sampling_rate=24000, fft_size=2048, hop_size=300, num_mels=80,
                                                       generator_params={}))
    assert FeatureContract.load(tts).padding == "center"
    assert FeatureContract.load(official).padding == "official"
    assert FeatureContract.load(pwg).fs == 24000
    assert FeatureContract.load(DEBUG_CONFIG) == FeatureContract.from_train_config(DEBUG_CONFIG)
    with pytest.raises(ContractError, match="not found"):
        FeatureContract.load(tmp_path / "missing.yaml")
    with pytest.raises(ContractError, match="does not describe"):
        FeatureContract.load(write_yaml(tmp_path / "other.yaml", dict(foo=1)))


# ------------------------------------------------------------------------------ ESPnet decode dirs
def _tts_decode_dir(root: Path, config: dict, subs=("norm", "denorm")) -> Path:
    write_yaml(root / "exp/tts/config.yaml", config)
    set_dir = root / "exp/tts/decode_best/test"
    for sub in subs:
        (set_dir / sub).mkdir(parents=True)
        np.save(set_dir / sub / "utt1.npy", np.zeros((5, N_MELS), dtype=np.float32))
        (set_dir / sub / "feats.scp").write_text(f"utt1 exp/tts/decode_best/test/{sub}/utt1.npy\n")
    return set_dir


def test_discover_contract_of_tts_inference_output(tmp_path, stats_file):
    set_dir = _tts_decode_dir(tmp_path, tts_config())
    norm = discover_contract(set_dir / "norm/feats.scp")
    denorm = discover_contract(set_dir / "denorm/feats.scp")
    assert norm.normalize is not None and Path(norm.normalize.stats_file).resolve() == stats_file.resolve()
    assert denorm.normalize is None
    dump = tmp_path / "dump/raw/test"
    dump.mkdir(parents=True)
    (dump / "feats.scp").write_text("")
    assert discover_contract(dump / "feats.scp") is None
    FeatureContract.from_train_config(DEBUG_CONFIG).save_feats_conf(dump / "feats_conf.yaml")
    assert discover_contract(dump / "feats.scp") == FeatureContract.from_train_config(DEBUG_CONFIG)


def test_pick_tts_feats_prefers_raw_then_converts(tmp_path, stats_file):
    vocoder = FeatureContract.from_train_config(DEBUG_CONFIG)
    set_dir = _tts_decode_dir(tmp_path, tts_config())
    scp, contract, conversion = pick_tts_feats(set_dir, tmp_path / "exp/tts/config.yaml", vocoder)
    assert scp.parent.name == "denorm" and conversion.identity
    (set_dir / "denorm/feats.scp").unlink()
    scp, contract, conversion = pick_tts_feats(set_dir, tmp_path / "exp/tts/config.yaml", vocoder)
    assert scp.parent.name == "norm" and not conversion.identity


def test_pick_tts_feats_of_an_unnormalised_tts(tmp_path):
    """Without normalize, tts_inference writes raw mels to norm/ only."""
    config = {k: v for k, v in tts_config().items() if not k.startswith("normalize")}
    set_dir = _tts_decode_dir(tmp_path, config, subs=("norm",))
    scp, contract, conversion = pick_tts_feats(set_dir, tmp_path / "exp/tts/config.yaml", FeatureContract.from_train_config(DEBUG_CONFIG))
    assert scp.parent.name == "norm" and contract.normalize is None and conversion.identity


# ------------------------------------------------------------------------------ tts_contract CLI
def test_tts_contract_prints_recipe_options(tmp_path, capsys):
    config = write_yaml(tmp_path / "tts/config.yaml", tts_config(fs=22050, fmin=0, fmax=8000, win_length=800))
    assert tts_contract.main(["--tts_config", str(config), "--print_recipe_opts", "--vocoder", str(DEBUG_CONFIG)]) == 0
    lines = capsys.readouterr().out.split()
    assert lines == ["fs=22050", "n_fft=1024", "n_shift=256", "win_length=800", "n_mels=80", "fmin=0", "fmax=8000"]


def test_tts_contract_refuses_a_log_base_mismatch(tmp_path, caplog):
    config = write_yaml(tmp_path / "tts/config.yaml", tts_config(log_base=None))
    assert tts_contract.main(["--tts_config", str(config), "--print_recipe_opts", "--vocoder", str(DEBUG_CONFIG)]) == 1
    assert "log_base" in caplog.text and "e (natural log)" in caplog.text
    assert tts_contract.main(["--tts_config", str(config), "--vocoder", str(DEBUG_CONFIG)]) == 1


# ------------------------------------------------------------------------------ training hooks
def test_write_vocoder_contract_records_stats_digest(tmp_path, stats_file):
    config = dict(yaml.safe_load(DEBUG_CONFIG.read_text()), normalize_conf=dict(stats_file=str(stats_file)))
    path = write_vocoder_contract(config, tmp_path / "exp")
    data = yaml.safe_load(path.read_text())
    assert data["normalize"] is None  # the vocoder's input is raw log-mel
    assert data["vocoder_normalize"]["sha256"] == file_sha256(stats_file)
    assert FeatureContract.load(path) == FeatureContract.from_train_config(config)


def test_check_training_data_stops_on_other_features(tmp_path):
    config = yaml.safe_load(DEBUG_CONFIG.read_text())
    good, bad, bare = tmp_path / "good", tmp_path / "bad", tmp_path / "bare"
    FeatureContract.from_train_config(config).save_feats_conf(good / "feats_conf.yaml")
    dataclasses.replace(FeatureContract.from_train_config(config), fmax=8000.0).save(bad / "feature_contract.yaml")
    bare.mkdir()

    def entries(d: Path) -> list:
        return [[str(d / "wav.scp"), "speech", "sound"], [str(d / "feats.scp"), "feats", "kaldi_ark"]]

    assert check_training_data(dict(config, train_data_path_and_name_and_type=entries(good),
                                    valid_data_path_and_name_and_type=entries(bare),
                                    assume_raw_features=True)) == [str(bare / "feats.scp")]
    with pytest.raises(ContractError, match="assume_raw_features"):  # undeclared: refused
        check_training_data(dict(config, train_data_path_and_name_and_type=entries(good),
                                 valid_data_path_and_name_and_type=entries(bare)))
    with pytest.raises(ContractMismatch, match="fmax"):
        check_training_data(dict(config, train_data_path_and_name_and_type=entries(good),
                                 valid_data_path_and_name_and_type=entries(bad)))


def test_espnet_fbank_defaults_are_espnets():
    """The TTS config reader's defaults (contract.foreign, torch-free) are LogMelFbank's own."""
    import inspect

    from espnet_hifigan.contract.foreign import ESPNET_FBANK_DEFAULTS

    signature = inspect.signature(LogMelFbank.__init__)
    assert ESPNET_FBANK_DEFAULTS == {n: p.default for n, p in signature.parameters.items() if n != "self"}

