#!/usr/bin/env bash
# local/data.sh (libritts): Kaldi data directories for LibriTTS or LibriTTS-R (24 kHz, 2,456
# English speakers), one per subset of the corpus, named as ESPnet's egs2/libritts/tts1 and
# egs2/libritts_r/tts1 name them:
#   data/<subset>           every subset found: dev-clean, dev-other, test-clean, test-other,
#                           train-clean-100, train-clean-360, train-other-500
#   data/train-clean-460    train-clean-100 + train-clean-360 (libritts/tts1's training set)
#   data/train-960          + train-other-500 (libritts_r/tts1's training set)
# each with wav.scp (absolute paths), utt2spk, spk2utt and text (the .normalized.txt files).
# The corpus' dev/test subsets have their own speakers (40 each), so dev-clean and test-clean
# already span many speakers, none of them seen in training. The speaker of an utterance is
# <reader>_<chapter> (103_1241 for 103_1241_000000_000001), as in ESPnet's tts1 and Kaldi's
# LibriSpeech recipes: Kaldi tables need speaker ids that sort as their utterance ids do, which
# the readers alone do not (19 < 198, but 198_... < 19_...).
# Utterances without a .normalized.txt are left out (counted in the log).
#
# Corpus layout read (--db_root: the corpus directory or the one holding LibriTTS/ or LibriTTS_R/):
#   <subset>/<reader>/<chapter>/<reader>_<chapter>_<n>_<m>.wav + <same>.normalized.txt
#   (https://www.openslr.org/60 for LibriTTS, https://www.openslr.org/141 for LibriTTS-R).
# Nothing is downloaded: extract the subsets first. ESPnet's optional silence trimming
# (--trim_all_silence, with extra labels) is not done: the vocoder trains on the audio as it is.
#
# Usage: local/data.sh [--db_root DIR]
#   --db_root DIR   the corpus (default: ${LIBRITTS}, as ESPnet's db.sh)
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"
}
die() {
    echo "local/data.sh: $*" >&2
    exit 1
}

db_root="${LIBRITTS:-}"

# shellcheck source=utils/parse_options.sh
. utils/parse_options.sh
# shellcheck source=path.sh
. ./path.sh

[ $# -eq 0 ] || die "unexpected arguments: $*"
[ -n "${db_root}" ] || die "no corpus: give --db_root DIR (or set LIBRITTS) to the extracted LibriTTS" \
    "(https://www.openslr.org/60) or LibriTTS-R (https://www.openslr.org/141)"

subsets="dev-clean dev-other test-clean test-other train-clean-100 train-clean-360 train-other-500"
corpus=""
for dir in "${db_root}" "${db_root}/LibriTTS" "${db_root}/LibriTTS_R"; do
    for subset in ${subsets}; do
        if [ -d "${dir}/${subset}" ]; then
            corpus="${dir}"
            break 2
        fi
    done
done
[ -n "${corpus}" ] || die "${db_root} has none of the LibriTTS subsets (${subsets}): give --db_root the" \
    "directory that holds them (LibriTTS/ or LibriTTS_R/)"
corpus="$(cd "${corpus}" && pwd)"
[[ "${corpus}" != *[[:space:]]* ]] || die "the corpus path '${corpus}' has white space, which wav.scp cannot hold: move or link it"

# prepare_subset <subset>: data/<subset> from <corpus>/<subset>/<reader>/<chapter>/*.wav
prepare_subset() {
    local name="$1" dest="data/$1" tmp="data/local/$1"
    rm -rf "${tmp}" "${dest}"
    mkdir -p "${tmp}"
    find "${corpus}/${name}" -mindepth 3 -maxdepth 3 -name "*.wav" | sort >"${tmp}/wavs"
    [ -s "${tmp}/wavs" ] || die "${corpus}/${name} has no <reader>/<chapter>/*.wav files"
    awk -v dir="${tmp}" '
        {
            n = split($0, p, "/"); id = p[n]; sub(/\.wav$/, "", id)
            if (index(id, p[n - 2] "_" p[n - 1] "_") != 1) {
                printf("local/data.sh: %s: expected <reader>/<chapter>/<reader>_<chapter>_*.wav\n", $0) > "/dev/stderr"; bad = 1; exit 1
            }
            f = $0; sub(/\.wav$/, ".normalized.txt", f); t = ""; got = 0
            while ((getline line < f) > 0) { t = t " " line; got = 1 }
            close(f)
            gsub(/[ \t\r]+/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t)
            if (!got || t == "") { skipped++; next }
            print id, $0 > (dir "/wav.scp"); print id, p[n - 2] "_" p[n - 1] > (dir "/utt2spk"); print id, t > (dir "/text")
        }
        END { if (!bad) printf("%d\n", skipped) > (dir "/skipped") }' "${tmp}/wavs"
    [ -s "${tmp}/utt2spk" ] || die "no utterance of ${corpus}/${name} has a .normalized.txt transcript"
    mkdir -p "${dest}"
    for f in wav.scp utt2spk text; do
        cp "${tmp}/${f}" "${dest}/${f}"
    done
    utils/fix_data_dir.sh "${dest}" >/dev/null  # sorted, spk2utt
    log "data/${name}: $(wc -l <"${dest}/utt2spk") utterances of $(wc -l <"${dest}/spk2utt") speakers;" \
        "$(cat "${tmp}/skipped") without a transcript left out"
}

# combine <dest> <set>...: data/<dest> = the union of data/<set>... (utils/combine_data.sh), when all exist
combine() {
    local dest="data/$1" set f
    shift
    rm -rf "${dest}"
    for set in "$@"; do
        [ -f "data/${set}/utt2spk" ] || return 0
    done
    utils/combine_data.sh "${dest}" "${@/#/data/}" >/dev/null
    log "${dest}: $(wc -l <"${dest}/utt2spk") utterances ($*)"
}

found=""
for subset in ${subsets}; do
    if [ -d "${corpus}/${subset}" ]; then
        prepare_subset "${subset}"
        found+=" ${subset}"
    else
        rm -rf "data/${subset}"  # not left from an earlier run on another copy
    fi
done
combine train-clean-460 train-clean-100 train-clean-360
combine train-960 train-clean-100 train-clean-360 train-other-500
log "Successfully finished: subsets${found} of ${corpus}. [elapsed=${SECONDS}s]"
