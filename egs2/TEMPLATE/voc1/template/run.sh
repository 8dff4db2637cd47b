#!/usr/bin/env bash
# voc1 recipe made by egs2/TEMPLATE/voc1/setup.sh: a HiFi-GAN vocoder for this corpus.
# Edit the defaults below (setup.sh filled them: the corpus' feature settings, the preset
# config of its sampling rate), then
#   ./run.sh                    # stages 1-8 (./run.sh --help: every option of voc.sh)
#   ./run.sh --fast             # first option: conf/train_debug.yaml, a smoke test of every stage
#   ./run.sh --data_from ../tts1/data --train_set tr_no_dev --valid_set dev --test_sets "dev eval1"
# Data: with data_from empty, stage 1 runs local/data.sh (write it); with data_from set to the
# data/ directory of a Kaldi/ESPnet recipe (e.g. ../tts1/data), stage 1 copies the sets from
# there (paths made absolute, validated). Options after ./run.sh go to voc.sh and win over these.
set -euo pipefail
# The recipe's paths (./voc.sh, conf/, local/, data/, exp/) are relative to its directory: run from anywhere.
cd "$(dirname "${BASH_SOURCE[0]}")"

# >>> corpus defaults (setup.sh)
fs=22050
n_fft=1024
n_shift=256
win_length=""
n_mels=80
fmin=80
fmax=7600

train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"
data_from=""
# <<< corpus defaults

train_config=conf/train.yaml
if [ "${1:-}" = "--fast" ]; then
    train_config=conf/train_debug.yaml
    shift
fi

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
    --data_from "${data_from}" \
    --train_config "${train_config}" \
    "$@"
