"""Export a vocoder to ONNX and TorchScript: raw log-mel in, waveform out, no training code needed.

>>> vocoder = Vocoder.from_pretrained("exp/hifigan/packed/model.zip")
>>> export_vocoder(vocoder, "exp/hifigan/packed", formats=("onnx", "torchscript"))
{'onnx': .../vocoder.onnx, 'torchscript': .../vocoder.torchscript.pt, ...}

The exported graph is :class:`ExportableVocoder`: the vocoder's own normalisation (ESPnet
``GlobalMVN``: subtract the mean, divide by the std) folded in front of the generator (weight norm
already removed), so it takes the raw log-mel ``Vocoder.__call__`` takes:

* input ``mel``: float32 (batch, frames, n_mels), any batch and any number of frames;
* output ``wav``: float32 (batch, frames * hop_length) in [-1, 1].

Next to the models, two sidecars tell their user which mels to feed: ``feature_contract.yaml``
(the vocoder's :class:`~espnet_hifigan.contract.FeatureContract`, readable by
``FeatureContract.load``) and ``export.yaml`` (fs, hop length, n_mels, the files, the layout).
:class:`espnet_hifigan.export.onnx_vocoder.OnnxVocoder` runs the ONNX file with onnxruntime only.
ONNX export uses PyTorch's ``torch.export``-based exporter (needs ``onnxscript``), whose dynamic
time axis is checked by the tests; TorchScript uses ``torch.jit.trace`` (the generator has no
shape-dependent control flow, so the trace holds for every length).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import yaml

from espnet_hifigan.contract import FeatureContract, FeatureConversion
from espnet_hifigan.core.fileio import PathLike, write_text_atomic
from espnet_hifigan.export.normalising import MelNormalising
from espnet_hifigan.export.onnx_vocoder import (
    CONTRACT_SIDECAR,
    EXPORT_FILE,
    EXPORT_VERSION,
    INPUT_NAME,
    OUTPUT_NAME,
    OnnxVocoder,
)
from espnet_hifigan.export.stream_export import (
    DEFAULT_CHUNK_FRAMES,
    STREAM_FILE,
    ExportableStreamStep,
    export_onnx_stream,
    stream_manifest,
)
from espnet_hifigan.inference.input_checks import feature_problem, torch_ready
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator

# onnx_stream: the stateful streaming step (export/stream_export.py); it comes with onnx (whose
# session and sidecars OnnxVocoder also reads) and is not in the default formats (its export is slow).
FORMATS = ("onnx", "torchscript", "onnx_stream")
DEFAULT_FORMATS = ("onnx", "torchscript")
FILE_NAMES = {"onnx": "vocoder.onnx", "torchscript": "vocoder.torchscript.pt", "onnx_stream": STREAM_FILE}
# voc_inference --backend -> the export format it runs.
BACKEND_FORMATS = {"onnxruntime": "onnx", "torchscript": "torchscript"}
# Example input of the export: batch 2 and an odd number of frames, so that neither axis is
# specialised to 1 (the axes are declared dynamic, the tests run other sizes).
_EXAMPLE_BATCH, _EXAMPLE_FRAMES = 2, 37
_MAX_FRAMES = 2**24

__all__ = ["FORMATS", "ExportableVocoder", "ExportedVocoder", "export_vocoder", "parse_formats"]


class ExportableVocoder(MelNormalising):
    """Normalisation + generator in one graph: raw log-mel (B, frames, n_mels) -> wav (B, samples).

    Args:
        generator: Generator without weight norm (it is copied, moved to CPU float32, eval mode).
        mean: Mean subtracted from the input (n_mels,), or ``None``.
        std: Standard deviation the input is divided by (n_mels,), or ``None``.
    """

    def __init__(self, generator: HiFiGANGenerator, mean: Optional[torch.Tensor], std: Optional[torch.Tensor]):
        if generator.use_weight_norm:
            raise ValueError("remove the generator's weight norm before exporting it")
        super().__init__(generator.conv_pre.in_channels, mean, std)
        self.generator = copy.deepcopy(generator).float().cpu().eval()
        self.eval()

    @classmethod
    def from_vocoder(cls, vocoder: Vocoder) -> "ExportableVocoder":
        """The graph of a loaded :class:`~espnet_hifigan.inference.vocoder.Vocoder` (its ``mean``/``std`` folded in)."""
        return cls(vocoder.generator, vocoder.mean, vocoder.std)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Synthesise.

        Args:
            mel: Raw log-mel (B, frames, n_mels).

        Returns:
            Waveform (B, frames * hop_length).
        """
        return self.generator(self.normalise(mel).transpose(1, 2)).squeeze(1)


def _example_input(n_mels: int) -> torch.Tensor:
    return torch.randn(_EXAMPLE_BATCH, _EXAMPLE_FRAMES, n_mels, generator=torch.Generator().manual_seed(0))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' noise: torch.jit's deprecation and the ONNX registry's torchvision notes."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
            yield
    finally:
        registry.setLevel(level)


def export_onnx(module: ExportableVocoder, path: PathLike) -> Path:
    """Write ``module`` as ONNX with dynamic batch and time axes (``torch.export``-based exporter)."""
    path = Path(path)
    n_mels = module.mean.numel()
    batch = torch.export.Dim("batch", min=1, max=1024)
    frames = torch.export.Dim("frames", min=1, max=_MAX_FRAMES)
    with torch.no_grad(), _quiet():
        program = torch.onnx.export(
            module,
            (_example_input(n_mels),),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"mel": {0: batch, 1: frames}},
            optimize=True,
            verbose=False,
        )
    program.save(str(path))
    return path


def export_torchscript(module: ExportableVocoder, path: PathLike) -> Path:
    """Write ``module`` as a traced TorchScript file (``torch.jit.load`` reads it; any length)."""
    path = Path(path)
    with torch.no_grad(), _quiet():
        traced = torch.jit.trace(module, (_example_input(module.mean.numel()),), check_trace=False)
        torch.jit.save(traced, str(path))
    return path


def parse_formats(formats: Union[str, Sequence[str]]) -> list:
    """``"onnx,torchscript"``, ``"onnx torchscript"`` or a list -> validated, de-duplicated list."""
    if isinstance(formats, str):
        formats = formats.replace(",", " ").split()
    result = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
        if fmt not in result:
            result.append(fmt)
    if "onnx_stream" in result and "onnx" not in result:
        result.insert(0, "onnx")  # OnnxVocoder.stream runs from the onnx export's directory
    if not result:
        raise ValueError(f"no export format given; choose from {', '.join(FORMATS)}")
    return result


def _manifest(vocoder: Vocoder, files: Dict[str, str], stream: Optional[Dict] = None) -> str:
    data = dict(
        export_version=EXPORT_VERSION,
        fs=vocoder.fs,
        hop_length=vocoder.hop_length,
        n_mels=vocoder.n_mels,
        input=dict(
            name=INPUT_NAME,
            shape=["batch", "frames", "n_mels"],
            dtype="float32",
            features=f"raw log-mel of {CONTRACT_SIDECAR}; the vocoder's normalisation is part of the graph",
        ),
        output=dict(name=OUTPUT_NAME, shape=["batch", "frames * hop_length"], dtype="float32", range=[-1.0, 1.0]),
        files=files,
        contract=CONTRACT_SIDECAR,
        source=vocoder.source,
        torch_version=str(torch.__version__),
    )
    if stream is not None:
        data["stream"] = stream
    header = "# Exported HiFi-GAN vocoder (espnet_hifigan.export.exporters): raw log-mel in, waveform out.\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


def export_vocoder(
    vocoder: Vocoder,
    outdir: PathLike,
    formats: Union[str, Sequence[str]] = DEFAULT_FORMATS,
    stream_chunk_frames: int = DEFAULT_CHUNK_FRAMES,
) -> Dict[str, Path]:
    """Export ``vocoder`` and write the sidecars; either every file appears in ``outdir`` or none.

    Each exported model is checked against the PyTorch graph on a length other than the traced
    one before anything is moved into ``outdir``.

    Args:
        vocoder: A loaded vocoder (weight norm already removed by :class:`Vocoder`).
        outdir: Destination directory (created; other files in it are kept).
        formats: Any of :data:`FORMATS` (``onnx_stream`` brings ``onnx``).
        stream_chunk_frames: Frames per step of the ``onnx_stream`` graph.

    Returns:
        Paths by format, plus ``"contract"`` and ``"manifest"``.

    Raises:
        ValueError: an unknown format, or an export that does not reproduce the PyTorch output.
    """
    formats = parse_formats(formats)
    outdir = Path(outdir)
    module = ExportableVocoder.from_vocoder(vocoder)
    created = not outdir.exists()
    outdir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export_", dir=outdir))
    try:
        staged, stream = {}, None
        for fmt in formats:
            if fmt == "onnx_stream":
                step = ExportableStreamStep(vocoder, stream_chunk_frames)
                with _quiet():
                    staged[fmt] = export_onnx_stream(step, staging / FILE_NAMES[fmt])
                stream = stream_manifest(step, FILE_NAMES[fmt])
            else:
                writer = export_onnx if fmt == "onnx" else export_torchscript
                staged[fmt] = writer(module, staging / FILE_NAMES[fmt])
            logging.info(f"exported {fmt}: {FILE_NAMES[fmt]}")
        vocoder.contract.save(staging / CONTRACT_SIDECAR, vocoder_normalize=vocoder.normalization)
        write_text_atomic(staging / EXPORT_FILE, _manifest(vocoder, {f: FILE_NAMES[f] for f in formats}, stream))
        _check_exports(module, staging, formats)
        paths = {}
        for key, name in [(f, FILE_NAMES[f]) for f in formats] + [("contract", CONTRACT_SIDECAR), ("manifest", EXPORT_FILE)]:
            paths[key] = (staging / name).replace(outdir / name)
        return paths
    except BaseException:
        if created:
            shutil.rmtree(outdir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_exports(module: ExportableVocoder, directory: Path, formats: Sequence[str], atol: float = 1e-4) -> None:
    """Both exports reproduce the PyTorch graph on 1 utterance of an untraced length."""
    mel = torch.randn(1, _EXAMPLE_FRAMES + 6, module.mean.numel(), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = module(mel).numpy()
    for fmt in formats:
        if fmt == "onnx":
            got = OnnxVocoder(directory, num_threads=1).run(mel.numpy())
        elif fmt == "onnx_stream":  # chunks of 5 frames against a step of another size: buffering too
            pieces = list(OnnxVocoder(directory, num_threads=1).stream(np.array_split(mel[0].numpy(), 9)))
            got = np.concatenate(pieces)[None]
        else:
            with _quiet():
                got = torch.jit.load(str(directory / FILE_NAMES[fmt])).eval()(mel).detach().numpy()
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=0.0, atol=atol):
            raise ValueError(f"the {fmt} export does not reproduce the PyTorch vocoder (shape {got.shape}, expected {expected.shape})")


class ExportedVocoder:
    """A :class:`Vocoder` whose synthesis runs an exported copy (``voc_inference --backend``).

    The vocoder is exported into a temporary directory; contract checks, feature extraction and
    everything but synthesis stay the vocoder's.

    Args:
        vocoder: The loaded vocoder.
        backend: ``"onnxruntime"`` or ``"torchscript"``.
    """

    def __init__(self, vocoder: Vocoder, backend: str):
        if backend not in BACKEND_FORMATS:
            raise ValueError(f"unknown backend {backend!r}; choose from pytorch, {', '.join(BACKEND_FORMATS)}")
        self.vocoder = vocoder
        self.backend = backend
        self.device = vocoder.device
        providers = ["CPUExecutionProvider"]
        if backend == "onnxruntime" and self.device.type == "cuda":
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise RuntimeError("--backend onnxruntime on a GPU needs onnxruntime-gpu (CUDAExecutionProvider)")
            providers.insert(0, "CUDAExecutionProvider")
        self._tmp = tempfile.TemporaryDirectory(prefix="espnet_hifigan_export_")
        fmt = BACKEND_FORMATS[backend]
        path = export_vocoder(vocoder, self._tmp.name, [fmt])[fmt]
        if backend == "onnxruntime":
            self._onnx = OnnxVocoder(path, num_threads=torch.get_num_threads(), providers=providers)
        else:
            with _quiet():
                self._module = torch.jit.load(str(path), map_location=self.device).eval()

    # What voc_inference uses of a Vocoder, delegated.
    fs = property(lambda self: self.vocoder.fs)
    hop_length = property(lambda self: self.vocoder.hop_length)
    n_mels = property(lambda self: self.vocoder.n_mels)
    feats_extract = property(lambda self: self.vocoder.feats_extract)
    contract = property(lambda self: self.vocoder.contract)

    def resolve_contract(self, *args: Any, **kwargs: Any) -> Tuple[Optional[FeatureContract], FeatureConversion]:
        """See :meth:`Vocoder.resolve_contract`."""
        return self.vocoder.resolve_contract(*args, **kwargs)

    def features(self, wav: np.ndarray) -> np.ndarray:
        """See :meth:`Vocoder.features`."""
        return self.vocoder.features(wav)

    @torch.no_grad()
    def __call__(
        self, feats: np.ndarray, dtype: torch.dtype = torch.float32, contract: Optional[FeatureContract] = None
    ) -> np.ndarray:
        """Synthesise like :meth:`Vocoder.__call__` (float32 only): (frames, n_mels) -> (samples,)."""
        if dtype != torch.float32:
            raise ValueError(f"--dtype other than float32 needs --backend pytorch (backend {self.backend})")
        if contract is not None:
            feats = self.vocoder.conversion_from(contract)(np.asarray(feats))
        feats = torch_ready(np.asarray(feats))
        if feats.ndim != 2 or feats.shape[1] != self.n_mels:
            raise ValueError(f"expected features of shape (frames, {self.n_mels}), got {feats.shape}")
        problem = feature_problem(feats)
        if problem is not None:
            raise ValueError(f"{problem}: cannot synthesise them")
        if self.backend == "onnxruntime":
            return self._onnx(feats)
        mel = torch.from_numpy(feats).unsqueeze(0).to(self.device)
        return self._module(mel)[0].float().cpu().numpy()
