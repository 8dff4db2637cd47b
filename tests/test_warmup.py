"""The generator-only warm-up (``model_conf.discriminator_train_start_steps``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from tiny_models import tiny_model

from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel

HOP = 256
SEGMENT = 8 * HOP


def _model(**kwargs) -> ESPnetHiFiGANModel:
    return tiny_model(segment_size=SEGMENT, periods=(2,), scales=1, **kwargs)


def _batch():
    torch.manual_seed(1)
    speech = 0.1 * torch.randn(2, 3 * SEGMENT)
    return dict(speech=speech, speech_lengths=torch.tensor([3 * SEGMENT, 2 * SEGMENT]))


def _step(model, optims):
    """One GANTrainer step (D turn, then G turn): backward and step of each turn's optimizer."""
    stats = {}
    for forward_generator in (False, True):
        out = model(forward_generator=forward_generator, **_batch())
        out["loss"].backward()
        optims[out["optim_idx"]].step()
        for optim in optims:
            optim.zero_grad()
        stats.update({k: float(v) for k, v in out["stats"].items()})
    return stats


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def _optims(model):
    return [torch.optim.AdamW(model.generator.parameters(), 1e-3), torch.optim.AdamW(model.discriminator.parameters(), 1e-3)]


def test_warmup_trains_the_generator_alone_then_the_gan():
    torch.manual_seed(0)
    model = _model(discriminator_train_start_steps=2).train()
    optims = _optims(model)
    d0 = _params(model.discriminator)
    for step in range(2):
        g = _params(model.generator)
        stats = _step(model, optims)
        assert _changed(g, model.generator), step
        assert not _changed(d0, model.discriminator), "the discriminator moved during the warm-up"
        assert stats["discriminator_loss"] == 0 and stats["generator_adv_loss"] == 0
        assert stats["generator_loss"] == pytest.approx(45.0 * stats["generator_mel_loss"], rel=1e-6)
    assert int(model.num_train_steps) == 2
    stats = _step(model, optims)  # the GAN starts
    assert _changed(d0, model.discriminator)
    assert stats["discriminator_loss"] > 0 and stats["generator_adv_loss"] > 0
    assert stats["generator_feat_match_loss"] > 0


def test_warmup_step_count_is_saved_and_resumed():
    torch.manual_seed(0)
    model = _model(discriminator_train_start_steps=2).train()
    _step(model, _optims(model))
    state = model.state_dict()
    assert int(state["num_train_steps"]) == 1
    resumed = _model(discriminator_train_start_steps=2).train()
    resumed.load_state_dict(state)
    optims = _optims(resumed)
    d0 = _params(resumed.discriminator)
    _step(resumed, optims)  # step 2: still warm-up
    assert not _changed(d0, resumed.discriminator)
    _step(resumed, optims)  # step 3: GAN
    assert _changed(d0, resumed.discriminator)


def test_default_is_the_official_recipe_and_keeps_checkpoint_keys():
    torch.manual_seed(0)
    model = _model().train()
    assert "num_train_steps" not in model.state_dict()
    d0 = _params(model.discriminator)
    stats = _step(model, _optims(model))
    assert _changed(d0, model.discriminator) and stats["generator_adv_loss"] > 0


def test_eval_never_counts_as_warmup():
    model = _model(discriminator_train_start_steps=5).eval()
    with torch.no_grad():
        out = model(forward_generator=False, **_batch())
    assert float(out["stats"]["discriminator_loss"]) > 0
    assert int(model.num_train_steps) == 0


def test_negative_start_is_rejected():
    with pytest.raises(ValueError, match="discriminator_train_start_steps"):
        _model(discriminator_train_start_steps=-1)


REPO_ROOT = Path(__file__).resolve().parents[1]


def test_default_recipe_config_builds_and_warms_up_before_the_gan():
    """conf/hifigan_mini.yaml (mini_an4's conf/train.yaml) is valid and trains a GAN after its warm-up."""
    from espnet_hifigan.bin.check_config import check_config

    config = REPO_ROOT / "conf" / "hifigan_mini.yaml"
    assert (REPO_ROOT / "egs2" / "mini_an4" / "voc1" / "conf" / "train.yaml").resolve() == config
    args = check_config(["--config", str(config)])
    steps = args.num_iters_per_epoch * args.max_epoch
    assert 0 < args.model_conf["discriminator_train_start_steps"] < steps
    # every key commented, as every config of the project
    for line in config.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith(("#", "-")) and not line.rstrip().endswith(":"):
            assert "#" in line, line
    debug = REPO_ROOT / "conf" / "hifigan_debug.yaml"
    assert (REPO_ROOT / "egs2" / "mini_an4" / "voc1" / "conf" / "train_debug.yaml").resolve() == debug
    assert "discriminator_train_start_steps" not in yaml.safe_load(debug.read_text())["model_conf"]
