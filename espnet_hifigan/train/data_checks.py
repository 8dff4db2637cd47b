"""Training hooks: record a vocoder experiment's contract, check its training data against it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping

from espnet_hifigan.contract.base import ContractError
from espnet_hifigan.contract.discovery import discover_contract
from espnet_hifigan.contract.model import CONTRACT_FILE, FeatureContract
from espnet_hifigan.contract.normalization import vocoder_normalization
from espnet_hifigan.contract.report import ContractMismatch
from espnet_hifigan.core.fileio import PathLike
from espnet_hifigan.core.safety import check_utt_ids
from espnet_hifigan.core.scp import read_scp
from espnet_hifigan.train.feature_lengths import check_lengths


def write_vocoder_contract(config: Mapping[str, Any], output_dir: PathLike) -> Path:
    """Record a vocoder experiment's contract as ``<output_dir>/feature_contract.yaml``.

    The input contract (raw log-mel of ``feats_extract_conf``) plus the normalisation the model
    applies (``normalize_conf.stats_file`` and its SHA-256). Meant to be called once per training
    run with the effective configuration (``vars(args)`` in ``VocoderTask``).

    Returns:
        The written path.
    """
    output_dir = Path(output_dir)
    contract = FeatureContract.from_train_config(config, source=str(output_dir / "config.yaml"))
    return contract.save(output_dir / CONTRACT_FILE, vocoder_normalize=vocoder_normalization(config))


def check_training_data(config: Mapping[str, Any]) -> List[str]:
    """Check the pre-extracted features a vocoder is trained on against its feature settings.

    For every ``feats`` entry of ``train_data_path_and_name_and_type`` and
    ``valid_data_path_and_name_and_type``, the contract next to its scp (``feature_contract.yaml``
    or ``feats_conf.yaml``, see :func:`discover_contract`) must equal the model's: raw log-mel
    made with ``feats_extract_conf``. An scp without a contract is refused unless the config
    declares such features raw log-mel with the model's settings (``assume_raw_features: true``).
    Then the lengths (:func:`check_lengths`): features within
    ``model_conf.feats_length_tolerance`` frames of their audio, no utterance too short.

    Args:
        config: The training configuration (``vars(args)``).

    Returns:
        The scp files that carry no contract, declared raw by ``assume_raw_features`` (unchecked;
        worth a warning).

    Raises:
        ContractMismatch: a data set's features differ from the model's settings.
        ContractError: an scp carries no contract and ``assume_raw_features`` is not set.
        LengthError: an utterance's features do not fit its audio, or it is too short.
        ValueError: a validation utterance id that cannot be a directory name (``../x``).
    """
    target = FeatureContract.from_train_config(config, source="the training config's feats_extract_conf")
    unchecked = []
    for key in ("train_data_path_and_name_and_type", "valid_data_path_and_name_and_type"):
        for path, name, _ in config.get(key) or []:
            if key.startswith("valid") and config.get("num_att_plot"):
                # The validation utterances' wavs and pictures go to <output_dir>/att_ws/<utt>/.
                try:
                    check_utt_ids(read_scp(path, f"validation {name}"), path, suffix="")
                except ValueError as e:  # reported like the other data problems: one line, exit 1
                    raise ContractError(str(e)) from None
            if name != "feats":
                continue
            contract = discover_contract(path)
            if contract is None and not config.get("assume_raw_features"):
                raise ContractError(
                    f"{path} ({key.split('_')[0]} data) has no feature contract next to it (feats_conf.yaml or "
                    "feature_contract.yaml): extract the features with extract_feats.py (it writes one), or train "
                    "with --assume_raw_features true if they are raw log-mel with exactly this feats_extract_conf"
                )
            if contract is None:
                unchecked.append(str(path))
                continue
            diffs = contract.compare(target)
            if diffs:
                raise ContractMismatch(
                    diffs,
                    contract,
                    target,
                    hint=f"{path} was extracted with other settings; re-extract it or train with its settings.",
                    labels=("training data", "model"),
                )
    check_lengths(config)
    return unchecked
