"""Our log-mel equals ESPnet's LogMelFbank and the official HiFi-GAN mel for the same settings."""

import librosa
import pytest
import torch
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from espnet_hifigan.contract.foreign import ESPNET_STYLE, OFFICIAL_STYLE
from espnet_hifigan.nets.features import LogMelSpectrogram

LOGMEL_ATOL = 1e-4  # float32 STFT/filterbank rounding, in log units


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    wav = 0.3 * torch.randn(2, 16000)
    lengths = torch.tensor([16000, 11111])
    return wav, lengths


@pytest.mark.parametrize(
    "settings",
    [
        dict(fs=22050, n_fft=1024, hop_length=256, win_length=None, fmin=80, fmax=7600, log_base=10.0),
        dict(fs=16000, n_fft=512, hop_length=128, win_length=400, fmin=0, fmax=None, log_base=None),
        dict(fs=24000, n_fft=2048, hop_length=300, win_length=1200, fmin=50, fmax=12000, log_base=2.0),
    ],
)
def test_equals_espnet_logmelfbank(batch, settings):
    wav, lengths = batch
    ref, ref_lengths = LogMelFbank(**settings)(wav, lengths)
    ours, our_lengths = LogMelSpectrogram(**settings)(wav, lengths)
    assert ours.shape == ref.shape
    assert torch.equal(our_lengths, ref_lengths)
    assert (ours - ref).abs().max().item() <= LOGMEL_ATOL


def _official_mel(y, n_fft, num_mels, sampling_rate, hop_size, win_size, fmin, fmax):
    """The official hifi-gan meldataset.mel_spectrogram, updated for torch>=2 / librosa>=0.10."""
    mel_basis = torch.from_numpy(
        librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax)
    ).float()
    pad = int((n_fft - hop_size) / 2)
    y = torch.nn.functional.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        y, n_fft, hop_length=hop_size, win_length=win_size, window=torch.hann_window(win_size),
        center=False, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
    )
    spec = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
    return torch.log(torch.clamp(torch.matmul(mel_basis, spec), min=1e-5))


def test_equals_official_mel(batch):
    wav, _ = batch
    ref = _official_mel(wav, 1024, 80, 22050, 256, 1024, 0, 8000)
    ours, lengths = LogMelSpectrogram(fs=22050, n_fft=1024, hop_length=256, win_length=1024, n_mels=80, **OFFICIAL_STYLE)(wav)
    assert ours.shape == (2, 16000 // 256, 80)
    assert (ours.transpose(1, 2) - ref).abs().max().item() <= LOGMEL_ATOL


@pytest.mark.parametrize("style, extra", [(ESPNET_STYLE, 1), (OFFICIAL_STYLE, 0)])
def test_frame_counts(style, extra):
    extractor = LogMelSpectrogram(fs=22050, n_fft=1024, hop_length=256, **style)
    for samples in (2560, 2561, 3000):
        feats, lengths = extractor(torch.zeros(1, samples))
        assert feats.shape[1] == samples // 256 + extra == extractor.num_frames(samples)
    # digital silence gives the silence value in every frame
    assert torch.allclose(feats[0], extractor.silence_value().expand_as(feats[0]), atol=LOGMEL_ATOL)


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="fmax"):
        LogMelSpectrogram(fs=16000, fmax=9000)
    with pytest.raises(ValueError, match="padding"):
        LogMelSpectrogram(padding="same")
    with pytest.raises(ValueError, match="win_length"):
        LogMelSpectrogram(n_fft=512, win_length=1024)
