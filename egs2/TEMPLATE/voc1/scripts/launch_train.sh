#!/usr/bin/env bash
# launch_train.sh: run the training command through a job backend, on one or many GPUs/nodes.
#
# Usage (voc.sh stage 5, chain.sh stage 4):
#   scripts/launch_train.sh --cmd "${cuda_cmd}" --log exp/voc_x/train.log \
#       --ngpu 4 --num_nodes 2 -- python3 -m espnet_hifigan.bin.voc_train --config conf/train.yaml ...
#
# The training command must not set --ngpu, --multiprocessing_distributed or --dist_*: this
# script appends them. Layouts (--dist_mode auto picks the first that applies):
#   srun    --num_nodes > 1, or the slurm backend with --ngpu > 1, or --nprocs_per_node > 1:
#           one SLURM job with num_nodes x nprocs_per_node tasks started by srun, one process
#           per GPU: --ngpu 1 (0 on CPU) --multiprocessing_distributed false --dist_launcher
#           slurm, rank/world size/local rank from SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID,
#           rendezvous at the first node of the job (tcp, --master_port).
#   spawn   one node, --ngpu > 1, local backend: ESPnet's own DDP, --ngpu N
#           --multiprocessing_distributed true (one process per GPU, spawned by the trainer).
#   single  otherwise: one process, --ngpu 0 or 1, --multiprocessing_distributed false.
# The first lines of the training log state the layout and the effective batch size. ESPnet
# splits every batch of the config (batch_size, or batch_bins for the numel/length/folded
# types) over the processes, so the config value is the effective batch per optimizer step:
#   effective batch = per-process batch x ngpu x num_nodes = batch_size of the config.
#
# Options:
#   --cmd CMD               job backend (default: scripts/run_local.sh); with scripts/slurm.sh
#                           the job is preemptible (--requeue true) unless --preemptible false
#   --log FILE              training log (required); the logs of earlier runs are kept as
#                           train.1.log (newest), train.2.log, ... for --log train.log
#   --ngpu N                GPUs per node (default: 1; 0 = CPU)
#   --num_nodes N           nodes (default: 1; more than 1 needs the slurm backend)
#   --nprocs_per_node N     processes per node in srun mode (default: ngpu, at least 1);
#                           with --ngpu 0 this gives CPU (gloo) data-parallel training
#   --num_threads N         CPU cores per process (default: 1)
#   --dist_mode MODE        auto | single | spawn | srun (default: auto)
#   --dist_backend B        torch.distributed backend (default: nccl with GPUs, else gloo)
#   --master_port P         rendezvous port in srun mode (default: 20000 + job id % 10000)
#   --preemptible BOOL      slurm backend: requeue on SIGUSR1 (default: true)
#   --train_config FILE     config read for the batch size (default: the command's --config)
#   --check_only BOOL       only check the options and, with the local backend and --ngpu > 0,
#                           that the command's Python sees that many CUDA devices; run nothing,
#                           write nothing (voc.sh does this before stage 1) (default: false)
# With the local backend and --ngpu > 0 the training command's Python (the words before its
# -m/-c) is asked for torch.cuda.device_count() before anything starts; with SLURM the GPUs are
# on the compute node and are not checked here.
set -euo pipefail

prog="launch_train.sh"
die() {
    echo "${prog}: ERROR: $*" >&2
    exit 1
}
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

cmd="scripts/run_local.sh"
log=""
ngpu=1
num_nodes=1
nprocs_per_node=""
num_threads=1
dist_mode=auto
dist_backend=""
master_port=""
preemptible=true
train_config=""
check_only=false
# Internal: the phase run inside the job (job) and inside each srun task (task).
phase=""
banner=()

while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; break ;;
        --*=*) key="${1%%=*}"; value="${1#*=}"; shift ;;
        --*)
            [ $# -ge 2 ] || die "option $1 needs a value"
            key="$1"; value="$2"; shift 2 ;;
        *) die "unexpected argument '$1' (put the training command after --)" ;;
    esac
    key="${key#--}"
    case "${key//-/_}" in
        cmd) cmd="${value}" ;;
        log) log="${value}" ;;
        ngpu) ngpu="${value}" ;;
        num_nodes) num_nodes="${value}" ;;
        nprocs_per_node) nprocs_per_node="${value}" ;;
        num_threads) num_threads="${value}" ;;
        dist_mode) dist_mode="${value}" ;;
        dist_backend) dist_backend="${value}" ;;
        master_port) master_port="${value}" ;;
        preemptible) preemptible="${value}" ;;
        train_config) train_config="${value}" ;;
        check_only) check_only="${value}" ;;
        _phase) phase="${value}" ;;
        _banner) banner+=("${value}") ;;
        *) die "unknown option --${key}" ;;
    esac
done
[ $# -gt 0 ] || die "no training command (usage: ${prog} [options] -- python3 -m ... )"
for v in ngpu num_nodes num_threads; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "--${v} must be a non-negative integer, got '${!v}'"
done
[ "${num_nodes}" -ge 1 ] || die "--num_nodes must be >= 1"
if [ -z "${nprocs_per_node}" ]; then
    nprocs_per_node=$((ngpu > 1 ? ngpu : 1))
fi
[[ "${nprocs_per_node}" =~ ^[1-9][0-9]*$ ]] || die "--nprocs_per_node must be a positive integer"
if [ -z "${dist_backend}" ]; then
    if [ "${ngpu}" -gt 0 ]; then dist_backend=nccl; else dist_backend=gloo; fi
fi

# ------------------------------------------------------------------ inside each srun task
if [ "${phase}" = task ]; then
    : "${SLURM_PROCID:?${prog}: the task phase must be started by srun}"
    task_ngpu=$((ngpu > 0 ? 1 : 0))
    exec "$@" --ngpu "${task_ngpu}" --multiprocessing_distributed false --dist_launcher slurm \
        --dist_backend "${dist_backend}" --dist_world_size "${SLURM_NTASKS:?}" \
        --dist_rank "${SLURM_PROCID}" --local_rank "${SLURM_LOCALID:?}" \
        --dist_master_addr "${MASTER_ADDR}" --dist_master_port "${MASTER_PORT}"
fi

# ------------------------------------------------------------------ inside the job
if [ "${phase}" = job ]; then
    for line in "${banner[@]}"; do
        echo "[${prog}] ${line}"
    done
    echo "[${prog}] host=$(hostname) slurm_job=${SLURM_JOB_ID:-none} nodes=${SLURM_JOB_NODELIST:-$(hostname)} CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}"
    case "${dist_mode}" in
        single)
            exec "$@" --ngpu "${ngpu}" --multiprocessing_distributed false
            ;;
        spawn)
            exec "$@" --ngpu "${ngpu}" --multiprocessing_distributed true
            ;;
        srun)
            : "${SLURM_JOB_ID:?${prog}: srun mode needs to run inside a SLURM job}"
            first_node="$(scontrol show hostnames "${SLURM_JOB_NODELIST}" 2>/dev/null | head -n 1)"
            first_node="${first_node:-$(hostname)}"
            if [ "${num_nodes}" -eq 1 ] && ! getent hosts "${first_node}" >/dev/null 2>&1; then
                first_node=127.0.0.1 # one node whose name does not resolve (containers)
            fi
            export MASTER_ADDR="${first_node}"
            export MASTER_PORT="${master_port:-$((20000 + SLURM_JOB_ID % 10000))}"
            ntasks=$((num_nodes * nprocs_per_node))
            echo "[${prog}] srun: ${ntasks} tasks (${num_nodes} node(s) x ${nprocs_per_node}), rendezvous tcp://${MASTER_ADDR}:${MASTER_PORT}, backend ${dist_backend}"
            # srun passes SIGUSR1/SIGTERM from the job script on to every task. --export=ALL:
            # sbatch --export=PATH would otherwise also restrict what srun passes on.
            exec srun --export=ALL --kill-on-bad-exit=1 --nodes "${num_nodes}" --ntasks "${ntasks}" \
                --ntasks-per-node "${nprocs_per_node}" --cpus-per-task "${num_threads}" \
                "${self}" --_phase task --ngpu "${ngpu}" --dist_backend "${dist_backend}" -- "$@"
            ;;
        *) die "internal: bad mode ${dist_mode}" ;;
    esac
fi

# ------------------------------------------------------------------ on the submitting host
[ -n "${phase}" ] && die "unknown phase '${phase}'"
[ -n "${log}" ] || [ "${check_only}" = true ] || die "--log is required"
read -r -a cmd_arr <<<"${cmd}"
[ "${#cmd_arr[@]}" -gt 0 ] || die "--cmd is empty"
backend=local
case "$(basename "${cmd_arr[0]}")" in
    slurm.sh | slurm.pl) backend=slurm ;;
    queue.pl) [ "${VOC_QUEUE_BACKEND:-local}" != slurm ] || backend=slurm ;; # utils/queue.pl's backend
esac
for arg in "$@"; do
    case "${arg}" in
        --ngpu | --ngpu=* | --multiprocessing_distributed* | --dist_* | --local_rank*)
            die "the training command sets ${arg%%=*}; leave it to ${prog} (use its --ngpu/--num_nodes)"
            ;;
    esac
done

if [ "${dist_mode}" = auto ]; then
    if [ "${num_nodes}" -gt 1 ]; then
        dist_mode=srun
    elif [ "${nprocs_per_node}" -gt 1 ] && [ "${backend}" = slurm ]; then
        dist_mode=srun
    elif [ "${ngpu}" -gt 1 ]; then
        dist_mode=spawn
    elif [ "${nprocs_per_node}" -gt 1 ]; then
        dist_mode=srun # refused below: the local backend cannot start srun tasks
    else
        dist_mode=single
    fi
fi
case "${dist_mode}" in
    single)
        [ "${ngpu}" -le 1 ] || die "--dist_mode single runs one process: --ngpu ${ngpu} needs spawn or srun"
        nprocs_per_node=1
        world_size=1
        ;;
    spawn)
        [ "${num_nodes}" -eq 1 ] || die "--dist_mode spawn is for one node; use srun for --num_nodes ${num_nodes}"
        [ "${ngpu}" -gt 1 ] || die "--dist_mode spawn needs --ngpu > 1"
        nprocs_per_node="${ngpu}"
        world_size="${ngpu}"
        ;;
    srun)
        [ "${backend}" = slurm ] || die "--dist_mode srun (--num_nodes ${num_nodes}, --nprocs_per_node ${nprocs_per_node}) needs the slurm backend (cmd_backend=slurm in cmd.sh); --cmd is '${cmd}'"
        if [ "${ngpu}" -gt 0 ] && [ "${nprocs_per_node}" -ne "${ngpu}" ]; then
            die "srun mode runs one process per GPU: --nprocs_per_node ${nprocs_per_node} != --ngpu ${ngpu}"
        fi
        world_size=$((num_nodes * nprocs_per_node))
        ;;
    *) die "--dist_mode must be auto, single, spawn or srun, not '${dist_mode}'" ;;
esac

# The GPUs, when they are on this host (local backend): the training command's Python counts them.
if [ "${backend}" = local ] && [ "${ngpu}" -gt 0 ]; then
    py=()
    for arg in "$@"; do
        case "${arg}" in -m | -c) break ;; esac
        py+=("${arg}")
    done
    visible=""
    if [ "${#py[@]}" -lt "$#" ]; then
        visible="$("${py[@]}" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || true)"
    fi
    if [[ "${visible}" =~ ^[0-9]+$ ]] && [ "${visible}" -lt "${ngpu}" ]; then
        host="$(hostname 2>/dev/null || echo this host)"
        if [ "${visible}" -eq 0 ]; then
            die "--ngpu ${ngpu}, but no CUDA device is visible on ${host}" \
                "(CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}): use --ngpu 0 to train on the CPU, or run on a GPU node"
        fi
        die "--ngpu ${ngpu}, but only ${visible} CUDA device(s) are visible on ${host}" \
            "(CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}): use --ngpu ${visible}, or run on a node with ${ngpu} GPUs"
    fi
fi
if [ "${check_only}" = true ]; then
    exit 0
fi

# Batch size: the command's --batch_* options win over the config's.
if [ -z "${train_config}" ]; then
    prev=""
    for arg in "$@"; do
        case "${arg}" in
            --config=*) train_config="${arg#--config=}" ;;
        esac
        [ "${prev}" = --config ] && train_config="${arg}"
        prev="${arg}"
    done
fi
batch_info="$(python3 - "${train_config}" "${world_size}" "$@" <<'EOF' 2>/dev/null || echo "batch size unknown (could not read ${train_config:-the config})"
import sys

import yaml

config, world = sys.argv[1], int(sys.argv[2])
argv = sys.argv[3:]
conf = {}
if config:
    with open(config) as f:
        conf = yaml.safe_load(f) or {}
for i, a in enumerate(argv):
    for key in ("batch_type", "batch_size", "batch_bins"):
        if a == f"--{key}" and i + 1 < len(argv):
            conf[key] = argv[i + 1]
        elif a.startswith(f"--{key}="):
            conf[key] = a.split("=", 1)[1]
btype = conf.get("batch_type", "folded")
if btype in ("unsorted", "sorted", "folded", "catbel"):
    key, unit = "batch_size", "utterances"
else:
    key, unit = "batch_bins", "bins"
value = int(conf.get(key, 20 if key == "batch_size" else 1000000))
per = value / world
note = "" if value % world == 0 else " (not divisible: ranks differ by one)"
if value < world:
    note = f" (ERROR: ESPnet needs {key} >= world size {world})"
print(
    f"effective batch size = {value} {unit} per optimizer step "
    f"({key}={value}, batch_type={btype}) = {per:g} per process x {world} process(es){note}"
)
EOF
)"

if [ "${ngpu}" -gt 0 ]; then
    devices="one GPU per process"
else
    devices="CPU only"
fi
layout="mode=${dist_mode} backend=${backend} num_nodes=${num_nodes} ngpu_per_node=${ngpu} processes_per_node=${nprocs_per_node} world_size=${world_size} (${devices})"
[ "${dist_mode}" = single ] || layout+=" dist_backend=${dist_backend}"
echo "${prog}: ${layout}" >&2
echo "${prog}: ${batch_info}" >&2

backend_opts=()
case "${dist_mode}" in
    single) backend_opts=(--gpu "${ngpu}" --num_threads "${num_threads}") ;;
    spawn) backend_opts=(--gpu "${ngpu}" --num_threads "$((num_threads * ngpu))") ;;
    srun)
        backend_opts=(--gpu "${ngpu}" --num_threads "${num_threads}" --num_nodes "${num_nodes}"
            --ntasks_per_node "${nprocs_per_node}")
        ;;
esac
if [ "${backend}" = slurm ] && [ "${preemptible}" = true ]; then
    backend_opts+=(--requeue true)
fi

mkdir -p "$(dirname "${log}")"
# Keep the logs of earlier runs as train.1.log (newest), train.2.log, ... (as espnet2.bin.launch).
if [ -f "${log}" ]; then
    stem="${log%.log}"
    i=1
    while [ -f "${stem}.${i}.log" ]; do i=$((i + 1)); done
    for ((j = i; j > 1; j--)); do mv "${stem}.$((j - 1)).log" "${stem}.${j}.log"; done
    mv "${log}" "${stem}.1.log"
fi
"${cmd_arr[@]}" "${backend_opts[@]}" "${log}" \
    "${self}" --_phase job --dist_mode "${dist_mode}" --ngpu "${ngpu}" --num_nodes "${num_nodes}" \
    --nprocs_per_node "${nprocs_per_node}" --num_threads "${num_threads}" \
    --dist_backend "${dist_backend}" ${master_port:+--master_port "${master_port}"} \
    --_banner "${layout}" --_banner "${batch_info}" -- "$@"
