#!/usr/bin/env bash
# mini_an4 voc1: a tiny HiFi-GAN vocoder on 7 AN4 utterances (16 kHz) shipped in the espnet
# wheel. Runs stages 1-8 on a few CPU cores in minutes with the debug config
# (conf/train.yaml -> conf/hifigan_debug.yaml); the result is a smoke test, not a vocoder.
# Options after ./run.sh go to voc.sh and win over these defaults, e.g.
#   ./run.sh --stage 3 --stop_stage 4
#   ./run.sh --ngpu 1 --train_args "--max_epoch 10"
set -euo pipefail

fs=16000
n_fft=1024
n_shift=256        # = the generator's total upsampling (8 * 8 * 4 in the debug config)
win_length=""      # null: n_fft
n_mels=80
fmin=80
fmax=7600

train_set=train
valid_set=dev
test_sets="dev test"

train_config=conf/train.yaml

./voc.sh \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --fs "${fs}" \
    --n_fft "${n_fft}" \
    --n_shift "${n_shift}" \
    --win_length "${win_length}" \
    --n_mels "${n_mels}" \
    --fmin "${fmin}" \
    --fmax "${fmax}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --train_config "${train_config}" \
    "$@"
