"""GPU checks of the fast training paths (``pytest -m gpu``; skipped without CUDA).

One training step as ESPnet's GANTrainer takes it (two optimizers, the discriminator's spectral
norm) with ``--use_amp`` float16 + GradScaler, with bf16 autocast, compiled; the fp16 guard; a
2-process DDP run on one GPU (gloo); and ``voc_train --use_amp true`` through ESPnet's CLI.
``benchmarks/gpu_session.sh`` runs them.
"""

from __future__ import annotations

import os
import socket
from typing import Dict, List

import numpy as np
import pytest
import torch

from test_fast_training import LOSSES, build_debug_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run with pytest -m gpu on one)"),
]
SEGMENT = 8192
BATCH = 4


def batch(seed: int = 0, device: str = "cuda"):
    """Speech-like noise bursts (B, 3 segments) and their lengths."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(3 * SEGMENT) / 16000
    f0 = 100 + 100 * torch.rand(BATCH, 1, generator=g)
    speech = 0.3 * torch.sin(2 * torch.pi * f0 * t) + 0.01 * torch.randn(BATCH, t.numel(), generator=g)
    return speech.to(device), torch.full((BATCH,), t.numel(), device=device)


def gan_steps(model, steps: int, use_amp: bool) -> List[Dict[str, float]]:
    """``steps`` GANTrainer steps (D turn, G turn) on CUDA; ESPnet's AMP code when ``use_amp``."""
    optim_g = torch.optim.AdamW(model.generator.parameters(), 2e-4, betas=(0.8, 0.99), fused=True)
    optim_d = torch.optim.AdamW(model.discriminator.parameters(), 2e-4, betas=(0.8, 0.99), fused=True)
    optimizers = [optim_g, optim_d]
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    history = []
    for step in range(steps):
        speech, lengths = batch(step)
        row = {}
        for turn in ("discriminator", "generator"):
            # as espnet2.train.gan_trainer.GANTrainer.train_one_epoch
            with torch.autocast("cuda", enabled=scaler is not None):
                retval = model(speech, lengths, forward_generator=turn == "generator")
            loss, optim = retval["loss"], optimizers[retval["optim_idx"]]
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optim)
                scaler.step(optim)
                scaler.update()
            else:
                loss.backward()
                optim.step()
            for o in optimizers:
                o.zero_grad()
            row.update({k: float(v) for k, v in retval["stats"].items() if k in LOSSES})
        history.append(row)
    return history


def train_from_same_init(steps: int, use_amp: bool = False, **model_conf) -> List[Dict[str, float]]:
    torch.manual_seed(0)
    model = build_debug_model(segment_size=SEGMENT, **model_conf).cuda().train()
    torch.manual_seed(1)
    return gan_steps(model, steps, use_amp)


def assert_tracks(fast: List[Dict[str, float]], reference: List[Dict[str, float]], rtol: float) -> None:
    for name in LOSSES:
        a = np.array([row[name] for row in fast])
        b = np.array([row[name] for row in reference])
        assert np.isfinite(a).all(), name
        np.testing.assert_allclose(a, b, rtol=rtol, err_msg=name)


@pytest.fixture(scope="module")
def reference():
    return train_from_same_init(3)


def test_the_discriminator_under_test_has_spectral_norm():
    model = build_debug_model()
    assert any(hasattr(m, "weight_u") for m in model.discriminator.modules())


def test_float16_with_grad_scaler_tracks_fp32(reference):
    assert_tracks(train_from_same_init(3, use_amp=True, autocast_dtype="float16"), reference, rtol=0.05)


def test_use_amp_alone_tracks_fp32(reference):
    """--use_amp true with autocast_dtype null: ESPnet's float16 autocast of the whole forward."""
    assert_tracks(train_from_same_init(3, use_amp=True), reference, rtol=0.05)


def test_float16_without_grad_scaler_is_refused():
    with pytest.raises(ValueError, match="--use_amp true"):
        train_from_same_init(1, autocast_dtype="float16")


def test_bf16_tracks_fp32(reference):
    assert_tracks(train_from_same_init(3, autocast_dtype="bfloat16"), reference, rtol=0.05)


def test_compiled_bf16_tracks_fp32(reference):
    torch._dynamo.reset()
    assert_tracks(train_from_same_init(3, autocast_dtype="bfloat16", compile=True), reference, rtol=0.05)


def test_compiled_fp32_tracks_fp32(reference):
    torch._dynamo.reset()
    assert_tracks(train_from_same_init(3, compile=True), reference, rtol=0.01)


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.cuda.set_device(0)
    torch.manual_seed(0)
    model = build_debug_model(segment_size=SEGMENT, autocast_dtype="bfloat16", compile=True).cuda().train()
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[0], find_unused_parameters=True)
    optim_g = torch.optim.AdamW(model.generator.parameters(), 2e-4, fused=True)
    optim_d = torch.optim.AdamW(model.discriminator.parameters(), 2e-4, fused=True)
    losses = []
    for step in range(3):
        speech, lengths = batch(10 * step + rank)  # different data per rank
        for turn, optim in (("discriminator", optim_d), ("generator", optim_g)):
            retval = ddp(speech, lengths, forward_generator=turn == "generator")
            retval["loss"].backward()
            optim.step()
            optim_g.zero_grad()
            optim_d.zero_grad()
            losses.append(float(retval["loss"]))
    flat = torch.cat([p.detach().float().flatten().cpu() for p in model.parameters()])
    torch.save(dict(params=flat, losses=losses), os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_process_ddp_on_one_gpu_keeps_ranks_identical(tmp_path):
    """DDP (gloo, 2 processes sharing cuda:0) with bf16 autocast and compile: after 3 steps on
    different data the ranks hold the same parameters."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert all(np.isfinite(r["losses"]).all() for r in ranks)
    assert ranks[0]["losses"] != ranks[1]["losses"]  # they did see different data
    torch.testing.assert_close(ranks[0]["params"], ranks[1]["params"], rtol=0, atol=0)


def test_voc_train_cli_use_amp_float16_compiled(synthetic_corpus, tmp_path):
    """voc_train --ngpu 1 --use_amp true, model_conf autocast_dtype=float16 compile=true: 2 steps."""
    from test_cli import run, train_args

    exp = tmp_path / "amp"
    proc = run(
        "espnet_hifigan.bin.voc_train",
        *train_args(synthetic_corpus, exp)[:-2],  # without its --ngpu 0
        "--ngpu", "1", "--use_amp", "true",
        "--model_conf", "autocast_dtype=float16", "--model_conf", "compile=true",
        "--num_iters_per_epoch", "2", "--max_epoch", "1",
    )
    assert "compiled generator in" in proc.stdout + proc.stderr
    state = torch.load(exp / "1epoch.pth", map_location="cpu")
    assert not any("_orig_mod" in k for k in state)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
