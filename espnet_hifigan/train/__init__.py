"""Training: the ESPnet task (:mod:`~espnet_hifigan.train.task`), the ESPnet model that owns the
losses and both GAN turns, segments, the AMP/compile paths, the trainer, saving and resuming,
the training-data checks and the rendering of training configs.
"""
