#!/usr/bin/env bash
# Create (once) the project's Python environment in <repo>/.venv and install the package.
# Usage: tools/ensure_env.sh [--test]   (--test also installs the test extra)
# Env: ESPNET_HIFIGAN_PYTHON  an explicit Python >= 3.12 interpreter to build the venv with.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv"
extra=""
if [ "${1:-}" = "--test" ]; then
    extra="[test]"
fi

find_python() {
    local candidates=()
    if [ -n "${ESPNET_HIFIGAN_PYTHON:-}" ]; then
        candidates+=("${ESPNET_HIFIGAN_PYTHON}")
    fi
    candidates+=(python3.14 python3.13 python3.12 python3)
    if command -v pyenv >/dev/null 2>&1; then
        local root
        root="$(pyenv root)"
        for v in "${root}"/versions/3.1[2-9]*; do
            [ -x "${v}/bin/python3" ] && candidates+=("${v}/bin/python3")
        done
    fi
    local c
    for c in "${candidates[@]}"; do
        # A pyenv shim may exist on PATH without the version being active: ask it to run.
        if command -v "${c}" >/dev/null 2>&1 \
            && "${c}" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' \
            >/dev/null 2>&1; then
            command -v "${c}"
            return 0
        fi
    done
    return 1
}

stamp="${venv}/.installed${extra}"
if [ -x "${venv}/bin/python" ] && [ -f "${stamp}" ] && [ "${stamp}" -nt "${repo_root}/setup.py" ]; then
    exit 0
fi

if [ ! -x "${venv}/bin/python" ]; then
    if ! python="$(find_python)"; then
        echo "ERROR: espnet-hifigan needs Python >= 3.12 (espnet 202611 requires it)." >&2
        echo "       Put python3.12 on PATH or set ESPNET_HIFIGAN_PYTHON=/path/to/python3.12." >&2
        exit 1
    fi
    echo "Creating ${venv} with ${python}" >&2
    "${python}" -m venv "${venv}"
fi
"${venv}/bin/python" -m pip install --quiet --upgrade pip
echo "Installing espnet_hifigan${extra} into ${venv} (first time: a few minutes, ~6 GB)" >&2
"${venv}/bin/python" -m pip install --quiet -e "${repo_root}${extra}"
touch "${stamp}"
