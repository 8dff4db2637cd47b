"""``espnet_hifigan.tasks.vocoder.VocoderTask`` (ESPnet's ``espnet2.tasks.<name>`` habit): a
re-export of :class:`espnet_hifigan.train.task.VocoderTask` (its home)."""

from espnet_hifigan.train.task import VocoderTask

__all__ = ["VocoderTask"]
