"""``espnet_hifigan.api.Vocoder``, the path the README shows: a re-export of
:class:`espnet_hifigan.inference.vocoder.Vocoder` (its home)."""

from espnet_hifigan.inference.vocoder import Vocoder

__all__ = ["Vocoder"]
