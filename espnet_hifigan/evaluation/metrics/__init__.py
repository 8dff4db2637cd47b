"""Objective metrics for vocoder outputs (copy synthesis) against reference audio.

Each metric is a plain function on NumPy waveforms (shape ``(T,)``, values in
``[-1, 1]``); :func:`score_pair` runs several of them on one pair, sharing features,
and :data:`METRICS` records each metric's unit and whether higher is better.

=============  ======  ==========  ================================================
name           unit    better      definition
=============  ======  ==========  ================================================
mcd            dB      lower       mel-cepstral distortion (c1..c24 of WORLD
                                   CheapTrick envelope via SPTK sp2mc), frame-aligned
mcd_dtw        dB      lower       same after DTW alignment (outputs of other length)
log_f0_rmse    cent    lower       RMSE of 1200*log2(F0_gen/F0_ref) on frames voiced
                                   in both (WORLD DIO F0)
vuv_error      %       lower       voiced/unvoiced decision mismatch rate
pesq           MOS     higher      wide-band PESQ (P.862.2) at 16 kHz, 1.04..4.64
stoi           --      higher      STOI, 0..1
estoi          --      higher      extended STOI
mrstft         --      lower       multi-resolution STFT spectral convergence +
                                   log-magnitude L1, averaged over resolutions
mrstft_sc      --      lower       its spectral-convergence part
mrstft_mag     --      lower       its log-magnitude part
feats_mel_l1   log10   lower       mean |log-mel difference| of the feature mel
                                   (LogMelSpectrogram of --mel_conf, e.g. 80-7600 Hz);
                                   not the validation loss_mel_l1 (natural log, 0..fs/2)
=============  ======  ==========  ================================================

Length mismatch: frame-aligned metrics trim both signals to the shorter length when
they differ by at most ``max_length_diff_s`` (default 50 ms) and raise otherwise.
"""

from espnet_hifigan.evaluation.metrics.perceptual import pesq_wb, stoi
from espnet_hifigan.evaluation.metrics.pitch import (
    extract_f0,
    log_f0_rmse,
    log_f0_rmse_from_f0,
    vuv_error_from_f0,
    vuv_error_rate,
)
from espnet_hifigan.evaluation.metrics.registry import (
    DEFAULT_METRICS,
    METRICS,
    MetricSpec,
    ScoreOptions,
    get_metric,
    higher_is_better,
    parse_metric_names,
    score_pair,
)
from espnet_hifigan.evaluation.metrics.signal import (
    DEFAULT_MAX_LENGTH_DIFF_S,
    as_waveform,
    resample,
    trim_to_common_length,
)
from espnet_hifigan.evaluation.metrics.spectral import (
    DEFAULT_STFT_RESOLUTIONS,
    STFTDistance,
    extract_mcep,
    log_mel,
    mcd_from_mcep,
    mel_cepstral_distortion,
    mel_l1,
    multi_resolution_stft_distance,
)

__all__ = [
    "DEFAULT_MAX_LENGTH_DIFF_S",
    "DEFAULT_METRICS",
    "DEFAULT_STFT_RESOLUTIONS",
    "METRICS",
    "MetricSpec",
    "STFTDistance",
    "ScoreOptions",
    "as_waveform",
    "extract_f0",
    "extract_mcep",
    "get_metric",
    "higher_is_better",
    "log_f0_rmse",
    "log_f0_rmse_from_f0",
    "log_mel",
    "mcd_from_mcep",
    "mel_cepstral_distortion",
    "mel_l1",
    "multi_resolution_stft_distance",
    "parse_metric_names",
    "pesq_wb",
    "resample",
    "score_pair",
    "stoi",
    "trim_to_common_length",
    "vuv_error_from_f0",
    "vuv_error_rate",
]
