"""The official jik876/hifi-gan format: its mel conventions, ``config.json`` and ``g_*`` weights.

The official training script saves ``g_XXXXXXXX`` = ``{"generator": state_dict}`` next to its
``config.json``. Our generator's parameter names are the official ones, so the state dict loads
as is; the config is translated once, by :func:`official_contract` (the mel) and
:func:`official_config_to_ours` (our config sections, built on that contract).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Union

from espnet_hifigan.contract.base import PathLike, load_mapping
from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.generator import HiFiGANGenerator
from espnet_hifigan.model_files import load_weights

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


def official_contract(config: Union[PathLike, Mapping[str, Any]], source: str = "") -> FeatureContract:
    """The mel of an official ``config.json`` (path or mapping)."""
    if not isinstance(config, Mapping):
        source = source or str(config)
        config = load_mapping(config)
    return FeatureContract(
        **dict(
            OFFICIAL_STYLE,
            fs=config["sampling_rate"],
            n_fft=config["n_fft"],
            hop_length=config["hop_size"],
            win_length=config["win_size"],
            n_mels=config["num_mels"],
            fmin=config["fmin"],
            fmax=config["fmax"],
        ),
        source=source or "official config.json",
    )


def official_config_to_ours(official: Mapping[str, Any], source: str = "") -> Dict[str, Any]:
    """Translate an official ``config.json`` into our config sections.

    Returns:
        dict with ``feats_extract_conf`` (the official mel), ``generator_conf`` and ``model_conf``
        (segment size, fmax_for_loss), ready for :class:`~espnet_hifigan.api.Vocoder`.
    """
    generator = dict(
        upsample_initial_channel=official["upsample_initial_channel"],
        upsample_rates=list(official["upsample_rates"]),
        upsample_kernel_sizes=list(official["upsample_kernel_sizes"]),
        resblock=str(official["resblock"]),
        resblock_kernel_sizes=list(official["resblock_kernel_sizes"]),
        resblock_dilation_sizes=[list(d) for d in official["resblock_dilation_sizes"]],
    )
    model = dict(
        segment_size=official["segment_size"],
        mel_loss_conf=dict(fmin=official["fmin"], fmax=official.get("fmax_for_loss")),
    )
    return dict(
        feats_extract="log_mel",
        feats_extract_conf=official_contract(official, source).logmel_params(),
        normalize=None,
        generator="hifigan",
        generator_conf=generator,
        model_conf=model,
    )


def load_official_generator(
    checkpoint: Union[str, Path], config_json: Union[str, Path]
) -> Tuple[HiFiGANGenerator, Dict[str, Any]]:
    """Load an official ``g_XXXXXXXX`` checkpoint with its ``config.json``.

    Returns:
        The generator (weight norm applied, as trained) and our translated config.
    """
    config = official_config_to_ours(load_mapping(config_json), source=str(config_json))
    generator = HiFiGANGenerator(in_channels=config["feats_extract_conf"]["n_mels"], **config["generator_conf"])
    state = load_weights(checkpoint, "checkpoint")
    if "generator" not in state:
        raise KeyError(f"{checkpoint} has no 'generator' entry (keys: {sorted(state)[:5]})")
    generator.load_state_dict(state["generator"])
    return generator, config
