"""ESPnet TTS experiments: their features (``LogMelFbank`` configs) and gan_tts vocoder weights.

* :func:`tts_contract`: the feature contract of an ESPnet TTS ``config.yaml``
  (``feats_extract: fbank`` = ``LogMelFbank``: log10, mel and power floors 1e-10,
  ``center=True``; ``normalize: global_mvn`` + ``feats_stats.npz``), for the raw features
  (``denorm/feats.scp`` of ``tts_inference``) or the normalised ones (``norm/feats.scp``).
* :func:`load_espnet_gan_tts`: the HiFi-GAN generator of a ``gan_tts`` ``joint_text2wav`` model.

Torch and ESPnet are imported lazily: the contract's discovery uses this module.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from espnet_hifigan.contract.base import ContractError, PathLike, load_mapping, resolve_relative
from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.contract.normalization import Normalization

if TYPE_CHECKING:
    from espnet_hifigan.formats.espnet_layout import StateDict

# espnet2 LogMelFbank / Stft / LogMel: the fields its config does not carry.
ESPNET_FBANK_CONVENTIONS: Dict[str, Any] = dict(mel_floor=1.0e-10, magnitude_eps=1.0e-10, magnitude_eps_mode="clamp")
# ESPnet tts1 recipes' features as complete settings (sampling-rate independent fields only).
ESPNET_STYLE: Dict[str, Any] = dict(
    ESPNET_FBANK_CONVENTIONS, window="hann", fmin=80.0, fmax=7600.0, log_base=10.0, padding="center"
)
# Directory names ESPnet's tts_inference writes under <decode_dir>/<set>/.
ESPNET_NORM_DIR = "norm"
ESPNET_DENORM_DIR = "denorm"


def is_espnet_tts_config(data: Mapping[str, Any]) -> bool:
    """Whether a config mapping is an ESPnet TTS (or gan_tts) experiment's ``config.yaml``."""
    return "tts" in data and "feats_extract" in data


def tts_contract(
    config: Union[PathLike, Mapping[str, Any]],
    normalized: bool = False,
    base_dirs: Sequence[PathLike] = (),
    source: str = "",
) -> FeatureContract:
    """The features of an ESPnet TTS experiment (``feats_extract: fbank``).

    ``LogMelFbank`` conventions: ``Stft`` with reflect ``center`` padding, power floor 1e-10
    before the square root, mel floor 1e-10, ``log_base`` (default 10), Slaney mel bank
    (``htk: true`` gives the HTK scale).

    Args:
        config: The TTS ``config.yaml`` (path or mapping).
        normalized: Describe the normalised features (``norm/feats.scp``: normalised with
            the TTS's ``normalize_conf.stats_file`` if the TTS normalises) instead of the raw
            ones (``denorm/feats.scp``).
        base_dirs: Where to look for a relative stats file besides the current directory
            (default: the parents of the config file, i.e. the recipe directory).
        source: Description for messages.
    """
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    if not isinstance(config, Mapping):
        path = Path(config)
        source = source or str(path)
        base_dirs = tuple(base_dirs) or tuple(path.resolve().parents)
        config = load_mapping(path)
    source = source or "ESPnet TTS config"
    kind = config.get("feats_extract")
    if kind != "fbank":
        raise ContractError(
            f"{source}: feats_extract is {kind!r}; only 'fbank' (LogMelFbank) TTS features can feed a mel vocoder"
        )
    signature = inspect.signature(LogMelFbank.__init__)
    conf = {n: p.default for n, p in signature.parameters.items() if n != "self"}
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
    return FeatureContract(
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


def load_espnet_gan_tts(
    model_file: Union[str, Path], config_file: Union[str, Path]
) -> Tuple[Dict[str, Any], StateDict, Optional[Normalization]]:
    """The HiFi-GAN vocoder of an ESPnet ``gan_tts`` experiment (``tts: joint_text2wav``).

    The joint model's vocoder consumes the text2mel output, i.e. features normalised with the
    experiment's ``normalize`` statistics: the converted vocoder takes raw log-mel and applies
    that normalisation itself (``normalize.mean``/``normalize.std`` of the model).

    Args:
        model_file: The experiment's ``*.pth`` (``tts.generator.vocoder.*`` keys).
        config_file: Its ``config.yaml``.

    Returns:
        Our config, our state dict, and the normalisation the vocoder applies.
    """
    import torch
    from espnet2.gan_tts.joint.joint_text2wav import JointText2Wav

    from espnet_hifigan.formats.espnet_layout import (
        UnsupportedConversion,
        convert_espnet_generator,
        espnet_generator_state,
    )

    config_file = Path(config_file)
    config = load_mapping(config_file)
    tts = config.get("tts")
    tts_conf = config.get("tts_conf") or {}
    if tts != "joint_text2wav":
        raise UnsupportedConversion(f"{config_file}: tts {tts!r} has no separable mel vocoder (joint_text2wav only)")
    defaults = {n: p.default for n, p in inspect.signature(JointText2Wav.__init__).parameters.items()}
    vocoder_type = tts_conf.get("vocoder_type", defaults["vocoder_type"])
    if vocoder_type != "hifigan_generator":
        raise UnsupportedConversion(f"{config_file}: vocoder_type {vocoder_type!r} is not hifigan_generator")
    if tts_conf.get("use_pqmf", defaults["use_pqmf"]):
        raise UnsupportedConversion(f"{config_file}: use_pqmf (multi-band) vocoders are not supported")
    contract = tts_contract(config_file)
    params = dict(tts_conf.get("vocoder_params") or defaults["vocoder_params"], in_channels=contract.n_mels)
    from espnet_hifigan.model_files import load_weights

    state = load_weights(model_file, "checkpoint")
    gen_state = espnet_generator_state(state, "tts.generator.vocoder.")
    normalization = None
    mean = std = None
    if config.get("normalize") is not None:
        normalization = tts_contract(config_file, normalized=True).normalize
        mean, std = state["normalize.mean"], state["normalize.std"]
    ours_config, ours = convert_espnet_generator(gen_state, params, contract, normalization, mean, std)
    return ours_config, ours, normalization

