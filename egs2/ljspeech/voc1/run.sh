#!/usr/bin/env bash
# ljspeech voc1: HiFi-GAN V1 on LJ Speech 1.1 (22.05 kHz, ~24 h, one speaker), ESPnet tts1
# features (n_fft 1024, hop 256, 80 mels, 80-7600 Hz) so that it vocodes ESPnet TTS outputs.
# conf/train.yaml -> conf/hifigan_v1.yaml (2.5M steps in the paper: days on one GPU).
# Options after ./run.sh go to voc.sh and win over these defaults, e.g.
#   ./run.sh --local_data_opts "--local_corpus /data/LJSpeech-1.1"   # no download
#   ./run.sh --stage 6 --inference_model latest.pth
set -euo pipefail
# The recipe's paths (./voc.sh, conf/, local/, data/, exp/) are relative to its directory: run from anywhere.
cd "$(dirname "${BASH_SOURCE[0]}")"

fs=22050
n_fft=1024
n_shift=256        # = the generator's total upsampling (8 * 8 * 2 * 2 in hifigan_v1.yaml)
win_length=""      # null: n_fft
n_mels=80
fmin=80
fmax=7600

train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"

train_config=conf/train.yaml

./voc.sh \
    --ngpu 1 \
    --nj 16 \
    --inference_nj 4 \
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
