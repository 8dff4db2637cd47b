"""Synthesis: :class:`~espnet_hifigan.inference.vocoder.Vocoder` (the contract enforced), its fast
engine and FFT convolutions, streaming, input checks, which checkpoint decodes an experiment,
and text to waveform through an ESPnet TTS model.
"""
