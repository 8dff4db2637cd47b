#!/usr/bin/env bash
# run.sh: run the embedded default recipe, egs2/mini_an4/voc1 (a tiny HiFi-GAN trained and
# evaluated on AN4 samples shipped with ESPnet; CPU, minutes).
# Creates the Python environment first if needed (tools/ensure_env.sh), then passes every
# option to egs2/mini_an4/voc1/run.sh, e.g.
#   ./run.sh                 # stages 1-8
#   ./run.sh --stage 3       # from feature extraction on
#   ./run.sh --help          # the options of the stage driver (egs2/TEMPLATE/voc1/voc.sh)
# Outputs go to egs2/mini_an4/voc1/{data,dump,exp}.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${root}/tools/ensure_env.sh"
cd "${root}/egs2/mini_an4/voc1"
exec ./run.sh "$@"
