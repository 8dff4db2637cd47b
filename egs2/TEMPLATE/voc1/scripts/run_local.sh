#!/usr/bin/env bash
# run_local.sh: run a command, or an array of jobs, on this machine (Kaldi run.pl, in bash).
#
# Usage: run_local.sh [options] [JOB=1:N] <log-file> <command> [<arg> ...]
#   JOB=1:N     run N jobs (any variable name works, e.g. SPLIT=1:4; JOB=3 runs job 3 only).
#               Every occurrence of the name in <log-file> and in the command is replaced by
#               the job number.
#   <log-file>  per-job log: the command line, start time, the command's stdout and stderr,
#               "# Accounting: time=... threads=..." and "# Ended (code N) at ...".
#   <command>   run by bash (with pipefail). As in run.pl, an argument without whitespace is
#               used as-is (so "|" or ">" act as shell operators); one with whitespace is quoted.
#               A command given as one single argument is run verbatim as a shell command.
# Options:
#   --max_jobs_run N, --max-jobs-run N   run at most N jobs at once (default: the CPUs this process
#                                        may use, scripts/num_cpus.sh: OMP_NUM_THREADS does not count)
#   --num_threads N                      each job's threads: OMP_NUM_THREADS and MKL_NUM_THREADS are
#                                        N in its environment (default: 1); recorded in the accounting line
#   --gpu N, --mem X, --time T, --config F and any other "--opt value" are accepted and
#   ignored, so that a recipe can switch between this and scripts/slurm.sh in cmd.sh.
# Exit status: 0 if every job succeeded; else 1, after one line per failed job on stderr:
#   run_local.sh: job 3 failed, see log/foo.3.log
set -euo pipefail

prog="$(basename "$0")"
usage="usage: ${prog} [options] [JOB=1:N] <log-file> <command> [<arg> ...]"
die() {
    echo "${prog}: $*" >&2
    exit 1
}
# shellcheck source-path=SCRIPTDIR source=jobs_lib.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/jobs_lib.sh"

max_jobs_run="$("$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/num_cpus.sh")"
num_threads=1
# shellcheck disable=SC2329  # invoked by jobs_parse_options
set_option() {
    case "$1" in
        max_jobs_run) max_jobs_run="$2" ;;
        num_threads) num_threads="$2" ;;
        *) ;; # --gpu, --mem, --time, --config, ...: meaningful for cluster backends only
    esac
}
jobs_parse_options set_option "$@"
shift "${jobs_nargs}"
[[ "${max_jobs_run}" =~ ^[1-9][0-9]*$ ]] || die "--max_jobs_run must be a positive integer, got '${max_jobs_run}'"

first=1
last=1
jobs_parse_args "$@"

statusdir="$(mktemp -d "${TMPDIR:-/tmp}/run_local.XXXXXX")"

run_job() {
    local id="$1" log jobcmd start rc child
    log="$(jobs_log_of "${id}")"
    jobcmd="${cmd}"
    if [ -n "${jobvar}" ]; then
        jobcmd="${cmd//${jobvar}/${id}}"
    fi
    mkdir -p "$(dirname "${log}")"
    {
        printf '# %s\n' "${jobcmd}"
        printf '# Started at %s\n' "$(date)"
        printf '#\n'
    } >"${log}"
    start="${SECONDS}"
    OMP_NUM_THREADS="${num_threads}" MKL_NUM_THREADS="${num_threads}" \
        bash -o pipefail -c "${jobcmd}" </dev/null >>"${log}" 2>&1 &
    child=$!
    trap 'kill -TERM "${child}" 2>/dev/null || true' TERM INT
    rc=0
    wait "${child}" || rc=$?
    if kill -0 "${child}" 2>/dev/null; then # interrupted by a signal: collect the real status
        rc=0
        wait "${child}" || rc=$?
    fi
    {
        printf '# Accounting: time=%d threads=%s\n' "$((SECONDS - start))" "${num_threads}"
        printf '# Ended (code %d) at %s, elapsed time %d seconds\n' "${rc}" "$(date)" "$((SECONDS - start))"
    } >>"${log}"
    echo "${rc}" >"${statusdir}/${id}"
}

pids=()
# shellcheck disable=SC2329  # invoked by the trap below
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "${pid}" 2>/dev/null || true
    done
    wait || true
    rm -rf "${statusdir}"
    exit 130
}
trap cleanup INT TERM

for ((id = first; id <= last; id++)); do
    while [ "$(jobs -rp | wc -l)" -ge "${max_jobs_run}" ]; do
        wait -n || true
    done
    run_job "${id}" &
    pids+=("$!")
done
wait || true
trap - INT TERM

failed=0
for ((id = first; id <= last; id++)); do
    rc="$(cat "${statusdir}/${id}" 2>/dev/null || echo missing)"
    if [ "${rc}" != 0 ]; then
        failed=$((failed + 1))
        if [ -n "${jobvar}" ]; then
            echo "${prog}: job ${id} failed, see $(jobs_log_of "${id}")" >&2
        else
            echo "${prog}: command failed, see ${logfile}" >&2
        fi
    fi
done
rm -rf "${statusdir}"
if [ "${failed}" -gt 0 ]; then
    if [ "$((last - first + 1))" -gt 1 ]; then
        echo "${prog}: ${failed} / $((last - first + 1)) jobs failed" >&2
    fi
    exit 1
fi
exit 0
