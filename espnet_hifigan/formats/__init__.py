"""Foreign formats, one module each, knowing both its weights and its feature settings.

* :mod:`~espnet_hifigan.formats.official` — jik876/hifi-gan ``g_*`` checkpoints, ``config.json``
  and the official mel;
* :mod:`~espnet_hifigan.formats.pwg` — ParallelWaveGAN ``checkpoint-*.pkl``, ``config.yml``,
  ``stats.npy`` (import and export);
* :mod:`~espnet_hifigan.formats.espnet` — ESPnet TTS ``config.yaml`` features and the HiFi-GAN
  vocoder of ``gan_tts`` models;
* :mod:`~espnet_hifigan.formats.espnet_layout` — the module layout ESPnet and ParallelWaveGAN
  share: state-dict renaming and constructor arguments;

and our own files:

* :mod:`~espnet_hifigan.formats.weights` — reading any weight file a user gives (checkpoints,
  state dicts, pickles of the formats above) with one clear error for what is not one;
* :mod:`~espnet_hifigan.formats.packing` — the packed ``model.zip`` (config, weights, statistics,
  feature contract).
"""
