"""Discovery: finding the contract of a feats.scp or an experiment, and picking the TTS's mels.

The contract of a ``feats.scp`` is the ``feature_contract.yaml`` / ``feats_conf.yaml`` next to it,
or, for ESPnet ``tts_inference`` output (``<tts_exp>/<decode>/<set>/{norm,denorm}/feats.scp``),
the TTS experiment's ``config.yaml`` a few levels up.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional, Tuple

from espnet_hifigan.contract.base import ContractError, load_mapping
from espnet_hifigan.contract.convert import FeatureConversion, reconcile
from espnet_hifigan.contract.foreign import (
    ESPNET_DENORM_DIR,
    ESPNET_NORM_DIR,
    is_espnet_tts_config,
)
from espnet_hifigan.contract.model import (
    CONTRACT_FILE,
    FEATS_CONF_FILE,
    FeatureContract,
)
from espnet_hifigan.core.fileio import PathLike

# How many parent directories discover_contract climbs to find an ESPnet TTS config.yaml.
DISCOVERY_MAX_PARENTS = 4


def load_contract_for_scp(contract_file: PathLike, feats_scp: PathLike) -> FeatureContract:
    """Read the contract of ``feats_scp`` from ``contract_file``.

    As :meth:`FeatureContract.load`, except that an ESPnet TTS ``config.yaml`` describes the
    features of a ``norm/feats.scp`` as normalised with the TTS statistics (``denorm/`` and
    anything else: raw).
    """
    path = Path(contract_file)
    if path.suffix in (".yaml", ".yml") and path.is_file() and not zipfile.is_zipfile(path):
        data = load_mapping(path)
        if is_espnet_tts_config(data):
            normalized = Path(feats_scp).resolve().parent.name == ESPNET_NORM_DIR
            return FeatureContract.from_espnet_tts_config(path, normalized=normalized)
    return FeatureContract.load(path)


def discover_contract(feats_scp: PathLike) -> Optional[FeatureContract]:
    """Find the contract of a ``feats.scp`` from the files around it.

    Looks for, in order: ``feature_contract.yaml`` and ``feats_conf.yaml`` in the scp's
    directory; for ESPnet ``tts_inference`` output (``<tts_exp>/<decode>/<set>/{norm,denorm}/
    feats.scp``) the TTS experiment's ``config.yaml`` a few levels up (``norm``: normalised with
    the TTS statistics, ``denorm``: raw).

    Returns:
        The contract, or ``None`` when nothing describes the features.
    """
    scp_dir = Path(feats_scp).resolve().parent
    for name in (CONTRACT_FILE, FEATS_CONF_FILE):
        if (scp_dir / name).is_file():
            return FeatureContract.load(scp_dir / name)
    if scp_dir.name in (ESPNET_NORM_DIR, ESPNET_DENORM_DIR):
        for parent in list(scp_dir.parents)[:DISCOVERY_MAX_PARENTS]:
            config = parent / "config.yaml"
            if config.is_file() and is_espnet_tts_config(load_mapping(config)):
                return load_contract_for_scp(config, feats_scp)
    return None


def pick_tts_feats(
    decode_set_dir: PathLike, tts_config: PathLike, target: FeatureContract
) -> Tuple[Path, FeatureContract, FeatureConversion]:
    """Choose the feats.scp of an ESPnet ``tts_inference`` output for a consumer of ``target``.

    ``tts_inference`` writes ``norm/feats.scp`` (the model's output: normalised with the TTS
    statistics if the TTS normalises, else raw) and, when it normalises, ``denorm/feats.scp``
    (raw). The scp whose contract equals ``target`` is preferred; otherwise one that differs only
    in normalisation, with the conversion.

    Args:
        decode_set_dir: ``<tts_exp>/<decode_dir>/<set>`` (or a teacher-forcing output dir).
        tts_config: The TTS experiment's ``config.yaml``.
        target: The contract the features must meet (a vocoder's: raw log-mel).

    Returns:
        The scp, its contract and the conversion to ``target``.

    Raises:
        ContractError: no scp found; ContractMismatch: the TTS features cannot meet ``target``.
    """
    decode_set_dir = Path(decode_set_dir)
    candidates = []
    for sub in (ESPNET_DENORM_DIR, ESPNET_NORM_DIR):
        scp = decode_set_dir / sub / "feats.scp"
        if scp.is_file():
            candidates.append((scp, load_contract_for_scp(tts_config, scp)))
    if not candidates:
        raise ContractError(
            f"{decode_set_dir} has neither {ESPNET_DENORM_DIR}/feats.scp nor {ESPNET_NORM_DIR}/feats.scp "
            "(is it an ESPnet tts_inference output directory?)"
        )
    for scp, contract in candidates:
        if not contract.compare(target):
            return scp, contract, FeatureConversion(contract, target)
    error: Optional[ContractError] = None
    for scp, contract in candidates:
        try:
            return scp, contract, reconcile(contract, target)
        except ContractError as e:
            error = error or e
    assert error is not None
    raise error


def load_target_contract(path: PathLike) -> FeatureContract:
    """The input contract of a vocoder given as an experiment directory or any contract file."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    return FeatureContract.load(path)

