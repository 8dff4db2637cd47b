"""The official jik876/hifi-gan format: its mel conventions, ``config.json`` and ``g_*`` weights.

The official training script saves ``g_XXXXXXXX`` = ``{"generator": state_dict}`` next to its
``config.json``. Our generator's parameter names are the official ones, so the state dict loads
as is; the config is translated once, by
:meth:`~espnet_hifigan.contract.model.FeatureContract.from_official_config` (the mel: the
official conventions are :data:`espnet_hifigan.contract.foreign.OFFICIAL_STYLE`) and
:func:`official_config_to_ours` (our config sections, built on that contract).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Union

from espnet_hifigan.contract.base import load_mapping
from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.formats.weights import load_weights
from espnet_hifigan.nets.generator import HiFiGANGenerator


def official_config_to_ours(official: Mapping[str, Any], source: str = "") -> Dict[str, Any]:
    """Translate an official ``config.json`` into our config sections.

    Returns:
        dict with ``feats_extract_conf`` (the official mel), ``generator_conf`` and ``model_conf``
        (segment size, fmax_for_loss), ready for :class:`~espnet_hifigan.inference.vocoder.Vocoder`.
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
        feats_extract_conf=FeatureContract.from_official_config(official, source).logmel_params(),
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
