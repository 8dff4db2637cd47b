#!/usr/bin/env bash
# voc1 setup.sh stub (voc.sh --tts_exp takes the TTS recipe's data while this line is here)
# local/data.sh: write the Kaldi data directories of this corpus (voc.sh stage 1 runs it when
# run.sh's data_from is empty). This is the stub setup.sh made: replace the body below.
#
# Write, for each of the run.sh sets (train_set, valid_set, test_sets), data/<set>/ with
#   wav.scp    "<recording-id> <path>" or "<recording-id> <command> |" (a pipe writing a WAV),
#              absolute paths or paths relative to the recipe directory
#   utt2spk    "<utterance-id> <speaker-id>"; utterance ids prefixed by their speaker
#   spk2utt    from utt2spk (utils/utt2spk_to_spk2utt.pl)
#   segments   optional: "<utterance-id> <recording-id> <start> <end>" in seconds (end -1: to the
#              end of the recording)
#   text       optional: "<utterance-id> <transcript>" (not used by the vocoder)
# every file sorted by its first column (LC_ALL=C, path.sh sets it). Keep whole speakers or a
# few utterances of every speaker in the validation/test sets, as you want them scored.
# A corpus that already has an ESPnet/Kaldi recipe needs no local/data.sh: run.sh's data_from
# (e.g. ../tts1/data) takes its data directories as they are.
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail

# shellcheck source=utils/parse_options.sh
. utils/parse_options.sh
# shellcheck source=path.sh
. ./path.sh

if [ $# -ne 0 ]; then
    echo "local/data.sh: unexpected arguments: $*" >&2
    exit 1
fi

echo "local/data.sh: not written yet: write the data directories of this corpus here" \
    "(see the comments at the top of $0), or set data_from in run.sh" >&2
exit 1
