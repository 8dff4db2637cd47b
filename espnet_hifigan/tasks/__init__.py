"""ESPnet-style task paths (``espnet_hifigan.tasks.vocoder.VocoderTask``); the task lives in
:mod:`espnet_hifigan.train.task`."""
