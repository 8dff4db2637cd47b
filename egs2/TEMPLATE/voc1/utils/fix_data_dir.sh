#!/usr/bin/env bash
# fix_data_dir.sh: sort a Kaldi data directory and keep only the utterances every file has
# (Kaldi's utils/fix_data_dir.sh).
#
# Usage: utils/fix_data_dir.sh [--utt-extra-files "<f>..."] [--spk-extra-files "<f>..."] <data-dir>
#   Sorts every table (LC_ALL=C, one line per id), then keeps the utterances of utt2spk that are
#   also in each of text, feats.scp, segments (whose recording must be in wav.scp), wav.scp
#   (without segments), utt2dur, utt2num_frames, utt2num_samples, utt2lang, vad.scp; drops the
#   recordings no segment uses and the speakers without utterances; rebuilds spk2utt from
#   utt2spk. --utt-extra-files / --spk-extra-files name more tables keyed by utterance / speaker.
#   The original files are kept in <data-dir>/.backup/ (replaced at each run), as Kaldi does.
#   A segments line's 5th field (the channel) is kept.
# Errors: no utt2spk; utt2spk not sorted by speaker too (speaker ids must prefix utterance
# ids, as Kaldi requires); no utterance left. Nothing is changed then.
set -euo pipefail

utt_extra_files=""
spk_extra_files=""
utils_dir="$(dirname "$(readlink -f "$0")")"
# shellcheck source-path=SCRIPTDIR source=parse_options.sh
. "${utils_dir}/parse_options.sh"
# shellcheck source-path=SCRIPTDIR source=../scripts/data_dir_lib.sh
. "${utils_dir}/../scripts/data_dir_lib.sh"

prog="fix_data_dir.sh"
die() {
    echo "${prog}: $*" >&2
    exit 1
}
[ $# -eq 1 ] || die "usage: ${prog} [--utt-extra-files \"<f>...\"] [--spk-extra-files \"<f>...\"] <data-dir>"
data="$1"
[ -d "${data}" ] || die "no such directory ${data}"
[ -f "${data}/utt2spk" ] || die "no such file ${data}/utt2spk"
export LC_ALL=C

tmp="$(mktemp -d "${data}/.fix_data_dir.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
mkdir "${tmp}/in" "${tmp}/out"
# shellcheck disable=SC2086  # word lists
tables="$(printf '%s\n' ${DATA_UTT_FILES} ${DATA_SPK_FILES} ${DATA_RECO_FILES} wav.scp spk2utt \
    ${utt_extra_files} ${spk_extra_files} | awk '!seen[$0]++')"
for f in ${tables}; do
    if [ -f "${data}/${f}" ]; then
        cp "${data}/${f}" "${tmp}/in/${f}"
        data_sort_unique "${tmp}/in/${f}"
        cmp -s "${data}/${f}" "${tmp}/in/${f}" || echo "${prog}: ${data}/${f} was not sorted or not unique; sorted it"
    fi
done

if ! sort -k2,2 -s "${tmp}/in/utt2spk" | cmp -s - "${tmp}/in/utt2spk"; then
    die "${data}/utt2spk is not in sorted order when sorted on the speaker id too: make speaker ids prefixes of utterance ids (Kaldi's rule)"
fi

# The utterances every utterance-keyed table has.
awk '{ print $1 }' "${tmp}/in/utt2spk" >"${tmp}/utts"
keyed="text feats.scp segments utt2lang vad.scp utt2dur utt2num_frames utt2num_samples ${utt_extra_files}"
[ -f "${tmp}/in/segments" ] || keyed+=" wav.scp"
for f in ${keyed}; do
    if [ -f "${tmp}/in/${f}" ]; then
        "${utils_dir}/filter_scp.pl" "${tmp}/in/${f}" "${tmp}/utts" >"${tmp}/utts.new"
        mv "${tmp}/utts.new" "${tmp}/utts"
    fi
done
if [ -f "${tmp}/in/segments" ]; then
    [ -f "${tmp}/in/wav.scp" ] || die "${data}/segments exists but not ${data}/wav.scp"
    # Segments of recordings wav.scp has.
    "${utils_dir}/filter_scp.pl" -f 2 "${tmp}/in/wav.scp" "${tmp}/in/segments" | awk '{ print $1 }' >"${tmp}/seg_utts"
    "${utils_dir}/filter_scp.pl" "${tmp}/seg_utts" "${tmp}/utts" >"${tmp}/utts.new"
    mv "${tmp}/utts.new" "${tmp}/utts"
fi
[ -s "${tmp}/utts" ] || die "no utterances remained (no utterance of ${data}/utt2spk is in every file): not changing ${data}"

data_subset "${tmp}/in" "${tmp}/out" "${tmp}/utts"
for f in ${utt_extra_files}; do
    [ ! -f "${tmp}/in/${f}" ] || "${utils_dir}/filter_scp.pl" "${tmp}/utts" "${tmp}/in/${f}" >"${tmp}/out/${f}"
done
for f in ${spk_extra_files}; do
    [ ! -f "${tmp}/in/${f}" ] || "${utils_dir}/filter_scp.pl" "${tmp}/out/spk2utt" "${tmp}/in/${f}" >"${tmp}/out/${f}"
done

old="$(wc -l <"${tmp}/in/utt2spk")"
new="$(wc -l <"${tmp}/out/utt2spk")"
mkdir -p "${data}/.backup"
for f in ${tables}; do
    if [ -f "${data}/${f}" ]; then
        cp "${data}/${f}" "${data}/.backup/${f}"
    fi
done
for f in ${tables}; do
    if [ -f "${tmp}/out/${f}" ]; then
        if ! cmp -s "${tmp}/out/${f}" "${data}/${f}" && [ -f "${data}/${f}" ]; then
            echo "${prog}: ${data}/${f}: $(wc -l <"${data}/${f}") -> $(wc -l <"${tmp}/out/${f}") lines"
        fi
        mv "${tmp}/out/${f}" "${data}/${f}"
    elif [ -f "${tmp}/in/${f}" ]; then
        mv "${tmp}/in/${f}" "${data}/${f}" # sorted, not keyed by utterance/speaker/recording
    fi
done
if [ "${new}" -ne "${old}" ]; then
    echo "${prog}: kept ${new} utterances out of ${old}"
else
    echo "${prog}: kept all ${old} utterances."
fi
echo "${prog}: old files are kept in ${data}/.backup"
