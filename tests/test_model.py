"""The ESPnet GAN model: segment alignment, turns, caching, stats collection."""

import pytest
import torch
from tiny_models import tiny_model
from torch.nn.utils.weight_norm import WeightNorm

from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel

HOP = 256
SEGMENT = 8 * HOP


def _model(**kwargs) -> ESPnetHiFiGANModel:
    return tiny_model(segment_size=SEGMENT, **kwargs)


def test_segments_are_aligned_with_features():
    torch.manual_seed(0)
    model = _model().train()
    lengths = torch.tensor([20 * HOP + 17, 12 * HOP, 5 * HOP])  # the last is shorter than a segment
    total = int(lengths.max())
    # Every sample carries the index of its frame; every feature frame carries its own index.
    speech = (torch.arange(total) // HOP).float().repeat(3, 1)
    frames = total // HOP + 1
    feats = torch.arange(frames).float()[None, :, None].expand(3, frames, 80).contiguous()
    feats_lengths = lengths // HOP + 1
    for _ in range(5):  # random starts
        seg, audio = model._cut_segments(speech, lengths, feats, feats_lengths)
        assert seg.shape == (3, SEGMENT // HOP, 80) and audio.shape == (3, SEGMENT)
        frame_of_audio = audio.view(3, -1, HOP)[:, :, 0]
        valid = torch.arange(SEGMENT // HOP)[None, :] < (lengths // HOP)[:, None]
        assert torch.equal(seg[..., 0][valid], frame_of_audio[valid])
        # the short utterance is padded: zeros in audio, silence in features
        assert torch.all(audio[2, 5 * HOP :] == 0)
        assert torch.allclose(seg[2, 5:], model.feats_extract.silence_value().expand(3, 80))


def test_turns_return_espnet_dicts_and_share_one_generator_pass(monkeypatch):
    torch.manual_seed(0)
    model = _model().train()
    calls = []
    original = model.generator.forward
    monkeypatch.setattr(model.generator, "forward", lambda c: calls.append(1) or original(c))
    speech = 0.1 * torch.randn(2, 4 * SEGMENT)
    lengths = torch.tensor([4 * SEGMENT, 3 * SEGMENT])
    d_out = model(speech, lengths, forward_generator=False)
    g_out = model(speech, lengths, forward_generator=True)
    assert len(calls) == 1
    assert d_out["optim_idx"] == 1 and g_out["optim_idx"] == 0
    for out in (d_out, g_out):
        assert set(out) == {"loss", "stats", "weight", "optim_idx"}
        # gatherable for ESPnet's DataParallel/DDP averaging: 1-element tensors
        assert out["loss"].shape == (1,) and torch.isfinite(out["loss"]).all()
        assert all(v.shape == (1,) for v in out["stats"].values())
        assert out["weight"].item() == 2
    assert {"generator_mel_loss", "generator_adv_loss", "generator_feat_match_loss"} <= set(g_out["stats"])
    g_out["loss"].backward()
    assert model.generator.conv_pre.weight_v.grad is not None
    # a new batch runs the generator again
    model(speech, lengths, forward_generator=False)
    assert len(calls) == 2


def test_loss_weights_are_applied():
    torch.manual_seed(0)
    speech = 0.1 * torch.randn(2, 2 * SEGMENT)
    lengths = torch.tensor([2 * SEGMENT, 2 * SEGMENT])
    model = _model(lambda_adv=0.0, lambda_feat_match=0.0, lambda_mel=3.0, cache_generator_outputs=False).eval()
    out = model(speech, lengths, forward_generator=True)
    assert out["loss"].item() == pytest.approx(3.0 * out["stats"]["generator_mel_loss"], rel=1e-5)


def test_hop_mismatch_is_rejected():
    feats_extract = LogMelSpectrogram(fs=16000, n_fft=1024, hop_length=200)
    with pytest.raises(ValueError, match="hop_length"):
        ESPnetHiFiGANModel(feats_extract, None, HiFiGANGenerator.from_preset("v3"), HiFiGANDiscriminator())


def test_collect_feats_passes_given_features_through():
    model = _model()
    speech = torch.randn(1, 4000)
    out = model.collect_feats(speech, torch.tensor([4000]))
    assert out["feats"].shape == (1, 4000 // HOP + 1, 80)
    given = torch.randn(1, 5, 80)
    out = model.collect_feats(speech, torch.tensor([4000]), feats=given, feats_lengths=torch.tensor([5]))
    assert out["feats"] is given


def test_generator_turn_gives_the_generator_the_same_gradients_without_discriminator_ones(monkeypatch):
    """The G turn leaves the discriminator's gradients out (the trainer discards them) and computes
    its weight norms once for both calls, and gives the generator exactly the gradients of the turn
    that computes them all, per call; the weight-norm hooks are back after the turn."""
    import contextlib

    from espnet_hifigan.train import espnet_model

    speech = 0.1 * torch.randn(2, 2 * SEGMENT, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([2 * SEGMENT, 2 * SEGMENT])
    grads = {}
    for frozen in (True, False):
        if not frozen:  # the reference: every parameter gets its gradient, weights normed per call
            monkeypatch.setattr(espnet_model, "frozen", lambda module: contextlib.nullcontext())
            monkeypatch.setattr(espnet_model, "weight_norms_computed_once", lambda *a, **k: contextlib.nullcontext())
        torch.manual_seed(0)
        model = _model().train()
        hooks = [list(m._forward_pre_hooks.values()) for m in model.discriminator.modules()]
        assert any(isinstance(h, WeightNorm) for hs in hooks for h in hs)  # the path under test is taken
        torch.manual_seed(2)
        model(speech, lengths, forward_generator=True)["loss"].backward()
        assert [list(m._forward_pre_hooks.values()) for m in model.discriminator.modules()] == hooks
        grads[frozen] = {n: p.grad for n, p in model.named_parameters()}
        assert all(p.requires_grad for p in model.parameters())  # restored after the turn
    d_names = [n for n in grads[True] if n.startswith("discriminator.")]
    assert d_names and all(grads[True][n] is None for n in d_names)
    assert any(grads[False][n] is not None for n in d_names)
    for name, grad in grads[False].items():
        if name.startswith("generator."):
            torch.testing.assert_close(grads[True][name], grad, rtol=0, atol=1e-6)
