# decode.sh: decoding with a vocoder experiment, shared by voc.sh (stage 6) and chain.sh (stages 2
# and 5); sourced after scripts/common.sh, not run. It defines:
#   select_job_cmd <true|false>
#       job_cmd (array): cuda_cmd --gpu 1 when true, else decode_cmd; job_ngpu: 1 or 0
#   local_cpu_jobs
#       when the jobs decode on the CPU (job_ngpu 0) with the local backend (job_cmd is
#       scripts/run_local.sh or utils/run.pl): prints how many of them run at once (its --max_jobs_run, else nproc)
#       and nproc; prints nothing otherwise (SLURM, GPU decoding)
#   decode_feats_scp <name> <feats.scp> <out dir> <train_config> <model_file> [<arg> ...]
#       split <feats.scp> (scripts/split_scp.sh) into min(inference_nj, utterances) jobs, run
#       python -m espnet_hifigan.bin.voc_inference on them (on a GPU if gpu_inference is true;
#       <arg>s are more voc_inference options) and merge their outputs (scripts/merge_decode_dirs.py)
#       On the CPU with the local backend, more jobs than run at once would only pay the start-up
#       (imports, model loading) again: the jobs are also capped at those that run at once
#       (nproc, or run_local.sh's --max_jobs_run), and each gets --num_threads nproc / jobs
#       (at least 1), so that the jobs together use the CPUs without oversubscribing them (an
#       --num_threads among the <arg>s wins). SLURM and GPU decoding use min(inference_nj,
#       utterances) jobs and torch's default threads.
#       -> <out dir>/{wav/,wav.scp,timing.json}; logs in <out dir>/logdir/inference.*.log. The
#       outputs are built aside (stage_dir_begin) and replace <out dir> when complete; when the
#       decoding fails, an earlier decoding in <out dir> moves to <out dir>.previous (so that
#       it does not pass for this one) and <out dir> keeps only the failed attempt's logdir/
#   decode_failed <out dir> <message...>
#       that move, then fail with the message
#   inference_config_args <yaml>
#       print the voc_inference options of an inference config (YAML of option: value) as
#       "--option" and "value" lines (booleans as true/false, None as null)
# The caller sets python_arr, cuda_cmd_arr, decode_cmd_arr (the commands as arrays),
# gpu_inference and inference_nj.
# shellcheck shell=bash disable=SC2154  # python_arr, ...: set by the caller

# select_job_cmd <true|false>
select_job_cmd() {
    if "$1"; then
        job_cmd=("${cuda_cmd_arr[@]}" --gpu 1)
        job_ngpu=1
    else
        job_cmd=("${decode_cmd_arr[@]}")
        job_ngpu=0
    fi
}

# local_cpu_jobs: "<jobs at once> <nproc>" for CPU jobs of the local backend, else nothing
# (call select_job_cmd first)
local_cpu_jobs() {
    local ncpu at_once="" i
    case "${job_cmd[0]##*/}" in
        run_local.sh | run.pl) ;; # utils/run.pl: Kaldi's name for run_local.sh
        *) return 0 ;;
    esac
    if [ "${job_ngpu}" -ne 0 ]; then
        return 0
    fi
    ncpu="$(scripts/num_cpus.sh)"
    for ((i = 1; i < ${#job_cmd[@]}; i++)); do
        case "${job_cmd[i]}" in
            --max_jobs_run=* | --max-jobs-run=*) at_once="${job_cmd[i]#*=}" ;;
            --max_jobs_run | --max-jobs-run) at_once="${job_cmd[i + 1]:-}" ;;
        esac
    done
    [[ "${at_once}" =~ ^[1-9][0-9]*$ ]] || at_once="${ncpu}"
    echo "${at_once} ${ncpu}"
}

# decode_feats_scp <name> <feats.scp> <out dir> <train_config> <model_file> [<arg> ...]
decode_feats_scp() {
    local name="$1" scp="$2" out="$3" config="$4" model="$5"
    shift 5
    local logdir="${out}/logdir" nj n output_dirs=() tmp local_cpu at_once ncpu threads
    local max_nj="${inference_nj}" thread_args=()
    [ -f "${scp}" ] || fail "${scp} not found"
    select_job_cmd "${gpu_inference}"
    local_cpu="$(local_cpu_jobs)"
    if [ -n "${local_cpu}" ]; then
        read -r at_once ncpu <<<"${local_cpu}"
        max_nj="$(min "${inference_nj}" "${at_once}")"
    fi
    stage_dir_begin "${out}"
    tmp="${stage_tmp}"
    rm -rf "${logdir}"
    mkdir -p "${logdir}"
    nj="$(split_for_jobs "${scp}" "${max_nj}" "${logdir}/feats.JOB.scp")"
    if [ -n "${local_cpu}" ]; then
        threads=$((ncpu / nj > 1 ? ncpu / nj : 1))
        thread_args=(--num_threads "${threads}")
        log "${name}: local CPU backend: ${nj} jobs x ${threads} thread(s) each (min of inference_nj" \
            "${inference_nj}, $(nlines "${scp}") utterances and ${at_once} jobs at once; nproc ${ncpu})"
    fi
    log "${name}: ${scp} ($(nlines "${scp}") utterances), ${nj} jobs, logs in ${logdir}/inference.*.log"
    "${job_cmd[@]}" JOB=1:"${nj}" "${logdir}/inference.JOB.log" \
        "${python_arr[@]}" -m espnet_hifigan.bin.voc_inference --ngpu "${job_ngpu}" \
        --train_config "${config}" --model_file "${model}" \
        --feats_scp "${logdir}/feats.JOB.scp" --output_dir "${logdir}/output.JOB" \
        --origin_scp "${scp}" "${thread_args[@]}" "$@" \
        || decode_failed "${out}" "decoding ${name} failed; see ${logdir}/inference.*.log"
    for n in $(seq "${nj}"); do
        output_dirs+=("${logdir}/output.${n}")
    done
    "${python_arr[@]}" scripts/merge_decode_dirs.py --output_dir "${tmp}" "${output_dirs[@]}" \
        || decode_failed "${out}" "merging the decoding jobs of ${name} failed (see above)"
    stage_dir_commit "${tmp}" "${out}" logdir wav.scp
    log "${name}: $(nlines "${out}/wav.scp") wavs in ${out}/wav/"
}

# decode_failed <out dir> <message...>
decode_failed() {
    local out="$1"
    shift
    if [ -f "${out}/wav.scp" ]; then
        mv "${out}/logdir" "${out}.logdir.$$"
        rm -rf "${out}.previous"
        stage_dir_commit "${out}" "${out}.previous" "" wav.scp
        mkdir -p "${out}"
        mv "${out}.logdir.$$" "${out}/logdir"
        fail "$* (the earlier decoding in ${out} is now in ${out}.previous)"
    fi
    fail "$*"
}

# inference_config_args <yaml>
inference_config_args() {
    "${python_arr[@]}" -c '
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    for key, value in (yaml.safe_load(f) or {}).items():
        print(f"--{key}")
        print("null" if value is None else str(value).lower() if isinstance(value, bool) else value)
' "$1"
}
