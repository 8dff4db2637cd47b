#!/usr/bin/env bash
# local/data.sh (jsut): Kaldi data directories for JSUT 1.1 (Japanese, one speaker, 48 kHz):
# every subset (basic5000, travel1000, voiceactress100, ...), as ESPnet's egs2/jsut/tts1
# (local/data.sh, egs/jsut/asr1/local/data_prep.sh), split as its stage 2 does:
#   data/eval1      the first num_eval utterances (BASIC5000_0001-0250)
#   data/dev        the next num_dev (BASIC5000_0251-0500)
#   data/tr_no_dev  the rest (the rest of basic5000 and the other subsets)
# each with wav.scp (absolute paths), utt2spk (speaker "JS", as ESPnet), spk2utt and text; the
# utterance ids (BASIC5000_0001) are the tts1 recipe's. Utterances without a transcript are
# left out. --subsets basic5000 keeps that subset only.
#
# Corpus layout read (--db_root: jsut_ver1.1/ or the directory holding it):
#   <subset>/wav/<ID>.wav + <subset>/transcript_utf8.txt ("<ID>:<text>"), e.g.
#   basic5000/wav/BASIC5000_0001.wav (https://sites.google.com/site/shinnosuketakamichi/publication/jsut).
# Nothing is downloaded: unzip jsut_ver1.1.zip first. ESPnet's silence trimming with the
# jsut-lab labels (segments) is not done: the vocoder trains on the audio as it is.
#
# Usage: local/data.sh [--db_root DIR] [--subsets "A,B"] [--num_dev N] [--num_eval N]
#   --db_root DIR   the corpus (default: ${JSUT}, as ESPnet's db.sh)
#   --subsets A,B   the subsets read, comma-separated (default: "" = all)
#   --num_dev N     dev utterances (default: 250)
#   --num_eval N    eval1 utterances (default: 250)
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"
}
die() {
    echo "local/data.sh: $*" >&2
    exit 1
}

db_root="${JSUT:-}"
subsets=""
num_dev=250
num_eval=250

# shellcheck source=utils/parse_options.sh
. utils/parse_options.sh
# shellcheck source=path.sh
. ./path.sh

[ $# -eq 0 ] || die "unexpected arguments: $*"
[[ "${num_dev}" =~ ^[1-9][0-9]*$ ]] || die "--num_dev must be a positive integer, got '${num_dev}'"
[[ "${num_eval}" =~ ^[1-9][0-9]*$ ]] || die "--num_eval must be a positive integer, got '${num_eval}'"
[ -n "${db_root}" ] || die "no corpus: give --db_root DIR (or set JSUT) to the unzipped jsut_ver1.1" \
    "(https://sites.google.com/site/shinnosuketakamichi/publication/jsut)"

corpus=""
for dir in "${db_root}" "${db_root}/jsut_ver1.1"; do
    if [ -d "${dir}/basic5000/wav" ]; then
        corpus="${dir}"
        break
    fi
done
[ -n "${corpus}" ] || die "${db_root} has no basic5000/wav/: give --db_root the unzipped jsut_ver1.1"
corpus="$(cd "${corpus}" && pwd)"
[[ "${corpus}" != *[[:space:]]* ]] || die "the corpus path '${corpus}' has white space, which wav.scp cannot hold: move or link it"

all=data/local/all
rm -rf "${all}"
mkdir -p "${all}"
if [ -z "${subsets}" ]; then
    subsets="$(find "${corpus}" -mindepth 2 -maxdepth 2 -type d -name wav | awk -F/ '{ print $(NF - 1) }' | sort | paste -sd, -)"
fi
: >"${all}/wavs"
: >"${all}/transcripts"
for subset in ${subsets//,/ }; do
    [ -d "${corpus}/${subset}/wav" ] || die "${corpus}/${subset}/wav not found (--subsets ${subsets})"
    [ -f "${corpus}/${subset}/transcript_utf8.txt" ] || die "${corpus}/${subset}/transcript_utf8.txt not found: is the corpus complete?"
    find "${corpus}/${subset}/wav" -maxdepth 1 -name "*.wav" >>"${all}/wavs"
    cat "${corpus}/${subset}/transcript_utf8.txt" >>"${all}/transcripts"
    echo >>"${all}/transcripts"  # a last line without a newline ends here
done
sort -o "${all}/wavs" "${all}/wavs"
[ -s "${all}/wavs" ] || die "no wav files in ${corpus}/{${subsets}}/wav"
# transcript_utf8.txt: "<id>:<text>" (CRLF or LF); wav files without a line are left out.
awk -v dir="${all}" '
    NR == FNR { sub(/\r$/, ""); i = index($0, ":"); if (i > 1) text[substr($0, 1, i - 1)] = substr($0, i + 1); next }
    {
        n = split($0, p, "/"); id = p[n]; sub(/\.wav$/, "", id)
        t = text[id]; gsub(/[ \t]+/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t)
        if (t == "") { skipped++; next }
        print id, $0 > (dir "/wav.scp"); print id, "JS" > (dir "/utt2spk"); print id, t > (dir "/text")
    }
    END { printf("%d\n", skipped) > (dir "/skipped") }' "${all}/transcripts" "${all}/wavs"
[ -s "${all}/utt2spk" ] || die "no wav file of ${corpus} has a line in its subset's transcript_utf8.txt"
utils/fix_data_dir.sh "${all}" >/dev/null  # sorted, spk2utt
total="$(wc -l <"${all}/utt2spk")"
log "${total} utterances of ${subsets//,/ }; $(cat "${all}/skipped") without a transcript left out"

n_train=$((total - num_dev - num_eval))
[ "${n_train}" -gt 0 ] || die "${total} utterances cannot give ${num_eval} eval1 + ${num_dev} dev utterances and a training set"
awk -v a="${num_eval}" -v b="$((num_eval + num_dev))" 'NR > a && NR <= b { print $1 }' "${all}/utt2spk" >"${all}/dev.list"
rm -rf data/tr_no_dev data/dev data/eval1
utils/subset_data_dir.sh --first "${all}" "${num_eval}" data/eval1
utils/subset_data_dir.sh --utt-list "${all}/dev.list" "${all}" data/dev
utils/subset_data_dir.sh --last "${all}" "${n_train}" data/tr_no_dev
log "Successfully finished: tr_no_dev ${n_train}, dev ${num_dev}, eval1 ${num_eval} utterances. [elapsed=${SECONDS}s]"
