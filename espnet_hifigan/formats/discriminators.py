"""The discriminators of other HiFi-GAN implementations as ours, for warm-starting training.

A published HiFi-GAN is trained against its multi-period + multi-scale discriminator; fine-tuning
it against a fresh one wastes the pretraining. This module maps the source's discriminator onto
:class:`~espnet_hifigan.nets.discriminator.HiFiGANDiscriminator` exactly, or refuses it naming
what is missing (never a silently random discriminator):

* official jik876 ``do_XXXXXXXX`` (``{"mpd": ..., "msd": ..., "optim_d": ...}``): the
  architecture is fixed and our default (:data:`OFFICIAL_DISCRIMINATOR_CONF`); the parameter
  names are ours (``convs``, ``conv_post``) under ``mpd.``/``msd.``;
* ESPnet / ParallelWaveGAN ``HiFiGANMultiScaleMultiPeriodDiscriminator`` (a PWG
  ``checkpoint-*.pkl``'s ``model.discriminator``, an ESPnet ``joint_text2wav`` model's
  ``tts.discriminator.*``): its constructor arguments translated by
  :func:`espnet_discriminator_conf`, its keys renamed by
  :func:`~espnet_hifigan.formats.espnet_layout.espnet_discriminator_to_ours`. Which norm each
  sub-discriminator uses is read from the weights (``weight_g``: weight norm, ``weight_orig``:
  spectral norm), as ESPnet's own loader falls back to the weights when they disagree with the
  config.

:func:`load_discriminator` builds ours from the translated config and loads the renamed weights
strictly (every key, every shape). Output parity with the sources is tested in
``tests/test_warmstart.py``.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, List, Mapping, Optional

from espnet_hifigan.formats.espnet_layout import (
    StateDict,
    UnsupportedConversion,
    espnet_discriminator_to_ours,
)
from espnet_hifigan.formats.weights import state_misfit
from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator

# The official discriminators (jik876 models.py: MultiPeriodDiscriminator, MultiScaleDiscriminator),
# written out: our HiFiGANDiscriminator's defaults, i.e. conf/hifigan_v1.yaml's discriminator_conf.
OFFICIAL_DISCRIMINATOR_CONF: Dict[str, Any] = dict(
    periods=[2, 3, 5, 7, 11],
    period_discriminator_params=dict(
        channels=[32, 128, 512, 1024], last_channels=1024, kernel_size=5, stride=3, post_kernel_size=3,
        negative_slope=0.1, norm="weight",
    ),
    scales=3,
    scale_discriminator_params=dict(
        channels=[128, 128, 256, 512, 1024, 1024, 1024], kernel_sizes=[15, 41, 41, 41, 41, 41, 5],
        strides=[1, 2, 2, 4, 4, 1, 1], groups=[1, 4, 16, 16, 16, 16, 1], post_kernel_size=3, negative_slope=0.1,
        norm="weight",
    ),
    scale_pool_kernel_size=4,
    scale_pool_stride=2,
    scale_pool_padding=2,
    scale_first_norm="spectral",
)
# The ESPnet / ParallelWaveGAN discriminator class we map (PWG: discriminator_type; ESPnet
# joint_text2wav: tts_conf.discriminator_type).
PWG_DISCRIMINATOR_TYPE = "HiFiGANMultiScaleMultiPeriodDiscriminator"
ESPNET_DISCRIMINATOR_TYPE = "hifigan_multi_scale_multi_period_discriminator"
# torch.nn.LeakyReLU's default slope, used when nonlinear_activation_params omits it.
_TORCH_LEAKY_RELU_SLOPE = 0.01


def _espnet_defaults() -> Dict[str, Dict[str, Any]]:
    """Constructor defaults of ESPnet's HiFi-GAN discriminators (the same as ParallelWaveGAN's)."""
    from espnet2.gan_tts.hifigan import hifigan

    def defaults(cls: type) -> Dict[str, Any]:
        params = inspect.signature(cls.__init__).parameters
        return {n: copy.deepcopy(p.default) for n, p in params.items() if n != "self"}

    return dict(
        combined=defaults(hifigan.HiFiGANMultiScaleMultiPeriodDiscriminator),
        period=defaults(hifigan.HiFiGANPeriodDiscriminator),
        scale=defaults(hifigan.HiFiGANScaleDiscriminator),
    )


def _norm_in_state(state: StateDict, prefix: str) -> Optional[str]:
    """``weight``/``spectral``/``none`` from the keys under ``prefix`` (``None``: no keys there)."""
    keys = [k for k in state if k.startswith(prefix)]
    if not keys:
        return None
    if any(k.endswith(".weight_g") for k in keys):
        return "weight"
    if any(k.endswith(".weight_orig") for k in keys):
        return "spectral"
    return "none"


def _common_checks(p: Mapping[str, Any], what: str, problems: List[str]) -> float:
    """Record the options ours lacks; return the LeakyReLU slope."""
    for key in ("in_channels", "out_channels"):
        if int(p.get(key, 1)) != 1:
            problems.append(f"{what}.{key}={p[key]} (ours: 1)")
    if not p.get("bias", True):
        problems.append(f"{what}.bias=false (ours: convs with bias)")
    if p.get("nonlinear_activation", "LeakyReLU") != "LeakyReLU":
        problems.append(f"{what}.nonlinear_activation={p['nonlinear_activation']} (ours: LeakyReLU)")
    extra = set(p.get("nonlinear_activation_params") or {}) - {"negative_slope"}
    if extra:
        problems.append(f"{what}.nonlinear_activation_params {sorted(extra)} (ours: negative_slope only)")
    return float((p.get("nonlinear_activation_params") or {}).get("negative_slope", _TORCH_LEAKY_RELU_SLOPE))


def _period_params(p: Mapping[str, Any], problems: List[str]) -> Dict[str, Any]:
    """ESPnet ``HiFiGANPeriodDiscriminator`` arguments as our ``period_discriminator_params``."""
    slope = _common_checks(p, "period_discriminator_params", problems)
    k_conv, k_post = (int(k) for k in p["kernel_sizes"])
    scales = [int(s) for s in p["downsample_scales"]]
    if len(scales) < 2 or scales[-1] != 1 or len(set(scales[:-1])) != 1:
        problems.append(
            f"period_discriminator_params.downsample_scales={scales} (ours: one stride for every conv but the last, "
            "which has stride 1)"
        )
        return {}
    channels, out_ch = [], int(p["channels"])
    for _ in scales:
        channels.append(out_ch)
        out_ch = min(out_ch * 4, int(p["max_downsample_channels"]))
    # ESPnet's output conv: kernel (kernel_sizes[1] - 1, 1), padding ((kernel_sizes[1] - 1) // 2, 0).
    return dict(
        channels=channels[:-1], last_channels=channels[-1], kernel_size=k_conv, stride=scales[0],
        post_kernel_size=k_post - 1, post_padding=(k_post - 1) // 2, negative_slope=slope,
    )


def _scale_params(p: Mapping[str, Any], problems: List[str]) -> Dict[str, Any]:
    """ESPnet ``HiFiGANScaleDiscriminator`` arguments as our ``scale_discriminator_params``."""
    slope = _common_checks(p, "scale_discriminator_params", problems)
    k_first, k_down, k_last, k_post = (int(k) for k in p["kernel_sizes"])
    max_ch, max_groups = int(p["max_downsample_channels"]), int(p["max_groups"])
    channels, kernels, strides, groups = [int(p["channels"])], [k_first], [1], [1]
    in_ch = out_ch = int(p["channels"])
    group = 4  # ESPnet's hard-coded first group count, x4 per layer up to max_groups
    for scale in p["downsample_scales"]:
        channels.append(out_ch)
        kernels.append(k_down)
        strides.append(int(scale))
        groups.append(group)
        in_ch, out_ch, group = out_ch, min(out_ch * 2, max_ch), min(group * 4, max_groups)
    channels.append(min(in_ch * 2, max_ch))
    kernels.append(k_last)
    strides.append(1)
    groups.append(1)
    return dict(
        channels=channels, kernel_sizes=kernels, strides=strides, groups=groups, post_kernel_size=k_post,
        negative_slope=slope,
    )


def espnet_discriminator_conf(params: Mapping[str, Any], state: StateDict, source: str = "") -> Dict[str, Any]:
    """Our ``discriminator_conf`` for an ESPnet/PWG ``HiFiGANMultiScaleMultiPeriodDiscriminator``.

    Args:
        params: Its constructor arguments (``discriminator_params``); missing ones take ESPnet's
            defaults, as the source did.
        state: Its state dict (ESPnet key names, no prefix): the norm of each sub-discriminator.
        source: Named in errors.

    Returns:
        Keyword arguments of :class:`~espnet_hifigan.nets.discriminator.HiFiGANDiscriminator`.

    Raises:
        UnsupportedConversion: every option ours cannot represent, in one message.
    """
    defaults = _espnet_defaults()
    combined = dict(defaults["combined"], **dict(params))
    unknown = sorted(set(params) - set(defaults["combined"]))
    problems: List[str] = [f"unknown argument {k}" for k in unknown]
    # A given *_discriminator_params dict replaces the default dict; its missing keys take the
    # sub-discriminator class's defaults (ESPnet's behaviour).
    period = dict(defaults["period"], **combined["period_discriminator_params"])
    scale = dict(defaults["scale"], **combined["scale_discriminator_params"])
    periods = [int(x) for x in combined["periods"]]
    scales = int(combined["scales"])
    pool = dict(combined["scale_downsample_pooling_params"])
    if combined["scale_downsample_pooling"] != "AvgPool1d":
        problems.append(f"scale_downsample_pooling={combined['scale_downsample_pooling']} (ours: AvgPool1d)")
    if set(pool) - {"kernel_size", "stride", "padding"}:
        problems.append(f"scale_downsample_pooling_params {sorted(set(pool) - {'kernel_size', 'stride', 'padding'})}")
    period_conf = _period_params(period, problems) if periods else {}
    scale_conf = _scale_params(scale, problems) if scales else {}
    mpd_norms = {_norm_in_state(state, f"mpd.discriminators.{i}.") for i in range(len(periods))}
    msd_norms = [_norm_in_state(state, f"msd.discriminators.{i}.") for i in range(scales)]
    if None in mpd_norms or None in msd_norms:
        problems.append(
            f"weights for {len(periods)} period and {scales} scale discriminators (config) but some are absent"
        )
    else:  # every problem in one message
        if len(mpd_norms) > 1:
            problems.append(f"period discriminators with different norms {sorted(mpd_norms)} (ours: one norm)")
        if len(set(msd_norms[1:])) > 1:
            problems.append(f"scale discriminators 2+ with different norms {msd_norms[1:]} (ours: one norm)")
    if problems:
        raise UnsupportedConversion(
            f"cannot map the discriminator of {source or 'the checkpoint'} onto ours: {'; '.join(problems)}"
        )
    if periods:
        period_conf["norm"] = mpd_norms.pop()
    if scales > 1:
        scale_conf["norm"] = msd_norms[1]
    return dict(
        periods=periods,
        period_discriminator_params=period_conf,
        scales=scales,
        scale_discriminator_params=scale_conf,
        scale_pool_kernel_size=int(pool.get("kernel_size", 4)),
        scale_pool_stride=int(pool.get("stride", pool.get("kernel_size", 4))),
        scale_pool_padding=int(pool.get("padding", 0)),
        scale_first_norm=msd_norms[0] if scales else "spectral",
    )


def official_discriminator_state(blob: Any, source: str = "") -> StateDict:
    """The discriminators of an official ``do_XXXXXXXX`` in our key layout (``mpd.*``, ``msd.*``).

    Raises:
        UnsupportedConversion: the file holds no ``mpd``/``msd`` state dicts.
    """
    missing = [k for k in ("mpd", "msd") if not isinstance(blob, Mapping) or not isinstance(blob.get(k), Mapping)]
    if missing:
        keys = sorted(blob)[:6] if isinstance(blob, Mapping) else type(blob).__name__
        raise UnsupportedConversion(
            f"{source or 'the discriminator file'} is no official do_ checkpoint: no {' and no '.join(missing)} "
            f"state dict (it holds {keys}); pass the do_XXXXXXXX written next to the g_XXXXXXXX"
        )
    return {f"{net}.{k}": v for net in ("mpd", "msd") for k, v in blob[net].items()}


def espnet_discriminator_state(state: StateDict, prefix: str, source: str = "") -> StateDict:
    """The entries of ``state`` under ``prefix`` (e.g. ``tts.discriminator.``), ESPnet names, no prefix.

    Raises:
        UnsupportedConversion: none there.
    """
    found = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not found:
        raise UnsupportedConversion(
            f"{source or 'the checkpoint'} has no discriminator weights ({prefix}*): a warm start needs the "
            "discriminator the generator was trained against"
        )
    return found


def load_discriminator(conf: Mapping[str, Any], state: StateDict, source: str = "", espnet_names: bool = False) -> StateDict:
    """Build our discriminator from ``conf``, load ``state`` strictly, return our state dict.

    Args:
        conf: Our ``discriminator_conf``.
        state: The source's discriminator weights: our names, or ESPnet's (``espnet_names``).
        source: Named in errors.
        espnet_names: Rename ESPnet/PWG keys first.

    Returns:
        Our discriminator's state dict (no ``discriminator.`` prefix), as loaded.

    Raises:
        UnsupportedConversion: keys without a counterpart, missing keys, shape mismatches.
    """
    if espnet_names:
        try:
            state = espnet_discriminator_to_ours(state)
        except KeyError as e:
            raise UnsupportedConversion(f"cannot map the discriminator of {source}: {e.args[0]}") from None
    ours = HiFiGANDiscriminator(**conf)
    misfit = state_misfit(ours, state)
    if misfit:
        raise UnsupportedConversion(
            f"the discriminator weights of {source or 'the checkpoint'} do not fit the discriminator they should be: {misfit}"
        )
    ours.load_state_dict(state)
    return {k: v.detach().clone() for k, v in ours.state_dict().items()}

