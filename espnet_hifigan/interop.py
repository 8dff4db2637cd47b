"""Weights from other HiFi-GAN implementations.

* jik876/hifi-gan (official): ``g_XXXXXXXX`` = ``{"generator": state_dict}`` plus its
  ``config.json``. Our parameter names are the official ones, so the state dict loads as is.
* ESPnet ``espnet2.gan_tts.hifigan`` modules: keys are renamed by :func:`espnet_generator_to_ours`
  and :func:`espnet_discriminator_to_ours` (tested for output parity in ``tests/``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, Union

import torch

from espnet_hifigan.features import OFFICIAL_STYLE
from espnet_hifigan.generator import HiFiGANGenerator

StateDict = Dict[str, torch.Tensor]
Rule = Tuple[str, Union[str, Callable[[re.Match], str]]]


def _rename(state: StateDict, rules: List[Rule]) -> StateDict:
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            new_key, n = re.subn(pattern, repl, key)
            if n:
                out[new_key] = value
                break
        else:
            raise KeyError(f"no rule maps the key {key!r}")
    return out


def espnet_generator_to_ours(state: StateDict, resblock: str) -> StateDict:
    """Rename an ESPnet ``HiFiGANGenerator`` state dict to ours.

    Args:
        state: ESPnet generator state dict (no ``generator.`` prefix).
        resblock: ``"1"`` (ESPnet ``use_additional_convs=True``) or ``"2"``.
    """
    first = "convs1" if str(resblock) == "1" else "convs"
    rules: List[Rule] = [
        (r"^input_conv\.", "conv_pre."),
        (r"^upsamples\.(\d+)\.1\.", r"ups.\1."),
        (r"^blocks\.(\d+)\.convs1\.(\d+)\.1\.", rf"resblocks.\1.{first}.\2."),
        (r"^blocks\.(\d+)\.convs2\.(\d+)\.1\.", r"resblocks.\1.convs2.\2."),
        (r"^output_conv\.1\.", "conv_post."),
    ]
    return _rename(state, rules)


def espnet_discriminator_to_ours(state: StateDict) -> StateDict:
    """Rename an ESPnet ``HiFiGANMultiScaleMultiPeriodDiscriminator`` state dict to ours."""
    last_layer: Dict[str, int] = {}
    for key in state:
        m = re.match(r"^msd\.discriminators\.(\d+)\.layers\.(\d+)\.", key)
        if m:
            last_layer[m.group(1)] = max(last_layer.get(m.group(1), 0), int(m.group(2)))

    def msd_layer(m: re.Match) -> str:
        disc, layer = m.group(1), int(m.group(2))
        if layer == last_layer[disc]:
            return f"msd.discriminators.{disc}.conv_post."
        return f"msd.discriminators.{disc}.convs.{layer}."

    rules: List[Rule] = [
        (r"^mpd\.discriminators\.(\d+)\.convs\.(\d+)\.0\.", r"mpd.discriminators.\1.convs.\2."),
        (r"^mpd\.discriminators\.(\d+)\.output_conv\.", r"mpd.discriminators.\1.conv_post."),
        (r"^msd\.discriminators\.(\d+)\.layers\.(\d+)\.0\.", msd_layer),
        (r"^msd\.discriminators\.(\d+)\.layers\.(\d+)\.(?=[a-z_]+$)", msd_layer),
    ]
    return _rename(state, rules)


def official_config_to_ours(official: Dict[str, Any]) -> Dict[str, Any]:
    """Translate an official ``config.json`` into our config sections.

    Returns:
        dict with ``feats_extract_conf`` (official mel conventions), ``generator_conf`` and
        ``model_conf`` (segment size, fmax_for_loss), ready for :class:`~espnet_hifigan.api.Vocoder`.
    """
    feats = dict(
        OFFICIAL_STYLE,
        fs=official["sampling_rate"],
        n_fft=official["n_fft"],
        hop_length=official["hop_size"],
        win_length=official["win_size"],
        n_mels=official["num_mels"],
        fmin=official["fmin"],
        fmax=official["fmax"],
    )
    generator = dict(
        upsample_initial_channel=official["upsample_initial_channel"],
        upsample_rates=list(official["upsample_rates"]),
        upsample_kernel_sizes=list(official["upsample_kernel_sizes"]),
        resblock=str(official["resblock"]),
        resblock_kernel_sizes=list(official["resblock_kernel_sizes"]),
        resblock_dilation_sizes=[list(d) for d in official["resblock_dilation_sizes"]],
    )
    model = dict(segment_size=official["segment_size"], mel_loss_conf=dict(fmin=official["fmin"], fmax=official.get("fmax_for_loss")))
    return dict(
        feats_extract="log_mel",
        feats_extract_conf=feats,
        normalize=None,
        generator="hifigan",
        generator_conf=generator,
        model_conf=model,
    )


def load_official_generator(checkpoint: Union[str, Path], config_json: Union[str, Path]) -> Tuple[HiFiGANGenerator, Dict[str, Any]]:
    """Load an official ``g_XXXXXXXX`` checkpoint with its ``config.json``.

    Returns:
        The generator (weight norm applied, as trained) and our translated config.
    """
    with open(config_json, encoding="utf-8") as f:
        config = official_config_to_ours(json.load(f))
    generator = HiFiGANGenerator(in_channels=config["feats_extract_conf"]["n_mels"], **config["generator_conf"])
    state = torch.load(checkpoint, map_location="cpu")
    if "generator" not in state:
        raise KeyError(f"{checkpoint} has no 'generator' entry (keys: {sorted(state)[:5]})")
    generator.load_state_dict(state["generator"])
    return generator, config
