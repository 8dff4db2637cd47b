#!/usr/bin/env bash
# gpu_session.sh: the one prepared script for a session that is lent a GPU (issue 24).
# In one call, each step under its own time limit (a failing step is recorded and the next runs):
#   env          device, driver, torch / CUDA versions, the package imports
#   pytest_gpu   pytest -m gpu (tests/test_gpu.py: fp16 + GradScaler, bf16, compile, fused AdamW,
#                each failure written to failures.txt as it happens,
#                2-process DDP on one GPU, voc_train --use_amp, the training quality guard on CUDA,
#                GPU inference against the official V3 fixture)
#   recipe       egs2/mini_an4/voc1/run.sh --ngpu 1 --gpu_inference true, stages 1-8 (default
#                config), in parallel with pytest_gpu (both are mostly compilation and CPU work)
#   benchmark    python -m benchmarks.run --device cuda --size full (training V1/V2/V3 vs ESPnet's
#                modules and the official step; inference x real time), alone on the machine, then
#                the profile of our fastest training step
# Measured on an H200 (2026-12-04, the first call; pytest and the recipe side by side): the recipe's
# stages 1-4 took 63 s and 2,600 of stage 5's 3,000 steps 140 s; the first 9 GPU tests 200 s. With
# the machine's start, one call of the whole script needs about 10 minutes: SESSION_SECONDS=560
# and the device tool's timeout_s 590 (the benchmark gets what is left; its JSON is written after
# every part, the plain paths first, the compiled ones last).
# Everything lands in ${OUT}: steps.tsv (name, exit status, seconds), summary.txt, the benchmark
# JSON and logs.tar.gz (every log, refreshed after each step, so a run stopped by a time limit
# still returns what it did).
#
# Usage: OUT=/path/to/results benchmarks/gpu_session.sh [STEP ...]   (default: all steps)
# Env:   PYTHON (default: .venv/bin/python, else python3)
#        SESSION_BENCH_ARGS  extra options of benchmarks.run (e.g. "--compile_presets v1")
#        RECIPE_ARGS         extra options of the recipe's run.sh (e.g. "--fast")
#        SESSION_NGPU        the recipe's --ngpu (default 1; 0 tries the script on a CPU)
#        SESSION_SECONDS     the whole script's budget (default 900): no step runs past it
# A folder .whl/ beside this repository's root (wheels, carried to a machine without a package
# index) is installed with pip --target first; .gpu_data/ (the developers' shared data, e.g.
# official_v3/) is passed to the tests as ESPNET_HIFIGAN_SHARED_DATA.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
out="${OUT:-${root}/gpu_session_out}"
mkdir -p "${out}"
work="$(mktemp -d /tmp/gpu_session.XXXXXX)"
python="${PYTHON:-${root}/.venv/bin/python}"
[ -x "${python}" ] || python="python3"
deadline=$(($(date +%s) + ${SESSION_SECONDS:-900}))
steps=("$@")
[ "${#steps[@]}" -gt 0 ] || steps=(pytest_gpu recipe benchmark)
failed=0

wanted() {
    local s
    for s in "${steps[@]}"; do [ "${s}" = "$1" ] && return 0; done
    return 1
}

pack_logs() {
    tar -czf "${out}/logs.tar.gz" -C "${work}" . 2>/dev/null || true
}

# step NAME SECONDS CMD...: run CMD with a time limit (never past the session's deadline), its
# output in ${work}/NAME.log.
step() {
    local name="$1" limit="$2" rc=0 start
    shift 2
    start="$(date +%s)"
    if [ $((deadline - start - 15)) -lt "${limit}" ]; then
        limit=$((deadline - start - 15))
    fi
    if [ "${limit}" -le 0 ]; then
        printf '%s\tskipped\t0\n' "${name}" | tee -a "${out}/steps.tsv"
        return 1
    fi
    echo "== ${name}: $*"
    timeout --signal=TERM --kill-after=20 "${limit}" "$@" >"${work}/${name}.log" 2>&1 || rc=$?
    printf '%s\t%s\t%s\n' "${name}" "${rc}" "$(($(date +%s) - start))" | tee -a "${out}/steps.tsv"
    pack_logs
    return "${rc}"
}

if [ -d "${root}/.whl" ]; then
    "${python}" -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site "${root}"/.whl/*.whl \
        >"${work}/wheels.log" 2>&1 || { echo "wheel install failed"; cat "${work}/wheels.log"; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:${PYTHONPATH}}"
fi
export PYTHONPATH="${root}${PYTHONPATH:+:${PYTHONPATH}}"
if [ -d "${root}/.gpu_data" ]; then
    export ESPNET_HIFIGAN_SHARED_DATA="${root}/.gpu_data"
fi
export ESPNET_HIFIGAN_GPU_REPORT="${work}"
export PYTHONUNBUFFERED=1

{
    date -u
    nvidia-smi || true
    nproc
    "${python}" -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda,
"cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name(0))'
    "${python}" -c 'import espnet, kaldiio, soundfile, espnet_hifigan.train.task, espnet_hifigan.bin.voc_score
print("espnet", espnet.__version__, "imports ok")'
    git rev-parse HEAD 2>/dev/null || true
} >"${work}/env.txt" 2>&1 || true
cp "${work}/env.txt" "${out}/"

pids=()
if wanted pytest_gpu; then
    per_test=()
    if "${python}" -c 'import pytest_timeout' 2>/dev/null; then
        per_test=(--timeout 170)
    fi
    step pytest_gpu 330 "${python}" -m pytest -v -p no:cacheprovider -m gpu tests/test_gpu.py -rs -s \
        --durations=15 "${per_test[@]}" &
    pids+=($!)
fi
if wanted recipe; then
    # shellcheck disable=SC2086  # RECIPE_ARGS is a list of options
    step recipe 330 env -C egs2/mini_an4/voc1 ./run.sh ${RECIPE_ARGS:-} --ngpu "${SESSION_NGPU:-1}" \
        --gpu_inference "$([ "${SESSION_NGPU:-1}" -gt 0 ] && echo true || echo false)" --python "${python}" &
    pids+=($!)
fi
for pid in "${pids[@]}"; do
    wait "${pid}" || failed=1
done
for f in egs2/mini_an4/voc1/exp/*/RESULTS.md egs2/mini_an4/voc1/exp/*/train.log \
    egs2/mini_an4/voc1/exp/*/decode_*/*/timing.json; do
    if [ -e "${f}" ]; then
        mkdir -p "${work}/recipe_exp"
        cp "${f}" "${work}/recipe_exp/$(echo "${f#egs2/mini_an4/voc1/exp/}" | tr / _)"
    fi
done
pack_logs

if wanted benchmark; then
    # shellcheck disable=SC2086  # SESSION_BENCH_ARGS is a list of options
    step benchmark 330 "${python}" -m benchmarks.run --device cuda --size full --skip decode features \
        --json "${out}/bench_gpu.json" --profile_dir "${work}" ${SESSION_BENCH_ARGS:-} || failed=1
fi

{
    cat "${out}/steps.tsv"
    grep -h -E "passed|failed|error" "${work}/pytest_gpu.log" 2>/dev/null | tail -3
    cat "${work}"/failures.txt 2>/dev/null
    cat "${work}"/quality_guard.json 2>/dev/null
    cat "${work}"/profile_*.txt 2>/dev/null
    tail -30 "${work}/benchmark.log" 2>/dev/null
} >"${out}/summary.txt" 2>&1 || true
pack_logs
exit "${failed}"
