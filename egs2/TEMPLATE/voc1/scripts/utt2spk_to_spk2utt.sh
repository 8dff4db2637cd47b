#!/usr/bin/env bash
# utt2spk_to_spk2utt.sh: convert utt2spk to spk2utt (Kaldi's utt2spk_to_spk2utt.pl).
#
# Usage: utt2spk_to_spk2utt.sh [<utt2spk>] > spk2utt
#   Reads stdin without an argument. Utterances keep their utt2spk order; speakers are
#   sorted (LC_ALL=C), as Kaldi data directories require.
set -euo pipefail

awk '
    NF != 2 { printf("utt2spk_to_spk2utt.sh: line %d: expected 2 fields, got %d\n", NR, NF) > "/dev/stderr"; bad = 1; exit 1 }
    !($2 in utts) { order[++n] = $2; utts[$2] = $1; next }
    { utts[$2] = utts[$2] " " $1 }
    END { if (bad) exit 1; for (i = 1; i <= n; i++) print order[i], utts[order[i]] }
' "$@" | LC_ALL=C sort -k1,1
