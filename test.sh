#!/usr/bin/env bash
# Set up the environment if needed (.venv, Python >= 3.12, package + test extra) and run the tests.
# Extra arguments go to pytest, e.g. ./test.sh -k features
# The modules run in parallel on the machine's CPUs (pytest-xdist, one module per worker at a
# time, at most 4 workers; TEST_WORKERS=N to choose, TEST_WORKERS=0 for one process).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${repo_root}"
tools/ensure_env.sh --test
# CPUs this process may use (GNU nproc honours OMP_NUM_THREADS, which path.sh sets to 1).
cpus="$(.venv/bin/python -c 'import os; print(len(os.sched_getaffinity(0)))')"
workers="${TEST_WORKERS:-$((cpus < 4 ? cpus : 4))}"
parallel=()
if [ "${workers}" -gt 1 ]; then
    parallel=(-n "${workers}" --dist loadfile)
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "${parallel[@]}" "$@" tests
