#!/usr/bin/env bash
# voc1 recipe made by egs2/TEMPLATE/voc1/setup.sh: a HiFi-GAN vocoder for this corpus.
# Edit the defaults below (setup.sh filled them: the corpus' feature settings, the preset
# config of its sampling rate), then
#   ./run.sh                    # stages 1-8 (./run.sh --help: every option of voc.sh)
#   ./run.sh --fast             # first option: conf/train_debug.yaml, a smoke test of every stage
#   ./run.sh --data_from ../tts1/data --train_set tr_no_dev --valid_set dev --test_sets "dev eval1"
# Data: with data_from empty, stage 1 runs local/data.sh (it reads the corpus); with data_from set to the
# data/ directory of a Kaldi/ESPnet recipe (e.g. ../tts1/data), stage 1 copies the sets from
# there (paths made absolute, validated). Options after ./run.sh go to voc.sh and win over these.
set -euo pipefail
# The recipe's paths (./voc.sh, conf/, local/, data/, exp/) are relative to its directory: run from anywhere.
cd "$(dirname "${BASH_SOURCE[0]}")"

# >>> corpus defaults (setup.sh)
# VCTK (109 English speakers, 48 kHz; 0.92 flac or 0.80 wav): the features of ESPnet's egs2/vctk/tts1 recipe, so that this vocoder
# turns that recipe's mels into speech; conf/train.yaml is the V1 preset of fs 24000 / hop 300
# (python -m espnet_hifigan.bin.presets list), conf/train_debug.yaml the --fast smoke test.
# The corpus: VCTK=/path/to/VCTK-Corpus-0.92 ./run.sh (ESPnet's db.sh variable), or
# local_data_opts="--db_root /path/to/VCTK-Corpus-0.92"; see local/data.sh for the layout it reads.
fs=24000           # egs2/vctk/tts1/run.sh
n_fft=2048         # egs2/vctk/tts1/run.sh
n_shift=300        # egs2/vctk/tts1/run.sh (= the upsampling of conf/train.yaml: 5 * 5 * 4 * 3)
win_length=1200    # egs2/vctk/tts1/run.sh
n_mels=80          # egs2/TEMPLATE/tts1/tts.sh's default (the tts1 run.sh keeps it)
fmin=80            # egs2/TEMPLATE/tts1/tts.sh's default
fmax=7600          # egs2/TEMPLATE/tts1/tts.sh's default

train_set=tr_no_dev   # egs2/vctk/tts1/run.sh; local/data.sh: per speaker, the last 5
valid_set=dev          #   utterances -> dev, the 5 before -> eval1 (ESPnet's split)
test_sets="dev eval1"
data_from=""        # "": local/data.sh reads the corpus; ../tts1/data: the sets of the tts1 recipe
local_data_opts=""  # e.g. "--db_root /data/VCTK-Corpus-0.92 --mic mic2"
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
    --local_data_opts "${local_data_opts}" \
    --train_config "${train_config}" \
    "$@"
