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
# JVS 1.1 (100 Japanese speakers, 24 kHz): the features of ESPnet's egs2/jvs/tts1 recipe, so that this vocoder
# turns that recipe's mels into speech; conf/train.yaml is the V1 preset of fs 24000 / hop 300
# (python -m espnet_hifigan.bin.presets list), conf/train_debug.yaml the --fast smoke test.
# The corpus: JVS=/path/to/jvs_ver1 ./run.sh (ESPnet's db.sh variable), or
# local_data_opts="--db_root /path/to/jvs_ver1"; see local/data.sh for the layout it reads.
fs=24000           # egs2/jvs/tts1/run.sh
n_fft=2048         # egs2/jvs/tts1/run.sh
n_shift=300        # egs2/jvs/tts1/run.sh (= the upsampling of conf/train.yaml: 5 * 5 * 4 * 3)
win_length=1200    # egs2/jvs/tts1/run.sh
n_mels=80          # egs2/TEMPLATE/tts1/tts.sh's default (the tts1 run.sh keeps it)
fmin=80            # egs2/TEMPLATE/tts1/tts.sh's default
fmax=7600          # egs2/TEMPLATE/tts1/tts.sh's default

# spk="": every speaker (a multi-speaker vocoder): dev/eval1 = the first/last 2 nonpara30
# utterances of each speaker, tr_no_dev = the rest. spk=jvs010: egs2/jvs/tts1's speaker and sets
# (jvs010_tr_no_dev = parallel100, jvs010_dev / jvs010_eval1 = the halves of nonpara30).
spk=""
if [ -n "${spk}" ]; then
    train_set="${spk}_tr_no_dev"   # egs2/jvs/tts1/run.sh
    valid_set="${spk}_dev"
    test_sets="${spk}_dev ${spk}_eval1"
    local_data_opts="--spk ${spk} --num_dev 15 --num_eval 15 --train_set ${train_set} --dev_set ${valid_set} --eval_set ${spk}_eval1"
else
    train_set=tr_no_dev
    valid_set=dev
    test_sets="dev eval1"
    local_data_opts=""   # e.g. "--db_root /data/jvs_ver1 --num_dev 1 --num_eval 1"
fi
data_from=""        # "": local/data.sh reads the corpus; ../tts1/data: the sets of the tts1 recipe
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
