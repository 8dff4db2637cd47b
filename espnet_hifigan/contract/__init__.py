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
* :mod:`~espnet_hifigan.contract.foreign` — the feature settings of foreign files (ESPnet TTS
  configs, official ``config.json``, ParallelWaveGAN ``config.yml``, packed models).

What training checks with it (lengths of the training data, the contract written next to an
experiment) is in :mod:`espnet_hifigan.train`. This layer imports only :mod:`espnet_hifigan.core`
(torch and ESPnet only inside the functions that convert tensors). The names below are the public API.
"""

from espnet_hifigan.contract.base import ContractError, load_mapping, parse_mapping
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
from espnet_hifigan.contract.normalization import Normalization, vocoder_normalization
from espnet_hifigan.contract.report import ContractMismatch, format_table, format_value

__all__ = [
    "CONTRACT_FILE",
    "FEATS_CONF_FILE",
    "FIELD_DESCRIPTIONS",
    "VOCODER_NORMALIZE_KEY",
    "ContractError",
    "ContractMismatch",
    "FeatureContract",
    "FeatureConversion",
    "FieldDiff",
    "Normalization",
    "discover_contract",
    "format_table",
    "format_value",
    "load_contract_for_scp",
    "load_mapping",
    "load_target_contract",
    "parse_mapping",
    "pick_tts_feats",
    "reconcile",
    "vocoder_normalization",
]
