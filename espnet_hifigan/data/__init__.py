"""Kaldi data directories and the training sets built from them (above the contract, below the CLIs).

- :mod:`espnet_hifigan.data.audio`: the one ``wav.scp`` reader (files and ``cmd |`` pipes,
  truncated WAVs refused), ``segments`` with Kaldi's channel column, mono/resampling (stage 2).
- :mod:`espnet_hifigan.data.validation`: the checks of a data directory (stage 1).
- :mod:`espnet_hifigan.data.extraction`: log-mel features of a formatted ``wav.scp`` as a Kaldi
  ark/scp with its ``feats_conf.yaml`` (stage 3).
- :mod:`espnet_hifigan.data.gta`: the chain's ground-truth-aligned (teacher-forced) training sets
  and fine-tuning configs.
"""
