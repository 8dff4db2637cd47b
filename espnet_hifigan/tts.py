"""``espnet_hifigan.tts.TextToWav``, the path the README shows: a re-export of
:class:`espnet_hifigan.inference.text_to_wav.TextToWav` (its home)."""

from espnet_hifigan.inference.text_to_wav import DEFAULT_TTS_MODEL_FILE, TextToWav

__all__ = ["TextToWav", "DEFAULT_TTS_MODEL_FILE"]
