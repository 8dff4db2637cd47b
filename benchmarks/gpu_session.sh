#!/usr/bin/env bash
# gpu_session.sh: the one prepared script for a session that is lent a GPU (about 10 minutes).
# Runs, each under its own time limit, and collects every log under "${OUT}":
#   1. pytest -m gpu                          (tests/test_gpu.py: fp16+GradScaler, bf16, compile, DDP, CLI)
#   2. python -m benchmarks.run --device cuda --size full   (the side-by-side benchmark)
#   3. python -m benchmarks.bench_fast_paths: V1 training step, batch 16 x 8192, of each fast path
#   4. egs2/mini_an4/voc1/run.sh --ngpu 1 --stop_stage 5 (no env set-up) with the GPU fast paths (bf16 autocast, compile, fused AdamW)
# A failing step is recorded (steps.tsv: name, exit status, seconds) and the next one still runs;
# the script exits non-zero if any step failed.
# Usage: OUT=/path/to/results benchmarks/gpu_session.sh   (PYTHON defaults to .venv/bin/python)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
out="${OUT:-${root}/gpu_session_out}"
mkdir -p "${out}"
python="${PYTHON:-${root}/.venv/bin/python}"
[ -x "${python}" ] || python="python3"
export PYTHONPATH="${root}${PYTHONPATH:+:${PYTHONPATH}}"
failed=0

# step NAME SECONDS CMD...: run CMD with a time limit, its output in ${out}/NAME.log.
step() {
    local name="$1" limit="$2" rc=0 start
    shift 2
    start="$(date +%s)"
    echo "== ${name}: $*"
    timeout --signal=TERM --kill-after=20 "${limit}" "$@" >"${out}/${name}.log" 2>&1 || rc=$?
    printf '%s\t%s\t%s\n' "${name}" "${rc}" "$(($(date +%s) - start))" | tee -a "${out}/steps.tsv"
    [ "${rc}" -eq 0 ] || failed=1
}

{
    nvidia-smi || true
    "${python}" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
    git rev-parse HEAD 2>/dev/null || true
} >"${out}/env.txt" 2>&1

step pytest_gpu 180 "${python}" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py -rs --durations=10
step benchmark_full 150 "${python}" -m benchmarks.run --device cuda --size full
for f in benchmarks/results*.json docs/benchmarks.md; do
    if [ -e "${f}" ]; then cp "${f}" "${out}/"; fi
done
step fast_paths_v1 120 "${python}" -m benchmarks.bench_fast_paths --preset v1 --batch_size 16 --device cuda \
    --rounds 10 --paths fp32 bf16 fused bf16+fused bf16+compile+fused
step recipe_stage5 120 env -C egs2/mini_an4/voc1 ./run.sh --ngpu 1 --stop_stage 5 --train_args \
    "--model_conf autocast_dtype=bfloat16 --model_conf compile=true --optim_conf fused=true --optim2_conf fused=true"
cp egs2/mini_an4/voc1/exp/*/train.log "${out}/" 2>/dev/null || true
exit "${failed}"
