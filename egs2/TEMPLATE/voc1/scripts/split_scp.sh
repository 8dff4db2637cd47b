#!/usr/bin/env bash
# split_scp.sh: split a Kaldi table (scp, segments, utt2spk, ...) into N contiguous parts,
# keeping the line order (Kaldi's split_scp.pl without options).
#
# Usage: split_scp.sh <in-file> <out-1> [<out-2> ...]
#   The parts differ in size by at most one line; their concatenation is <in-file>.
#   It is an error to ask for more parts than <in-file> has lines (every part must be non-empty).
set -euo pipefail

prog="$(basename "$0")"
if [ $# -lt 2 ]; then
    echo "usage: ${prog} <in-file> <out-1> [<out-2> ...]" >&2
    exit 1
fi
in="$1"
shift
[ -f "${in}" ] || { echo "${prog}: no such file: ${in}" >&2; exit 1; }
nlines="$(wc -l <"${in}")"
nparts=$#
if [ "${nlines}" -lt "${nparts}" ]; then
    echo "${prog}: cannot split ${in} (${nlines} lines) into ${nparts} non-empty parts" >&2
    exit 1
fi
for out in "$@"; do
    mkdir -p "$(dirname "${out}")"
done
# Line i (0-based) goes to part floor(i * nparts / nlines): contiguous, balanced parts.
printf '%s\n' "$@" | awk -v n="${nlines}" -v k="${nparts}" '
    NR == FNR { out[NR - 1] = $0; next }
    { part = int((FNR - 1) * k / n); print > out[part] }
' - "${in}"
