"""Run an exported vocoder with onnxruntime alone: numpy, onnxruntime and yaml, no torch, no ESPnet.

>>> vocoder = OnnxVocoder("exp/hifigan/packed")        # the export directory, its export.yaml or .onnx
>>> wav = vocoder(mel)                                  # raw log-mel (frames, n_mels) -> (samples,)
>>> vocoder.fs, vocoder.hop_length, vocoder.contract   # which mels to feed

The files come from :func:`espnet_hifigan.export.exporters.export_vocoder` (``python -m
espnet_hifigan.bin.export``): ``vocoder.onnx`` (normalisation folded in), ``export.yaml`` and
``feature_contract.yaml``. The contract is checked as :class:`~espnet_hifigan.inference.vocoder.Vocoder` does
when features come with one (``vocoder(mel, contract=...)``); only a de-/re-normalisation between
contracts needs torch (imported then).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import yaml

from espnet_hifigan.contract import FeatureContract, FeatureConversion, reconcile
from espnet_hifigan.core.fileio import PathLike
from espnet_hifigan.inference.input_checks import feature_problem  # numpy only, as this module

EXPORT_VERSION = 1
# Sidecars written next to the exported models.
EXPORT_FILE = "export.yaml"
CONTRACT_SIDECAR = "feature_contract.yaml"
INPUT_NAME = "mel"
OUTPUT_NAME = "wav"

__all__ = ["OnnxVocoder"]


def _read_manifest(path: PathLike) -> Tuple[Path, dict]:
    """(directory, manifest) of an export directory, its ``export.yaml`` or a model file in it."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    manifest_path = directory / EXPORT_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{manifest_path} not found: {path} is not an exported vocoder; export one with "
            "`python -m espnet_hifigan.bin.export --model MODEL --outdir DIR`"
        )
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8")) or {}
    if int(manifest.get("export_version", 0)) > EXPORT_VERSION:
        raise ValueError(f"{manifest_path}: export_version {manifest['export_version']} is newer than this code")
    return directory, manifest


class OnnxVocoder:
    """An exported vocoder run by onnxruntime.

    Args:
        path: Export directory, its ``export.yaml``, or the ``.onnx`` file in it.
        num_threads: Intra-op threads of onnxruntime (``None``: its default).
        providers: onnxruntime execution providers (default: CPU).
    """

    def __init__(
        self, path: PathLike, num_threads: Optional[int] = None, providers: Optional[Sequence[str]] = None
    ):
        import onnxruntime as ort

        directory, self.manifest = _read_manifest(path)
        model = Path(path) if Path(path).suffix == ".onnx" else directory / self.manifest.get("files", {}).get("onnx", "")
        if not model.is_file():
            raise FileNotFoundError(f"{directory} has no ONNX model ({model.name or 'none listed in ' + EXPORT_FILE}); "
                                    "export with --formats onnx")
        self.contract = FeatureContract.from_dict(
            yaml.safe_load((directory / self.manifest.get("contract", CONTRACT_SIDECAR)).read_text(encoding="utf-8")),
            source=f"exported vocoder {model}",
        )
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
        )
        self.path = model

    @property
    def fs(self) -> int:
        """Output sampling rate."""
        return int(self.manifest["fs"])

    @property
    def hop_length(self) -> int:
        """Samples per feature frame."""
        return int(self.manifest["hop_length"])

    @property
    def n_mels(self) -> int:
        """Mel bins of the input."""
        return int(self.manifest["n_mels"])

    def conversion_from(self, contract: FeatureContract) -> FeatureConversion:
        """How features of ``contract`` become this vocoder's raw input (see ``Vocoder.conversion_from``).

        Raises:
            ContractMismatch: the features differ in a field other than normalisation.
        """
        return reconcile(
            contract,
            self.contract,
            hint="These features cannot be decoded by this vocoder: extract them with the settings of "
            f"{self.path.parent / CONTRACT_SIDECAR}.",
        )

    def run(self, mel: np.ndarray) -> np.ndarray:
        """The raw graph: float32 (batch, frames, n_mels) -> (batch, frames * hop_length)."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(mel, dtype=np.float32)})[0]

    def __call__(self, mel: np.ndarray, contract: Optional[FeatureContract] = None) -> np.ndarray:
        """Synthesise one utterance.

        Args:
            mel: Raw log-mel (frames, n_mels) or (1, frames, n_mels), or as described by ``contract``.
            contract: The features' contract; checked against :attr:`contract` (and the features
                de-normalised if that is the only difference). ``None``: raw features assumed.

        Returns:
            Waveform (frames * hop_length,) float32 in [-1, 1].

        Raises:
            ValueError: the shape is not (frames, n_mels), or the features hold NaN/Inf (as
                ``Vocoder`` refuses them: :func:`~espnet_hifigan.inference.input_checks.feature_problem`).
            ContractMismatch: ``contract`` differs in a non-normalisation field.
        """
        mel = np.asarray(mel)
        if mel.ndim == 3 and mel.shape[0] == 1:
            mel = mel[0]
        if mel.ndim != 2 or mel.shape[1] != self.n_mels or mel.shape[0] == 0:
            raise ValueError(f"expected features of shape (frames, {self.n_mels}), got {mel.shape}")
        problem = feature_problem(mel)
        if problem is not None:
            raise ValueError(f"{problem}: cannot synthesise them")
        if contract is not None:
            mel = self.conversion_from(contract)(mel)
        return self.run(mel[None])[0]
