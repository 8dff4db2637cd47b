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
from typing import Iterable, Iterator, Optional, Sequence, Tuple

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

    def stream(self, chunks: Iterable[np.ndarray], contract: Optional[FeatureContract] = None) -> Iterator[np.ndarray]:
        """Synthesise one utterance arriving as mel chunks with the streaming graph (``--formats onnx_stream``).

        numpy and onnxruntime only. The graph runs ``chunk_frames`` frames at a time (``export.yaml``'s
        ``stream`` section): frames are buffered until a chunk is full; the last, short chunk and the
        flush run once ``chunks`` ends. The concatenation equals :meth:`__call__` on the whole utterance.

        Args:
            chunks: Raw log-mel chunks (frames, n_mels), or as described by ``contract``.
            contract: As for :meth:`__call__`.

        Yields:
            Waveform chunks (whole frames of ``hop_length`` samples, non-empty), in order.

        Raises:
            FileNotFoundError: the export has no streaming graph.
            ValueError: a chunk's shape or values are wrong (names its index).
        """
        return _OnnxStream(self, contract).run(chunks)


class _OnnxStream:
    """The driver of the streaming step graph (the protocol of ``export.yaml``'s ``stream`` section)."""

    def __init__(self, vocoder: OnnxVocoder, contract: Optional[FeatureContract]):
        spec = vocoder.manifest.get("stream")
        model = vocoder.path.parent / (spec or {}).get("file", "")
        if not spec or not model.is_file():
            raise FileNotFoundError(f"{vocoder.path.parent} has no streaming graph; export with --formats onnx_stream")
        if getattr(vocoder, "_stream_session", None) is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = vocoder.session.get_session_options().intra_op_num_threads
            vocoder._stream_session = ort.InferenceSession(
                str(model), sess_options=options, providers=vocoder.session.get_providers()
            )
        self.session = vocoder._stream_session
        self.vocoder, self.spec = vocoder, spec
        self.conversion = vocoder.conversion_from(contract) if contract is not None else None
        self.chunk, self.hop = int(spec["chunk_frames"]), int(spec["hop_length"])
        self.delay = int(spec["delay_samples"])
        self.caches = {i["name"]: np.zeros(i["shape"], np.float32) for i in spec["inputs"][3:]}
        self.start, self.pending = 0, np.zeros(0, np.float32)

    def _step(self, mel: np.ndarray, end: int) -> None:
        feeds = {"mel": mel[None].astype(np.float32), "start": np.array(self.start, np.int64),
                 "end": np.array(end, np.int64), **self.caches}
        outs = self.session.run(None, feeds)
        names = [o.name for o in self.session.get_outputs()]
        for name, value in zip(names[1:], outs[1:]):
            self.caches[name[len("new_"):]] = value
        first = self.start * self.hop - self.delay  # position of wav[0]
        wav = outs[0][0][max(0, -first):]
        if end != int(self.spec["no_end"]):
            wav = wav[: max(0, end * self.hop - max(first, 0))]
        self.pending = np.concatenate([self.pending, wav])
        self.start += self.chunk

    def _release(self, whole_frames: bool = True) -> np.ndarray:
        size = self.pending.size // self.hop * self.hop if whole_frames else self.pending.size
        wav, self.pending = self.pending[:size], self.pending[size:]
        return wav

    def run(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        n_mels, frames = self.vocoder.n_mels, np.zeros((0, self.vocoder.n_mels), np.float32)
        total = 0
        for index, chunk in enumerate(chunks):
            chunk = np.asarray(chunk)
            if chunk.ndim != 2 or chunk.shape[1] != n_mels:
                raise ValueError(f"mel chunk {index} has shape {chunk.shape}; the vocoder expects (frames, {n_mels}): "
                                 "pass raw log-mel with frames first")
            problem = feature_problem(chunk)
            if problem is not None:
                raise ValueError(f"mel chunk {index}: {problem}: cannot synthesise them")
            if self.conversion is not None:
                chunk = self.conversion(chunk)
            frames = np.concatenate([frames, chunk.astype(np.float32)])
            total += chunk.shape[0]
            while frames.shape[0] >= self.chunk:
                self._step(frames[: self.chunk], int(self.spec["no_end"]))
                frames = frames[self.chunk:]
            wav = self._release()
            if wav.size:
                yield wav
        if total == 0:
            return
        while self.start * self.hop - self.delay < total * self.hop:  # the rest, then zeros: the flush
            self._step(np.concatenate([frames, np.zeros((self.chunk - frames.shape[0], n_mels), np.float32)]), total)
            frames = frames[:0]
        wav = self._release(whole_frames=False)
        if wav.size:
            yield wav
