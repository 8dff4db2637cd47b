#!/usr/bin/env bash
# local/data.sh (mini_an4): Kaldi data directories from the tiny AN4 sample shipped in the
# espnet wheel (<site-packages>/egs3/mini_an4/esp2_asr/downloads.tar.gz; no download).
#
# Usage: local/data.sh [--tarball PATH] [--download_dir downloads]
#   --tarball PATH        the AN4 sample tarball (default: found through the installed espnet)
#   --download_dir DIR    where it is extracted (default: downloads)
# Output (16 kHz NIST sphere audio, speaker-prefixed ids "<spk>-<file>"):
#   data/train  the 5 utterances of etc/an4_train.fileids
#   data/dev    cen8-fcaw-b (first of etc/an4_test.fileids)
#   data/test   cen8-mmxg-b (second of etc/an4_test.fileids)
# each with wav.scp, utt2spk, spk2utt and text.
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

tarball=""
download_dir=downloads

# shellcheck source=utils/parse_options.sh
. utils/parse_options.sh
# shellcheck source=path.sh
. ./path.sh

if [ $# -ne 0 ]; then
    echo "local/data.sh: unexpected arguments: $*" >&2
    exit 1
fi

if [ -z "${tarball}" ]; then
    # The sample sits next to the espnet package (egs3 is a top-level package of the wheel).
    tarball="$(python3 - <<'PYEOF'
import importlib.util
import pathlib

spec = importlib.util.find_spec("espnet")
if spec is None or spec.origin is None:
    raise SystemExit("local/data.sh: the espnet package is not installed (run tools/ensure_env.sh)")
print(pathlib.Path(spec.origin).resolve().parent.parent / "egs3" / "mini_an4" / "esp2_asr" / "downloads.tar.gz")
PYEOF
)"
fi
if [ ! -f "${tarball}" ]; then
    echo "local/data.sh: AN4 sample not found: ${tarball} (give it with --tarball PATH)" >&2
    exit 1
fi

an4="${download_dir}/an4"
if [ ! -f "${an4}/.done" ]; then
    log "Extracting ${tarball} into ${download_dir}/"
    mkdir -p "${download_dir}"
    tmp="$(mktemp -d "${download_dir}/.extract.XXXXXX")"
    trap 'rm -rf "${tmp}"' EXIT
    tar -xzf "${tarball}" -C "${tmp}"
    [ -d "${tmp}/downloads/an4/etc" ] || { echo "local/data.sh: ${tarball} has no downloads/an4/etc" >&2; exit 1; }
    rm -rf "${an4}"
    mv "${tmp}/downloads/an4" "${an4}"
    touch "${an4}/.done"
fi
an4_abs="$(cd "${an4}" && pwd)"

# make_set <dest> <fileids> <transcription> <first line> <number of lines>
make_set() {
    local dest="$1" fileids="$2" trans="$3" first="$4" count="$5" tmp
    mkdir -p "${dest}"
    tmp="$(mktemp -d "${dest}/.tmp.XXXXXX")"
    # fileid "an4_clstk/fash/an251-fash-b" -> utt "fash-an251-fash-b", speaker "fash"
    tail -n "+${first}" "${fileids}" | head -n "${count}" | awk -v root="${an4_abs}/wav" '
        { n = split($1, p, "/"); spk = p[n - 1]; utt = spk "-" p[n]
          print utt, root "/" $1 ".sph" > "'"${tmp}"'/wav.scp.unsorted"
          print utt, spk > "'"${tmp}"'/utt2spk.unsorted"
          print p[n], utt > "'"${tmp}"'/ids" }'
    # transcription line "<s> YES </s> (an251-fash-b)" -> "fash-an251-fash-b YES"
    awk 'NR == FNR { utt[$1] = $2; next }
         { id = $NF; gsub(/[()]/, "", id); if (!(id in utt)) next
           line = $0; sub(/[ \t]*\([^()]*\)[ \t]*$/, "", line)
           gsub(/<\/?s>/, "", line); gsub(/^[ \t]+|[ \t]+$/, "", line); gsub(/[ \t]+/, " ", line)
           print utt[id], line }' "${tmp}/ids" "${trans}" >"${tmp}/text.unsorted"
    for f in wav.scp utt2spk text; do
        sort "${tmp}/${f}.unsorted" >"${dest}/${f}"
    done
    utils/utt2spk_to_spk2utt.pl "${dest}/utt2spk" >"${dest}/spk2utt"
    rm -rf "${tmp}"
    if [ "$(wc -l <"${dest}/text")" -ne "$(wc -l <"${dest}/wav.scp")" ]; then
        echo "local/data.sh: ${trans} lacks transcriptions of some utterances of ${dest}" >&2
        exit 1
    fi
    log "${dest}: $(wc -l <"${dest}/wav.scp") utterances"
}

etc="${an4}/etc"
make_set data/train "${etc}/an4_train.fileids" "${etc}/an4_train.transcription" 1 "$(wc -l <"${etc}/an4_train.fileids")"
make_set data/dev "${etc}/an4_test.fileids" "${etc}/an4_test.transcription" 1 1
make_set data/test "${etc}/an4_test.fileids" "${etc}/an4_test.transcription" 2 1
log "Successfully finished. [elapsed=${SECONDS}s]"
