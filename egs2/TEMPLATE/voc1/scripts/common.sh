# common.sh: helpers shared by voc.sh and chain.sh (sourced, not run). It defines:
#   recipe_options "$@"          the caller's options (utils/parse_options.sh), then ./path.sh,
#                                ./cmd.sh and the arrays train_cmd_arr, cuda_cmd_arr,
#                                decode_cmd_arr and python_arr
#   check_uint <name...>         fail unless the options are non-negative integers
#   check_train_config <config>  fail unless a training config builds a model (before writing)
#   convert_pretrained <model> <discriminator> <dir>
#                                a published vocoder converted for training into <dir>, unless done
#   log, fail, min, nlines       messages and small computations
#   split_for_jobs               a Kaldi table split into parts for a job array
#   begin_stage, end_stage       the first and last log line of a stage
#   check_stage_range <max> [<hint>]
#                                fail unless 1 <= --stage <= <max> and --stage <= --stop_stage
#   stage_dir_begin, stage_dir_commit
#                                build a stage's output directory aside, swap it in on success
# Set stage_label before calling begin_stage/end_stage to change "Stage" in their log lines.
# shellcheck shell=bash source-path=SCRIPTDIR

stage_label="${stage_label:-Stage}"
stage_start=0

# _log_line <message...>: the line log and fail print, naming the script, line and function
# that called log or fail (two frames up)
_log_line() {
    local fname=${BASH_SOURCE[2]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[1]}:${FUNCNAME[2]}) $*"
}
# log <message...>: timestamped line naming the calling script, line and function
log() {
    _log_line "$@"
}
# fail <message...>: log an error naming the caller and exit 1
fail() {
    _log_line "ERROR: $*" >&2
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
# split_for_jobs <file> <max jobs> <part path with JOB>: split <file> (scripts/split_scp.sh) into
# N = min(<max jobs>, its lines) parts, named by the path with JOB replaced by 1..N; prints N.
split_for_jobs() {
    local n i parts=()
    [ -f "$1" ] || fail "$1 not found"
    n="$(min "$2" "$(nlines "$1")")"
    for i in $(seq "${n}"); do
        parts+=("${3//JOB/${i}}")
    done
    scripts/split_scp.sh "$1" "${parts[@]}" || return 1
    echo "${n}"
}
# recipe_options "$@": parse the caller's options (utils/parse_options.sh: each needs a default
# before; positional arguments are an error), source ./path.sh and ./cmd.sh, and split the job
# commands and --python into arrays (word-split like ESPnet's unquoted use, no globbing).
# shellcheck disable=SC2034  # the arrays are the caller's
recipe_options() {
    # --help prints the caller's header comment; set as help_message, which Kaldi's own
    # parse_options.sh prints too (it does not read the header), when utils/ is Kaldi's.
    help_message="${help_message:-$(awk 'NR == 1 && /^#!/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0")}"
    # shellcheck source=parse_options.sh
    . utils/parse_options.sh
    if [ $# -ne 0 ]; then
        fail "unexpected arguments: $* (see --help)"
    fi
    # shellcheck source=../path.sh
    . ./path.sh
    # shellcheck source=../cmd.sh
    . ./cmd.sh
    read -r -a train_cmd_arr <<<"${train_cmd}"
    read -r -a cuda_cmd_arr <<<"${cuda_cmd}"
    read -r -a decode_cmd_arr <<<"${decode_cmd}"
    read -r -a python_arr <<<"${python:?}"
}
# check_uint <name...>: fail unless each option --<name> is a non-negative integer.
check_uint() {
    local opt
    for opt in "$@"; do
        [[ "${!opt}" =~ ^[0-9]+$ ]] || fail "--${opt} must be a non-negative integer, got '${!opt}'"
    done
}
# check_stage_range <max> [<hint>]: fail unless --stage and --stop_stage are integers,
# 1 <= stage <= <max> and stage <= stop_stage (a stop_stage past <max>, e.g. the default 10000,
# means "to the end"); <hint> ends the message about --stage.
# shellcheck disable=SC2154  # stage, stop_stage: the caller's options
check_stage_range() {
    check_uint stage stop_stage
    [ "${stage}" -ge 1 ] && [ "${stage}" -le "$1" ] || fail "--stage must be within 1-$1${2:+ ($2)}, got ${stage}"
    [ "${stage}" -le "${stop_stage}" ] || fail "--stop_stage ${stop_stage} is before --stage ${stage}; nothing would run"
}

# Output directories are built aside and swapped in only when complete, so that a failed run
# leaves the previous results as they were:
#   stage_dir_begin <dir>
#       stage_tmp=<dir>.tmp.<pid>, created empty; it is removed when the script exits unless
#       stage_dir_commit swapped it in. The stage writes its results there and its logs where
#       they belong in <dir> itself (those are the last attempt's logs, kept on failure).
#   stage_dir_commit <tmp> <dir> "<logs>" [<index file>...]
#       the <logs> (space-separated paths under <dir>) move into <tmp>; in each index file present
#       (a path under <tmp>, e.g. wav.scp) the paths into <tmp> become paths into <dir>; then <tmp>
#       replaces <dir> (the old <dir> is removed only then).
_stage_tmp_dirs=()
# shellcheck disable=SC2329  # invoked through trap
_stage_dir_cleanup() {
    local d
    for d in "${_stage_tmp_dirs[@]}"; do
        rm -rf "${d}"
    done
}
stage_dir_begin() {
    stage_tmp="$1.tmp.$$"
    rm -rf "${stage_tmp}"
    mkdir -p "${stage_tmp}"
    _stage_tmp_dirs+=("${stage_tmp}")
    trap _stage_dir_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
stage_dir_commit() {
    local tmp="$1" dir="$2" logs f
    read -r -a logs <<<"$3"
    shift 3
    for f in "$@"; do
        [ -f "${tmp}/${f}" ] || continue
        awk -v from="${tmp}/" -v to="${dir}/" '{
            out = ""
            while ((i = index($0, from)) > 0) { out = out substr($0, 1, i - 1) to; $0 = substr($0, i + length(from)) }
            print out $0 }' "${tmp}/${f}" >"${tmp}/${f}.paths" || fail "cannot rewrite the paths of ${tmp}/${f}"
        ! grep -qF "${tmp##*/}/" "${tmp}/${f}.paths" \
            || fail "${tmp}/${f} names ${tmp} in another spelling than ${tmp}/; cannot point it at ${dir}"
        mv "${tmp}/${f}.paths" "${tmp}/${f}"
    done
    for f in "${logs[@]}"; do
        if [ -e "${dir}/${f}" ]; then
            rm -rf "${tmp:?}/${f}"
            mkdir -p "$(dirname "${tmp}/${f}")"
            mv "${dir}/${f}" "${tmp}/${f}"
        fi
    done
    if [ -e "${dir}" ] || [ -L "${dir}" ]; then
        mv "${dir}" "${dir}.old.$$"
    fi
    mv "${tmp}" "${dir}"
    rm -rf "${dir}.old.$$"
}
# check_train_config <config> [voc_train options...]: fail unless every key of the config's
# *_conf sections is known and the model builds (espnet_hifigan.bin.check_config), so that a
# misspelt key stops the recipe before a stage removes earlier results.
check_train_config() {
    "${python_arr[@]}" -m espnet_hifigan.bin.check_config --config "$@" \
        || fail "$1 is not a valid training config (see above); nothing was changed"
}
# convert_pretrained <model> <discriminator or ""> <dir>: a published vocoder (generator and
# discriminators) converted for training into <dir> (espnet_hifigan.bin.convert_checkpoint
# --for_training: config.yaml, model.pth, feature_contract.yaml), <dir>/source naming the files
# converted; nothing is done when it already names these. Returns non-zero if the conversion failed.
convert_pretrained() {
    local source_id
    source_id="$(readlink -f "$1") ${2:+$(readlink -f "$2")}"
    if [ -f "$3/model.pth" ] && [ "$(cat "$3/source" 2>/dev/null)" = "${source_id}" ]; then
        return 0
    fi
    local opts=(--input "$1" --for_training --outdir "$3")
    [ -z "$2" ] || opts+=(--discriminator "$2")
    log "Converting $1 (generator and discriminators) -> $3"
    "${python_arr[@]}" -m espnet_hifigan.bin.convert_checkpoint "${opts[@]}" || return 1
    echo "${source_id}" >"$3/source"
}
# begin_stage <n> <what>, end_stage <n>: log lines around a stage, the latter with its duration.
begin_stage() {
    stage_start="${SECONDS}"
    log "${stage_label} $1: $2 (started)"
}
end_stage() {
    log "${stage_label} $1: finished in $((SECONDS - stage_start)) s"
}
