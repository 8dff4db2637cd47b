#!/usr/bin/env bash
# subset_data_dir.sh: copy part of a Kaldi data directory (a minimal scripts/subset_data_dir.sh).
#
# Usage: subset_data_dir.sh --first N <src-dir> <dest-dir>
#        subset_data_dir.sh --last N <src-dir> <dest-dir>
#        subset_data_dir.sh --utt_list FILE <src-dir> <dest-dir>
#   --first N / --last N take the first / last N utterances of <src-dir>/utt2spk;
#   --utt_list FILE keeps the utterances listed in the first column of FILE.
# Filters utt2spk, text, segments, utt2num_samples, utt2dur and wav.scp (by utterance, or by
# recording when there is a segments file) and rebuilds spk2utt.
set -euo pipefail

prog="$(basename "$0")"
die() {
    echo "${prog}: $*" >&2
    exit 1
}
mode=""
count=""
[ $# -eq 4 ] || die "usage: ${prog} (--first N | --last N | --utt_list FILE) <src-dir> <dest-dir>"
case "$1" in
    --first | --last)
        mode="${1#--}"
        count="$2"
        [[ "${count}" =~ ^[0-9]+$ ]] || die "$1 needs a non-negative integer, got '${count}'"
        ;;
    --utt_list | --utt-list)
        mode=list
        [ -f "$2" ] || die "no such utterance list: $2"
        ;;
    *) die "unknown option $1" ;;
esac
src="$3"
dest="$4"
[ -f "${src}/utt2spk" ] || die "no ${src}/utt2spk"
total="$(wc -l <"${src}/utt2spk")"
if [ "${mode}" != list ] && [ "${count}" -gt "${total}" ]; then
    die "asked for ${count} utterances but ${src} has ${total}"
fi

mkdir -p "${dest}"
tmp="$(mktemp -d "${dest}/.subset.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
case "${mode}" in
    first) head -n "${count}" "${src}/utt2spk" | awk '{ print $1 }' >"${tmp}/utts" ;;
    last) tail -n "${count}" "${src}/utt2spk" | awk '{ print $1 }' >"${tmp}/utts" ;;
    list) awk '{ print $1 }' "$2" >"${tmp}/utts" ;;
esac

filter() { # filter <key-file> <table> <out>: keep lines of <table> whose first field is a key
    awk 'NR == FNR { keep[$1] = 1; next } ($1 in keep)' "$1" "$2" >"$3"
}
for f in utt2spk text segments utt2num_samples utt2dur; do
    if [ -f "${src}/${f}" ]; then
        filter "${tmp}/utts" "${src}/${f}" "${tmp}/${f}"
    fi
done
if [ -f "${src}/segments" ]; then
    awk '{ print $2 }' "${tmp}/segments" | sort -u >"${tmp}/recordings"
    filter "${tmp}/recordings" "${src}/wav.scp" "${tmp}/wav.scp"
else
    filter "${tmp}/utts" "${src}/wav.scp" "${tmp}/wav.scp"
fi
utils_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${utils_dir}/utt2spk_to_spk2utt.sh" "${tmp}/utt2spk" >"${tmp}/spk2utt"
rm -f "${tmp}/utts" "${tmp}/recordings"
for f in "${tmp}"/*; do
    mv "${f}" "${dest}/"
done
echo "${prog}: $(wc -l <"${dest}/utt2spk") utterances from ${src} -> ${dest}"
