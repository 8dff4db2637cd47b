#!/usr/bin/env bash
# local/data.sh (vctk): Kaldi data directories for VCTK (109 English speakers, 48 kHz), split as
# ESPnet's egs2/vctk/tts1 (local/data_prep.sh) does: in every speaker's utterances (sorted by id),
#   data/tr_no_dev  all but the last num_dev + num_eval
#   data/eval1      the first num_eval of those last ones (5 per speaker)
#   data/dev        the last num_dev (5 per speaker)
# so dev and eval1 hold a few utterances of every speaker, and the utterance ids (p225_001) are
# the tts1 recipe's. Each set has wav.scp (absolute paths), utt2spk, spk2utt and text.
# Utterances without a transcript (all of p315, a few others) are left out, as ESPnet does.
#
# Corpus layouts read (--db_root: the corpus directory or the one holding it):
#   VCTK-Corpus-0.92  wav48_silence_trimmed/<spk>/<spk>_<n>_<mic>.flac + txt/<spk>/<spk>_<n>.txt
#                     (https://datashare.ed.ac.uk/handle/10283/3443); the flac files are read as
#                     they are (libsndfile), one microphone (--mic, default mic1)
#   VCTK-Corpus 0.80  wav48/<spk>/<spk>_<n>.wav + txt/<spk>/<spk>_<n>.txt (ESPnet's tts1 layout)
# Nothing is downloaded: unzip the corpus first. ESPnet's segments for 0.80 (silences cut with
# the lab/mono labels) are not made: 0.92's audio is already silence-trimmed.
#
# Usage: local/data.sh [--db_root DIR] [--mic mic1|mic2] [--num_dev N] [--num_eval N]
#   --db_root DIR   the corpus (default: ${VCTK}, as ESPnet's db.sh)
#   --mic NAME      the microphone of VCTK 0.92 (default: mic1)
#   --num_dev N     dev utterances per speaker (default: 5)
#   --num_eval N    eval1 utterances per speaker (default: 5)
#   --train_set, --dev_set, --eval_set NAME   the set names (default: tr_no_dev, dev, eval1)
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"
}
die() {
    echo "local/data.sh: $*" >&2
    exit 1
}

db_root="${VCTK:-}"
mic=mic1
num_dev=5
num_eval=5
train_set=tr_no_dev
dev_set=dev
eval_set=eval1

# shellcheck source=utils/parse_options.sh
. utils/parse_options.sh
# shellcheck source=path.sh
. ./path.sh

[ $# -eq 0 ] || die "unexpected arguments: $*"
[[ "${num_dev}" =~ ^[1-9][0-9]*$ ]] || die "--num_dev must be a positive integer, got '${num_dev}'"
[[ "${num_eval}" =~ ^[1-9][0-9]*$ ]] || die "--num_eval must be a positive integer, got '${num_eval}'"
[[ "${mic}" =~ ^mic[12]$ ]] || die "--mic must be mic1 or mic2, got '${mic}'"
[ -n "${db_root}" ] || die "no corpus: give --db_root DIR (or set VCTK) to the unzipped VCTK-Corpus-0.92" \
    "(https://datashare.ed.ac.uk/handle/10283/3443) or VCTK-Corpus"

corpus=""
for dir in "${db_root}" "${db_root}/VCTK-Corpus-0.92" "${db_root}/VCTK-Corpus"; do
    if [ -d "${dir}/wav48_silence_trimmed" ] || [ -d "${dir}/wav48" ]; then
        corpus="${dir}"
        break
    fi
done
[ -n "${corpus}" ] || die "${db_root} has no wav48_silence_trimmed/ (VCTK 0.92) or wav48/ (VCTK 0.80):" \
    "give --db_root the unzipped corpus"
[ -d "${corpus}/txt" ] || die "${corpus} has no txt/ directory (the transcripts): is the corpus complete?"
corpus="$(cd "${corpus}" && pwd)"
[[ "${corpus}" != *[[:space:]]* ]] || die "the corpus path '${corpus}' has white space, which wav.scp cannot hold: move or link it"

all=data/local/all
rm -rf "${all}"
mkdir -p "${all}"
# <utt> <spk> <audio path>, sorted by utterance id
if [ -d "${corpus}/wav48_silence_trimmed" ]; then
    log "VCTK 0.92: ${corpus}/wav48_silence_trimmed/*/*_${mic}.flac" >&2
    find "${corpus}/wav48_silence_trimmed" -mindepth 2 -maxdepth 2 -name "*_${mic}.flac" \
        | awk -v suffix="_${mic}.flac" '{ n = split($0, p, "/"); id = substr(p[n], 1, length(p[n]) - length(suffix)); print id, p[n - 1], $0 }'
else
    log "VCTK 0.80: ${corpus}/wav48/*/*.wav" >&2
    find "${corpus}/wav48" -mindepth 2 -maxdepth 2 -name "*.wav" \
        | awk '{ n = split($0, p, "/"); id = p[n]; sub(/\.wav$/, "", id); print id, p[n - 1], $0 }'
fi | sort -k1,1 >"${all}/list"
[ -s "${all}/list" ] || die "no audio files found under ${corpus}"

# The transcript of each utterance (txt/<spk>/<utt>.txt, one line); no transcript: left out.
awk -v txt="${corpus}/txt" -v dir="${all}" '
    index($1, $2 "_") != 1 { printf("local/data.sh: %s: utterance %s is not named <speaker>_<n> for speaker %s\n", $3, $1, $2) > "/dev/stderr"; bad = 1; exit 1 }
    {
        f = txt "/" $2 "/" $1 ".txt"; t = ""; got = 0
        while ((getline line < f) > 0) { t = t " " line; got = 1 }
        close(f)
        gsub(/[ \t\r]+/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t)
        if (!got || t == "") { skipped++; next }
        print $1, $3 > (dir "/wav.scp"); print $1, $2 > (dir "/utt2spk"); print $1, t > (dir "/text")
    }
    END { if (!bad) printf("%d\n", skipped) > (dir "/skipped") }' "${all}/list"
[ -s "${all}/utt2spk" ] || die "no utterance of ${corpus} has a transcript in ${corpus}/txt"
log "$(wc -l <"${all}/utt2spk") utterances of $(awk '{ print $2 }' "${all}/utt2spk" | sort -u | wc -l) speakers;" \
    "$(cat "${all}/skipped") without a transcript left out"
utils/fix_data_dir.sh "${all}" >/dev/null  # sorted, spk2utt

# Per speaker: the last num_dev -> dev, the num_eval before them -> eval1, the rest -> train.
awk -v nd="${num_dev}" -v ne="${num_eval}" -v dir="${all}" '
    NR == FNR { n[$2]++; next }
    FNR == 1 { for (s in n) if (n[s] <= nd + ne) { printf("local/data.sh: speaker %s has %d utterances: too few for --num_dev %d + --num_eval %d and training\n", s, n[s], nd, ne) > "/dev/stderr"; exit 1 } }
    { left = n[$2] - (++i[$2]); out = (left < nd) ? "dev" : (left < nd + ne) ? "eval" : "train"; print $1 > (dir "/" out ".list") }
' "${all}/utt2spk" "${all}/utt2spk"

rm -rf "data/${train_set}" "data/${dev_set}" "data/${eval_set}"
utils/subset_data_dir.sh --utt-list "${all}/train.list" "${all}" "data/${train_set}"
utils/subset_data_dir.sh --utt-list "${all}/dev.list" "${all}" "data/${dev_set}"
utils/subset_data_dir.sh --utt-list "${all}/eval.list" "${all}" "data/${eval_set}"
log "Successfully finished: ${train_set} $(wc -l <"data/${train_set}/utt2spk"), ${dev_set} $(wc -l <"data/${dev_set}/utt2spk")," \
    "${eval_set} $(wc -l <"data/${eval_set}/utt2spk") utterances. [elapsed=${SECONDS}s]"
