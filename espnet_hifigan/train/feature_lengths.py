"""Audio and feature lengths of the training data, checked before training starts.

Two checks per data set (``train`` and ``valid`` of ``*_data_path_and_name_and_type``), each
stopping with one message that names the utterance, its lengths and the files:

* the frames of each utterance's features must be ``num_frames(samples)`` of its audio, within
  ``model_conf.feats_length_tolerance`` frames (default :data:`DEFAULT_FEATS_LENGTH_TOLERANCE`);
  features of other audio (or another hop) are not absorbed by the training segments;
* each utterance must be long enough: for the features (:func:`conventions.min_samples`, the
  stage-3 minimum) and, in the validation set with ``validate_full_utterances``, for the
  full-utterance MR-STFT metric (its largest ``n_fft``).

:class:`CheckedCollate` repeats the first check in every batch, for what escapes it.

Lengths are read cheaply: audio from ``utt2num_samples`` next to the ``wav.scp`` (stage 2 writes
it, stage 3 checks it) or the audio headers; features from the Kaldi ark headers or ``.npy``
headers, never the matrices.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from espnet_hifigan.contract.base import ContractError
from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.core.conventions import min_samples, num_frames
from espnet_hifigan.core.fileio import PathLike
from espnet_hifigan.core.scp import read_scp
from espnet_hifigan.core.wav_scp import audio_num_frames

# Frames by which pre-extracted features may differ from num_frames(samples) of their audio.
DEFAULT_FEATS_LENGTH_TOLERANCE = 2
TOLERANCE_KEY = "feats_length_tolerance"
# Uncompressed Kaldi binary matrices: "\0B", the type token, then the int32 rows and columns.
_KALDI_FLOAT_TOKENS = (b"FM ", b"DM ")


class LengthError(ContractError):
    """Training data whose audio and feature lengths do not fit (the message names the utterance)."""


def read_num_samples(wav_scp: PathLike) -> Dict[str, int]:
    """Samples per utterance of a ``wav.scp``: its ``utt2num_samples``, else the audio headers.

    Pipe entries (``cmd |``) are left out (their length is unknown without running them); a wav
    ark entry (``wav.ark:56``) is read.
    """
    wav_scp = Path(wav_scp)
    lengths_file = wav_scp.parent / "utt2num_samples"
    if lengths_file.is_file():
        return {utt: int(n) for utt, n in read_scp(lengths_file, "utt2num_samples").items()}
    lengths = {}
    for utt, value in read_scp(wav_scp, "audio").items():
        try:  # the one wav.scp reader's lengths: a file's header, a wav ark entry
            frames = audio_num_frames(value)
        except (RuntimeError, OSError, ValueError) as e:
            raise LengthError(f"{wav_scp}: cannot read the audio header of {utt} ({value}): {e}") from e
        if frames is not None:
            lengths[utt] = frames
    return lengths


def _kaldi_rows(value: str) -> int:
    """Rows of the Kaldi matrix at ``file.ark:offset`` from its header (compressed: the matrix)."""
    path, _, offset = value.rpartition(":")
    if offset.isdigit():
        with open(path, "rb") as f:
            f.seek(int(offset))
            head = f.read(15)
        if head[:2] == b"\0B" and head[2:5] in _KALDI_FLOAT_TOKENS and head[5:6] == b"\x04":
            return struct.unpack("<i", head[6:10])[0]
    import kaldiio

    return int(kaldiio.load_mat(value).shape[0])


def read_num_frames(feats_scp: PathLike) -> Dict[str, int]:
    """Frames per utterance of a feature scp (Kaldi ark or ``.npy``), from the headers only."""
    lengths = {}
    for utt, value in read_scp(feats_scp, "features").items():
        try:
            if value.endswith(".npy"):
                lengths[utt] = int(np.load(value, mmap_mode="r").shape[0])
            else:
                lengths[utt] = _kaldi_rows(value)
        except (OSError, ValueError, struct.error) as e:
            raise LengthError(f"{feats_scp}: cannot read the features of {utt} ({value}): {e}") from e
    return lengths


def validation_min_samples(contract: FeatureContract) -> int:
    """Fewest samples of a validation utterance with ``validate_full_utterances`` (MR-STFT)."""
    from espnet_hifigan.evaluation.metrics.spectral import DEFAULT_STFT_RESOLUTIONS

    metric_min = max(n_fft // 2 + 1 for n_fft, _, _ in DEFAULT_STFT_RESOLUTIONS)
    return max(metric_min, min_samples(contract.padding, contract.hop_length, contract.n_fft))


def _data_files(config: Mapping[str, Any], phase: str) -> Tuple[Optional[str], Optional[str]]:
    """The speech and feats scp of ``phase`` (train or valid); None where not configured."""
    files: Dict[str, str] = {}
    for path, name, _ in config.get(f"{phase}_data_path_and_name_and_type") or []:
        files[name] = str(path)
    return files.get("speech"), files.get("feats")


def _first_and_count(problems: List[str]) -> str:
    more = len(problems) - 1
    return problems[0] + (f" (and {more} more utterance{'s' if more > 1 else ''})" if more else "")


def _mismatch(phase: str, utt: str, frames: int, samples: int, expected: int, tolerance: int, where: str) -> str:
    return (
        f"{phase} utterance {utt}: {frames} feature frames but its {samples} samples make {expected} "
        f"frames{where}, more than model_conf {TOLERANCE_KEY}={tolerance} apart"
    )


class CheckedCollate:
    """A collate function that first checks each utterance's feature frames against its audio.

    What the check before training cannot see (audio from pipes, data changed since) stops here,
    in every batch, naming the utterance; the arrays are still on the CPU (no device sync).

    Args:
        collate: The collate function to call afterwards (ESPnet's ``CommonCollateFn``).
        config: The training configuration (``vars(args)``): ``feats_extract_conf`` and
            ``model_conf.feats_length_tolerance``.
    """

    def __init__(self, collate: Callable, config: Mapping[str, Any]) -> None:
        contract = FeatureContract.from_train_config(config, source="the training config's feats_extract_conf")
        self.collate = collate
        self.padding, self.hop_length, self.n_fft = contract.padding, contract.hop_length, contract.n_fft
        model_conf = config.get("model_conf") or {}
        self.tolerance = int(model_conf.get(TOLERANCE_KEY, DEFAULT_FEATS_LENGTH_TOLERANCE))

    def __call__(self, batch: Sequence[Tuple[str, Mapping[str, np.ndarray]]]) -> Any:
        """Check, then collate ``[(utt, {"speech": (T,), "feats": (F, n_mels)}), ...]``."""
        for utt, data in batch:
            if "speech" in data and "feats" in data:
                samples, frames = len(data["speech"]), len(data["feats"])
                expected = int(num_frames(samples, self.padding, self.hop_length, self.n_fft))
                if abs(frames - expected) > self.tolerance:
                    raise LengthError(
                        _mismatch("batch", utt, frames, samples, expected, self.tolerance, "")
                        + "; re-extract its features from this audio (stage 3)"
                    )
        return self.collate(batch)


def check_lengths(config: Mapping[str, Any]) -> None:
    """Check the lengths of the training and validation data; see the module docstring.

    Args:
        config: The training configuration (``vars(args)``).

    Raises:
        LengthError: naming the first offending utterance, its lengths and the files.
    """
    contract = FeatureContract.from_train_config(config, source="the training config's feats_extract_conf")
    model_conf = config.get("model_conf") or {}
    tolerance = int(model_conf.get(TOLERANCE_KEY, DEFAULT_FEATS_LENGTH_TOLERANCE))
    for phase in ("train", "valid"):
        speech_scp, feats_scp = _data_files(config, phase)
        if speech_scp is None or not Path(speech_scp).is_file():
            continue  # no audio to compare with (a missing file is the data loader's error)
        samples = read_num_samples(speech_scp)
        shortest = min_samples(contract.padding, contract.hop_length, contract.n_fft)
        why = f"the features need (n_fft={contract.n_fft}, padding={contract.padding})"
        remedy = "remove it from the data directory and re-run stage 2"
        if phase == "valid" and model_conf.get("validate_full_utterances", True):
            shortest = validation_min_samples(contract)
            why = "validation's full-utterance metrics need (the MR-STFT distance)"
            remedy = "remove it from the validation set, or set model_conf validate_full_utterances: false"
        short = [
            f"{phase} utterance {utt} of {speech_scp} has {n} samples, fewer than the {shortest} {why}"
            for utt, n in samples.items()
            if n < shortest
        ]
        if short:
            raise LengthError(f"{_first_and_count(short)}: {remedy}")
        if feats_scp is None or not Path(feats_scp).is_file():
            continue
        frames = read_num_frames(feats_scp)
        bad = []
        for utt, n_frames in frames.items():
            if utt not in samples:
                continue
            expected = int(contract.num_frames(samples[utt]))
            if abs(n_frames - expected) > tolerance:
                where = f" (hop {contract.hop_length}, padding {contract.padding}; {feats_scp}, {speech_scp})"
                bad.append(_mismatch(phase, utt, n_frames, samples[utt], expected, tolerance, where))
        if bad:
            raise LengthError(
                f"{_first_and_count(bad)}: the features belong to other audio or settings; "
                "re-extract them from this audio (stage 3)"
            )
