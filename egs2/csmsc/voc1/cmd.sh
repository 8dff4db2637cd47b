#!/usr/bin/env bash
# cmd.sh: how the recipe runs its jobs; edit it for your site (each recipe has its own copy).
#
# Every *_cmd has the Kaldi interface:
#   ${train_cmd} [--gpu N] [--mem X] [--num_threads N] [--max_jobs_run N] [--time T] \
#       [JOB=1:N] <log-file> <command> [<arg> ...]
# train_cmd:  CPU jobs (data formatting, features, statistics, packing)
# cuda_cmd:   jobs that may use GPUs (training; voc.sh passes --gpu ${ngpu})
# decode_cmd: decoding and scoring jobs
#
# Backends (choose with cmd_backend below, or VOC_CMD_BACKEND=slurm in the environment):
#   local: scripts/run_local.sh runs the jobs on this machine, at most one per CPU at once (scripts/num_cpus.sh)
#          (--max_jobs_run N to change it); --gpu/--mem/--time are ignored.
#   slurm: scripts/slurm.sh submits them with sbatch; site settings go in conf/slurm.conf.
cmd_backend="${VOC_CMD_BACKEND:-local}"

case "${cmd_backend}" in
    local)
        export train_cmd="scripts/run_local.sh"
        export cuda_cmd="scripts/run_local.sh"
        export decode_cmd="scripts/run_local.sh"
        ;;
    slurm)
        # conf/slurm.conf (partitions, accounts, sbatch options) if the recipe has one,
        # else scripts/slurm.sh's built-in defaults.
        slurm_cmd="scripts/slurm.sh"
        if [ -f conf/slurm.conf ]; then
            slurm_cmd="scripts/slurm.sh --config conf/slurm.conf"
        fi
        export train_cmd="${slurm_cmd}"
        export cuda_cmd="${slurm_cmd}"
        export decode_cmd="${slurm_cmd}"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        return 1
        ;;
esac
