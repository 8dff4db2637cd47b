"""ESPnet TTS experiments: the HiFi-GAN vocoder weights of ``gan_tts`` models.

:func:`load_espnet_gan_tts`: the HiFi-GAN generator of a ``gan_tts`` ``joint_text2wav`` model.
The features of an ESPnet TTS ``config.yaml`` (``feats_extract: fbank`` = ``LogMelFbank``) are
read by :meth:`~espnet_hifigan.contract.model.FeatureContract.from_espnet_tts_config`
(:mod:`espnet_hifigan.contract.foreign`). Torch and ESPnet are imported lazily.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Union

from espnet_hifigan.contract.base import load_mapping
from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.contract.normalization import Normalization

if TYPE_CHECKING:
    from espnet_hifigan.formats.espnet_layout import StateDict

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
    contract = FeatureContract.from_espnet_tts_config(config_file)
    params = dict(tts_conf.get("vocoder_params") or defaults["vocoder_params"], in_channels=contract.n_mels)
    from espnet_hifigan.formats.weights import load_weights

    state = load_weights(model_file, "checkpoint")
    gen_state = espnet_generator_state(state, "tts.generator.vocoder.")
    normalization = None
    mean = std = None
    if config.get("normalize") is not None:
        normalization = FeatureContract.from_espnet_tts_config(config_file, normalized=True).normalize
        mean, std = state["normalize.mean"], state["normalize.std"]
    ours_config, ours = convert_espnet_generator(gen_state, params, contract, normalization, mean, std)
    return ours_config, ours, normalization

