"""Weights from and to other HiFi-GAN implementations.

* jik876/hifi-gan (official): ``g_XXXXXXXX`` = ``{"generator": state_dict}`` plus its
  ``config.json``. Our parameter names are the official ones, so the state dict loads as is.
* ESPnet ``espnet2.gan_tts.hifigan`` modules: keys are renamed by :func:`espnet_generator_to_ours`
  / :func:`ours_to_espnet_generator` and :func:`espnet_discriminator_to_ours` (tested for output
  parity in ``tests/``). :func:`load_espnet_gan_tts` takes the generator out of an ESPnet
  ``gan_tts`` model (``joint_text2wav``: ``tts.generator.vocoder.*``) or a plain generator.
* ParallelWaveGAN (kan-bayashi): ``checkpoint-*.pkl`` = ``{"model": {"generator": ...}}`` with
  ``config.yml`` (``generator_type: HiFiGANGenerator``) and ``stats.npy``/``stats.h5``. Its
  ``HiFiGANGenerator`` has ESPnet's module layout and parameter names (both from the same
  author), so the same renaming applies. :func:`export_parallel_wavegan` writes this format, which
  ESPnet's ``Text2Speech(vocoder_file=...)`` loads through ``parallel_wavegan.utils.load_model``.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
import yaml

from espnet_hifigan.contract import PWG_CONTRACT_KEY, FeatureContract, Normalization
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


# ---------------------------------------------------------------------- ESPnet / PWG generators
# ESPnet and ParallelWaveGAN put a default nn.LeakyReLU() (slope 0.01) before output_conv.
ESPNET_FINAL_NEGATIVE_SLOPE = 0.01
# torch.nn.LeakyReLU's default slope, used when nonlinear_activation_params omits it.
TORCH_LEAKY_RELU_DEFAULT_SLOPE = 0.01
# Where an ESPnet HiFi-GAN generator sits inside the state dicts we read, most specific first:
# gan_tts joint_text2wav (ESPnetGANTTSModel.tts.generator["vocoder"]), its tts module alone,
# a PWG-style {"generator": ...} model, a plain generator.
ESPNET_GENERATOR_PREFIXES = ("tts.generator.vocoder.", "generator.vocoder.", "generator.", "")
PWG_GENERATOR_TYPE = "HiFiGANGenerator"
PWG_CONFIG = "config.yml"
PWG_STATS_NPY = "stats.npy"
PWG_STATS_H5 = "stats.h5"
PWG_CHECKPOINT_PATTERN = "checkpoint-{steps}steps.pkl"


class UnsupportedConversion(ValueError):
    """A source model whose architecture our generator cannot represent exactly (or vice versa)."""


def ours_to_espnet_generator(state: StateDict, resblock: str) -> StateDict:
    """Rename our generator state dict to ESPnet's (and ParallelWaveGAN's) ``HiFiGANGenerator``.

    Inverse of :func:`espnet_generator_to_ours`; weight-norm suffixes are kept.

    Args:
        state: Our generator state dict (no ``generator.`` prefix).
        resblock: ``"1"`` (ESPnet ``use_additional_convs=True``) or ``"2"``.
    """
    first = "convs1" if str(resblock) == "1" else "convs"
    rules: List[Rule] = [
        (r"^conv_pre\.", "input_conv."),
        (r"^ups\.(\d+)\.", r"upsamples.\1.1."),
        (rf"^resblocks\.(\d+)\.{first}\.(\d+)\.", r"blocks.\1.convs1.\2.1."),
        (r"^resblocks\.(\d+)\.convs2\.(\d+)\.", r"blocks.\1.convs2.\2.1."),
        (r"^conv_post\.", "output_conv.1."),
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

    config_file = Path(config_file)
    with open(config_file, encoding="utf-8") as f:
        config = yaml.safe_load(f)
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
    state = torch.load(model_file, map_location="cpu")
    gen_state = espnet_generator_state(state, "tts.generator.vocoder.")
    normalization = None
    mean = std = None
    if config.get("normalize") is not None:
        normalization = FeatureContract.from_espnet_tts_config(config_file, normalized=True).normalize
        mean, std = state["normalize.mean"], state["normalize.std"]
    ours_config, ours = convert_espnet_generator(gen_state, params, contract, normalization, mean, std)
    return ours_config, ours, normalization


def _read_pwg_stats(stats_file: Path) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of a ParallelWaveGAN ``stats.npy`` ([mean, scale]) or ``stats.h5``."""
    if stats_file.suffix == ".h5":
        try:
            import h5py
        except ImportError as e:
            raise ImportError(f"{stats_file} is HDF5: install h5py to read it") from e
        with h5py.File(stats_file, "r") as f:
            return np.asarray(f["mean"]).reshape(-1), np.asarray(f["scale"]).reshape(-1)
    stats = np.load(stats_file)
    return stats[0].reshape(-1), stats[1].reshape(-1)


def load_parallel_wavegan(
    checkpoint: Union[str, Path],
    config_file: Optional[Union[str, Path]] = None,
    stats_file: Optional[Union[str, Path]] = None,
) -> Tuple[Dict[str, Any], StateDict, Optional[Normalization]]:
    """A ParallelWaveGAN ``HiFiGANGenerator`` checkpoint as our config and state dict.

    Args:
        checkpoint: ``checkpoint-*.pkl`` (``{"model": {"generator": state_dict}}``).
        config_file: Its ``config.yml`` (default: next to the checkpoint).
        stats_file: Normalisation statistics (default: ``stats.npy``/``stats.h5`` next to the
            checkpoint, as ``parallel_wavegan.utils.load_model`` finds them).

    Returns:
        Our config, our state dict, and the normalisation the vocoder applies (``None`` if no
        statistics were found: PWG then feeds the features as they are).
    """
    checkpoint = Path(checkpoint)
    config_file = Path(config_file) if config_file is not None else checkpoint.parent / PWG_CONFIG
    with open(config_file, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    generator_type = config.get("generator_type", "ParallelWaveGANGenerator")
    if generator_type != PWG_GENERATOR_TYPE:
        raise UnsupportedConversion(f"{config_file}: generator_type {generator_type!r} is not {PWG_GENERATOR_TYPE}")
    blob = torch.load(checkpoint, map_location="cpu")
    try:
        state = dict(blob["model"]["generator"])
    except (KeyError, TypeError) as e:
        raise KeyError(f"{checkpoint} has no ['model']['generator'] entry") from e
    mean = state.pop("mean", None)
    scale = state.pop("scale", None)
    if stats_file is None:
        name = PWG_STATS_H5 if config.get("format") == "hdf5" else PWG_STATS_NPY
        candidate = checkpoint.parent / name
        stats_file = candidate if candidate.is_file() else None
    normalization = None
    if stats_file is not None:
        mean, scale = _read_pwg_stats(Path(stats_file))
        normalization = Normalization.from_stats_file(stats_file)
    elif mean is not None and scale is not None:
        normalization = Normalization(stats_file=f"{checkpoint}:model.generator.mean/scale")
    contract = FeatureContract.from_pwg_config(config, source=str(config_file))
    ours_config, ours = convert_espnet_generator(
        state, config["generator_params"], contract, normalization,
        None if mean is None else torch.as_tensor(mean), None if scale is None else torch.as_tensor(scale),
    )
    return ours_config, ours, normalization


def export_parallel_wavegan(vocoder: Any, outdir: Union[str, Path], steps: int = 0) -> Dict[str, Path]:
    """Write a vocoder in ParallelWaveGAN's format, which ESPnet's ``Text2Speech`` loads.

    ``Text2Speech(..., vocoder_file=<outdir>/checkpoint-<steps>steps.pkl)`` builds
    ``ParallelWaveGANPretrainedVocoder``, i.e. ``parallel_wavegan.utils.load_model``: the
    generator from ``config.yml`` (``generator_type``/``generator_params``), its weights from
    ``["model"]["generator"]``, and ``stats.npy`` next to the checkpoint, which makes it
    normalise its (raw, de-normalised) input itself — as our vocoder does. Weights are written
    with weight norm folded (``use_weight_norm: false``): the export is for inference.

    Args:
        vocoder: An :class:`espnet_hifigan.api.Vocoder`.
        outdir: Output directory (created).
        steps: Training steps to put in the file name and checkpoint.

    Returns:
        Paths of ``checkpoint``, ``config`` and (if the vocoder normalises) ``stats``.
    """
    conf = dict(vocoder.config["generator_conf"], use_weight_norm=False)
    params = generator_conf_to_espnet_params(conf, vocoder.n_mels)
    state = ours_to_espnet_generator(vocoder.generator.state_dict(), conf.get("resblock", "1"))
    contract = vocoder.contract
    config = dict(
        sampling_rate=contract.fs,
        fft_size=contract.n_fft,
        hop_size=contract.hop_length,
        win_length=contract.win_length,
        window=contract.window,
        num_mels=contract.n_mels,
        fmin=contract.fmin,
        fmax=contract.fmax,
        log_base=contract.log_base,
        global_gain_scale=1.0,
        trim_silence=False,
        format="npy",
        generator_type=PWG_GENERATOR_TYPE,
        generator_params=dict(params, use_causal_conv=False),
    )
    config[PWG_CONTRACT_KEY] = contract.to_dict()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = dict(checkpoint=outdir / PWG_CHECKPOINT_PATTERN.format(steps=steps), config=outdir / PWG_CONFIG)
    if vocoder.mean is not None or vocoder.std is not None:
        mean = vocoder.mean if vocoder.mean is not None else torch.zeros(vocoder.n_mels)
        std = vocoder.std if vocoder.std is not None else torch.ones(vocoder.n_mels)
        paths["stats"] = outdir / PWG_STATS_NPY
        np.save(paths["stats"], np.stack([mean.cpu().numpy(), std.cpu().numpy()]).astype(np.float32))
    torch.save({"model": {"generator": {k: v.cpu() for k, v in state.items()}}, "steps": steps}, paths["checkpoint"])
    with open(paths["config"], "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return paths
