"""Kaldi data directories and the training sets built from them (above the contract, below the CLIs).

- :mod:`espnet_hifigan.data.audio`: ``segments`` (Kaldi's channel column, end ``-1``),
  mono/resampling (stage 2), over the one ``wav.scp`` reader :mod:`espnet_hifigan.core.wav_scp`
  (files, ``cmd |`` pipes, wav ark entries; truncated WAVs refused).
- :mod:`espnet_hifigan.data.validation`: the checks of a data directory (stage 1).
- :mod:`espnet_hifigan.data.extraction`: log-mel features of a formatted ``wav.scp`` as a Kaldi
  ark/scp with its ``feats_conf.yaml`` (stage 3).
- :mod:`espnet_hifigan.data.gta`: the chain's ground-truth-aligned (teacher-forced) training sets
  and fine-tuning configs.
"""
