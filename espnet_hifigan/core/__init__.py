"""Conventions and file handling every layer uses: frame counts and padding modes
(:mod:`~espnet_hifigan.core.conventions`), atomic writes and small file helpers
(:mod:`~espnet_hifigan.core.fileio`), Kaldi/ESPnet scp tables (:mod:`~espnet_hifigan.core.scp`),
the one ``wav.scp`` audio reader (:mod:`~espnet_hifigan.core.wav_scp`: files, pipes, wav ark entries).

The lowest layer: it imports nothing else of the package.
"""
