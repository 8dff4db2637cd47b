# jobs_lib.sh: the command line of the Kaldi-style job backends scripts/run_local.sh and
# scripts/slurm.sh (sourced by them, not run). It defines:
#   jobs_parse_options <handler> "$@"  the leading "--opt value" / "--opt=value" options: calls
#                                      <handler> <name> <value> for each (name without "--",
#                                      '-' as '_'); sets jobs_nargs to the number of arguments
#                                      used ("shift" them after the call)
#   jobs_parse_args "$@"               the rest: [JOB=1:N] <log-file> <command> [<arg> ...]; sets
#                                      jobvar (empty without a job range), first and last (left
#                                      as the caller set them without a job range), logfile and
#                                      cmd (the arguments joined into one shell command)
#   jobs_log_of <id>                   the log file of job <id>
# The caller defines die <message> (print it, exit 1) and usage (its usage line).
# shellcheck shell=bash disable=SC2154  # usage: set by the caller

# jobs_parse_options <handler> "$@"
jobs_parse_options() {
    local handler="$1" key value
    shift
    jobs_nargs=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --*=*)
                key="${1%%=*}"
                value="${1#*=}"
                shift
                jobs_nargs=$((jobs_nargs + 1))
                ;;
            --*)
                [ $# -ge 2 ] || die "option $1 needs a value"
                key="$1"
                value="$2"
                shift 2
                jobs_nargs=$((jobs_nargs + 2))
                ;;
            *) break ;;
        esac
        key="${key#--}"
        "${handler}" "${key//-/_}" "${value}"
    done
}

# jobs_parse_args [JOB=1:N] <log-file> <command> [<arg> ...]
jobs_parse_args() {
    local arg
    jobvar=""
    if [[ $# -gt 0 && "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)(:([0-9]+))?$ ]]; then
        jobvar="${BASH_REMATCH[1]}"
        first=$((10#${BASH_REMATCH[2]}))
        last=$((10#${BASH_REMATCH[4]:-${BASH_REMATCH[2]}}))
        shift
        [ "${first}" -le "${last}" ] || die "empty job range ${jobvar}=${first}:${last}"
    fi
    [ $# -ge 2 ] || die "${usage}"
    logfile="$1"
    shift
    if [ -n "${jobvar}" ] && [ "${first}" -ne "${last}" ] && [[ "${logfile}" != *"${jobvar}"* ]]; then
        die "running ${jobvar}=${first}:${last} as parallel jobs, but the log file '${logfile}' does not contain '${jobvar}'"
    fi
    # As Kaldi's run.pl: a single argument is a shell command run verbatim; otherwise an
    # argument without white space is used as is (so "|" or ">" act as shell operators) and
    # one with white space (or an empty one) is quoted.
    cmd=""
    if [ $# -eq 1 ]; then
        cmd="$1"
        shift
    fi
    for arg in "$@"; do
        if [[ "${arg}" =~ ^[^[:space:]]+$ ]]; then
            cmd+="${arg} "
        else
            cmd+="$(printf '%q' "${arg}") "
        fi
    done
    cmd="${cmd% }"
}

# jobs_log_of <id>
jobs_log_of() {
    if [ -n "${jobvar}" ]; then
        printf '%s\n' "${logfile//"${jobvar}"/$1}"
    else
        printf '%s\n' "${logfile}"
    fi
}
