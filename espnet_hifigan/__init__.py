"""HiFi-GAN vocoders as an ESPnet2 task.

The public Python API is imported lazily (``import espnet_hifigan`` stays cheap for the CLIs):

>>> from espnet_hifigan import Vocoder, FeatureContract
>>> vocoder = Vocoder.from_pretrained("exp/hifigan/packed/model.zip")

The package, lowest layer first (``docs/architecture.md``; ``tests/test_layers.py`` keeps it):
``core`` (conventions, file I/O, scp) < ``contract`` (feature contract) < ``nets`` (networks) <
``formats`` (foreign checkpoints, packing) and ``evaluation`` (metrics, scoring, pages) <
``train`` and ``inference`` < ``export`` (ONNX / TorchScript) < ``bin`` (command-line shells).
"""

from typing import Any

__all__ = ["Vocoder", "TextToWav", "FeatureContract", "ContractMismatch", "read_feats_scp", "pack_model", "OnnxVocoder"]
_LAZY = {
    "Vocoder": "espnet_hifigan.inference.vocoder",
    "TextToWav": "espnet_hifigan.inference.text_to_wav",
    "read_feats_scp": "espnet_hifigan.core.scp",
    "pack_model": "espnet_hifigan.formats.packing",
    "FeatureContract": "espnet_hifigan.contract",
    "ContractMismatch": "espnet_hifigan.contract",
    "OnnxVocoder": "espnet_hifigan.export.onnx_vocoder",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'espnet_hifigan' has no attribute {name!r}")
