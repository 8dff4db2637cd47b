#!/usr/bin/env bash
# path.sh: environment of the voc1 recipes; sourced by voc.sh and local/data.sh.
# Recipes link to this file (egs2/<corpus>/voc1/path.sh -> ../../TEMPLATE/voc1/path.sh).
# - uses the repository's .venv (tools/ensure_env.sh creates it) when it exists;
# - uses the installed espnet_hifigan package, or the repository's sources if it isn't installed;
# - fixes the locale (C sort order, as Kaldi tables need), UTF-8 Python I/O and one thread
#   per process (the recipe runs several jobs in parallel).

# The repository root: three levels above this file's real location.
MAIN_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)"
export MAIN_ROOT

if [ -x "${MAIN_ROOT}/.venv/bin/python" ]; then
    export VIRTUAL_ENV="${MAIN_ROOT}/.venv"
    export PATH="${VIRTUAL_ENV}/bin:${PATH}"
fi
if ! python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("espnet_hifigan") is None)' 2>/dev/null; then
    export PYTHONPATH="${MAIN_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
fi

# Kaldi's habit: the recipe's utils/ on PATH, so that a site cmd.sh naming run.pl, queue.pl or
# slurm.pl (Kaldi's job launchers; utils/ maps them onto scripts/) works as it is.
if [ -d utils ]; then
    export PATH="${PWD}/utils:${PATH}"
fi

export LC_ALL=C
export PYTHONIOENCODING=utf-8
export OMP_NUM_THREADS=1
export MKL_NUM_THREADS=1
