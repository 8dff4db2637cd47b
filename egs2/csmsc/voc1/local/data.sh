#!/usr/bin/env bash
# local/data.sh (csmsc): Kaldi data directories for CSMSC (Databaker BZNSYP: 10,000 Mandarin
# utterances of one speaker, 48 kHz), split as ESPnet's egs2/csmsc/tts1 (local/data.sh stage 1):
#   data/tr_no_dev  all but the last num_dev + num_eval utterances (9,800)
#   data/dev        the first num_dev of those last ones (009801-009900)
#   data/eval1      the last num_eval (009901-010000)
# each with wav.scp (absolute paths), utt2spk (speaker "csmsc"), spk2utt and text (the
# transcription with the prosody marks #1-#4 removed); the utterance ids (000001) are the tts1
# recipe's. Utterances without a transcript are left out.
#
# Corpus layout read (--db_root: the corpus directory or the one holding CSMSC/ or BZNSYP/):
#   Wave/000001.wav + ProsodyLabeling/000001-010000.txt (lines "000001<TAB><text with #1-#4>",
#   each followed by a pinyin line; UTF-8 with or without BOM, or GB18030; CRLF or LF)
#   (https://www.data-baker.com/open_source.html).
# Nothing is downloaded: extract BZNSYP.rar first. ESPnet's silence trimming with PhoneLabeling
# (segments) is not done: the vocoder trains on the audio as it is.
#
# Usage: local/data.sh [--db_root DIR] [--num_dev N] [--num_eval N]
#   --db_root DIR   the corpus (default: ${CSMSC}, as ESPnet's db.sh)
#   --num_dev N     dev utterances (default: 100)
#   --num_eval N    eval1 utterances (default: 100)
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"
}
die() {
    echo "local/data.sh: $*" >&2
    exit 1
}

db_root="${CSMSC:-}"
num_dev=100
num_eval=100

# shellcheck source=utils/parse_options.sh
. utils/parse_options.sh
# shellcheck source=path.sh
. ./path.sh

[ $# -eq 0 ] || die "unexpected arguments: $*"
[[ "${num_dev}" =~ ^[1-9][0-9]*$ ]] || die "--num_dev must be a positive integer, got '${num_dev}'"
[[ "${num_eval}" =~ ^[1-9][0-9]*$ ]] || die "--num_eval must be a positive integer, got '${num_eval}'"
[ -n "${db_root}" ] || die "no corpus: give --db_root DIR (or set CSMSC) to the extracted BZNSYP" \
    "(https://www.data-baker.com/open_source.html)"

corpus=""
for dir in "${db_root}" "${db_root}/CSMSC" "${db_root}/BZNSYP"; do
    if [ -d "${dir}/Wave" ]; then
        corpus="${dir}"
        break
    fi
done
[ -n "${corpus}" ] || die "${db_root} has no Wave/ directory: give --db_root the extracted BZNSYP (CSMSC)"
labels="${corpus}/ProsodyLabeling/000001-010000.txt"
[ -f "${labels}" ] || die "${labels} not found: is the corpus complete?"
corpus="$(cd "${corpus}" && pwd)"
labels="${corpus}/ProsodyLabeling/000001-010000.txt"
[[ "${corpus}" != *[[:space:]]* ]] || die "the corpus path '${corpus}' has white space, which wav.scp cannot hold: move or link it"

all=data/local/all
rm -rf "${all}"
mkdir -p "${all}"
# The labels as UTF-8 without BOM and CR.
if iconv -f UTF-8 -t UTF-8 "${labels}" >"${all}/labels.txt" 2>/dev/null; then
    :
elif iconv -f GB18030 -t UTF-8 "${labels}" >"${all}/labels.txt" 2>/dev/null; then
    log "${labels}: read as GB18030"
else
    die "${labels} is neither UTF-8 nor GB18030 text"
fi
sed -i -e '1s/^\xEF\xBB\xBF//' -e 's/\r$//' "${all}/labels.txt"

find "${corpus}/Wave" -maxdepth 1 -name "*.wav" | sort >"${all}/wavs"
[ -s "${all}/wavs" ] || die "no wav files in ${corpus}/Wave"
awk -v dir="${all}" '
    NR == FNR {
        if ($1 ~ /^[0-9]+$/) { t = $0; sub(/^[0-9]+[ \t]+/, "", t); gsub(/#[1-4]/, "", t); text[$1] = t }
        next
    }
    {
        n = split($0, p, "/"); id = p[n]; sub(/\.wav$/, "", id)
        t = text[id]; gsub(/[ \t]+/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t)
        if (t == "") { skipped++; next }
        print id, $0 > (dir "/wav.scp"); print id, "csmsc" > (dir "/utt2spk"); print id, t > (dir "/text")
    }
    END { printf("%d\n", skipped) > (dir "/skipped") }' "${all}/labels.txt" "${all}/wavs"
[ -s "${all}/utt2spk" ] || die "no wav file of ${corpus}/Wave has a line in ${labels}"
utils/fix_data_dir.sh "${all}" >/dev/null  # sorted, spk2utt
total="$(wc -l <"${all}/utt2spk")"
log "${total} utterances; $(cat "${all}/skipped") without a transcript left out"

n_train=$((total - num_dev - num_eval))
[ "${n_train}" -gt 0 ] || die "${total} utterances cannot give ${num_dev} dev + ${num_eval} eval1 utterances and a training set"
awk -v a="${n_train}" -v b="$((n_train + num_dev))" 'NR > a && NR <= b { print $1 }' "${all}/utt2spk" >"${all}/dev.list"
rm -rf data/tr_no_dev data/dev data/eval1
utils/subset_data_dir.sh --first "${all}" "${n_train}" data/tr_no_dev
utils/subset_data_dir.sh --utt-list "${all}/dev.list" "${all}" data/dev
utils/subset_data_dir.sh --last "${all}" "${num_eval}" data/eval1
log "Successfully finished: tr_no_dev ${n_train}, dev ${num_dev}, eval1 ${num_eval} utterances. [elapsed=${SECONDS}s]"
