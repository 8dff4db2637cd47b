"""The feature settings of foreign files, as the fields of a :class:`FeatureContract`.

Each reader turns one format's config into the keyword arguments of
:class:`~espnet_hifigan.contract.model.FeatureContract` (which calls them from its
``from_*_config`` constructors and :meth:`~espnet_hifigan.contract.model.FeatureContract.load`):

* :func:`espnet_tts_fields`: an ESPnet TTS ``config.yaml`` (``feats_extract: fbank`` =
  ``LogMelFbank``), raw or normalised features;
* :func:`official_fields`: an official jik876/hifi-gan ``config.json``;
* :func:`pwg_fields`: a ParallelWaveGAN ``config.yml``;
* :func:`packed_member`: the contract (or config) a packed ``model.zip`` carries.

The weights of those formats are read by :mod:`espnet_hifigan.formats`, which imports the
constants below. Nothing here imports torch or ESPnet.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from espnet_hifigan.contract.base import ContractError, parse_mapping
from espnet_hifigan.contract.normalization import Normalization
from espnet_hifigan.core.fileio import PathLike, resolve_relative

# ----------------------------------------------------------------------------- ESPnet TTS
# espnet2.tts.feats_extract.log_mel_fbank.LogMelFbank's constructor defaults (what a TTS config
# leaves out; tests/test_contract.py compares them with ESPnet's signature).
ESPNET_FBANK_DEFAULTS: Dict[str, Any] = dict(
    fs=16000, n_fft=1024, win_length=None, hop_length=256, window="hann", center=True, normalized=False,
    onesided=True, n_mels=80, fmin=80, fmax=7600, htk=False, log_base=10.0,
)  # fmt: skip
# espnet2 LogMelFbank / Stft / LogMel: the fields its config does not carry.
ESPNET_FBANK_CONVENTIONS: Dict[str, Any] = dict(mel_floor=1.0e-10, magnitude_eps=1.0e-10, magnitude_eps_mode="clamp")
# ESPnet tts1 recipes' features as complete settings (sampling-rate independent fields only).
ESPNET_STYLE: Dict[str, Any] = dict(
    ESPNET_FBANK_CONVENTIONS, window="hann", fmin=80.0, fmax=7600.0, log_base=10.0, padding="center"
)
# Directory names ESPnet's tts_inference writes under <decode_dir>/<set>/.
ESPNET_NORM_DIR = "norm"
ESPNET_DENORM_DIR = "denorm"

# ----------------------------------------------------------------------------- official
# The official mel (meldataset.mel_spectrogram): reflect padding of (n_fft - hop) / 2 each side
# with center=False, magnitude sqrt(power + 1e-9), mel floor 1e-5, natural log; fmin/fmax are
# those of the official LJSpeech configs (0 and 8000 Hz).
OFFICIAL_STYLE: Dict[str, Any] = dict(
    window="hann",
    fmin=0.0,
    fmax=8000.0,
    log_base=None,
    mel_floor=1.0e-5,
    magnitude_eps=1.0e-9,
    magnitude_eps_mode="add",
    padding="official",
)

# ----------------------------------------------------------------------------- ParallelWaveGAN
# parallel_wavegan.bin.preprocess.logmelfilterbank: the fields its config does not carry.
PWG_CONVENTIONS: Dict[str, Any] = dict(
    mel_floor=1.0e-10, magnitude_eps=0.0, magnitude_eps_mode="clamp", padding="center",
    mel_scale="slaney", stft_normalized=False,
)  # fmt: skip
PWG_DEFAULT_LOG_BASE = 10.0
# Key under which an exported config.yml carries our full contract.
PWG_CONTRACT_KEY = "espnet_hifigan_feature_contract"

# ----------------------------------------------------------------------------- packed model.zip
PACK_CONFIG = "config.yaml"
PACK_CONTRACT = "feature_contract.yaml"


def is_espnet_tts_config(data: Mapping[str, Any]) -> bool:
    """Whether a config mapping is an ESPnet TTS (or gan_tts) experiment's ``config.yaml``."""
    return "tts" in data and "feats_extract" in data


def espnet_tts_fields(
    config: Mapping[str, Any], normalized: bool, base_dirs: Sequence[PathLike], source: str
) -> Dict[str, Any]:
    """Contract fields of an ESPnet TTS experiment's features (``feats_extract: fbank``).

    ``LogMelFbank`` conventions: ``Stft`` with reflect ``center`` padding, power floor 1e-10
    before the square root, mel floor 1e-10, ``log_base`` (default 10), Slaney mel bank
    (``htk: true`` gives the HTK scale).

    Args:
        config: The TTS ``config.yaml`` mapping.
        normalized: The normalised features (``norm/feats.scp``: normalised with the TTS's
            ``normalize_conf.stats_file`` if the TTS normalises) instead of the raw ones.
        base_dirs: Where to look for a relative stats file besides the current directory.
        source: Description for messages.

    Raises:
        ContractError: Not fbank features, unknown keys, or unusable normalisation settings.
    """
    kind = config.get("feats_extract")
    if kind != "fbank":
        raise ContractError(
            f"{source}: feats_extract is {kind!r}; only 'fbank' (LogMelFbank) TTS features can feed a mel vocoder"
        )
    conf = dict(ESPNET_FBANK_DEFAULTS)
    given = config.get("feats_extract_conf") or {}
    unknown = set(given) - set(conf)
    if unknown:
        raise ContractError(f"{source}: unknown feats_extract_conf keys {sorted(unknown)}")
    conf.update(given)
    if not conf.get("onesided", True):
        raise ContractError(f"{source}: onesided=false STFT features are not mel features a vocoder can use")
    normalize = None
    if normalized and config.get("normalize") is not None:
        if config["normalize"] != "global_mvn":
            raise ContractError(f"{source}: normalize {config['normalize']!r} is not supported (global_mvn only)")
        norm_conf = config.get("normalize_conf") or {}
        if norm_conf.get("stats_file") is None:
            raise ContractError(f"{source}: normalize_conf.stats_file is not set")
        stats = resolve_relative(norm_conf["stats_file"], [Path(b) for b in base_dirs])
        normalize = Normalization.from_stats_file(
            stats, norm_conf.get("norm_means", True), norm_conf.get("norm_vars", True)
        )
    return dict(
        fs=conf["fs"],
        n_fft=conf["n_fft"],
        hop_length=conf["hop_length"],
        win_length=conf["win_length"],
        window=conf["window"],
        n_mels=conf["n_mels"],
        fmin=conf["fmin"],
        fmax=conf["fmax"],
        log_base=conf["log_base"],
        padding="center" if conf["center"] else "none",
        mel_scale="htk" if conf["htk"] else "slaney",
        stft_normalized=bool(conf["normalized"]),
        normalize=normalize,
        source=f"{source} ({'normalised' if normalize else 'raw'} features)",
        **ESPNET_FBANK_CONVENTIONS,
    )


def official_fields(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Contract fields of the mel an official ``config.json`` describes."""
    return dict(
        OFFICIAL_STYLE,
        fs=config["sampling_rate"],
        n_fft=config["n_fft"],
        hop_length=config["hop_size"],
        win_length=config["win_size"],
        n_mels=config["num_mels"],
        fmin=config["fmin"],
        fmax=config["fmax"],
    )


def pwg_fields(config: Mapping[str, Any], normalize: Optional[Normalization]) -> Dict[str, Any]:
    """Contract fields of a ParallelWaveGAN ``config.yml``.

    A config exported by us carries the full contract under :data:`PWG_CONTRACT_KEY` and that
    is used; otherwise PWG's ``logmelfilterbank`` conventions apply (librosa ``|stft|`` with
    ``center=True``, mel floor 1e-10, ``log_base`` default 10).
    """
    if PWG_CONTRACT_KEY in config:
        data = dict(config[PWG_CONTRACT_KEY])
        data.pop("normalize", None)
        data.pop("contract_version", None)
        return dict(data, normalize=normalize)
    return dict(
        fs=config["sampling_rate"],
        n_fft=config["fft_size"],
        hop_length=config["hop_size"],
        win_length=config.get("win_length"),
        window=config.get("window", "hann"),
        n_mels=config["num_mels"],
        fmin=config.get("fmin"),
        fmax=config.get("fmax"),
        log_base=config.get("log_base", PWG_DEFAULT_LOG_BASE),
        normalize=normalize,
        **PWG_CONVENTIONS,
    )


def packed_member(path: PathLike) -> Tuple[str, Dict[str, Any], str]:
    """What a packed ``model.zip`` says about its features.

    Returns:
        (``"contract"`` or ``"config"``, the member's mapping, a source description): the saved
        contract if the zip has one, else its training config.

    Raises:
        ContractError: a zip that is not a packed model.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for kind, member in (("contract", PACK_CONTRACT), ("config", PACK_CONFIG)):
                if member in names:
                    source = f"{path}:{member}"
                    return kind, parse_mapping(zf.read(member).decode("utf-8", "replace"), source), source
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ContractError(f"{path} is a truncated or corrupt zip archive ({e}): copy or pack it again") from None
    raise ContractError(f"{path} is a zip without {PACK_CONTRACT} or {PACK_CONFIG}")
