#!/usr/bin/env bash
# local/data.sh (jvs): Kaldi data directories for JVS 1.1 (100 Japanese speakers, 24 kHz),
# parallel100 and nonpara30 of every speaker (or of one, --spk), split per speaker:
#   data/<dev_set>    the first num_dev nonpara30 utterances of every speaker
#   data/<eval_set>   the last num_eval nonpara30 utterances of every speaker
#   data/<train_set>  parallel100 and the rest of nonpara30
# so dev and eval1 hold a few utterances of every speaker. With --spk jvs010 --num_dev 15
# --num_eval 15 this is ESPnet's egs2/jvs/tts1 split (jvs010_tr_no_dev = parallel100,
# jvs010_dev / jvs010_eval1 = the halves of nonpara30). Each set has wav.scp (absolute paths),
# utt2spk (the speaker, jvs001), spk2utt and text; the utterance ids (jvs010_VOICEACTRESS100_001)
# are the tts1 recipe's. Utterances without a transcript, or a transcript without audio, are
# left out (a few in the corpus).
#
# Corpus layout read (--db_root: jvs_ver1/ or the directory holding it):
#   jvs001/{parallel100,nonpara30}/wav24kHz16bit/<id>.wav + .../transcripts_utf8.txt ("<id>:<text>")
#   (https://sites.google.com/site/shinnosuketakamichi/research-topics/jvs_corpus).
# Nothing is downloaded: unzip jvs_ver1.zip first.
#
# Usage: local/data.sh [--db_root DIR] [--spk SPK] [--num_dev N] [--num_eval N]
#                      [--train_set NAME] [--dev_set NAME] [--eval_set NAME]
#   --db_root DIR   the corpus (default: ${JVS}, as ESPnet's db.sh)
#   --spk SPK       one speaker, e.g. jvs010 (default: "" = all speakers)
#   --num_dev N     dev utterances per speaker (default: 2)
#   --num_eval N    eval1 utterances per speaker (default: 2)
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

db_root="${JVS:-}"
spk=""
num_dev=2
num_eval=2
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
[ -z "${spk}" ] || [[ "${spk}" =~ ^jvs[0-9]+$ ]] || die "--spk must be a JVS speaker such as jvs010, got '${spk}'"
[ -n "${db_root}" ] || die "no corpus: give --db_root DIR (or set JVS) to the unzipped jvs_ver1" \
    "(https://sites.google.com/site/shinnosuketakamichi/research-topics/jvs_corpus)"

corpus=""
for dir in "${db_root}" "${db_root}/jvs_ver1"; do
    if compgen -G "${dir}/jvs[0-9]*/parallel100" >/dev/null; then
        corpus="${dir}"
        break
    fi
done
[ -n "${corpus}" ] || die "${db_root} has no jvs<NNN>/parallel100/: give --db_root the unzipped jvs_ver1"
corpus="$(cd "${corpus}" && pwd)"
[[ "${corpus}" != *[[:space:]]* ]] || die "the corpus path '${corpus}' has white space, which wav.scp cannot hold: move or link it"
if [ -n "${spk}" ]; then
    [ -d "${corpus}/${spk}" ] || die "no speaker ${spk} in ${corpus}"
    speakers="${spk}"
else
    speakers="$(find "${corpus}" -mindepth 1 -maxdepth 1 -type d -name 'jvs[0-9]*' -printf '%f\n' | sort)"
fi

all=data/local/all
rm -rf "${all}"
mkdir -p "${all}"
# <utt> <spk> <part> <audio path> <text> for parallel100 and nonpara30 of every speaker
for s in ${speakers}; do
    for part in parallel100 nonpara30; do
        dir="${corpus}/${s}/${part}"
        [ -f "${dir}/transcripts_utf8.txt" ] || die "${dir}/transcripts_utf8.txt not found: is the corpus complete?"
        [ -d "${dir}/wav24kHz16bit" ] || die "${dir}/wav24kHz16bit not found: is the corpus complete?"
        find "${dir}/wav24kHz16bit" -maxdepth 1 -name "*.wav" | sort \
            | awk -v spk="${s}" -v part="${part}" -v skipped="${all}/skipped" '
                NR == FNR { sub(/\r$/, ""); i = index($0, ":"); if (i > 1) text[substr($0, 1, i - 1)] = substr($0, i + 1); next }
                {
                    n = split($0, p, "/"); id = p[n]; sub(/\.wav$/, "", id)
                    t = text[id]; gsub(/[ \t]+/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t)
                    if (t == "") { print spk "_" id >> skipped; next }
                    print spk "_" id, spk, part, $0, t
                }' "${dir}/transcripts_utf8.txt" -
    done
done >"${all}/list"
touch "${all}/skipped"
[ -s "${all}/list" ] || die "no utterance of ${corpus} has both audio and a transcript"
sort -k1,1 "${all}/list" | awk -v dir="${all}" '
    { t = $0; for (k = 1; k <= 4; k++) sub(/^[^ ]+ /, "", t)
      print $1, $4 > (dir "/wav.scp"); print $1, $2 > (dir "/utt2spk"); print $1, t > (dir "/text")
      if ($3 == "nonpara30") print $1, $2 > (dir "/nonpara30") }'
utils/fix_data_dir.sh "${all}" >/dev/null  # sorted, spk2utt
log "$(wc -l <"${all}/utt2spk") utterances of $(wc -l <"${all}/spk2utt") speakers;" \
    "$(wc -l <"${all}/skipped") without a transcript left out"

# Per speaker: the first num_dev nonpara30 utterances -> dev, the last num_eval -> eval1.
awk -v nd="${num_dev}" -v ne="${num_eval}" -v dir="${all}" '
    NR == FNR { n[$2]++; next }
    FNR == 1 { for (s in n) if (n[s] < nd + ne) { printf("local/data.sh: speaker %s has %d nonpara30 utterances: too few for --num_dev %d + --num_eval %d\n", s, n[s], nd, ne) > "/dev/stderr"; exit 1 } }
    { k = ++i[$2]; if (k <= nd) print $1 > (dir "/dev.list"); else if (k > n[$2] - ne) print $1 > (dir "/eval.list") }
' "${all}/nonpara30" "${all}/nonpara30"
for s in ${speakers}; do
    grep -q " ${s}\$" "${all}/nonpara30" || die "speaker ${s} has no nonpara30 utterance with a transcript"
done
awk 'NR == FNR { held[$1] = 1; next } !($1 in held) { print $1 }' \
    <(cat "${all}/dev.list" "${all}/eval.list") "${all}/utt2spk" >"${all}/train.list"

rm -rf "data/${train_set}" "data/${dev_set}" "data/${eval_set}"
utils/subset_data_dir.sh --utt-list "${all}/train.list" "${all}" "data/${train_set}"
utils/subset_data_dir.sh --utt-list "${all}/dev.list" "${all}" "data/${dev_set}"
utils/subset_data_dir.sh --utt-list "${all}/eval.list" "${all}" "data/${eval_set}"
log "Successfully finished: ${train_set} $(wc -l <"data/${train_set}/utt2spk"), ${dev_set} $(wc -l <"data/${dev_set}/utt2spk")," \
    "${eval_set} $(wc -l <"data/${eval_set}/utt2spk") utterances. [elapsed=${SECONDS}s]"
