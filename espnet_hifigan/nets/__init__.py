"""The networks and their building blocks, plain ``torch.nn`` modules: the HiFi-GAN generator
and its presets, the multi-period / multi-scale discriminators (and their CPU convolution
layouts), the log-mel feature extractor and the feature normalisation.

Imports only :mod:`espnet_hifigan.core` of the package.
"""
