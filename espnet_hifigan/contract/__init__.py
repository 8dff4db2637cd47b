"""Feature contracts: every setting that makes two log-mel spectrograms interchangeable.

One concern per module:

* :mod:`~espnet_hifigan.contract.model` — :class:`FeatureContract` (fields, reading any file
  that defines one, saving, comparison);
* :mod:`~espnet_hifigan.contract.normalization` — :class:`Normalization` (raw or GlobalMVN with
  named statistics);
* :mod:`~espnet_hifigan.contract.report` — the mismatch table and :class:`ContractMismatch`;
* :mod:`~espnet_hifigan.contract.convert` — :func:`reconcile`: de-/re-normalising features that
  differ only in normalisation;
* :mod:`~espnet_hifigan.contract.discovery` — the contract of a feats.scp or an experiment, and
  the choice between a TTS's ``norm/`` and ``denorm/`` mels;
* :mod:`~espnet_hifigan.contract.lengths` — audio and feature lengths of the training data;
* :mod:`~espnet_hifigan.contract.training` — the hooks training calls.

The foreign formats' feature settings (ESPnet TTS, official HiFi-GAN, ParallelWaveGAN) are read
by their modules in :mod:`espnet_hifigan.formats`. The names below are the public API.
"""

from espnet_hifigan.contract.base import ContractError, file_sha256, load_mapping, resolve_relative
from espnet_hifigan.contract.convert import FeatureConversion, reconcile
from espnet_hifigan.contract.discovery import (
    discover_contract,
    load_contract_for_scp,
    load_target_contract,
    pick_tts_feats,
)
from espnet_hifigan.contract.model import (
    CONTRACT_FILE,
    FEATS_CONF_FILE,
    FIELD_DESCRIPTIONS,
    VOCODER_NORMALIZE_KEY,
    FeatureContract,
    FieldDiff,
)
from espnet_hifigan.contract.lengths import DEFAULT_FEATS_LENGTH_TOLERANCE, LengthError, check_lengths
from espnet_hifigan.contract.normalization import Normalization, vocoder_normalization
from espnet_hifigan.contract.report import ContractMismatch, format_table, format_value
from espnet_hifigan.contract.training import check_training_data, write_vocoder_contract

__all__ = [
    "CONTRACT_FILE",
    "DEFAULT_FEATS_LENGTH_TOLERANCE",
    "FEATS_CONF_FILE",
    "FIELD_DESCRIPTIONS",
    "VOCODER_NORMALIZE_KEY",
    "ContractError",
    "ContractMismatch",
    "FeatureContract",
    "FeatureConversion",
    "FieldDiff",
    "LengthError",
    "Normalization",
    "check_lengths",
    "check_training_data",
    "discover_contract",
    "file_sha256",
    "format_table",
    "format_value",
    "load_contract_for_scp",
    "load_mapping",
    "load_target_contract",
    "pick_tts_feats",
    "reconcile",
    "resolve_relative",
    "vocoder_normalization",
    "write_vocoder_contract",
]
