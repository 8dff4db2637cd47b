"""Official HiFi-GAN generator configurations (config_v1/v2/v3.json of jik876/hifi-gan)."""

from typing import Any, Dict

_V1_V2_BLOCKS: Dict[str, Any] = dict(
    resblock="1",
    upsample_rates=(8, 8, 2, 2),
    upsample_kernel_sizes=(16, 16, 4, 4),
    resblock_kernel_sizes=(3, 7, 11),
    resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
)

GENERATOR_PRESETS: Dict[str, Dict[str, Any]] = {
    # V1: the high-quality model (13.92M parameters).
    "v1": dict(upsample_initial_channel=512, **_V1_V2_BLOCKS),
    # V2: the same topology with fewer channels (0.92M parameters).
    "v2": dict(upsample_initial_channel=128, **_V1_V2_BLOCKS),
    # V3: three stages, residual block type 2 (1.46M parameters).
    "v3": dict(
        resblock="2",
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=256,
        resblock_kernel_sizes=(3, 5, 7),
        resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    ),
}


def espnet_generator_kwargs(preset: str, in_channels: int = 80) -> Dict[str, Any]:
    """Arguments of ESPnet's ``espnet2.gan_tts.hifigan.HiFiGANGenerator`` for the same preset."""
    p = GENERATOR_PRESETS[preset]
    return dict(
        in_channels=in_channels,
        channels=p["upsample_initial_channel"],
        upsample_scales=list(p["upsample_rates"]),
        upsample_kernel_sizes=list(p["upsample_kernel_sizes"]),
        resblock_kernel_sizes=list(p["resblock_kernel_sizes"]),
        resblock_dilations=[list(d) for d in p["resblock_dilation_sizes"]],
        use_additional_convs=p["resblock"] == "1",
    )
