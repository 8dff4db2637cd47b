#!/usr/bin/env bash
# slurm.sh: run a (parallel) command as SLURM jobs, with the semantics of Kaldi's slurm.pl.
#
# Usage:
#   scripts/slurm.sh [options] JOB=1:N log/foo.JOB.log command args...   (job array, JOB=1..N)
#   scripts/slurm.sh [options] log/foo.log command args...                (one job)
#
# Every occurrence of JOB (any identifier before '=' works) in the log path and in the
# arguments is replaced by the task number. Each task writes its log file at the given path:
# a header ("# command", "# Started at ..."), the command's stdout and stderr, and a trailer
# ("# Accounting: time=S threads=T", "# Ended (code N) at ..."). slurm.sh waits for all tasks
# and exits 0 only if every task exited 0; otherwise it names the failing tasks' logs and
# exits 1. Ctrl-C (SIGINT), SIGTERM or SIGHUP cancels (scancel) the submitted jobs.
#
# Arguments are joined into one shell command like scripts/run_local.sh and Kaldi do: a single
# argument is run verbatim as a shell command; otherwise an argument without white space is
# used as is (so "|" and ">" keep their shell meaning) and one with white space is quoted.
# The command runs in bash -o pipefail, stdin from /dev/null, in the submission directory,
# after sourcing ./path.sh when that file exists.
#
# Options (also written --opt=value; '-' and '_' are the same in names):
#   --config FILE        Kaldi-style config (see conf/slurm.conf); default: built-in, which is
#                        conf/slurm.conf without site lines.
#   --max_jobs_run N     at most N array tasks run at once (--array=1-N%M).
#   --name NAME          job name (default: the log file name without JOB and .log).
#   --requeue true       preemptible job: on SIGUSR1 (sbatch --signal=B:USR1@T, set in the
#                        config) the signal is passed to the command; when it has exited,
#                        the job requeues itself (scontrol requeue) and the wrapper keeps
#                        waiting for the requeued run.
#   Any other --opt VALUE is mapped to sbatch options through the config's "option" lines;
#   the default config knows --gpu N, --mem SIZE, --num_threads N, --time T, --num_nodes N,
#   --ntasks_per_node N, --partition P, --account A, --constraint C, --qos Q, --requeue B.
#
# Environment:
#   SLURM_SH_POLL_MAX    longest pause between two status checks, seconds (default 10).
#   SLURM_SH_GRACE       seconds a task may be missing from squeue without an exit status
#                        before it counts as failed (default 30; covers NFS delays).
set -euo pipefail

prog="slurm.sh"
die() {
    echo "${prog}: ERROR: $*" >&2
    exit 1
}
# shellcheck source-path=SCRIPTDIR source=jobs_lib.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/jobs_lib.sh"

# shellcheck disable=SC2016  # $0 is the config language's placeholder, not a shell variable
default_config='command sbatch --export=PATH
option time=* --time $0
option mem=* --mem $0
option mem=0
default num_threads=1
option num_threads=* --cpus-per-task $0
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
option num_nodes=* --nodes $0
option ntasks_per_node=* --ntasks-per-node $0
option partition=* --partition $0
option account=* --account $0
option constraint=* --constraint $0
option qos=* --qos $0
default requeue=false
option requeue=false
option requeue=true --requeue --signal=B:USR1@120'

config=""
max_jobs_run=""
job_name=""
requeue=false
declare -A opt_value=()
opt_order=()

# ---------------------------------------------------------------- options
# shellcheck disable=SC2329  # invoked by jobs_parse_options
set_option() {
    case "$1" in
        config) config="$2" ;;
        max_jobs_run) max_jobs_run="$2" ;;
        name) job_name="$2" ;;
        *)
            if [ "$1" = requeue ]; then
                case "$2" in
                    true | false) requeue="$2" ;;
                    *) die "--requeue takes true or false, not '$2'" ;;
                esac
            fi
            if [ -z "${opt_value[$1]+x}" ]; then
                opt_order+=("$1")
            fi
            opt_value["$1"]="$2"
            ;;
    esac
}
jobs_parse_options set_option "$@"
shift "${jobs_nargs}"

usage="Usage: ${prog} [options] [JOB=1:N] log/foo.JOB.log command args..."
[ $# -ge 2 ] || die "${usage}"
first=""
last=""
jobs_parse_args "$@"
if [ -n "${max_jobs_run}" ] && ! [[ "${max_jobs_run}" =~ ^[1-9][0-9]*$ ]]; then
    die "--max_jobs_run takes a positive integer, not '${max_jobs_run}'"
fi

# ---------------------------------------------------------------- config
if [ -n "${config}" ]; then
    [ -f "${config}" ] || die "config file ${config} not found (run from the recipe directory?)"
    config_text="$(cat "${config}")"
    config_name="${config}"
else
    config_text="${default_config}"
    config_name="built-in config"
fi

sbatch_cmd=()
declare -A exact_opt=() wild_opt=() default_opt=()
lineno=0
while IFS= read -r line || [ -n "${line}" ]; do
    lineno=$((lineno + 1))
    # Strip comments: whole-line, or " # ..." after a setting.
    line="${line%%[[:space:]]#*}"
    [[ "${line}" =~ ^[[:space:]]*(#|$) ]] && continue
    read -r kind rest <<<"${line}"
    case "${kind}" in
        command)
            read -r -a sbatch_cmd <<<"${rest}"
            ;;
        option)
            read -r spec args <<<"${rest}"
            [[ "${spec}" == *=* ]] || die "${config_name}:${lineno}: expected 'option name=value ...': ${line}"
            name="${spec%%=*}"
            name="${name//-/_}"
            val="${spec#*=}"
            if [ "${val}" = "*" ]; then
                wild_opt["${name}"]="${args:-}"
            else
                exact_opt["${name}=${val}"]="${args:-}"
            fi
            ;;
        default)
            read -r spec _ <<<"${rest}"
            [[ "${spec}" == *=* ]] || die "${config_name}:${lineno}: expected 'default name=value': ${line}"
            name="${spec%%=*}"
            default_opt["${name//-/_}"]="${spec#*=}"
            ;;
        *)
            die "${config_name}:${lineno}: unknown line type '${kind}' (command, option or default)"
            ;;
    esac
done <<<"${config_text}"
[ "${#sbatch_cmd[@]}" -gt 0 ] || die "${config_name} has no 'command sbatch ...' line"

for name in "${!default_opt[@]}"; do
    if [ -z "${opt_value[${name}]+x}" ]; then
        opt_order+=("${name}")
        opt_value["${name}"]="${default_opt[${name}]}"
    fi
done
if [ "${opt_value[requeue]:-false}" = true ]; then
    requeue=true
fi

sbatch_opts=()
for name in "${opt_order[@]}"; do
    value="${opt_value[${name}]}"
    if [ -n "${exact_opt[${name}=${value}]+x}" ]; then
        args="${exact_opt[${name}=${value}]}"
    elif [ -n "${wild_opt[${name}]+x}" ]; then
        args="${wild_opt[${name}]//\$0/${value}}"
    elif [ "${name}" = requeue ]; then
        # Configs without requeue lines (e.g. Kaldi's): use the built-in mapping.
        args=""
        [ "${value}" = false ] || args="--requeue --signal=B:USR1@120"
    else
        die "option --${name} ${value} is not in ${config_name} (add 'option ${name}=* ...')"
    fi
    if [ -n "${args}" ]; then
        read -r -a words <<<"${args}"
        sbatch_opts+=("${words[@]}")
    fi
done
num_threads="${opt_value[num_threads]:-1}"

# ---------------------------------------------------------------- job script
logdir="$(dirname "${logfile}")"
mkdir -p "${logdir}"
qdir="${logdir}/q"
mkdir -p "${qdir}"
base="$(basename "${logfile}")"
base="${base%.log}"
if [ -n "${jobvar}" ]; then
    base="${base//.${jobvar}/}"
    base="${base//${jobvar}/}"
fi
[ -n "${base}" ] || base="job"
[ -n "${job_name}" ] || job_name="${base}"
cwd="$(pwd)"
tag="$(date +%Y%m%d%H%M%S).$$"
script="${qdir}/${base}.sh"
status_prefix="${qdir}/${base}.${tag}.status"
if [ -n "${jobvar}" ]; then
    out_pattern="${qdir}/${base}.%A_%a.out"
else
    out_pattern="${qdir}/${base}.%j.out"
fi

{
    echo "#!/usr/bin/env bash"
    echo "# Generated by scripts/slurm.sh at $(date) for: ${logfile}"
    printf 'cd %q || exit 1\n' "${cwd}"
    printf 'jobvar=%q\n' "${jobvar}"
    printf 'log_template=%q\n' "${logfile}"
    printf 'cmd_template=%q\n' "${cmd}"
    printf 'status_prefix=%q\n' "${status_prefix}"
    printf 'requeue=%q\n' "${requeue}"
    printf 'num_threads=%q\n' "${num_threads}"
    printf 'single_task=%q\n' "${first}"
    cat <<'EOF'
task="${SLURM_ARRAY_TASK_ID:-${single_task}}"
log_file="${log_template}"
cmd="${cmd_template}"
if [ -n "${jobvar}" ]; then
    log_file="${log_template//"${jobvar}"/${task}}"
    cmd="${cmd_template//"${jobvar}"/${task}}"
fi
status_file="${status_prefix}${task:+.${task}}"
if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then
    job_ref="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
else
    job_ref="${SLURM_JOB_ID:-unknown}"
fi
# Kaldi convention: the recipe's path.sh sets up the environment of the job.
if [ -f ./path.sh ]; then
    . ./path.sh
fi
mkdir -p "$(dirname "${log_file}")"
restart="${SLURM_RESTART_COUNT:-0}"
if [ "${restart}" -gt 0 ]; then
    echo "# Restart ${restart} of SLURM job ${job_ref} on $(hostname) at $(date)" >>"${log_file}"
else
    {
        echo "# ${cmd}"
        echo "# Running on $(hostname) as SLURM job ${job_ref}"
        echo "# Started at $(date)"
        echo "#"
    } >"${log_file}"
fi
start_time="$(date +%s)"
child=""
got_signal=""
interrupted=false
forward() {
    got_signal="$1"
    interrupted=true
    if [ -n "${child}" ]; then
        kill -s "$1" "${child}" 2>/dev/null || true
    fi
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
trap 'forward INT' INT
bash -o pipefail -c "${cmd}" </dev/null >>"${log_file}" 2>&1 &
child=$!
# wait returns early when a trapped signal arrives; keep waiting for the command itself.
while :; do
    interrupted=false
    wait "${child}"
    rc=$?
    if [ "${interrupted}" = false ]; then
        break
    fi
    if ! kill -0 "${child}" 2>/dev/null; then
        # The command ended while the trap ran: ask bash for its remembered exit status.
        wait "${child}"
        rc2=$?
        if [ "${rc2}" -ge 0 ] && [ "${rc2}" -le 255 ] && [ "${rc2}" -ne 127 ]; then
            rc="${rc2}"
        fi
        break
    fi
done
end_time="$(date +%s)"
if [ "${got_signal}" = USR1 ] && [ "${requeue}" = true ]; then
    echo "# Preempted (SIGUSR1, code ${rc}) at $(date): requeueing SLURM job ${job_ref}" >>"${log_file}"
    if scontrol requeue "${job_ref}" >>"${log_file}" 2>&1; then
        # SLURM kills this script while requeueing; do not write an exit status.
        sleep 300
        exit 0
    fi
    echo "# Requeue failed; re-run the stage to resume" >>"${log_file}"
fi
if [ "${got_signal}" = TERM ] || [ "${got_signal}" = INT ]; then
    # Cancelled, out of time, or preempted by the scheduler: SLURM decides whether the job
    # ends or is requeued. No exit status, so that the waiting slurm.sh asks SLURM.
    echo "# Terminated by SIG${got_signal} (code ${rc}) at $(date)" >>"${log_file}"
    exit "${rc}"
fi
{
    echo "# Accounting: time=$((end_time - start_time)) threads=${num_threads}"
    echo "# Ended (code ${rc}) at $(date), elapsed time $((end_time - start_time)) seconds"
} >>"${log_file}"
echo "${rc}" >"${status_file}.tmp"
mv -f "${status_file}.tmp" "${status_file}"
exit "${rc}"
EOF
} >"${script}"
chmod +x "${script}"

# ---------------------------------------------------------------- submit
submit=("${sbatch_cmd[@]}" --parsable "${sbatch_opts[@]}" --job-name "${job_name}"
    --chdir "${cwd}" --output "${out_pattern}")
tasks=()
if [ -n "${jobvar}" ]; then
    array="${first}-${last}"
    [ -z "${max_jobs_run}" ] || array+="%${max_jobs_run}"
    submit+=(--array "${array}")
    for ((t = first; t <= last; t++)); do
        tasks+=("${t}")
    done
else
    tasks+=("")
fi
submit+=("${script}")

jobid=""
# shellcheck disable=SC2329  # invoked through trap
cancel_jobs() {
    local sig="$1"
    trap '' INT TERM HUP
    if [ -n "${jobid}" ]; then
        echo "${prog}: caught SIG${sig}; cancelling SLURM job ${jobid}" >&2
        scancel "${jobid}" 2>/dev/null || true
        # Wait (bounded) until SLURM has removed the jobs, so that the caller sees a clean queue.
        local _
        for _ in $(seq 1 60); do
            if [ -z "$(squeue -h -j "${jobid}" -o '%i' 2>/dev/null)" ]; then
                break
            fi
            sleep 1
        done
    fi
    case "${sig}" in
        INT) exit 130 ;;
        HUP) exit 129 ;;
        *) exit 143 ;;
    esac
}
trap 'cancel_jobs INT' INT
trap 'cancel_jobs TERM' TERM
trap 'cancel_jobs HUP' HUP

if ! out="$("${submit[@]}" 2>&1)"; then
    echo "${prog}: sbatch failed for ${logfile}: ${out}" >&2
    echo "${prog}: command was: ${submit[*]}" >&2
    exit 1
fi
jobid="${out##*$'\n'}"
jobid="${jobid%%;*}"
[[ "${jobid}" =~ ^[0-9]+$ ]] || die "cannot read the job id from sbatch's output: ${out}"
echo "${prog}: submitted SLURM job ${jobid} (${#tasks[@]} task(s)), log: ${logfile}" >&2

# ---------------------------------------------------------------- wait
poll_max="${SLURM_SH_POLL_MAX:-10}"
grace="${SLURM_SH_GRACE:-30}"
declare -A rc_of=() missing_since=() state_of=()
remaining=("${tasks[@]}")
pause=1
while [ "${#remaining[@]}" -gt 0 ]; do
    sleep "${pause}" &
    wait $! || true
    [ "${pause}" -ge "${poll_max}" ] || pause=$((pause * 2 > poll_max ? poll_max : pause * 2))

    # Which tasks does SLURM still know as pending/running/completing?
    declare -A alive=()
    squeue_ok=true
    if sq="$(squeue -h -r -j "${jobid}" -o '%K %T' 2>&1)"; then
        while read -r tid st; do
            [ -n "${tid:-}" ] || continue
            [ "${tid}" != "N/A" ] || tid=""
            alive["k${tid}"]="${st}"
        done <<<"${sq}"
    elif [[ "${sq}" == *"Invalid job id"* ]]; then
        : # the job left the queue
    else
        squeue_ok=false
        echo "${prog}: warning: squeue failed (${sq}); still waiting for job ${jobid}" >&2
    fi

    still=()
    for t in "${remaining[@]}"; do
        sfile="${status_prefix}${t:+.${t}}"
        if [ -f "${sfile}" ]; then
            rc_of["k${t}"]="$(cat "${sfile}")"
            continue
        fi
        if [ "${squeue_ok}" = true ] && [ -z "${alive[k${t}]+x}" ]; then
            # Gone from the queue without an exit status: killed, cancelled, out of time,
            # node failure... Give the file system a grace period before deciding.
            now="$(date +%s)"
            [ -n "${missing_since[k${t}]+x}" ] || missing_since["k${t}"]="${now}"
            since="${missing_since[k${t}]}"
            if [ $((now - since)) -ge "${grace}" ]; then
                ref="${jobid}${t:+_${t}}"
                st="$(scontrol show job "${ref}" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1 || true)"
                state_of["k${t}"]="${st:-unknown}"
                rc_of["k${t}"]="none"
                continue
            fi
        else
            unset "missing_since[k${t}]"
        fi
        still+=("${t}")
    done
    remaining=("${still[@]}")
    unset alive
done
trap - INT TERM HUP

# ---------------------------------------------------------------- report
failed=()
for t in "${tasks[@]}"; do
    rm -f "${status_prefix}${t:+.${t}}"
    if [ "${rc_of[k${t}]}" = 0 ]; then
        # Keep the scheduler's output only when it says something.
        if [ -n "${t}" ]; then
            out_file="${qdir}/${base}.${jobid}_${t}.out"
        else
            out_file="${qdir}/${base}.${jobid}.out"
        fi
        [ -s "${out_file}" ] || rm -f "${out_file}"
    else
        failed+=("${t}")
    fi
done
if [ "${#failed[@]}" -eq 0 ]; then
    exit 0
fi
shown=0
for t in "${failed[@]}"; do
    shown=$((shown + 1))
    if [ "${shown}" -gt 10 ]; then
        echo "${prog}: ... and $((${#failed[@]} - 10)) more failed task(s)" >&2
        break
    fi
    log="$(jobs_log_of "${t}")"
    ref="${jobid}${t:+_${t}}"
    if [ "${rc_of[k${t}]}" = none ]; then
        if [ -n "${t}" ]; then
            out_file="${qdir}/${base}.${jobid}_${t}.out"
        else
            out_file="${qdir}/${base}.${jobid}.out"
        fi
        echo "${prog}: job ${ref} ended without an exit status (SLURM state ${state_of[k${t}]}), log is in ${log} (scheduler output: ${out_file})" >&2
    else
        echo "${prog}: job ${ref} failed with status ${rc_of[k${t}]}, log is in ${log}" >&2
    fi
done
if [ "${#tasks[@]}" -gt 1 ]; then
    echo "${prog}: ${#failed[@]} / ${#tasks[@]} failed, log is in ${logfile}" >&2
fi
exit 1
