#!/usr/bin/env bash
# Helpers shared by voc.sh and chain.sh (sourced, not run).
# Set stage_label before calling begin_stage/end_stage to change "Stage" in their log lines.

stage_label="${stage_label:-Stage}"
stage_start=0

# log <message...>: timestamped line naming the calling script, line and function
log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
# fail <message...>: log an error and exit 1
fail() {
    log "ERROR: $*" >&2
    exit 1
}
# min <int...>: the smallest argument
min() {
    local a b
    a="$1"
    for b in "${@:2}"; do
        if [ "${b}" -lt "${a}" ]; then a="${b}"; fi
    done
    echo "${a}"
}
# nlines <file>: number of lines
nlines() {
    wc -l <"$1" | tr -d ' '
}
begin_stage() {
    stage_start="${SECONDS}"
    log "${stage_label} $1: $2 (started)"
}
end_stage() {
    log "${stage_label} $1: finished in $((SECONDS - stage_start)) s"
}
