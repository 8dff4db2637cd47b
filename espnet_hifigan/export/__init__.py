"""Exported vocoders: ONNX / TorchScript export (:mod:`~espnet_hifigan.export.exporters`) and the
onnxruntime vocoder (:mod:`~espnet_hifigan.export.onnx_vocoder`, which does not import torch).

The names of :mod:`~espnet_hifigan.export.exporters` are importable from here too; they are
loaded on first use, so importing the runtime does not import torch.
"""

from typing import Any

_EXPORTERS = {"FORMATS", "ExportedVocoder", "export_vocoder", "parse_formats"}


def __getattr__(name: str) -> Any:
    """``espnet_hifigan.export.<name>`` of the exporters module, imported on first use (PEP 562)."""
    if name in _EXPORTERS:
        from espnet_hifigan.export import exporters

        return getattr(exporters, name)
    raise AttributeError(f"module 'espnet_hifigan.export' has no attribute {name!r}")
