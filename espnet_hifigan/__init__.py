"""HiFi-GAN vocoders as an ESPnet2 task.

The public Python API is imported lazily (``import espnet_hifigan`` stays cheap for the CLIs):

>>> from espnet_hifigan import Vocoder, FeatureContract
>>> vocoder = Vocoder.from_pretrained("exp/hifigan/packed/model.zip")
"""

from typing import Any

__all__ = ["Vocoder", "FeatureContract", "ContractMismatch", "read_feats_scp", "pack_model", "OnnxVocoder"]
_LAZY = {
    "Vocoder": "espnet_hifigan.api",
    "read_feats_scp": "espnet_hifigan.scp",
    "pack_model": "espnet_hifigan.packing",
    "FeatureContract": "espnet_hifigan.contract",
    "ContractMismatch": "espnet_hifigan.contract",
    "OnnxVocoder": "espnet_hifigan.onnx_vocoder",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'espnet_hifigan' has no attribute {name!r}")
