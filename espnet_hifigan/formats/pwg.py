"""The ParallelWaveGAN format (kan-bayashi): its features, ``checkpoint-*.pkl`` weights and export.

A ParallelWaveGAN training output is ``checkpoint-*.pkl`` = ``{"model": {"generator": ...}}``
with ``config.yml`` (``generator_type: HiFiGANGenerator``) and ``stats.npy``/``stats.h5``. Its
``HiFiGANGenerator`` has ESPnet's module layout (:mod:`espnet_hifigan.formats.espnet_layout`).
:func:`export_parallel_wavegan` writes this format, which ESPnet's
``Text2Speech(vocoder_file=...)`` loads through ``parallel_wavegan.utils.load_model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch
import yaml

from espnet_hifigan.contract.base import load_mapping
from espnet_hifigan.contract.foreign import PWG_CONTRACT_KEY
from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.contract.normalization import Normalization
from espnet_hifigan.formats.espnet_layout import (
    StateDict,
    UnsupportedConversion,
    convert_espnet_generator,
    generator_conf_to_espnet_params,
    ours_to_espnet_generator,
)
from espnet_hifigan.formats.weights import load_weights

PWG_GENERATOR_TYPE = "HiFiGANGenerator"
PWG_CONFIG = "config.yml"
PWG_STATS_NPY = "stats.npy"
PWG_STATS_H5 = "stats.h5"
PWG_CHECKPOINT_PATTERN = "checkpoint-{steps}steps.pkl"


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
    config = load_mapping(config_file)
    generator_type = config.get("generator_type", "ParallelWaveGANGenerator")
    if generator_type != PWG_GENERATOR_TYPE:
        raise UnsupportedConversion(f"{config_file}: generator_type {generator_type!r} is not {PWG_GENERATOR_TYPE}")
    blob = load_weights(checkpoint, "checkpoint")
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
        vocoder: An :class:`espnet_hifigan.inference.vocoder.Vocoder`.
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
