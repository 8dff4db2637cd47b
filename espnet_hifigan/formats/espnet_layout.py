"""The ESPnet generator layout: ESPnet's and ParallelWaveGAN's ``HiFiGANGenerator`` as ours.

ESPnet's ``espnet2.gan_tts.hifigan`` modules and kan-bayashi's ParallelWaveGAN share one module
layout and parameter naming (same author). Our parameter names are the official ones, so their
state dicts are renamed (:func:`espnet_generator_to_ours` / :func:`ours_to_espnet_generator`,
:func:`espnet_discriminator_to_ours`) and their constructor arguments translated
(:func:`espnet_params_to_generator_conf` / :func:`generator_conf_to_espnet_params`); both are
tested for output parity. :mod:`espnet_hifigan.formats.espnet` and
:mod:`espnet_hifigan.formats.pwg` read their files with these.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch

from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.contract.normalization import Normalization
from espnet_hifigan.nets.generator import HiFiGANGenerator

StateDict = Dict[str, torch.Tensor]
Rule = Tuple[str, Union[str, Callable[[re.Match], str]]]
# ESPnet and ParallelWaveGAN put a default nn.LeakyReLU() (slope 0.01) before output_conv.
ESPNET_FINAL_NEGATIVE_SLOPE = 0.01
# torch.nn.LeakyReLU's default slope, used when nonlinear_activation_params omits it.
TORCH_LEAKY_RELU_DEFAULT_SLOPE = 0.01
# Where an ESPnet HiFi-GAN generator sits inside the state dicts we read, most specific first:
# gan_tts joint_text2wav (ESPnetGANTTSModel.tts.generator["vocoder"]), its tts module alone,
# a PWG-style {"generator": ...} model, a plain generator.
ESPNET_GENERATOR_PREFIXES = ("tts.generator.vocoder.", "generator.vocoder.", "generator.", "")


class UnsupportedConversion(ValueError):
    """A source model whose architecture our generator cannot represent exactly (or vice versa)."""


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


def _generator_key_pairs(resblock: str) -> List[Tuple[str, str]]:
    """(ESPnet key prefix, our key prefix) of each generator module; ``{i}``/``{j}`` are indices."""
    first = "convs1" if str(resblock) == "1" else "convs"
    return [
        ("input_conv.", "conv_pre."),
        ("upsamples.{i}.1.", "ups.{i}."),
        ("blocks.{i}.convs1.{j}.1.", f"resblocks.{{i}}.{first}.{{j}}."),
        ("blocks.{i}.convs2.{j}.1.", "resblocks.{i}.convs2.{j}."),
        ("output_conv.1.", "conv_post."),
    ]


def _prefix_rules(pairs: List[Tuple[str, str]]) -> List[Rule]:
    """Regex rules renaming each pair's first prefix to its second."""
    rules: List[Rule] = []
    for src, dst in pairs:
        pattern = "^" + re.escape(src).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
        rules.append((pattern, dst.replace("{i}", r"\g<i>").replace("{j}", r"\g<j>")))
    return rules


def espnet_generator_to_ours(state: StateDict, resblock: str) -> StateDict:
    """Rename an ESPnet ``HiFiGANGenerator`` state dict to ours.

    Args:
        state: ESPnet generator state dict (no ``generator.`` prefix).
        resblock: ``"1"`` (ESPnet ``use_additional_convs=True``) or ``"2"``.
    """
    return _rename(state, _prefix_rules(_generator_key_pairs(resblock)))


def ours_to_espnet_generator(state: StateDict, resblock: str) -> StateDict:
    """Rename our generator state dict to ESPnet's (and ParallelWaveGAN's) ``HiFiGANGenerator``.

    Inverse of :func:`espnet_generator_to_ours`; weight-norm suffixes are kept.

    Args:
        state: Our generator state dict (no ``generator.`` prefix).
        resblock: ``"1"`` (ESPnet ``use_additional_convs=True``) or ``"2"``.
    """
    return _rename(state, _prefix_rules([(ours, espnet) for espnet, ours in _generator_key_pairs(resblock)]))


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


def _espnet_generator_defaults() -> Dict[str, Any]:
    from espnet2.gan_tts.hifigan.hifigan import HiFiGANGenerator as ESPnetGenerator

    signature = inspect.signature(ESPnetGenerator.__init__)
    return {n: p.default for n, p in signature.parameters.items() if n != "self"}


def espnet_params_to_generator_conf(params: Mapping[str, Any]) -> Tuple[Dict[str, Any], int]:
    """Translate ESPnet/ParallelWaveGAN ``HiFiGANGenerator`` arguments into our ``generator_conf``.

    Args:
        params: ``generator_params`` (PWG) or ``vocoder_params`` (ESPnet ``joint_text2wav``);
            missing keys take ESPnet's defaults.

    Returns:
        Our ``generator_conf`` and the number of input mel bins.

    Raises:
        UnsupportedConversion: multi-band output, global conditioning, causal convolutions, no
            bias or a non-LeakyReLU activation.
    """
    p = dict(_espnet_generator_defaults())
    p.update({k.replace("upsample_kernal_sizes", "upsample_kernel_sizes"): v for k, v in params.items()})
    problems = []
    if p.get("out_channels", 1) != 1:
        problems.append(f"out_channels={p['out_channels']} (multi-band)")
    if (p.get("global_channels") or -1) > 0:
        problems.append(f"global_channels={p['global_channels']} (speaker conditioning)")
    if p.get("use_causal_conv", False):
        problems.append("use_causal_conv=true")
    if not p.get("bias", True):
        problems.append("bias=false")
    if p.get("nonlinear_activation", "LeakyReLU") != "LeakyReLU":
        problems.append(f"nonlinear_activation={p['nonlinear_activation']}")
    if problems:
        raise UnsupportedConversion(f"cannot convert a HiFiGANGenerator with {', '.join(problems)}")
    slope = (p.get("nonlinear_activation_params") or {}).get("negative_slope", TORCH_LEAKY_RELU_DEFAULT_SLOPE)
    conf = dict(
        upsample_initial_channel=int(p["channels"]),
        upsample_rates=[int(r) for r in p["upsample_scales"]],
        upsample_kernel_sizes=[int(k) for k in p["upsample_kernel_sizes"]],
        resblock="1" if p["use_additional_convs"] else "2",
        resblock_kernel_sizes=[int(k) for k in p["resblock_kernel_sizes"]],
        resblock_dilation_sizes=[[int(d) for d in ds] for ds in p["resblock_dilations"]],
        pre_kernel_size=int(p["kernel_size"]),
        post_kernel_size=int(p["kernel_size"]),
        negative_slope=float(slope),
        final_negative_slope=ESPNET_FINAL_NEGATIVE_SLOPE,
        use_weight_norm=bool(p["use_weight_norm"]),
    )
    return conf, int(p["in_channels"])


def generator_conf_to_espnet_params(conf: Mapping[str, Any], in_channels: int) -> Dict[str, Any]:
    """Translate our ``generator_conf`` into ESPnet/ParallelWaveGAN ``HiFiGANGenerator`` arguments.

    Raises:
        UnsupportedConversion: settings ESPnet's generator cannot express (different pre/post
            kernel sizes, upsampling kernels other than twice the rate, another final slope).
    """
    signature = inspect.signature(HiFiGANGenerator.__init__)
    c = {n: p.default for n, p in signature.parameters.items() if n != "self"}
    c.update(conf)
    problems = []
    if c["pre_kernel_size"] != c["post_kernel_size"]:
        problems.append(f"pre_kernel_size {c['pre_kernel_size']} != post_kernel_size {c['post_kernel_size']}")
    for rate, kernel in zip(c["upsample_rates"], c["upsample_kernel_sizes"]):
        if kernel != 2 * rate:
            problems.append(f"upsample kernel {kernel} != 2 x rate {rate}")
    if c["final_negative_slope"] != ESPNET_FINAL_NEGATIVE_SLOPE:
        problems.append(f"final_negative_slope {c['final_negative_slope']} != {ESPNET_FINAL_NEGATIVE_SLOPE}")
    if problems:
        raise UnsupportedConversion(f"ESPnet/ParallelWaveGAN HiFiGANGenerator cannot express: {'; '.join(problems)}")
    return dict(
        in_channels=int(in_channels),
        out_channels=1,
        channels=int(c["upsample_initial_channel"]),
        kernel_size=int(c["pre_kernel_size"]),
        upsample_scales=[int(r) for r in c["upsample_rates"]],
        upsample_kernel_sizes=[int(k) for k in c["upsample_kernel_sizes"]],
        resblock_kernel_sizes=[int(k) for k in c["resblock_kernel_sizes"]],
        resblock_dilations=[[int(d) for d in ds] for ds in c["resblock_dilation_sizes"]],
        use_additional_convs=str(c["resblock"]) == "1",
        bias=True,
        nonlinear_activation="LeakyReLU",
        nonlinear_activation_params={"negative_slope": float(c["negative_slope"])},
        use_weight_norm=bool(c["use_weight_norm"]),
    )


def find_generator_prefix(state: StateDict) -> str:
    """The prefix under which an ESPnet-layout HiFi-GAN generator sits in ``state``."""
    for prefix in ESPNET_GENERATOR_PREFIXES:
        if any(f"{prefix}input_conv.{name}" in state for name in ("weight", "weight_v", "weight_g")):
            return prefix
    sample = sorted(state)[:5]
    raise KeyError(f"no ESPnet HiFi-GAN generator (input_conv.*) under {ESPNET_GENERATOR_PREFIXES}; keys: {sample}")


def espnet_generator_state(state: StateDict, prefix: Optional[str] = None) -> StateDict:
    """The generator's entries of ``state`` with ``prefix`` (found if ``None``) removed."""
    prefix = find_generator_prefix(state) if prefix is None else prefix
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def build_vocoder_config(
    contract: FeatureContract,
    generator_conf: Mapping[str, Any],
    normalization: Optional[Normalization] = None,
) -> Dict[str, Any]:
    """Our (inference) config for a converted generator.

    Args:
        contract: The raw input features (must be computable by ``LogMelSpectrogram``).
        generator_conf: Our ``generator_conf``.
        normalization: The normalisation the vocoder applies itself (``None``: none).
    """
    config: Dict[str, Any] = dict(
        feats_extract="log_mel",
        feats_extract_conf=contract.raw().logmel_params(),
        normalize=None,
        generator="hifigan",
        generator_conf=dict(generator_conf),
    )
    if normalization is not None:
        config["normalize"] = "global_mvn"
        config["normalize_conf"] = dict(
            stats_file=normalization.stats_file, norm_means=normalization.norm_means, norm_vars=normalization.norm_vars
        )
    return config


def convert_espnet_generator(
    state: StateDict,
    params: Mapping[str, Any],
    contract: FeatureContract,
    normalization: Optional[Normalization] = None,
    mean: Optional[torch.Tensor] = None,
    std: Optional[torch.Tensor] = None,
) -> Tuple[Dict[str, Any], StateDict]:
    """An ESPnet-layout generator state dict as our config and model state dict.

    Args:
        state: Generator state dict (ESPnet/PWG key names, no prefix).
        params: Its ``HiFiGANGenerator`` arguments.
        contract: The features it takes (raw log-mel).
        normalization: The normalisation it expects applied to them first (``None``: none).
        mean: Normalisation mean (n_mels,), required with ``normalization``.
        std: Normalisation standard deviation (n_mels,), required with ``normalization``.

    Returns:
        Our config and a state dict with ``generator.*`` (and ``normalize.*``) keys.
    """
    conf, in_channels = espnet_params_to_generator_conf(params)
    if in_channels != contract.n_mels:
        raise UnsupportedConversion(f"the generator takes {in_channels} channels but the features have {contract.n_mels} mel bins")
    conf["use_weight_norm"] = any(k.endswith("weight_g") for k in state)
    ours = {f"generator.{k}": v for k, v in espnet_generator_to_ours(state, conf["resblock"]).items()}
    config = build_vocoder_config(contract, conf, normalization)
    if normalization is not None:
        if mean is None or std is None:
            raise ValueError("normalization given without mean and std")
        ours["normalize.mean"] = torch.as_tensor(mean).float().reshape(-1)
        ours["normalize.std"] = torch.as_tensor(std).float().reshape(-1)
    return config, ours
