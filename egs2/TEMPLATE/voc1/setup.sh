#!/usr/bin/env bash
# setup.sh: make a new voc1 recipe directory (as ESPnet's egs2/TEMPLATE/tts1/setup.sh does).
#
# Usage: egs2/TEMPLATE/voc1/setup.sh [options] <dir>     e.g. egs2/TEMPLATE/voc1/setup.sh egs2/vctk/voc1
# <dir> must not exist, or be empty; on any error nothing is left behind. It gets
#   voc.sh chain.sh path.sh scripts/ utils/   links to egs2/TEMPLATE/voc1/ (relative)
#   cmd.sh                                    a copy to edit for your site (local or slurm jobs)
#   run.sh                                    corpus defaults to edit: fs, n_fft, n_shift,
#                                             win_length, n_mels, fmin, fmax, sets, data_from
#   conf/train.yaml, conf/train_debug.yaml    the V1 preset of the sampling rate / frame shift and
#                                             the debug config (./run.sh --fast); conf/slurm.conf
#   local/data.sh                             a stub that says what to write
# Beside an ESPnet recipe (<dir> = egs2/<corpus>/voc1 next to egs2/<corpus>/tts1), run.sh reads
# the tts1 recipe's data (data_from=../tts1/data) and takes its feature settings and sets where
# they can be read (its run.sh / tts.sh options, conf/*.yaml; each noted in a comment).
#
# Options:
#   --tts1_dir DIR   the tts1 recipe to read (default: <dir>/../tts1 if it has a run.sh;
#                    "none": do not read one)
#   --utils DIR      what utils/ links to (default: egs2/TEMPLATE/voc1/utils, the project's
#                    Kaldi-compatible scripts); "kaldi": Kaldi's own egs/wsj/s5/utils from
#                    ${KALDI_ROOT} or ESPnet's checkout (${ESPNET_ROOT}/tools/kaldi)
set -euo pipefail

template="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
tts1_dir=""
utils=""

# shellcheck source=utils/parse_options.sh
. "${template}/utils/parse_options.sh"

die() {
    echo "setup.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: $0 [--tts1_dir DIR|none] [--utils DIR|kaldi] <dir> (see --help)"
dir="${1%/}"
if [ -e "${dir}" ] || [ -L "${dir}" ]; then
    [ -d "${dir}" ] && [ -z "$(ls -A "${dir}")" ] || die "${dir} exists and is not an empty directory; nothing was changed"
fi
parent="$(dirname "${dir}")"
mkdir -p "${parent}"
parent="$(cd "${parent}" && pwd)"
name="$(basename "${dir}")"

# utils/: ours, or Kaldi's own.
if [ -z "${utils}" ]; then
    utils="${template}/utils"
elif [ "${utils}" = kaldi ]; then
    utils=""
    for root in "${KALDI_ROOT:-}" "${ESPNET_ROOT:+${ESPNET_ROOT}/tools/kaldi}"; do
        if [ -n "${root}" ] && [ -f "${root}/egs/wsj/s5/utils/parse_options.sh" ]; then
            utils="${root}/egs/wsj/s5/utils"
            break
        fi
    done
    [ -n "${utils}" ] || die "--utils kaldi: no Kaldi utils/ found (set KALDI_ROOT, or ESPNET_ROOT to an ESPnet checkout with tools/kaldi)"
fi
[ -f "${utils}/parse_options.sh" ] || die "--utils ${utils}: no parse_options.sh there (not a Kaldi-style utils/)"
utils="$(cd "${utils}" && pwd)"

# The tts1 recipe beside it, if any.
if [ -z "${tts1_dir}" ] && [ -f "${parent}/tts1/run.sh" ]; then
    tts1_dir="${parent}/tts1"
fi
[ "${tts1_dir}" != none ] || tts1_dir=""
setup_opts=()
if [ -n "${tts1_dir}" ]; then
    [ -f "${tts1_dir}/run.sh" ] || die "--tts1_dir ${tts1_dir}: not a tts1 recipe (no run.sh)"
    tts1_dir="$(cd "${tts1_dir}" && pwd)"
    setup_opts=(--tts1_dir "${tts1_dir}" --data_from "$(realpath -m --relative-to="${parent}/${name}" "${tts1_dir}/data")")
fi

# Built aside in the same parent (so the relative links are the final ones), moved in when complete.
tmp="${parent}/.${name}.setup.$$"
trap 'rm -rf "${tmp}"' EXIT
mkdir -p "${tmp}/conf" "${tmp}/local"
for f in voc.sh chain.sh path.sh scripts; do
    ln -s "$(realpath -m --relative-to="${parent}/${name}" "${template}/${f}")" "${tmp}/${f}"
done
ln -s "$(realpath -m --relative-to="${parent}/${name}" "${utils}")" "${tmp}/utils"
cp "${template}/cmd.sh" "${tmp}/cmd.sh"
ln -s "$(realpath -m --relative-to="${parent}/${name}/conf" "${template}/../../../conf/slurm.conf")" "${tmp}/conf/slurm.conf"
cp "${template}/template/local/data.sh" "${tmp}/local/data.sh"
chmod +x "${tmp}/local/data.sh"
# shellcheck source=path.sh
. "${template}/path.sh"
python3 -m espnet_hifigan.bin.setup_recipe --recipe_dir "${tmp}" --template "${template}/template/run.sh" \
    "${setup_opts[@]}" || die "writing run.sh and conf/ failed (see above); nothing was changed"

[ ! -d "${parent}/${name}" ] || rmdir "${parent}/${name}"
mv "${tmp}" "${parent}/${name}"
trap - EXIT
echo "setup.sh: made ${dir}; edit run.sh${tts1_dir:+ (read from ${tts1_dir})}, write local/data.sh or set data_from, then ./run.sh"
