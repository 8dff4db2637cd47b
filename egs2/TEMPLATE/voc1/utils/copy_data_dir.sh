#!/usr/bin/env bash
# copy_data_dir.sh: copy a Kaldi data directory, optionally renaming utterances and speakers
# (Kaldi's utils/copy_data_dir.sh).
#
# Usage: utils/copy_data_dir.sh [--utt-prefix P] [--utt-suffix S] [--spk-prefix P] [--spk-suffix S]
#                               [--validate-opts "<opts>"] <src-dir> <dest-dir>
#   Utterance ids become <utt-prefix><utt><utt-suffix> in every table keyed by utterance,
#   speaker ids <spk-prefix><spk><spk-suffix> in utt2spk and the tables keyed by speaker;
#   recording ids (wav.scp with a segments file, segments' 2nd field) stay. The rest of each line
#   is copied byte for byte. The tables are sorted (LC_ALL=C) and spk2utt is rebuilt; then
#   utils/validate_data_dir.sh <validate-opts> checks <dest-dir> (--no-feats / --no-text added
#   when <src-dir> has no feats.scp / text, as Kaldi does).
# Example (two corpora in one vocoder training set): utils/copy_data_dir.sh --utt-prefix vctk_
#   --spk-prefix vctk_ ../tts1/data/tr_no_dev data/vctk_train
set -euo pipefail

utt_prefix=""
utt_suffix=""
spk_prefix=""
spk_suffix=""
validate_opts=""
utils_dir="$(dirname "$(readlink -f "$0")")"
# shellcheck source-path=SCRIPTDIR source=parse_options.sh
. "${utils_dir}/parse_options.sh"
# shellcheck source-path=SCRIPTDIR source=../scripts/data_dir_lib.sh
. "${utils_dir}/../scripts/data_dir_lib.sh"

prog="copy_data_dir.sh"
die() {
    echo "${prog}: $*" >&2
    exit 1
}
[ $# -eq 2 ] || die "usage: ${prog} [--utt-prefix P] [--utt-suffix S] [--spk-prefix P] [--spk-suffix S] [--validate-opts \"<opts>\"] <src-dir> <dest-dir>"
src="$1"
dest="$2"
[ -f "${src}/utt2spk" ] || die "no such file ${src}/utt2spk"
[ "$(readlink -f "${src}")" != "$(readlink -f "${dest}")" ] || die "<dest-dir> must differ from <src-dir>"
export LC_ALL=C
mkdir -p "${dest}"
tmp="$(mktemp -d "${dest}/.copy.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

# rename <prefix> <suffix> <in> <out>: the first field renamed, the rest of the line kept as is.
rename() {
    awk -v p="$1" -v s="$2" '{ key = $1; i = index($0, key); print p key s substr($0, i + length(key)) }' "$3" |
        sort -k1,1 >"$4"
}
awk -v up="${utt_prefix}" -v us="${utt_suffix}" -v sp="${spk_prefix}" -v ss="${spk_suffix}" \
    'NF != 2 { printf("%s: line %d: expected <utt> <spk>\n", FILENAME, NR) > "/dev/stderr"; exit 1 }
     { print up $1 us, sp $2 ss }' "${src}/utt2spk" | sort -k1,1 >"${tmp}/utt2spk"
for f in ${DATA_UTT_FILES}; do
    [ "${f}" = utt2spk ] || [ ! -f "${src}/${f}" ] || rename "${utt_prefix}" "${utt_suffix}" "${src}/${f}" "${tmp}/${f}"
done
if [ -f "${src}/wav.scp" ]; then
    if [ -f "${src}/segments" ]; then
        sort -k1,1 "${src}/wav.scp" >"${tmp}/wav.scp" # keyed by recording
    else
        rename "${utt_prefix}" "${utt_suffix}" "${src}/wav.scp" "${tmp}/wav.scp"
    fi
fi
for f in ${DATA_SPK_FILES}; do
    [ ! -f "${src}/${f}" ] || rename "${spk_prefix}" "${spk_suffix}" "${src}/${f}" "${tmp}/${f}"
done
for f in ${DATA_RECO_FILES}; do
    [ ! -f "${src}/${f}" ] || sort -k1,1 "${src}/${f}" >"${tmp}/${f}"
done
"${utils_dir}/utt2spk_to_spk2utt.pl" "${tmp}/utt2spk" >"${tmp}/spk2utt"
for f in "${tmp}"/*; do
    mv "${f}" "${dest}/"
done
[ -f "${src}/feats.scp" ] || validate_opts+=" --no-feats"
[ -f "${src}/text" ] || validate_opts+=" --no-text"
[ -f "${src}/wav.scp" ] || validate_opts+=" --no-wav"
# shellcheck disable=SC2086  # options, word-split as Kaldi does
"${utils_dir}/validate_data_dir.sh" ${validate_opts} "${dest}"
echo "${prog}: copied ${src} to ${dest} (utt prefix '${utt_prefix}' suffix '${utt_suffix}', spk prefix '${spk_prefix}' suffix '${spk_suffix}')"
