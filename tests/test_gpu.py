"""GPU checks of the fast training paths (``pytest -m gpu``; skipped without CUDA).

One training step as ESPnet's GANTrainer takes it (two optimizers, the discriminator's spectral
norm) with ``--use_amp`` float16 + GradScaler, with bf16 autocast, compiled; the fp16 guard; a
2-process DDP run on one GPU (gloo); and ``voc_train --use_amp true`` through ESPnet's CLI.
``benchmarks/gpu_session.sh`` runs them.
"""

from __future__ import annotations

import os
import socket
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from test_fast_inference import MIN_SNR_DB, OFFICIAL_V3, snr_db
from test_fast_training import (
    BF16_TOLERANCE,  # noqa: F401  (the guard's tolerances, used by tracks())
    LOSSES,
    STEPS,
    WINDOW,
    an4_wavs,  # noqa: F401  (fixture)
    build_debug_model,
    tracking_differences,
    tracks,
    train,
)

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


def gan_steps(model, steps: int, use_amp: bool, skipped: Optional[List[bool]] = None) -> List[Dict[str, float]]:
    """``steps`` GANTrainer steps (D turn, G turn) on CUDA; ESPnet's AMP code when ``use_amp``.

    ``skipped`` (if given) gets, per turn, whether the GradScaler skipped the optimizer step
    (inf/NaN gradients: its scale was lowered).
    """
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
                scale = scaler.get_scale() if scaler.is_enabled() else 1.0
                scaler.scale(loss).backward()
                scaler.unscale_(optim)
                scaler.step(optim)
                scaler.update()
                if skipped is not None:
                    skipped.append(scaler.get_scale() < scale)
            else:
                loss.backward()
                optim.step()
            for o in optimizers:
                o.zero_grad()
            row.update({k: float(v) for k, v in retval["stats"].items() if k in LOSSES})
        history.append(row)
    return history


def train_from_same_init(steps: int, use_amp: bool = False, skipped: Optional[List[bool]] = None, **model_conf):
    """(model, per-step losses) of ``steps`` steps from the seeded initialisation."""
    torch.manual_seed(0)
    model = build_debug_model(segment_size=SEGMENT, **model_conf).cuda().train()
    torch.manual_seed(1)
    return model, gan_steps(model, steps, use_amp, skipped)


def assert_tracks(
    fast: List[Dict[str, float]], reference: List[Dict[str, float]], rtol: float, names=LOSSES
) -> None:
    for name in names:
        a = np.array([row[name] for row in fast])
        b = np.array([row[name] for row in reference])
        assert np.isfinite(a).all(), name
        np.testing.assert_allclose(a, b, rtol=rtol, err_msg=name)


@pytest.fixture(scope="module")
def reference():
    return train_from_same_init(3)[1]


def test_the_discriminator_under_test_has_spectral_norm():
    model = build_debug_model()
    assert any(hasattr(m, "weight_u") for m in model.discriminator.modules())


# GradScaler starts at a scale of 2**16 and halves it at every step whose scaled gradients
# overflow fp16 (that optimizer step is skipped), so the first steps of an fp16 run are not those
# of the fp32 run and its losses cannot be compared step by step beyond the first, whose forward
# runs on the same weights: its discriminator loss and its mel loss (of the generator output made
# once per batch; the G turn's adversarial losses see a discriminator the fp16 run may not have
# updated). What is also checked: after at most 16 skips (2**16 -> 1) both networks are updated,
# with finite weights and losses.
AMP_STEPS = 24


@pytest.mark.parametrize("autocast_dtype", ["float16", None], ids=["autocast_dtype-float16", "use_amp-alone"])
def test_float16_with_grad_scaler_trains(reference, autocast_dtype):
    """--use_amp true (ESPnet's GradScaler) with model_conf autocast_dtype float16, or with null
    (ESPnet's float16 autocast of the whole forward; losses stay fp32 in our fp32 regions)."""
    skipped: List[bool] = []
    torch.manual_seed(0)
    initial = {k: v.clone() for k, v in build_debug_model(segment_size=SEGMENT).state_dict().items()}
    model, history = train_from_same_init(AMP_STEPS, use_amp=True, skipped=skipped, autocast_dtype=autocast_dtype)
    assert_tracks(history[:1], reference[:1], rtol=0.05, names=("discriminator_loss", "generator_mel_loss"))
    for name in LOSSES:
        assert np.isfinite([row[name] for row in history]).all(), name
    assert sum(skipped) <= 16, skipped
    d_turns, g_turns = skipped[0::2], skipped[1::2]
    assert not all(d_turns) and not all(g_turns), skipped  # each network was updated
    state = model.state_dict()
    for prefix in ("generator.", "discriminator."):
        keys = [k for k in state if k.startswith(prefix) and state[k].is_floating_point()]
        assert all(torch.isfinite(state[k]).all() for k in keys), prefix
        assert any(not torch.equal(state[k].cpu(), initial[k]) for k in keys), f"{prefix} never updated"


def test_float16_without_grad_scaler_is_refused():
    with pytest.raises(ValueError, match="--use_amp true"):
        train_from_same_init(1, autocast_dtype="float16")


def test_bf16_tracks_fp32(reference):
    assert_tracks(train_from_same_init(3, autocast_dtype="bfloat16")[1], reference, rtol=0.05)


def test_compiled_bf16_tracks_fp32(reference):
    torch._dynamo.reset()
    assert_tracks(train_from_same_init(3, autocast_dtype="bfloat16", compile=True)[1], reference, rtol=0.05)


def test_compiled_fp32_tracks_fp32(reference):
    torch._dynamo.reset()
    assert_tracks(train_from_same_init(3, compile=True)[1], reference, rtol=0.01)


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


# ----------------------------------------------------------------------------- quality guard on the GPU
def _guard_report(name: str, diffs: Dict[str, float]) -> None:
    """Print (and, with ESPNET_HIFIGAN_GPU_REPORT=dir, save) the guard's numbers for the closing note."""
    import json

    print(f"{name}: mean |relative diff| over the last {WINDOW} steps: {diffs}")
    out = os.environ.get("ESPNET_HIFIGAN_GPU_REPORT")
    if out:
        path = os.path.join(out, "quality_guard.json")
        report = json.load(open(path)) if os.path.exists(path) else {}
        report[name] = diffs
        with open(path, "w") as f:
            json.dump(report, f, indent=2)


@pytest.fixture(scope="module")
def cuda_runs(an4_wavs):
    """The fp32 reference run on CUDA (the CPU guard's 200 steps, same seed, same batches)."""
    return train(an4_wavs, STEPS, device="cuda")


@pytest.mark.parametrize(
    "path", ["bf16", "bf16+fused", "bf16+compile+fused"], ids=lambda p: p.replace("+", "-")
)
def test_fast_path_passes_the_training_quality_guard_on_cuda(cuda_runs, an4_wavs, path):
    """The CPU quality guard (test_fast_training) on CUDA: 200 steps of the debug model on AN4
    speech; every loss tracks the fp32 run within BF16_TOLERANCE and the mel loss falls."""
    parts = set(path.split("+"))
    torch._dynamo.reset()
    _, fast = train(
        an4_wavs, STEPS, device="cuda", fused="fused" in parts, autocast_dtype="bfloat16", compile="compile" in parts
    )
    _, reference = cuda_runs
    diffs = tracking_differences(fast, reference)
    _guard_report(path, diffs)
    for name in LOSSES:
        assert np.isfinite(fast[name]).all(), name
    assert tracks(fast, reference), diffs
    mel = fast["generator_mel_loss"]
    assert mel[-WINDOW:].mean() < 0.9 * mel[:10].mean()


def test_cuda_reference_run_learns(cuda_runs):
    _, history = cuda_runs
    mel = history["generator_mel_loss"]
    assert mel[-WINDOW:].mean() < 0.9 * mel[:10].mean()


# ----------------------------------------------------------------------------- inference on the GPU
def _official_v3_dir():
    from pathlib import Path

    root = os.environ.get("ESPNET_HIFIGAN_SHARED_DATA")
    path = Path(root) / "official_v3" if root else OFFICIAL_V3
    if not (path / "g_00000000").is_file():
        pytest.skip(f"{path} is absent (the developers' shared data; ESPNET_HIFIGAN_SHARED_DATA=dir)")
    return path


@pytest.mark.parametrize(
    "dtype, compile",
    [(torch.float32, False), (torch.bfloat16, False), (torch.float16, False), (torch.bfloat16, True)],
    ids=["fp32", "bf16", "fp16", "bf16-compile"],
)
def test_gpu_inference_keeps_30_db_against_the_official_output(dtype, compile):
    """Vocoder on CUDA (fast engine; no FFT layers built there) vs the official code's output."""
    from espnet_hifigan.inference.vocoder import Vocoder

    fixture = _official_v3_dir()
    mel, ref = np.load(fixture / "mel.npy"), np.load(fixture / "ref.npy")
    torch._dynamo.reset()
    vocoder = Vocoder.from_pretrained(fixture / "g_00000000", device="cuda", compile=compile)
    assert getattr(vocoder.engine, "_orig_mod", vocoder.engine).fft_layers == 0  # no spectra built on a GPU
    wav = vocoder(mel, dtype=dtype)
    snr = snr_db(ref, wav)
    _guard_report(f"official V3 inference {dtype} compile={compile} SNR dB", {"snr_db": snr})
    assert wav.shape == ref.shape
    assert snr >= MIN_SNR_DB
    if dtype == torch.float32:
        # cuDNN convolutions may round their operands to TF32 (unit roundoff 2^-11 = 4.9e-4): over
        # the ~30 layers of V3 a relative error of about sqrt(30) * 2 * 4.9e-4 = 5e-3, i.e. ~46 dB.
        assert snr >= 40


def test_gpu_batched_synthesis_equals_one_by_one():
    from espnet_hifigan.inference.vocoder import Vocoder

    fixture = _official_v3_dir()
    mel = np.load(fixture / "mel.npy")
    vocoder = Vocoder.from_pretrained(fixture / "g_00000000", device="cuda")
    mels = [mel, mel[: len(mel) // 2], mel[: len(mel) // 3]]
    alone = [vocoder(m) for m in mels]
    batched = vocoder.synthesise_batch(mels)
    scale = float(np.abs(alone[0]).max())
    for a, b in zip(alone, batched):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-3 * scale
