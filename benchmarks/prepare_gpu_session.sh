#!/usr/bin/env bash
# prepare_gpu_session.sh: make what benchmarks/gpu_session.sh needs on a GPU machine that has
# PyTorch but no package index (the device tool's nvidia-h200 image: Python 3.12, torch,
# torchaudio, numpy, scipy, pytest, onnx...; not espnet and its own dependencies):
#   .whl/       wheels, at this .venv's versions, of the packages that image lacks
#               (pip wheel --no-deps: binary wheels from the index, the rest built here)
#   .gpu_data/  the developers' shared fixtures the GPU tests read (../shared/data/official_v3)
# Both are git-ignored; name them in the device call's carry list, e.g.
#   run(command="OUT=$OUT SESSION_SECONDS=560 bash benchmarks/gpu_session.sh",
#       carry=[".whl", ".gpu_data"], timeout_s=590)
# Usage: benchmarks/prepare_gpu_session.sh   (after tools/ensure_env.sh --test)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
python="${root}/.venv/bin/python"
# What espnet_hifigan, espnet 202611 and the scoring stage import beyond that image (measured
# there: python3 -c "import espnet, kaldiio, soundfile, espnet_hifigan.train.task, ..." ran with
# these). setuptools < 82 brings pkg_resources, which pyworld and pysptk import.
packages=(
    espnet espnet_model_zoo kaldiio soundfile configargparse typeguard humanfriendly
    hydra-core omegaconf antlr4-python3-runtime torch-complex omniio zstandard
    librosa soxr pooch decorator cffi pycparser pesq pystoi pyworld pysptk setuptools
)
pins=()
for p in "${packages[@]}"; do
    version="$("${python}" -m pip show "${p}" 2>/dev/null | sed -n 's/^Version: //p')"
    [ -n "${version}" ] || { echo "prepare_gpu_session.sh: ${p} is not in ${root}/.venv" >&2; exit 1; }
    pins+=("${p}==${version}")
done
rm -rf .whl
"${python}" -m pip wheel -q --no-deps -w .whl "${pins[@]}"
shared="${root}/../shared/data/official_v3"
if [ -d "${shared}" ]; then
    rm -rf .gpu_data
    mkdir -p .gpu_data
    cp -r "${shared}" .gpu_data/
fi
du -sh .whl .gpu_data 2>/dev/null || true
