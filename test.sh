#!/usr/bin/env bash
# Set up the environment if needed (.venv, Python >= 3.12, package + test extra) and run the tests.
# Extra arguments go to pytest, e.g. ./test.sh -k features
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${repo_root}"
tools/ensure_env.sh --test
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@" tests
