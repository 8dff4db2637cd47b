#!/usr/bin/env bash
# Draws docs/learning_curve.png from the measured curves in this directory (run from the
# repository root). Seconds per step: single-thread CPU time measured per setting
# (docs/learning_curve.md); "S1/S2@N" = S1 up to step N (mel-only warm-up), S2 after (GAN).
set -euo pipefail
d=docs/learning_curve
python benchmarks/learning_curve.py plot \
    --curve "debug, lr 1e-3, GAN=${d}/debug_lr1e-3_gan.json:0.24" \
    --curve "G64, GAN from step 0=${d}/g64_gan.json:0.355" \
    --curve "G64, mel warm-up 1500=${d}/g64_warmup1500.json:0.124/0.355@1500" \
    --curve "default (hifigan_mini)=${d}/default_hifigan_mini.json:0.11/0.32@2000" \
    --set test --out docs/learning_curve.png
