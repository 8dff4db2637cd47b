"""Statistics kept on the device: the deferred reporter logs exactly what ESPnet's reporter logs."""

import dataclasses
import math

import torch
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.gan_trainer import GANTrainer, GANTrainerOptions
from espnet2.train.reporter import SubReporter, aggregate
from tiny_models import tiny_model

from espnet_hifigan.train.espnet_model import ESPnetHiFiGANModel
from espnet_hifigan.train.trainer import DeferredReporter, VocoderTrainer

HOP = 256
STEPS = 5
LOG_INTERVAL = 2


def _model() -> ESPnetHiFiGANModel:
    torch.manual_seed(0)
    return tiny_model(segment_size=4 * HOP)


def _batches():
    g = torch.Generator().manual_seed(1)
    for i in range(STEPS):
        speech = 0.1 * torch.randn(2, 6 * HOP, generator=g)
        yield [f"u{i}a", f"u{i}b"], {"speech": speech, "speech_lengths": torch.tensor([6 * HOP, 5 * HOP])}


def _options(tmp_path) -> GANTrainerOptions:
    values = {f.name: None for f in dataclasses.fields(GANTrainerOptions)}
    values.update(
        ngpu=0, use_amp=False, grad_noise=False, accum_grad=1, grad_clip=-1.0, grad_clip_type=2.0,
        log_interval=LOG_INTERVAL, no_forward_run=False, use_wandb=False, generator_first=False,
        skip_discriminator_prob=0.0, output_dir=str(tmp_path),
    )
    return GANTrainerOptions(**values)


def _train(trainer, tmp_path) -> SubReporter:
    model = _model()
    optimizers = [torch.optim.AdamW(model.generator.parameters()), torch.optim.AdamW(model.discriminator.parameters())]
    reporter = SubReporter("train", 1, 0)
    torch.manual_seed(2)  # segment starts
    trainer.train_one_epoch(
        model=model, iterator=_batches(), optimizers=optimizers, schedulers=[None, None], scaler=None,
        reporter=reporter, summary_writer=None, options=_options(tmp_path),
        distributed_option=DistributedOption(distributed=False),
    )
    return reporter


def test_deferred_statistics_equal_espnet_reporter(tmp_path):
    plain = _train(GANTrainer, tmp_path)  # ESPnet's trainer: .item() at every register
    deferred = _train(VocoderTrainer, tmp_path)  # ours: read once per log interval
    assert deferred.count == plain.count == STEPS
    losses = [k for k in plain.stats if k.endswith("_loss")]
    assert len(losses) == 7 and set(deferred.stats) == set(plain.stats)
    for key in losses:
        ours = [(v.value, v.weight) for v in deferred.stats[key]]
        ref = [(v.value, v.weight) for v in plain.stats[key]]
        assert ours == ref, key
        assert all(isinstance(v, float) and math.isfinite(v) for v, _ in ours)
        for start in range(0, STEPS, LOG_INTERVAL):
            assert aggregate(deferred.stats[key][start:]) == aggregate(plain.stats[key][start:])


def test_deferred_reporter_replays_in_order_and_flushes_on_read():
    inner = SubReporter("train", 1, 0)
    reporter = DeferredReporter(inner)
    first = torch.tensor(1.5, requires_grad=True) * 2
    reporter.register({"a": first.detach(), "t": 0.25}, torch.tensor(3))
    assert inner.count == 0  # nothing reached the host yet
    reporter.next()
    reporter.register({"a": torch.tensor([4.0]), "b": torch.tensor(1.0, dtype=torch.float64)}, torch.tensor(2))
    reporter.next()
    assert reporter.count == 2  # reading an attribute flushes
    assert [(v.value, v.weight) for v in inner.stats["a"]] == [(3.0, 3), (4.0, 2)]
    assert math.isnan(inner.stats["b"][0].value) and inner.stats["b"][1].value == 1.0
    assert "a=" in reporter.log_message(-2)
