"""Feature extraction throughput: our ``LogMelSpectrogram`` vs ESPnet's ``LogMelFbank``."""

from __future__ import annotations

from typing import Dict, List

import numpy as np
import torch
import yaml

from benchmarks.common import V1_CONFIG, interleaved, summary, table_row
from espnet_hifigan.nets.features import LogMelSpectrogram


def feature_rows(device: str, seconds: float, batch: int, repeats: int) -> List[Dict]:
    """One row: seconds of audio per second, a batch of ``batch`` clips of ``seconds`` at 22.05 kHz."""
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    conf = yaml.safe_load(V1_CONFIG.read_text(encoding="utf-8"))["feats_extract_conf"]
    ours = LogMelSpectrogram(**conf).to(device)
    espnet = LogMelFbank(
        fs=conf["fs"], n_fft=conf["n_fft"], win_length=conf["win_length"], hop_length=conf["hop_length"],
        window=conf["window"], n_mels=conf["n_mels"], fmin=conf["fmin"], fmax=conf["fmax"], log_base=conf["log_base"],
    ).to(device)  # fmt: skip
    samples = int(seconds * conf["fs"])
    wav = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, (batch, samples)).astype(np.float32)).to(device)
    lengths = torch.full((batch,), samples, device=device)

    def run(module) -> None:
        with torch.inference_mode():
            module(wav, lengths)

    times = interleaved({"ours": lambda: run(ours), "espnet": lambda: run(espnet)}, repeats, device)
    audio = seconds * batch
    mine, ref = summary(times["ours"], audio), summary(times["espnet"], audio)
    row = f"feature extraction, {batch} x {seconds:g} s at {conf['fs']} Hz, ours vs ESPnet LogMelFbank"
    return [table_row(row, "s audio / s", mine, ref, "ESPnet LogMelFbank")]
