#!/usr/bin/env bash
# subset_data_dir.sh: a subset of a Kaldi data directory (Kaldi's utils/subset_data_dir.sh).
#
# Usage:
#   utils/subset_data_dir.sh [--first|--last|--shortest|--speakers|--per-spk] <src-dir> <num-utt> <dest-dir>
#   utils/subset_data_dir.sh --utt-list <utt-list> <src-dir> <dest-dir>
#   utils/subset_data_dir.sh --spk-list <spk-list> <src-dir> <dest-dir>
# Selection (at most one option):
#   (none)       <num-utt> utterances spread evenly over utt2spk (line floor(i * L / num-utt),
#                i = 0 .. num-utt-1, of its L lines; Kaldi's subset_scp.pl spreads them too)
#   --first      the first <num-utt> utterances;  --last: the last <num-utt>
#   --shortest   the <num-utt> shortest, by utt2num_samples, utt2dur or utt2num_frames
#                (Kaldi reads feats.scp lengths; here the first of those files present)
#   --speakers   whole speakers in a fixed shuffled order until <num-utt> utterances are reached
#   --per-spk    <num-utt> utterances of each speaker (spread evenly over its utterances)
#   --utt-list / --spk-list  the utterances / speakers listed in the file's first column
# Every table keyed by utterance, speaker or recording is filtered (wav.scp by the recordings of
# the kept segments when there is a segments file); spk2utt is rebuilt.
set -euo pipefail

prog="subset_data_dir.sh"
die() {
    echo "${prog}: $*" >&2
    exit 1
}
usage="usage: ${prog} [--first|--last|--shortest|--speakers|--per-spk] <src-dir> <num-utt> <dest-dir>
   or: ${prog} --utt-list <utt-list> <src-dir> <dest-dir>
   or: ${prog} --spk-list <spk-list> <src-dir> <dest-dir>"
mode=spread
case "${1:-}" in
    --first | --last | --shortest | --speakers | --per-spk | --utt-list | --spk-list)
        mode="${1#--}"
        shift
        ;;
    --*) die "unknown option $1
${usage}" ;;
esac
[ $# -eq 3 ] || die "${usage}"
case "${mode}" in
    utt-list | spk-list)
        list="$1"
        src="$2"
        [ -r "${list}" ] || die "no such list: ${list}"
        ;;
    *)
        src="$1"
        num="$2"
        [[ "${num}" =~ ^[0-9]+$ ]] || die "<num-utt> must be a non-negative integer, got '${num}'"
        ;;
esac
dest="$3"
[ -f "${src}/utt2spk" ] || die "no such file ${src}/utt2spk"
[ -f "${src}/spk2utt" ] || [[ "${mode}" != speakers && "${mode}" != per-spk ]] || die "no such file ${src}/spk2utt"
[ "$(readlink -f "${src}")" != "$(readlink -f "${dest}")" ] || die "<dest-dir> must differ from <src-dir>"
export LC_ALL=C
utils_dir="$(dirname "$(readlink -f "$0")")"
# shellcheck source-path=SCRIPTDIR source=../scripts/data_dir_lib.sh
. "${utils_dir}/../scripts/data_dir_lib.sh"

total="$(wc -l <"${src}/utt2spk")"
case "${mode}" in
    spread | first | last | shortest)
        [ "${num}" -le "${total}" ] || die "cannot subset to more utterances (${num}) than ${src} has (${total})"
        ;;
esac
mkdir -p "${dest}"
tmp="$(mktemp -d "${dest}/.subset.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
case "${mode}" in
    spread) awk -v n="${num}" -v L="${total}" 'BEGIN { j = 0 } { if (j < n && NR - 1 == int(j * L / n)) { print $1; j++ } }' \
        "${src}/utt2spk" >"${tmp}/utts" ;;
    first) head -n "${num}" "${src}/utt2spk" | awk '{ print $1 }' >"${tmp}/utts" ;;
    last) tail -n "${num}" "${src}/utt2spk" | awk '{ print $1 }' >"${tmp}/utts" ;;
    shortest)
        lengths=""
        for f in utt2num_samples utt2dur utt2num_frames; do
            if [ -f "${src}/${f}" ]; then
                lengths="${src}/${f}"
                break
            fi
        done
        [ -n "${lengths}" ] || die "--shortest needs utt2num_samples, utt2dur or utt2num_frames in ${src}"
        "${utils_dir}/filter_scp.pl" "${src}/utt2spk" "${lengths}" | sort -s -g -k2,2 | head -n "${num}" |
            awk '{ print $1 }' >"${tmp}/utts"
        ;;
    speakers)
        # A fixed pseudo-random order of the speakers (Kaldi shuffles them too), whole speakers
        # until num utterances.
        perl -e 'srand(0); my @l = <STDIN>; for (my $i = @l - 1; $i > 0; $i--) { my $j = int(rand($i + 1)); @l[$i, $j] = @l[$j, $i]; } print @l;' \
            <"${src}/spk2utt" | awk -v n="${num}" 'tot < n { print; tot += NF - 1 }' |
            "${utils_dir}/spk2utt_to_utt2spk.pl" | awk '{ print $1 }' >"${tmp}/utts"
        ;;
    per-spk)
        awk -v n="${num}" '{ m = NF - 1; k = (n < m ? n : m); for (i = 0; i < k; i++) print $(2 + int(i * m / k)) }' \
            "${src}/spk2utt" >"${tmp}/utts"
        ;;
    utt-list) awk '{ print $1 }' "${list}" >"${tmp}/utts" ;;
    spk-list) "${utils_dir}/filter_scp.pl" "${list}" "${src}/spk2utt" | "${utils_dir}/spk2utt_to_utt2spk.pl" |
        awk '{ print $1 }' >"${tmp}/utts" ;;
esac
data_subset "${src}" "${tmp}" "${tmp}/utts"
rm -f "${tmp}/utts"
for f in "${tmp}"/*; do
    mv "${f}" "${dest}/"
done
echo "${prog}: reducing #utt from ${total} to $(wc -l <"${dest}/utt2spk") (${src} -> ${dest})"
