#!/usr/bin/env bash
# local/data.sh (ljspeech): Kaldi data directories for LJ Speech 1.1 (13,100 utterances,
# 22.05 kHz, one speaker), split as ESPnet's egs2/ljspeech/tts1:
#   data/tr_no_dev  the first N - n_dev - n_eval utterances (12,600)
#   data/dev        the next n_dev (250)
#   data/eval1      the last n_eval (250)
# each with wav.scp (absolute paths), utt2spk (speaker "LJ"), spk2utt and, when metadata.csv
# covers every utterance, text (the normalized transcription).
#
# Usage: local/data.sh [--local_corpus DIR] [--download_dir DIR] [--n_dev N] [--n_eval N]
#   --local_corpus DIR   use an existing LJSpeech-1.1 directory (with wavs/ and metadata.csv);
#                        nothing is downloaded (default: "", i.e. download)
#   --download_dir DIR   where LJSpeech-1.1.tar.bz2 is downloaded and extracted (default: downloads)
#   --n_dev N            utterances of data/dev (default: 250)
#   --n_eval N           utterances of data/eval1 (default: 250)
# The download (2.6 GB) is checked against its SHA-256 before extraction.
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
die() {
    echo "local/data.sh: $*" >&2
    exit 1
}

local_corpus=""
download_dir=downloads
n_dev=250
n_eval=250

# shellcheck source=utils/parse_options.sh
. utils/parse_options.sh
# shellcheck source=path.sh
. ./path.sh

[ $# -eq 0 ] || die "unexpected arguments: $*"
[[ "${n_dev}" =~ ^[1-9][0-9]*$ ]] || die "--n_dev must be a positive integer, got '${n_dev}'"
[[ "${n_eval}" =~ ^[1-9][0-9]*$ ]] || die "--n_eval must be a positive integer, got '${n_eval}'"

url="https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
# SHA-256 of LJSpeech-1.1.tar.bz2 (as checked by torchaudio.datasets.LJSPEECH).
sha256="be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"

if [ -n "${local_corpus}" ]; then
    corpus="${local_corpus}"
    log "Using the local copy ${corpus} (no download)"
else
    corpus="${download_dir}/LJSpeech-1.1"
    if [ ! -f "${corpus}/.done" ]; then
        mkdir -p "${download_dir}"
        archive="${download_dir}/LJSpeech-1.1.tar.bz2"
        if [ ! -f "${archive}" ]; then
            log "Downloading ${url}"
            if command -v wget >/dev/null 2>&1; then
                wget --continue -O "${archive}.part" "${url}" || die "download of ${url} failed"
            else
                curl -fL -C - -o "${archive}.part" "${url}" || die "download of ${url} failed"
            fi
            mv "${archive}.part" "${archive}"
        fi
        log "Checking SHA-256 of ${archive}"
        if ! echo "${sha256}  ${archive}" | sha256sum -c --quiet -; then
            mv "${archive}" "${archive}.bad"
            die "${archive} has a wrong SHA-256 (expected ${sha256}); moved to ${archive}.bad, run again to re-download"
        fi
        log "Extracting ${archive}"
        tmp="$(mktemp -d "${download_dir}/.extract.XXXXXX")"
        trap 'rm -rf "${tmp}"' EXIT
        tar -xjf "${archive}" -C "${tmp}"
        [ -d "${tmp}/LJSpeech-1.1/wavs" ] || die "${archive} has no LJSpeech-1.1/wavs"
        rm -rf "${corpus}"
        mv "${tmp}/LJSpeech-1.1" "${corpus}"
        touch "${corpus}/.done"
    fi
fi
[ -d "${corpus}/wavs" ] || die "${corpus} has no wavs/ directory (is it LJSpeech-1.1?)"
corpus="$(cd "${corpus}" && pwd)"

# All utterances, sorted by id.
all=data/local/all
rm -rf "${all}"
mkdir -p "${all}"
find "${corpus}/wavs" -maxdepth 1 -name '*.wav' | sort | awk '
    { n = split($0, p, "/"); id = p[n]; sub(/\.wav$/, "", id); print id, $0 }' >"${all}/wav.scp"
total="$(wc -l <"${all}/wav.scp")"
[ "${total}" -gt 0 ] || die "no wav files in ${corpus}/wavs"
awk '{ print $1, "LJ" }' "${all}/wav.scp" >"${all}/utt2spk"
utils/utt2spk_to_spk2utt.pl "${all}/utt2spk" >"${all}/spk2utt"
if [ -f "${corpus}/metadata.csv" ]; then
    # metadata.csv: id|transcription|normalized transcription
    awk -F'|' 'NR == FNR { keep[$1] = 1; next }
        ($1 in keep) { t = ($3 != "") ? $3 : $2; gsub(/[ \t\r]+/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t); print $1, t }' \
        "${all}/wav.scp" "${corpus}/metadata.csv" | sort >"${all}/text"
    if [ "$(wc -l <"${all}/text")" -ne "${total}" ]; then
        log "NOTE: ${corpus}/metadata.csv covers $(wc -l <"${all}/text") of ${total} utterances; no text file written"
        rm -f "${all}/text"
    fi
fi

n_train=$((total - n_dev - n_eval))
[ "${n_train}" -gt 0 ] || die "${total} utterances cannot give ${n_dev} dev + ${n_eval} eval utterances and a training set"
awk -v a="${n_train}" -v b="$((n_train + n_dev))" 'NR > a && NR <= b { print $1 }' "${all}/utt2spk" >"${all}/dev.list"
rm -rf data/tr_no_dev data/dev data/eval1
utils/subset_data_dir.sh --first "${all}" "${n_train}" data/tr_no_dev
utils/subset_data_dir.sh --utt-list "${all}/dev.list" "${all}" data/dev
utils/subset_data_dir.sh --last "${all}" "${n_eval}" data/eval1
log "Successfully finished: tr_no_dev ${n_train}, dev ${n_dev}, eval1 ${n_eval} utterances. [elapsed=${SECONDS}s]"
