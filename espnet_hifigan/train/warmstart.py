"""Warm-starting training from another implementation's checkpoint: generator AND discriminators.

``convert_checkpoint --for_training`` turns a published HiFi-GAN into a directory that
``voc_train --config DIR/config.yaml --init_param DIR/model.pth`` trains on:

* ``config.yaml``: a complete training config. The source's generator and discriminator
  architecture, its features (the contract), normalisation statistics, loss weights, segment,
  batch size and optimiser settings where the source records them; everything else from
  ``conf/hifigan_v1.yaml``. Every top-level key says where its value came from.
* ``model.pth``: ``generator.*``, ``discriminator.*`` (and ``normalize.*``) in our layout.
* ``feature_contract.yaml`` (and ``feats_stats.npz`` when the source normalises its input).

Sources (:func:`import_official`, :func:`import_pwg`, :func:`import_espnet`): official
``g_*`` + ``do_*`` + ``config.json``; a ParallelWaveGAN ``checkpoint-*.pkl`` with
``config.yml`` and ``stats.npy``/``stats.h5``; an ESPnet ``joint_text2wav`` experiment. The
weights are mapped by :mod:`espnet_hifigan.formats` (generators: ``official``, ``pwg``,
``espnet``; discriminators: :mod:`espnet_hifigan.formats.discriminators`). The optimiser
*states* (Adam moments) are not carried: ``--init_param`` loads weights, so the moments restart;
the optimiser *settings* (and the learning rate the source had reached) are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import yaml

from espnet_hifigan.contract.base import load_mapping
from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.contract.normalization import Normalization
from espnet_hifigan.core.fileio import PathLike
from espnet_hifigan.formats.discriminators import (
    ESPNET_DISCRIMINATOR_TYPE,
    OFFICIAL_DISCRIMINATOR_CONF,
    PWG_DISCRIMINATOR_TYPE,
    espnet_discriminator_conf,
    espnet_discriminator_state,
    load_discriminator,
    official_discriminator_state,
)
from espnet_hifigan.formats.espnet_layout import UnsupportedConversion
from espnet_hifigan.formats.weights import load_weights
from espnet_hifigan.nets.mvn import STATS_FILE, stats_npz_bytes
from espnet_hifigan.train.configs import DEFAULT_CONF_DIR

# The files of a warm-start directory.
CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.pth"
CONTRACT_FILE = "feature_contract.yaml"
# Official lr_decay is per epoch of 809 steps (12,950 LJSpeech files / batch 16); our schedulers
# step once per 1000-step ESPnet epoch (conf/hifigan_v1.yaml's derivation).
OFFICIAL_STEPS_PER_EPOCH = 809
# Top-level keys in the order of conf/hifigan_v1.yaml.
_V1 = "conf/hifigan_v1.yaml"
_OPTIMIZERS = {"Adam": "adam", "AdamW": "adamw"}


@dataclass
class WarmStart:
    """A source converted for training.

    Attributes:
        config: The complete training config (its ``normalize_conf.stats_file`` is set on writing).
        state: ``generator.*``, ``discriminator.*`` and (normalising sources) ``normalize.*``.
        origin: Top-level config key -> where its value came from (a YAML comment).
        source: What was converted (for the header).
    """

    config: Dict[str, Any]
    state: Dict[str, torch.Tensor]
    origin: Dict[str, str] = field(default_factory=dict)
    source: str = ""

    def set(self, key: str, value: Any, origin: str) -> None:
        """Set a top-level key and record where it came from."""
        self.config[key] = value
        self.origin[key] = origin

    def update(self, key: str, values: Mapping[str, Any], origin: str) -> None:
        """Update a section (e.g. ``model_conf``) with the source's values and say which."""
        if not values:
            return
        self.config[key] = dict(self.config.get(key) or {}, **values)
        self.origin[key] = f"{_V1}, with {origin}: {', '.join(sorted(values))}"


def _v1_defaults(conf_dir: Path = DEFAULT_CONF_DIR) -> Dict[str, Any]:
    path = conf_dir / "hifigan_v1.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the training defaults come from the repository's conf/")
    return load_mapping(path)


def _start(model_config: Mapping[str, Any], state: Dict[str, torch.Tensor], source: str, what: str) -> WarmStart:
    """V1 defaults with the generator's sections (features, normalisation, generator) from the source."""
    warm = WarmStart(config=_v1_defaults(), state=dict(state), source=source)
    warm.origin = {k: f"{_V1} (the source records none)" for k in warm.config}
    for key in ("feats_extract", "feats_extract_conf", "normalize", "normalize_conf", "generator", "generator_conf"):
        if key in model_config:
            warm.set(key, model_config[key], what)
        elif key.startswith("normalize"):
            warm.config.pop(key, None)
            warm.origin.pop(key, None)
    if model_config.get("normalize") is None:
        warm.set("normalize", None, f"{what}: it takes raw log-mel")
    return warm


def _add_discriminator(warm: WarmStart, conf: Mapping[str, Any], state: Dict[str, torch.Tensor], what: str) -> None:
    warm.set("discriminator", "hifigan", what)
    warm.set("discriminator_conf", dict(conf), what)
    warm.state.update({f"discriminator.{k}": v for k, v in state.items()})


def _adam_conf(lr: float, betas: Any, eps: Any, weight_decay: Any, fused: bool) -> Dict[str, Any]:
    conf = dict(lr=float(lr), betas=[float(b) for b in betas], eps=float(eps), weight_decay=float(weight_decay))
    if fused:
        conf["fused"] = True
    return conf


def _current_lr(optimizer_state: Any) -> Optional[float]:
    """The learning rate an optimizer state dict had reached (``None``: not recorded)."""
    try:
        return float(optimizer_state["param_groups"][0]["lr"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------- official
def import_official(generator_file: PathLike, discriminator_file: Optional[PathLike], config_json: PathLike) -> WarmStart:
    """Official jik876 ``g_XXXXXXXX`` + ``do_XXXXXXXX`` (+ ``config.json``) for training.

    Raises:
        UnsupportedConversion: no ``do_`` file, or one whose discriminators are not the official ones.
    """
    from espnet_hifigan.formats.official import load_official_generator

    generator_file = Path(generator_file)
    if discriminator_file is None:
        sibling = generator_file.with_name("do_" + generator_file.name[2:]) if generator_file.name.startswith("g_") else None
        if sibling is None or not sibling.is_file():
            raise UnsupportedConversion(
                f"{generator_file}: no discriminator file (do_{generator_file.name[2:]} next to it): pass "
                "--discriminator do_XXXXXXXX; a warm start needs the discriminator the generator was trained against"
            )
        discriminator_file = sibling
    official = load_mapping(config_json)
    generator, model_config = load_official_generator(generator_file, config_json)
    gen_state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    what = f"the official checkpoint ({generator_file.name}, {Path(config_json).name})"
    warm = _start(model_config, gen_state, str(generator_file), what)
    warm.config["generator_conf"] = dict(warm.config["generator_conf"], use_weight_norm=True)
    blob = load_weights(discriminator_file, "discriminator checkpoint")
    disc_state = official_discriminator_state(blob, str(discriminator_file))
    disc = load_discriminator(OFFICIAL_DISCRIMINATOR_CONF, disc_state, str(discriminator_file))
    _add_discriminator(warm, OFFICIAL_DISCRIMINATOR_CONF, disc, f"the official discriminators ({Path(discriminator_file).name})")
    warm.update("model_conf", model_config["model_conf"], f"{Path(config_json).name} (segment_size, fmin, fmax_for_loss)")
    # Optimiser settings: the do_ file's AdamW param groups (the learning rate it reached), else config.json.
    fused = bool(warm.config["optim_conf"].get("fused", False))
    gamma = float(official.get("lr_decay", 0.999)) ** (warm.config.get("num_iters_per_epoch", 1000) / OFFICIAL_STEPS_PER_EPOCH)
    for optim_key, sched_key, name in (("optim", "scheduler", "optim_g"), ("optim2", "scheduler2", "optim_d")):
        group = (blob.get(name) or {}).get("param_groups", [{}])[0] if isinstance(blob.get(name), Mapping) else {}
        lr = group.get("lr", official.get("learning_rate", 2e-4))
        betas = group.get("betas", [official.get("adam_b1", 0.8), official.get("adam_b2", 0.99)])
        conf = _adam_conf(lr, betas, group.get("eps", 1e-8), group.get("weight_decay", 0.01), fused)
        origin = f"{Path(discriminator_file).name} {name} param groups (lr: the rate it had reached)" if group else Path(config_json).name
        warm.set(optim_key, "adamw", origin)
        warm.set(f"{optim_key}_conf", conf, origin)
        warm.set(sched_key, "exponentiallr", Path(config_json).name)
        warm.set(f"{sched_key}_conf", dict(gamma=round(gamma, 9)), f"lr_decay {official.get('lr_decay', 0.999)} per {OFFICIAL_STEPS_PER_EPOCH}-step epoch")
    if "batch_size" in official:
        warm.set("batch_size", int(official["batch_size"]), Path(config_json).name)
    return warm


# ---------------------------------------------------------------------------------------- ParallelWaveGAN
def import_pwg(checkpoint: PathLike, config_file: Optional[PathLike] = None, stats_file: Optional[PathLike] = None) -> WarmStart:
    """A ParallelWaveGAN ``checkpoint-*.pkl`` (``model.generator`` + ``model.discriminator``) for training.

    Raises:
        UnsupportedConversion: no discriminator, or one ours cannot represent.
    """
    from espnet_hifigan.formats.pwg import PWG_CONFIG, load_parallel_wavegan

    checkpoint = Path(checkpoint)
    config_file = Path(config_file) if config_file is not None else checkpoint.parent / PWG_CONFIG
    pwg = load_mapping(config_file)
    disc_type = pwg.get("discriminator_type", "ParallelWaveGANDiscriminator")
    if disc_type != PWG_DISCRIMINATOR_TYPE:
        raise UnsupportedConversion(
            f"{config_file}: discriminator_type {disc_type} cannot be mapped onto ours ({PWG_DISCRIMINATOR_TYPE} only)"
        )
    model_config, gen_state, _ = load_parallel_wavegan(checkpoint, config_file, stats_file)
    what = f"the ParallelWaveGAN checkpoint ({checkpoint.name}, {config_file.name})"
    warm = _start(model_config, gen_state, str(checkpoint), what)
    blob = load_weights(checkpoint, "checkpoint")
    model = blob.get("model") if isinstance(blob, Mapping) else None
    if not isinstance(model, Mapping) or not isinstance(model.get("discriminator"), Mapping):
        raise UnsupportedConversion(
            f"{checkpoint} has no ['model']['discriminator'] entry: a warm start needs the discriminator the generator "
            "was trained against (ParallelWaveGAN writes it in every training checkpoint-*.pkl)"
        )
    disc_state = dict(model["discriminator"])
    conf = espnet_discriminator_conf(pwg.get("discriminator_params") or {}, disc_state, str(checkpoint))
    disc = load_discriminator(conf, disc_state, str(checkpoint), espnet_names=True)
    _add_discriminator(warm, conf, disc, f"{config_file.name} discriminator_params and {checkpoint.name}")
    model_conf: Dict[str, Any] = {}
    for ours, theirs in (("lambda_adv", "lambda_adv"), ("lambda_feat_match", "lambda_feat_match"), ("lambda_mel", "lambda_aux")):
        if theirs in pwg:
            model_conf[ours] = float(pwg[theirs])
    if "batch_max_steps" in pwg:
        model_conf["segment_size"] = int(pwg["batch_max_steps"])
    mel_loss = pwg.get("mel_loss_params") or {}
    if "fmin" in mel_loss or "fmax" in mel_loss:
        model_conf["mel_loss_conf"] = dict(fmin=mel_loss.get("fmin", 0), fmax=mel_loss.get("fmax"))
    warm.update("model_conf", model_conf, config_file.name)
    optimizers = blob.get("optimizer") if isinstance(blob.get("optimizer"), Mapping) else {}
    fused = bool(warm.config["optim_conf"].get("fused", False))
    for optim_key, net in (("optim", "generator"), ("optim2", "discriminator")):
        kind = pwg.get(f"{net}_optimizer_type")
        params = pwg.get(f"{net}_optimizer_params") or {}
        if kind not in _OPTIMIZERS:
            if kind is not None:
                warm.origin[optim_key] = f"{_V1} ({config_file.name}'s {net}_optimizer_type {kind} has no counterpart here)"
            continue
        current = _current_lr(optimizers.get(net))
        lr = current if current is not None else params.get("lr", 2e-4)
        conf = _adam_conf(lr, params.get("betas", [0.9, 0.999]), params.get("eps", 1e-8), params.get("weight_decay", 0.0), fused)
        origin = f"{config_file.name} {net}_optimizer_*" + (f" (lr: the rate {checkpoint.name} had reached)" if current is not None else "")
        warm.set(optim_key, _OPTIMIZERS[kind], origin)
        warm.set(f"{optim_key}_conf", conf, origin)
    if "batch_size" in pwg:
        warm.set("batch_size", int(pwg["batch_size"]), config_file.name)
    norms = {pwg.get("generator_grad_norm", -1), pwg.get("discriminator_grad_norm", -1)}
    if len(norms) == 1 and ("generator_grad_norm" in pwg):
        warm.set("grad_clip", float(norms.pop()), f"{config_file.name} generator/discriminator_grad_norm")
    return warm


# ---------------------------------------------------------------------------------------- ESPnet
# ESPnet training options of a gan_tts experiment that mean the same here (same trainer).
_ESPNET_TRAINING_KEYS = (
    "optim", "optim_conf", "scheduler", "scheduler_conf", "optim2", "optim2_conf", "scheduler2", "scheduler2_conf",
    "generator_first", "grad_clip",
)


def import_espnet(model_file: PathLike, config_file: PathLike) -> WarmStart:
    """An ESPnet ``joint_text2wav`` experiment's vocoder and discriminator for training.

    Raises:
        UnsupportedConversion: another TTS or discriminator type, or one ours cannot represent.
    """
    import inspect

    from espnet2.gan_tts.joint.joint_text2wav import JointText2Wav

    from espnet_hifigan.formats.espnet import load_espnet_gan_tts

    model_file, config_file = Path(model_file), Path(config_file)
    model_config, gen_state, _ = load_espnet_gan_tts(model_file, config_file)
    espnet = load_mapping(config_file)
    tts_conf = espnet.get("tts_conf") or {}
    defaults = {n: p.default for n, p in inspect.signature(JointText2Wav.__init__).parameters.items()}
    disc_type = tts_conf.get("discriminator_type", defaults["discriminator_type"])
    if disc_type != ESPNET_DISCRIMINATOR_TYPE:
        raise UnsupportedConversion(f"{config_file}: discriminator_type {disc_type} cannot be mapped onto ours ({ESPNET_DISCRIMINATOR_TYPE} only)")
    what = f"the ESPnet joint_text2wav experiment ({config_file})"
    warm = _start(model_config, gen_state, str(model_file), what)
    state = load_weights(model_file, "checkpoint")
    disc_state = espnet_discriminator_state(state, "tts.discriminator.", str(model_file))
    params = tts_conf.get("discriminator_params", defaults["discriminator_params"])
    conf = espnet_discriminator_conf(params, disc_state, str(model_file))
    disc = load_discriminator(conf, disc_state, str(model_file), espnet_names=True)
    _add_discriminator(warm, conf, disc, f"{config_file.name} tts_conf.discriminator_params and {model_file.name}")
    hop = int(model_config["feats_extract_conf"]["hop_length"])
    model_conf = {k: float(tts_conf.get(k, defaults[k])) for k in ("lambda_adv", "lambda_feat_match", "lambda_mel")}
    model_conf["segment_size"] = int(tts_conf.get("segment_size", defaults["segment_size"])) * hop
    mel_loss = tts_conf.get("mel_loss_params", defaults["mel_loss_params"]) or {}
    model_conf["mel_loss_conf"] = dict(fmin=mel_loss.get("fmin", 0), fmax=mel_loss.get("fmax"))
    warm.update("model_conf", model_conf, f"{config_file.name} tts_conf (segment_size in frames x hop)")
    for key in _ESPNET_TRAINING_KEYS:
        if key in espnet:
            warm.set(key, espnet[key], config_file.name)
    return warm


# ---------------------------------------------------------------------------------------- writing
def _render(warm: WarmStart, stats_note: str) -> str:
    lines = [
        f"# Training config for warm-starting from {warm.source} (espnet_hifigan.bin.convert_checkpoint --for_training).",
        "# Train with: voc_train --config <this file> --init_param <this dir>/model.pth (generator AND discriminator).",
        "# Each key says where its value comes from; the optimiser states (Adam moments) are NOT carried:",
        "# --init_param loads weights, so the moments restart (the settings and learning rate are carried).",
    ]
    if stats_note:
        lines.append(f"# {stats_note}")
    for key, value in warm.config.items():
        lines.append(f"# {key}: {warm.origin.get(key, _V1)}")
        lines.append(yaml.dump({key: value}, Dumper=_Dumper, sort_keys=False, default_flow_style=False).rstrip())
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block mappings, lists of scalars on one line (as conf/*.yaml)."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(x, (list, dict)) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def write_warm_start(warm: WarmStart, outdir: PathLike) -> Dict[str, Path]:
    """Write ``config.yaml``, ``model.pth``, ``feature_contract.yaml`` (+ ``feats_stats.npz``).

    The files are built aside, then moved in: an interrupted run leaves the previous ones, and
    whatever else an existing ``outdir`` holds (a recipe's decodings, ...) stays.

    Returns:
        The written paths by role.
    """
    outdir = Path(outdir).absolute()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    config = dict(warm.config)
    stats_bytes, stats_note, normalization = None, "", None
    if config.get("normalize") is not None:
        mean, std = warm.state["normalize.mean"], warm.state["normalize.std"]
        stats_bytes = stats_npz_bytes(mean.double().numpy(), std.double().numpy())
        config["normalize_conf"] = dict(config.get("normalize_conf") or {}, stats_file=str(outdir / STATS_FILE))
        normalization = Normalization(
            stats_file=str(outdir / STATS_FILE), sha256=hashlib.sha256(stats_bytes).hexdigest(),
            norm_means=config["normalize_conf"].get("norm_means", True), norm_vars=config["normalize_conf"].get("norm_vars", True),
        )
        stats_note = f"{STATS_FILE}: the source's normalisation statistics (mean/std) as ESPnet's GlobalMVN reads them."
    warm = WarmStart(config=config, state=warm.state, origin=warm.origin, source=warm.source)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        (tmp / CONFIG_FILE).write_text(_render(warm, stats_note), encoding="utf-8")
        torch.save({k: v.detach().cpu().contiguous() for k, v in warm.state.items()}, tmp / MODEL_FILE)
        if stats_bytes is not None:
            (tmp / STATS_FILE).write_bytes(stats_bytes)
        contract = FeatureContract.from_train_config(config, source=str(outdir / CONFIG_FILE))
        contract.save(tmp / CONTRACT_FILE, vocoder_normalize=normalization)
        tmp.chmod(0o755)  # mkdtemp's 0700 is not what a user's directory gets
        if not outdir.exists():
            tmp.rename(outdir)
        else:  # only the converted files are replaced: whatever else the directory holds stays
            (outdir / STATS_FILE).unlink(missing_ok=True)  # an earlier source's statistics
            for written in tmp.iterdir():
                os.replace(written, outdir / written.name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    paths = dict(config=outdir / CONFIG_FILE, model=outdir / MODEL_FILE, contract=outdir / CONTRACT_FILE)
    if stats_bytes is not None:
        paths["stats"] = outdir / STATS_FILE
    return paths


def summary(warm: WarmStart) -> List[Tuple[str, int]]:
    """(network, number of parameters) of the converted model, for the log line."""
    counts: Dict[str, int] = {}
    for key, value in warm.state.items():
        net = key.split(".", 1)[0]
        counts[net] = counts.get(net, 0) + value.numel()
    return sorted(counts.items())
