#!/usr/bin/env bash
# validate_data_dir.sh: check a Kaldi data directory (Kaldi's utils/validate_data_dir.sh).
#
# Usage: utils/validate_data_dir.sh [--no-feats] [--no-text] [--no-wav] [--no-spk-sort] [--non-print] <data-dir>
#   Always: utt2spk and spk2utt exist, are sorted (LC_ALL=C) and unique, and spk2utt is the
#   inverse of utt2spk; utt2spk is also sorted when sorted on the speaker (speaker ids prefix
#   utterance ids), unless --no-spk-sort; utt2dur, utt2num_frames, utt2num_samples list the
#   utterances of utt2spk.
#   text (unless --no-text): exists, lists the utterances of utt2spk, and holds no control
#   characters (unless --non-print).
#   feats.scp (unless --no-feats): exists and lists the utterances of utt2spk.
#   wav.scp (unless --no-wav): exists; it, segments (Kaldi's end -1 and channel column
#   included), text and the speaker files pass python -m espnet_hifigan.bin.validate_data_dir
#   (sorted, unique, consistent ids; UTF-8, no CR; utterance ids usable as file names). The
#   audio is not opened, as in Kaldi.
# Prints each problem and exits 1 if there is any.
set -euo pipefail

no_feats=false
no_text=false
no_wav=false
no_spk_sort=false
non_print=false
prog="validate_data_dir.sh"
usage="usage: ${prog} [--no-feats] [--no-text] [--no-wav] [--no-spk-sort] [--non-print] <data-dir>"
while [ $# -gt 0 ]; do
    case "$1" in
        --no-feats) no_feats=true ;;
        --no-text) no_text=true ;;
        --no-wav) no_wav=true ;;
        --no-spk-sort) no_spk_sort=true ;;
        --non-print) non_print=true ;;
        --*) echo "${prog}: unknown option $1
${usage}" >&2
            exit 1 ;;
        *) break ;;
    esac
    shift
done
[ $# -eq 1 ] || { echo "${usage}" >&2; exit 1; }
data="$1"
utils_dir="$(dirname "$(readlink -f "$0")")"
export LC_ALL=C

errors=0
problem() {
    echo "${prog}: $*" >&2
    errors=$((errors + 1))
}
[ -d "${data}" ] || { echo "${prog}: no such directory ${data}" >&2; exit 1; }
for f in utt2spk spk2utt; do
    [ -f "${data}/${f}" ] || { echo "${prog}: no such file ${data}/${f}" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
awk '{ print $1 }' "${data}/utt2spk" >"${tmp}/utts"
# same_ids <file>: the first fields of <file> are those of utt2spk, in the same (sorted) order.
same_ids() {
    if ! awk '{ print $1 }' "$1" | cmp -s - "${tmp}/utts"; then
        problem "$1 does not list the utterances of ${data}/utt2spk (in the same sorted order); utils/fix_data_dir.sh ${data} keeps those they share"
    fi
}
for f in utt2spk spk2utt; do
    sort -c -k1,1 -u "${data}/${f}" 2>/dev/null || problem "${data}/${f} is not sorted or has duplicate ids (utils/fix_data_dir.sh sorts it)"
done
awk 'NF != 2 { exit 1 }' "${data}/utt2spk" || problem "${data}/utt2spk: every line must be '<utt> <spk>'"
if [ "${no_spk_sort}" = false ] && ! sort -s -k2,2 "${data}/utt2spk" | cmp -s - "${data}/utt2spk"; then
    problem "${data}/utt2spk is not sorted when sorted on the speaker: make speaker ids prefixes of utterance ids (or --no-spk-sort)"
fi
"${utils_dir}/utt2spk_to_spk2utt.pl" "${data}/utt2spk" | sort -k1,1 >"${tmp}/spk2utt"
cmp -s "${tmp}/spk2utt" "${data}/spk2utt" ||
    problem "${data}/spk2utt is not the inverse of utt2spk (rebuild it: utils/utt2spk_to_spk2utt.pl ${data}/utt2spk > ${data}/spk2utt)"
for f in utt2dur utt2num_frames utt2num_samples; do
    [ ! -f "${data}/${f}" ] || same_ids "${data}/${f}"
done
if [ "${no_text}" = false ]; then
    if [ ! -f "${data}/text" ]; then
        problem "no such file ${data}/text (or --no-text)"
    else
        same_ids "${data}/text"
        if [ "${non_print}" = false ]; then
            bad="$(perl -ne 'if (/[\x00-\x08\x0B-\x1F\x7F]/) { print "$.\n"; exit }' "${data}/text")"
            [ -z "${bad}" ] || problem "${data}/text:${bad}: non-printable character (or --non-print)"
        fi
    fi
fi
if [ "${no_feats}" = false ]; then
    if [ ! -f "${data}/feats.scp" ]; then
        problem "no such file ${data}/feats.scp (or --no-feats)"
    else
        same_ids "${data}/feats.scp"
    fi
fi
if [ "${no_wav}" = false ]; then
    if [ ! -f "${data}/wav.scp" ]; then
        problem "no such file ${data}/wav.scp (or --no-wav)"
    else
        # The project's checks of wav.scp/segments/text (one home: espnet_hifigan/data/validation.py).
        # shellcheck source-path=SCRIPTDIR source=../path.sh
        . "${utils_dir}/../path.sh"
        python3 -m espnet_hifigan.bin.validate_data_dir --check_files false "${data}" >&2 ||
            problem "${data}: see the problems above"
    fi
fi
if [ "${errors}" -gt 0 ]; then
    echo "${prog}: ${data}: ${errors} problem(s)" >&2
    exit 1
fi
echo "${prog}: successfully validated data-directory ${data}"
