#!/usr/bin/env bash
# mini_an4 voc1: a small HiFi-GAN vocoder on 7 AN4 utterances (16 kHz) shipped in the espnet
# wheel (5 train, 1 dev, 1 test). Runs stages 1-8 on CPU: conf/train.yaml ->
# conf/hifigan_mini.yaml trains about 10 minutes on 2 cores and ends in intelligible speech
# (RESULTS.md, docs/learning_curve.md). --fast (first option) uses conf/train_debug.yaml ->
# conf/hifigan_debug.yaml instead: 6 steps, a smoke test of every stage (CI), not a vocoder.
# Other options after ./run.sh go to voc.sh and win over these defaults, e.g.
#   ./run.sh --fast
#   ./run.sh --stage 3 --stop_stage 4
#   ./run.sh --ngpu 1 --train_args "--max_epoch 10"
set -euo pipefail
# The recipe's paths (./voc.sh, conf/, local/, data/, exp/) are relative to its directory: run from anywhere.
cd "$(dirname "${BASH_SOURCE[0]}")"

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
if [ "${1:-}" = "--fast" ]; then
    train_config=conf/train_debug.yaml
    shift
fi

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
