"""Generator and discriminators: sizes, shapes, parity with ESPnet's modules."""

import math

import pytest
import torch
from espnet2.gan_tts.hifigan.hifigan import HiFiGANGenerator as ESPnetGenerator
from espnet2.gan_tts.hifigan.hifigan import (
    HiFiGANMultiScaleMultiPeriodDiscriminator as ESPnetDiscriminator,
)

from espnet_hifigan.formats.espnet_layout import (
    espnet_discriminator_to_ours,
    espnet_generator_to_ours,
)
from espnet_hifigan.nets.discriminator import HiFiGANDiscriminator
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.nets.presets import GENERATOR_PRESETS, espnet_generator_kwargs

PARITY_ATOL = 1e-5


@pytest.mark.parametrize("preset, millions", [("v1", 13.92), ("v2", 0.92), ("v3", 1.46)])
def test_parameter_counts_match_paper(preset, millions):
    generator = HiFiGANGenerator.from_preset(preset)
    generator.remove_weight_norm()
    # The paper reports inference parameters truncated to two decimals (V1: 13,926,017).
    assert math.floor(generator.num_parameters() / 1e4) / 100 == millions


@pytest.mark.parametrize("preset", ["v1", "v2", "v3"])
def test_output_length_is_frames_times_hop(preset):
    generator = HiFiGANGenerator.from_preset(preset)
    frames = 7
    wav = generator(torch.randn(2, 80, frames))
    assert wav.shape == (2, 1, frames * 256)
    assert wav.abs().max() <= 1.0


def test_weight_norm_folding_keeps_outputs():
    generator = HiFiGANGenerator.from_preset("v3").eval()
    mel = torch.randn(1, 80, 12)
    before = generator(mel)
    generator.remove_weight_norm()
    assert not any("weight_g" in k for k in generator.state_dict())
    torch.testing.assert_close(generator(mel), before, atol=PARITY_ATOL, rtol=0)


def test_bad_upsampling_settings_raise():
    with pytest.raises(ValueError, match="upsample kernel"):
        HiFiGANGenerator(upsample_rates=(8,), upsample_kernel_sizes=(5,))
    with pytest.raises(ValueError, match="resblock"):
        HiFiGANGenerator(resblock="3")


@pytest.mark.parametrize("preset", ["v1", "v3"])
def test_generator_parity_with_espnet(preset):
    torch.manual_seed(0)
    reference = ESPnetGenerator(**espnet_generator_kwargs(preset)).eval()
    ours = HiFiGANGenerator.from_preset(preset).eval()
    ours.load_state_dict(espnet_generator_to_ours(reference.state_dict(), GENERATOR_PRESETS[preset]["resblock"]))
    mel = torch.randn(2, 80, 10)
    with torch.no_grad():
        diff = (ours(mel) - reference(mel)).abs().max().item()
    assert diff <= PARITY_ATOL


def test_discriminator_parity_with_espnet():
    torch.manual_seed(0)
    reference = ESPnetDiscriminator().eval()
    # ESPnet's period discriminators end in a (2, 1) conv with padding 1 (the official code: a
    # (3, 1) conv with padding 1); everything else is the official architecture.
    ours = HiFiGANDiscriminator(period_discriminator_params=dict(post_kernel_size=2, post_padding=1)).eval()
    ours.load_state_dict(espnet_discriminator_to_ours(reference.state_dict()))
    wav = torch.randn(2, 1, 8192) * 0.3
    with torch.no_grad():
        ref_outs = reference(wav)  # ESPnet order: MSD (3) then MPD (5)
        our_outs = ours(wav)  # our order: MPD (5) then MSD (3)
    ref_outs = ref_outs[3:] + ref_outs[:3]
    assert len(our_outs) == len(ref_outs) == 8
    for ours_layers, ref_layers in zip(our_outs, ref_outs):
        assert len(ours_layers) == len(ref_layers)
        # ESPnet flattens the period discriminators' final score map; compare values. Relative to
        # each map's scale (random weights reach 1e13 deep in the MSD): on the CPU the first grouped
        # conv runs channels-last (espnet_hifigan.nets.cpu_convs), equal within float rounding.
        for a, b in zip(ours_layers, ref_layers):
            assert a.numel() == b.numel()
            assert (a.reshape(b.shape) - b).abs().max().item() <= PARITY_ATOL * max(1.0, b.abs().max().item())


def test_period_discriminator_pads_odd_lengths():
    outs = HiFiGANDiscriminator(periods=(7,), scales=1)(torch.randn(1, 1, 1000))
    assert outs[0][-1].shape[-1] == 7  # folded by the period after reflect padding
