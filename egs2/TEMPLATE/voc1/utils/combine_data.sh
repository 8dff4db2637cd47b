#!/usr/bin/env bash
# combine_data.sh: combine Kaldi data directories into one (Kaldi's utils/combine_data.sh).
#
# Usage: utils/combine_data.sh [--extra-files "<f>..."] [--skip-fix true] <dest-dir> <src-dir1> <src-dir2> ...
#   Concatenates and sorts (LC_ALL=C) utt2spk, wav.scp, segments, text, feats.scp, utt2dur,
#   utt2num_frames, utt2num_samples, utt2lang, vad.scp, spk2gender, cmvn.scp,
#   reco2file_and_channel, reco2dur and the --extra-files: a table is combined when every
#   source has it; one only some sources have is left out, with a warning. Exception, as in
#   Kaldi: when only some sources have segments, the others get whole-recording segments
#   ("<utt> <utt> 0 -1": Kaldi's end -1 is the end of the recording). spk2utt is rebuilt, then
#   utils/fix_data_dir.sh <dest-dir> runs unless --skip-fix true.
# Errors: an utterance id in two sources (rename them first: utils/copy_data_dir.sh --utt-prefix).
set -euo pipefail

extra_files=""
skip_fix=false
utils_dir="$(dirname "$(readlink -f "$0")")"
# shellcheck source-path=SCRIPTDIR source=parse_options.sh
. "${utils_dir}/parse_options.sh"
# shellcheck source-path=SCRIPTDIR source=../scripts/data_dir_lib.sh
. "${utils_dir}/../scripts/data_dir_lib.sh"

prog="combine_data.sh"
die() {
    echo "${prog}: $*" >&2
    exit 1
}
[ $# -ge 2 ] || die "usage: ${prog} [--extra-files \"<f>...\"] [--skip-fix true] <dest-dir> <src-dir1> <src-dir2> ..."
dest="$1"
shift
for src in "$@"; do
    [ -f "${src}/utt2spk" ] || die "no such file ${src}/utt2spk"
    [ "$(readlink -f "${src}")" != "$(readlink -f "${dest}")" ] || die "<dest-dir> ${dest} is also a source"
done
export LC_ALL=C
mkdir -p "${dest}"
tmp="$(mktemp -d "${dest}/.combine.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

dups="$(cat "${@/%//utt2spk}" | awk '{ print $1 }' | sort | uniq -d | head -n 3 | tr '\n' ' ')"
[ -z "${dups}" ] || die "utterance id(s) in more than one source: ${dups}(make them unique: utils/copy_data_dir.sh --utt-prefix <name>_ <src> <renamed>)"

with_segments=0
for src in "$@"; do
    [ ! -f "${src}/segments" ] || with_segments=$((with_segments + 1))
done
# shellcheck disable=SC2086  # word lists
for f in ${DATA_UTT_FILES} ${DATA_SPK_FILES} ${DATA_RECO_FILES} wav.scp ${extra_files}; do
    have=0
    for src in "$@"; do
        [ ! -f "${src}/${f}" ] || have=$((have + 1))
    done
    if [ "${f}" = segments ] && [ "${have}" -gt 0 ]; then
        for src in "$@"; do
            if [ -f "${src}/segments" ]; then
                cat "${src}/segments"
            else
                echo "${prog}: ${src} has no segments: whole-recording segments '<utt> <utt> 0 -1' made for it" >&2
                awk '{ print $1, $1, 0, -1 }' "${src}/utt2spk"
            fi
        done | sort -k1,1 >"${tmp}/segments"
    elif [ "${have}" -eq $# ]; then
        for src in "$@"; do cat "${src}/${f}"; done | sort -k1,1 >"${tmp}/${f}"
    elif [ "${have}" -gt 0 ]; then
        echo "${prog}: [warning] ${f} is in ${have} of the $# sources: not combined" >&2
    fi
done
if [ "${with_segments}" -gt 0 ] && [ -f "${tmp}/wav.scp" ]; then
    sort -k1,1 -u "${tmp}/wav.scp" -o "${tmp}/wav.scp" # a recording shared by sources, once
fi
"${utils_dir}/utt2spk_to_spk2utt.pl" "${tmp}/utt2spk" >"${tmp}/spk2utt"
for f in "${tmp}"/*; do
    mv "${f}" "${dest}/"
done
echo "${prog}: combined $# data directories into ${dest} ($(wc -l <"${dest}/utt2spk") utterances)"
if [ "${skip_fix}" != true ]; then
    # shellcheck disable=SC2086  # word list
    "${utils_dir}/fix_data_dir.sh" --utt-extra-files "${extra_files}" "${dest}"
fi
